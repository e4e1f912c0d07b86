package password

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustAcquire(t *testing.T, l *Limiter) func() {
	t.Helper()
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return release
}

func assertBusy(t *testing.T, err error) *BusyError {
	t.Helper()
	var busy *BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("error %v (%T), want *BusyError", err, err)
	}
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("errors.Is(%v, ErrBusy) = false", err)
	}
	if busy.RetryAfter <= 0 {
		t.Fatalf("RetryAfter = %v, want > 0", busy.RetryAfter)
	}
	return busy
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline; the tests use it to know a goroutine is parked in Acquire.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// acquireAsync starts Acquire in a goroutine and returns a channel with its
// result.
func acquireAsync(ctx context.Context, l *Limiter) <-chan error {
	done := make(chan error, 1)
	go func() {
		release, err := l.Acquire(ctx)
		if err == nil {
			release()
		}
		done <- err
	}()
	return done
}

func TestLimiterBusyAfterMaxWait(t *testing.T) {
	const maxWait = 50 * time.Millisecond
	l := NewLimiter(LimiterOptions{Concurrency: 1, MaxWait: maxWait, MaxQueue: 10})
	defer mustAcquire(t, l)()

	start := time.Now()
	release, err := l.Acquire(context.Background())
	waited := time.Since(start)
	if release != nil {
		t.Error("refused Acquire returned a non-nil release")
	}
	busy := assertBusy(t, err)
	if busy.Cause != nil {
		t.Errorf("Cause = %v, want nil for a timeout", busy.Cause)
	}
	if waited < maxWait {
		t.Errorf("refused after %v, want at least MaxWait %v", waited, maxWait)
	}
	if busy.RetryAfter != time.Second {
		t.Errorf("RetryAfter = %v, want MaxWait rounded up to 1s", busy.RetryAfter)
	}
}

func TestLimiterNoWait(t *testing.T) {
	tests := []struct {
		name string
		opts LimiterOptions
	}{
		{"zero MaxWait", LimiterOptions{Concurrency: 1, MaxQueue: 10}},
		{"zero MaxQueue", LimiterOptions{Concurrency: 1, MaxWait: 10 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(tt.opts)
			defer mustAcquire(t, l)()
			start := time.Now()
			_, err := l.Acquire(context.Background())
			assertBusy(t, err)
			if d := time.Since(start); d > time.Second {
				t.Fatalf("refused after %v, want at once", d)
			}
		})
	}
}

func TestLimiterQueueOverflow(t *testing.T) {
	l := NewLimiter(LimiterOptions{Concurrency: 1, MaxWait: 10 * time.Second, MaxQueue: 2})
	release := mustAcquire(t, l)

	waiters := []<-chan error{acquireAsync(context.Background(), l), acquireAsync(context.Background(), l)}
	waitFor(t, "two waiters", func() bool { return l.waiting.Load() == 2 })

	start := time.Now()
	_, err := l.Acquire(context.Background())
	assertBusy(t, err)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("overflowing caller refused after %v, want at once", d)
	}

	// The refused caller did not take a queue place, and releasing lets the
	// waiters in one after another.
	if n := l.waiting.Load(); n != 2 {
		t.Fatalf("waiting = %d after overflow, want 2", n)
	}
	release()
	for i, w := range waiters {
		if err := <-w; err != nil {
			t.Fatalf("waiter %d: %v", i, err)
		}
	}
	if n := l.waiting.Load(); n != 0 {
		t.Fatalf("waiting = %d at the end, want 0", n)
	}
}

func TestLimiterReleaseAdmitsWaiter(t *testing.T) {
	l := NewLimiter(LimiterOptions{Concurrency: 1, MaxWait: 10 * time.Second, MaxQueue: 1})
	release := mustAcquire(t, l)
	waiter := acquireAsync(context.Background(), l)
	waitFor(t, "the waiter", func() bool { return l.waiting.Load() == 1 })
	select {
	case err := <-waiter:
		t.Fatalf("waiter finished (%v) while the slot was held", err)
	default:
	}
	release()
	select {
	case err := <-waiter:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not admitted after release")
	}
}

func TestLimiterReleaseIdempotent(t *testing.T) {
	l := NewLimiter(LimiterOptions{Concurrency: 1})
	release := mustAcquire(t, l)
	release()
	release() // must not free a second slot

	defer mustAcquire(t, l)()
	_, err := l.Acquire(context.Background())
	assertBusy(t, err)
}

