package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/mail"
)

// MailJobBackend is a durable mail queue under test: auth.MailQueue, where
// requests put jobs, and mail.JobStore, where the workers of every node
// lease, finish, retry and give up jobs.
type MailJobBackend interface {
	auth.MailQueue
	mail.JobStore
}

// RunMailJobs runs the mail queue contract. open must return a fresh,
// empty backend each time it is called (once per subtest) and arrange its
// cleanup with t.Cleanup.
func RunMailJobs(t *testing.T, open func(t *testing.T) MailJobBackend) {
	t.Helper()
	t.Run("EnqueueAndClaim", func(t *testing.T) { testMailRoundTrip(t, open) })
	t.Run("NotDueYet", func(t *testing.T) { testMailNotDue(t, open) })
	t.Run("OldestDueFirst", func(t *testing.T) { testMailOrder(t, open) })
	t.Run("LeaseExpiry", func(t *testing.T) { testMailLease(t, open) })
	t.Run("Finish", func(t *testing.T) { testMailFinish(t, open) })
	t.Run("Retry", func(t *testing.T) { testMailRetry(t, open) })
	t.Run("Fail", func(t *testing.T) { testMailFail(t, open) })
	t.Run("ConcurrentClaimOfOneJob", func(t *testing.T) { testMailConcurrentClaim(t, open) })
	t.Run("ConcurrentWorkersDrain", func(t *testing.T) { testMailConcurrentDrain(t, open) })
	t.Run("ConcurrentWorkersEachGetOne", func(t *testing.T) { testMailConcurrentBusy(t, open) })
}

// lease is the workers' lease in this suite.
const lease = 2 * time.Minute

func newMailJob(id, kind string, created time.Time) *auth.MailJob {
	j := &auth.MailJob{ID: id, Kind: kind, CreatedAt: created}
	switch kind {
	case auth.MailVerify:
		j.UserID = "u-" + id
	default:
		j.To = "zoë+" + id + "@example.com"
	}
	return j
}

func enqueue(t *testing.T, s MailJobBackend, j *auth.MailJob) *auth.MailJob {
	t.Helper()
	in := *j
	if err := s.Enqueue(t.Context(), &in); err != nil {
		t.Fatalf("Enqueue(%s): %v", j.ID, err)
	}
	return j
}

// claim claims at now and requires job want, at its attempt'th attempt.
func claim(t *testing.T, s MailJobBackend, now time.Time, want *auth.MailJob, attempt int) {
	t.Helper()
	got, err := s.ClaimMailJob(t.Context(), now, lease)
	if err != nil {
		t.Fatalf("ClaimMailJob at %v: %v; want job %s", now, err, want.ID)
	}
	checkMailJob(t, got, want, attempt)
}

func checkMailJob(t *testing.T, got, want *auth.MailJob, attempt int) {
	t.Helper()
	if got == nil {
		t.Fatalf("ClaimMailJob: nil job, nil error; want job %s", want.ID)
	}
	if got.ID != want.ID || got.Kind != want.Kind || got.To != want.To || got.UserID != want.UserID {
		t.Errorf("job = {ID %q, Kind %q, To %q, UserID %q}, want {%q, %q, %q, %q}", got.ID, got.Kind, got.To, got.UserID, want.ID, want.Kind, want.To, want.UserID)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("job %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if got.Attempts != attempt {
		t.Errorf("job %s: Attempts = %d, want %d", want.ID, got.Attempts, attempt)
	}
}

func wantNoJob(t *testing.T, s MailJobBackend, now time.Time, why string) {
	t.Helper()
	got, err := s.ClaimMailJob(t.Context(), now, lease)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ClaimMailJob %s = %+v, %v; want ErrNotFound", why, got, err)
	}
}

func testMailRoundTrip(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	wantNoJob(t, s, at(0), "of an empty queue")
	for i, kind := range []string{auth.MailReset, auth.MailVerify, auth.MailNotice} {
		t.Run(kind, func(t *testing.T) {
			created := at(time.Duration(i)*time.Hour + 7*time.Microsecond)
			j := enqueue(t, s, newMailJob("j-"+kind, kind, created))
			// Due as soon as it is queued; leased by the claim.
			claim(t, s, created, j, 1)
			wantNoJob(t, s, created, "while its only job is leased")
			if err := s.FinishMailJob(t.Context(), j.ID, created.Add(time.Second)); err != nil {
				t.Fatalf("FinishMailJob: %v", err)
			}
		})
	}
}

func testMailNotDue(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	j := enqueue(t, s, newMailJob("j-1", auth.MailReset, at(time.Hour)))
	wantNoJob(t, s, at(time.Hour-time.Microsecond), "before the job was queued")
	claim(t, s, at(time.Hour), j, 1)
}

func testMailOrder(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	a := newMailJob("j-a", auth.MailReset, at(3*time.Second))
	b := newMailJob("j-b", auth.MailVerify, at(time.Second+time.Microsecond))
	c := newMailJob("j-c", auth.MailNotice, at(time.Second)) // 1µs older than b
	d := newMailJob("j-d", auth.MailReset, at(2*time.Second))
	for _, j := range []*auth.MailJob{d, a, c, b} { // neither time nor id order
		enqueue(t, s, j)
	}
	now := at(time.Minute)
	for _, j := range []*auth.MailJob{c, b, d, a} {
		claim(t, s, now, j, 1)
	}
	wantNoJob(t, s, now, "once every job is leased")
}

