package httptest_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/internal/testserver"
)

// maxBody is the largest request body Gatehouse reads (SPEC §12: larger
// than 64 KiB is 413).
const maxBody = 64 << 10

// fillParams sets every {parameter} of an OpenAPI path to "unknown".
func fillParams(path string) string {
	for strings.Contains(path, "{") {
		i := strings.Index(path, "{")
		j := strings.Index(path[i:], "}")
		path = path[:i] + "unknown" + path[i+j+1:]
	}
	return path
}

// TestProblemDocumentsEveryOperation takes every /v1 operation of the
// OpenAPI document and makes it fail in each way that applies: without a
// credential and with an invalid one, the body being valid (operations
// with a security requirement: 401 with a Bearer challenge), and with a
// malformed JSON body (400), a body of the wrong Content-Type (415) and a
// body over 64 KiB (413) (operations with a request body). Each error
// must be an RFC 9457 problem document: application/problem+json with
// title, detail and the HTTP status as status.
//
// The social-login routes (/v1/oidc/{provider}/…) are browser redirects:
// with no provider configured they are tried with an unknown one (404
// problem) — except the callback, the page the provider sends the browser
// back to, which shows one generic HTML page on failure
// (docs/social-login.md).
func TestProblemDocumentsEveryOperation(t *testing.T) {
	g := start(t, nil)
	// An administrator, so that only the body can be wrong; the bodies
	// below never reach a handler.
	admin := bearer(g.root.Access)
	big := append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), maxBody)...)
	big = append(big, `"}`...)
	// A victim that is no one, for the bodies of csrfCases.
	nobody := &victim{account: &account{ID: "unknown", Email: "nobody@example.test", Access: "x", Refresh: "x"},
		domain: "nobody", other: "unknown", keyID: "unknown", bystander: &account{ID: "unknown"}}
	var withSecurity, withBody int
	for _, op := range operations(t, g) {
		if !strings.HasPrefix(op.path, "/v1/") {
			continue
		}
		path := fillParams(op.path)
		name := op.method + " " + op.path
		var body any = "{}"
		if c, ok := csrfCases[name]; ok {
			_, body = c.req(t, nobody)
		}
		if !op.body {
			body = nil
		}
		provider := strings.Contains(op.path, "{provider}")
		if op.security && !provider {
			withSecurity++
		}
		if op.body {
			withBody++
		}
		t.Run(name, func(t *testing.T) {
			switch {
			case strings.HasSuffix(op.path, "/callback"):
				r := g.send(t, op.method, path, nil)
				if r.Status != http.StatusBadRequest || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || len(r.Header.Values("Set-Cookie")) > 0 {
					t.Fatalf("%s with an unknown provider: %s (%q), want the 400 HTML page and no cookie", name, r, r.Header.Get("Content-Type"))
				}
			case provider:
				wantProblem(t, "an unknown provider", g.send(t, op.method, path, nil, g.sameOrigin()), http.StatusNotFound)
			case op.security:
				r := g.send(t, op.method, path, body)
				wantProblem(t, "no credential", r, http.StatusUnauthorized)
				wantChallenge(t, "no credential", r, false)
				r = g.send(t, op.method, path, body, bearer("not-a-token"))
				wantProblem(t, "an invalid token", r, http.StatusUnauthorized)
				wantChallenge(t, "an invalid token", r, true)
			}
			if op.body {
				wantProblem(t, "malformed JSON", g.do(t, op.method, path, "application/json", []byte(`{"name":`), admin), http.StatusBadRequest)
				wantProblem(t, "text/plain", g.do(t, op.method, path, "text/plain", []byte(`{}`), admin), http.StatusUnsupportedMediaType)
				wantProblem(t, "application/xml", g.do(t, op.method, path, "application/xml", []byte(`<a/>`), admin), http.StatusUnsupportedMediaType)
				wantProblem(t, "a body over 64 KiB", g.do(t, op.method, path, "application/json", big, admin), http.StatusRequestEntityTooLarge)
			}
		})
	}
	if withSecurity < 20 || withBody < 12 {
		t.Fatalf("only %d operations with security and %d with a body", withSecurity, withBody)
	}

	// Outside the operations' checks above: an unknown path, a method a
	// path does not have, a path parameter over its length limit, a field
	// of the wrong type, invalid UTF-8 and a member repeated in another
	// letter case (SPEC §18 H9).
	wantProblem(t, "an unknown /v1 path", g.get(t, "/v1/no-such-thing", admin), http.StatusNotFound)
	if r := g.send(t, http.MethodPut, "/v1/me", `{}`, admin); r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed {
		t.Errorf("PUT /v1/me: %s, want 404 or 405", r)
	} else {
		wantProblem(t, "PUT /v1/me", r, r.Status)
	}
	wantProblem(t, "an id over its maxLength", g.get(t, "/v1/admin/users/"+strings.Repeat("x", 65), admin), http.StatusUnprocessableEntity)
	wantProblem(t, "a field of the wrong type", g.send(t, http.MethodPatch, "/v1/me", `{"name":5}`, admin), http.StatusUnprocessableEntity)
	wantProblem(t, "invalid UTF-8", g.do(t, http.MethodPatch, "/v1/me", "application/json", []byte("{\"name\":\"\xff\"}"), admin), http.StatusBadRequest)
	wantProblem(t, "a repeated member", g.send(t, http.MethodPatch, "/v1/me", `{"name":"a","Name":"b"}`, admin), http.StatusBadRequest)
}

