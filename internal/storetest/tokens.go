package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// TokenBackend is a one-time token store under test (password-reset and
// email-verification tokens): auth.TokenStore, plus CreateUser to make the
// tokens' owners exist (see userMaker). Both the SQL store and Redis
// implement it.
type TokenBackend interface {
	auth.TokenStore
	userMaker
}

// RunTokens runs the one-time token contract. open must return a fresh,
// empty backend each time it is called (once per subtest) and arrange its
// cleanup with t.Cleanup.
//
// Redis expires a token's key by the wall clock, so the tokens of this
// suite are dated around the real time and expire in the future; "now"
// moves past an expiry only in the argument passed to the store.
func RunTokens(t *testing.T, open func(t *testing.T) TokenBackend) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testTokenRoundTrip(t, open) })
	t.Run("UnknownOrOtherPurpose", func(t *testing.T) { testTokenUnknown(t, open) })
	t.Run("Expiry", func(t *testing.T) { testTokenExpiry(t, open) })
	t.Run("NewerSupersedesOlder", func(t *testing.T) { testTokenSupersede(t, open) })
	t.Run("ConcurrentConsume", func(t *testing.T) { testTokenConcurrentConsume(t, open) })
	t.Run("ConcurrentPut", func(t *testing.T) { testTokenConcurrentPut(t, open) })
	t.Run("DeleteUserCascades", func(t *testing.T) { testTokenDeleteUser(t, open) })
}

// newOneTime makes token id of userID for purpose, created at created and
// live for an hour; its hash is hashOf("one-time-" + id).
func newOneTime(id, userID, purpose string, created time.Time) *auth.OneTimeToken {
	return &auth.OneTimeToken{
		Hash:      hashOf("one-time-" + id),
		UserID:    userID,
		Purpose:   purpose,
		Email:     "zoë+" + id + "@example.com",
		CreatedAt: created,
		ExpiresAt: created.Add(time.Hour + 999_999*time.Microsecond),
	}
}

func putToken(t *testing.T, s TokenBackend, x *auth.OneTimeToken) *auth.OneTimeToken {
	t.Helper()
	in := *x // the store may not keep a pointer to the caller's value
	if err := s.PutToken(t.Context(), &in); err != nil {
		t.Fatalf("PutToken(%.12s…): %v", x.Hash, err)
	}
	return x
}

func checkOneTime(t *testing.T, what string, got, want *auth.OneTimeToken) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil token, nil error", what)
	}
	if got.Hash != want.Hash || got.UserID != want.UserID || got.Purpose != want.Purpose || got.Email != want.Email {
		t.Errorf("%s = {Hash %.12s…, UserID %q, Purpose %q, Email %q}, want {%.12s…, %q, %q, %q}",
			what, got.Hash, got.UserID, got.Purpose, got.Email, want.Hash, want.UserID, want.Purpose, want.Email)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt = %v, want %v", what, got.CreatedAt, want.CreatedAt)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("%s: ExpiresAt = %v, want %v", what, got.ExpiresAt, want.ExpiresAt)
	}
}

// wantLive requires x to be live at now (PeekToken finds it), without
// using it.
func wantLive(t *testing.T, s TokenBackend, x *auth.OneTimeToken, now time.Time) {
	t.Helper()
	got, err := s.PeekToken(t.Context(), x.Hash, x.Purpose, now)
	if err != nil {
		t.Fatalf("PeekToken(%s token of %s): %v", x.Purpose, x.UserID, err)
	}
	checkOneTime(t, "PeekToken", got, x)
}

// wantDead requires PeekToken and ConsumeToken of x at now to be
// ErrNotFound. ConsumeToken comes last: a store may delete a dead token it
// is asked to consume.
func wantDead(t *testing.T, s TokenBackend, x *auth.OneTimeToken, now time.Time, why string) {
	t.Helper()
	got, err := s.PeekToken(t.Context(), x.Hash, x.Purpose, now)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("PeekToken(%s token of %s) %s = %+v, %v; want ErrNotFound", x.Purpose, x.UserID, why, got, err)
	}
	got, err = s.ConsumeToken(t.Context(), x.Hash, x.Purpose, now)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ConsumeToken(%s token of %s) %s = %+v, %v; want ErrNotFound", x.Purpose, x.UserID, why, got, err)
	}
}

