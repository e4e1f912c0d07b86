package browsertest

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// These tests use the pages as a browser without JavaScript would: plain
// form posts, redirects and cookies. They need no Chromium.

const testPassword = "correct horse battery staple"

// register makes an account through the register form.
func (g *gatehouse) register(t *testing.T, email, name string) {
	t.Helper()
	p := g.do(t, browserClient(t), "POST", "/register", url.Values{"email": {email}, "name": {name}, "password": {testPassword}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Check your email") {
		t.Fatalf("POST /register: want 200 \"Check your email\", got %s", p)
	}
}

// login signs client c in through the login form and returns the answer.
func (g *gatehouse) login(t *testing.T, c *http.Client, email, password, returnTo string) *page {
	t.Helper()
	f := url.Values{"email": {email}, "password": {password}}
	if returnTo != "" {
		f.Set("return_to", returnTo)
	}
	return g.do(t, c, "POST", "/login", f)
}

// signedIn is a client signed in as a new account.
func (g *gatehouse) signedIn(t *testing.T, email string) *http.Client {
	t.Helper()
	g.register(t, email, "")
	c := browserClient(t)
	if p := g.login(t, c, email, testPassword, ""); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/account" {
		t.Fatalf("POST /login: want 303 to /account, got %s (Location %q)", p, p.Header.Get("Location"))
	}
	return c
}

func sessionCookie(p *page) *http.Cookie {
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "gatehouse_session" {
			return c
		}
	}
	return nil
}

// checkHTML requires a 200-style HTML page whose CSP allows no inline
// script and which carries no inline script, style or event handler.
func checkHTML(t *testing.T, label string, p *page, wantScript bool) {
	t.Helper()
	if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("%s: Content-Type %q, want text/html", label, ct)
	}
	csp := p.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Fatalf("%s: CSP %q", label, csp)
	}
	if got := strings.Contains(csp, "script-src 'self'"); got != wantScript {
		t.Fatalf("%s: CSP %q: script-src 'self' present = %v, want %v", label, csp, got, wantScript)
	}
	if !strings.Contains(csp, "style-src 'self'") || !strings.Contains(csp, "form-action 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("%s: CSP %q lacks style-src/form-action/frame-ancestors", label, csp)
	}
	if m := regexp.MustCompile(`<script(?:\s[^>]*)?>`).FindAllString(p.Body, -1); len(m) > 0 {
		for _, tag := range m {
			if !strings.Contains(tag, `src="/assets/passkey.js"`) {
				t.Fatalf("%s: inline or foreign script %s", label, tag)
			}
		}
	}
	if regexp.MustCompile(`\sstyle=|\son[a-z]+=`).MatchString(p.Body) {
		t.Fatalf("%s: inline style or event handler in the page", label)
	}
	if strings.Count(p.Body, "<h1") != 1 {
		t.Fatalf("%s: want exactly one h1", label)
	}
	if p.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s: Cache-Control %q, want no-store", label, p.Header.Get("Cache-Control"))
	}
	// Every visible input has a label.
	for _, m := range regexp.MustCompile(`<input ([^>]*)>`).FindAllStringSubmatch(p.Body, -1) {
		attrs := m[1]
		if strings.Contains(attrs, `type="hidden"`) {
			continue
		}
		id := regexp.MustCompile(`id="([^"]+)"`).FindStringSubmatch(attrs)
		if strings.Contains(attrs, `type="checkbox"`) {
			continue // wrapped in its <label>
		}
		if id == nil || !strings.Contains(p.Body, `<label for="`+id[1]+`"`) {
			t.Fatalf("%s: input without a <label for>: <input %s>", label, attrs)
		}
	}
}

const providerYAML = `providers:
  - id: corp
    type: oidc
    name: Corp SSO
    issuer: http://127.0.0.1:1/
    client_id: gatehouse
`

