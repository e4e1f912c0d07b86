package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/guard"
)

// Default roles: an admin may give its API keys the scope introspect.
const testYAML = gatehouseYAML

const (
	adminPass  = "admin pass phrase for the posts tests"
	editorPass = "editor pass phrase for the posts tests"
	alicePass  = "alice pass phrase for the posts tests"
	bobPass    = "bob pass phrase for the posts tests"
)

// world is a live Gatehouse with its users and their credentials, and the
// posts service in front of it.
type world struct {
	gh    *liveGatehouse
	posts *httptest.Server

	introKey                                   string // the admin's API key with scope introspect
	admin, adminRead, editor, alice, aliceRead string // access tokens
	bob, aliceRefresh, aliceKey, aliceKeyID    string
	aliceCookie                                *http.Cookie
	aliceID                                    string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	gh := startGatehouse(t, testYAML, func(g *liveGatehouse) {
		g.Command(t, adminPass+"\n", "user", "create", "--email", "admin@example.test", "--role", "admin", "--password-stdin")
		g.Command(t, editorPass+"\n", "user", "create", "--email", "editor@example.test", "--role", "editor", "--password-stdin")
	})
	gh.Register(t, "alice@example.test", alicePass)
	gh.Register(t, "bob@example.test", bobPass)
	w := &world{gh: gh}
	w.admin = gh.token(t, "admin@example.test", adminPass, "")
	w.adminRead = gh.token(t, "admin@example.test", adminPass, "read")
	w.editor = gh.token(t, "editor@example.test", editorPass, "")
	w.alice = gh.token(t, "alice@example.test", alicePass, "read write")
	w.aliceRead = gh.token(t, "alice@example.test", alicePass, "read")
	w.bob = gh.token(t, "bob@example.test", bobPass, "")
	w.aliceID = subject(t, w.alice)
	_, w.introKey = gh.apiKey(t, w.admin, "posts service", "introspect", "read")
	w.aliceKeyID, w.aliceKey = gh.apiKey(t, w.alice, "alice's script", "read", "write")
	w.aliceCookie = gh.sessionCookie(t, "alice@example.test", alicePass)

	r := do(t, "POST", gh.URL+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"alice@example.test"}, "password": {alicePass}})
	w.aliceRefresh, _ = r.JSON(t)["refresh_token"].(string)

	w.posts = w.service(t, nil)
	return w
}

