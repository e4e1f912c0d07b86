package httptest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/config"
	"gatehouse/internal/testserver"
)

// wholePage fetches a console page whole (do keeps only the messages of
// a long HTML page) and requires status.
func (g *gh) wholePage(t *testing.T, path string, status int, a *account) string {
	t.Helper()
	r, _ := g.htmlPage(t, http.MethodGet, path, nil, g.cookie(a))
	if r.Status != status {
		t.Fatalf("GET %s: %d, want %d: %.300s", path, r.Status, status, r.Body)
	}
	return string(r.Body)
}

// figureRE finds a figure of the overview: its label and number.
var figureRE = regexp.MustCompile(`<dt>([^<]+)</dt><dd>(?:<span class="badge warn">)?(\d+)`)

// figures reads the overview's figures by label.
func (g *gh) figures(t *testing.T, a *account) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range figureRE.FindAllStringSubmatch(g.wholePage(t, "/admin", http.StatusOK, a), -1) {
		n, _ := strconv.Atoi(m[2])
		out[m[1]] = n
	}
	return out
}

// GATEHOUSE_ADMIN_ALLOWED_CIDRS (SPEC §17): outside the networks, the
// console and the admin API answer exactly what an unknown path answers;
// inside, they work. The client address is the one trusted_proxies yields.
func TestConsoleAllowedCIDRs(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false",
		"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1/32", "GATEHOUSE_ADMIN_ALLOWED_CIDRS": "10.20.0.0/16, 192.0.2.7"})
	g.login(t, g.root)
	via := func(chain string) []string { return []string{"X-Forwarded-For", chain} }
	root, admin := g.cookie(g.root), bearer(g.root.Access)

	// Inside: the console and the admin API as usual.
	for _, tc := range []struct {
		name, path string
		hdr        [][]string
	}{
		{"console", "/admin", [][]string{root, via("10.20.3.4")}},
		{"settings", "/admin/settings", [][]string{root, via("10.20.3.4")}},
		{"admin API", "/v1/admin/users", [][]string{admin, via("10.20.255.1")}},
		{"single address", "/v1/admin/users", [][]string{admin, via("192.0.2.7")}},
		{"proxy appended the client", "/admin", [][]string{root, via("203.0.113.9, 10.20.3.4")}},
	} {
		if r := g.get(t, tc.path, tc.hdr...); r.Status != http.StatusOK {
			t.Errorf("inside, %s: GET %s: %s, want 200", tc.name, tc.path, r)
		}
	}

	// Outside: the answer of a path that does not exist, to the byte.
	unknown := g.get(t, "/no-such-endpoint", admin, via("203.0.113.9"))
	wantProblem(t, "GET of an unknown path", unknown, http.StatusNotFound)
	for _, tc := range []struct {
		name, method, path string
		hdr                [][]string
	}{
		{"console", http.MethodGet, "/admin", [][]string{root, via("203.0.113.9")}},
		{"console, trailing slash", http.MethodGet, "/admin/", [][]string{root, via("203.0.113.9")}},
		{"settings", http.MethodGet, "/admin/settings", [][]string{root, via("203.0.113.9")}},
		{"step-up page", http.MethodGet, "/admin/step-up", [][]string{root, via("203.0.113.9")}},
		{"test mail", http.MethodPost, "/admin/settings/test-mail", [][]string{root, g.sameOrigin(), via("203.0.113.9")}},
		{"admin API", http.MethodGet, "/v1/admin/users", [][]string{admin, via("203.0.113.9")}},
		{"admin API, wrong method", http.MethodPut, "/v1/admin/users", [][]string{admin, via("203.0.113.9")}},
		{"escaped path", http.MethodGet, "/%61dmin/settings", [][]string{root, via("203.0.113.9")}},
		{"no forwarded address (the proxy itself)", http.MethodGet, "/admin", [][]string{root}},
		{"client hid behind an allowed address", http.MethodGet, "/v1/admin/users", [][]string{admin, via("10.20.3.4, 203.0.113.9")}},
	} {
		r := g.do(t, tc.method, tc.path, "", nil, tc.hdr...)
		if r.Status != http.StatusNotFound || string(r.Body) != string(unknown.Body) || r.Header.Get("Content-Type") != unknown.Header.Get("Content-Type") {
			t.Errorf("outside, %s: %s %s: %s (%s), want what an unknown path gets: %s", tc.name, tc.method, tc.path, r, r.Header.Get("Content-Type"), unknown)
		}
		if loc := r.Header.Get("Location"); loc != "" {
			t.Errorf("outside, %s: redirected to %q", tc.name, loc)
		}
	}
	// Unclean paths: the redirect to the clean form that any unclean path
	// gets (and then the 404).
	unclean := g.get(t, "/x/../no-such-endpoint?q=1", root, via("203.0.113.9"))
	if unclean.Status != http.StatusTemporaryRedirect || unclean.Header.Get("Location") != "/no-such-endpoint?q=1" {
		t.Fatalf("GET of an unclean unknown path: %s (Location %q), want the mux's 307", unclean, unclean.Header.Get("Location"))
	}
	for p, clean := range map[string]string{"/x/../admin?q=1": "/admin?q=1", "//admin/settings?q=1": "/admin/settings?q=1",
		"/admin/./users?q=1": "/admin/users?q=1", "/v1//admin/users": "/v1/admin/users"} {
		r := g.get(t, p, admin, via("203.0.113.9"))
		if r.Status != unclean.Status || r.Header.Get("Location") != clean ||
			string(r.Body) != strings.ReplaceAll(string(unclean.Body), "/no-such-endpoint?q=1", clean) {
			t.Errorf("outside, GET %s: %s (Location %q), want the redirect to %s any unclean path gets", p, r, r.Header.Get("Location"), clean)
		}
	}
	// The OpenAPI document does not tell what the 404s hide: outside, it
	// has no admin path and no schema only they used; every reference
	// left still resolves. Inside, it is whole.
	for _, doc := range []string{"/openapi.json", "/openapi-3.0.json", "/openapi.yaml", "/openapi-3.0.yaml"} {
		in := g.get(t, doc, via("10.20.3.4"))
		out := g.get(t, doc, via("203.0.113.9"))
		if in.Status != http.StatusOK || !strings.Contains(string(in.Body), "/v1/admin/users") || !strings.Contains(string(in.Body), "AdminListOutputBody") {
			t.Fatalf("GET %s from inside: %d, want 200 with the admin API", doc, in.Status)
		}
		if out.Status != http.StatusOK || out.Header.Get("Content-Type") != in.Header.Get("Content-Type") {
			t.Fatalf("GET %s from outside: %d %s, want 200 %s", doc, out.Status, out.Header.Get("Content-Type"), in.Header.Get("Content-Type"))
		}
		body := string(out.Body)
		if strings.Contains(body, "/v1/admin") || strings.Contains(body, "AdminListOutputBody") || !strings.Contains(body, "/v1/me") || !strings.Contains(body, "/v1/api-keys") {
			t.Errorf("GET %s from outside: still names the admin API, or lost the rest (%d bytes of %d)", doc, len(body), len(in.Body))
		}
		for _, m := range regexp.MustCompile(`#/components/schemas/([A-Za-z0-9_]+)`).FindAllStringSubmatch(body, -1) {
			if !regexp.MustCompile(`(?m)^\s*"?` + m[1] + `"?\s*:|"` + m[1] + `":\{`).MatchString(body) {
				t.Errorf("GET %s from outside: $ref to %s, which the document no longer defines", doc, m[1])
				break
			}
		}
	}

	// The account page links to the console only where it is served.
	if p, _ := g.htmlPage(t, http.MethodGet, "/account", nil, root, via("10.20.3.4")); !strings.Contains(string(p.Body), `<a href="/admin">Admin console</a>`) {
		t.Errorf("the admin's account page inside the networks: %d, want a link to the console", p.Status)
	}
	if p, _ := g.htmlPage(t, http.MethodGet, "/account", nil, root, via("203.0.113.9")); p.Status != http.StatusOK || strings.Contains(string(p.Body), `href="/admin"`) {
		t.Errorf("the admin's account page outside the networks: %d, want no link to the console", p.Status)
	}

	// Nothing else is restricted.
	if r := g.get(t, "/v1/me", admin, via("203.0.113.9")); r.Status != http.StatusOK {
		t.Errorf("GET /v1/me from outside the admin networks: %s, want 200", r)
	}

	t.Run("UntrustedPeer", func(t *testing.T) {
		// Without trusted proxies the header is not believed: the peer
		// (127.0.0.1) is outside.
		g := start(t, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false", "GATEHOUSE_ADMIN_ALLOWED_CIDRS": "10.20.0.0/16"})
		if r := g.get(t, "/v1/admin/users", bearer(g.root.Access), via("10.20.3.4")); r.Status != http.StatusNotFound {
			t.Errorf("X-Forwarded-For from an untrusted peer: %s, want 404", r)
		}
	})
}

