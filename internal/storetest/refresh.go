package storetest

import (
	"errors"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// The rest of the refresh-token contract: each multi-row write happens
// whole or not at all, and the optional auth.LoginFinisher extension. Run
// runs it with testRefresh.

func testRefreshAtomic(t *testing.T, open func(t *testing.T) Store) {
	// A family whose first token cannot be stored (its hash is another
	// token's) is not stored either: its id is free for the retry.
	t.Run("CreateFamilyIsAtomic", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		_, taken := createFamily(t, s, "f-1", "u-1", "tok-1")

		f := newFamily("f-2", "u-1")
		dup := newToken("tok-2", "f-2", f.CreatedAt)
		dup.Hash = taken.Hash
		if err := s.CreateFamily(t.Context(), f, dup); err == nil {
			t.Fatalf("CreateFamily whose first token has another token's hash: no error")
		}
		gotTok, gotFam := getRefresh(t, s, "tok-1")
		checkToken(t, gotTok, taken)
		checkFamily(t, gotFam, newFamily("f-1", "u-1"))

		retry, first := createFamily(t, s, "f-2", "u-1", "tok-2")
		gotTok, gotFam = getRefresh(t, s, "tok-2")
		checkToken(t, gotTok, first)
		checkFamily(t, gotFam, retry)
	})

	// A rotation whose successor cannot be stored does not mark the old
	// token rotated: the client may retry with it.
	t.Run("RotateIsAtomic", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		_, old := createFamily(t, s, "f-1", "u-1", "tok-1")
		_, other := createFamily(t, s, "f-2", "u-1", "tok-other")

		now := at(time.Hour)
		next := newToken("tok-2", "f-1", now)
		next.Hash = other.Hash
		ok, err := s.RotateRefreshToken(t.Context(), old.ID, next, now)
		if err == nil || ok {
			t.Fatalf("RotateRefreshToken to a successor with another token's hash = %v, %v; want false and an error", ok, err)
		}
		gotOld, _ := getRefresh(t, s, "tok-1")
		checkToken(t, gotOld, old) // RotatedAt still nil
		gotOther, _ := getRefresh(t, s, "tok-other")
		checkToken(t, gotOther, other)

		rotate(t, s, "tok-1", "tok-2", at(2*time.Hour))
	})

	t.Run("RotateUnknown", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		createFamily(t, s, "f-1", "u-1", "tok-1")
		now := at(time.Hour)
		next := newToken("tok-2", "f-1", now)
		ok, err := s.RotateRefreshToken(t.Context(), "tok-never", next, now)
		if ok || (err != nil && !errors.Is(err, auth.ErrNotFound)) {
			t.Fatalf("RotateRefreshToken of an unknown token = %v, %v; want false and nil or ErrNotFound", ok, err)
		}
		_, _, err = s.RefreshTokenByHash(t.Context(), next.Hash)
		wantErr(t, "successor of an unknown token", err, auth.ErrNotFound)
	})
}

// loginFinisherBackend is a store that finishes password logins in one
// transaction (auth.LoginFinisher), with the lockout store whose count it
// clears.
type loginFinisherBackend interface {
	Store
	auth.LoginFinisher
	auth.LockoutStore
}

