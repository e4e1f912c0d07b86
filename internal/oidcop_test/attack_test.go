package oidcop_test

// Attack tests of the OpenID provider (SPEC §14) over HTTP against a real
// server: redirect-URI matching, authorization codes, PKCE, consent, RP-
// initiated logout, client authentication, prompt=none and malformed
// requests. Every helper of this file is prefixed atk.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/internal/testserver"
)

// atkClient registers a client: op.client's settings with spec's on top.
// It returns the client id and the secret ("" for a public client).
func (o *op) atkClient(t *testing.T, spec map[string]any) (string, string) {
	t.Helper()
	body := map[string]any{
		"name": "Attack RP", "type": "confidential", "redirect_uris": []string{redirect},
		"post_logout_redirect_uris": []string{loggedOut}, "grant_types": []string{"authorization_code", "refresh_token"},
		"scopes": []string{"openid", "profile", "email", "offline_access"}, "token_endpoint_auth_method": "client_secret_basic",
	}
	if spec["type"] == "public" {
		body["token_endpoint_auth_method"] = "none"
	}
	for k, v := range spec {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	r := testserver.Send(t, "POST", o.Direct+"/v1/admin/clients", body, "Authorization", "Bearer "+o.admin)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/admin/clients %v: %s", body, r)
	}
	j := r.JSON(t)
	id, _ := j["client_id"].(string)
	secret, _ := j["client_secret"].(string)
	if id == "" {
		t.Fatalf("POST /v1/admin/clients: no client_id in %s", r)
	}
	return id, secret
}

// atkAnon is a user agent with no session that does not follow redirects.
func atkAnon() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// atkSignIn is a second browser signed in as an existing account.
func (o *op) atkSignIn(t *testing.T, email string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", o.Direct+"/v1/sessions", strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := b.Do(req)
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("session login: %v %v", res, err)
	}
	res.Body.Close()
	return b
}

// atkQuery is an authorization request with PKCE; it returns the query
// and the verifier.
func atkQuery(clientID, redirectURI, scope string) (url.Values, string) {
	v := oauth2.GenerateVerifier()
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {scope}, "state": {"st-" + v[:8]},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"}}
	if redirectURI != "" {
		q.Set("redirect_uri", redirectURI)
	}
	return q, v
}

func (o *op) authorizeURL(q url.Values) string { return o.Direct + "/oauth2/authorize?" + q.Encode() }

// atkCode runs the authorization request q in browser b, allows the
// consent page when it shows, and returns the code from the redirect.
func (o *op) atkCode(t *testing.T, b *http.Client, q url.Values) string {
	t.Helper()
	res, page := get(t, b, o.authorizeURL(q))
	if res.StatusCode == http.StatusOK {
		m := consentID.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("GET /oauth2/authorize: 200 without a consent form: %.400s", page)
		}
		res = postForm(t, b, o.Direct+"/oauth2/consent", url.Values{"consent_id": {m[1]}, "decision": {"allow"}})
	}
	loc, err := res.Location()
	if err != nil {
		t.Fatalf("authorization: %d, no redirect (%v): %.300s", res.StatusCode, err, page)
	}
	want := q.Get("redirect_uri")
	if want == "" {
		want = redirect
	}
	if !strings.HasPrefix(loc.String(), want+"?") || loc.Query().Get("code") == "" {
		t.Fatalf("authorization: redirect to %s, want a code at %s", loc, want)
	}
	if loc.Query().Get("state") != q.Get("state") || loc.Query().Get("iss") != o.URL {
		t.Fatalf("authorization redirect %s: want state %q and iss %q", loc, q.Get("state"), o.URL)
	}
	return loc.Query().Get("code")
}

// atkToken posts form to the token endpoint, with client authentication:
// Basic when secret is set, else client_id in the body.
func (o *op) atkToken(t *testing.T, id, secret string, form url.Values) *testserver.Response {
	t.Helper()
	if secret == "" {
		form.Set("client_id", id)
		return testserver.Send(t, "POST", o.Direct+"/oauth2/token", form)
	}
	return testserver.Send(t, "POST", o.Direct+"/oauth2/token", form, "Authorization", basic(id, secret))
}

func (o *op) atkExchange(t *testing.T, id, secret, code, redirectURI, verifier string) *testserver.Response {
	t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return o.atkToken(t, id, secret, f)
}

func (o *op) atkRefresh(t *testing.T, id, secret, rt string) *testserver.Response {
	t.Helper()
	return o.atkToken(t, id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// atkTokens exchanges a code and wants 200; it returns the response.
func (o *op) atkTokens(t *testing.T, id, secret, code, redirectURI, verifier string) map[string]any {
	t.Helper()
	r := o.atkExchange(t, id, secret, code, redirectURI, verifier)
	if r.Status != http.StatusOK {
		t.Fatalf("code exchange: %s", r)
	}
	return r.JSON(t)
}

// atkOAuthError wants an RFC 6749 §5.2 error.
func atkOAuthError(t *testing.T, what string, r *testserver.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %s, want %d %s", what, r, status, code)
	}
	var j map[string]any
	if err := json.Unmarshal(r.Body, &j); err != nil || j["error"] != code {
		t.Fatalf("%s: %s, want error %q", what, r, code)
	}
	if _, ok := j["access_token"]; ok {
		t.Fatalf("%s: an error with an access token: %s", what, r)
	}
}

// atkPage wants the HTML error page: 400, no Location, no redirect.
func atkPage(t *testing.T, what string, res *http.Response, body string) {
	t.Helper()
	if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s: %d %s, want the 400 HTML error page: %.300s", what, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if loc := res.Header.Get("Location"); loc != "" {
		t.Fatalf("%s: Location %q on the error page", what, loc)
	}
	if strings.Contains(strings.ToLower(body), "http-equiv=\"refresh\"") {
		t.Fatalf("%s: the error page redirects with a meta refresh", what)
	}
}

// atkErrorRedirect wants a redirect to redirectURI with error code, the
// state and the issuer.
func (o *op) atkErrorRedirect(t *testing.T, what string, res *http.Response, redirectURI, code, state string) {
	t.Helper()
	loc, err := res.Location()
	if err != nil || (res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther) {
		t.Fatalf("%s: %d %v, want an error redirect to %s", what, res.StatusCode, err, redirectURI)
	}
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), redirectURI+"?") || q.Get("error") != code || q.Get("code") != "" {
		t.Fatalf("%s: redirect %s, want error %s at %s", what, loc, code, redirectURI)
	}
	if q.Get("state") != state || q.Get("iss") != o.URL {
		t.Fatalf("%s: redirect %s, want state %q and iss %q", what, loc, state, o.URL)
	}
}

// atkClaims decodes a JWT's payload (no verification).
func atkClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.80s", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

// atkDo sends a same-origin request from browser b.
func atkDo(t *testing.T, b *http.Client, method, target string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, target, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := b.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// atkAlive wants b's session to work (true) or to be gone (false).
func (o *op) atkAlive(t *testing.T, what string, b *http.Client, alive bool) {
	t.Helper()
	res, body := get(t, b, o.Direct+"/v1/me")
	if alive && res.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET /v1/me %d %.200s, want the session alive", what, res.StatusCode, body)
	}
	if !alive && res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%s: GET /v1/me %d, want 401 (signed out)", what, res.StatusCode)
	}
}

// ---------------------------------------------------------------------------
// 1. Redirect URIs.

