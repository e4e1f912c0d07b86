package httptest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/internal/testserver"
)

// rootSecret is GATEHOUSE_SECRET of the servers start makes, so that a
// test can make values keyed with it (a cursor MACed with the root secret
// itself, SPEC §18 H3).
const rootSecret = "httptest-root-secret-0123456789abcdefghijklmnop"

// password is every test account's password.
const password = "correct horse battery staple"

// baseYAML lifts the rate limits: the tests sign in and register far more
// often from one IP than the defaults allow, and a 429 would hide the
// answer under test.
const baseYAML = "rate_limits: {login_per_account_ip: 100000, login_per_ip: 100000, window: 1m}\n"

// gh is a `gatehouse serve` running in this process, with an administrator
// (root) made by `gatehouse user create --role admin` before it started.
type gh struct {
	*testserver.Server
	root       *account
	cookieName string
}

// account is a user of the server under test and the credentials a test
// got for it; empty fields were not asked for.
type account struct {
	ID, Email string
	Access    string // access token (password grant)
	Refresh   string // its refresh token
	Cookie    string // session cookie value
	SessionID string // id of the Cookie session
}

var emails atomic.Int64

// newEmail returns an address no other call returns, in the domain
// @<domain>.example.test.
func newEmail(domain string) string {
	return fmt.Sprintf("u%d@%s.example.test", emails.Add(1), domain)
}

// start runs a Gatehouse with the secret rootSecret (unless env sets
// another), passkeys on (its public URL is http://localhost:PORT) and an
// administrator root@example.test, and signs root in with a token.
func start(t *testing.T, env map[string]string) *gh {
	t.Helper()
	return startYAML(t, baseYAML, env)
}

// startYAML is start with yaml as the configuration file (after
// testserver.FastArgon2) instead of baseYAML.
func startYAML(t *testing.T, yaml string, env map[string]string) *gh {
	t.Helper()
	e := map[string]string{"GATEHOUSE_SECRET": rootSecret}
	for k, v := range env {
		e[k] = v
	}
	const rootEmail = "root@example.test"
	s := testserver.Start(t, testserver.Options{Env: testserver.Env(t, yaml, e), Localhost: true,
		Before: func(s *testserver.Server) {
			s.Command(t, password+"\n", "user", "create", "--email", rootEmail, "--role", "admin", "--password-stdin")
		}})
	g := &gh{Server: s}
	g.root = &account{Email: rootEmail}
	g.grant(t, g.root, "")
	g.login(t, g.root) // learns the cookie name before any test runs in parallel
	r := g.get(t, "/v1/me", bearer(g.root.Access))
	if r.Status != http.StatusOK {
		t.Fatalf("root GET /v1/me: %s", r)
	}
	g.root.ID = str(t, r.JSON(t), "id")
	return g
}

// client does not follow redirects: the tests see each 303.
var client = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends a request to the server; hdr are name, value pairs (several
// groups may be given, see bearer, sameOrigin …), each set on the request.
func (g *gh) do(t *testing.T, method, path, contentType string, body []byte, hdr ...[]string) *testserver.Response {
	t.Helper()
	return g.doReader(t, method, path, contentType, bytes.NewReader(body), hdr...)
}

// doReader is do with the body read from r: a reader of unknown length is
// sent chunked.
func (g *gh) doReader(t *testing.T, method, path, contentType string, body io.Reader, hdr ...[]string) *testserver.Response {
	t.Helper()
	req, err := http.NewRequest(method, g.Direct+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	h := flat(hdr)
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 600 && strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		// Failure messages show the page's message, not all of it.
		b = append(bytes.Join(htmlMessage.FindAll(b, -1), []byte(" ")), " […HTML page]"...)
	}
	return &testserver.Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// htmlMessage finds the messages of a hosted page.
var htmlMessage = regexp.MustCompile(`<p class="msg[^"]*"[^>]*>[^<]*</p>|<title>[^<]*</title>`)

// send is do with body encoded by its type: nil sends none, url.Values a
// form, a string is sent as it is as JSON, anything else JSON-encoded.
func (g *gh) send(t *testing.T, method, path string, body any, hdr ...[]string) *testserver.Response {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return g.do(t, method, path, "", nil, hdr...)
	case string:
		return g.do(t, method, path, "application/json", []byte(b), hdr...)
	case url.Values:
		return g.do(t, method, path, "application/x-www-form-urlencoded", []byte(b.Encode()), hdr...)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return g.do(t, method, path, "application/json", j, hdr...)
	}
}

func (g *gh) get(t *testing.T, path string, hdr ...[]string) *testserver.Response {
	t.Helper()
	return g.do(t, http.MethodGet, path, "", nil, hdr...)
}

func flat(hdr [][]string) []string {
	var out []string
	for _, h := range hdr {
		out = append(out, h...)
	}
	return out
}

// Header groups for do and send.
func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
func apiKey(key string) []string { return []string{"X-API-Key", key} }
func (g *gh) cookie(a *account) []string {
	return []string{"Cookie", g.cookieName + "=" + a.Cookie}
}

// crossSite is what a browser sends with a request another site made.
var crossSite = []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}

// sameOrigin is what a browser sends with a request of the server's own
// pages.
func (g *gh) sameOrigin() []string {
	return []string{"Origin", g.URL, "Sec-Fetch-Site", "same-origin"}
}

