package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// MFABackend is a second-factor store under test: auth.MFAStore, plus the
// session and refresh stores whose records RedeemMFA creates (to read them
// back) and CreateUser to make the owners exist (see userMaker).
type MFABackend interface {
	auth.MFAStore
	auth.SessionStore
	auth.RefreshStore
	auth.AuditStore
	auth.LockoutStore
	userMaker
}

// RunMFA runs the second-factor contract (SPEC §13). open must return a
// fresh, empty backend each time it is called (once per subtest) and
// arrange its cleanup with t.Cleanup.
//
// Nothing in it expires by the wall clock: "now" is always an argument.
func RunMFA(t *testing.T, open func(t *testing.T) MFABackend) {
	t.Helper()
	t.Run("PendingRoundTrip", func(t *testing.T) { testTOTPPending(t, open) })
	t.Run("PendingReplaces", func(t *testing.T) { testTOTPPendingReplaces(t, open) })
	t.Run("Confirm", func(t *testing.T) { testTOTPConfirm(t, open) })
	t.Run("ConfirmRefused", func(t *testing.T) { testTOTPConfirmRefused(t, open) })
	t.Run("RecoveryCodes", func(t *testing.T) { testRecoveryCodes(t, open) })
	t.Run("Challenge", func(t *testing.T) { testMFAChallenge(t, open) })
	t.Run("FailChallenge", func(t *testing.T) { testMFAFail(t, open) })
	t.Run("ConcurrentFail", func(t *testing.T) { testMFAConcurrentFail(t, open) })
	t.Run("RedeemTOTP", func(t *testing.T) { testRedeemTOTP(t, open) })
	t.Run("RedeemRecoveryCode", func(t *testing.T) { testRedeemRecovery(t, open) })
	t.Run("RedeemChallenge", func(t *testing.T) { testRedeemChallenge(t, open) })
	t.Run("RedeemAudit", func(t *testing.T) { testRedeemAudit(t, open) })
	t.Run("ConcurrentRedeem", func(t *testing.T) { testRedeemConcurrent(t, open) })
	t.Run("DeleteTOTP", func(t *testing.T) { testDeleteTOTP(t, open) })
	t.Run("MFAEnabled", func(t *testing.T) { testMFAEnabled(t, open) })
	t.Run("Purge", func(t *testing.T) { testMFAPurge(t, open) })
	t.Run("DeleteUserCascades", func(t *testing.T) { testMFADeleteUser(t, open) })
}

// sealedSecret stands for a TOTP secret under AES-GCM: binary, NUL and
// 0xff included; the store must keep it byte for byte.
func sealedSecret(id string) []byte {
	return append([]byte{0, 0xff, 0x80, 0}, hashOf("sealed-"+id)...)
}

// pendingTOTP is a pending enrolment of userID made at created, lapsing
// ten minutes later.
func pendingTOTP(id, userID string, created time.Time) *auth.TOTPAuthenticator {
	return &auth.TOTPAuthenticator{ID: id, UserID: userID, Sealed: sealedSecret(id), CreatedAt: created, ExpiresAt: created.Add(10*time.Minute + 7*time.Microsecond)}
}

func putPending(t *testing.T, s MFABackend, a *auth.TOTPAuthenticator) *auth.TOTPAuthenticator {
	t.Helper()
	in := *a
	in.Sealed = bytes.Clone(a.Sealed)
	if err := s.PutPendingTOTP(t.Context(), &in); err != nil {
		t.Fatalf("PutPendingTOTP(%s): %v", a.ID, err)
	}
	return a
}

// confirmTOTP enrols and confirms authenticator id of userID at step with
// the recovery codes (nil: none), and returns it as it must now read.
func confirmTOTP(t *testing.T, s MFABackend, id, userID string, step int64, codes []string) *auth.TOTPAuthenticator {
	t.Helper()
	a := putPending(t, s, pendingTOTP(id, userID, at(0)))
	now := at(time.Minute + 3*time.Microsecond)
	if err := s.ConfirmTOTP(t.Context(), userID, id, step, slices.Clone(codes), now); err != nil {
		t.Fatalf("ConfirmTOTP(%s): %v", id, err)
	}
	want := *a
	want.Confirmed, want.ConfirmedAt, want.LastStep, want.ExpiresAt = true, &now, step, time.Time{}
	return &want
}

// checkTOTP compares every field but ExpiresAt of a confirmed
// authenticator (it means nothing once confirmed).
func checkTOTP(t *testing.T, got, want *auth.TOTPAuthenticator) {
	t.Helper()
	if got == nil {
		t.Fatalf("authenticator %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.UserID != want.UserID || got.Confirmed != want.Confirmed || got.LastStep != want.LastStep {
		t.Errorf("authenticator = {ID %q, UserID %q, Confirmed %v, LastStep %d}, want {%q, %q, %v, %d}",
			got.ID, got.UserID, got.Confirmed, got.LastStep, want.ID, want.UserID, want.Confirmed, want.LastStep)
	}
	if !bytes.Equal(got.Sealed, want.Sealed) {
		t.Errorf("authenticator %s: Sealed = %x, want %x", want.ID, got.Sealed, want.Sealed)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("authenticator %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if !want.Confirmed && !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("authenticator %s: ExpiresAt = %v, want %v", want.ID, got.ExpiresAt, want.ExpiresAt)
	}
	if !equalTimePtr(got.ConfirmedAt, want.ConfirmedAt) {
		t.Errorf("authenticator %s: ConfirmedAt = %s, want %s", want.ID, fmtTimePtr(got.ConfirmedAt), fmtTimePtr(want.ConfirmedAt))
	}
	if !equalTimePtr(got.LastUsedAt, want.LastUsedAt) {
		t.Errorf("authenticator %s: LastUsedAt = %s, want %s", want.ID, fmtTimePtr(got.LastUsedAt), fmtTimePtr(want.LastUsedAt))
	}
}

func getPending(t *testing.T, s MFABackend, userID, id string) *auth.TOTPAuthenticator {
	t.Helper()
	got, err := s.PendingTOTP(t.Context(), userID, id)
	if err != nil {
		t.Fatalf("PendingTOTP(%s, %s): %v", userID, id, err)
	}
	return got
}

func getConfirmed(t *testing.T, s MFABackend, userID string) *auth.TOTPAuthenticator {
	t.Helper()
	got, err := s.ConfirmedTOTP(t.Context(), userID)
	if err != nil {
		t.Fatalf("ConfirmedTOTP(%s): %v", userID, err)
	}
	return got
}

func wantNoPending(t *testing.T, s MFABackend, userID, id, why string) {
	t.Helper()
	got, err := s.PendingTOTP(t.Context(), userID, id)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("PendingTOTP(%s, %s) %s = %+v, %v; want ErrNotFound", userID, id, why, got, err)
	}
}

func wantNoConfirmed(t *testing.T, s MFABackend, userID, why string) {
	t.Helper()
	got, err := s.ConfirmedTOTP(t.Context(), userID)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ConfirmedTOTP(%s) %s = %+v, %v; want ErrNotFound", userID, why, got, err)
	}
}

