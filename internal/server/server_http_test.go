package server_test

// HTTP-level tests of the server: a real `gatehouse serve` in this process
// (internal/testserver), reached over its listener.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/internal/oidc/oidctest"
	"gatehouse/internal/testserver"
)

// wantProblem checks a problem+json answer with the given status and no
// cookie set.
func wantProblem(t *testing.T, what string, r *testserver.Response, status int, detail string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %s, want %d", what, r, status)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var p struct {
		Status int `json:"status"`
	}
	// The reason is the detail, or one of huma's errors[].message.
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != status || !strings.Contains(string(r.Body), detail) {
		t.Fatalf("%s: problem %s (%v), want status %d and a reason naming %q", what, r.Body, err, status, detail)
	}
	if c := r.Header.Values("Set-Cookie"); len(c) > 0 {
		t.Fatalf("%s: a refused request set cookies %q", what, c)
	}
}

// TestCaseRepeatedMembersRefused performs the attack of SPEC §18 H9: a JSON
// body that names a member twice under different letter case. encoding/json
// fills the email field from both "email" and "Email" (the last wins), so
// a component that reads the first (a proxy, a rate limiter, a log) sees
// another account than the one the handler signs in to. Each body below
// would sign in or register with the member that comes last; each must be
// refused with 400 problem+json, as an exact repeat is.
func TestCaseRepeatedMembersRefused(t *testing.T) {
	// High login limits: a request that got through would then answer
	// for itself, not be hidden behind a 429.
	s := testserver.Start(t, testserver.Options{Env: testserver.Env(t, "rate_limits: {login_per_ip: 100000, login_per_account_ip: 100000}\n", nil)})
	const email, password = "victim@example.com", "correct horse battery staple"
	s.Register(t, email, password)
	sameOrigin := []string{"Sec-Fetch-Site", "same-origin"}
	post := func(path, body string) *testserver.Response {
		return testserver.Do(t, http.MethodPost, s.Direct+path, "application/json", []byte(body), sameOrigin...)
	}

	// The controls: without a repeat, the same requests succeed.
	if r := post("/v1/sessions", `{"email":"`+email+`","password":"`+password+`"}`); r.Status != http.StatusCreated {
		t.Fatalf("control login: %s", r)
	}
	if r := post("/v1/register", `{"email":"control@example.com","password":"`+password+`"}`); r.Status != http.StatusCreated {
		t.Fatalf("control registration: %s", r)
	}

	for _, tc := range []struct{ name, path, body string }{
		{"sessions, email then Email", "/v1/sessions", `{"email":"a@x.example","Email":"` + email + `","password":"` + password + `"}`},
		{"sessions, Email then email", "/v1/sessions", `{"Email":"a@x.example","email":"` + email + `","password":"` + password + `"}`},
		{"sessions, EMAIL through an escape", "/v1/sessions", `{"email":"a@x.example","\u0045MAIL":"` + email + `","password":"` + password + `"}`},
		{"sessions, password and Password", "/v1/sessions", `{"email":"` + email + `","password":"wrong","Password":"` + password + `"}`},
		{"sessions, password with a long s (U+017F)", "/v1/sessions", "{\"email\":\"" + email + "\",\"password\":\"x\",\"pas\u017fword\":\"" + password + "\"}"},
		{"sessions, exact repeat", "/v1/sessions", `{"email":"a@x.example","email":"` + email + `","password":"` + password + `"}`},
		{"register, email then Email", "/v1/register", `{"email":"a@x.example","Email":"b@x.example","password":"` + password + `"}`},
		{"register, Email then email", "/v1/register", `{"Email":"a@x.example","email":"b@x.example","password":"` + password + `"}`},
		{"register, name and NAME", "/v1/register", `{"email":"c@x.example","password":"` + password + `","name":"A","NAME":"B"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, "POST "+tc.path+" "+tc.body, post(tc.path, tc.body), http.StatusBadRequest, "same member")
		})
	}

	// The same requests as HTML forms: each field becomes a JSON member,
	// decoded by encoding/json too.
	postForm := func(path, body string) *testserver.Response {
		return testserver.Do(t, http.MethodPost, s.Direct+path, "application/x-www-form-urlencoded", []byte(body), sameOrigin...)
	}
	form := url.Values{"email": {email}, "password": {password}}.Encode()
	if r := postForm("/v1/sessions", form); r.Status != http.StatusCreated {
		t.Fatalf("control form login: %s", r)
	}
	for _, tc := range []struct{ name, path, body string }{
		{"form sessions, email and Email", "/v1/sessions", "Email=a%40x.example&" + form},
		{"form sessions, password and PASSWORD", "/v1/sessions", "PASSWORD=wrong&" + form},
		{"form sessions, exact repeat", "/v1/sessions", "email=a%40x.example&" + form},
		{"form register, email and eMail", "/v1/register", "eMail=a%40x.example&email=d%40x.example&password=" + url.QueryEscape(password)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, "POST "+tc.path+" "+tc.body, postForm(tc.path, tc.body), http.StatusBadRequest, "is repeated")
		})
	}
}

// tlsTerminator stands for a TLS-terminating reverse proxy in front of
// Gatehouse: the browser speaks https to host, the request reaches the
// plain-http listener addr. The browser's cookie jar sees the https URL,
// so it keeps Secure cookies and sends them back, as a real browser would.
type tlsTerminator struct {
	inner      http.RoundTripper
	host, addr string
}

func (p tlsTerminator) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "https" && r.URL.Host == p.host {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = "http", p.addr, p.host
		r.Header.Set("X-Forwarded-Proto", "https")
	}
	return p.inner.RoundTrip(r)
}

// socialLogin is a Gatehouse with one OIDC provider "corp" (a real
// OpenID Provider in this process) whose public URL is pub, and a browser
// factory whose requests to pub reach it.
type socialLogin struct {
	pub string
	s   *testserver.Server
	op  *oidctest.TestOP
}

func startSocialLogin(t *testing.T, pub string) *socialLogin {
	t.Helper()
	op := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{pub + "/v1/oidc/corp/callback"}})
	yaml := "rate_limits: {login_per_ip: 100000, login_per_account_ip: 100000}\nproviders:\n" +
		fmt.Sprintf("  - {id: corp, type: oidc, issuer: %q, client_id: %q, client_secret: %q}\n", op.Issuer, op.ClientID, op.ClientSecret)
	env := testserver.Env(t, yaml, map[string]string{"GATEHOUSE_ADDR": "127.0.0.1:0", "GATEHOUSE_PUBLIC_URL": pub})
	return &socialLogin{pub: pub, s: testserver.Start(t, testserver.Options{Env: env}), op: op}
}

func (sl *socialLogin) browser() *oidctest.Browser {
	b := oidctest.NewBrowser()
	u, _ := url.Parse(sl.pub)
	addr := strings.TrimPrefix(sl.s.Direct, "http://")
	if u.Scheme == "https" {
		b.Client.Transport = tlsTerminator{inner: b.Client.Transport, host: u.Host, addr: addr}
	} else {
		b.Route(u.Host+":80", addr)
	}
	return b
}

// toCallback starts a social login in b and walks it through the
// provider up to the redirect back to the callback, which it returns
// without requesting it, with the answer of the login start.
func (sl *socialLogin) toCallback(t *testing.T, b *oidctest.Browser) (*url.URL, *oidctest.Page) {
	t.Helper()
	start, err := b.Get(sl.pub + "/v1/oidc/corp/login?return_to=/welcome")
	if err != nil {
		t.Fatal(err)
	}
	if start.Status != http.StatusFound {
		t.Fatalf("login start: %d %.300s", start.Status, start.Body)
	}
	loc, err := start.Location()
	if err != nil {
		t.Fatal(err)
	}
	cb, _, err := b.Follow(loc.String(), func(u *url.URL) bool { return u.Path == "/v1/oidc/corp/callback" })
	if err != nil {
		t.Fatalf("flow from %s: %v", loc, err)
	}
	if got := cb.Scheme + "://" + cb.Host; got != sl.pub {
		t.Fatalf("the provider sent the browser back to %s", cb)
	}
	return cb, start
}

// setCookies parses the Set-Cookie headers of a page.
func setCookies(p *oidctest.Page) []*http.Cookie {
	return (&http.Response{Header: p.Header}).Cookies()
}

// TestFlowCookiesUseHostPrefixOnHTTPS checks SPEC §18 H10 on a Gatehouse
// whose public URL is https (behind a TLS-terminating proxy): every cookie
// that a social login sets — the browser binding at the start, its
// deletion and the session at the callback — is __Host-, Secure, Path=/
// and without Domain, and the callback reads the binding back under that
// name: a full sign-in through a real OpenID Provider succeeds.
func TestFlowCookiesUseHostPrefixOnHTTPS(t *testing.T) {
	sl := startSocialLogin(t, "https://gatehouse.test")
	b := sl.browser()
	cb, start := sl.toCallback(t, b)

	wantHostCookies := func(what string, p *oidctest.Page) []*http.Cookie {
		t.Helper()
		cs := setCookies(p)
		if len(cs) == 0 {
			t.Fatalf("%s set no cookie", what)
		}
		for _, c := range cs {
			if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly {
				t.Errorf("%s: cookie %q is not __Host-, Secure, HttpOnly, Path=/ without Domain", what, c.String())
			}
		}
		return cs
	}
	binding := wantHostCookies("login start", start)
	if len(binding) != 1 || binding[0].Name != "__Host-gatehouse_oidc" || binding[0].Value == "" || binding[0].MaxAge <= 0 ||
		binding[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("login start: binding cookie %q, want one __Host-gatehouse_oidc, SameSite=Lax, with a lifetime", start.Header.Values("Set-Cookie"))
	}

	done, err := b.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != http.StatusSeeOther || done.Header.Get("Location") != "/welcome" {
		t.Fatalf("callback: %d Location %q: %.300s", done.Status, done.Header.Get("Location"), done.Body)
	}
	names := map[string]*http.Cookie{}
	for _, c := range wantHostCookies("callback", done) {
		names[c.Name] = c
	}
	if c := names["__Host-gatehouse_oidc"]; c == nil || c.MaxAge >= 0 {
		t.Errorf("callback: the binding cookie is not deleted under its own name and path: %q", done.Header.Values("Set-Cookie"))
	}
	if c := names["__Host-gatehouse_session"]; c == nil || c.Value == "" {
		t.Fatalf("callback: no session cookie: %q", done.Header.Values("Set-Cookie"))
	}
	// The browser holds the session and no longer the binding.
	for _, c := range b.Jar.Cookies(cb) {
		if strings.Contains(c.Name, "gatehouse_oidc") {
			t.Errorf("the binding cookie outlived the login: %s", c.Name)
		}
	}
	me, err := b.Get(sl.pub + "/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	if me.Status != http.StatusOK || !strings.Contains(me.Body, `"`+oidctest.DefaultUser.Email+`"`) {
		t.Fatalf("/v1/me after the social login: %d %.300s", me.Status, me.Body)
	}
}

// TestTossedBindingCookieRefusedOnHTTPS performs the attack that the
// __Host- prefix stops (SPEC §18 H10): an attacker starts a social login
// in their own browser and stops at the redirect back (state and code of
// the attacker's account). From a sibling subdomain they plant their
// binding cookie in the victim's browser — a Domain cookie without the
// prefix, which a browser accepts from evil.gatehouse.test — and send the
// victim to their callback URL. The victim must not be signed in to the
// attacker's account: the callback reads only __Host-gatehouse_oidc, which
// no subdomain can set.
func TestTossedBindingCookieRefusedOnHTTPS(t *testing.T) {
	sl := startSocialLogin(t, "https://gatehouse.test")
	attacker := sl.browser()
	cb, start := sl.toCallback(t, attacker)
	var binding string
	for _, c := range setCookies(start) {
		if strings.HasSuffix(c.Name, "gatehouse_oidc") {
			binding = c.Value
		}
	}
	if binding == "" {
		t.Fatalf("login start set no binding cookie: %q", start.Header.Values("Set-Cookie"))
	}

	victim := sl.browser()
	victim.Jar.SetCookies(&url.URL{Scheme: "https", Host: "evil.gatehouse.test", Path: "/"},
		[]*http.Cookie{{Name: "gatehouse_oidc", Value: binding, Domain: "gatehouse.test", Path: "/"}})
	sent := false
	for _, c := range victim.Jar.Cookies(cb) {
		sent = sent || (c.Name == "gatehouse_oidc" && c.Value == binding)
	}
	if !sent {
		t.Fatalf("the tossed cookie would not be sent to %s: the attack is not set up", cb)
	}
	p, err := victim.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "did not work") {
		t.Fatalf("callback with a tossed binding cookie: %d %.300s, want the 400 error page", p.Status, p.Body)
	}
	for _, c := range setCookies(p) {
		if strings.Contains(c.Name, "session") && c.Value != "" {
			t.Fatalf("callback with a tossed binding cookie set a session cookie %s", c.Name)
		}
	}
	if me, err := victim.Get(sl.pub + "/v1/me"); err != nil || me.Status != http.StatusUnauthorized {
		t.Fatalf("/v1/me in the victim's browser: %v %v", me, err)
	}
}

// TestFlowCookiesOnHTTP: with an http public URL (development) the
// binding cookie keeps its plain name (browsers refuse __Host- without
// https) and the same round trip works.
func TestFlowCookiesOnHTTP(t *testing.T) {
	sl := startSocialLogin(t, "http://gatehouse.test")
	b := sl.browser()
	cb, start := sl.toCallback(t, b)
	cs := setCookies(start)
	if len(cs) != 1 || cs[0].Name != "gatehouse_oidc" || cs[0].Secure || cs[0].Value == "" {
		t.Fatalf("login start on http: cookies %q, want one gatehouse_oidc without Secure", start.Header.Values("Set-Cookie"))
	}
	done, err := b.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != http.StatusSeeOther {
		t.Fatalf("callback on http: %d %.300s", done.Status, done.Body)
	}
	var session bool
	for _, c := range setCookies(done) {
		session = session || (c.Name == "gatehouse_session" && c.Value != "")
	}
	if !session {
		t.Fatalf("callback on http: no gatehouse_session cookie: %q", done.Header.Values("Set-Cookie"))
	}
}

// TestSocialLoginPromptLogin: a user who signs in only through a provider
// steps up by signing in again (SPEC §13): ?prompt=login is passed on to
// the provider's authorization request; no prompt adds none; an unknown
// value is refused before any flow starts.
func TestSocialLoginPromptLogin(t *testing.T) {
	sl := startSocialLogin(t, "http://gatehouse.test")
	for _, tc := range []struct{ query, want string }{{"?prompt=login", "login"}, {"", ""}, {"?prompt=select_account", "select_account"}} {
		b := sl.browser()
		start, err := b.Get(sl.pub + "/v1/oidc/corp/login" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		loc, err := start.Location()
		if start.Status != http.StatusFound || err != nil {
			t.Fatalf("login start %q: %d %v", tc.query, start.Status, err)
		}
		if got := loc.Query().Get("prompt"); got != tc.want || (tc.want == "" && loc.Query().Has("prompt")) {
			t.Fatalf("login start %q: the provider gets prompt %q (%s), want %q", tc.query, got, loc, tc.want)
		}
	}
	bad, err := sl.browser().Get(sl.pub + "/v1/oidc/corp/login?prompt=none")
	if err != nil {
		t.Fatal(err)
	}
	if bad.Status != http.StatusBadRequest || len(setCookies(bad)) > 0 {
		t.Fatalf("login start with prompt=none: %d (cookies %d), want 400 and no flow", bad.Status, len(setCookies(bad)))
	}
}