// TestAttackRedirectURIs: a redirect_uri that is not registered, exactly,
// gets the 400 page and never a redirect — not even an error redirect with
// prompt=none; loopback http URIs match on any port, and only on the
// loopback host.
func TestAttackRedirectURIs(t *testing.T) {
	o := startOP(t)
	id, _ := o.client(t)
	multi, _ := o.atkClient(t, map[string]any{"redirect_uris": []string{redirect, "https://rp.example/cb2"}})
	loop, _ := o.atkClient(t, map[string]any{"type": "public", "redirect_uris": []string{"http://127.0.0.1:7777/cb"}})
	b := o.browser(t, "rd@op.example.test")
	anon := atkAnon()

	// The control: a registered URI with prompt=none gets an error
	// redirect, so that a page below is the URI check's doing.
	q, _ := atkQuery(id, redirect, "openid")
	q.Set("prompt", "none")
	res, _ := get(t, anon, o.authorizeURL(q))
	o.atkErrorRedirect(t, "registered redirect_uri, prompt=none", res, redirect, "login_required", q.Get("state"))

	bad := []string{
		"https://rp.example/other",
		"https://rp.example/cb?x=1",
		"https://rp.example/cb?",
		"https://rp.example:8443/cb",
		"https://rp.example:443/cb",
		"https://rp.example/cb/",
		"https://RP.EXAMPLE/cb",
		"https://rp.example/CB",
		"HTTPS://rp.example/cb",
		"http://rp.example/cb",
		"https://rp.example/cb#frag",
		"https://rp.example/cb#",
		"https://rp.example/cb/../evil",
		"https://rp.example/cb/./",
		"https://rp.example/cb%2F..%2Fevil",
		"https://rp.example/cbevil",
		"https://rp.example/cb/evil",
		"https://rp.example/cb.evil.example",
		"https://rp.example/cb@evil.example",
		"https://rp.example.evil.example/cb",
		"https://evil@rp.example/cb",
		"https://rp.example/cb%00",
		" https://rp.example/cb",
		"https://rp.example/cb ",
		"//rp.example/cb",
		"/cb",
		"https://rp.example/c",
	}
	for _, uri := range bad {
		for _, who := range []struct {
			name string
			c    *http.Client
		}{{"anonymous", anon}, {"signed in", b}} {
			q, _ := atkQuery(id, uri, "openid")
			res, body := get(t, who.c, o.authorizeURL(q))
			atkPage(t, fmt.Sprintf("%s, redirect_uri %q", who.name, uri), res, body)
			q.Set("prompt", "none")
			res, body = get(t, who.c, o.authorizeURL(q))
			atkPage(t, fmt.Sprintf("%s, prompt=none, redirect_uri %q", who.name, uri), res, body)
		}
		// The form-encoded POST too.
		q, _ := atkQuery(id, uri, "openid")
		res := postForm(t, b, o.Direct+"/oauth2/authorize", q)
		atkPage(t, fmt.Sprintf("POST /oauth2/authorize, redirect_uri %q", uri), res, "")
	}

	// An unknown or missing client_id.
	for _, cid := range []string{"no-such-client", "", id + "x", strings.ToUpper(id)} {
		if cid == id {
			continue
		}
		q, _ := atkQuery(cid, redirect, "openid")
		if cid == "" {
			q.Del("client_id")
		}
		q.Set("prompt", "none")
		res, body := get(t, b, o.authorizeURL(q))
		atkPage(t, fmt.Sprintf("client_id %q", cid), res, body)
	}

	// Several redirect URIs registered and none sent: the page.
	q, _ = atkQuery(multi, "", "openid")
	q.Set("prompt", "none")
	res, body := get(t, b, o.authorizeURL(q))
	atkPage(t, "no redirect_uri, two registered", res, body)
	// One of them sent: the flow goes on (consent_required for prompt=none).
	q.Set("redirect_uri", "https://rp.example/cb2")
	res, _ = get(t, b, o.authorizeURL(q))
	o.atkErrorRedirect(t, "the second registered redirect_uri", res, "https://rp.example/cb2", "consent_required", q.Get("state"))

	// Loopback: any port of the registered host and path.
	for _, uri := range []string{"http://127.0.0.1:49152/cb", "http://127.0.0.1:7777/cb", "http://127.0.0.1/cb"} {
		q, _ := atkQuery(loop, uri, "openid")
		q.Set("prompt", "none")
		res, _ := get(t, anon, o.authorizeURL(q))
		o.atkErrorRedirect(t, "loopback "+uri, res, uri, "login_required", q.Get("state"))
	}
	// … and a code issued there is exchanged with that same URI.
	q, v := atkQuery(loop, "http://127.0.0.1:49152/cb", "openid")
	code := o.atkCode(t, b, q)
	atkOAuthError(t, "loopback code with the registered port's URI", o.atkExchange(t, loop, "", code, "http://127.0.0.1:7777/cb", v), http.StatusBadRequest, "invalid_grant")
	o.atkTokens(t, loop, "", code, "http://127.0.0.1:49152/cb", v)

	for _, uri := range []string{
		"http://127.0.0.1.evil.example/cb",
		"http://127.0.0.1.evil.example:7777/cb",
		"http://127.0.0.1:7777@evil.example/cb",
		"http://evil@127.0.0.1:7777/cb",
		"http://localhost:7777/cb",
		"http://[::1]:7777/cb",
		"https://127.0.0.1:7777/cb",
		"http://127.0.0.1:7777/cb/../x",
		"http://127.0.0.1:7777/cbx",
		"http://127.0.0.1:7777/cb?x=1",
		"http://127.0.0.1:7777/cb#f",
		"http://127.0.0.2:7777/cb",
		"http://2130706433:7777/cb",
	} {
		q, _ := atkQuery(loop, uri, "openid")
		q.Set("prompt", "none")
		res, body := get(t, anon, o.authorizeURL(q))
		atkPage(t, "loopback client, redirect_uri "+uri, res, body)
	}
}

// ---------------------------------------------------------------------------
// 2. Authorization codes.

// TestAttackCodeReplay: a code's second presentation is invalid_grant and
// revokes the refresh token of its first exchange.
func TestAttackCodeReplay(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	b := o.browser(t, "replay@op.example.test")
	q, v := atkQuery(id, redirect, "openid offline_access")
	code := o.atkCode(t, b, q)
	first := o.atkTokens(t, id, secret, code, redirect, v)
	rt, _ := first["refresh_token"].(string)
	if rt == "" || first["id_token"] == nil {
		t.Fatalf("first exchange: %v, want a refresh token and an ID token", first)
	}
	atkOAuthError(t, "second exchange", o.atkExchange(t, id, secret, code, redirect, v), http.StatusBadRequest, "invalid_grant")
	atkOAuthError(t, "refresh after the replay", o.atkRefresh(t, id, secret, rt), http.StatusBadRequest, "invalid_grant")
	// A third presentation is still refused.
	atkOAuthError(t, "third exchange", o.atkExchange(t, id, secret, code, redirect, v), http.StatusBadRequest, "invalid_grant")

	// The control: a fresh code's refresh token does refresh.
	q, v = atkQuery(id, redirect, "openid offline_access")
	fresh := o.atkTokens(t, id, secret, o.atkCode(t, b, q), redirect, v)
	if r := o.atkRefresh(t, id, secret, fresh["refresh_token"].(string)); r.Status != http.StatusOK {
		t.Fatalf("refresh of an unreplayed code's token: %s", r)
	}
}

// TestAttackCodeWrongClient: another client, with its own valid
// credentials, cannot redeem a code: the refusal does not burn the code
// (the rightful client can still redeem it), and a used code presented by
// another client is refused without revoking the rightful client's
// refresh family (a client cannot revoke another's tokens that way).
func TestAttackCodeWrongClient(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	other, otherSecret := o.client(t)
	pub, _ := o.atkClient(t, map[string]any{"type": "public"})
	b := o.browser(t, "wrongclient@op.example.test")
	q, v := atkQuery(id, redirect, "openid offline_access")
	code := o.atkCode(t, b, q)

	atkOAuthError(t, "the code at another confidential client", o.atkExchange(t, other, otherSecret, code, redirect, v), http.StatusBadRequest, "invalid_grant")
	atkOAuthError(t, "the code at a public client", o.atkExchange(t, pub, "", code, redirect, v), http.StatusBadRequest, "invalid_grant")
	// client_secret_post with the other client's credentials.
	r := testserver.Send(t, "POST", o.Direct+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {v}, "client_id": {other}, "client_secret": {otherSecret}})
	atkOAuthError(t, "the code at another client (client_secret_post)", r, http.StatusBadRequest, "invalid_grant")

	tok := o.atkTokens(t, id, secret, code, redirect, v)
	if c := atkClaims(t, tok["id_token"].(string)); c["aud"] != id {
		t.Fatalf("ID token aud %v, want %s", c["aud"], id)
	}
	atkOAuthError(t, "the used code at another client", o.atkExchange(t, other, otherSecret, code, redirect, v), http.StatusBadRequest, "invalid_grant")
	if r := o.atkRefresh(t, id, secret, tok["refresh_token"].(string)); r.Status != http.StatusOK {
		t.Fatalf("refresh after another client presented the used code: %s, want 200 (only the code's own client replays it)", r)
	}
}