// The overview counts accounts, sign-ins, lockouts and webhook endpoints
// as they change.
func TestConsoleOverviewFigures(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false", "GATEHOUSE_LOCKOUT_THRESHOLD": "3",
		"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true"})
	g.login(t, g.root)
	before := g.figures(t, g.root)
	for _, label := range []string{"Accounts", "New in the last 7 days", "Email not verified", "Disabled", "With an authenticator app (TOTP)",
		"Succeeded", "Failed", "Locked now", "Mail waiting to be sent", "Mail given up in the last 7 days",
		"Webhook deliveries failed in the last 7 days", "Webhook endpoints disabled"} {
		if _, ok := before[label]; !ok {
			t.Errorf("the overview lacks %q (it shows %v)", label, before)
		}
	}

	// Four accounts: two registered only, one signed in with a token and a
	// session, one with TOTP (signed in with a token to set it up).
	a1 := g.register(t, newEmail("figures"))
	a2 := g.register(t, newEmail("figures"))
	b := g.user(t, "figures")
	g.mfaUser(t, "figures")
	for _, p := range []struct {
		id   string
		body map[string]any
	}{{a1.ID, map[string]any{"disabled": true}}, {a2.ID, map[string]any{"email_verified": true}}} {
		if r := g.send(t, http.MethodPatch, "/v1/admin/users/"+p.id, p.body, bearer(g.root.Access)); r.Status != http.StatusOK {
			t.Fatalf("PATCH /v1/admin/users/%s %v: %s", p.id, p.body, r)
		}
	}
	// Failed sign-ins: two wrong passwords, an unknown account, and three
	// more for b, whose fourth attempt meets the lock (threshold 3).
	fail := func(email string) int {
		t.Helper()
		return g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": email, "password": "not the password"}, g.sameOrigin()).Status
	}
	fail(a2.Email)
	fail(a2.Email)
	fail(newEmail("nobody"))
	for i := range 4 {
		if st := fail(b.Email); (i < 3 && st != http.StatusUnauthorized) || (i == 3 && st != http.StatusTooManyRequests) {
			t.Fatalf("wrong password %d for %s: %d", i+1, b.Email, st)
		}
	}
	// A disabled webhook endpoint.
	if r := g.send(t, http.MethodPost, "/v1/admin/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"*"}, "enabled": false},
		bearer(g.root.Access)); r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/admin/webhooks: %s", r)
	}

	after := g.figures(t, g.root)
	for label, delta := range map[string]int{
		"Accounts": 4, "New in the last 7 days": 4, "Email not verified": 3, "Disabled": 1, "With an authenticator app (TOTP)": 1,
		"Succeeded": 3, // b: a token and a session; the TOTP user: a token
		"Failed":    6, "Locked now": 1,
		"Webhook endpoints disabled": 1, "Webhook deliveries failed in the last 7 days": 0, "Mail given up in the last 7 days": 0,
	} {
		if got := after[label] - before[label]; got != delta {
			t.Errorf("%s: %d → %d, want +%d", label, before[label], after[label], delta)
		}
	}
}