// register creates an account through POST /v1/register.
func (g *gh) register(t *testing.T, email string) *account {
	t.Helper()
	r := g.send(t, http.MethodPost, "/v1/register", map[string]string{"email": email, "password": password})
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: %s", email, r)
	}
	return &account{ID: str(t, r.JSON(t), "id"), Email: email}
}

// setRoles replaces an account's roles through the admin API (as root).
func (g *gh) setRoles(t *testing.T, id string, roles ...string) {
	t.Helper()
	r := g.send(t, http.MethodPatch, "/v1/admin/users/"+id, map[string]any{"roles": roles}, bearer(g.root.Access))
	if r.Status != http.StatusOK {
		t.Fatalf("set roles %v of %s: %s", roles, id, r)
	}
}

// grant signs a in with the password grant (scope "" asks for every scope
// its roles allow) and stores the tokens in a; it returns the granted
// scope.
func (g *gh) grant(t *testing.T, a *account, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {a.Email}, "password": {password}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := g.send(t, http.MethodPost, "/oauth2/token", form)
	if r.Status != http.StatusOK {
		t.Fatalf("password grant for %s: %s", a.Email, r)
	}
	m := r.JSON(t)
	a.Access, a.Refresh = str(t, m, "access_token"), str(t, m, "refresh_token")
	sc, _ := m["scope"].(string)
	return sc
}

// login opens a cookie session for a (POST /v1/sessions, same-origin) and
// stores it in a.
func (g *gh) login(t *testing.T, a *account) {
	t.Helper()
	c, id := g.session(t, a)
	a.Cookie, a.SessionID = c, id
}

// session opens one more cookie session for a and returns the cookie
// value and the session id.
func (g *gh) session(t *testing.T, a *account) (cookie, id string) {
	t.Helper()
	r := g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": a.Email, "password": password}, g.sameOrigin())
	if r.Status != http.StatusCreated {
		t.Fatalf("session login for %s: %s", a.Email, r)
	}
	res := http.Response{Header: r.Header}
	for _, c := range res.Cookies() {
		if c.Value != "" && (c.Name == g.cookieName || (g.cookieName == "" && strings.Contains(c.Name, "session"))) {
			if g.cookieName == "" {
				g.cookieName = c.Name // in start, before any parallel use
			}
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("session login for %s set no session cookie: %v", a.Email, r.Header.Values("Set-Cookie"))
	}
	sess, _ := r.JSON(t)["session"].(map[string]any)
	return cookie, str(t, sess, "id")
}

// user registers an account in domain with roles (none: the default
// roles), signs it in with a token of every scope its roles allow and a
// cookie session.
func (g *gh) user(t *testing.T, domain string, roles ...string) *account {
	t.Helper()
	a := g.register(t, newEmail(domain))
	if len(roles) > 0 {
		g.setRoles(t, a.ID, roles...)
	}
	g.grant(t, a, "")
	g.login(t, a)
	return a
}

// createKey makes an API key of a with scopes, using a's access token, and
// returns its id and secret.
func (g *gh) createKey(t *testing.T, a *account, scopes ...string) (id, secret string) {
	t.Helper()
	r := g.send(t, http.MethodPost, "/v1/api-keys", map[string]any{"name": "test key", "scopes": scopes}, bearer(a.Access))
	if r.Status != http.StatusCreated {
		t.Fatalf("create API key %v for %s: %s", scopes, a.Email, r)
	}
	m := r.JSON(t)
	return str(t, m, "id"), str(t, m, "key")
}

// str reads a non-empty string member of a JSON object.
func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, _ := m[key].(string)
	if s == "" {
		t.Fatalf("no string %q in %v", key, m)
	}
	return s
}

// problem is an RFC 9457 problem document as Gatehouse writes it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
}

// wantProblem checks that r is a problem document (RFC 9457) with status:
// Content-Type application/problem+json, and title, status (the HTTP
// status) and detail present.
func wantProblem(t *testing.T, what string, r *testserver.Response, status int) *problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %s, want %d", what, r, status)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%s: Content-Type %q, want application/problem+json (body %s)", what, ct, r.Body)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("%s: problem document is not JSON: %v: %s", what, err, r.Body)
	}
	if p.Title == "" || p.Status != status || p.Detail == "" {
		t.Fatalf("%s: problem document %s lacks title, detail or status %d", what, r.Body, status)
	}
	return &p
}

// wantOAuthError checks an RFC 6749 §5.2 error answer with status and
// error code.
func wantOAuthError(t *testing.T, what string, r *testserver.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %s, want %d", what, r, status)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Error != code {
		t.Fatalf("%s: body %s, want an RFC 6749 error %q", what, r.Body, code)
	}
}

// wantChallenge checks the WWW-Authenticate header of a 401: a Bearer
// challenge (RFC 6750 §3), with error="invalid_token" when invalid is set
// (credentials were sent) and without an error when none were.
func wantChallenge(t *testing.T, what string, r *testserver.Response, invalid bool) {
	t.Helper()
	h := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, "Bearer") {
		t.Fatalf("%s: WWW-Authenticate %q, want a Bearer challenge", what, h)
	}
	if got := strings.Contains(h, `error="invalid_token"`); got != invalid {
		t.Fatalf("%s: WWW-Authenticate %q: error=\"invalid_token\" present %v, want %v", what, h, got, invalid)
	}
}
