package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/internal/oidc/oidctest"
)

// The server's public URL in these tests is pub, http://gatehouse.test;
// the test browser routes that host to the real listener, so redirect URIs
// registered at the providers are <public URL>/v1/oidc/<id>/callback as in
// production.

func oidcCallback(id string) string { return pub + "/v1/oidc/" + id + "/callback" }

// providerYAML is one entry of the providers list.
func providerYAML(id, issuer, clientID, secret string) string {
	return fmt.Sprintf("  - {id: %s, type: oidc, name: %s, issuer: %q, client_id: %q, client_secret: %q, scopes: [openid, email, profile]}\n",
		id, id, issuer, clientID, secret)
}

// startWithProviders starts gatehouse with the providers (YAML list
// entries) and high rate limits (every flow here comes from 127.0.0.1).
func startWithProviders(t *testing.T, extra map[string]string, providers ...string) *testServer {
	t.Helper()
	yaml := "rate_limits: {login_per_ip: 100000, login_per_account_ip: 100000}\nproviders:\n" + strings.Join(providers, "")
	return start(t, yamlEnv(t, yaml, extra))
}

// browserFor is a fresh browser whose gatehouse.test reaches s.
func browserFor(s *testServer) *oidctest.Browser {
	b := oidctest.NewBrowser()
	b.Route("gatehouse.test:80", strings.TrimPrefix(s.Direct, "http://"))
	return b
}

// toCallback starts a login (or link) at gatehouse in browser b and walks
// it through the provider up to the redirect back to a callback, which it
// returns without requesting it.
func toCallback(t *testing.T, b *oidctest.Browser, provider, action, returnTo string) *url.URL {
	t.Helper()
	start := pub + "/v1/oidc/" + provider + "/" + action
	if returnTo != "" {
		start += "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	cb, _, err := b.Follow(start, func(u *url.URL) bool {
		return u.Host == "gatehouse.test" && strings.HasSuffix(u.Path, "/callback")
	})
	if err != nil {
		t.Fatalf("flow from %s: %v", start, err)
	}
	return cb
}

func mustGet(t *testing.T, b *oidctest.Browser, u string) *oidctest.Page {
	t.Helper()
	p, err := b.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return p
}

func browserDo(t *testing.T, b *oidctest.Browser, method, u string) *oidctest.Page {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return p
}

func sessionCookie(b *oidctest.Browser) string {
	u, _ := url.Parse(pub + "/")
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "gatehouse_session" {
			return c.Value
		}
	}
	return ""
}

// wantRefused checks a callback answer: the generic 400 page, no session.
func wantRefused(t *testing.T, b *oidctest.Browser, p *oidctest.Page) {
	t.Helper()
	if p.Status != http.StatusBadRequest || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("callback answered %d %q, want the 400 error page: %.300s", p.Status, p.Header.Get("Content-Type"), p.Body)
	}
	if !strings.Contains(p.Body, "did not work") {
		t.Errorf("the error page is not the generic one: %.500s", p.Body)
	}
	if sessionCookie(b) != "" || strings.Contains(p.Header.Get("Set-Cookie"), "gatehouse_session") {
		t.Fatalf("a refused callback set a session cookie")
	}
	if me := mustGet(t, b, pub+"/v1/me"); me.Status != http.StatusUnauthorized {
		t.Fatalf("/v1/me after a refused callback: %d", me.Status)
	}
}

func metricsText(t *testing.T, s *testServer) string {
	t.Helper()
	return string(s.do(t, "GET", "/metrics", "", nil).Body)
}