// recoveryHashes is a set of n code hashes, distinct per user and tag.
func recoveryHashes(userID, tag string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = hashOf(fmt.Sprintf("recovery-%s-%s-%02d", userID, tag, i))
	}
	return out
}

// wantRecovery requires the user's set to be total/remaining, made at
// created.
func wantRecovery(t *testing.T, s MFABackend, userID string, total, remaining int, created time.Time) {
	t.Helper()
	got, err := s.RecoveryCodes(t.Context(), userID)
	if err != nil {
		t.Fatalf("RecoveryCodes(%s): %v", userID, err)
	}
	if got.Total != total || got.Remaining != remaining || !got.CreatedAt.Equal(created) {
		t.Errorf("RecoveryCodes(%s) = {Total %d, Remaining %d, CreatedAt %v}, want {%d, %d, %v}",
			userID, got.Total, got.Remaining, got.CreatedAt, total, remaining, created)
	}
}

func wantNoRecovery(t *testing.T, s MFABackend, userID, why string) {
	t.Helper()
	got, err := s.RecoveryCodes(t.Context(), userID)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("RecoveryCodes(%s) %s = %+v, %v; want ErrNotFound", userID, why, got, err)
	}
}

// newMFAChallenge is challenge tag of userID, made at created and live for
// five minutes; every field is set.
func newMFAChallenge(tag, userID string, created time.Time) *auth.MFAChallenge {
	return &auth.MFAChallenge{
		Hash:      hashOf("mfa-token-" + tag),
		UserID:    userID,
		ClientID:  "client-" + tag,
		Scope:     "openid profile offline_access",
		AMR:       []string{"pwd"},
		AuthTime:  created.Add(-time.Second - 3*time.Microsecond),
		Finish:    auth.FinishBoth,
		EnrolOnly: true,
		CreatedAt: created,
		ExpiresAt: created.Add(5*time.Minute + 9*time.Microsecond),
	}
}

func createMFAChallenge(t *testing.T, s MFABackend, c *auth.MFAChallenge) *auth.MFAChallenge {
	t.Helper()
	in := *c
	in.AMR = slices.Clone(c.AMR)
	if err := s.CreateMFAChallenge(t.Context(), &in); err != nil {
		t.Fatalf("CreateMFAChallenge(%.12s…): %v", c.Hash, err)
	}
	return c
}

func checkMFAChallenge(t *testing.T, got, want *auth.MFAChallenge) {
	t.Helper()
	if got.Hash != want.Hash || got.UserID != want.UserID || got.ClientID != want.ClientID || got.Scope != want.Scope {
		t.Errorf("challenge = {Hash %.12s…, UserID %q, ClientID %q, Scope %q}, want {%.12s…, %q, %q, %q}",
			got.Hash, got.UserID, got.ClientID, got.Scope, want.Hash, want.UserID, want.ClientID, want.Scope)
	}
	if !slices.Equal(got.AMR, want.AMR) || got.Finish != want.Finish || got.EnrolOnly != want.EnrolOnly || got.Attempts != want.Attempts {
		t.Errorf("challenge = {AMR %q, Finish %d, EnrolOnly %v, Attempts %d}, want {%q, %d, %v, %d}",
			got.AMR, got.Finish, got.EnrolOnly, got.Attempts, want.AMR, want.Finish, want.EnrolOnly, want.Attempts)
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"AuthTime", got.AuthTime, want.AuthTime},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
	} {
		if !f.got.Equal(f.want) {
			t.Errorf("challenge %.12s…: %s = %v, want %v", want.Hash, f.name, f.got, f.want)
		}
	}
}

// wantMFAChallenge requires challenge c to be live at now with attempts
// counted.
func wantMFAChallenge(t *testing.T, s MFABackend, c *auth.MFAChallenge, attempts int, now time.Time) {
	t.Helper()
	got, err := s.MFAChallenge(t.Context(), c.Hash, now)
	if err != nil {
		t.Fatalf("MFAChallenge(%.12s…): %v", c.Hash, err)
	}
	want := *c
	want.Attempts = attempts
	checkMFAChallenge(t, got, &want)
}

func wantNoMFAChallenge(t *testing.T, s MFABackend, c *auth.MFAChallenge, now time.Time, why string) {
	t.Helper()
	got, err := s.MFAChallenge(t.Context(), c.Hash, now)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("MFAChallenge(%.12s…) %s = %+v, %v; want ErrNotFound", c.Hash, why, got, err)
	}
}

// redemption is what a sign-in's second step writes: a family with its
// first token and a session, all named after tag, for userID at now.
func redemption(tag, userID string, now time.Time) *auth.MFARedemption {
	f := &auth.RefreshFamily{ID: "f-" + tag, UserID: userID, ClientID: "client-" + tag, Scope: "openid", CreatedAt: now,
		ExpiresAt: now.Add(24 * time.Hour), ACR: auth.ACR2, AMR: []string{"pwd", "otp", "mfa"}, AuthTime: now}
	x := &auth.Session{ID: "s-" + tag, UserID: userID, Hash: hashOf("session-token-" + tag), CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(24 * time.Hour), IP: "192.0.2.7", UserAgent: "test", ACR: auth.ACR2, AMR: []string{"pwd", "otp", "mfa"}, AuthTime: now}
	return &auth.MFARedemption{UserID: userID, Now: now, Family: f, First: newToken("tok-"+tag, f.ID, now), Session: x}
}

// wantRedeemed requires r's family, first token and session to exist.
func wantRedeemed(t *testing.T, s MFABackend, r *auth.MFARedemption) {
	t.Helper()
	tok, f, err := s.RefreshTokenByHash(t.Context(), r.First.Hash)
	if err != nil {
		t.Fatalf("RefreshTokenByHash(first token of %s): %v", r.Family.ID, err)
	}
	checkToken(t, tok, r.First)
	checkFamily(t, f, r.Family)
	x, err := s.SessionByHash(t.Context(), r.Session.Hash)
	if err != nil {
		t.Fatalf("SessionByHash(%s): %v", r.Session.ID, err)
	}
	checkSession(t, x, r.Session)
}