func TestLoginPage(t *testing.T) {
	g := startGatehouse(t, providerYAML, nil)
	c := browserClient(t)
	p := g.do(t, c, "GET", "/login?return_to=/docs/", nil)
	if p.Status != http.StatusOK {
		t.Fatalf("GET /login: %s", p)
	}
	checkHTML(t, "GET /login", p, strings.Contains(p.Body, "passkey.js"))
	for _, want := range []string{
		`<label for="email">`, `id="email" name="email" type="email" autocomplete="username"`,
		`<label for="password">`, `id="password" name="password" type="password" autocomplete="current-password"`,
		`<button type="submit" class="primary block">Sign in</button>`,
		`<input type="hidden" name="return_to" value="/docs/">`,
		`href="/v1/oidc/corp/login?return_to=/docs/">Continue with Corp SSO</a>`,
		`href="/forgot-password"`, `href="/register?return_to=%2fdocs%2f"`,
	} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("GET /login lacks %s", want)
		}
	}
	if strings.Contains(p.Body, "passkey.js") && !regexp.MustCompile(`<button[^>]*>[^<]*passkey[^<]*</button>`).MatchString(p.Body) {
		t.Errorf("GET /login loads the passkey script but has no button whose label says passkey")
	}
	// An unsafe return_to is replaced by the default.
	for _, rt := range []string{"https://evil.example/", "//evil.example", `/\evil.example`, "javascript:alert(1)"} {
		p := g.do(t, c, "GET", "/login?return_to="+url.QueryEscape(rt), nil)
		if strings.Contains(p.Body, "evil.example") || strings.Contains(p.Body, "javascript:") {
			t.Errorf("GET /login?return_to=%s echoes it into the page", rt)
		}
	}
}

func TestLoginFailsWithOneGenericMessage(t *testing.T) {
	g := startGatehouse(t, "", nil)
	g.register(t, "ada@example.com", "Ada")
	c := browserClient(t)
	wrong := g.login(t, c, "ada@example.com", "not the password", "")
	unknown := g.login(t, c, "nobody@example.com", "not the password", "")
	for _, tc := range []struct {
		name  string
		p     *page
		email string
	}{{"wrong password", wrong, "ada@example.com"}, {"unknown email", unknown, "nobody@example.com"}} {
		if tc.p.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.name, tc.p.Status)
		}
		if !strings.Contains(tc.p.Body, `<p class="msg error" role="alert">Email or password is incorrect.</p>`) {
			t.Errorf("%s: no generic message: %s", tc.name, tc.p)
		}
		if !strings.Contains(tc.p.Body, `value="`+tc.email+`"`) || !strings.Contains(tc.p.Body, `action="/login"`) {
			t.Errorf("%s: the form is not shown again with the email", tc.name)
		}
		if strings.Contains(tc.p.Body, "not the password") {
			t.Errorf("%s: the password is echoed", tc.name)
		}
		if sessionCookie(tc.p) != nil {
			t.Errorf("%s: a session cookie was set", tc.name)
		}
		checkHTML(t, tc.name, tc.p, strings.Contains(tc.p.Body, "passkey.js"))
	}
}

func TestLoginRedirects(t *testing.T) {
	g := startGatehouse(t, "", map[string]string{"GATEHOUSE_CORS_ORIGINS": "https://app.example"})
	g.register(t, "ada@example.com", "")
	tests := []struct{ name, returnTo, want string }{
		{"default", "", "/account"},
		{"relative path", "/docs/?x=1", "/docs/?x=1"},
		{"allowed origin", "https://app.example/home", "https://app.example/home"},
		{"other origin", "https://evil.example/", "/account"},
		{"scheme-relative", "//evil.example/", "/account"},
		{"backslash", `/\evil.example`, "/account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := browserClient(t)
			p := g.login(t, c, "ada@example.com", testPassword, tt.returnTo)
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != tt.want {
				t.Fatalf("want 303 to %s, got %d to %q", tt.want, p.Status, p.Header.Get("Location"))
			}
			ck := sessionCookie(p)
			if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
				t.Fatalf("session cookie %+v", ck)
			}
			// Signed in: the login page sends the browser on.
			if p := g.do(t, c, "GET", "/login", nil); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/account" {
				t.Fatalf("GET /login when signed in: %d %q", p.Status, p.Header.Get("Location"))
			}
		})
	}
	// The allowed origin may be a form's redirect target (CSP form-action).
	p := g.do(t, browserClient(t), "GET", "/login", nil)
	if !strings.Contains(p.Header.Get("Content-Security-Policy"), "form-action 'self' https://app.example") {
		t.Errorf("CSP %q does not let the login form redirect to the allowed origin", p.Header.Get("Content-Security-Policy"))
	}
}

