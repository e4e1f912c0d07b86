package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// AdminStatsBackend is the admin console's counting store under test
// (auth.AdminStatsStore), with the writes that make what it counts:
// accounts, TOTP authenticators, audit events, lockouts, mail jobs and
// webhook deliveries.
type AdminStatsBackend interface {
	auth.AdminStatsStore
	userMaker
	AppendAudit(ctx context.Context, e *auth.AuditEvent) error
	PutPendingTOTP(ctx context.Context, a *auth.TOTPAuthenticator) error
	ConfirmTOTP(ctx context.Context, userID, id string, step int64, recoveryHashes []string, now time.Time) error
	auth.LockoutStore
	auth.MailQueue
	ClaimMailJob(ctx context.Context, now time.Time, lease time.Duration) (*auth.MailJob, error)
	FinishMailJob(ctx context.Context, id string, now time.Time) error
	RetryMailJob(ctx context.Context, id string, next time.Time, errText string) error
	FailMailJob(ctx context.Context, id string, now time.Time, errText string) error
	CreateWebhookEndpoint(ctx context.Context, e *auth.WebhookEndpoint) error
	DisableWebhookEndpoint(ctx context.Context, id, reason string, now time.Time) (bool, error)
	EnqueueWebhooks(ctx context.Context, msgs []*auth.WebhookMessage) error
	ClaimWebhookDelivery(ctx context.Context, now time.Time, lease time.Duration) (*auth.WebhookDelivery, error)
	RecordWebhookAttempt(ctx context.Context, id string, a *auth.WebhookAttempt, state string, next time.Time) error
}

// RunAdminStats runs the contract of the console's overview counts (SPEC
// §17). open must return a fresh, empty backend each time it is called
// (once per subtest) and arrange its cleanup with t.Cleanup. Nothing in it
// depends on the wall clock: the query names every instant.
func RunAdminStats(t *testing.T, open func(t *testing.T) AdminStatsBackend) {
	t.Helper()
	t.Run("Empty", func(t *testing.T) { testAdminStatsEmpty(t, open) })
	t.Run("Counts", func(t *testing.T) { testAdminStatsCounts(t, open) })
}

// statsNow is the instant the suite asks about; statsQuery asks with the
// overview's windows and a 15-minute lockout.
var statsNow = at(60 * 24 * time.Hour)

func statsQuery() auth.AdminStatsQuery {
	return auth.AdminStatsQuery{Now: statsNow, NewSince: statsNow.Add(-auth.OverviewNewUsersWindow),
		SignInsSince: statsNow.Add(-auth.OverviewSignInWindow), LocksSince: statsNow.Add(-15 * time.Minute),
		FailuresSince: statsNow.Add(-auth.OverviewFailureWindow)}
}

func adminStats(t *testing.T, s AdminStatsBackend) auth.AdminStats {
	t.Helper()
	st, err := s.AdminStats(t.Context(), statsQuery())
	if err != nil {
		t.Fatalf("AdminStats: %v", err)
	}
	return *st
}

func testAdminStatsEmpty(t *testing.T, open func(t *testing.T) AdminStatsBackend) {
	if got := adminStats(t, open(t)); got != (auth.AdminStats{}) {
		t.Errorf("AdminStats of an empty store = %+v, want all zero", got)
	}
}

