package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// LimitBackend is a rate limiter and lockout store under test.
type LimitBackend interface {
	auth.RateLimiter
	auth.LockoutStore
}

// RunLimits runs the rate-limit and lockout contract. open must return a
// fresh, empty backend each time it is called (once per subtest) and
// arrange its cleanup with t.Cleanup.
//
// Backends differ in their clock: the SQL limiter counts fixed windows of
// the now it is passed, the Redis one (GCRA, redis_rate) reads the Redis
// server's clock and ignores it. So the suite never relies on either alone:
// hits that must share a window are passed one now and made well within
// the window in real time, and where a window must pass, the test both
// advances the now it passes and sleeps as long. Both lockout stores use the
// now they are passed.
func RunLimits(t *testing.T, open func(t *testing.T) LimitBackend) {
	t.Helper()
	t.Run("Allow", func(t *testing.T) { testAllow(t, open) })
	t.Run("Lockout", func(t *testing.T) { testLockout(t, open) })
	t.Run("LockoutState", func(t *testing.T) { testLockoutState(t, open) })
}

// allow calls Allow and fails the test on an error.
func allow(t *testing.T, s LimitBackend, key string, limit int, window time.Duration, now time.Time) auth.Decision {
	t.Helper()
	d, err := s.Allow(t.Context(), key, limit, window, now)
	if err != nil {
		t.Fatalf("Allow(%s): %v", key, err)
	}
	return d
}

// exhaust makes limit hits on key, which must all be allowed, then one
// more, which must be the window's first denial.
func exhaust(t *testing.T, s LimitBackend, key string, limit int, window time.Duration, now time.Time) {
	t.Helper()
	for i := range limit {
		if d := allow(t, s, key, limit, window, now); !d.Allowed || d.FirstDenial {
			t.Fatalf("Allow(%s) hit %d of limit %d = %+v, want allowed", key, i+1, limit, d)
		}
	}
	checkDenial(t, allow(t, s, key, limit, window, now), window, true, fmt.Sprintf("Allow(%s) hit %d of limit %d", key, limit+1, limit))
}

func checkDenial(t *testing.T, d auth.Decision, window time.Duration, first bool, what string) {
	t.Helper()
	if d.Allowed {
		t.Fatalf("%s = %+v, want denied", what, d)
	}
	if d.RetryAfter <= 0 || d.RetryAfter > window {
		t.Errorf("%s: RetryAfter = %v, want in (0, %v]", what, d.RetryAfter, window)
	}
	if d.FirstDenial != first {
		t.Errorf("%s: FirstDenial = %v, want %v", what, d.FirstDenial, first)
	}
}