func testTokenRoundTrip(t *testing.T, open func(t *testing.T) TokenBackend) {
	for _, purpose := range []string{auth.PurposeReset, auth.PurposeVerify} {
		t.Run(purpose, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1", "u-2")
			base := sessionBase()
			x := putToken(t, s, newOneTime("a", "u-1", purpose, base.Add(-time.Minute+3*time.Microsecond)))
			other := putToken(t, s, newOneTime("b", "u-2", purpose, base))
			now := base.Add(time.Minute)

			// Peeking uses nothing: twice, and the token is still there.
			wantLive(t, s, x, now)
			wantLive(t, s, x, now)

			got, err := s.ConsumeToken(t.Context(), x.Hash, purpose, now)
			if err != nil {
				t.Fatalf("ConsumeToken: %v", err)
			}
			checkOneTime(t, "ConsumeToken", got, x)
			wantDead(t, s, x, now, "after it was consumed")

			// Another user's token of the same purpose is untouched.
			wantLive(t, s, other, now)
		})
	}
}

func testTokenUnknown(t *testing.T, open func(t *testing.T) TokenBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	base := sessionBase()
	x := putToken(t, s, newOneTime("a", "u-1", auth.PurposeReset, base))
	now := base.Add(time.Minute)

	for _, tc := range []struct{ name, hash, purpose string }{
		{"UnknownHash", hashOf("never issued"), auth.PurposeReset},
		{"EmptyHash", "", auth.PurposeReset},
		{"HashPrefix", x.Hash[:32], auth.PurposeReset},
		// A reset token is not a verification token, nor the reverse.
		{"OtherPurpose", x.Hash, auth.PurposeVerify},
		{"EmptyPurpose", x.Hash, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.PeekToken(t.Context(), tc.hash, tc.purpose, now)
			if !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("PeekToken = %+v, %v; want ErrNotFound", got, err)
			}
			got, err = s.ConsumeToken(t.Context(), tc.hash, tc.purpose, now)
			if !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("ConsumeToken = %+v, %v; want ErrNotFound", got, err)
			}
		})
	}
	// None of those refusals used the token.
	got, err := s.ConsumeToken(t.Context(), x.Hash, x.Purpose, now)
	if err != nil {
		t.Fatalf("ConsumeToken with its own purpose after the refusals: %v", err)
	}
	checkOneTime(t, "ConsumeToken", got, x)
}

func testTokenExpiry(t *testing.T, open func(t *testing.T) TokenBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	base := sessionBase()
	// Two tokens with the same expiry; different purposes, so neither
	// supersedes the other.
	peeked := putToken(t, s, newOneTime("a", "u-1", auth.PurposeReset, base))
	consumed := putToken(t, s, newOneTime("b", "u-1", auth.PurposeVerify, base))
	last := peeked.ExpiresAt.Add(-time.Microsecond) // the last live instant

	wantLive(t, s, peeked, last)
	wantDead(t, s, peeked, peeked.ExpiresAt, "at its expiry")
	wantDead(t, s, peeked, peeked.ExpiresAt.Add(24*time.Hour), "a day after its expiry")

	got, err := s.ConsumeToken(t.Context(), consumed.Hash, consumed.Purpose, last)
	if err != nil {
		t.Fatalf("ConsumeToken at the last instant before expiry: %v", err)
	}
	checkOneTime(t, "ConsumeToken", got, consumed)
}