func testMailLease(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	j := enqueue(t, s, newMailJob("j-1", auth.MailReset, at(0)))
	now := at(time.Minute)
	claim(t, s, now, j, 1)
	// The worker died mid-send: the job is due again when its lease ends,
	// not before.
	wantNoJob(t, s, now.Add(lease-time.Microsecond), "before the lease ends")
	claim(t, s, now.Add(lease), j, 2)
	wantNoJob(t, s, now.Add(lease), "while the second lease runs")
	claim(t, s, now.Add(3*lease), j, 3)
}

func testMailFinish(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	j := enqueue(t, s, newMailJob("j-1", auth.MailReset, at(0)))
	other := enqueue(t, s, newMailJob("j-2", auth.MailVerify, at(time.Second)))
	now := at(time.Minute)
	claim(t, s, now, j, 1)
	if err := s.FinishMailJob(t.Context(), j.ID, now.Add(time.Second)); err != nil {
		t.Fatalf("FinishMailJob: %v", err)
	}
	// Only the other job is ever claimed again.
	claim(t, s, now.Add(time.Second), other, 1)
	year := now.Add(365 * 24 * time.Hour)
	claim(t, s, year, other, 2)
	wantNoJob(t, s, year, "a year after the job was finished")
}

func testMailRetry(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	j := enqueue(t, s, newMailJob("j-1", auth.MailVerify, at(0)))
	now := at(time.Minute)
	claim(t, s, now, j, 1)
	next := now.Add(4*time.Second + 3*time.Microsecond)
	if err := s.RetryMailJob(t.Context(), j.ID, next, "smtp: 451 4.7.1 try again later"); err != nil {
		t.Fatalf("RetryMailJob: %v", err)
	}
	wantNoJob(t, s, next.Add(-time.Microsecond), "before its retry is due")
	// Due at next although the first lease has not ended: a retry
	// releases it.
	claim(t, s, next, j, 2)

	// A retry due at once is claimed at once.
	if err := s.RetryMailJob(t.Context(), j.ID, next, "again"); err != nil {
		t.Fatalf("second RetryMailJob: %v", err)
	}
	claim(t, s, next, j, 3)
}

func testMailFail(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	j := enqueue(t, s, newMailJob("j-1", auth.MailReset, at(0)))
	other := enqueue(t, s, newMailJob("j-2", auth.MailNotice, at(time.Second)))
	now := at(time.Minute)
	claim(t, s, now, j, 1)
	if err := s.FailMailJob(t.Context(), j.ID, now.Add(time.Second), "smtp: 550 5.1.1 no such user"); err != nil {
		t.Fatalf("FailMailJob: %v", err)
	}
	claim(t, s, now.Add(time.Second), other, 1)
	year := now.Add(365 * 24 * time.Hour)
	claim(t, s, year, other, 2)
	wantNoJob(t, s, year, "a year after the job was given up")
}

// testMailConcurrentClaim: workers of several nodes polling at once lease
// one job exactly once. Several rounds, one new job each (the earlier ones
// stay leased), give a lost race more chances to show.
func testMailConcurrentClaim(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	now := at(time.Minute)
	for round := range 8 {
		j := enqueue(t, s, newMailJob(fmt.Sprintf("j-%d", round), auth.MailReset, at(time.Duration(round)*time.Second)))
		var (
			got  [racers]*auth.MailJob
			errs = make([]error, racers)
		)
		race(racers, func(i int) {
			got[i], errs[i] = s.ClaimMailJob(t.Context(), now, lease)
		})
		w := oneWinner(t, fmt.Sprintf("round %d: ClaimMailJob of the only due job", round), errs, auth.ErrNotFound)
		checkMailJob(t, got[w], j, 1)
	}
	wantNoJob(t, s, now, "after the races")
}

// testMailConcurrentBusy: as many workers as due jobs, claiming at once,
// each get one (none comes back empty while jobs are due and unleased):
// a worker that loses the race for the oldest job takes the next.
func testMailConcurrentBusy(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	const n = 8
	for round := range 4 {
		var want []string
		for i := range n {
			j := enqueue(t, s, newMailJob(fmt.Sprintf("r%d-j%d", round, i), auth.MailReset, at(time.Duration(i)*time.Second)))
			want = append(want, j.ID)
		}
		var (
			got  [n]*auth.MailJob
			errs [n]error
		)
		race(n, func(i int) { got[i], errs[i] = s.ClaimMailJob(t.Context(), at(time.Minute), lease) })
		var ids []string
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: worker %d of %d claiming %d due jobs: %v", round, i, n, n, err)
			}
			ids = append(ids, got[i].ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Fatalf("round %d: claimed %q, want each of %q once", round, ids, want)
		}
	}
}

// testMailConcurrentDrain: workers claiming until the queue is empty
// lease every job exactly once between them.
func testMailConcurrentDrain(t *testing.T, open func(t *testing.T) MailJobBackend) {
	s := open(t)
	const jobs, workers = 48, 8
	var want []string
	for i := range jobs {
		j := enqueue(t, s, newMailJob(fmt.Sprintf("j-%02d", i), auth.MailReset, at(time.Duration(i%5)*time.Second)))
		want = append(want, j.ID)
	}
	now := at(time.Minute)
	var (
		mu      sync.Mutex
		claimed []string
		errs    = make([]error, workers)
	)
	race(workers, func(w int) {
		for {
			j, err := s.ClaimMailJob(t.Context(), now, lease)
			if errors.Is(err, auth.ErrNotFound) {
				return
			}
			if err != nil {
				errs[w] = err
				return
			}
			mu.Lock()
			claimed = append(claimed, j.ID)
			mu.Unlock()
		}
	})
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: ClaimMailJob: %v", w, err)
		}
	}
	slices.Sort(claimed)
	if !slices.Equal(claimed, want) {
		t.Errorf("jobs claimed by %d concurrent workers = %q, want each of %q once", workers, claimed, want)
	}
}