// wantNotRedeemed requires that none of r's records exist.
func wantNotRedeemed(t *testing.T, s MFABackend, r *auth.MFARedemption, why string) {
	t.Helper()
	if _, _, err := s.RefreshTokenByHash(t.Context(), r.First.Hash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("family %s %s: RefreshTokenByHash = %v, want ErrNotFound", r.Family.ID, why, err)
	}
	if _, err := s.SessionByHash(t.Context(), r.Session.Hash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("session %s %s: SessionByHash = %v, want ErrNotFound", r.Session.ID, why, err)
	}
}

func testTOTPPending(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	a := putPending(t, s, pendingTOTP("totp-1", "u-1", at(0)))

	checkTOTP(t, getPending(t, s, "u-1", "totp-1"), a)
	// Pending is not confirmed, and the id is bound to its user.
	wantNoConfirmed(t, s, "u-1", "of a pending enrolment")
	wantNoPending(t, s, "u-2", "totp-1", "of another user's enrolment")
	wantNoPending(t, s, "u-1", "totp-never", "of an unknown id")
}

func testTOTPPendingReplaces(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	putPending(t, s, pendingTOTP("totp-1", "u-1", at(0)))
	theirs := putPending(t, s, pendingTOTP("totp-theirs", "u-2", at(0)))
	second := putPending(t, s, pendingTOTP("totp-2", "u-1", at(time.Minute)))

	wantNoPending(t, s, "u-1", "totp-1", "after a new enrolment")
	checkTOTP(t, getPending(t, s, "u-1", "totp-2"), second)
	checkTOTP(t, getPending(t, s, "u-2", "totp-theirs"), theirs)

	// With a confirmed authenticator: a new pending enrolment leaves it
	// alone (the domain refuses to confirm a second).
	confirmed := confirmTOTP(t, s, "totp-3", "u-1", 1000, nil)
	third := putPending(t, s, pendingTOTP("totp-4", "u-1", at(2*time.Minute)))
	checkTOTP(t, getConfirmed(t, s, "u-1"), confirmed)
	checkTOTP(t, getPending(t, s, "u-1", "totp-4"), third)
	fourth := putPending(t, s, pendingTOTP("totp-5", "u-1", at(3*time.Minute)))
	wantNoPending(t, s, "u-1", "totp-4", "after a new enrolment")
	checkTOTP(t, getPending(t, s, "u-1", "totp-5"), fourth)
	checkTOTP(t, getConfirmed(t, s, "u-1"), confirmed)
}

func testTOTPConfirm(t *testing.T, open func(t *testing.T) MFABackend) {
	t.Run("WithRecoveryCodes", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1", "u-2")
		theirs := putPending(t, s, pendingTOTP("totp-theirs", "u-2", at(0)))
		codes := recoveryHashes("u-1", "a", 10)
		want := confirmTOTP(t, s, "totp-1", "u-1", 58_000_123, codes)

		checkTOTP(t, getConfirmed(t, s, "u-1"), want)
		wantNoPending(t, s, "u-1", "totp-1", "after its confirmation")
		wantRecovery(t, s, "u-1", 10, 10, *want.ConfirmedAt)
		checkTOTP(t, getPending(t, s, "u-2", "totp-theirs"), theirs)
		wantNoConfirmed(t, s, "u-2", "of a user who confirmed nothing")
		wantNoRecovery(t, s, "u-2", "of a user who confirmed nothing")
	})

	t.Run("ReplacesRecoveryCodes", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		old := recoveryHashes("u-1", "old", 4)
		if err := s.ReplaceRecoveryCodes(t.Context(), "u-1", old, at(0)); err != nil {
			t.Fatalf("ReplaceRecoveryCodes: %v", err)
		}
		want := confirmTOTP(t, s, "totp-1", "u-1", 7, recoveryHashes("u-1", "new", 10))
		wantRecovery(t, s, "u-1", 10, 10, *want.ConfirmedAt)
		r := &auth.MFARedemption{UserID: "u-1", Now: at(time.Hour), RecoveryHash: old[0]}
		wantErr(t, "RedeemMFA with a code of the replaced set", s.RedeemMFA(t.Context(), r), auth.ErrNotFound)
	})

	t.Run("NilKeepsRecoveryCodes", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1", "u-2")
		if err := s.ReplaceRecoveryCodes(t.Context(), "u-1", recoveryHashes("u-1", "a", 6), at(0)); err != nil {
			t.Fatalf("ReplaceRecoveryCodes: %v", err)
		}
		confirmTOTP(t, s, "totp-1", "u-1", 7, nil)
		wantRecovery(t, s, "u-1", 6, 6, at(0))
		// And a user without a set gets none.
		confirmTOTP(t, s, "totp-2", "u-2", 7, nil)
		wantNoRecovery(t, s, "u-2", "after a confirmation without codes")
	})
}

