package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// TestDeleteAccountWithFreshSession: a sign-in younger than
// GATEHOUSE_STEP_UP_MAX_AGE (10 minutes by default) stands in for the
// password (passkey-only and provider-only accounts have
// none); an older session, or no session, needs the password.
func TestDeleteAccountWithFreshSession(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		age     time.Duration
		session bool
		wantErr bool
	}{
		{"session signed in a minute ago", time.Minute, true, false},
		{"session signed in eleven minutes ago", 11 * time.Minute, true, true},
		{"no sign-in time (an API key)", time.Minute, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			u := h.register(t, "carol@example.com", goodPass)
			m := auth.Meta{IP: "192.0.2.1"}
			p := &auth.Principal{UserID: u.ID, Kind: auth.KindSession, SessionID: "sess-1", ACR: auth.ACR1}
			if tc.session {
				p.AuthTime = h.clock.Now().Add(-tc.age)
			}
			err := h.svc.DeleteAccount(ctx, p, "", m)
			if tc.wantErr {
				wantCode(t, err, auth.EINVALID, "password")
				h.user(t, u.ID) // still there
				return
			}
			if err != nil {
				t.Fatalf("DeleteAccount with a fresh session: %v", err)
			}
			if _, err := h.svc.User(ctx, u.ID); !errors.Is(err, auth.ErrNotFound) {
				t.Fatalf("user after delete: %v", err)
			}
		})
	}
}
