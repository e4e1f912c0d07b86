package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy is returned (wrapped in *BusyError) when the hashing admission
// queue is full or the wait exceeded.
var ErrBusy = errors.New("password: hashing capacity exhausted")

// BusyError is the error of every refused Limiter.Acquire, and so of Hash,
// Verify and VerifyDummy when they could not get a hashing slot. An HTTP
// handler should answer 503 with a Retry-After header of RetryAfter.
// errors.Is(err, ErrBusy) is true for every BusyError.
type BusyError struct {
	// RetryAfter is a hint for when capacity is likely to be free again;
	// always > 0 and a whole number of seconds, as Retry-After needs.
	RetryAfter time.Duration
	// Cause is the context's cause when the caller's context ended before
	// a slot was free (so errors.Is(err, context.Canceled) works), and nil
	// when the queue was full or MaxWait passed.
	Cause error
}

func (e *BusyError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%v: gave up waiting: %v", ErrBusy, e.Cause)
	}
	return fmt.Sprintf("%v (retry after %v)", ErrBusy, e.RetryAfter)
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Unwrap returns Cause, so callers can tell a client that went away from a
// server that is overloaded.
func (e *BusyError) Unwrap() error { return e.Cause }

// LimiterOptions configure a Limiter.
type LimiterOptions struct {
	// Concurrency is how many hashes may be computed at once; <= 0 means
	// runtime.GOMAXPROCS(0). Each argon2id computation holds Params.Memory
	// KiB, so this also bounds hashing memory to Concurrency*Memory.
	Concurrency int
	// MaxWait is the longest a caller waits for a slot (the caller's
	// context may cut it shorter); <= 0 means callers never wait.
	MaxWait time.Duration
	// MaxQueue is how many callers may wait at once; further callers are
	// refused at once. <= 0 means nobody waits.
	MaxQueue int
	// Observe, if not nil, is called with the time spent in every Acquire,
	// admitted or refused, e.g. to feed a Prometheus histogram. It must be
	// cheap and safe for concurrent use.
	Observe func(wait time.Duration)
}

// DefaultLimiterOptions returns a reasonable starting point: one hash per
// CPU, callers wait up to a second, and at most 16 callers per CPU wait.
// With the default Params a hash takes tens of milliseconds, so a full queue
// drains within about a second.
func DefaultLimiterOptions() LimiterOptions {
	n := runtime.GOMAXPROCS(0)
	return LimiterOptions{Concurrency: n, MaxWait: time.Second, MaxQueue: 16 * n}
}

// Limiter bounds concurrent hash computations (admission control): at most
// Concurrency at once; a caller waits at most MaxWait (and at most ctx) for
// a slot, then gets *BusyError. At most MaxQueue callers may wait at once;
// beyond that they fail at once with *BusyError.
//
// Password hashing is deliberately expensive, so without a bound a burst of
// logins (or an attacker) makes every request slow and can exhaust memory.
// With it, overload turns into quick, cheap refusals that clients can retry,
// while admitted requests keep their normal latency.
//
// Waiters are not served in strict arrival order (a slot goes to whichever
// caller gets it first), which is fine for admission control: every waiter
// is bounded by MaxWait anyway.
//
// A nil *Limiter admits everything at once. A Limiter is safe for
// concurrent use.
type Limiter struct {
	slots      chan struct{} // a token per running computation
	waiting    atomic.Int64  // callers currently waiting for a slot
	maxQueue   int64
	maxWait    time.Duration
	retryAfter time.Duration
	observe    func(time.Duration)
}

// NewLimiter returns a Limiter configured by o.
func NewLimiter(o LimiterOptions) *Limiter {
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	return &Limiter{
		slots:      make(chan struct{}, o.Concurrency),
		maxQueue:   int64(max(o.MaxQueue, 0)),
		maxWait:    max(o.MaxWait, 0),
		retryAfter: retryAfterHint(o.MaxWait),
		observe:    o.Observe,
	}
}

// retryAfterHint rounds maxWait up to whole seconds, at least one: if a
// caller could not get a slot within maxWait, trying again sooner than that
// is unlikely to do better, and Retry-After has one-second resolution.
func retryAfterHint(maxWait time.Duration) time.Duration {
	secs := (maxWait + time.Second - 1) / time.Second
	return max(secs, 1) * time.Second
}

// Acquire waits for a hashing slot. On success the caller must call release
// exactly once when the computation is done (extra calls do nothing). On
// failure err is a *BusyError and release is nil.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	start := time.Now()
	err = l.acquire(ctx)
	if l.observe != nil {
		l.observe(time.Since(start))
	}
	if err != nil {
		return nil, err
	}
	// sync.Once makes release idempotent: a double release would otherwise
	// free someone else's slot and silently raise the concurrency bound.
	var once sync.Once
	return func() { once.Do(func() { <-l.slots }) }, nil
}

func (l *Limiter) acquire(ctx context.Context) error {
	// A request whose client has gone should not start an expensive hash
	// that nobody will read.
	if ctx.Err() != nil {
		return l.busy(context.Cause(ctx))
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.maxWait <= 0 {
		return l.busy(nil)
	}
	// Count ourselves into the queue; refuse at once if it is full, so that
	// waiting goroutines (and the requests behind them) stay bounded too.
	if l.waiting.Add(1) > l.maxQueue {
		l.waiting.Add(-1)
		return l.busy(nil)
	}
	defer l.waiting.Add(-1)

	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return l.busy(context.Cause(ctx))
	case <-timer.C:
		return l.busy(nil)
	}
}

func (l *Limiter) busy(cause error) error {
	return &BusyError{RetryAfter: l.retryAfter, Cause: cause}
}