func testTOTPConfirmRefused(t *testing.T, open func(t *testing.T) MFABackend) {
	ok := at(2 * time.Minute) // before the enrolment lapses
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, s MFABackend) // after u-1's pending totp-1 at at(0)
		userID string
		id     string
		now    time.Time
		want   error
	}{
		{"Expired", nil, "u-1", "totp-1", pendingTOTP("totp-1", "u-1", at(0)).ExpiresAt, auth.ErrNotFound},
		{"LongExpired", nil, "u-1", "totp-1", at(24 * time.Hour), auth.ErrNotFound},
		{"AnotherUsers", nil, "u-2", "totp-1", ok, auth.ErrNotFound},
		{"UnknownID", nil, "u-1", "totp-never", ok, auth.ErrNotFound},
		{"Replaced", func(t *testing.T, s MFABackend) {
			putPending(t, s, pendingTOTP("totp-new", "u-1", at(time.Second)))
		}, "u-1", "totp-1", ok, auth.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1", "u-2")
			putPending(t, s, pendingTOTP("totp-1", "u-1", at(0)))
			if tc.setup != nil {
				tc.setup(t, s)
			}
			err := s.ConfirmTOTP(t.Context(), tc.userID, tc.id, 99, recoveryHashes(tc.userID, "x", 10), tc.now)
			wantErr(t, "ConfirmTOTP", err, tc.want)
			// Nothing was written: no authenticator, no recovery codes.
			for _, u := range []string{"u-1", "u-2"} {
				wantNoConfirmed(t, s, u, "after a refused confirmation")
				wantNoRecovery(t, s, u, "after a refused confirmation")
			}
		})
	}

	t.Run("AlreadyConfirmed", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		codes := recoveryHashes("u-1", "first", 10)
		first := confirmTOTP(t, s, "totp-1", "u-1", 1000, codes)
		second := putPending(t, s, pendingTOTP("totp-2", "u-1", at(time.Hour)))

		err := s.ConfirmTOTP(t.Context(), "u-1", "totp-2", 2000, recoveryHashes("u-1", "second", 12), at(time.Hour+time.Minute))
		wantErr(t, "ConfirmTOTP with one confirmed already", err, auth.ErrTOTPExists)
		checkTOTP(t, getConfirmed(t, s, "u-1"), first)
		checkTOTP(t, getPending(t, s, "u-1", "totp-2"), second)
		wantRecovery(t, s, "u-1", 10, 10, *first.ConfirmedAt)

		// Confirming the confirmed one again: it is no longer pending.
		err = s.ConfirmTOTP(t.Context(), "u-1", "totp-1", 3000, nil, at(2*time.Minute))
		if !errors.Is(err, auth.ErrNotFound) && !errors.Is(err, auth.ErrTOTPExists) {
			t.Errorf("ConfirmTOTP of the confirmed authenticator: error = %v, want ErrNotFound or ErrTOTPExists", err)
		}
		checkTOTP(t, getConfirmed(t, s, "u-1"), first)
	})
}

func testRecoveryCodes(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	wantNoRecovery(t, s, "u-1", "before any set")

	first := recoveryHashes("u-1", "a", 10)
	if err := s.ReplaceRecoveryCodes(t.Context(), "u-1", slices.Clone(first), at(0)); err != nil {
		t.Fatalf("ReplaceRecoveryCodes: %v", err)
	}
	theirs := recoveryHashes("u-2", "a", 5)
	if err := s.ReplaceRecoveryCodes(t.Context(), "u-2", slices.Clone(theirs), at(time.Second)); err != nil {
		t.Fatalf("ReplaceRecoveryCodes(u-2): %v", err)
	}
	wantRecovery(t, s, "u-1", 10, 10, at(0))

	spend := func(userID, hash string, now time.Time) error {
		return s.RedeemMFA(t.Context(), &auth.MFARedemption{UserID: userID, Now: now, RecoveryHash: hash})
	}
	for i, h := range first[:3] {
		if err := spend("u-1", h, at(time.Hour)); err != nil {
			t.Fatalf("spending code %d: %v", i, err)
		}
	}
	wantRecovery(t, s, "u-1", 10, 7, at(0))
	wantErr(t, "spending a code twice", spend("u-1", first[0], at(time.Hour)), auth.ErrNotFound)
	wantErr(t, "spending another user's code", spend("u-1", theirs[0], at(time.Hour)), auth.ErrNotFound)
	wantErr(t, "spending an unknown code", spend("u-1", hashOf("never issued"), at(time.Hour)), auth.ErrNotFound)
	wantRecovery(t, s, "u-1", 10, 7, at(0))
	wantRecovery(t, s, "u-2", 5, 5, at(time.Second))

	// A new set replaces the whole old one.
	second := recoveryHashes("u-1", "b", 12)
	if err := s.ReplaceRecoveryCodes(t.Context(), "u-1", second, at(2*time.Hour)); err != nil {
		t.Fatalf("second ReplaceRecoveryCodes: %v", err)
	}
	wantRecovery(t, s, "u-1", 12, 12, at(2*time.Hour))
	wantErr(t, "spending a code of the replaced set", spend("u-1", first[5], at(3*time.Hour)), auth.ErrNotFound)
	if err := spend("u-1", second[11], at(3*time.Hour)); err != nil {
		t.Fatalf("spending a code of the new set: %v", err)
	}
	wantRecovery(t, s, "u-1", 12, 11, at(2*time.Hour))
	wantRecovery(t, s, "u-2", 5, 5, at(time.Second))

	// Every code spent: the set remains, with nothing left.
	for _, h := range theirs {
		if err := spend("u-2", h, at(time.Hour)); err != nil {
			t.Fatalf("spending u-2's codes: %v", err)
		}
	}
	wantRecovery(t, s, "u-2", 5, 0, at(time.Second))
}

func testMFAChallenge(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	c := createMFAChallenge(t, s, newMFAChallenge("c-1", "u-1", at(0)))
	other := newMFAChallenge("c-2", "u-2", at(time.Second))
	other.AMR, other.Finish, other.EnrolOnly, other.ClientID, other.Scope = []string{"pwd", "fed"}, auth.FinishSession, false, "", ""
	createMFAChallenge(t, s, other)

	wantMFAChallenge(t, s, c, 0, at(0))
	wantMFAChallenge(t, s, c, 0, c.ExpiresAt.Add(-time.Microsecond))
	wantNoMFAChallenge(t, s, c, c.ExpiresAt, "at its expiry")
	wantNoMFAChallenge(t, s, c, at(time.Hour), "after its expiry")
	wantMFAChallenge(t, s, other, 0, at(time.Second))
	wantNoMFAChallenge(t, s, newMFAChallenge("never", "u-1", at(0)), at(0), "of an unknown token")
}

func testMFAFail(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	c := createMFAChallenge(t, s, newMFAChallenge("c-1", "u-1", at(0)))
	other := createMFAChallenge(t, s, newMFAChallenge("c-2", "u-1", at(0)))
	now := at(time.Minute)

	const max = 3
	for i, want := range []int{2, 1} {
		left, err := s.FailMFAChallenge(t.Context(), c.Hash, max)
		if err != nil || left != want {
			t.Fatalf("FailMFAChallenge %d = %d, %v; want %d, nil", i+1, left, err, want)
		}
		wantMFAChallenge(t, s, c, i+1, now)
	}
	left, err := s.FailMFAChallenge(t.Context(), c.Hash, max)
	if err != nil || left != 0 {
		t.Fatalf("last FailMFAChallenge = %d, %v; want 0, nil", left, err)
	}
	wantNoMFAChallenge(t, s, c, now, "after its last attempt")
	_, err = s.FailMFAChallenge(t.Context(), c.Hash, max)
	wantErr(t, "FailMFAChallenge of the destroyed challenge", err, auth.ErrNotFound)
	r := redemption("after", "u-1", now)
	r.ChallengeHash = c.Hash
	wantErr(t, "RedeemMFA of the destroyed challenge", s.RedeemMFA(t.Context(), r), auth.ErrNotFound)
	wantNotRedeemed(t, s, r, "after redeeming the destroyed challenge")
	_, err = s.FailMFAChallenge(t.Context(), hashOf("never issued"), max)
	wantErr(t, "FailMFAChallenge of an unknown challenge", err, auth.ErrNotFound)

	wantMFAChallenge(t, s, other, 0, now)
}