// service starts the posts service against the live Gatehouse.
func (w *world) service(t *testing.T, edit func(*guard.Config)) *httptest.Server {
	t.Helper()
	cfg := guard.Config{Issuer: w.gh.URL, IntrospectionKey: w.introKey}
	if edit != nil {
		edit(&cfg)
	}
	g, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(g))
	t.Cleanup(srv.Close)
	return srv
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestMissionRules(t *testing.T) {
	w := newWorld(t)
	var post, keyPost string // ids of posts made along the way

	steps := []struct {
		name   string
		method string
		path   func() string
		body   any
		cred   []string
		want   int
		check  func(t *testing.T, r *response)
	}{
		{name: "no credentials: 401", method: "POST", body: newPost("hi"), want: 401, check: func(t *testing.T, r *response) {
			if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="gatehouse"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
		}},
		{name: "garbage token: 401 invalid_token", method: "POST", body: newPost("hi"), cred: bearer("a.b.c"), want: 401, check: func(t *testing.T, r *response) {
			if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
			}
		}},
		{name: "user with scope write creates: 201", method: "POST", body: newPost("alice's first"), cred: bearer(w.alice), want: 201,
			check: func(t *testing.T, r *response) {
				m := r.JSON(t)
				if m["author"] != w.aliceID {
					t.Errorf("author %v, want %s", m["author"], w.aliceID)
				}
				post, _ = m["id"].(string)
			}},
		{name: "token with scope read only: 403 naming write", method: "POST", body: newPost("nope"), cred: bearer(w.aliceRead), want: 403,
			check: func(t *testing.T, r *response) {
				if r.JSON(t)["missing_scope"] != "write" || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("403 does not name the scope: %s %v", r, r.Header)
				}
			}},
		{name: "anyone reads", method: "GET", path: func() string { return "/posts/" + post }, want: 200},
		{name: "PATCH by the author: 200", method: "PATCH", path: func() string { return "/posts/" + post }, body: map[string]string{"title": "by alice"}, cred: bearer(w.alice), want: 200},
		{name: "PATCH by another user: 403", method: "PATCH", path: func() string { return "/posts/" + post }, body: map[string]string{"title": "by bob"}, cred: bearer(w.bob), want: 403,
			check: func(t *testing.T, r *response) {
				if !strings.Contains(r.JSON(t)["detail"].(string), "admin") {
					t.Errorf("403 does not name the role: %s", r)
				}
			}},
		{name: "PATCH by the author with a read-only token: 403", method: "PATCH", path: func() string { return "/posts/" + post }, body: map[string]string{"title": "x"}, cred: bearer(w.aliceRead), want: 403},
		{name: "PATCH by an admin: 200", method: "PATCH", path: func() string { return "/posts/" + post }, body: map[string]string{"title": "by the admin"}, cred: bearer(w.admin), want: 200,
			check: func(t *testing.T, r *response) {
				if m := r.JSON(t); m["title"] != "by the admin" || m["author"] != w.aliceID {
					t.Errorf("after the admin's edit: %s", r)
				}
			}},
		{name: "PATCH by an admin with a read-only token: 403", method: "PATCH", path: func() string { return "/posts/" + post }, body: map[string]string{"title": "x"}, cred: bearer(w.adminRead), want: 403},
		{name: "PATCH of a missing post: 404", method: "PATCH", path: func() string { return "/posts/999" }, body: map[string]string{"title": "x"}, cred: bearer(w.admin), want: 404},
		{name: "DELETE by the author (a plain user): 403", method: "DELETE", path: func() string { return "/posts/" + post }, cred: bearer(w.alice), want: 403,
			check: func(t *testing.T, r *response) {
				if !strings.Contains(r.JSON(t)["detail"].(string), "editor or admin") {
					t.Errorf("403 does not name the roles: %s", r)
				}
			}},
		{name: "DELETE of a missing post by a plain user: 403, not 404", method: "DELETE", path: func() string { return "/posts/999" }, cred: bearer(w.bob), want: 403},
		{name: "DELETE by an editor: 204", method: "DELETE", path: func() string { return "/posts/" + post }, cred: bearer(w.editor), want: 204},
		{name: "deleted: 404", method: "GET", path: func() string { return "/posts/" + post }, want: 404},
		{name: "API key in X-API-Key: 201 through introspection", method: "POST", body: newPost("by key"), cred: []string{"X-API-Key", w.aliceKey}, want: 201,
			check: func(t *testing.T, r *response) {
				m := r.JSON(t)
				if m["author"] != w.aliceID {
					t.Errorf("author %v, want %s", m["author"], w.aliceID)
				}
				keyPost, _ = m["id"].(string)
			}},
		{name: "API key as Bearer gth_: PATCH own post 200", method: "PATCH", path: func() string { return "/posts/" + keyPost }, body: map[string]string{"body": "edited by key"}, cred: bearer(w.aliceKey), want: 200},
		{name: "API key of a plain user cannot DELETE: 403", method: "DELETE", path: func() string { return "/posts/" + keyPost }, cred: []string{"X-API-Key", w.aliceKey}, want: 403},
		{name: "made-up API key: 401", method: "POST", body: newPost("x"), cred: []string{"X-API-Key", "gth_" + strings.Repeat("A", 49)}, want: 401},
		{name: "session cookie: 201 through introspection", method: "POST", body: newPost("by cookie"), cred: []string{"Cookie", w.aliceCookie.String(), "Sec-Fetch-Site", "same-origin"}, want: 201,
			check: func(t *testing.T, r *response) {
				if r.JSON(t)["author"] != w.aliceID {
					t.Errorf("cookie post: %s", r)
				}
			}},
		{name: "session cookie cross-site: 403 (CSRF)", method: "POST", body: newPost("forged"), cred: []string{"Cookie", w.aliceCookie.String(), "Sec-Fetch-Site", "cross-site"}, want: 403},
		{name: "refresh token as a cookie: 401", method: "POST", body: newPost("x"), cred: []string{"Cookie", "gatehouse_session=" + w.aliceRefresh}, want: 401,
			check: func(t *testing.T, r *response) {
				// Gatehouse calls it active: the guard refuses it for being
				// a refresh token where a session id belongs.
				in := do(t, "POST", w.gh.URL+"/oauth2/introspect", url.Values{"token": {w.aliceRefresh}}, "X-API-Key", w.introKey).JSON(t)
				if in["active"] != true || in["token_type"] != "refresh_token" {
					t.Errorf("introspection of the refresh token: %v", in)
				}
			}},
		{name: "refresh token as a bearer token: 401", method: "POST", body: newPost("x"), cred: bearer(w.aliceRefresh), want: 401},
		{name: "listing is public", method: "GET", path: func() string { return "/posts" }, want: 200, check: func(t *testing.T, r *response) {
			if posts, _ := r.JSON(t)["posts"].([]any); len(posts) != 2 {
				t.Errorf("want 2 posts left: %s", r)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) {
			path := "/posts"
			if s.path != nil {
				path = s.path()
			}
			r := do(t, s.method, w.posts.URL+path, s.body, s.cred...)
			if r.Status != s.want {
				t.Fatalf("%s %s: %s, want %d", s.method, path, r, s.want)
			}
			if s.check != nil {
				s.check(t, r)
			}
		}) {
			return // later steps depend on this one
		}
	}
}

