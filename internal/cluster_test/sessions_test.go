package clustertest

import (
	"net/http"
	"slices"
	"testing"
)

// TestSessions checks that cookie sessions live in the shared store: a
// session made on one node works on the other, and ending it anywhere ends
// it everywhere at once (SPEC §4: "a revoked session stops working on every
// node at once").
func TestSessions(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, nil)

	t.Run("cookie and logout across nodes", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			made, used *node
		}{
			{"made on A, used and logged out on B", cl.A, cl.B},
			{"made on B, used and logged out on A", cl.B, cl.A},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := newUser(t, tc.made)
				c, _ := tc.made.login(t, u)
				r := tc.used.me(t, u, withCookie(c))
				if r.Status != http.StatusOK || r.Str(t, "email") != u.Email {
					t.Fatalf("a session made on node %s, GET /v1/me on node %s: want 200 with %s, got %s", tc.made.Name, tc.used.Name, u.Email, r)
				}
				if r := tc.used.do(t, "DELETE", "/v1/sessions/current", nil, withCookie(c), fromIP(u.IP)); r.Status != http.StatusNoContent {
					t.Fatalf("logout on node %s: want 204, got %s", tc.used.Name, r)
				}
				if r := tc.made.me(t, u, withCookie(c)); r.Status != http.StatusUnauthorized {
					t.Fatalf("logged out on node %s, the cookie on node %s at once: want 401, got %s", tc.used.Name, tc.made.Name, r)
				}
			})
		}
	})

	t.Run("a session made on B, revoked by id on A", func(t *testing.T) {
		u := newUser(t, cl.A)
		onB, idB := cl.B.login(t, u)
		onA, idA := cl.A.login(t, u)
		r := cl.A.do(t, "GET", "/v1/sessions", nil, withCookie(onA), fromIP(u.IP))
		if r.Status != http.StatusOK {
			t.Fatalf("GET /v1/sessions on A: %s", r)
		}
		var listed []string
		sessions, _ := r.JSON(t)["sessions"].([]any)
		for _, s := range sessions {
			if m, ok := s.(map[string]any); ok {
				id, _ := m["id"].(string)
				listed = append(listed, id)
			}
		}
		if !slices.Contains(listed, idA) || !slices.Contains(listed, idB) {
			t.Fatalf("node A lists sessions %v, want both %s (made on A) and %s (made on B)", listed, idA, idB)
		}
		if r := cl.A.do(t, "DELETE", "/v1/sessions/"+idB, nil, withCookie(onA), fromIP(u.IP)); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE /v1/sessions/{id} on A: want 204, got %s", r)
		}
		if r := cl.B.me(t, u, withCookie(onB)); r.Status != http.StatusUnauthorized {
			t.Fatalf("the session revoked on A, its cookie on B at once: want 401, got %s", r)
		}
		if r := cl.B.me(t, u, withCookie(onA)); r.Status != http.StatusOK {
			t.Fatalf("the session that was not revoked, on B: want 200, got %s", r)
		}
	})

	t.Run("a password change on A ends the other sessions on B", func(t *testing.T) {
		u := newUser(t, cl.A)
		onA, _ := cl.A.login(t, u)
		onB, _ := cl.B.login(t, u)
		_, refresh := cl.B.tokens(t, u)
		next := "the next pass phrase " + randomHex(t, 4)
		body := map[string]string{"current_password": u.Password, "new_password": next}
		if r := cl.A.do(t, "POST", "/v1/password/change", body, withCookie(onA), fromIP(u.IP)); r.Status != http.StatusNoContent {
			t.Fatalf("POST /v1/password/change on A: want 204, got %s", r)
		}
		for _, tc := range []struct {
			name string
			got  *response
			want int
		}{
			{"the session made on B, on B", cl.B.me(t, u, withCookie(onB)), http.StatusUnauthorized},
			{"the session that changed the password, on B", cl.B.me(t, u, withCookie(onA)), http.StatusOK},
			{"a refresh token issued by B, on B", cl.B.refresh(t, u, refresh), http.StatusBadRequest},
			{"the old password, on B", cl.B.passwordGrant(t, u, u.Password, randomIP()), http.StatusBadRequest},
			{"the new password, on B", cl.B.passwordGrant(t, u, next, randomIP()), http.StatusOK},
		} {
			if tc.got.Status != tc.want {
				t.Errorf("after the password change on A, %s: want %d, got %s", tc.name, tc.want, tc.got)
			}
		}
	})
}
