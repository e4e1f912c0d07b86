package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// RunChallenges runs the challenge contract (OIDC login state, passkey
// ceremonies: short-lived and single-use). open must return a fresh, empty
// store each time it is called (once per subtest) and arrange its cleanup
// with t.Cleanup. Both the SQL store and Redis implement it.
//
// Redis expires a challenge's key by the wall clock, so the challenges of
// this suite expire in the future; "now" moves past an expiry only in the
// argument passed to the store.
func RunChallenges(t *testing.T, open func(t *testing.T) auth.ChallengeStore) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testChallengeRoundTrip(t, open) })
	t.Run("Unknown", func(t *testing.T) { testChallengeUnknown(t, open) })
	t.Run("Expiry", func(t *testing.T) { testChallengeExpiry(t, open) })
	t.Run("ConcurrentTake", func(t *testing.T) { testChallengeConcurrentTake(t, open) })
}

// challengeValue is a value of n bytes that no text encoding would keep
// intact by accident: every byte value, NUL and invalid UTF-8 included.
func challengeValue(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func putChallenge(t *testing.T, s auth.ChallengeStore, key string, value []byte, expires time.Time) {
	t.Helper()
	if err := s.PutChallenge(t.Context(), key, bytes.Clone(value), expires); err != nil {
		t.Fatalf("PutChallenge(%s): %v", key, err)
	}
}

func wantChallenge(t *testing.T, s auth.ChallengeStore, key string, want []byte, now time.Time) {
	t.Helper()
	got, err := s.TakeChallenge(t.Context(), key, now)
	if err != nil {
		t.Fatalf("TakeChallenge(%s): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("TakeChallenge(%s) = %d bytes %.16x…, want %d bytes %.16x…", key, len(got), got, len(want), want)
	}
}

func wantNoChallenge(t *testing.T, s auth.ChallengeStore, key string, now time.Time, why string) {
	t.Helper()
	got, err := s.TakeChallenge(t.Context(), key, now)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("TakeChallenge(%s) %s = %d bytes, %v; want ErrNotFound", key, why, len(got), err)
	}
}

func testChallengeRoundTrip(t *testing.T, open func(t *testing.T) auth.ChallengeStore) {
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"OneByte", []byte{0}},
		{"Binary", challengeValue(0, 256)},
		{"OIDCState", []byte(`{"provider":"google","nonce":"n-0S6_WzA2Mj","verifier":"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk","link":"","next":"/account?tab=security&x=\u00e9"}`)},
		{"PasskeySession", challengeValue(3, 8<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			base := sessionBase()
			expires := base.Add(5*time.Minute + 999_999*time.Microsecond)
			putChallenge(t, s, "oidc:state-1", tc.value, expires)
			// Another challenge must not be returned instead, nor taken.
			other := challengeValue(9, 40)
			putChallenge(t, s, "passkey:login:state-1", other, expires)

			now := base.Add(time.Minute)
			wantChallenge(t, s, "oidc:state-1", tc.value, now)
			wantNoChallenge(t, s, "oidc:state-1", now, "a second time")
			wantChallenge(t, s, "passkey:login:state-1", other, now)
		})
	}
}

func testChallengeUnknown(t *testing.T, open func(t *testing.T) auth.ChallengeStore) {
	s := open(t)
	base := sessionBase()
	value := challengeValue(1, 32)
	putChallenge(t, s, "oidc:abc", value, base.Add(5*time.Minute))
	now := base.Add(time.Minute)
	for _, key := range []string{"oidc:nope", "oidc:ab", "oidc:abcd", "OIDC:abc", ""} {
		wantNoChallenge(t, s, key, now, "of an unknown key")
	}
	wantChallenge(t, s, "oidc:abc", value, now)
}

func testChallengeExpiry(t *testing.T, open func(t *testing.T) auth.ChallengeStore) {
	s := open(t)
	base := sessionBase()
	expires := base.Add(10*time.Minute + 17*time.Microsecond)
	live, dead := challengeValue(1, 64), challengeValue(2, 64)
	putChallenge(t, s, "live", live, expires)
	putChallenge(t, s, "dead", dead, expires)

	wantNoChallenge(t, s, "dead", expires, "at its expiry")
	wantNoChallenge(t, s, "dead", expires.Add(time.Hour), "an hour after its expiry")
	wantChallenge(t, s, "live", live, expires.Add(-time.Microsecond))
}

// testChallengeConcurrentTake: of concurrent takers of one challenge (a
// replayed OIDC callback, a passkey assertion sent twice), exactly one
// gets it. Several rounds, one new challenge each, give a lost race more
// chances to show.
func testChallengeConcurrentTake(t *testing.T, open func(t *testing.T) auth.ChallengeStore) {
	s := open(t)
	base := sessionBase()
	other := challengeValue(6, 200)
	putChallenge(t, s, "oidc:other", other, base.Add(5*time.Minute))
	now := base.Add(time.Minute)
	for round := range 4 {
		key := fmt.Sprintf("oidc:raced-%d", round)
		value := challengeValue(byte(round), 200)
		putChallenge(t, s, key, value, base.Add(5*time.Minute))
		var (
			got  [racers][]byte
			errs = make([]error, racers)
		)
		race(racers, func(i int) {
			got[i], errs[i] = s.TakeChallenge(t.Context(), key, now)
		})
		w := oneWinner(t, fmt.Sprintf("round %d: TakeChallenge of one key", round), errs, auth.ErrNotFound)
		if !bytes.Equal(got[w], value) {
			t.Errorf("the winning TakeChallenge = %d bytes %.16x…, want the %d stored", len(got[w]), got[w], len(value))
		}
		wantNoChallenge(t, s, key, now, "after the race")
	}
	wantChallenge(t, s, "oidc:other", other, now)
}