// testMFAConcurrentFail: concurrent wrong codes each count once, and of
// max the last one destroys the challenge: the answers are max-1 … 0, each
// once, and every later caller finds the challenge gone.
func testMFAConcurrentFail(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	c := createMFAChallenge(t, s, newMFAChallenge("c-1", "u-1", at(0)))
	const max = 10
	var (
		lefts [racers]int
		errs  [racers]error
	)
	race(racers, func(i int) { lefts[i], errs[i] = s.FailMFAChallenge(t.Context(), c.Hash, max) })
	seen := make(map[int]int)
	for i, err := range errs {
		switch {
		case err == nil:
			seen[lefts[i]]++
		case !errors.Is(err, auth.ErrNotFound):
			t.Errorf("caller %d: %v", i, err)
		}
	}
	for left := range max {
		if seen[left] != 1 {
			t.Errorf("%d callers were told %d attempts are left, want 1 (answers: %v)", seen[left], left, seen)
		}
	}
	if len(seen) != max {
		t.Errorf("answers %v, want each of 0…%d once", seen, max-1)
	}
	wantNoMFAChallenge(t, s, c, at(time.Minute), "after max concurrent failures")
}

func testRedeemTOTP(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	totp := confirmTOTP(t, s, "totp-1", "u-1", 100, nil)
	theirs := confirmTOTP(t, s, "totp-2", "u-2", 100, nil)
	now := at(time.Hour)
	c1 := createMFAChallenge(t, s, newMFAChallenge("c-1", "u-1", now))
	c2 := createMFAChallenge(t, s, newMFAChallenge("c-2", "u-1", now))

	r := redemption("one", "u-1", now)
	r.ChallengeHash, r.TOTPID, r.Step = c1.Hash, "totp-1", 101
	if err := s.RedeemMFA(t.Context(), r); err != nil {
		t.Fatalf("RedeemMFA: %v", err)
	}
	wantRedeemed(t, s, r)
	wantNoMFAChallenge(t, s, c1, now, "after its redemption")
	used := *totp
	used.LastStep, used.LastUsedAt = 101, &now
	checkTOTP(t, getConfirmed(t, s, "u-1"), &used)

	// The same step again, and an earlier one: replays, and nothing is
	// written — the challenge stays for a correct code, no family, no
	// session, the last step unchanged.
	for _, step := range []int64{101, 100, 50} {
		replay := redemption(fmt.Sprintf("replay-%d", step), "u-1", now.Add(time.Second))
		replay.ChallengeHash, replay.TOTPID, replay.Step = c2.Hash, "totp-1", step
		wantErr(t, fmt.Sprintf("RedeemMFA of step %d after step 101", step), s.RedeemMFA(t.Context(), replay), auth.ErrMFAReplay)
		wantNotRedeemed(t, s, replay, "after a replay")
		wantMFAChallenge(t, s, c2, 0, now)
		checkTOTP(t, getConfirmed(t, s, "u-1"), &used)
	}

	// Another user's authenticator, or a pending one, is no factor of u-1.
	putPending(t, s, pendingTOTP("totp-pending", "u-1", now))
	for _, id := range []string{"totp-2", "totp-pending", "totp-never"} {
		bad := redemption("bad-"+id, "u-1", now)
		bad.ChallengeHash, bad.TOTPID, bad.Step = c2.Hash, id, 500
		if err := s.RedeemMFA(t.Context(), bad); err == nil {
			t.Errorf("RedeemMFA with authenticator %s of u-1: no error", id)
		}
		wantNotRedeemed(t, s, bad, "after redeeming with "+id)
		wantMFAChallenge(t, s, c2, 0, now)
	}
	checkTOTP(t, getConfirmed(t, s, "u-2"), theirs)
	if got := getPending(t, s, "u-1", "totp-pending"); got.LastStep != 0 || got.LastUsedAt != nil {
		t.Errorf("pending authenticator after a refused redemption: LastStep %d, LastUsedAt %s; want 0, nil", got.LastStep, fmtTimePtr(got.LastUsedAt))
	}

	// A later step works; without a challenge (a step-up), and without a
	// family or session.
	later := now.Add(time.Minute)
	if err := s.RedeemMFA(t.Context(), &auth.MFARedemption{UserID: "u-1", Now: later, TOTPID: "totp-1", Step: 103}); err != nil {
		t.Fatalf("RedeemMFA of a later step without a challenge: %v", err)
	}
	used.LastStep, used.LastUsedAt = 103, &later
	checkTOTP(t, getConfirmed(t, s, "u-1"), &used)
	wantMFAChallenge(t, s, c2, 0, now)
}