// TestAttackBasicAndBodyClientDiffer: a body client_id that differs from
// the Basic credentials' is refused, not ignored.
func TestAttackBasicAndBodyClientDiffer(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	other, _ := o.client(t)
	r := testserver.Send(t, "POST", o.Direct+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {other}},
		"Authorization", basic(id, secret))
	if r.Status != http.StatusBadRequest || r.JSON(t)["error"] != "invalid_request" {
		t.Fatalf("Basic for one client, client_id of another in the body: %s, want 400 invalid_request", r)
	}
}

func atkStart(t *testing.T, extra map[string]string) *op {
	t.Helper()
	yaml := "rate_limits: {login_per_account_ip: 100000, login_per_ip: 100000, window: 1m}\n"
	s := testserver.Start(t, testserver.Options{Env: testserver.Env(t, yaml, extra), Before: func(s *testserver.Server) {
		s.Command(t, password+"\n", "user", "create", "--email", adminEmail, "--role", "admin", "--password-stdin")
	}})
	r := testserver.Send(t, "POST", s.Direct+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {adminEmail}, "password": {password}})
	if r.Status != http.StatusOK {
		t.Fatalf("admin password grant: %s", r)
	}
	return &op{Server: s, admin: r.JSON(t)["access_token"].(string)}
}

// TestAttackCodeExpired: GATEHOUSE_AUTH_CODE_TTL is honoured; an expired
// code is invalid_grant.
func TestAttackCodeExpired(t *testing.T) {
	o := atkStart(t, map[string]string{"GATEHOUSE_AUTH_CODE_TTL": "1s"})
	id, secret := o.client(t)
	b := o.browser(t, "expired@op.example.test")
	q, v := atkQuery(id, redirect, "openid")
	code := o.atkCode(t, b, q)
	time.Sleep(1500 * time.Millisecond)
	atkOAuthError(t, "expired code", o.atkExchange(t, id, secret, code, redirect, v), http.StatusBadRequest, "invalid_grant")
}

// TestAttackHugeMaxAge: a max_age too large for a duration does not
// overflow into "every sign-in is too old".
func TestAttackHugeMaxAge(t *testing.T) {
	o := startOP(t)
	id, _ := o.client(t)
	b := o.browser(t, "maxage@op.example.test")
	q, _ := atkQuery(id, redirect, "openid")
	o.atkCode(t, b, q)
	for _, ma := range []string{"3600", "9223372036", "9223372037", "10000000000", "9223372036854775807"} {
		q.Set("prompt", "none")
		q.Set("max_age", ma)
		res, _ := get(t, b, o.authorizeURL(q))
		if loc, err := res.Location(); err != nil || loc.Query().Get("code") == "" {
			t.Errorf("prompt=none max_age=%s, fresh session: %d %v, want a code", ma, res.StatusCode, loc)
		}
	}
}

// TestAttackCodeRedirectMismatch: redirect_uri at the token endpoint must
// equal the authorized one.
func TestAttackCodeRedirectMismatch(t *testing.T) {
	o := startOP(t)
	id, secret := o.atkClient(t, map[string]any{"redirect_uris": []string{redirect, "https://rp.example/cb2"}})
	b := o.browser(t, "mismatch@op.example.test")
	q, v := atkQuery(id, redirect, "openid")
	code := o.atkCode(t, b, q)
	for _, uri := range []string{"https://rp.example/cb2", redirect + "/", redirect + "?x=1", "https://evil.example/cb"} {
		atkOAuthError(t, "redirect_uri "+uri, o.atkExchange(t, id, secret, code, uri, v), http.StatusBadRequest, "invalid_grant")
	}
	atkOAuthError(t, "no redirect_uri", o.atkExchange(t, id, secret, code, "", v), http.StatusBadRequest, "invalid_request")
	o.atkTokens(t, id, secret, code, redirect, v)
}

// TestAttackCodeConcurrent: of eight simultaneous exchanges of one code,
// exactly one gets tokens.
func TestAttackCodeConcurrent(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	b := o.browser(t, "race@op.example.test")
	q, v := atkQuery(id, redirect, "openid offline_access")
	code := o.atkCode(t, b, q)
	body := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {v}}.Encode()
	const n = 8
	statuses := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", o.Direct+"/oauth2/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", basic(id, secret))
			<-start
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Fatalf("exchange %d: %v", i, errs[i])
		case statuses[i] == http.StatusOK:
			ok++
		case statuses[i] != http.StatusBadRequest:
			t.Fatalf("exchange %d: %d, want 200 or 400", i, statuses[i])
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent exchanges of one code succeeded (statuses %v), want exactly 1", ok, n, statuses)
	}
}

// ---------------------------------------------------------------------------
// 3. PKCE.

func TestAttackPKCE(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	pub, _ := o.atkClient(t, map[string]any{"type": "public"})
	legacy, legacySecret := o.atkClient(t, map[string]any{"require_pkce": false})
	b := o.browser(t, "pkce@op.example.test")

	// A challenge sent, no verifier: invalid_grant; a wrong one too; the
	// right one still works (a failed attempt does not burn the code).
	q, v := atkQuery(id, redirect, "openid")
	code := o.atkCode(t, b, q)
	atkOAuthError(t, "no code_verifier", o.atkExchange(t, id, secret, code, redirect, ""), http.StatusBadRequest, "invalid_grant")
	for _, wrong := range []string{oauth2.GenerateVerifier(), v + "x", v[:len(v)-1], oauth2.S256ChallengeFromVerifier(v), strings.ToUpper(v)} {
		atkOAuthError(t, "wrong code_verifier "+wrong, o.atkExchange(t, id, secret, code, redirect, wrong), http.StatusBadRequest, "invalid_grant")
	}
	o.atkTokens(t, id, secret, code, redirect, v)

	// The public client, the same.
	q, v = atkQuery(pub, redirect, "openid")
	code = o.atkCode(t, b, q)
	atkOAuthError(t, "public client, no code_verifier", o.atkExchange(t, pub, "", code, redirect, ""), http.StatusBadRequest, "invalid_grant")
	atkOAuthError(t, "public client, wrong code_verifier", o.atkExchange(t, pub, "", code, redirect, oauth2.GenerateVerifier()), http.StatusBadRequest, "invalid_grant")
	o.atkTokens(t, pub, "", code, redirect, v)

	// code_challenge_method=plain (and others): invalid_request redirect.
	for _, method := range []string{"plain", "s256", "S512", ""} {
		q, v := atkQuery(id, redirect, "openid")
		q.Set("code_challenge_method", method)
		if method == "plain" {
			q.Set("code_challenge", v)
		}
		res, _ := get(t, b, o.authorizeURL(q))
		o.atkErrorRedirect(t, "code_challenge_method "+method, res, redirect, "invalid_request", q.Get("state"))
	}
	// No challenge from a public client, or from a confidential one that
	// requires PKCE: invalid_request redirect.
	for _, cid := range []string{pub, id} {
		q, _ := atkQuery(cid, redirect, "openid")
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		res, _ := get(t, b, o.authorizeURL(q))
		o.atkErrorRedirect(t, "no code_challenge from "+cid, res, redirect, "invalid_request", q.Get("state"))
	}
	// A challenge too short or too long.
	for _, ch := range []string{"abc", strings.Repeat("A", 129)} {
		q, _ := atkQuery(id, redirect, "openid")
		q.Set("code_challenge", ch)
		res, _ := get(t, b, o.authorizeURL(q))
		o.atkErrorRedirect(t, fmt.Sprintf("code_challenge of %d characters", len(ch)), res, redirect, "invalid_request", q.Get("state"))
	}

	// require_pkce false: a confidential client may omit PKCE …
	q, _ = atkQuery(legacy, redirect, "openid")
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	code = o.atkCode(t, b, q)
	// … but a verifier sent for a code issued without a challenge is
	// refused (PKCE downgrade).
	atkOAuthError(t, "code_verifier for a code without challenge", o.atkExchange(t, legacy, legacySecret, code, redirect, oauth2.GenerateVerifier()), http.StatusBadRequest, "invalid_grant")
	o.atkTokens(t, legacy, legacySecret, code, redirect, "")
	// It may still use PKCE, and then the verifier is checked.
	q, v = atkQuery(legacy, redirect, "openid")
	code = o.atkCode(t, b, q)
	atkOAuthError(t, "require_pkce false, challenge sent, no verifier", o.atkExchange(t, legacy, legacySecret, code, redirect, ""), http.StatusBadRequest, "invalid_grant")
	o.atkTokens(t, legacy, legacySecret, code, redirect, v)
}