func TestLockoutAndRateLimitMessages(t *testing.T) {
	g := startGatehouse(t, "", map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "2"})
	g.register(t, "ada@example.com", "")
	c := browserClient(t)
	var p *page
	for i := 0; i < 3; i++ {
		p = g.login(t, c, "ada@example.com", "wrong password", "")
	}
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" {
		t.Fatalf("third failed login with lockout threshold 2: want 429 with Retry-After, got %s", p)
	}
	if !strings.Contains(p.Body, "It is locked for") || !strings.Contains(p.Body, `action="/login"`) {
		t.Fatalf("lockout page: %s", p)
	}
	// An unknown email locks out the same way (no enumeration).
	var q *page
	for i := 0; i < 3; i++ {
		q = g.login(t, c, "nobody@example.com", "wrong password", "")
	}
	if q.Status != p.Status || !strings.Contains(q.Body, "It is locked for") {
		t.Fatalf("lockout of an unknown email differs: %s", q)
	}

	// The per-account rate limit.
	g = startGatehouse(t, "rate_limits: {login_per_account_ip: 2, login_per_ip: 100, window: 1m}\n", nil)
	g.register(t, "ada@example.com", "")
	for i := 0; i < 3; i++ {
		p = g.login(t, c, "ada@example.com", testPassword, "")
	}
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" || !strings.Contains(p.Body, "Too many attempts. Wait ") {
		t.Fatalf("third login with a limit of 2 a minute: want 429 with Retry-After and a message, got %s", p)
	}
}

func TestRegisterPage(t *testing.T) {
	g := startGatehouse(t, "", nil)
	c := browserClient(t)
	p := g.do(t, c, "GET", "/register", nil)
	checkHTML(t, "GET /register", p, false)
	for _, want := range []string{`type="email" autocomplete="email"`, `type="password" autocomplete="new-password"`, `autocomplete="name"`, `>Create account</button>`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("GET /register lacks %s", want)
		}
	}
	weak := g.do(t, c, "POST", "/register", url.Values{"email": {"ada@example.com"}, "password": {"short"}})
	if weak.Status != http.StatusUnprocessableEntity || !strings.Contains(weak.Body, `role="alert"`) || !strings.Contains(weak.Body, `value="ada@example.com"`) {
		t.Fatalf("POST /register with a short password: %s", weak)
	}
	g.register(t, "ada@example.com", "Ada")
	if link := g.mailLink(t, "ada@example.com", "/verify-email"); link == "" {
		t.Fatal("no verification mail")
	}
	// A taken address answers the same (no enumeration).
	again := g.do(t, c, "POST", "/register", url.Values{"email": {"ADA@example.com"}, "password": {"another fine passphrase"}})
	if again.Status != http.StatusOK || !strings.Contains(again.Body, "Check your email") {
		t.Fatalf("POST /register with a taken address: %s", again)
	}
}

func TestAccountNeedsSession(t *testing.T) {
	g := startGatehouse(t, "", nil)
	c := browserClient(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/account"}, {"POST", "/account/profile"}, {"POST", "/account/api-keys"}, {"GET", "/logout"},
	} {
		var form url.Values
		if tc.method == "POST" {
			form = url.Values{"name": {"x"}}
		}
		p := g.do(t, c, tc.method, tc.path, form)
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login?return_to=/account" {
			t.Errorf("%s %s without a session: want 303 to /login?return_to=/account, got %d %q", tc.method, tc.path, p.Status, p.Header.Get("Location"))
		}
	}
}

