package clustertest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// reuseGrace is GATEHOUSE_REFRESH_REUSE_GRACE in TestTokens.
const reuseGrace = time.Second

// TestTokens checks that refresh-token state and signing keys live in the
// shared database: reuse detected on one node revokes the family on the
// other, and access tokens from either node verify on both.
func TestTokens(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, map[string]string{"GATEHOUSE_REFRESH_REUSE_GRACE": reuseGrace.String()})

	t.Run("refresh-token reuse across nodes", func(t *testing.T) {
		u := newUser(t, cl.A)
		_, first := cl.A.tokens(t, u)
		rotated := time.Now()
		r := cl.A.refresh(t, u, first)
		if r.Status != http.StatusOK {
			t.Fatalf("refresh on A: %s", r)
		}
		next := r.Str(t, "refresh_token")

		// Inside the grace window node B answers a repeat with the same
		// successor: both derive it from the shared secret.
		again := cl.B.refresh(t, u, first)
		if elapsed := time.Since(rotated); elapsed < reuseGrace*9/10 {
			if again.Status != http.StatusOK || again.Str(t, "refresh_token") != next {
				t.Fatalf("repeat on B %v after the rotation on A (inside the %v grace): want 200 with A's successor, got %s", elapsed, reuseGrace, again)
			}
		} else {
			t.Logf("the repeat on B came %v after the rotation, too late to check the grace window", elapsed)
		}

		time.Sleep(time.Until(rotated.Add(reuseGrace * 3 / 2)))
		replay := cl.B.refresh(t, u, first)
		if replay.Status != http.StatusBadRequest || oauthError(t, replay) != "invalid_grant" {
			t.Fatalf("a refresh token rotated on A, replayed on B past the grace: want 400 invalid_grant, got %s", replay)
		}
		if r := cl.A.refresh(t, u, next); r.Status != http.StatusBadRequest || oauthError(t, r) != "invalid_grant" {
			t.Fatalf("after reuse was detected on B, the family's newest token on A: want 400 invalid_grant, got %s", r)
		}
	})

	t.Run("access tokens verify on both nodes", func(t *testing.T) {
		for _, tc := range []struct {
			name         string
			issuer, user *node
		}{
			{"issued by A, used on B", cl.A, cl.B},
			{"issued by B, used on A", cl.B, cl.A},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := newUser(t, tc.issuer)
				access, _ := tc.issuer.tokens(t, u)
				if r := tc.user.me(t, u, withBearer(access)); r.Status != http.StatusOK || r.Str(t, "email") != u.Email {
					t.Fatalf("an access token from node %s on node %s: want 200 with %s, got %s", tc.issuer.Name, tc.user.Name, u.Email, r)
				}
			})
		}
	})

	t.Run("both nodes publish the same keys", func(t *testing.T) {
		ka, kb := cl.A.kids(t), cl.B.kids(t)
		if len(ka) == 0 || !slices.Equal(ka, kb) {
			t.Fatalf("JWKS key ids: A %v, B %v; want the same, non-empty", ka, kb)
		}
	})
}

// TestKeyRotationReachesEveryNode runs `gatehouse keys rotate` against the
// shared database while two nodes run. A node started after the rotation
// signs with the new key at once, and a running node must accept its tokens
// at once too (a node looks up a kid it does not know when its keys are
// more than 10 s old); every node publishes and signs with the new key
// after its next periodic reload. It takes about 30 s: nodes reload their
// keys every 30 s, so this is the one slow test of the package.
func TestKeyRotationReachesEveryNode(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	u := newUser(t, cl.A)
	before, _ := cl.A.tokens(t, u)
	oldKID := kidOf(t, before)

	// Let A's keys get older than 10 s first, so that the token from C
	// below makes A look the new kid up. Nothing shows B the new kid: B
	// has to learn it from its periodic reload, about 30 s after its start.
	time.Sleep(time.Until(cl.A.Started.Add(11 * time.Second)))
	out := cl.gatehouse(t, "keys", "rotate")
	rotated := time.Now()
	// "new signing key <kid> (<alg>)"
	f := strings.Fields(out)
	if len(f) < 4 || f[0] != "new" {
		t.Fatalf("gatehouse keys rotate said %q; want \"new signing key KID (ALG)\"", out)
	}
	newKID := f[3]

	c := cl.startNode(t, "C")
	fromC, _ := c.tokens(t, u)
	if kid := kidOf(t, fromC); kid != newKID {
		t.Fatalf("node C, started after the rotation, signs with %s; want the new %s", kid, newKID)
	}
	if r := cl.A.me(t, u, withBearer(fromC)); r.Status != http.StatusOK {
		t.Fatalf("a token signed with the new key by node C, on node A before its periodic reload: want 200, got %s", r)
	}

	eventually(t, 35*time.Second-time.Since(rotated), "both nodes' JWKS list the key "+newKID, func() bool {
		return slices.Contains(cl.A.kids(t), newKID) && slices.Contains(cl.B.kids(t), newKID)
	})
	t.Logf("both nodes published the new key %v after the rotation", time.Since(rotated).Round(100*time.Millisecond))
	ka, kb := cl.A.kids(t), cl.B.kids(t)
	if !slices.Equal(ka, kb) || !slices.Contains(ka, oldKID) {
		t.Fatalf("after the rotation the JWKS key ids are A %v, B %v; want the same on both, with the old %s and the new %s", ka, kb, oldKID, newKID)
	}

	for _, tc := range []struct {
		name         string
		issuer, user *node
	}{
		{"issued by A, used on B", cl.A, cl.B},
		{"issued by B, used on A", cl.B, cl.A},
	} {
		t.Run(tc.name, func(t *testing.T) {
			access, _ := tc.issuer.tokens(t, u)
			if kid := kidOf(t, access); kid != newKID {
				t.Errorf("node %s signs with %s after the rotation, want the new %s", tc.issuer.Name, kid, newKID)
			}
			if r := tc.user.me(t, u, withBearer(access)); r.Status != http.StatusOK {
				t.Errorf("a token signed with the new key by node %s, on node %s: want 200, got %s", tc.issuer.Name, tc.user.Name, r)
			}
			if r := tc.user.me(t, u, withBearer(before)); r.Status != http.StatusOK {
				t.Errorf("a token signed with the old key, on node %s: want 200, got %s", tc.user.Name, r)
			}
		})
	}
}
