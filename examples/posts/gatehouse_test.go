package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/internal/testserver" // tests only: the service itself imports nothing of Gatehouse but guard
)

// liveGatehouse is a real `gatehouse serve` running in this process
// (internal/testserver), on a loopback port whose URL is also its public
// URL (the token issuer).
type liveGatehouse struct{ *testserver.Server }

type (
	syncBuffer = testserver.SyncBuffer
	response   = testserver.Response
)

// gatehouseYAML lifts the login rate limits, which a test that logs in a
// dozen times from one IP would otherwise hit (testserver adds fast
// hashing).
const gatehouseYAML = "rate_limits: {login_per_account_ip: 1000, login_per_ip: 1000}\n"

// startGatehouse configures a fresh Gatehouse, lets setup run commands
// (user create …) before it serves, and starts it.
func startGatehouse(t *testing.T, yaml string, setup func(g *liveGatehouse)) *liveGatehouse {
	t.Helper()
	opts := testserver.Options{Env: testserver.Env(t, yaml, nil)}
	if setup != nil {
		opts.Before = func(s *testserver.Server) { setup(&liveGatehouse{s}) }
	}
	return &liveGatehouse{testserver.Start(t, opts)}
}

// do sends a request; hdr is name, value pairs; body is JSON-encoded when
// it is not a url.Values (a form) or nil.
func do(t *testing.T, method, u string, body any, hdr ...string) *response {
	t.Helper()
	return testserver.Send(t, method, u, body, hdr...)
}

// token logs in with the password grant; scope "" asks for every scope
// the user's roles allow.
func (g *liveGatehouse) token(t *testing.T, email, password, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}, "client_id": {"posts-test"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := do(t, "POST", g.URL+"/oauth2/token", form)
	if r.Status != 200 {
		t.Fatalf("password grant for %s: %s", email, r)
	}
	tok, _ := r.JSON(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("no access_token: %s", r.Body)
	}
	return tok
}

// apiKey creates an API key as the holder of the bearer token.
func (g *liveGatehouse) apiKey(t *testing.T, bearer, name string, scopes ...string) (id, key string) {
	t.Helper()
	r := do(t, "POST", g.URL+"/v1/api-keys", map[string]any{"name": name, "scopes": scopes}, "Authorization", "Bearer "+bearer)
	if r.Status != 201 {
		t.Fatalf("create API key %s %v: %s", name, scopes, r)
	}
	m := r.JSON(t)
	id, _ = m["id"].(string)
	key, _ = m["key"].(string)
	if !strings.HasPrefix(key, "gth_") {
		t.Fatalf("API key %q", key)
	}
	return id, key
}

// sessionCookie logs in with a cookie session, as the hosted pages do.
func (g *liveGatehouse) sessionCookie(t *testing.T, email, password string) *http.Cookie {
	t.Helper()
	r := do(t, "POST", g.URL+"/v1/sessions", map[string]string{"email": email, "password": password}, "Sec-Fetch-Site", "same-origin")
	if r.Status != 201 {
		t.Fatalf("session login %s: %s", email, r)
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "gatehouse_session" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no gatehouse_session cookie in %v", r.Header)
	return nil
}

// subject reads the sub of a Gatehouse access token (no verification:
// only to know the expected author).
func subject(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Sub string }
	if err := json.Unmarshal(b, &c); err != nil || c.Sub == "" {
		t.Fatalf("claims %s: %v", b, err)
	}
	return c.Sub
}