func testLoginFinisher(t *testing.T, open func(t *testing.T) Store) {
	// With threshold 1 the second attempt in a row locks: BeginAttempt
	// tells whether the count was cleared in between.
	const threshold, lockFor = 1, 15 * time.Minute
	setup := func(t *testing.T) loginFinisherBackend {
		t.Helper()
		s, ok := open(t).(loginFinisherBackend)
		if !ok {
			t.Skip("the store does not implement auth.LoginFinisher (an optional extension) with auth.LockoutStore")
		}
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		if locked, _, err := s.BeginAttempt(t.Context(), "lock:u-1", threshold, lockFor, at(0)); err != nil || locked != 0 {
			t.Fatalf("first BeginAttempt = %v, %v; want 0, nil", locked, err)
		}
		return s
	}
	event := func(id string) *auth.AuditEvent {
		return &auth.AuditEvent{ID: id, Type: auth.EventLoginSucceeded, At: at(time.Second), UserID: "u-1", IP: "192.0.2.1", Details: map[string]any{"method": "password"}}
	}
	auditIDs := func(t *testing.T, s Store) []string {
		t.Helper()
		es, err := s.ListAudit(t.Context(), auth.AuditFilter{UserID: "u-1"})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		var ids []string
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		return ids
	}

	t.Run("WritesEverything", func(t *testing.T) {
		s := setup(t)
		f := newFamily("f-1", "u-1")
		first := newToken("tok-1", "f-1", f.CreatedAt)
		if err := s.FinishPasswordLogin(t.Context(), "lock:u-1", event("e-1"), f, first); err != nil {
			t.Fatalf("FinishPasswordLogin: %v", err)
		}
		gotTok, gotFam := getRefresh(t, s, "tok-1")
		checkToken(t, gotTok, first)
		checkFamily(t, gotFam, f)
		wantIDs(t, "audit events of u-1", auditIDs(t, s), "e-1")
		if locked, _, err := s.BeginAttempt(t.Context(), "lock:u-1", threshold, lockFor, at(time.Minute)); err != nil || locked != 0 {
			t.Errorf("BeginAttempt after FinishPasswordLogin = %v, %v; want 0, nil (the count cleared)", locked, err)
		}
	})

	// A login whose family cannot be stored (its id is taken) writes
	// nothing: no audit event, and the failure count stays.
	t.Run("IsAtomic", func(t *testing.T) {
		s := setup(t)
		taken, _ := createFamily(t, s, "f-1", "u-1", "tok-1")
		f := newFamily(taken.ID, "u-1")
		first := newToken("tok-2", taken.ID, f.CreatedAt)
		if err := s.FinishPasswordLogin(t.Context(), "lock:u-1", event("e-1"), f, first); err == nil {
			t.Fatalf("FinishPasswordLogin with a taken family id: no error")
		}
		_, _, err := s.RefreshTokenByHash(t.Context(), first.Hash)
		wantErr(t, "first token of the refused login", err, auth.ErrNotFound)
		wantIDs(t, "audit events of u-1", auditIDs(t, s))
		if locked, _, err := s.BeginAttempt(t.Context(), "lock:u-1", threshold, lockFor, at(time.Minute)); err != nil || locked == 0 {
			t.Errorf("BeginAttempt after the refused FinishPasswordLogin = %v, %v; want locked (the count kept)", locked, err)
		}
	})
}