func TestFormsRefuseCrossOrigin(t *testing.T) {
	g := startGatehouse(t, "", nil)
	g.register(t, "ada@example.com", "")
	cross := []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}
	anon := browserClient(t)
	if p := g.do(t, anon, "POST", "/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}}, cross...); p.Status != http.StatusForbidden || sessionCookie(p) != nil {
		t.Fatalf("cross-site POST /login: want 403 and no cookie, got %s", p)
	}
	c := browserClient(t)
	g.login(t, c, "ada@example.com", testPassword, "")
	for _, path := range []string{"/logout", "/account/profile", "/account/password", "/account/sessions/revoke-others", "/account/api-keys"} {
		if p := g.do(t, c, "POST", path, url.Values{"name": {"Mallory"}}, cross...); p.Status != http.StatusForbidden {
			t.Errorf("cross-site POST %s: want 403, got %s", path, p)
		}
	}
	if p := g.do(t, c, "GET", "/account", nil); p.Status != http.StatusOK || strings.Contains(p.Body, "Mallory") {
		t.Fatalf("after the refused posts the session must still work unchanged: %s", p)
	}
	// The same forms from this origin work.
	if p := g.do(t, c, "POST", "/account/profile", url.Values{"name": {"Ada L."}}, "Sec-Fetch-Site", "same-origin", "Origin", g.URL); p.Status != http.StatusSeeOther {
		t.Fatalf("same-origin POST /account/profile: %s", p)
	}
}