func testRedeemRecovery(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	codes := recoveryHashes("u-1", "a", 3)
	if err := s.ReplaceRecoveryCodes(t.Context(), "u-1", slices.Clone(codes), at(0)); err != nil {
		t.Fatalf("ReplaceRecoveryCodes: %v", err)
	}
	theirs := recoveryHashes("u-2", "a", 3)
	if err := s.ReplaceRecoveryCodes(t.Context(), "u-2", slices.Clone(theirs), at(0)); err != nil {
		t.Fatalf("ReplaceRecoveryCodes(u-2): %v", err)
	}
	now := at(time.Hour)
	c1 := createMFAChallenge(t, s, newMFAChallenge("c-1", "u-1", now))
	c2 := createMFAChallenge(t, s, newMFAChallenge("c-2", "u-1", now))

	r := redemption("one", "u-1", now)
	r.ChallengeHash, r.RecoveryHash = c1.Hash, codes[1]
	if err := s.RedeemMFA(t.Context(), r); err != nil {
		t.Fatalf("RedeemMFA: %v", err)
	}
	wantRedeemed(t, s, r)
	wantNoMFAChallenge(t, s, c1, now, "after its redemption")
	wantRecovery(t, s, "u-1", 3, 2, at(0))

	// The spent code, another user's, an unknown one: refused, and the
	// challenge stays (a wrong code does not consume it).
	for _, tc := range []struct{ name, hash string }{
		{"Spent", codes[1]}, {"AnotherUsers", theirs[0]}, {"Unknown", hashOf("never issued")},
	} {
		bad := redemption("bad-"+tc.name, "u-1", now)
		bad.ChallengeHash, bad.RecoveryHash = c2.Hash, tc.hash
		wantErr(t, "RedeemMFA with a code "+tc.name, s.RedeemMFA(t.Context(), bad), auth.ErrNotFound)
		wantNotRedeemed(t, s, bad, "after a refused code")
		wantMFAChallenge(t, s, c2, 0, now)
	}
	wantRecovery(t, s, "u-1", 3, 2, at(0))
	wantRecovery(t, s, "u-2", 3, 3, at(0))

	r2 := redemption("two", "u-1", now)
	r2.ChallengeHash, r2.RecoveryHash = c2.Hash, codes[0]
	if err := s.RedeemMFA(t.Context(), r2); err != nil {
		t.Fatalf("RedeemMFA with another code: %v", err)
	}
	wantRedeemed(t, s, r2)
	wantRecovery(t, s, "u-1", 3, 1, at(0))
}

func testRedeemChallenge(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	c := createMFAChallenge(t, s, newMFAChallenge("c-1", "u-1", at(0)))
	codes := recoveryHashes("u-1", "a", 2)
	if err := s.ReplaceRecoveryCodes(t.Context(), "u-1", slices.Clone(codes), at(0)); err != nil {
		t.Fatalf("ReplaceRecoveryCodes: %v", err)
	}

	for _, tc := range []struct {
		name     string
		userID   string
		now      time.Time
		recovery string
	}{
		// With a good recovery code: the refused challenge must not spend
		// it either.
		{"AtExpiry", "u-1", c.ExpiresAt, codes[0]},
		{"Expired", "u-1", c.ExpiresAt.Add(time.Hour), codes[0]},
		// The factor proven elsewhere (a passkey of u-2's): the challenge
		// is bound to u-1.
		{"AnotherUser", "u-2", at(time.Minute), ""},
	} {
		bad := redemption("bad-"+tc.name, tc.userID, tc.now)
		bad.ChallengeHash, bad.RecoveryHash = c.Hash, tc.recovery
		wantErr(t, "RedeemMFA "+tc.name, s.RedeemMFA(t.Context(), bad), auth.ErrNotFound)
		wantNotRedeemed(t, s, bad, "after a refused challenge")
		wantMFAChallenge(t, s, c, 0, at(time.Minute))
		wantRecovery(t, s, "u-1", 2, 2, at(0))
	}

	// The factor proven elsewhere (a passkey): the challenge alone.
	r := redemption("one", "u-1", at(time.Minute))
	r.ChallengeHash = c.Hash
	if err := s.RedeemMFA(t.Context(), r); err != nil {
		t.Fatalf("RedeemMFA: %v", err)
	}
	wantRedeemed(t, s, r)
	wantNoMFAChallenge(t, s, c, at(time.Minute), "after its redemption")

	again := redemption("again", "u-1", at(time.Minute))
	again.ChallengeHash = c.Hash
	wantErr(t, "second RedeemMFA of the challenge", s.RedeemMFA(t.Context(), again), auth.ErrNotFound)
	wantNotRedeemed(t, s, again, "after redeeming a used challenge")

	// A redemption whose records cannot be stored (the family id is
	// taken) consumes nothing.
	c2 := createMFAChallenge(t, s, newMFAChallenge("c-2", "u-1", at(0)))
	dup := redemption("dup", "u-1", at(time.Minute))
	dup.ChallengeHash, dup.RecoveryHash = c2.Hash, codes[1]
	dup.Family.ID, dup.First.FamilyID = r.Family.ID, r.Family.ID
	if err := s.RedeemMFA(t.Context(), dup); err == nil {
		t.Fatalf("RedeemMFA with a taken family id: no error")
	}
	if _, err := s.SessionByHash(t.Context(), dup.Session.Hash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("session of the failed redemption: %v, want ErrNotFound", err)
	}
	wantMFAChallenge(t, s, c2, 0, at(time.Minute))
	wantRecovery(t, s, "u-1", 2, 2, at(0))

	// Likewise when the session cannot be stored (its hash is taken): not
	// even the family, written before it, remains.
	dup = redemption("dup-session", "u-1", at(time.Minute))
	dup.ChallengeHash, dup.RecoveryHash = c2.Hash, codes[1]
	dup.Session.Hash = r.Session.Hash
	if err := s.RedeemMFA(t.Context(), dup); err == nil {
		t.Fatalf("RedeemMFA with a taken session hash: no error")
	}
	if _, _, err := s.RefreshTokenByHash(t.Context(), dup.First.Hash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("family of the failed redemption: %v, want ErrNotFound", err)
	}
	wantMFAChallenge(t, s, c2, 0, at(time.Minute))
	wantRecovery(t, s, "u-1", 2, 2, at(0))
}