func testAdminStatsCounts(t *testing.T, open func(t *testing.T) AdminStatsBackend) {
	s := open(t)
	ctx := t.Context()
	q := statsQuery()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Accounts: created on both sides of NewSince (its instant counts as
	// new), verified or not, disabled or not.
	for _, u := range []struct {
		id                 string
		created            time.Time
		verified, disabled bool
	}{
		{"u-old", statsNow.Add(-30 * 24 * time.Hour), true, false},
		{"u-new", statsNow.Add(-time.Hour), false, false},
		{"u-new-edge", q.NewSince, true, false},
		{"u-just-old", q.NewSince.Add(-time.Microsecond), true, false},
		{"u-disabled", statsNow.Add(-10 * 24 * time.Hour), true, true},
		{"u-unverified-disabled", statsNow.Add(-8 * 24 * time.Hour), false, true},
	} {
		must("CreateUser "+u.id, s.CreateUser(ctx, &auth.User{ID: u.id, Email: u.id + "@example.com", EmailVerified: u.verified,
			Disabled: u.disabled, Roles: []string{"user"}, CreatedAt: u.created, UpdatedAt: u.created}))
	}
	// TOTP: two confirmed, one only pending (not counted).
	for i, id := range []string{"u-old", "u-disabled", "u-new"} {
		a := pendingTOTP(fmt.Sprintf("totp-%d", i), id, at(0))
		must("PutPendingTOTP", s.PutPendingTOTP(ctx, a))
		if id != "u-new" {
			must("ConfirmTOTP", s.ConfirmTOTP(ctx, id, a.ID, 100, nil, at(time.Minute)))
		}
	}

	// Audit: sign-ins on both sides of SignInsSince, lockouts begun on
	// both sides of LocksSince, and an event of another type.
	n := 0
	event := func(typ string, when time.Time) {
		t.Helper()
		n++
		must("AppendAudit", s.AppendAudit(ctx, &auth.AuditEvent{ID: fmt.Sprintf("ev-%03d", n), Type: typ, At: when, UserID: "u-old"}))
	}
	event(auth.EventLoginSucceeded, statsNow.Add(-time.Hour))
	event(auth.EventLoginSucceeded, statsNow.Add(-23*time.Hour))
	event(auth.EventLoginSucceeded, q.SignInsSince)
	event(auth.EventLoginSucceeded, q.SignInsSince.Add(-time.Microsecond))
	event(auth.EventLoginFailed, statsNow.Add(-2*time.Hour))
	event(auth.EventLoginFailed, statsNow.Add(-25*time.Hour))
	event(auth.EventAccountLocked, statsNow.Add(-5*time.Minute))
	event(auth.EventAccountLocked, statsNow.Add(-20*time.Minute))
	event(auth.EventUserRegistered, statsNow.Add(-time.Minute))

	// Lockouts: one lasting beyond now, one over, one ending exactly now
	// (over), and a key with a failure but no lock.
	lock := func(key string, at time.Time) {
		t.Helper()
		for range 2 { // threshold 1: the second attempt locks
			_, _, err := s.BeginAttempt(ctx, key, 1, 15*time.Minute, at)
			must("BeginAttempt "+key, err)
		}
	}
	lock("lock-live", statsNow.Add(-5*time.Minute))
	lock("lock-over", statsNow.Add(-time.Hour))
	lock("lock-ends-now", statsNow.Add(-15*time.Minute))
	_, _, err := s.BeginAttempt(ctx, "one-failure", 1, 15*time.Minute, statsNow.Add(-time.Minute))
	must("BeginAttempt", err)

	// Mail: each job enqueued and handled before the next, so that the
	// claim takes it.
	job := func(id string, created time.Time, then func(id string)) {
		t.Helper()
		must("Enqueue "+id, s.Enqueue(ctx, &auth.MailJob{ID: id, Kind: auth.MailReset, To: id + "@example.com", CreatedAt: created}))
		if then == nil {
			return
		}
		j, err := s.ClaimMailJob(ctx, created, lease)
		if err != nil || j.ID != id {
			t.Fatalf("ClaimMailJob = %v, %v; want %s", j, err, id)
		}
		then(id)
	}
	job("mail-sent", statsNow.Add(-2*time.Hour), func(id string) { must("Finish", s.FinishMailJob(ctx, id, statsNow.Add(-2*time.Hour))) })
	job("mail-failed", statsNow.Add(-2*24*time.Hour), func(id string) {
		must("Fail", s.FailMailJob(ctx, id, statsNow.Add(-24*time.Hour), "550 no"))
	})
	job("mail-failed-long-ago", statsNow.Add(-9*24*time.Hour), func(id string) {
		must("Fail", s.FailMailJob(ctx, id, q.FailuresSince.Add(-time.Microsecond), "550 no"))
	})
	job("mail-retrying", statsNow.Add(-time.Hour), func(id string) {
		must("Retry", s.RetryMailJob(ctx, id, statsNow.Add(time.Minute), "421 later"))
	})
	job("mail-due", statsNow.Add(-time.Minute), nil)

	// Webhooks: deliveries failed on both sides of FailuresSince, one
	// delivered, one pending; one endpoint disabled.
	for _, id := range []string{"ep-on", "ep-off"} {
		must("CreateWebhookEndpoint", s.CreateWebhookEndpoint(ctx, &auth.WebhookEndpoint{ID: id, URL: "https://example.com/" + id,
			Events: []string{"*"}, Enabled: true, Secret: []byte("sealed"), CreatedAt: at(0), UpdatedAt: at(0)}))
	}
	if ok, err := s.DisableWebhookEndpoint(ctx, "ep-off", "gone", at(time.Hour)); err != nil || !ok {
		t.Fatalf("DisableWebhookEndpoint = %v, %v", ok, err)
	}
	delivery := func(n int, created time.Time, state string, finished time.Time) {
		t.Helper()
		m := &auth.WebhookMessage{ID: msgID(n), EndpointID: "ep-on", Type: "user.created", Payload: []byte(`{}`), CreatedAt: created}
		must("EnqueueWebhooks", s.EnqueueWebhooks(ctx, []*auth.WebhookMessage{m}))
		if state == auth.DeliveryPending {
			return
		}
		d, err := s.ClaimWebhookDelivery(ctx, created, lease)
		if err != nil || d.ID != m.ID {
			t.Fatalf("ClaimWebhookDelivery = %v, %v; want %s", d, err, m.ID)
		}
		must("RecordWebhookAttempt", s.RecordWebhookAttempt(ctx, m.ID, &auth.WebhookAttempt{At: finished, StatusCode: 500}, state, time.Time{}))
	}
	delivery(1, statsNow.Add(-3*24*time.Hour), auth.DeliveryFailed, statsNow.Add(-24*time.Hour))
	delivery(2, statsNow.Add(-10*24*time.Hour), auth.DeliveryFailed, q.FailuresSince.Add(-time.Microsecond))
	delivery(3, statsNow.Add(-2*time.Hour), auth.DeliveryDelivered, statsNow.Add(-time.Hour))
	delivery(4, statsNow.Add(-time.Minute), auth.DeliveryPending, time.Time{})

	want := auth.AdminStats{
		Users: 6, UsersNew: 2, UsersUnverified: 2, UsersDisabled: 2, UsersTOTP: 2,
		SignInsSucceeded: 3, SignInsFailed: 1,
		LockedNow: 1, LocksBegun: 1,
		MailQueued: 2, MailFailed: 1,
		WebhooksFailed: 1, WebhookEndpointsDisabled: 1,
	}
	if got := adminStats(t, s); got != want {
		t.Errorf("AdminStats =\n%+v\nwant\n%+v", got, want)
	}
}