func TestAccountPage(t *testing.T) {
	g := startGatehouse(t, providerYAML, nil)
	c := g.signedIn(t, "ada@example.com")
	p := g.do(t, c, "GET", "/account", nil)
	if p.Status != http.StatusOK {
		t.Fatalf("GET /account: %s", p)
	}
	checkHTML(t, "GET /account", p, strings.Contains(p.Body, "passkey.js"))
	for _, want := range []string{"ada@example.com", `id="profile"`, `id="password"`, `id="sessions"`, `id="api-keys"`, `id="linked"`,
		`href="/v1/oidc/corp/link?return_to=/account"`, "This browser", `action="/logout"`, "Not verified"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("GET /account lacks %s", want)
		}
	}

	t.Run("profile", func(t *testing.T) {
		p := g.do(t, c, "POST", "/account/profile", url.Values{"name": {"Ada Lovelace"}})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/account?done=profile#profile" {
			t.Fatalf("POST /account/profile: %d %q", p.Status, p.Header.Get("Location"))
		}
		p = g.do(t, c, "GET", "/account?done=profile", nil)
		if !strings.Contains(p.Body, `value="Ada Lovelace"`) || !strings.Contains(p.Body, `role="status">Your name was saved.`) {
			t.Fatalf("after the name change: %s", p)
		}
		// done only picks a known message.
		if p := g.do(t, c, "GET", "/account?done=%3Cb%3Ehi", nil); strings.Contains(p.Body, "hi</b>") || strings.Contains(p.Body, "&lt;b&gt;hi") {
			t.Fatal("?done= text reaches the page")
		}
	})

	t.Run("sessions", func(t *testing.T) {
		other := browserClient(t)
		g.login(t, other, "ada@example.com", testPassword, "")
		p := g.do(t, c, "GET", "/account", nil)
		ids := regexp.MustCompile(`data-session="([^"]+)"`).FindAllStringSubmatch(p.Body, -1)
		if len(ids) != 2 || !strings.Contains(p.Body, "Sign out everywhere else") {
			t.Fatalf("want 2 sessions and a sign-out-everywhere-else button, got %d", len(ids))
		}
		otherID := ids[1][1] // the current one is listed first
		if r := g.do(t, c, "POST", "/account/sessions/"+otherID+"/revoke", url.Values{}); r.Status != http.StatusSeeOther {
			t.Fatalf("revoke: %s", r)
		}
		if r := g.do(t, other, "GET", "/v1/me", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("the revoked session on GET /v1/me: want 401, got %s", r)
		}
		if r := g.do(t, c, "POST", "/account/sessions/"+otherID+"/revoke", url.Values{}); r.Status != http.StatusNotFound || !strings.Contains(r.Body, `role="alert"`) {
			t.Fatalf("revoking it again: want 404 with a message, got %s", r)
		}
		// Sign out everywhere else.
		third := browserClient(t)
		g.login(t, third, "ada@example.com", testPassword, "")
		if r := g.do(t, c, "POST", "/account/sessions/revoke-others", url.Values{}); r.Status != http.StatusSeeOther {
			t.Fatalf("revoke-others: %s", r)
		}
		if r := g.do(t, third, "GET", "/v1/me", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("after sign out everywhere else: want 401, got %s", r)
		}
		if r := g.do(t, c, "GET", "/v1/me", nil); r.Status != http.StatusOK {
			t.Fatalf("this browser must stay signed in: %s", r)
		}
	})

	t.Run("api keys", func(t *testing.T) {
		bad := g.do(t, c, "POST", "/account/api-keys", url.Values{"name": {"CI"}, "expires": {"90"}})
		if bad.Status != http.StatusUnprocessableEntity || !strings.Contains(bad.Body, "Choose at least one scope") || !strings.Contains(bad.Body, `value="CI"`) {
			t.Fatalf("key without scopes: %s", bad)
		}
		p := g.do(t, c, "POST", "/account/api-keys", url.Values{"name": {"CI"}, "scope": {"read"}, "expires": {"30"}})
		key := regexp.MustCompile(`<code id="new-key">(gth_[A-Za-z0-9_]+)</code>`).FindStringSubmatch(p.Body)
		if p.Status != http.StatusOK || key == nil || p.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("POST /account/api-keys: want 200 showing the key, got %s", p)
		}
		if r := g.do(t, browserClient(t), "GET", "/v1/me", nil, "X-API-Key", key[1]); r.Status != http.StatusOK {
			t.Fatalf("the new key on GET /v1/me: %s", r)
		}
		again := g.do(t, c, "GET", "/account", nil)
		if strings.Contains(again.Body, key[1]) {
			t.Fatal("the key is shown a second time")
		}
		id := regexp.MustCompile(`data-api-key="([^"]+)"`).FindStringSubmatch(again.Body)
		if id == nil {
			t.Fatal("the key is not listed")
		}
		if r := g.do(t, c, "POST", "/account/api-keys/"+id[1]+"/revoke", url.Values{}); r.Status != http.StatusSeeOther {
			t.Fatalf("revoke key: %s", r)
		}
		if r := g.do(t, browserClient(t), "GET", "/v1/me", nil, "X-API-Key", key[1]); r.Status != http.StatusUnauthorized {
			t.Fatalf("the revoked key: want 401, got %s", r)
		}
	})

	t.Run("password", func(t *testing.T) {
		other := browserClient(t)
		g.login(t, other, "ada@example.com", testPassword, "")
		bad := g.do(t, c, "POST", "/account/password", url.Values{"current_password": {"wrong"}, "new_password": {"a brand new passphrase"}})
		if bad.Status != http.StatusUnprocessableEntity || !strings.Contains(bad.Body, "Current password is incorrect.") {
			t.Fatalf("wrong current password: %s", bad)
		}
		p := g.do(t, c, "POST", "/account/password", url.Values{"current_password": {testPassword}, "new_password": {"a brand new passphrase"}})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/account?done=password#password" {
			t.Fatalf("change password: %d %q %s", p.Status, p.Header.Get("Location"), p)
		}
		if r := g.do(t, other, "GET", "/v1/me", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("other session after a password change: want 401, got %s", r)
		}
		if r := g.login(t, browserClient(t), "ada@example.com", "a brand new passphrase", ""); r.Status != http.StatusSeeOther {
			t.Fatalf("login with the new password: %s", r)
		}
	})

	t.Run("logout", func(t *testing.T) {
		confirm := g.do(t, c, "GET", "/logout", nil)
		checkHTML(t, "GET /logout", confirm, false)
		p := g.do(t, c, "POST", "/logout", url.Values{})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login?done=signed-out" {
			t.Fatalf("POST /logout: %d %q", p.Status, p.Header.Get("Location"))
		}
		if ck := sessionCookie(p); ck == nil || ck.MaxAge >= 0 {
			t.Fatalf("POST /logout does not clear the cookie: %v", ck)
		}
		if r := g.do(t, c, "GET", "/account", nil); r.Status != http.StatusSeeOther {
			t.Fatalf("GET /account after logout: %s", r)
		}
		if r := g.do(t, c, "GET", "/login?done=signed-out", nil); !strings.Contains(r.Body, "You are signed out.") {
			t.Fatalf("login page after logout: %s", r)
		}
	})
}