// testRedeemConcurrent: of racers redeeming one single-use thing at once —
// a recovery code, a TOTP step, a challenge — exactly one wins; the losers
// write nothing and, where they brought a challenge of their own, leave it.
func testRedeemConcurrent(t *testing.T, open func(t *testing.T) MFABackend) {
	now := at(time.Hour)
	run := func(t *testing.T, s MFABackend, loser error, mk func(i int) *auth.MFARedemption, ownChallenges bool) {
		t.Helper()
		rs := make([]*auth.MFARedemption, racers)
		for i := range rs {
			rs[i] = mk(i)
			if ownChallenges {
				rs[i].ChallengeHash = createMFAChallenge(t, s, newMFAChallenge(fmt.Sprintf("c-%02d", i), "u-1", now)).Hash
			}
		}
		// Warm up: a pooled backend opens its connections now rather than
		// during the race, where connecting would spread the racers out.
		race(racers, func(int) { _, _ = s.MFAChallenge(t.Context(), hashOf("warm-up"), now) })
		errs := make([]error, racers)
		race(racers, func(i int) { errs[i] = s.RedeemMFA(t.Context(), rs[i]) })
		w := oneWinner(t, "RedeemMFA", errs, loser)
		for i, r := range rs {
			if i == w {
				wantRedeemed(t, s, r)
				if ownChallenges {
					wantNoMFAChallenge(t, s, &auth.MFAChallenge{Hash: r.ChallengeHash}, now, "of the winner")
				}
				continue
			}
			wantNotRedeemed(t, s, r, "of a loser")
			if ownChallenges {
				wantMFAChallenge(t, s, newMFAChallenge(fmt.Sprintf("c-%02d", i), "u-1", now), 0, now)
			}
		}
	}

	t.Run("OneRecoveryCode", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		codes := recoveryHashes("u-1", "a", 2)
		if err := s.ReplaceRecoveryCodes(t.Context(), "u-1", slices.Clone(codes), at(0)); err != nil {
			t.Fatalf("ReplaceRecoveryCodes: %v", err)
		}
		run(t, s, auth.ErrNotFound, func(i int) *auth.MFARedemption {
			r := redemption(fmt.Sprintf("r-%02d", i), "u-1", now)
			r.RecoveryHash = codes[0]
			return r
		}, true)
		wantRecovery(t, s, "u-1", 2, 1, at(0))
	})

	t.Run("OneStep", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		confirmTOTP(t, s, "totp-1", "u-1", 100, nil)
		run(t, s, auth.ErrMFAReplay, func(i int) *auth.MFARedemption {
			r := redemption(fmt.Sprintf("r-%02d", i), "u-1", now)
			r.TOTPID, r.Step = "totp-1", 101
			return r
		}, true)
		if got := getConfirmed(t, s, "u-1"); got.LastStep != 101 {
			t.Errorf("LastStep = %d, want 101", got.LastStep)
		}
	})

	t.Run("OneChallenge", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		c := createMFAChallenge(t, s, newMFAChallenge("c-shared", "u-1", now))
		run(t, s, auth.ErrNotFound, func(i int) *auth.MFARedemption {
			r := redemption(fmt.Sprintf("r-%02d", i), "u-1", now)
			r.ChallengeHash = c.Hash
			return r
		}, false)
		wantNoMFAChallenge(t, s, c, now, "after its redemption")
	})
}

func testDeleteTOTP(t *testing.T, open func(t *testing.T) MFABackend) {
	setup := func(t *testing.T) MFABackend {
		s := open(t)
		makeUsers(t, s, "u-1", "u-2")
		confirmTOTP(t, s, "totp-1", "u-1", 100, recoveryHashes("u-1", "a", 10))
		putPending(t, s, pendingTOTP("totp-p", "u-1", at(time.Hour)))
		confirmTOTP(t, s, "totp-2", "u-2", 100, recoveryHashes("u-2", "a", 10))
		return s
	}
	others := func(t *testing.T, s MFABackend) {
		t.Helper()
		if got := getConfirmed(t, s, "u-2"); got.ID != "totp-2" {
			t.Errorf("u-2's authenticator = %s, want totp-2", got.ID)
		}
		wantRecovery(t, s, "u-2", 10, 10, at(time.Minute+3*time.Microsecond))
	}
	deleteTOTP := func(t *testing.T, s MFABackend, userID string, recovery, want bool) {
		t.Helper()
		got, err := s.DeleteTOTP(t.Context(), userID, recovery)
		if err != nil || got != want {
			t.Fatalf("DeleteTOTP(%s, %v) = %v, %v; want %v, nil", userID, recovery, got, err, want)
		}
	}

	t.Run("KeepsRecoveryCodes", func(t *testing.T) {
		s := setup(t)
		deleteTOTP(t, s, "u-1", false, true)
		wantNoConfirmed(t, s, "u-1", "after DeleteTOTP")
		wantNoPending(t, s, "u-1", "totp-p", "after DeleteTOTP")
		wantRecovery(t, s, "u-1", 10, 10, at(time.Minute+3*time.Microsecond))
		others(t, s)
		deleteTOTP(t, s, "u-1", false, false) // nothing left to remove
	})

	t.Run("WithRecoveryCodes", func(t *testing.T) {
		s := setup(t)
		deleteTOTP(t, s, "u-1", true, true)
		wantNoConfirmed(t, s, "u-1", "after DeleteTOTP")
		wantNoPending(t, s, "u-1", "totp-p", "after DeleteTOTP")
		wantNoRecovery(t, s, "u-1", "after DeleteTOTP with recovery")
		err := s.RedeemMFA(t.Context(), &auth.MFARedemption{UserID: "u-1", Now: at(2 * time.Hour), RecoveryHash: recoveryHashes("u-1", "a", 1)[0]})
		wantErr(t, "RedeemMFA with a deleted recovery code", err, auth.ErrNotFound)
		err = s.RedeemMFA(t.Context(), &auth.MFARedemption{UserID: "u-1", Now: at(2 * time.Hour), TOTPID: "totp-1", Step: 200})
		if err == nil {
			t.Errorf("RedeemMFA with the deleted authenticator: no error")
		}
		others(t, s)
	})

	t.Run("OnlyPending", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		putPending(t, s, pendingTOTP("totp-p", "u-1", at(0)))
		deleteTOTP(t, s, "u-1", false, false)
		wantNoPending(t, s, "u-1", "totp-p", "after DeleteTOTP")
	})

	t.Run("OnlyRecoveryCodes", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		if err := s.ReplaceRecoveryCodes(t.Context(), "u-1", recoveryHashes("u-1", "a", 4), at(0)); err != nil {
			t.Fatalf("ReplaceRecoveryCodes: %v", err)
		}
		deleteTOTP(t, s, "u-1", true, false)
		wantNoRecovery(t, s, "u-1", "after DeleteTOTP with recovery")
	})

	t.Run("Nothing", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		deleteTOTP(t, s, "u-1", true, false)
		deleteTOTP(t, s, "nobody", true, false)
	})
}