// TestOIDCLoginEndToEnd signs in through gatehouse at a real OpenID
// Provider (zitadel/oidc's op) as a browser would.
func TestOIDCLoginEndToEnd(t *testing.T) {
	op := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{oidcCallback("corp")}})
	s := startWithProviders(t, nil, providerYAML("corp", op.Issuer, op.ClientID, op.ClientSecret))
	b := browserFor(s)

	cb := toCallback(t, b, "corp", "login", "/welcome?tab=1")
	if cb.Path != "/v1/oidc/corp/callback" || cb.Query().Get("state") == "" || cb.Query().Get("code") == "" {
		t.Fatalf("back at %s", cb)
	}
	p := mustGet(t, b, cb.String())
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/welcome?tab=1" {
		t.Fatalf("callback: %d Location %q: %.300s", p.Status, p.Header.Get("Location"), p.Body)
	}
	if sessionCookie(b) == "" {
		t.Fatalf("no session cookie after the callback (Set-Cookie %q)", p.Header.Values("Set-Cookie"))
	}
	me := mustGet(t, b, pub+"/v1/me")
	var u struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := json.Unmarshal([]byte(me.Body), &u); me.Status != 200 || err != nil {
		t.Fatalf("/v1/me with the session: %d %s", me.Status, me.Body)
	}
	if u.Email != "alice@example.com" || !u.EmailVerified || u.Name != "Alice Liddell" {
		t.Fatalf("/v1/me = %+v", u)
	}
	ids := mustGet(t, b, pub+"/v1/me/identities")
	var list struct {
		Identities []struct{ ID, Provider, Email string } `json:"identities"`
	}
	if err := json.Unmarshal([]byte(ids.Body), &list); ids.Status != 200 || err != nil || len(list.Identities) != 1 ||
		list.Identities[0].Provider != "corp" || list.Identities[0].Email != "alice@example.com" {
		t.Fatalf("/v1/me/identities: %d %s", ids.Status, ids.Body)
	}
	del := browserDo(t, b, http.MethodDelete, pub+"/v1/me/identities/"+list.Identities[0].ID)
	if del.Status != http.StatusConflict || !strings.Contains(del.Body, "last way to sign in") {
		t.Fatalf("unlinking the last way to sign in: %d %s", del.Status, del.Body)
	}

	// The same callback again (replay): refused, it was single-use.
	b2 := browserFor(s)
	for _, c := range b.Jar.Cookies(cb) { // even with the first browser's cookies
		if c.Name == "gatehouse_oidc" {
			t.Errorf("the binding cookie outlived the login")
		}
	}
	wantRefused(t, b2, mustGet(t, b2, cb.String()))

	// A second login of the same user reaches the same account.
	b3 := browserFor(s)
	if p := mustGet(t, b3, toCallback(t, b3, "corp", "login", "").String()); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/account" {
		t.Fatalf("second login: %d %q", p.Status, p.Header.Get("Location"))
	}
	if me2 := mustGet(t, b3, pub+"/v1/me"); !strings.Contains(me2.Body, `"alice@example.com"`) || !strings.Contains(me.Body, jsonField(t, me2.Body, "id")) {
		t.Fatalf("second login reached another account: %s vs %s", me2.Body, me.Body)
	}

	m := metricsText(t, s)
	for _, want := range []string{`gatehouse_oidc_logins_total{provider="corp",result="succeeded"} 2`, `gatehouse_oidc_logins_total{provider="corp",result="failed"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(s.Log(), op.ClientSecret) {
		t.Errorf("the log contains the client secret")
	}

	// Unknown provider; link without a session.
	if p := mustGet(t, b2, pub+"/v1/oidc/nope/login"); p.Status != http.StatusNotFound {
		t.Errorf("unknown provider: %d", p.Status)
	}
	if p := mustGet(t, b2, pub+"/v1/oidc/corp/link"); p.Status != http.StatusUnauthorized {
		t.Errorf("link without a session: %d", p.Status)
	}
}

func jsonField(t *testing.T, body, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	s, _ := m[field].(string)
	if s == "" {
		t.Fatalf("no %s in %s", field, body)
	}
	return s
}

// TestOIDCCallbackRefusals: state, browser binding, single use, provider
// mix-up and forged ID tokens, end to end; every refusal is the same
// generic page and creates no session.
func TestOIDCCallbackRefusals(t *testing.T) {
	a := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{oidcCallback("corp")}})
	other := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{oidcCallback("other")}})
	stub := oidctest.StartStubOP(t)
	s := startWithProviders(t, nil,
		providerYAML("corp", a.Issuer, a.ClientID, a.ClientSecret),
		providerYAML("other", other.Issuer, other.ClientID, other.ClientSecret),
		providerYAML("stub", stub.URL, stub.ClientID, stub.ClientSecret))

	t.Run("bad state", func(t *testing.T) {
		b := browserFor(s)
		toCallback(t, b, "corp", "login", "") // a live flow and binding cookie in this browser
		wantRefused(t, b, mustGet(t, b, pub+"/v1/oidc/corp/callback?state=forged-state&code=anything"))
	})
	t.Run("missing parameters", func(t *testing.T) {
		b := browserFor(s)
		wantRefused(t, b, mustGet(t, b, pub+"/v1/oidc/corp/callback"))
		wantRefused(t, b, mustGet(t, b, pub+"/v1/oidc/corp/callback?state=x"))
	})
	t.Run("provider error", func(t *testing.T) {
		b := browserFor(s)
		cb := toCallback(t, b, "corp", "login", "")
		wantRefused(t, b, mustGet(t, b, pub+"/v1/oidc/corp/callback?error=access_denied&state="+url.QueryEscape(cb.Query().Get("state"))))
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := browserFor(s)
		cb := toCallback(t, b, "corp", "login", "")
		if p := mustGet(t, b, cb.String()); p.Status != http.StatusSeeOther {
			t.Fatalf("first use: %d %.300s", p.Status, p.Body)
		}
		b.Jar.SetCookies(&url.URL{Scheme: "http", Host: "gatehouse.test", Path: "/"}, []*http.Cookie{{Name: "gatehouse_session", Value: "", MaxAge: -1}})
		wantRefused(t, b, mustGet(t, b, cb.String()))
	})
	t.Run("no binding cookie (another browser)", func(t *testing.T) {
		victim := browserFor(s)
		cb := toCallback(t, victim, "corp", "login", "")
		attacker := browserFor(s)
		wantRefused(t, attacker, mustGet(t, attacker, cb.String()))
		// The flow was used up by the refused attempt: fail closed.
		wantRefused(t, victim, mustGet(t, victim, cb.String()))
	})
	t.Run("wrong binding cookie (another browser's flow)", func(t *testing.T) {
		victim := browserFor(s)
		attacker := browserFor(s)
		cbVictim := toCallback(t, victim, "corp", "login", "")
		toCallback(t, attacker, "corp", "login", "") // the attacker has a binding cookie of their own
		wantRefused(t, attacker, mustGet(t, attacker, cbVictim.String()))
	})
	t.Run("binding cookie of the right name but forged", func(t *testing.T) {
		b := browserFor(s)
		cb := toCallback(t, b, "corp", "login", "")
		b.Jar.SetCookies(&url.URL{Scheme: "http", Host: "gatehouse.test", Path: "/v1/oidc/"}, []*http.Cookie{{Name: "gatehouse_oidc", Value: "forged", Path: "/v1/oidc/"}})
		wantRefused(t, b, mustGet(t, b, cb.String()))
	})
	t.Run("mix-up: A's code and state at B's callback", func(t *testing.T) {
		b := browserFor(s)
		cb := toCallback(t, b, "corp", "login", "")
		mixed := *cb
		mixed.Path = "/v1/oidc/other/callback"
		wantRefused(t, b, mustGet(t, b, mixed.String()))
		if !strings.Contains(s.Log(), "provider_mismatch") {
			t.Errorf("the log does not name the mix-up")
		}
		// A flow is single-use even when refused.
		wantRefused(t, b, mustGet(t, b, cb.String()))
	})
	forged := []struct {
		name  string
		forge oidctest.Forge
	}{
		{"ID token from another issuer", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["iss"] = a.Issuer }}},
		{"ID token for another audience", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["aud"] = "another-client" }}},
		{"ID token with another nonce", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["nonce"] = "replayed" }}},
		{"expired ID token", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["exp"] = 1_000_000_000 }}},
		{"unsigned ID token", oidctest.Forge{Signing: oidctest.SignNone}},
		{"ID token signed by another key", oidctest.Forge{Signing: oidctest.SignOtherKey}},
	}
	for _, tc := range forged {
		t.Run(tc.name, func(t *testing.T) {
			stub.SetForge(tc.forge)
			defer stub.SetForge(oidctest.Forge{})
			b := browserFor(s)
			wantRefused(t, b, mustGet(t, b, toCallback(t, b, "stub", "login", "").String()))
		})
	}
	t.Run("the stub's honest token works", func(t *testing.T) {
		b := browserFor(s)
		if p := mustGet(t, b, toCallback(t, b, "stub", "login", "").String()); p.Status != http.StatusSeeOther || sessionCookie(b) == "" {
			t.Fatalf("honest stub login: %d %.300s", p.Status, p.Body)
		}
	})
}

// TestOIDCProviderDownAtStart: a provider that is not reachable answers 503
// with Retry-After; the others work.
func TestOIDCProviderDownAtStart(t *testing.T) {
	op := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{oidcCallback("corp")}})
	s := startWithProviders(t, nil,
		providerYAML("down", "http://"+oidctest.FreeAddr(t), "x", "y"),
		providerYAML("corp", op.Issuer, op.ClientID, op.ClientSecret))
	b := browserFor(s)
	if p := mustGet(t, b, pub+"/v1/oidc/down/login"); p.Status != http.StatusServiceUnavailable || p.Header.Get("Retry-After") == "" {
		t.Fatalf("provider down: %d Retry-After %q", p.Status, p.Header.Get("Retry-After"))
	}
	if p := mustGet(t, b, toCallback(t, b, "corp", "login", "").String()); p.Status != http.StatusSeeOther {
		t.Fatalf("the provider that is up: %d", p.Status)
	}
}

// browserTarget is where a browser goes for a Location header received
// at base: it strips tabs and newlines, treats backslashes as slashes
// (WHATWG URL parsing for http(s)), and trims C0 controls and spaces.
func browserTarget(base *url.URL, loc string) (*url.URL, error) {
	loc = strings.Trim(loc, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(loc)
	l, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	return base.ResolveReference(l), nil
}

// TestOIDCReturnTo: hostile return_to values never send the browser off
// the public origin after the login; relative paths and allowed origins
// are kept.
func TestOIDCReturnTo(t *testing.T) {
	op := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{oidcCallback("corp")}})
	s := startWithProviders(t, map[string]string{"GATEHOUSE_CORS_ORIGINS": "https://app.example"},
		providerYAML("corp", op.Issuer, op.ClientID, op.ClientSecret))
	for _, tc := range []struct {
		returnTo string
		want     string // the exact Location
	}{
		{"//evil.example", "/account"},
		{"///evil.example", "/account"},
		{`/\evil.example`, "/account"},
		{`\\evil.example`, "/account"},
		{"https://evil.example", "/account"},
		{"https://evil.example/account", "/account"},
		{"http:evil.example", "/account"},
		{"https:/evil.example", "/account"},
		{"javascript:alert(1)", "/account"},
		{"JaVaScRiPt:alert(1)", "/account"},
		{"data:text/html,<script>alert(1)</script>", "/account"},
		{"\t//evil.example", "/account"},
		{"/\t/evil.example", "/account"},
		{" //evil.example", "/account"},
		{"/\n/evil.example", "/account"},
		{"https://gatehouse.test@evil.example", "/account"},
		{"http://gatehouse.test@evil.example/", "/account"},
		{"https://app.example@evil.example", "/account"},
		{"HTTPS://EVIL.EXAMPLE", "/account"},
		{"https://app.example.evil.example", "/account"},
		{"https://evil.example#https://app.example", "/account"},
		{"https://app.example:444/", "/account"},
		{"http://app.example/", "/account"}, // the allowed origin is https only
		{"https://gatehouse.test/", "/account"},
		{"／／evil.example", "/account"},                 // fullwidth solidus
		{"https://gatehouse.tеst/", "/account"},        // Cyrillic е
		{"https://app.exаmple/", "/account"},           // Cyrillic а
		{"\u3000//evil.example", "/account"},           // ideographic space
		{"/\u00a0/evil.example", "/account"},           // no-break space
		{"\u202e//evil.example", "/account"},           // right-to-left override
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"}, // a path on our origin
		{"/%5C%5Cevil.example", "/%5C%5Cevil.example"}, // a path on our origin
		{"/./../..//evil.example", "/evil.example"},    // cleaned to a path
		{"/account/settings?tab=x#top", "/account/settings?tab=x#top"},
		{"", "/account"},
		{"http://gatehouse.test/after", "http://gatehouse.test/after"},
		{"https://app.example/after?x=1", "https://app.example/after?x=1"},
		{"HTTPS://APP.EXAMPLE/after", "https://APP.EXAMPLE/after"},
	} {
		t.Run(fmt.Sprintf("%q", tc.returnTo), func(t *testing.T) {
			b := browserFor(s)
			cb := toCallback(t, b, "corp", "login", tc.returnTo)
			p := mustGet(t, b, cb.String())
			if p.Status != http.StatusSeeOther {
				t.Fatalf("callback: %d %.300s", p.Status, p.Body)
			}
			loc := p.Header.Get("Location")
			target, err := browserTarget(cb, loc)
			if err != nil {
				t.Fatalf("Location %q: %v", loc, err)
			}
			origin := target.Scheme + "://" + strings.ToLower(target.Host)
			if (origin != pub && origin != "https://app.example") || target.User != nil {
				t.Fatalf("return_to %q sent the browser to %s (Location %q)", tc.returnTo, target, loc)
			}
			if loc != tc.want {
				t.Fatalf("Location %q, want %q", loc, tc.want)
			}
		})
	}
}

// TestOIDCLinkFlowDiesWithTheSession: an attacker who pre-registered the
// victim's address (through a provider that does not verify emails) starts
// a link flow from that account and holds the callback. The victim then
// signs in with a provider that verifies the address, which reclaims the
// account and ends the attacker's sessions. Delivering the held callback
// must not link the attacker's identity to the now verified account.
func TestOIDCLinkFlowDiesWithTheSession(t *testing.T) {
	mallory := oidctest.User{ID: "mallory-sub", Username: "mallory", Password: "mallory-pw", Email: "victim@example.com", EmailVerified: false}
	victim := oidctest.User{ID: "victim-sub", Username: "victim", Password: "victim-pw", Email: "victim@example.com", EmailVerified: true}
	sketchy := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{oidcCallback("sketchy")}, Users: []oidctest.User{mallory}})
	corp := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{oidcCallback("corp")}, Users: []oidctest.User{victim}})
	s := startWithProviders(t, nil,
		providerYAML("sketchy", sketchy.Issuer, sketchy.ClientID, sketchy.ClientSecret),
		providerYAML("corp", corp.Issuer, corp.ClientID, corp.ClientSecret))

	attacker := browserFor(s)
	attacker.Username, attacker.Password = mallory.Username, mallory.Password
	if p := mustGet(t, attacker, toCallback(t, attacker, "sketchy", "login", "").String()); p.Status != http.StatusSeeOther {
		t.Fatalf("attacker's sign-up through sketchy: %d %.300s", p.Status, p.Body)
	}
	// The attacker starts a link flow (for the same sketchy identity,
	// which the reclaim will remove) and holds its callback.
	held := toCallback(t, attacker, "sketchy", "link", "")

	v := browserFor(s)
	v.Username, v.Password = victim.Username, victim.Password
	if p := mustGet(t, v, toCallback(t, v, "corp", "login", "").String()); p.Status != http.StatusSeeOther {
		t.Fatalf("victim's sign-in through corp: %d %.300s", p.Status, p.Body)
	}
	p := mustGet(t, attacker, held.String())
	if p.Status == http.StatusSeeOther {
		t.Errorf("the held link callback succeeded after the account was reclaimed")
	}
	if p.Status != http.StatusBadRequest || !strings.Contains(s.Log(), "link_session_gone") {
		t.Errorf("held link callback: %d, want 400 (link_session_gone)", p.Status)
	}
	ids := mustGet(t, v, pub+"/v1/me/identities")
	if strings.Contains(ids.Body, `"sketchy"`) || !strings.Contains(ids.Body, `"corp"`) {
		t.Fatalf("the victim's identities: %s", ids.Body)
	}
	// And the attacker cannot sign in to the account through sketchy.
	a2 := browserFor(s)
	a2.Username, a2.Password = mallory.Username, mallory.Password
	p = mustGet(t, a2, toCallback(t, a2, "sketchy", "login", "").String())
	if p.Status != http.StatusBadRequest || sessionCookie(a2) != "" {
		t.Fatalf("attacker's sign-in after the reclaim: %d", p.Status)
	}
}

// TestOIDCLinkFlow links a second provider from a signed-in account, then
// unlinks one of the two (204) but not the last (409); a link callback
// delivered with another account's session is refused.
func TestOIDCLinkFlow(t *testing.T) {
	gh := oidctest.StartGitHubStandIn(t)
	gh.Set(oidctest.GitHubUser{ID: 99, Login: "alice-gh"}, oidctest.GitHubEmail{Email: "alice@users.example", Primary: true, Verified: false})
	op := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{oidcCallback("corp")},
		Users: []oidctest.User{oidctest.DefaultUser, {ID: "bob-sub", Username: "bob", Password: "bob-pw", Email: "bob@example.com", EmailVerified: true}}})
	s := startWithProviders(t, nil, providerYAML("corp", op.Issuer, op.ClientID, op.ClientSecret),
		fmt.Sprintf("  - {id: gh, type: github, issuer: %q, client_id: %q, client_secret: %q}\n", gh.URL, gh.ClientID, gh.ClientSecret))

	b := browserFor(s)
	if p := mustGet(t, b, toCallback(t, b, "corp", "login", "").String()); p.Status != http.StatusSeeOther {
		t.Fatalf("login: %d", p.Status)
	}
	cb := toCallback(t, b, "gh", "link", "/account/linked")
	p := mustGet(t, b, cb.String())
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/account/linked" {
		t.Fatalf("link callback: %d %q %.300s", p.Status, p.Header.Get("Location"), p.Body)
	}
	var list struct {
		Identities []struct{ ID, Provider, Email string } `json:"identities"`
	}
	ids := mustGet(t, b, pub+"/v1/me/identities")
	if err := json.Unmarshal([]byte(ids.Body), &list); err != nil || len(list.Identities) != 2 {
		t.Fatalf("identities after linking: %s", ids.Body)
	}
	if del := browserDo(t, b, http.MethodDelete, pub+"/v1/me/identities/"+list.Identities[1].ID); del.Status != http.StatusNoContent {
		t.Fatalf("unlinking one of two: %d %s", del.Status, del.Body)
	}
	if del := browserDo(t, b, http.MethodDelete, pub+"/v1/me/identities/"+list.Identities[0].ID); del.Status != http.StatusConflict {
		t.Fatalf("unlinking the last: %d %s", del.Status, del.Body)
	}
	if m := metricsText(t, s); !strings.Contains(m, `gatehouse_oidc_logins_total{provider="gh",result="succeeded"} 1`) {
		t.Errorf("/metrics lacks the github link")
	}

	// Alice starts a link flow; her binding cookie and Bob's session
	// arrive at the callback: refused, nothing linked to either.
	held := toCallback(t, b, "gh", "link", "")
	bob := browserFor(s)
	bob.Username, bob.Password = "bob", "bob-pw"
	if p := mustGet(t, bob, toCallback(t, bob, "corp", "login", "").String()); p.Status != http.StatusSeeOther {
		t.Fatalf("bob's login: %d", p.Status)
	}
	u, _ := url.Parse(pub + "/")
	b.Jar.SetCookies(u, []*http.Cookie{{Name: "gatehouse_session", Value: sessionCookie(bob), Path: "/"}})
	if p := mustGet(t, b, held.String()); p.Status != http.StatusBadRequest {
		t.Fatalf("link callback with another account's session: %d", p.Status)
	}
	if ids := mustGet(t, bob, pub+"/v1/me/identities"); strings.Contains(ids.Body, `"gh"`) {
		t.Fatalf("linked to bob: %s", ids.Body)
	}
}