func testTokenSupersede(t *testing.T, open func(t *testing.T) TokenBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	base := sessionBase()
	now := base.Add(time.Minute)

	older := putToken(t, s, newOneTime("older", "u-1", auth.PurposeReset, base.Add(-time.Second)))
	newer := putToken(t, s, newOneTime("newer", "u-1", auth.PurposeReset, base))
	wantDead(t, s, older, now, "after a newer token of the same user and purpose")
	wantLive(t, s, newer, now)

	// Neither another purpose of the user nor another user's token of the
	// purpose supersedes it.
	verify := putToken(t, s, newOneTime("verify", "u-1", auth.PurposeVerify, base))
	theirs := putToken(t, s, newOneTime("theirs", "u-2", auth.PurposeReset, base))
	wantLive(t, s, newer, now)
	wantLive(t, s, verify, now)
	wantLive(t, s, theirs, now)

	// After the newest was used, the next one is stored as usual and
	// supersedes nothing else.
	if _, err := s.ConsumeToken(t.Context(), newer.Hash, newer.Purpose, now); err != nil {
		t.Fatalf("ConsumeToken: %v", err)
	}
	next := putToken(t, s, newOneTime("next", "u-1", auth.PurposeReset, base.Add(time.Second)))
	wantLive(t, s, next, now)
	wantLive(t, s, verify, now)
	wantLive(t, s, theirs, now)
	wantDead(t, s, older, now, "after two newer tokens")
}

// testTokenConcurrentConsume: of concurrent redemptions of one token,
// exactly one gets it. Several rounds, one new token each, give a lost
// race more chances to show.
func testTokenConcurrentConsume(t *testing.T, open func(t *testing.T) TokenBackend) {
	for _, purpose := range []string{auth.PurposeReset, auth.PurposeVerify} {
		t.Run(purpose, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1")
			base := sessionBase()
			now := base.Add(time.Minute)
			for round := range 4 {
				x := putToken(t, s, newOneTime(fmt.Sprintf("t-%d", round), "u-1", purpose, base))
				var (
					got  [racers]*auth.OneTimeToken
					errs = make([]error, racers)
				)
				race(racers, func(i int) {
					got[i], errs[i] = s.ConsumeToken(t.Context(), x.Hash, purpose, now)
				})
				w := oneWinner(t, fmt.Sprintf("round %d: ConsumeToken of one token", round), errs, auth.ErrNotFound)
				checkOneTime(t, "the winning ConsumeToken", got[w], x)
				wantDead(t, s, x, now, "after the race")
			}
		})
	}
}

// testTokenConcurrentPut: tokens of one user and purpose put at the same
// time (two mail workers sending two reset mails) leave exactly one live:
// a newer token supersedes the older ones even when they race.
func testTokenConcurrentPut(t *testing.T, open func(t *testing.T) TokenBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	base := sessionBase()
	verify := putToken(t, s, newOneTime("verify", "u-1", auth.PurposeVerify, base))
	var (
		xs   [racers]*auth.OneTimeToken
		errs = make([]error, racers)
	)
	for i := range racers {
		xs[i] = newOneTime(fmt.Sprintf("r-%02d", i), "u-1", auth.PurposeReset, base.Add(time.Duration(i)*time.Microsecond))
	}
	race(racers, func(i int) {
		in := *xs[i]
		errs[i] = s.PutToken(t.Context(), &in)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("PutToken %d: %v", i, err)
		}
	}
	now := base.Add(time.Minute)
	live := 0
	for _, x := range xs {
		_, err := s.PeekToken(t.Context(), x.Hash, x.Purpose, now)
		switch {
		case err == nil:
			live++
		case !errors.Is(err, auth.ErrNotFound):
			t.Errorf("PeekToken: %v", err)
		}
	}
	if live != 1 {
		t.Errorf("%d of %d concurrently put reset tokens of one user are live, want exactly 1", live, racers)
	}
	wantLive(t, s, verify, now)
}

func testTokenDeleteUser(t *testing.T, open func(t *testing.T) TokenBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	base := sessionBase()
	reset := putToken(t, s, newOneTime("reset", "u-1", auth.PurposeReset, base))
	verify := putToken(t, s, newOneTime("verify", "u-1", auth.PurposeVerify, base))
	theirs := putToken(t, s, newOneTime("theirs", "u-2", auth.PurposeReset, base))

	deleteUser(t, s, "u-1")
	now := base.Add(time.Minute)
	wantDead(t, s, reset, now, "after DeleteUser")
	wantDead(t, s, verify, now, "after DeleteUser")
	wantLive(t, s, theirs, now)
}