func testAllow(t *testing.T, open func(t *testing.T) LimitBackend) {
	// Long windows: every hit of these tests is in one window by either
	// clock.
	const window = time.Hour
	now := at(17 * time.Minute)

	t.Run("ExactlyLimit", func(t *testing.T) {
		for _, limit := range []int{1, 5} {
			t.Run(fmt.Sprint(limit), func(t *testing.T) {
				s := open(t)
				exhaust(t, s, "k", limit, window, now)
				// Later denials of the window are not first, also with a
				// later now inside the window.
				for i, n := range []time.Time{now, now.Add(time.Second), now.Add(time.Minute)} {
					checkDenial(t, allow(t, s, "k", limit, window, n), window, false, fmt.Sprintf("denial %d after the first", i+1))
				}
			})
		}
	})

	t.Run("KeysIndependent", func(t *testing.T) {
		s := open(t)
		exhaust(t, s, "ip:192.0.2.1", 3, window, now)
		// Another key, also one extending the first, has its own count
		// and its own first denial.
		exhaust(t, s, "ip:192.0.2.10", 3, window, now)
		exhaust(t, s, "ip:192.0.2.1:x", 3, window, now)
		checkDenial(t, allow(t, s, "ip:192.0.2.1", 3, window, now), window, false, "the first key again")
	})

	t.Run("WindowPasses", func(t *testing.T) {
		// A short window, really waited for (see RunLimits).
		const (
			limit = 2
			short = time.Second
			wait  = short + 300*time.Millisecond
		)
		s := open(t)
		exhaust(t, s, "k", limit, short, now)
		time.Sleep(wait)
		later := now.Add(wait)
		exhaust(t, s, "k", limit, short, later)
	})

	t.Run("Concurrent", func(t *testing.T) {
		const (
			n     = 40
			limit = 10
		)
		s := open(t)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			ds    [n]auth.Decision
			errs  [n]error
		)
		for i := range n {
			wg.Go(func() {
				<-start
				ds[i], errs[i] = s.Allow(context.Background(), "hot", limit, window, now)
			})
		}
		close(start)
		wg.Wait()
		allowed, first := 0, 0
		for i := range n {
			if errs[i] != nil {
				t.Errorf("Allow %d: %v", i, errs[i])
				continue
			}
			if ds[i].Allowed {
				allowed++
			} else if ds[i].RetryAfter <= 0 || ds[i].RetryAfter > window {
				t.Errorf("Allow %d: RetryAfter = %v, want in (0, %v]", i, ds[i].RetryAfter, window)
			}
			if ds[i].FirstDenial {
				first++
				if ds[i].Allowed {
					t.Errorf("Allow %d: allowed and FirstDenial", i)
				}
			}
		}
		if allowed != limit {
			t.Errorf("%d of %d concurrent hits allowed with limit %d, want exactly %d", allowed, n, limit, limit)
		}
		if first != 1 {
			t.Errorf("%d concurrent denials were FirstDenial, want exactly 1", first)
		}
	})
}

// attempt calls BeginAttempt and fails the test on an error.
func attempt(t *testing.T, s LimitBackend, key string, threshold int, lockFor time.Duration, now time.Time) (time.Duration, bool) {
	t.Helper()
	locked, newly, err := s.BeginAttempt(t.Context(), key, threshold, lockFor, now)
	if err != nil {
		t.Fatalf("BeginAttempt(%s): %v", key, err)
	}
	return locked, newly
}

// proceed makes n attempts that must all proceed.
func proceed(t *testing.T, s LimitBackend, key string, n, threshold int, lockFor time.Duration, now time.Time) {
	t.Helper()
	for i := range n {
		if locked, newly := attempt(t, s, key, threshold, lockFor, now); locked != 0 || newly {
			t.Fatalf("BeginAttempt(%s) %d of %d = %v, %v; want 0, false", key, i+1, n, locked, newly)
		}
	}
}

// wantLocked makes an attempt that must find the key locked for want
// (within a millisecond: a backend may keep milliseconds).
func wantLocked(t *testing.T, s LimitBackend, key string, threshold int, lockFor time.Duration, now time.Time, want time.Duration, wantNewly bool, what string) {
	t.Helper()
	locked, newly := attempt(t, s, key, threshold, lockFor, now)
	if d := locked - want; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("%s: locked = %v, want %v", what, locked, want)
	}
	if newly != wantNewly {
		t.Errorf("%s: newly = %v, want %v", what, newly, wantNewly)
	}
}

func clearFailures(t *testing.T, s LimitBackend, key string) {
	t.Helper()
	if err := s.ClearFailures(t.Context(), key); err != nil {
		t.Fatalf("ClearFailures(%s): %v", key, err)
	}
}