// settingRow returns the Settings page's row of a setting.
func settingRow(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tr id="setting-` + regexp.QuoteMeta(name) + `">(.*?)</tr>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the settings page has no row for %s", name)
	}
	return m[1]
}

// The Settings page lists every setting with its value and source, the
// YAML-only sections with theirs, and never a secret.
func TestConsoleSettings(t *testing.T) {
	const (
		smtpPassword   = "Sm7pPassw0rd-settings"
		providerSecret = "provider-secret-settings-0123456789"
		clientSecret   = "client-secret-settings-0123456789abcdef"
		hookSecret     = "whsec_aG9vay1zZWNyZXQtc2V0dGluZ3MtMDEyMzQ1Njc4OQ=="
		webhookSecret  = "whsec_d2ViaG9vay1zZWNyZXQtc2V0dGluZ3MtMDEyMzQ1Njc="
		webhookToken   = "query-token-settings-42"
	)
	yaml := baseYAML + `lockout_duration: 20m
webhook_allow_private: true
providers:
  - id: gh
    type: github
    name: GitHub
    client_id: gh-client-id
    client_secret: ` + providerSecret + `
clients:
  - id: settings-app
    name: Settings App
    type: confidential
    secret: ` + clientSecret + `
    redirect_uris: [https://app.example.com/cb]
    grant_types: [authorization_code]
    scopes: openid
hooks:
  before_register:
    url: http://127.0.0.1:9/hook
    secret: ` + hookSecret + `
    on_error: allow
webhooks:
  - url: http://127.0.0.1:9/in?token=` + webhookToken + `
    events: [user.deleted]
    secret: ` + webhookSecret + `
`
	g := startYAML(t, yaml, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false", "GATEHOUSE_LOCKOUT_THRESHOLD": "7",
		"GATEHOUSE_SMTP_URL": "smtp://mailer:" + smtpPassword + "@127.0.0.1:1"})
	g.login(t, g.root)
	page := g.wholePage(t, "/admin/settings", http.StatusOK, g.root)

	for _, s := range config.Settings() {
		settingRow(t, page, s.Name)
	}
	for _, tc := range []struct{ name, value, source string }{
		{"lockout_threshold", "<code>7</code>", "env <code>GATEHOUSE_LOCKOUT_THRESHOLD</code>"},
		{"lockout_duration", "<code>20m</code>", "YAML file"},
		{"refresh_token_ttl", "<code>720h</code>", "default"},
		{"smtp_url", "<code>smtp://mailer:REDACTED@127.0.0.1:1</code>", "env <code>GATEHOUSE_SMTP_URL</code>"},
		{"secret", "<code>REDACTED</code>", "env <code>GATEHOUSE_SECRET</code>"},
		{"redis_url", "not set", "default"},
	} {
		row := settingRow(t, page, tc.name)
		if !strings.Contains(row, tc.value) || !strings.Contains(row, `<td data-label="Source">`+tc.source) {
			t.Errorf("row of %s = %s\nwant value %s from %s", tc.name, row, tc.value, tc.source)
		}
	}
	for name, source := range map[string]string{"rate_limits": "YAML file", "providers": "YAML file", "roles": "default", "scopes": "default"} {
		if !strings.Contains(page, `<tr id="section-`+name+`"><td><code>`+name+`:</code></td><td>`+source+`</td></tr>`) {
			t.Errorf("the section %s is not shown as from %s", name, source)
		}
	}
	for _, want := range []string{"<code>gh-client-id</code>", "<code>settings-app</code>", "<code>before_register</code>",
		"http://127.0.0.1:9/in?token=REDACTED", `<input id="test-mail-to" name="to" type="email" value="` + g.root.Email + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the settings page lacks %s", want)
		}
	}
	for name, secret := range map[string]string{"GATEHOUSE_SECRET": rootSecret, "the SMTP password": smtpPassword, "a provider secret": providerSecret,
		"a client secret": clientSecret, "a hook secret": hookSecret, "a webhook secret": webhookSecret, "a webhook URL's token": webhookToken} {
		if strings.Contains(page, secret) {
			t.Errorf("the settings page shows %s", name)
		}
	}
	if h := g.get(t, "/admin/settings", g.cookie(g.root)); h.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", h.Header.Get("Cache-Control"))
	}

	// Administrators only.
	u := g.user(t, "settings")
	if r := g.get(t, "/admin/settings", g.cookie(u)); r.Status != http.StatusForbidden {
		t.Errorf("GET /admin/settings with a user's session: %s, want 403", r)
	}
}

