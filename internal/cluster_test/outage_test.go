package clustertest

import (
	"net/http"
	"testing"
	"time"
)

// TestRedisOutage kills the shared Redis: both nodes must report not ready,
// refuse what needs Redis with 503 and Retry-After (fail closed: no
// session check and no rate limit, so no login and no refresh), and
// recover by themselves when Redis is back.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)
	u := newUser(t, cl.A)
	cookie, _ := cl.A.login(t, u)
	_, refresh := cl.A.tokens(t, u)
	if r := cl.B.me(t, u, withCookie(cookie)); r.Status != http.StatusOK {
		t.Fatalf("baseline: a session from A on B: %s", r)
	}
	nodes := []*node{cl.A, cl.B}
	ready := func(n *node) bool { return n.do(t, "GET", "/readyz", nil).Status == http.StatusOK }

	cl.Redis.Stop(t)
	took := eventually(t, 10*time.Second, "with Redis down, /readyz non-200 on both nodes", func() bool {
		return !ready(cl.A) && !ready(cl.B)
	})
	t.Logf("/readyz turned red on both nodes %v after Redis went down", took.Round(100*time.Millisecond))

	for _, n := range nodes {
		for _, tc := range []struct {
			name string
			send func() *response
		}{
			{"cookie GET /v1/me", func() *response { return n.me(t, u, withCookie(cookie)) }},
			{"session login", func() *response { return n.sessionLogin(t, u, u.Password, u.IP) }},
			{"password grant", func() *response { return n.passwordGrant(t, u, u.Password, u.IP) }},
			{"refresh", func() *response { return n.refresh(t, u, refresh) }},
		} {
			start := time.Now()
			r := tc.send()
			if r.Status != http.StatusServiceUnavailable {
				t.Errorf("Redis down, %s on node %s: want 503, got %s", tc.name, n.Name, r)
			} else if r.Header.Get("Retry-After") == "" {
				t.Errorf("Redis down, %s on node %s: 503 without Retry-After", tc.name, n.Name)
			}
			// Failing closed must also fail fast: a request must not wait
			// on a Redis that is gone (today about 1.7 s: go-redis dials
			// five times 100 ms apart, per attempt).
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Redis down, %s on node %s took %v; want under 5 s", tc.name, n.Name, d.Round(100*time.Millisecond))
			}
		}
	}

	cl.Redis.Start(t)
	took = eventually(t, 20*time.Second, "with Redis back, /readyz 200 on both nodes", func() bool {
		return ready(cl.A) && ready(cl.B)
	})
	t.Logf("/readyz turned green on both nodes %v after Redis came back", took.Round(100*time.Millisecond))

	// Redis kept nothing, so the old session is gone; new ones work.
	for _, n := range nodes {
		if r := n.me(t, u, withCookie(cookie)); r.Status != http.StatusUnauthorized {
			t.Errorf("the session from before the outage (Redis kept nothing) on node %s: want 401, got %s", n.Name, r)
		}
	}
	fresh, _ := cl.B.login(t, u)
	for _, n := range nodes {
		if r := n.me(t, u, withCookie(fresh)); r.Status != http.StatusOK {
			t.Errorf("a session made on B after the outage, on node %s: want 200, got %s", n.Name, r)
		}
	}
}