func newPost(title string) map[string]string {
	return map[string]string{"title": title, "body": "text"}
}

func TestRevokedAPIKey(t *testing.T) {
	w := newWorld(t)
	// No introspection cache: a revocation counts at once.
	posts := w.service(t, func(c *guard.Config) { c.CacheTTL = -1 })
	if r := do(t, "POST", posts.URL+"/posts", newPost("before"), "X-API-Key", w.aliceKey); r.Status != 201 {
		t.Fatalf("before revocation: %s", r)
	}
	if r := do(t, "DELETE", w.gh.URL+"/v1/api-keys/"+w.aliceKeyID, nil, bearer(w.alice)...); r.Status != 204 {
		t.Fatalf("revoke: %s", r)
	}
	if r := do(t, "POST", posts.URL+"/posts", newPost("after"), "X-API-Key", w.aliceKey); r.Status != 401 {
		t.Fatalf("after revocation: %s, want 401", r)
	}
}

func TestIntrospectionRefusedFailsClosed(t *testing.T) {
	w := newWorld(t)
	t.Run("introspection key without scope introspect", func(t *testing.T) {
		_, weak := w.gh.apiKey(t, w.alice, "not for introspection", "read")
		posts := w.service(t, func(c *guard.Config) { c.IntrospectionKey = weak })
		if r := do(t, "POST", posts.URL+"/posts", newPost("x"), "X-API-Key", w.aliceKey); r.Status != 503 {
			t.Fatalf("%s, want 503", r)
		}
		// Access tokens do not need introspection.
		if r := do(t, "POST", posts.URL+"/posts", newPost("x"), bearer(w.alice)...); r.Status != 201 {
			t.Fatalf("access token: %s", r)
		}
	})
	t.Run("gatehouse unreachable", func(t *testing.T) {
		posts := w.service(t, func(c *guard.Config) { c.IntrospectURL = "http://127.0.0.1:1/oauth2/introspect" })
		if r := do(t, "POST", posts.URL+"/posts", newPost("x"), "Cookie", w.aliceCookie.String()); r.Status != 503 {
			t.Fatalf("%s, want 503", r)
		}
	})
}

func TestRun(t *testing.T) {
	gh := startGatehouse(t, gatehouseYAML, nil)
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	env := map[string]string{"POSTS_GATEHOUSE_URL": gh.URL}
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, &logs, func(a string) { addr <- a })
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("run did not start")
	}
	if r := do(t, "GET", base+"/posts", nil); r.Status != 200 {
		t.Errorf("GET /posts: %s", r)
	}
	if r := do(t, "POST", base+"/posts", newPost("x")); r.Status != 401 {
		t.Errorf("POST /posts without credentials: %s", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !strings.Contains(logs.String(), "POSTS_INTROSPECTION_KEY is not set") {
		t.Errorf("no warning about the missing introspection key:\n%s", logs.String())
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-gatehouse", "http://auth.example.com"}, // clear text to another host
		{"-gatehouse", "ftp://x"},
		{"extra"},
		{"-introspection-key-file", "/nonexistent/key"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, &out, nil); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}