// TestProblemRateLimited: a 429 on /v1 is a problem document too, with
// Retry-After.
func TestProblemRateLimited(t *testing.T) {
	// Two logins per account: root's token and session in start take both
	// of root's.
	g := startYAML(t, "rate_limits: {login_per_account_ip: 2, login_per_ip: 1000, window: 1h}\n", nil)
	a := g.register(t, newEmail("limited"))
	login := map[string]string{"email": a.Email, "password": "not the password"}
	for range 2 {
		wantProblem(t, "a wrong password", g.send(t, http.MethodPost, "/v1/sessions", login, g.sameOrigin()), http.StatusUnauthorized)
	}
	r := g.send(t, http.MethodPost, "/v1/sessions", login, g.sameOrigin())
	wantProblem(t, "the third login within a limit of 2", r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", r.Header)
	}
}

// TestUnauthenticated401: a request without a credential gets 401 with
// WWW-Authenticate: Bearer (no error); one with an invalid, revoked or
// ended credential gets 401 with error="invalid_token" (SPEC §3, RFC 6750
// §3); a token in the query string is never read.
func TestUnauthenticated401(t *testing.T) {
	g := start(t, nil)
	a := g.user(t, "unauth")
	keyID, key := g.createKey(t, a, "read")
	if r := g.send(t, http.MethodDelete, "/v1/api-keys/"+keyID, nil, bearer(a.Access)); r.Status != http.StatusNoContent {
		t.Fatalf("revoking the key: %s", r)
	}
	ended := &account{Email: a.Email}
	g.login(t, ended)
	if r := g.send(t, http.MethodDelete, "/v1/sessions/current", nil, g.cookie(ended), g.sameOrigin()); r.Status != http.StatusNoContent {
		t.Fatalf("logging out: %s", r)
	}
	gone := g.user(t, "unauth")
	if r := g.send(t, http.MethodDelete, "/v1/me", map[string]string{"password": password}, bearer(gone.Access)); r.Status != http.StatusNoContent {
		t.Fatalf("deleting an account: %s", r)
	}

	for _, c := range []struct {
		name    string
		path    string
		hdr     []string
		invalid bool
	}{
		{"no credential", "/v1/me", nil, false},
		{"another scheme (Basic)", "/v1/me", []string{"Authorization", "Basic dXNlcjpwYXNz"}, false},
		{"the token in the query string", "/v1/me?access_token=" + url.QueryEscape(a.Access), nil, false},
		{"a malformed token", "/v1/me", bearer("not-a-token"), true},
		{"a tampered token", "/v1/me", bearer(tamper(a.Access)), true},
		{"a token with alg none", "/v1/me", bearer(algNone(t, a.Access)), true},
		{"a token of a deleted account", "/v1/me", bearer(gone.Access), true},
		{"an unknown API key", "/v1/me", apiKey("gth_" + strings.Repeat("A", 50)), true},
		{"a revoked API key", "/v1/me", apiKey(key), true},
		{"a revoked API key as bearer", "/v1/me", bearer(key), true},
		{"an unknown session", "/v1/me", []string{"Cookie", g.cookieName + "=no-such-session"}, true},
		{"a logged-out session", "/v1/me", g.cookie(ended), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := g.get(t, c.path, c.hdr)
			wantProblem(t, c.name, r, http.StatusUnauthorized)
			wantChallenge(t, c.name, r, c.invalid)
		})
	}
	// The control: the same requests with a's live credentials pass.
	for name, h := range map[string][]string{"token": bearer(a.Access), "session": g.cookie(a)} {
		if r := g.get(t, "/v1/me", h); r.Status != http.StatusOK {
			t.Fatalf("the live %s: %s", name, r)
		}
	}
}