// ---------------------------------------------------------------------------
// 4. Consent.

func TestAttackConsent(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	a := o.browser(t, "alice@op.example.test")
	bob := o.browser(t, "bob@op.example.test")

	consentPage := func(t *testing.T, b *http.Client, q url.Values) string {
		t.Helper()
		res, page := get(t, b, o.authorizeURL(q))
		m := consentID.FindStringSubmatch(page)
		if res.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("GET /oauth2/authorize: %d, want the consent page: %.300s", res.StatusCode, page)
		}
		return m[1]
	}
	consents := func(t *testing.T, b *http.Client) string {
		t.Helper()
		res, body := get(t, b, o.Direct+"/v1/me/consents")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/me/consents: %d %s", res.StatusCode, body)
		}
		return body
	}

	t.Run("cross-site POST", func(t *testing.T) {
		q, _ := atkQuery(id, redirect, "openid")
		cid := consentPage(t, a, q)
		for _, h := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
			{"Sec-Fetch-Site": "same-site", "Origin": "https://evil.rp.example"},
			{"Origin": "https://evil.example"},
		} {
			req, _ := http.NewRequest("POST", o.Direct+"/oauth2/consent", strings.NewReader(url.Values{"consent_id": {cid}, "decision": {"allow"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range h {
				req.Header.Set(k, v)
			}
			res, err := a.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusForbidden || res.Header.Get("Location") != "" {
				t.Fatalf("consent POST with %v: %d Location %q, want 403 and no redirect", h, res.StatusCode, res.Header.Get("Location"))
			}
		}
		if body := consents(t, a); strings.Contains(body, id) {
			t.Fatalf("a consent was remembered after cross-site POSTs: %s", body)
		}
		q.Set("prompt", "none")
		res, _ := get(t, a, o.authorizeURL(q))
		o.atkErrorRedirect(t, "prompt=none after cross-site POSTs", res, redirect, "consent_required", q.Get("state"))
		q.Del("prompt")
		consentPage(t, a, q)
	})

	t.Run("consent_id twice", func(t *testing.T) {
		q, _ := atkQuery(id, redirect, "openid")
		cid := consentPage(t, a, q)
		res := postForm(t, a, o.Direct+"/oauth2/consent", url.Values{"consent_id": {cid}, "decision": {"allow"}})
		if loc, err := res.Location(); err != nil || loc.Query().Get("code") == "" {
			t.Fatalf("first consent POST: %d %v, want a code", res.StatusCode, loc)
		}
		res = postForm(t, a, o.Direct+"/oauth2/consent", url.Values{"consent_id": {cid}, "decision": {"allow"}})
		atkPage(t, "second POST of one consent_id", res, "")
		// Deny with a used id: no redirect either.
		res = postForm(t, a, o.Direct+"/oauth2/consent", url.Values{"consent_id": {cid}, "decision": {"deny"}})
		atkPage(t, "deny with a used consent_id", res, "")
		// Made-up ids.
		for _, fake := range []string{"", "x", strings.Repeat("A", 43), cid + "A"} {
			res = postForm(t, a, o.Direct+"/oauth2/consent", url.Values{"consent_id": {fake}, "decision": {"allow"}})
			atkPage(t, fmt.Sprintf("consent_id %q", fake), res, "")
		}
	})

	t.Run("another user's consent_id", func(t *testing.T) {
		other, _ := o.client(t)
		q, _ := atkQuery(other, redirect, "openid")
		cid := consentPage(t, a, q)
		res := postForm(t, bob, o.Direct+"/oauth2/consent", url.Values{"consent_id": {cid}, "decision": {"allow"}})
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Fatalf("alice's consent_id with bob's session: %d Location %q, want 400 and no code", res.StatusCode, res.Header.Get("Location"))
		}
		// Without a session at all.
		cid = consentPage(t, a, q)
		res = postForm(t, atkAnon(), o.Direct+"/oauth2/consent", url.Values{"consent_id": {cid}, "decision": {"allow"}})
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Fatalf("alice's consent_id without a session: %d Location %q, want 400 and no code", res.StatusCode, res.Header.Get("Location"))
		}
		for who, b := range map[string]*http.Client{"alice": a, "bob": bob} {
			if body := consents(t, b); strings.Contains(body, other) {
				t.Fatalf("%s has a consent for %s: %s", who, other, body)
			}
		}
		// Alice's own session, from another sign-in: refused too (the page
		// belongs to the session that was asked).
		cid = consentPage(t, a, q)
		a2 := o.atkSignIn(t, "alice@op.example.test")
		res = postForm(t, a2, o.Direct+"/oauth2/consent", url.Values{"consent_id": {cid}, "decision": {"allow"}})
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Fatalf("alice's consent_id from her other session: %d Location %q, want 400", res.StatusCode, res.Header.Get("Location"))
		}
	})

	t.Run("prompt=consent", func(t *testing.T) {
		q, _ := atkQuery(id, redirect, "openid")
		o.atkCode(t, a, q) // granted (or granted already)
		res, _ := get(t, a, o.authorizeURL(q))
		if res.StatusCode != http.StatusFound {
			t.Fatalf("authorize with the consent remembered: %d, want a redirect", res.StatusCode)
		}
		q.Set("prompt", "consent")
		consentPage(t, a, q)
		q.Set("prompt", "login consent")
		res, _ = get(t, a, o.authorizeURL(q))
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Fatalf("prompt=login consent: %d %s, want the sign-in", res.StatusCode, res.Header.Get("Location"))
		}
		// A new scope asks again.
		q, _ = atkQuery(id, redirect, "openid email")
		consentPage(t, a, q)
	})

	t.Run("deny", func(t *testing.T) {
		other, _ := o.client(t)
		q, _ := atkQuery(other, redirect, "openid")
		cid := consentPage(t, a, q)
		res := postForm(t, a, o.Direct+"/oauth2/consent", url.Values{"consent_id": {cid}, "decision": {"deny"}})
		o.atkErrorRedirect(t, "deny", res, redirect, "access_denied", q.Get("state"))
		consentPage(t, a, q)
	})

	t.Run("revoke", func(t *testing.T) {
		q, v := atkQuery(id, redirect, "openid offline_access")
		tok := o.atkTokens(t, id, secret, o.atkCode(t, bob, q), redirect, v)
		rt, _ := tok["refresh_token"].(string)
		if rt == "" {
			t.Fatalf("no refresh token: %v", tok)
		}
		if body := consents(t, bob); !strings.Contains(body, id) {
			t.Fatalf("GET /v1/me/consents: %s, want %s", body, id)
		}
		res, _ := get(t, bob, o.authorizeURL(q))
		if res.StatusCode != http.StatusFound {
			t.Fatalf("authorize with the consent remembered: %d, want a redirect", res.StatusCode)
		}
		if res := atkDo(t, bob, "DELETE", o.Direct+"/v1/me/consents/"+url.PathEscape(id)); res.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE /v1/me/consents/%s: %d, want 204", id, res.StatusCode)
		}
		consentPage(t, bob, q)
		atkOAuthError(t, "refresh after the consent was revoked", o.atkRefresh(t, id, secret, rt), http.StatusBadRequest, "invalid_grant")
		if body := consents(t, bob); strings.Contains(body, id) {
			t.Fatalf("GET /v1/me/consents after the revocation: %s", body)
		}
		// A cross-site DELETE with the cookie is refused and revokes nothing.
		o.atkCode(t, bob, q)
		req, _ := http.NewRequest("DELETE", o.Direct+"/v1/me/consents/"+url.PathEscape(id), nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		res, err := bob.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site DELETE /v1/me/consents: %d, want 403", res.StatusCode)
		}
		if body := consents(t, bob); !strings.Contains(body, id) {
			t.Fatalf("the consent is gone after a cross-site DELETE: %s", body)
		}
	})
}