// testRefreshLevels: a family keeps how its sign-in was made (SPEC §13),
// defaulting like a session's, and a user's families of one level can be
// revoked together (a TOTP confirmation ends the aal1 ones).
func testRefreshLevels(t *testing.T, open func(t *testing.T) Store) {
	t.Run("LevelDefaults", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   func(f *auth.RefreshFamily)
			want func(f *auth.RefreshFamily)
		}{
			{"OneFactor", func(f *auth.RefreshFamily) {
				f.ACR, f.AMR = auth.ACR1, []string{"fed"}
			}, func(*auth.RefreshFamily) {}},
			{"NoneGiven", func(f *auth.RefreshFamily) {
				f.ACR, f.AMR, f.AuthTime = "", nil, time.Time{}
			}, func(f *auth.RefreshFamily) {
				f.ACR, f.AMR, f.AuthTime = auth.ACR1, nil, f.CreatedAt
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				createUser(t, s, minimalUser("u-1", "one@example.com"))
				f := newFamily("f-1", "u-1")
				tc.in(f)
				first := newToken("tok-1", "f-1", f.CreatedAt)
				if err := s.CreateFamily(t.Context(), f, first); err != nil {
					t.Fatalf("CreateFamily: %v", err)
				}
				want := *f
				tc.want(&want)
				_, got := getRefresh(t, s, "tok-1")
				checkFamily(t, got, &want)
				// A rotation keeps the family's level.
				rotate(t, s, "tok-1", "tok-2", at(time.Hour))
				_, got = getRefresh(t, s, "tok-2")
				checkFamily(t, got, &want)
			})
		}
	})

	t.Run("RevokeSessionFamilies", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		family := func(id, session string) {
			t.Helper()
			f := newFamily(id, "u-1")
			f.SessionID = session
			if err := s.CreateFamily(t.Context(), f, newToken("tok-"+id, id, f.CreatedAt)); err != nil {
				t.Fatalf("CreateFamily(%s): %v", id, err)
			}
			if _, got := getRefresh(t, s, "tok-"+id); got.SessionID != session {
				t.Fatalf("family %s: SessionID %q, want %q", id, got.SessionID, session)
			}
		}
		family("f-a1", "sess-a")
		family("f-a2", "sess-a")
		family("f-b", "sess-b")
		family("f-none", "")
		now := at(time.Hour)
		if err := s.RevokeSessionFamilies(t.Context(), "sess-a", now); err != nil {
			t.Fatalf("RevokeSessionFamilies: %v", err)
		}
		if err := s.RevokeSessionFamilies(t.Context(), "", now); err != nil {
			t.Fatalf("RevokeSessionFamilies of no session: %v", err)
		}
		for _, tc := range []struct {
			family      string
			wantRevoked *time.Time
		}{{"f-a1", &now}, {"f-a2", &now}, {"f-b", nil}, {"f-none", nil}} {
			_, f := getRefresh(t, s, "tok-"+tc.family)
			if !equalTimePtr(f.RevokedAt, tc.wantRevoked) {
				t.Errorf("family %s: RevokedAt = %s, want %s", tc.family, fmtTimePtr(f.RevokedAt), fmtTimePtr(tc.wantRevoked))
			}
		}
	})

	t.Run("RevokeUserFamiliesAt", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		createUser(t, s, minimalUser("u-2", "two@example.com"))
		family := func(id, userID, acr string) {
			t.Helper()
			f := newFamily(id, userID)
			f.ACR = acr
			if err := s.CreateFamily(t.Context(), f, newToken("tok-"+id, id, f.CreatedAt)); err != nil {
				t.Fatalf("CreateFamily(%s): %v", id, err)
			}
		}
		family("f-1", "u-1", auth.ACR1)
		family("f-2", "u-1", auth.ACR1)
		family("f-old", "u-1", auth.ACR1)
		family("f-legacy", "u-1", "") // stored as aal1
		family("f-aal2", "u-1", auth.ACR2)
		family("f-other", "u-2", auth.ACR1)
		earlier := at(10 * time.Minute)
		if err := s.RevokeFamily(t.Context(), "f-old", earlier); err != nil {
			t.Fatalf("RevokeFamily: %v", err)
		}

		now := at(time.Hour)
		if err := s.RevokeUserFamiliesAt(t.Context(), "u-1", auth.ACR1, now); err != nil {
			t.Fatalf("RevokeUserFamiliesAt: %v", err)
		}
		// Idempotent: the revocation times stay.
		if err := s.RevokeUserFamiliesAt(t.Context(), "u-1", auth.ACR1, at(2*time.Hour)); err != nil {
			t.Fatalf("second RevokeUserFamiliesAt: %v", err)
		}
		if err := s.RevokeUserFamiliesAt(t.Context(), "nobody", auth.ACR1, now); err != nil {
			t.Errorf("RevokeUserFamiliesAt of a user without families: %v", err)
		}
		for _, tc := range []struct {
			family      string
			wantRevoked *time.Time
		}{
			{"f-1", &now},
			{"f-2", &now},
			{"f-old", &earlier}, // already revoked: keeps its time
			{"f-legacy", &now},
			{"f-aal2", nil},  // another level
			{"f-other", nil}, // another user
		} {
			_, f := getRefresh(t, s, "tok-"+tc.family)
			if !equalTimePtr(f.RevokedAt, tc.wantRevoked) {
				t.Errorf("family %s: RevokedAt = %s, want %s", tc.family, fmtTimePtr(f.RevokedAt), fmtTimePtr(tc.wantRevoked))
			}
		}
	})
}