// algNone forges an unsigned token: jwt's claims under the header
// {"alg":"none","typ":"at+jwt"}, with no signature.
func algNone(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	return "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + "."
}

// TestScopeRefusals: a credential that holds too little gets 403, a
// problem document naming the missing scope with code
// "insufficient_scope" (SPEC §6, §18 H1) and a WWW-Authenticate challenge
// with error="insufficient_scope" (RFC 6750 §3.1); nothing is created.
func TestScopeRefusals(t *testing.T) {
	g := start(t, nil)
	admin := g.user(t, "scope", "admin")
	narrowed := &account{Email: admin.Email}
	if sc := g.grant(t, narrowed, "read write"); sc != "read write" {
		t.Fatalf("password grant with scope=read write for an admin: scope %q", sc)
	}
	user := g.user(t, "scope")
	readOnly := &account{Email: user.Email}
	if sc := g.grant(t, readOnly, "read"); sc != "read" {
		t.Fatalf("password grant with scope=read: scope %q", sc)
	}
	keys := func(a *account) string { return g.get(t, "/v1/api-keys", bearer(a.Access)).String() }
	adminKeys, userKeys := keys(admin), keys(user)

	for _, c := range []struct {
		name, method, path string
		body               any
		tok                string
		scope              string // the scope the refusal names
	}{
		// H1: a credential mints only what it holds.
		{"an admin's read-write token minting an admin key", http.MethodPost, "/v1/api-keys", map[string]any{"name": "k", "scopes": []string{"admin"}}, narrowed.Access, "admin"},
		// … and only what the roles allow.
		{"a user minting an admin key", http.MethodPost, "/v1/api-keys", map[string]any{"name": "k", "scopes": []string{"read", "admin"}}, user.Access, "admin"},
		// H1: a narrowed token adds no way to sign in.
		{"a narrowed token adding a passkey", http.MethodPost, "/v1/passkeys/register/begin", nil, narrowed.Access, "admin"},
		// §6: the operation's own scope.
		{"a read-only token renaming the user", http.MethodPatch, "/v1/me", map[string]string{"name": "x"}, readOnly.Access, "write"},
		{"a read-only token minting a key", http.MethodPost, "/v1/api-keys", map[string]any{"name": "k", "scopes": []string{"read"}}, readOnly.Access, "write"},
		{"a read-write token on the admin API", http.MethodGet, "/v1/admin/users", nil, narrowed.Access, "admin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := g.send(t, c.method, c.path, c.body, bearer(c.tok))
			p := wantProblem(t, c.name, r, http.StatusForbidden)
			if !strings.Contains(p.Detail, c.scope) {
				t.Errorf("%s: the detail %q does not name the scope %s", c.name, p.Detail, c.scope)
			}
			if p.Code != "insufficient_scope" {
				t.Errorf("%s: problem code %q, want insufficient_scope: %s", c.name, p.Code, r.Body)
			}
			if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) {
				t.Errorf("%s: WWW-Authenticate %q, want error=\"insufficient_scope\"", c.name, h)
			}
		})
	}
	if keys(admin) != adminKeys || keys(user) != userKeys {
		t.Fatalf("a refused request created an API key")
	}
	// The controls: the admin's full token mints the admin key and begins
	// adding a passkey.
	if r := g.send(t, http.MethodPost, "/v1/api-keys", map[string]any{"name": "k", "scopes": []string{"admin"}}, bearer(admin.Access)); r.Status != http.StatusCreated {
		t.Fatalf("the admin's full token minting an admin key: %s", r)
	}
	if r := g.send(t, http.MethodPost, "/v1/passkeys/register/begin", nil, bearer(admin.Access)); r.Status != http.StatusOK {
		t.Fatalf("the admin's full token adding a passkey: %s", r)
	}
}

