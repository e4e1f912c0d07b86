package guard_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"gatehouse/guard"
)

func TestMiddlewareResponses(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newGuard(t, f)
	down := newFakeGatehouse(t, clock, ed)
	down.set(func(f *fakeGatehouse) { f.jwksDown = true })
	gDown := newGuard(t, down)

	tests := []struct {
		name       string
		g          *guard.Guard
		header     http.Header
		wantStatus int
		wantAuth   string // WWW-Authenticate
		wantBody   string
	}{
		{"valid token", g, bearer(sign(t, ed, f.claims("alice"))), 200, "", "alice"},
		{"no credentials", g, nil, 401, `Bearer realm="gatehouse"`, "authentication required"},
		{"invalid token", g, bearer("abc.def.ghi"), 401, `Bearer realm="gatehouse", error="invalid_token", error_description="the credential is invalid, expired or revoked"`, "invalid"},
		{"gatehouse unreachable", gDown, bearer(sign(t, ed, down.claims("alice"))), 503, "", "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(tt.g.Middleware(okHandler()), request("GET", tt.header))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wantAuth {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wantAuth)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q lacks %q", rec.Body, tt.wantBody)
			}
			if rec.Code != 200 && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestOptional(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newGuard(t, f)
	for _, tt := range []struct {
		name   string
		header http.Header
		status int
		body   string
	}{
		{"anonymous", nil, 200, "anonymous"},
		{"valid token", bearer(sign(t, ed, f.claims("alice"))), 200, "alice"},
		{"invalid token is not anonymous", bearer("x.y.z"), 401, "invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(g.Optional(okHandler()), request("GET", tt.header))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
}

// as serves h to a request whose context carries p, as Middleware would.
func as(p *guard.Principal, h http.Handler, method string) *httptestResult {
	r := request(method, nil)
	if p != nil {
		r = r.WithContext(guard.WithPrincipal(r.Context(), p))
	}
	rec := serve(h, r)
	res := &httptestResult{Code: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &res.Problem)
	return res
}

type httptestResult struct {
	Code    int
	Header  http.Header
	Body    string
	Problem map[string]any
}

func TestRequireScopes(t *testing.T) {
	h := guard.RequireScopes("read", "write")(okHandler())
	tests := []struct {
		name         string
		p            *guard.Principal
		status       int
		missingScope string
	}{
		{"both", &guard.Principal{Subject: "alice", Scopes: []string{"write", "read"}}, 200, ""},
		{"read only", &guard.Principal{Subject: "alice", Scopes: []string{"read"}}, 403, "write"},
		{"none", &guard.Principal{Subject: "alice"}, 403, "read"},
		{"no principal (middleware missing)", nil, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := as(tt.p, h, "POST")
			if res.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", res.Code, tt.status, res.Body)
			}
			if tt.missingScope == "" {
				return
			}
			if got, want := res.Header.Get("WWW-Authenticate"), `Bearer realm="gatehouse", error="insufficient_scope", scope="read write"`; got != want {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
			if res.Problem["missing_scope"] != tt.missingScope || !strings.Contains(res.Problem["detail"].(string), "missing scope: "+tt.missingScope) {
				t.Errorf("body %s does not name the missing scope %s", res.Body, tt.missingScope)
			}
		})
	}
}

func TestRequireRoles(t *testing.T) {
	h := guard.RequireRoles("editor", "admin")(okHandler())
	tests := []struct {
		name   string
		p      *guard.Principal
		status int
	}{
		{"editor", &guard.Principal{Subject: "e", Roles: []string{"user", "editor"}}, 200},
		{"admin", &guard.Principal{Subject: "a", Roles: []string{"admin"}}, 200},
		{"user", &guard.Principal{Subject: "u", Roles: []string{"user"}}, 403},
		{"no roles", &guard.Principal{Subject: "u"}, 403},
		{"no principal", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := as(tt.p, h, "DELETE")
			if res.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", res.Code, tt.status, res.Body)
			}
			if res.Code == 403 {
				if !strings.Contains(res.Problem["detail"].(string), "editor or admin") {
					t.Errorf("detail does not name the roles: %s", res.Body)
				}
				if roles, _ := res.Problem["required_roles"].([]any); len(roles) != 2 {
					t.Errorf("required_roles: %s", res.Body)
				}
				if res.Header.Get("WWW-Authenticate") != "" {
					t.Errorf("a role is not a scope: no insufficient_scope challenge, got %q", res.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

type post struct{ ID, Author string }

func TestAuthorize(t *testing.T) {
	posts := map[string]*post{"1": {ID: "1", Author: "alice"}}
	load := func(w http.ResponseWriter, r *http.Request) (*post, bool) {
		p, ok := posts[r.URL.Query().Get("id")]
		if !ok {
			http.NotFound(w, r)
		}
		return p, ok
	}
	authorOrAdmin := func(p *guard.Principal, res *post) error { return guard.OwnerOr(p, res.Author, "admin") }
	served := func(w http.ResponseWriter, r *http.Request, res *post) { w.Write([]byte("edited " + res.ID)) }
	h := guard.Authorize(load, authorOrAdmin, served)
	alice := &guard.Principal{Subject: "alice", Roles: []string{"user"}}
	bob := &guard.Principal{Subject: "bob", Roles: []string{"user"}}
	admin := &guard.Principal{Subject: "root", Roles: []string{"admin"}}

	tests := []struct {
		name   string
		p      *guard.Principal
		id     string
		status int
		body   string
	}{
		{"author", alice, "1", 200, "edited 1"},
		{"another user", bob, "1", 403, "only the owner of this resource or a user with the role admin"},
		{"admin", admin, "1", 200, "edited 1"},
		{"missing post", alice, "2", 404, "not found"},
		{"anonymous", nil, "1", 401, "authentication required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request("PATCH", nil)
			r.URL.RawQuery = "id=" + tt.id
			if tt.p != nil {
				r = r.WithContext(guard.WithPrincipal(r.Context(), tt.p))
			}
			rec := serve(h, r)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
				t.Fatalf("%d %s; want %d %q", rec.Code, rec.Body, tt.status, tt.body)
			}
		})
	}

	t.Run("any other error refuses", func(t *testing.T) {
		h := guard.Authorize(load, func(*guard.Principal, *post) error { return errors.New("db: connection refused") }, served)
		r := request("PATCH", nil)
		r.URL.RawQuery = "id=1"
		rec := serve(h, r.WithContext(guard.WithPrincipal(r.Context(), admin)))
		if rec.Code != 403 || strings.Contains(rec.Body.String(), "db:") {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
}

func TestOwnerOr(t *testing.T) {
	if err := guard.OwnerOr(nil, "alice"); !errors.Is(err, guard.ErrNoCredentials) {
		t.Errorf("anonymous: %v", err)
	}
	if err := guard.OwnerOr(&guard.Principal{Subject: ""}, ""); err == nil {
		t.Error("an empty owner matched an empty subject")
	}
	var fe *guard.ForbiddenError
	if err := guard.OwnerOr(&guard.Principal{Subject: "bob"}, "alice"); !errors.As(err, &fe) || fe.Detail != "only the owner of this resource may do this" {
		t.Errorf("no roles: %v", err)
	}
}