func TestLimiterBoundsConcurrency(t *testing.T) {
	const concurrency, callers = 3, 30
	l := NewLimiter(LimiterOptions{Concurrency: concurrency, MaxWait: 10 * time.Second, MaxQueue: callers})
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			release, err := l.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
		})
	}
	wg.Wait()
	if p := peak.Load(); p > concurrency || p < 1 {
		t.Fatalf("peak concurrency %d, want 1..%d", p, concurrency)
	}
}

func TestLimiterContext(t *testing.T) {
	tests := []struct {
		name      string
		ctx       func() (context.Context, context.CancelFunc)
		cancel    bool // cancel while waiting
		wantCause error
	}{
		{"canceled while waiting", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, true, context.Canceled},
		{"deadline while waiting", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(LimiterOptions{Concurrency: 1, MaxWait: 10 * time.Second, MaxQueue: 1})
			defer mustAcquire(t, l)()
			ctx, cancel := tt.ctx()
			defer cancel()
			waiter := acquireAsync(ctx, l)
			waitFor(t, "the waiter", func() bool { return l.waiting.Load() == 1 })
			if tt.cancel {
				cancel()
			}
			select {
			case err := <-waiter:
				busy := assertBusy(t, err)
				if !errors.Is(err, tt.wantCause) || !errors.Is(busy.Cause, tt.wantCause) {
					t.Fatalf("error %v, want cause %v", err, tt.wantCause)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("waiter did not give up when its context ended")
			}
			if n := l.waiting.Load(); n != 0 {
				t.Fatalf("waiting = %d after the waiter left, want 0", n)
			}
		})
	}
}

func TestLimiterCanceledBeforeAcquire(t *testing.T) {
	l := NewLimiter(LimiterOptions{Concurrency: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Even with a free slot, a dead request is not admitted.
	_, err := l.Acquire(ctx)
	assertBusy(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want it to wrap context.Canceled", err)
	}
	mustAcquire(t, l)() // the slot is still free
}

func TestLimiterObserve(t *testing.T) {
	const maxWait = 30 * time.Millisecond
	var mu sync.Mutex
	var waits []time.Duration
	l := NewLimiter(LimiterOptions{Concurrency: 1, MaxWait: maxWait, MaxQueue: 1, Observe: func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
	}})

	release := mustAcquire(t, l) // admitted at once
	_, err := l.Acquire(context.Background())
	assertBusy(t, err) // refused after waiting MaxWait
	release()

	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 2 {
		t.Fatalf("Observe called %d times, want 2 (one admitted, one refused)", len(waits))
	}
	if waits[0] < 0 || waits[0] >= maxWait {
		t.Errorf("admitted wait %v, want in [0, %v)", waits[0], maxWait)
	}
	if waits[1] < maxWait {
		t.Errorf("refused wait %v, want >= %v", waits[1], maxWait)
	}
}

func TestLimiterDefaults(t *testing.T) {
	l := NewLimiter(LimiterOptions{})
	if cap(l.slots) < 1 {
		t.Fatalf("zero Concurrency gave %d slots, want GOMAXPROCS", cap(l.slots))
	}
	o := DefaultLimiterOptions()
	if o.Concurrency < 1 || o.MaxWait <= 0 || o.MaxQueue < 1 {
		t.Fatalf("DefaultLimiterOptions() = %+v, want positive values", o)
	}
}

func TestRetryAfterHint(t *testing.T) {
	tests := []struct {
		name    string
		maxWait time.Duration
		want    time.Duration
	}{
		{"zero", 0, time.Second},
		{"sub-second", 50 * time.Millisecond, time.Second},
		{"one second", time.Second, time.Second},
		{"rounds up", 1500 * time.Millisecond, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfterHint(tt.maxWait); got != tt.want {
				t.Fatalf("retryAfterHint(%v) = %v, want %v", tt.maxWait, got, tt.want)
			}
		})
	}
}

func TestNilLimiterAdmits(t *testing.T) {
	var l *Limiter
	release, err := l.Acquire(context.Background())
	if err != nil || release == nil {
		t.Fatalf("nil Limiter Acquire: release nil %v, error %v; want a release func and nil", release == nil, err)
	}
	release()
}

func TestBusyErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *BusyError
		want string
	}{
		{"capacity", &BusyError{RetryAfter: time.Second}, "password: hashing capacity exhausted (retry after 1s)"},
		{"context", &BusyError{RetryAfter: time.Second, Cause: context.Canceled}, "password: hashing capacity exhausted: gave up waiting: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
