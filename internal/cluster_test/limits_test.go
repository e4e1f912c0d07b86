package clustertest

import (
	"net/http"
	"strconv"
	"testing"
)

// login is one way to log in: the OAuth2 password grant or a cookie
// session.
type login struct {
	name string
	send func(n *node, t *testing.T, u *user, password, ip string) *response
}

var logins = []login{
	{"password grant", (*node).passwordGrant},
	{"session login", (*node).sessionLogin},
}

// wantTooMany checks a 429 with a Retry-After of at least one second.
func wantTooMany(t *testing.T, r *response, what string) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s: want 429, got %s", what, r)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("%s: 429 with Retry-After %q, want a number of seconds ≥ 1", what, r.Header.Get("Retry-After"))
	}
}

// TestLoginRateLimitAcrossNodes checks that the per-account+IP login limit
// (5 a minute) is counted in Redis: wrong passwords for one account from
// one address, alternating between the nodes, are refused from the 6th on.
func TestLoginRateLimitAcrossNodes(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	for _, l := range logins {
		t.Run(l.name, func(t *testing.T) {
			u := newUser(t, cl.A)
			for i := 1; i <= 6; i++ {
				n := cl.A
				if i%2 == 0 {
					n = cl.B
				}
				r := l.send(n, t, u, "wrong "+u.Password, u.IP)
				if i <= 5 {
					if r.Status == http.StatusTooManyRequests {
						t.Fatalf("attempt %d on node %s: 429 before the limit of 5", i, n.Name)
					}
					if r.Status != http.StatusBadRequest && r.Status != http.StatusUnauthorized {
						t.Fatalf("attempt %d (wrong password) on node %s: want 400 or 401, got %s", i, n.Name, r)
					}
					continue
				}
				wantTooMany(t, r, "the 6th wrong password in a minute for one account from one IP, alternating nodes")
			}
		})
	}
}

// TestLockoutAcrossNodes checks that consecutive failures lock the account
// on every node: the count lives in Redis and does not depend on the client
// address.
func TestLockoutAcrossNodes(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "3"})
	for _, tc := range []struct {
		name  string
		login login
		right *node
	}{
		{"right password by password grant on A", logins[0], cl.A},
		{"right password by session login on B", logins[1], cl.B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(t, cl.A)
			for i, n := range []*node{cl.A, cl.B, cl.A} {
				if r := n.passwordGrant(t, u, "wrong "+u.Password, randomIP()); r.Status != http.StatusBadRequest {
					t.Fatalf("wrong password %d on node %s: want 400, got %s", i+1, n.Name, r)
				}
			}
			wantTooMany(t, tc.login.send(tc.right, t, u, u.Password, randomIP()),
				"after 3 wrong passwords from 3 addresses over both nodes (threshold 3), the right password on node "+tc.right.Name)
		})
	}
}