func testLockout(t *testing.T, open func(t *testing.T) LimitBackend) {
	const (
		threshold = 3
		lockFor   = 15 * time.Minute
	)
	now := at(0)

	// lock makes threshold attempts, then the one that locks.
	lock := func(t *testing.T, s LimitBackend, key string, now time.Time) {
		t.Helper()
		proceed(t, s, key, threshold, threshold, lockFor, now)
		wantLocked(t, s, key, threshold, lockFor, now, lockFor, true, fmt.Sprintf("attempt %d", threshold+1))
	}

	t.Run("Threshold", func(t *testing.T) {
		s := open(t)
		lock(t, s, "k", now)
		wantLocked(t, s, "k", threshold, lockFor, now, lockFor, false, fmt.Sprintf("attempt %d", threshold+2))
		// Attempts while locked do not extend the lock.
		wantLocked(t, s, "k", threshold, lockFor, now.Add(time.Minute), lockFor-time.Minute, false, "attempt a minute later")
		wantLocked(t, s, "k", threshold, lockFor, now.Add(lockFor-time.Second), time.Second, false, "attempt a second before the end")
	})

	t.Run("ThresholdOne", func(t *testing.T) {
		s := open(t)
		proceed(t, s, "k", 1, 1, lockFor, now)
		wantLocked(t, s, "k", 1, lockFor, now, lockFor, true, "attempt 2")
	})

	t.Run("ClearLiftsLock", func(t *testing.T) {
		s := open(t)
		lock(t, s, "k", now)
		clearFailures(t, s, "k")
		// Lifted, and the count starts over: threshold attempts, then a
		// new lock.
		lock(t, s, "k", now.Add(time.Minute))
	})

	t.Run("ClearResetsCount", func(t *testing.T) {
		s := open(t)
		proceed(t, s, "k", 2, threshold, lockFor, now)
		clearFailures(t, s, "k") // a successful login
		proceed(t, s, "k", threshold, threshold, lockFor, now.Add(time.Second))
		wantLocked(t, s, "k", threshold, lockFor, now.Add(time.Second), lockFor, true, "attempt after the reset's threshold")
	})

	t.Run("ClearUnknownKey", func(t *testing.T) {
		s := open(t)
		clearFailures(t, s, "never-seen")
	})

	t.Run("KeysIndependent", func(t *testing.T) {
		s := open(t)
		lock(t, s, "a", now)
		proceed(t, s, "b", 2, threshold, lockFor, now)
		lock(t, s, "a:suffix", now)
		// b still has one attempt left, a is still locked.
		proceed(t, s, "b", 1, threshold, lockFor, now)
		wantLocked(t, s, "a", threshold, lockFor, now, lockFor, false, "the locked key again")
		// Clearing one key leaves the others alone.
		clearFailures(t, s, "b")
		wantLocked(t, s, "a", threshold, lockFor, now, lockFor, false, "the locked key after clearing another")
		wantLocked(t, s, "a:suffix", threshold, lockFor, now, lockFor, false, "the other locked key after clearing another")
	})

	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		lock(t, s, "k", now)
		wantLocked(t, s, "k", threshold, lockFor, now.Add(lockFor-time.Millisecond), time.Millisecond, false, "just before the end")
		// After the lock the account has threshold fresh attempts.
		end := now.Add(lockFor + time.Millisecond)
		lock(t, s, "k", end)
		wantLocked(t, s, "k", threshold, lockFor, end.Add(time.Second), lockFor-time.Second, false, "in the second lock")
	})

	t.Run("Concurrent", func(t *testing.T) {
		const n = 20
		s := open(t)
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			locked [n]time.Duration
			newly  [n]bool
			errs   [n]error
		)
		for i := range n {
			wg.Go(func() {
				<-start
				locked[i], newly[i], errs[i] = s.BeginAttempt(context.Background(), "hot", threshold, lockFor, now)
			})
		}
		close(start)
		wg.Wait()
		proceeded, locks := 0, 0
		for i := range n {
			if errs[i] != nil {
				t.Errorf("BeginAttempt %d: %v", i, errs[i])
				continue
			}
			switch {
			case locked[i] == 0:
				proceeded++
				if newly[i] {
					t.Errorf("BeginAttempt %d: newly locked but locked = 0", i)
				}
			case locked[i] < 0 || locked[i] > lockFor:
				t.Errorf("BeginAttempt %d: locked = %v, want in (0, %v]", i, locked[i], lockFor)
			}
			if newly[i] {
				locks++
			}
		}
		if proceeded != threshold {
			t.Errorf("%d of %d concurrent attempts proceeded with threshold %d, want exactly %d", proceeded, n, threshold, threshold)
		}
		if locks != 1 {
			t.Errorf("%d concurrent attempts reported newly locking, want exactly 1", locks)
		}
	})
}