// TestBodyLimit413: a body over 64 KiB is refused with 413 — announced by
// Content-Length or sent chunked, on /v1 (a problem document), on /oauth2
// (an RFC 6749 error) and on the hosted forms — and changes nothing; a
// body of exactly 64 KiB is read.
func TestBodyLimit413(t *testing.T) {
	g := start(t, nil)
	a := g.user(t, "limit")
	// name pads a JSON body for PATCH /v1/me to n bytes with spaces.
	body := func(n int) []byte {
		b := []byte(`{"name":"limit test"`)
		b = append(b, bytes.Repeat([]byte(" "), n-len(b)-1)...)
		return append(b, '}')
	}
	name := func() any { return g.get(t, "/v1/me", bearer(a.Access)).JSON(t)["name"] }

	if r := g.do(t, http.MethodPatch, "/v1/me", "application/json", body(maxBody), bearer(a.Access)); r.Status != http.StatusOK || name() != "limit test" {
		t.Fatalf("PATCH /v1/me with a body of exactly 64 KiB: %s", r)
	}
	if r := g.send(t, http.MethodPatch, "/v1/me", `{"name":"before"}`, bearer(a.Access)); r.Status != http.StatusOK {
		t.Fatal(r)
	}
	wantProblem(t, "64 KiB + 1", g.do(t, http.MethodPatch, "/v1/me", "application/json", body(maxBody+1), bearer(a.Access)), http.StatusRequestEntityTooLarge)
	// A reader of unknown length: sent chunked, without Content-Length.
	chunked := struct{ io.Reader }{bytes.NewReader(body(maxBody + 1))}
	wantProblem(t, "64 KiB + 1, chunked", g.doReader(t, http.MethodPatch, "/v1/me", "application/json", chunked, bearer(a.Access)), http.StatusRequestEntityTooLarge)
	wantProblem(t, "1 MiB with a session cookie", g.do(t, http.MethodPatch, "/v1/me", "application/json", body(1<<20), g.cookie(a), g.sameOrigin()), http.StatusRequestEntityTooLarge)
	if got := name(); got != "before" {
		t.Fatalf("a refused body changed the name to %q", got)
	}
	wantProblem(t, "login", g.do(t, http.MethodPost, "/v1/sessions", "application/json", body(maxBody+1), g.sameOrigin()), http.StatusRequestEntityTooLarge)

	form := "grant_type=password&username=" + url.QueryEscape(a.Email) + "&password=" + url.QueryEscape(password) + "&pad=" + strings.Repeat("a", maxBody)
	wantOAuthError(t, "POST /oauth2/token over 64 KiB", g.do(t, http.MethodPost, "/oauth2/token", "application/x-www-form-urlencoded", []byte(form)), http.StatusRequestEntityTooLarge, "invalid_request")
	chunkedForm := struct{ io.Reader }{strings.NewReader(form)}
	wantOAuthError(t, "POST /oauth2/token over 64 KiB, chunked", g.doReader(t, http.MethodPost, "/oauth2/token", "application/x-www-form-urlencoded", chunkedForm), http.StatusRequestEntityTooLarge, "invalid_request")

	r := g.do(t, http.MethodPost, "/login", "application/x-www-form-urlencoded", []byte("email="+url.QueryEscape(a.Email)+"&password="+url.QueryEscape(password)+"&pad="+strings.Repeat("a", maxBody)), g.sameOrigin())
	if r.Status != http.StatusRequestEntityTooLarge || len(r.Header.Values("Set-Cookie")) > 0 {
		t.Fatalf("POST /login over 64 KiB: %s (cookies %q), want 413 and no cookie", r, r.Header.Values("Set-Cookie"))
	}
}