func testMFAEnabled(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2", "u-3", "u-4")
	confirmTOTP(t, s, "totp-1", "u-1", 1, nil)
	putPending(t, s, pendingTOTP("totp-2", "u-2", at(0)))
	if err := s.ReplaceRecoveryCodes(t.Context(), "u-3", recoveryHashes("u-3", "a", 4), at(0)); err != nil {
		t.Fatalf("ReplaceRecoveryCodes: %v", err)
	}
	confirmTOTP(t, s, "totp-4", "u-4", 1, nil)

	got, err := s.MFAEnabled(t.Context(), []string{"u-1", "u-2", "u-3", "nobody", "u-4"})
	if err != nil {
		t.Fatalf("MFAEnabled: %v", err)
	}
	for _, tc := range []struct {
		id   string
		want bool
	}{{"u-1", true}, {"u-2", false}, {"u-3", false}, {"nobody", false}, {"u-4", true}} {
		if got[tc.id] != tc.want {
			t.Errorf("MFAEnabled[%s] = %v, want %v", tc.id, got[tc.id], tc.want)
		}
	}
	for id, on := range got {
		if on && id != "u-1" && id != "u-4" {
			t.Errorf("MFAEnabled reports %s, which was not asked about or has no authenticator", id)
		}
	}

	// Only the ids asked about.
	got, err = s.MFAEnabled(t.Context(), []string{"u-4"})
	if err != nil || !got["u-4"] || got["u-1"] {
		t.Errorf("MFAEnabled([u-4]) = %v, %v; want only u-4", got, err)
	}
	got, err = s.MFAEnabled(t.Context(), nil)
	if err != nil || len(got) != 0 {
		t.Errorf("MFAEnabled(nil) = %v, %v; want an empty answer", got, err)
	}

	if _, err := s.DeleteTOTP(t.Context(), "u-1", false); err != nil {
		t.Fatalf("DeleteTOTP: %v", err)
	}
	got, err = s.MFAEnabled(t.Context(), []string{"u-1", "u-4"})
	if err != nil || got["u-1"] || !got["u-4"] {
		t.Errorf("MFAEnabled after DeleteTOTP(u-1) = %v, %v; want only u-4", got, err)
	}
}

func testMFAPurge(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2", "u-3")
	now := at(time.Hour)
	oldC := createMFAChallenge(t, s, newMFAChallenge("old", "u-1", now.Add(-10*time.Minute))) // expired 5 min ago
	liveC := createMFAChallenge(t, s, newMFAChallenge("live", "u-1", now.Add(-time.Minute)))
	oldP := putPending(t, s, pendingTOTP("totp-old", "u-1", now.Add(-time.Hour)))
	liveP := putPending(t, s, pendingTOTP("totp-live", "u-2", now.Add(-time.Minute)))
	confirmed := confirmTOTP(t, s, "totp-c", "u-3", 5, nil) // made at at(0): long before now

	if err := s.PurgeMFA(t.Context(), now); err != nil {
		t.Fatalf("PurgeMFA: %v", err)
	}
	// Asked at a time it would still be live, the purged challenge is gone.
	wantNoMFAChallenge(t, s, oldC, oldC.CreatedAt, "after the purge")
	wantMFAChallenge(t, s, liveC, 0, now)
	wantNoPending(t, s, "u-1", oldP.ID, "after the purge")
	checkTOTP(t, getPending(t, s, "u-2", liveP.ID), liveP)
	checkTOTP(t, getConfirmed(t, s, "u-3"), confirmed)
}

func testMFADeleteUser(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	confirmTOTP(t, s, "totp-1", "u-1", 1, recoveryHashes("u-1", "a", 3))
	putPending(t, s, pendingTOTP("totp-p", "u-1", at(0)))
	c := createMFAChallenge(t, s, newMFAChallenge("c-1", "u-1", at(0)))
	theirs := confirmTOTP(t, s, "totp-2", "u-2", 1, recoveryHashes("u-2", "a", 3))
	theirC := createMFAChallenge(t, s, newMFAChallenge("c-2", "u-2", at(0)))

	deleteUser(t, s, "u-1")
	wantNoConfirmed(t, s, "u-1", "after DeleteUser")
	wantNoPending(t, s, "u-1", "totp-p", "after DeleteUser")
	wantNoRecovery(t, s, "u-1", "after DeleteUser")
	wantNoMFAChallenge(t, s, c, at(0), "after DeleteUser")
	checkTOTP(t, getConfirmed(t, s, "u-2"), theirs)
	wantRecovery(t, s, "u-2", 3, 3, *theirs.ConfirmedAt)
	wantMFAChallenge(t, s, theirC, 0, at(0))
}

// The audit events of a redemption are written with it, and not at all
// when it is refused; so is the lockout count it clears.
func testRedeemAudit(t *testing.T, open func(t *testing.T) MFABackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	confirmTOTP(t, s, "totp-1", "u-1", 100, nil)
	now := at(time.Hour)
	c := createMFAChallenge(t, s, newMFAChallenge("c-1", "u-1", now))
	event := func(id string) *auth.AuditEvent {
		return &auth.AuditEvent{ID: id, Type: "mfa.challenge.succeeded", At: now, UserID: "u-1", IP: "192.0.2.1", Details: map[string]any{"method": "totp"}}
	}
	count := func() int {
		t.Helper()
		evs, err := s.ListAudit(t.Context(), auth.AuditFilter{UserID: "u-1", Type: "mfa.challenge.succeeded", Limit: 10})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		return len(evs)
	}
	// Two attempts pending against a threshold of two: a third would lock.
	const lock = "lock-u-1"
	attempt := func() time.Duration {
		t.Helper()
		d, _, err := s.BeginAttempt(t.Context(), lock, 2, time.Hour, now)
		if err != nil {
			t.Fatalf("BeginAttempt: %v", err)
		}
		return d
	}
	attempt()
	attempt()
	// Refused (a replayed step): no event, the count stays.
	bad := redemption("bad", "u-1", now)
	bad.ChallengeHash, bad.TOTPID, bad.Step, bad.Audit, bad.ClearLockout = c.Hash, "totp-1", 100, []*auth.AuditEvent{event("ev-bad")}, lock
	wantErr(t, "RedeemMFA of a used step", s.RedeemMFA(t.Context(), bad), auth.ErrMFAReplay)
	if n := count(); n != 0 {
		t.Fatalf("%d audit events after a refused redemption, want 0", n)
	}
	ok := redemption("ok", "u-1", now)
	ok.ChallengeHash, ok.TOTPID, ok.Step, ok.Audit, ok.ClearLockout = c.Hash, "totp-1", 101, []*auth.AuditEvent{event("ev-ok")}, lock
	if err := s.RedeemMFA(t.Context(), ok); err != nil {
		t.Fatalf("RedeemMFA: %v", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d audit events after the redemption, want 1", n)
	}
	// Cleared: two more attempts fit under the threshold again.
	attempt()
	if d := attempt(); d != 0 {
		t.Fatalf("the lockout count was not cleared by the redemption: locked for %s", d)
	}
}