// ---------------------------------------------------------------------------
// 5. RP-initiated logout.

func TestAttackLogout(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	other, otherSecret := o.client(t)
	a := o.browser(t, "lo-alice@op.example.test")
	bob := o.browser(t, "lo-bob@op.example.test")

	tokens := func(t *testing.T, b *http.Client, cid, csecret string) map[string]any {
		t.Helper()
		q, v := atkQuery(cid, redirect, "openid offline_access")
		return o.atkTokens(t, cid, csecret, o.atkCode(t, b, q), redirect, v)
	}
	aliceTok := tokens(t, a, id, secret)
	aliceHint := aliceTok["id_token"].(string)
	bobHint := tokens(t, bob, id, secret)["id_token"].(string)
	logout := func(q url.Values) string { return o.Direct + "/oauth2/logout?" + q.Encode() }
	confirmPage := func(t *testing.T, what string, res *http.Response, body string) {
		t.Helper()
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `name="logout_id"`) || res.Header.Get("Location") != "" {
			t.Fatalf("%s: %d Location %q, want the confirmation page: %.300s", what, res.StatusCode, res.Header.Get("Location"), body)
		}
		if strings.Contains(strings.Join(res.Header.Values("Set-Cookie"), "; "), "Max-Age=0") {
			t.Fatalf("%s: the confirmation page clears the session cookie", what)
		}
	}

	t.Run("no hint", func(t *testing.T) {
		for _, q := range []url.Values{{}, {"client_id": {id}}, {"client_id": {id}, "post_logout_redirect_uri": {loggedOut}, "state": {"s"}}} {
			res, body := get(t, a, logout(q))
			confirmPage(t, fmt.Sprintf("logout %v", q), res, body)
			o.atkAlive(t, fmt.Sprintf("after logout %v", q), a, true)
		}
		// A form POST without logout_id is the same.
		res := postForm(t, a, o.Direct+"/oauth2/logout", url.Values{"client_id": {id}})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST /oauth2/logout without hint: %d, want the confirmation page", res.StatusCode)
		}
		o.atkAlive(t, "after POST /oauth2/logout without hint", a, true)
		// A cross-site confirmation signs nobody out.
		_, body := get(t, a, logout(url.Values{}))
		m := regexp.MustCompile(`name="logout_id" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no logout_id: %.300s", body)
		}
		req, _ := http.NewRequest("POST", o.Direct+"/oauth2/logout", strings.NewReader(url.Values{"logout_id": {m[1]}, "decision": {"logout"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		res, err := a.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site logout confirmation: %d, want 403", res.StatusCode)
		}
		o.atkAlive(t, "after a cross-site logout confirmation", a, true)
	})

	t.Run("forged hint", func(t *testing.T) {
		parts := strings.Split(aliceHint, ".")
		claims := atkClaims(t, aliceHint)
		claims["sub"] = "someone-else"
		payload, _ := json.Marshal(claims)
		resigned := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		sig := []byte(parts[2])
		if sig[5] == 'A' {
			sig[5] = 'B'
		} else {
			sig[5] = 'A'
		}
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
		hs := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2]
		for name, hint := range map[string]string{
			"payload changed": resigned, "signature changed": parts[0] + "." + parts[1] + "." + string(sig),
			"alg none": none, "alg HS256": hs, "garbage": "not-a-jwt", "access token": aliceTok["access_token"].(string),
			"truncated": aliceHint[:len(aliceHint)-10],
		} {
			for _, q := range []url.Values{{"id_token_hint": {hint}}, {"id_token_hint": {hint}, "post_logout_redirect_uri": {loggedOut}, "state": {"s"}}} {
				res, body := get(t, a, logout(q))
				atkPage(t, "logout with a forged hint ("+name+")", res, body)
				o.atkAlive(t, "after a forged hint ("+name+")", a, true)
			}
		}
		// A real hint naming another client than client_id.
		res, body := get(t, a, logout(url.Values{"id_token_hint": {aliceHint}, "client_id": {other}}))
		atkPage(t, "hint of one client, client_id of another", res, body)
		o.atkAlive(t, "after a hint/client_id mismatch", a, true)
	})

	t.Run("unregistered post_logout_redirect_uri", func(t *testing.T) {
		for _, uri := range []string{"https://evil.example/bye", loggedOut + "/", loggedOut + "?x=1", redirect, "https://rp.example/logged-out#f", loggedOut + ".evil.example"} {
			for _, q := range []url.Values{
				{"id_token_hint": {aliceHint}, "post_logout_redirect_uri": {uri}},
				{"client_id": {id}, "post_logout_redirect_uri": {uri}},
				{"post_logout_redirect_uri": {uri}},
			} {
				res, body := get(t, a, logout(q))
				atkPage(t, fmt.Sprintf("logout %v", q), res, body)
				o.atkAlive(t, fmt.Sprintf("after logout %v", q), a, true)
			}
		}
		// Registered for another client than the hint's: refused too.
		o.atkClient(t, map[string]any{"post_logout_redirect_uris": []string{"https://other.example/bye"}})
		res, body := get(t, a, logout(url.Values{"id_token_hint": {aliceHint}, "post_logout_redirect_uri": {"https://other.example/bye"}}))
		atkPage(t, "another client's post_logout_redirect_uri", res, body)
		o.atkAlive(t, "after another client's post_logout_redirect_uri", a, true)
	})

	t.Run("another user's hint", func(t *testing.T) {
		q := url.Values{"id_token_hint": {bobHint}, "post_logout_redirect_uri": {loggedOut}, "state": {"s"}}
		res, body := get(t, a, logout(q))
		confirmPage(t, "alice's browser with bob's hint", res, body)
		o.atkAlive(t, "alice after bob's hint", a, true)
		o.atkAlive(t, "bob after his hint in alice's browser", bob, true)
	})

	t.Run("valid hint", func(t *testing.T) {
		// Alice has a second session whose refresh token must survive.
		a2 := o.atkSignIn(t, "lo-alice@op.example.test")
		keep := tokens(t, a2, other, otherSecret)
		rt := aliceTok["refresh_token"].(string)
		q := url.Values{"id_token_hint": {aliceHint}, "post_logout_redirect_uri": {loggedOut}, "state": {"bye"}}
		res, _ := get(t, a, logout(q))
		loc, err := res.Location()
		if err != nil || loc.String() != loggedOut+"?state=bye" {
			t.Fatalf("logout with a valid hint: %d %v, want a redirect to %s?state=bye", res.StatusCode, loc, loggedOut)
		}
		o.atkAlive(t, "after the logout", a, false)
		atkOAuthError(t, "refresh of the signed-out session's token", o.atkRefresh(t, id, secret, rt), http.StatusBadRequest, "invalid_grant")
		o.atkAlive(t, "alice's other session", a2, true)
		if r := o.atkRefresh(t, other, otherSecret, keep["refresh_token"].(string)); r.Status != http.StatusOK {
			t.Fatalf("refresh of the other session's token: %s", r)
		}
		o.atkAlive(t, "bob", bob, true)
	})
}

// ---------------------------------------------------------------------------
// 6. Client authentication and client credentials.

func TestAttackClientAuth(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	other, otherSecret := o.client(t)
	pub, _ := o.atkClient(t, map[string]any{"type": "public"})
	cc, ccSecret := o.atkClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scopes": []string{"read"},
		"redirect_uris": nil, "post_logout_redirect_uris": nil})
	first, _ := o.atkClient(t, map[string]any{"type": "public", "first_party": true})
	b := o.browser(t, "ca@op.example.test")

	q, v := atkQuery(id, redirect, "openid offline_access")
	code := o.atkCode(t, b, q)
	exch := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {v}}
	tokenURL := o.Direct + "/oauth2/token"
	wantInvalidClient := func(t *testing.T, what string, r *testserver.Response, challenge bool) {
		t.Helper()
		atkOAuthError(t, what, r, http.StatusUnauthorized, "invalid_client")
		if h := r.Header.Get("WWW-Authenticate"); challenge && !strings.HasPrefix(h, "Basic ") {
			t.Fatalf("%s: WWW-Authenticate %q, want a Basic challenge", what, h)
		}
	}

	wantInvalidClient(t, "wrong secret (Basic)", testserver.Send(t, "POST", tokenURL, exch, "Authorization", basic(id, "ghcs_wrong")), true)
	wantInvalidClient(t, "the other client's secret (Basic)", testserver.Send(t, "POST", tokenURL, exch, "Authorization", basic(id, otherSecret)), true)
	wantInvalidClient(t, "empty secret (Basic)", testserver.Send(t, "POST", tokenURL, exch, "Authorization", basic(id, "")), true)
	wantInvalidClient(t, "unknown client (Basic)", testserver.Send(t, "POST", tokenURL, exch, "Authorization", basic("nope", secret)), true)
	post := func(f url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range f {
			out[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	wantInvalidClient(t, "wrong secret (post)", testserver.Send(t, "POST", tokenURL, post(exch, "client_id", id, "client_secret", "ghcs_wrong")), false)
	wantInvalidClient(t, "client_id of B with A's secret (post)", testserver.Send(t, "POST", tokenURL, post(exch, "client_id", other, "client_secret", secret)), false)
	wantInvalidClient(t, "confidential client with only client_id", testserver.Send(t, "POST", tokenURL, post(exch, "client_id", id)), false)
	wantInvalidClient(t, "no client at all", testserver.Send(t, "POST", tokenURL, exch), false)
	wantInvalidClient(t, "public client with a client_secret (post)", testserver.Send(t, "POST", tokenURL, post(exch, "client_id", pub, "client_secret", "anything")), false)
	wantInvalidClient(t, "public client with a client_secret (Basic)", testserver.Send(t, "POST", tokenURL, exch, "Authorization", basic(pub, "anything")), true)
	// None of these burned the code.
	tok := o.atkTokens(t, id, secret, code, redirect, v)

	t.Run("refresh needs the client", func(t *testing.T) {
		rt := tok["refresh_token"].(string)
		atkOAuthError(t, "refresh without client authentication", testserver.Send(t, "POST", tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}), http.StatusBadRequest, "invalid_grant")
		wantInvalidClient(t, "refresh with client_id only", testserver.Send(t, "POST", tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {id}}), false)
		atkOAuthError(t, "refresh by another client", o.atkRefresh(t, other, otherSecret, rt), http.StatusBadRequest, "invalid_grant")
		if r := o.atkRefresh(t, id, secret, rt); r.Status != http.StatusOK {
			t.Fatalf("refresh by its client: %s", r)
		}
	})

	t.Run("client_credentials", func(t *testing.T) {
		cred := func(cid, csecret, scope string) *testserver.Response {
			f := url.Values{"grant_type": {"client_credentials"}}
			if scope != "" {
				f.Set("scope", scope)
			}
			return o.atkToken(t, cid, csecret, f)
		}
		atkOAuthError(t, "client_credentials for a code-flow client", cred(id, secret, ""), http.StatusBadRequest, "unauthorized_client")
		atkOAuthError(t, "client_credentials for a public client", cred(pub, "", ""), http.StatusBadRequest, "unauthorized_client")
		wantInvalidClient(t, "client_credentials with a wrong secret", cred(cc, "ghcs_wrong", ""), true)
		for _, sc := range []string{"write", "admin", "read admin", "openid", "offline_access", "introspect"} {
			atkOAuthError(t, "client_credentials scope "+sc, cred(cc, ccSecret, sc), http.StatusBadRequest, "invalid_scope")
		}
		r := cred(cc, ccSecret, "read")
		if r.Status != http.StatusOK {
			t.Fatalf("client_credentials: %s", r)
		}
		j := r.JSON(t)
		if _, ok := j["refresh_token"]; ok {
			t.Fatalf("client_credentials gave a refresh token: %v", j)
		}
		if _, ok := j["id_token"]; ok {
			t.Fatalf("client_credentials gave an ID token: %v", j)
		}
		c := atkClaims(t, j["access_token"].(string))
		if c["sub"] != cc || c["client_id"] != cc || c["scope"] != "read" {
			t.Fatalf("client_credentials token claims %v, want sub and client_id %s, scope read", c, cc)
		}
		if _, ok := c["roles"]; ok {
			t.Fatalf("client_credentials token has roles: %v", c)
		}
		if _, ok := c["email"]; ok {
			t.Fatalf("client_credentials token has an email: %v", c)
		}
		// The client's token is nobody's account.
		if r := testserver.Send(t, "GET", o.Direct+"/v1/me", nil, "Authorization", "Bearer "+j["access_token"].(string)); r.Status == http.StatusOK {
			t.Fatalf("GET /v1/me with a client_credentials token: %s", r)
		}
		if r := testserver.Send(t, "GET", o.Direct+"/oauth2/userinfo", nil, "Authorization", "Bearer "+j["access_token"].(string)); r.Status == http.StatusOK {
			t.Fatalf("GET /oauth2/userinfo with a client_credentials token: %s", r)
		}
		// The code flow is not this client's.
		q, _ := atkQuery(cc, redirect, "read")
		res, body := get(t, b, o.authorizeURL(q))
		if res.StatusCode == http.StatusFound || res.StatusCode == http.StatusOK && consentID.MatchString(body) {
			t.Fatalf("authorize for a client_credentials-only client: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
	})

	t.Run("ID token as bearer", func(t *testing.T) {
		idt := tok["id_token"].(string)
		for _, path := range []string{"/v1/me", "/oauth2/userinfo", "/v1/me/consents"} {
			if r := testserver.Send(t, "GET", o.Direct+path, nil, "Authorization", "Bearer "+idt); r.Status != http.StatusUnauthorized {
				t.Fatalf("GET %s with an ID token as bearer: %s, want 401", path, r)
			}
		}
		// The control: the access token works at userinfo.
		if r := testserver.Send(t, "GET", o.Direct+"/oauth2/userinfo", nil, "Authorization", "Bearer "+tok["access_token"].(string)); r.Status != http.StatusOK {
			t.Fatalf("userinfo with the access token: %s", r)
		}
	})

	t.Run("roles only for first-party clients", func(t *testing.T) {
		c := atkClaims(t, tok["access_token"].(string))
		if _, ok := c["roles"]; ok {
			t.Fatalf("third-party access token has roles: %v", c)
		}
		if c["client_id"] != id {
			t.Fatalf("access token claims %v", c)
		}
		if idc := atkClaims(t, tok["id_token"].(string)); idc["roles"] != nil {
			t.Fatalf("third-party ID token has roles: %v", idc)
		}
		q, v := atkQuery(first, redirect, "openid")
		ft := o.atkTokens(t, first, "", o.atkCode(t, b, q), redirect, v)
		if fc := atkClaims(t, ft["access_token"].(string)); fc["roles"] == nil {
			t.Fatalf("first-party access token without roles: %v", fc)
		}
	})
}

// ---------------------------------------------------------------------------
// 7. prompt=none and unsupported requests.

func TestAttackPromptNone(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	b := o.browser(t, "pn@op.example.test")
	anon := atkAnon()

	q, _ := atkQuery(id, redirect, "openid")
	q.Set("prompt", "none")
	res, _ := get(t, anon, o.authorizeURL(q))
	o.atkErrorRedirect(t, "prompt=none, not signed in", res, redirect, "login_required", q.Get("state"))
	res, _ = get(t, b, o.authorizeURL(q))
	o.atkErrorRedirect(t, "prompt=none, no consent", res, redirect, "consent_required", q.Get("state"))
	// After consent, prompt=none issues a code.
	q.Del("prompt")
	o.atkCode(t, b, q)
	q.Set("prompt", "none")
	res, _ = get(t, b, o.authorizeURL(q))
	if loc, err := res.Location(); err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("prompt=none with consent: %d %v, want a code", res.StatusCode, loc)
	}
	// A new scope needs consent again.
	q.Set("scope", "openid email")
	res, _ = get(t, b, o.authorizeURL(q))
	o.atkErrorRedirect(t, "prompt=none, new scope", res, redirect, "consent_required", q.Get("state"))
	// max_age=0: the session is too old for prompt=none.
	q.Set("scope", "openid")
	q.Set("max_age", "0")
	res, _ = get(t, b, o.authorizeURL(q))
	o.atkErrorRedirect(t, "prompt=none, max_age=0", res, redirect, "login_required", q.Get("state"))
	q.Del("max_age")
	// prompt=none with another value.
	q.Set("prompt", "none login")
	res, _ = get(t, b, o.authorizeURL(q))
	o.atkErrorRedirect(t, "prompt=none login", res, redirect, "invalid_request", q.Get("state"))

	for _, c := range []struct {
		name, key, value, want string
	}{
		{"request", "request", "eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6ImV2aWwifQ.", "request_not_supported"},
		{"request_uri", "request_uri", "https://evil.example/req.jwt", "request_uri_not_supported"},
		{"response_type token", "response_type", "token", "unsupported_response_type"},
		{"response_type id_token", "response_type", "id_token", "unsupported_response_type"},
		{"response_type code id_token", "response_type", "code id_token", "unsupported_response_type"},
		{"response_mode fragment", "response_mode", "fragment", "invalid_request"},
		{"only scopes outside the client's", "scope", "admin write", "invalid_scope"},
		{"no scope", "scope", "", "invalid_scope"},
		{"unknown prompt", "prompt", "bogus", "invalid_request"},
	} {
		for _, who := range []*http.Client{anon, b} {
			q, _ := atkQuery(id, redirect, "openid")
			q.Set("state", "s-"+c.name)
			if c.value == "" {
				q.Del(c.key)
			} else {
				q.Set(c.key, c.value)
			}
			res, _ := get(t, who, o.authorizeURL(q))
			o.atkErrorRedirect(t, c.name, res, redirect, c.want, q.Get("state"))
			if loc, _ := res.Location(); loc != nil && loc.Fragment != "" {
				t.Fatalf("%s: redirect with a fragment %s", c.name, loc)
			}
		}
	}
	// A scope the client is not registered for is dropped (OIDC Core
	// §3.1.2.1), never granted.
	q, v := atkQuery(id, redirect, "openid admin read")
	q.Set("prompt", "none")
	tok := o.atkTokens(t, id, secret, o.atkCode(t, b, q), redirect, v)
	if tok["scope"] != "openid" || atkClaims(t, tok["access_token"].(string))["scope"] != "openid" {
		t.Fatalf("openid admin read for a client registered without admin and read: scope %v", tok["scope"])
	}
	// The state is echoed as sent, whatever it holds.
	q, _ = atkQuery(id, redirect, "openid")
	q.Set("prompt", "none")
	q.Set("state", "a&b=c#d é")
	res, _ = get(t, anon, o.authorizeURL(q))
	o.atkErrorRedirect(t, "state with reserved characters", res, redirect, "login_required", "a&b=c#d é")
}

// ---------------------------------------------------------------------------
// 8. Malformed requests never get a 5xx.

func TestAttackMalformedNo500(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	pub, _ := o.atkClient(t, map[string]any{"type": "public"})
	b := o.browser(t, "fuzz@op.example.test")
	anon := atkAnon()
	q, v := atkQuery(id, redirect, "openid offline_access")
	code := o.atkCode(t, b, q)
	validQ, _ := atkQuery(id, redirect, "openid")
	base := validQ.Encode()
	huge := strings.Repeat("A", 100<<10)
	big := strings.Repeat("é", 4000)
	bad8 := "%FF%FE%C0%AF"

	raw := []string{
		base + "&state=" + huge,
		base + "&nonce=" + huge,
		base + "&login_hint=" + huge,
		base + "&scope=" + big,
		base + "&id_token_hint=" + huge,
		base + "&acr_values=" + huge,
		"client_id=" + huge + "&response_type=code&scope=openid",
		"client_id=" + id + "&redirect_uri=" + huge + "&response_type=code&scope=openid",
		"client_id=" + id + "&client_id=other&" + base,
		"client_id=other&" + base,
		base + "&redirect_uri=https://evil.example/cb",
		"redirect_uri=https://evil.example/cb&" + base,
		base + "&response_type=token",
		base + "&scope=openid&scope=admin",
		base + "&state=1&state=2",
		base + "&max_age=-1",
		base + "&max_age=abc",
		base + "&max_age=1e3",
		base + "&max_age=99999999999999999999",
		base + "&max_age=9223372036854775807",
		base + "&max_age=",
		base + "&max_age=%00",
		base + "&prompt=" + huge,
		base + "&prompt=none%20none",
		base + "&prompt=login&prompt=none",
		base + "&code_challenge=" + huge,
		base + "&code_challenge_method=" + huge,
		base + "&acr_values=aal2&prompt=none",
		base + "&ui_locales=" + bad8 + "&claims_locales=" + bad8 + "&display=" + bad8,
		base + "&state=" + bad8,
		base + "&nonce=" + bad8,
		base + "&login_hint=" + bad8,
		base + "&scope=openid%20" + bad8,
		base + "&acr_values=" + bad8,
		base + "&id_token_hint=" + bad8,
		"client_id=" + bad8 + "&response_type=code&scope=openid",
		"client_id=" + id + "&redirect_uri=https://rp.example/cb" + bad8 + "&response_type=code&scope=openid",
		"client_id=" + id + "%00&response_type=code&scope=openid",
		base + "&state=%zz",
		base + "&%zz=1",
		base + "&state=a;b",
		base + ";x=1",
		base + "&&&&=&=",
		"",
		"=",
		"client_id",
		"client_id=&redirect_uri=",
		base + "&request=" + huge,
		base + "&request_uri=" + bad8,
		base + "&response_mode=" + bad8,
		base + "&response_mode=form_post",
		base + "&claims=%7B%22id_token%22%3A%7B%7D%7D",
		base + "&state=%0d%0aSet-Cookie:%20x=y",
		base + "&client_id=" + pub,
	}
	checkAuthorizeAnswer := func(t *testing.T, what string, res *http.Response, body string) {
		t.Helper()
		if res.StatusCode >= 500 {
			t.Fatalf("%s: %d %.300s", what, res.StatusCode, body)
		}
		if loc := res.Header.Get("Location"); loc != "" {
			if !strings.HasPrefix(loc, redirect+"?") && !strings.HasPrefix(loc, "/login?") {
				t.Fatalf("%s: redirect to %.200s, want the client's registered URI or /login", what, loc)
			}
		}
		for k := range res.Header {
			if strings.EqualFold(k, "x") {
				t.Fatalf("%s: header injection: %v", what, res.Header)
			}
		}
		for _, c := range res.Cookies() {
			if c.Name == "x" {
				t.Fatalf("%s: cookie injected: %v", what, c)
			}
		}
	}
	for i, rq := range raw {
		for _, who := range []struct {
			name string
			c    *http.Client
		}{{"anonymous", anon}, {"signed in", b}} {
			what := fmt.Sprintf("%s GET #%d %.120s", who.name, i, rq)
			req, err := http.NewRequest("GET", o.Direct+"/oauth2/authorize?"+rq, nil)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			res, err := who.c.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			res.Body.Close()
			checkAuthorizeAnswer(t, what, res, string(body))
			// The same as a form POST.
			what = fmt.Sprintf("%s POST #%d %.120s", who.name, i, rq)
			req, _ = http.NewRequest("POST", o.Direct+"/oauth2/authorize", strings.NewReader(rq))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			res, err = who.c.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			body, _ = io.ReadAll(io.LimitReader(res.Body, 4096))
			res.Body.Close()
			checkAuthorizeAnswer(t, what, res, string(body))
		}
	}
	// Raw bytes that are not UTF-8 in the request line.
	for _, rq := range []string{base + "&state=\xff\xfe", "client_id=\xc0\xaf&response_type=code"} {
		req, err := http.NewRequest("GET", o.Direct+"/oauth2/authorize?"+rq, nil)
		if err != nil {
			continue // the client library will not send it
		}
		res, err := b.Do(req)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		checkAuthorizeAnswer(t, fmt.Sprintf("raw bytes %q", rq), res, string(body))
	}

	// The token endpoint.
	type tokReq struct {
		name, ct, body string
		hdr            []string
	}
	form := "application/x-www-form-urlencoded"
	exch := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {v}}.Encode()
	auth := []string{"Authorization", basic(id, secret)}
	toks := []tokReq{
		{"empty", form, "", nil},
		{"no content type", "", exch, auth},
		{"JSON", "application/json", `{"grant_type":"authorization_code","code":"` + code + `"}`, auth},
		{"multipart", "multipart/form-data; boundary=x", "--x--", auth},
		{"bad content type", "application/x-www-form-urlencoded; charset=\xff", exch, auth},
		{"unknown grant", form, "grant_type=urn:evil", auth},
		{"grant_type huge", form, "grant_type=" + huge, auth},
		{"grant_type twice", form, exch + "&grant_type=client_credentials", auth},
		{"code twice", form, exch + "&code=other", auth},
		{"no code", form, "grant_type=authorization_code&redirect_uri=" + url.QueryEscape(redirect), auth},
		{"huge code", form, "grant_type=authorization_code&redirect_uri=" + url.QueryEscape(redirect) + "&code=" + huge, auth},
		{"code of 257", form, "grant_type=authorization_code&redirect_uri=" + url.QueryEscape(redirect) + "&code=" + strings.Repeat("a", 257), auth},
		{"code not UTF-8", form, "grant_type=authorization_code&redirect_uri=" + url.QueryEscape(redirect) + "&code=" + bad8, auth},
		{"redirect_uri not UTF-8", form, "grant_type=authorization_code&code=x&redirect_uri=" + bad8, auth},
		{"verifier huge", form, exch + "x&code_verifier2=" + huge, auth},
		{"verifier not UTF-8", form, "grant_type=authorization_code&code=" + code + "&redirect_uri=" + url.QueryEscape(redirect) + "&code_verifier=" + bad8, auth},
		{"bad escape", form, "grant_type=authorization_code&code=%zz", auth},
		{"query string", form, exch, auth},
		{"client_id huge (post)", form, exch + "&client_id=" + huge + "&client_secret=x", nil},
		{"client_id not UTF-8 (post)", form, exch + "&client_id=" + bad8 + "&client_secret=x", nil},
		{"client_secret huge", form, exch + "&client_id=" + id + "&client_secret=" + huge, nil},
		{"client_secret not UTF-8", form, exch + "&client_id=" + id + "&client_secret=" + bad8, nil},
		{"Basic not base64", form, exch, []string{"Authorization", "Basic !!!"}},
		{"Basic without colon", form, exch, []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(id))}},
		{"Basic bad escape", form, exch, []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%zz"))}},
		{"Basic not UTF-8", form, exch, []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("\xff\xfe:\xc0"))}},
		{"Basic huge", form, exch, []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(huge+":"+huge))}},
		{"Basic and post disagree", form, "grant_type=authorization_code&code=x&redirect_uri=" + url.QueryEscape(redirect) + "&client_id=" + pub, auth},
		{"Bearer instead of Basic", form, exch, []string{"Authorization", "Bearer " + o.admin}},
		{"refresh garbage", form, "grant_type=refresh_token&refresh_token=" + bad8 + "&client_id=" + pub, nil},
		{"refresh huge", form, "grant_type=refresh_token&refresh_token=" + huge, auth},
		{"refresh empty", form, "grant_type=refresh_token&refresh_token=", auth},
		{"client_credentials scope huge", form, "grant_type=client_credentials&scope=" + huge, auth},
		{"client_credentials scope not UTF-8", form, "grant_type=client_credentials&scope=" + bad8, auth},
		{"public code exchange without verifier", form, "grant_type=authorization_code&code=x&redirect_uri=" + url.QueryEscape(redirect) + "&client_id=" + pub, nil},
		{"password grant for a client", form, "grant_type=password&username=" + bad8 + "&password=" + huge, auth},
		{"mfa grant garbage", form, "grant_type=urn:gatehouse:mfa&mfa_token=" + bad8 + "&otp=" + huge, nil},
	}
	for _, tr := range toks {
		target := o.Direct + "/oauth2/token"
		if tr.name == "query string" {
			target += "?code=" + code
		}
		r := testserver.Do(t, "POST", target, tr.ct, []byte(tr.body), tr.hdr...)
		if r.Status >= 500 || r.Status < 400 {
			t.Fatalf("token request %q: %.300s, want a 4xx", tr.name, r)
		}
	}
	// After all that, the code was never redeemed: its client still can.
	o.atkTokens(t, id, secret, code, redirect, v)

	// Logout and userinfo.
	for _, lq := range []string{
		"id_token_hint=" + huge, "id_token_hint=" + bad8, "id_token_hint=a.b.c", "id_token_hint=..", "client_id=" + huge,
		"client_id=" + bad8, "post_logout_redirect_uri=" + bad8, "post_logout_redirect_uri=" + huge, "state=" + huge,
		"client_id=" + id + "&post_logout_redirect_uri=" + url.QueryEscape(loggedOut) + "&state=" + bad8,
		"client_id=" + id + "&client_id=" + pub, "%zz", "logout_hint=" + huge,
	} {
		for _, c := range []*http.Client{anon, b} {
			res, body := get(t, c, o.Direct+"/oauth2/logout?"+lq)
			if res.StatusCode >= 500 {
				t.Fatalf("logout %.120s: %d %.300s", lq, res.StatusCode, body)
			}
			if loc := res.Header.Get("Location"); loc != "" && !strings.HasPrefix(loc, loggedOut) && !strings.HasPrefix(loc, "/login") {
				t.Fatalf("logout %.120s: redirect to %s", lq, loc)
			}
		}
	}
	o.atkAlive(t, "after the malformed logouts", b, true)
	for _, hdr := range [][]string{
		{"Authorization", "Bearer " + huge}, {"Authorization", "Bearer a.b.c"}, {"Authorization", "Bearer \xff"},
		{"Authorization", "Basic " + huge}, {"Authorization", "Bearer"},
	} {
		r := testserver.Do(t, "GET", o.Direct+"/oauth2/userinfo", "", nil, hdr...)
		if r.Status >= 500 || r.Status < 400 {
			t.Fatalf("userinfo with %.40q: %.200s, want a 4xx", hdr[1], r)
		}
	}
	for _, body := range []string{"access_token=" + huge, "access_token=" + bad8, "access_token=%zz", "access_token=1&access_token=2"} {
		r := testserver.Do(t, "POST", o.Direct+"/oauth2/userinfo", form, []byte(body))
		if r.Status >= 500 || r.Status < 400 {
			t.Fatalf("userinfo POST %.40q: %.200s, want a 4xx", body, r)
		}
	}
	// The consent form.
	for _, body := range []string{"consent_id=" + huge, "consent_id=" + bad8, "%zz", "", "consent_id=1&consent_id=2&decision=allow"} {
		req, _ := http.NewRequest("POST", o.Direct+"/oauth2/consent", strings.NewReader(body))
		req.Header.Set("Content-Type", form)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		res, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 500 || res.Header.Get("Location") != "" {
			t.Fatalf("consent POST %.40q: %d Location %q", body, res.StatusCode, res.Header.Get("Location"))
		}
	}
}

// TestAttackMissingResponseType: no response_type is a malformed request
// (invalid_request, RFC 6749 §4.1.2.1), sent back with state and iss.
func TestAttackMissingResponseType(t *testing.T) {
	o := startOP(t)
	id, _ := o.client(t)
	b := o.browser(t, "rt@op.example.test")
	q, _ := atkQuery(id, redirect, "openid")
	q.Del("response_type")
	res, _ := get(t, b, o.authorizeURL(q))
	loc, err := res.Location()
	if err != nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != q.Get("state") || loc.Query().Get("iss") != o.URL {
		t.Fatalf("authorization request without response_type: %d %v, want an invalid_request redirect with state and iss", res.StatusCode, loc)
	}
}