// TestContentType415: a body of a type the endpoint does not take is 415
// (SPEC §12): a problem document on /v1, an RFC 6749 error on /oauth2.
// Nothing is changed.
func TestContentType415(t *testing.T) {
	g := start(t, nil)
	a := g.user(t, "ctype")
	if r := g.send(t, http.MethodPatch, "/v1/me", `{"name":"before"}`, bearer(a.Access)); r.Status != http.StatusOK {
		t.Fatal(r)
	}
	for _, c := range []struct{ method, path, ctype, body string }{
		{http.MethodPost, "/v1/register", "text/plain", `{"email":"ctype-new@example.test","password":"` + password + `"}`},
		{http.MethodPost, "/v1/sessions", "text/plain", `{"email":"` + a.Email + `","password":"` + password + `"}`},
		{http.MethodPatch, "/v1/me", "text/plain", `{"name":"after"}`},
		{http.MethodPatch, "/v1/me", "application/xml", `<name>after</name>`},
		{http.MethodPatch, "/v1/me", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nafter\r\n--x--\r\n"},
	} {
		r := g.do(t, c.method, c.path, c.ctype, []byte(c.body), bearer(a.Access), g.sameOrigin())
		wantProblem(t, c.method+" "+c.path+" as "+c.ctype, r, http.StatusUnsupportedMediaType)
		if len(r.Header.Values("Set-Cookie")) > 0 {
			t.Errorf("%s %s as %s set a cookie", c.method, c.path, c.ctype)
		}
	}
	if got := g.get(t, "/v1/me", bearer(a.Access)).JSON(t)["name"]; got != "before" {
		t.Fatalf("a refused body changed the name to %q", got)
	}
	if r := g.get(t, "/v1/admin/users?q="+url.QueryEscape("ctype-new@"), bearer(g.root.Access)); !strings.Contains(r.String(), `"users":[]`) {
		t.Fatalf("a refused registration created an account: %s", r)
	}

	// /oauth2: the form is the only type (RFC 6749 §3.2); another is
	// 415 with an RFC 6749 error body.
	tokenJSON := `{"grant_type":"password","username":"` + a.Email + `","password":"` + password + `"}`
	for _, c := range []struct{ path, ctype, body string }{
		{"/oauth2/token", "application/json", tokenJSON},
		{"/oauth2/token", "text/plain", "grant_type=password&username=" + url.QueryEscape(a.Email) + "&password=" + url.QueryEscape(password)},
		{"/oauth2/revoke", "application/json", `{"token":"` + a.Refresh + `"}`},
		{"/oauth2/introspect", "application/json", `{"token":"` + a.Access + `"}`},
	} {
		t.Run(c.path+" as "+c.ctype, func(t *testing.T) {
			var r *testserver.Response
			if c.path == "/oauth2/introspect" {
				r = g.do(t, http.MethodPost, c.path, c.ctype, []byte(c.body), bearer(g.root.Access))
			} else {
				r = g.do(t, http.MethodPost, c.path, c.ctype, []byte(c.body))
			}
			wantOAuthError(t, "POST "+c.path+" as "+c.ctype, r, http.StatusUnsupportedMediaType, "invalid_request")
		})
	}
	// The refresh token sent to /oauth2/revoke as JSON still works.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.Refresh}}
	if r := g.send(t, http.MethodPost, "/oauth2/token", refresh); r.Status != http.StatusOK {
		t.Fatalf("the refresh token after a refused revoke: %s", r)
	}
}