// "Send a test mail": queued through the mail queue (and sent: the outbox
// gets it), audited as admin.mail_test.sent via the console; only for an
// administrator's same-site post after a recent sign-in.
func TestConsoleTestMail(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false"})
	g.login(t, g.root)
	events := func() []map[string]any {
		t.Helper()
		r := g.get(t, "/v1/admin/audit?type=admin.mail_test.sent", bearer(g.root.Access))
		var out struct {
			Events []map[string]any `json:"events"`
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &out) != nil {
			t.Fatalf("GET /v1/admin/audit: %s", r)
		}
		return out.Events
	}
	post := func(to string, hdr ...[]string) *testserver.Response {
		t.Helper()
		return g.send(t, http.MethodPost, "/admin/settings/test-mail", url.Values{"to": {to}}, hdr...)
	}
	root := g.cookie(g.root)

	// To the administrator (the address left empty), then to another.
	for _, tc := range []struct{ to, want string }{{"", g.root.Email}, {"Ops@Example.ORG", "ops@example.org"}} {
		r := post(tc.to, root, g.sameOrigin())
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/admin/settings?notice=") {
			t.Fatalf("test mail to %q: %s (Location %q), want 303 back to the settings", tc.to, r, r.Header.Get("Location"))
		}
		// The notice travels sealed: the page it leads to shows it.
		if page := g.get(t, r.Header.Get("Location"), root); !strings.Contains(string(page.Body), "Test mail queued for "+tc.want+".") {
			t.Errorf("the settings page after a test mail to %q: %d, does not say it was queued for %s", tc.to, page.Status, tc.want)
		}
		waitForMail(t, g, tc.want)
	}
	evs := events()
	if len(evs) != 2 {
		t.Fatalf("admin.mail_test.sent events: %v, want 2", evs)
	}
	for i, want := range []string{"ops@example.org", g.root.Email} { // newest first
		d, _ := evs[i]["details"].(map[string]any)
		if evs[i]["user_id"] != g.root.ID || d["to"] != want || d["via"] != "console" || d["actor"] != g.root.ID {
			t.Errorf("event %d = %v, want to %s, via console, by %s", i, evs[i], want, g.root.ID)
		}
	}

	// Refused: not an address, a user, a cross-site post. None is audited.
	if r := post("not an address", root, g.sameOrigin()); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "not an email address") {
		t.Errorf("test mail to a non-address: %s, want 400 saying so", r)
	}
	u := g.user(t, "testmail")
	if r := post("", g.cookie(u), g.sameOrigin()); r.Status != http.StatusForbidden {
		t.Errorf("test mail by a user: %s, want 403", r)
	}
	if r := post("", root, crossSite); r.Status != http.StatusForbidden {
		t.Errorf("cross-site test mail: %s, want 403", r)
	}
	if n := len(events()); n != 2 {
		t.Errorf("%d admin.mail_test.sent events after the refused posts, want still 2", n)
	}

	t.Run("NeedsRecentSignIn", func(t *testing.T) {
		g := start(t, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false", "GATEHOUSE_STEP_UP_MAX_AGE": "1s"})
		g.login(t, g.root)
		time.Sleep(1100 * time.Millisecond)
		r := g.send(t, http.MethodPost, "/admin/settings/test-mail", url.Values{"to": {""}}, g.cookie(g.root), g.sameOrigin())
		if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/admin/step-up?return_to=/admin/settings" {
			t.Fatalf("test mail with an old sign-in: %s (Location %q), want 303 to the step-up page", r, r.Header.Get("Location"))
		}
		if r := g.get(t, "/v1/admin/audit?type=admin.mail_test.sent", bearer(g.root.Access)); strings.Contains(string(r.Body), "admin.mail_test.sent") {
			t.Errorf("a test mail was sent without a recent sign-in: %s", r.Body)
		}
	})
}

// waitForMail waits until the outbox (no SMTP configured) holds a test
// mail to the address.
func waitForMail(t *testing.T, g *gh, to string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(g.DataDir, "mail", "*.eml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), "Test mail from") && strings.Contains(string(b), "<"+to+">") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no test mail to %s in the outbox (%d files)", to, len(files))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