func TestBranding(t *testing.T) {
	g := startGatehouse(t, "", map[string]string{
		"GATEHOUSE_PRODUCT_NAME": "Acme ID",
		"GATEHOUSE_BRAND_COLOR":  "#F5C400",
		"GATEHOUSE_LOGO_URL":     "https://cdn.example.com/acme.svg",
	})
	c := browserClient(t)
	p := g.do(t, c, "GET", "/login", nil)
	if !strings.Contains(p.Body, `<img class="logo" src="https://cdn.example.com/acme.svg" alt="Acme ID">`) || !strings.Contains(p.Body, "<title>Sign in · Acme ID</title>") {
		t.Fatalf("branded login page: %s", p)
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.example.com;") {
		t.Fatalf("CSP %q does not allow the logo", csp)
	}
	css := g.do(t, c, "GET", "/assets/brand.css", nil)
	if css.Status != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || !strings.Contains(css.Body, "--accent: #f5c400;") {
		t.Fatalf("GET /assets/brand.css: %s", css)
	}
	// A light accent gets dark button text.
	if !strings.Contains(css.Body, "--accent-fg: #111418;") {
		t.Fatalf("brand.css for a light accent: %s", css.Body)
	}
	for _, path := range []string{"/assets/gatehouse.css", "/assets/passkey.js"} {
		if r := g.do(t, c, "GET", path, nil); r.Status != http.StatusOK {
			t.Fatalf("GET %s: %s", path, r)
		}
	}
}

func TestMailedLinkPages(t *testing.T) {
	g := startGatehouse(t, "", nil)
	g.register(t, "ada@example.com", "")
	c := browserClient(t)
	link := g.mailLink(t, "ada@example.com", "/verify-email")
	path := strings.TrimPrefix(link, g.URL)
	p := g.do(t, c, "GET", path, nil)
	checkHTML(t, "GET /verify-email", p, false)
	tok := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(p.Body)
	if tok == nil {
		t.Fatalf("verify page without the token form: %s", p)
	}
	if r := g.do(t, c, "POST", "/verify-email", url.Values{"token": {tok[1]}}); r.Status != http.StatusOK || !strings.Contains(r.Body, "Email address verified") {
		t.Fatalf("POST /verify-email: %s", r)
	}
	checkHTML(t, "GET /forgot-password", g.do(t, c, "GET", "/forgot-password", nil), false)
	if r := g.do(t, c, "POST", "/forgot-password", url.Values{"email": {"ada@example.com"}}); r.Status != http.StatusOK {
		t.Fatalf("POST /forgot-password: %s", r)
	}
	reset := g.mailLink(t, "ada@example.com", "/reset-password")
	r := g.do(t, c, "GET", strings.TrimPrefix(reset, g.URL), nil)
	checkHTML(t, "GET /reset-password", r, false)
}
