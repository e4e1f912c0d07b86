package auth_test

import (
	"context"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// elsewhereLockouts keeps lockouts in a store of its own, as Redis does:
// the counting store does not hold them.
type elsewhereLockouts struct{ auth.LockoutStore }

// The overview counts with the service's clock, and says how it knows the
// lockouts: counted when the counting store keeps them, only the recent
// account.locked events when they are kept elsewhere (Redis), off without
// lockout.
func TestAdminOverview(t *testing.T) {
	ctx := context.Background()
	limits := auth.Limits{LockoutThreshold: 2, LockoutDuration: 15 * time.Minute}
	for _, tc := range []struct {
		name       string
		options    func(h *harness, o *auth.Options)
		want       string
		lockedNow  int64
		locksBegun int64
	}{
		{"Counted", func(h *harness, o *auth.Options) {
			o.Limits, o.Stores.Limiter, o.Stores.Lockout = limits, h.db, h.db
		}, auth.LockoutsCounted, 1, 1},
		{"Elsewhere", func(h *harness, o *auth.Options) {
			o.Limits, o.Stores.Limiter, o.Stores.Lockout = limits, h.db, elsewhereLockouts{h.db}
		}, auth.LockoutsElsewhere, 1, 1},
		{"Off", nil, auth.LockoutsOff, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessWith(t, tc.options)
			h.register(t, "ada@example.com", goodPass)
			h.register(t, "bob@example.com", goodPass)
			h.grant(t, "ada@example.com", goodPass, "")
			for range 3 { // two failures, then (with lockout) the lock
				_, _ = h.svc.PasswordGrant(ctx, "bob@example.com", "wrong password!", "", "client-web", meta)
			}
			o, err := h.svc.AdminOverview(ctx)
			if err != nil {
				t.Fatalf("AdminOverview: %v", err)
			}
			if o.Lockout != tc.want {
				t.Errorf("Lockout = %q, want %q", o.Lockout, tc.want)
			}
			failed := int64(3)
			if tc.want != auth.LockoutsOff {
				failed = 2 // the third attempt met the lock before the password
			}
			if o.Users != 2 || o.UsersNew != 2 || o.UsersUnverified != 2 || o.SignInsSucceeded != 1 || o.SignInsFailed != failed {
				t.Errorf("overview = %+v, want 2 users, both new and unverified, 1 sign-in, %d failures", o.AdminStats, failed)
			}
			if o.LocksBegun != tc.locksBegun || (tc.want == auth.LockoutsCounted && o.LockedNow != tc.lockedNow) {
				t.Errorf("LockedNow %d, LocksBegun %d; want %d, %d", o.LockedNow, o.LocksBegun, tc.lockedNow, tc.locksBegun)
			}
			if !o.At.Equal(t0) || o.NewUsersWindow != auth.OverviewNewUsersWindow || o.SignInWindow != 24*time.Hour {
				t.Errorf("At %v, windows %v %v", o.At, o.NewUsersWindow, o.SignInWindow)
			}
			// Eight days on: nothing is new or recent, the lock is over.
			h.clock.Advance(8 * 24 * time.Hour)
			o, err = h.svc.AdminOverview(ctx)
			if err != nil {
				t.Fatalf("AdminOverview: %v", err)
			}
			if o.Users != 2 || o.UsersNew != 0 || o.SignInsSucceeded != 0 || o.SignInsFailed != 0 || o.LockedNow != 0 || o.LocksBegun != 0 {
				t.Errorf("overview eight days later = %+v, want 2 users and nothing recent", o.AdminStats)
			}
		})
	}
}

// A test mail is queued to the address given (normalised), audited about
// the administrator with the console's marks, and refused for what is not
// an address.
func TestSendTestMail(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin := h.register(t, "root@example.com", goodPass)
	m := meta
	m.Actor, m.Via = admin.ID, "console"
	for _, bad := range []string{"", "not an address", "a@b@example.com"} {
		if _, err := h.svc.SendTestMail(ctx, bad, m); auth.ErrorCode(err) != auth.EINVALID {
			t.Errorf("SendTestMail(%q) = %v, want EINVALID", bad, err)
		}
	}
	to, err := h.svc.SendTestMail(ctx, "  Ops@Example.COM ", m)
	if err != nil || to != "ops@example.com" {
		t.Fatalf("SendTestMail = %q, %v; want ops@example.com", to, err)
	}
	var kind, addr, userID string
	if err := h.rawDB(t).QueryRow(`SELECT kind, to_addr, user_id FROM mail_jobs WHERE kind = ?`, auth.MailTest).Scan(&kind, &addr, &userID); err != nil {
		t.Fatalf("the test mail job: %v", err)
	}
	if addr != "ops@example.com" || userID != admin.ID {
		t.Errorf("job to %q for %q, want ops@example.com for %s", addr, userID, admin.ID)
	}
	evs := h.audit(t, auth.AuditFilter{Type: auth.EventAdminMailTestSent})
	if len(evs) != 1 {
		t.Fatalf("%d %s events, want 1 (none for the refused addresses)", len(evs), auth.EventAdminMailTestSent)
	}
	e := evs[0]
	if e.UserID != admin.ID || e.Details["to"] != "ops@example.com" || e.Details["via"] != "console" || e.Details["actor"] != admin.ID {
		t.Errorf("event = %+v", e)
	}
}
