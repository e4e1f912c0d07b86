// Package oidcop_test runs real relying-party libraries against a running
// Gatehouse acting as OpenID provider (SPEC §14): coreos/go-oidc with
// golang.org/x/oauth2 walk discovery → authorize → consent → token →
// ID-token verification → userinfo → refresh → logout.
package oidcop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/internal/testserver"
)

const (
	adminEmail = "admin@op.example.test"
	password   = "correct horse battery staple"
	redirect   = "https://rp.example/cb"
	loggedOut  = "https://rp.example/logged-out"
)

// op is a Gatehouse with an administrator, and its admin access token.
type op struct {
	*testserver.Server
	admin string
}

func startOP(t *testing.T) *op {
	t.Helper()
	yaml := "rate_limits: {login_per_account_ip: 100000, login_per_ip: 100000, window: 1m}\n"
	s := testserver.Start(t, testserver.Options{Env: testserver.Env(t, yaml, nil),
		Before: func(s *testserver.Server) {
			s.Command(t, password+"\n", "user", "create", "--email", adminEmail, "--role", "admin", "--password-stdin")
		}})
	r := testserver.Send(t, "POST", s.Direct+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {adminEmail}, "password": {password}})
	if r.Status != http.StatusOK {
		t.Fatalf("admin password grant: %s", r)
	}
	return &op{Server: s, admin: r.JSON(t)["access_token"].(string)}
}

// client registers a confidential client and returns its id and secret.
func (o *op) client(t *testing.T) (string, string) {
	t.Helper()
	r := testserver.Send(t, "POST", o.Direct+"/v1/admin/clients", map[string]any{
		"name": "Example RP", "type": "confidential", "redirect_uris": []string{redirect},
		"post_logout_redirect_uris": []string{loggedOut}, "grant_types": []string{"authorization_code", "refresh_token"},
		"scopes": []string{"openid", "profile", "email", "offline_access"}, "token_endpoint_auth_method": "client_secret_basic",
	}, "Authorization", "Bearer "+o.admin)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/admin/clients: %s", r)
	}
	j := r.JSON(t)
	id, _ := j["client_id"].(string)
	secret, _ := j["client_secret"].(string)
	if id == "" || !strings.HasPrefix(secret, "ghcs_") {
		t.Fatalf("POST /v1/admin/clients: no client_id or ghcs_ secret in %s", r)
	}
	return id, secret
}

// browser is a user agent with a cookie jar that does not follow
// redirects, signed in to o as email.
func (o *op) browser(t *testing.T, email string) *http.Client {
	t.Helper()
	o.Register(t, email, password)
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

func get(t *testing.T, b *http.Client, target string) (*http.Response, string) {
	t.Helper()
	res, err := b.Get(target)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res, sb.String()
}

func postForm(t *testing.T, b *http.Client, target string, v url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", target, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := b.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	res.Body.Close()
	return res
}

var consentID = regexp.MustCompile(`name="consent_id" value="([^"]+)"`)

// TestGoOIDCRelyingParty: the whole code flow with coreos/go-oidc and
// x/oauth2 as the relying party.
func TestGoOIDCRelyingParty(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	ctx := context.Background()

	provider, err := oidc.NewProvider(ctx, o.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	cfg := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}}
	if cfg.Endpoint.AuthStyle != oauth2.AuthStyleAutoDetect && cfg.Endpoint.AuthStyle != oauth2.AuthStyleInHeader {
		t.Fatalf("auth style %v", cfg.Endpoint.AuthStyle)
	}
	b := o.browser(t, "ada@op.example.test")
	verifier, state, nonce := oauth2.GenerateVerifier(), "st-"+oauth2.GenerateVerifier()[:8], "n-"+oauth2.GenerateVerifier()[:8]
	start := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	// The browser reaches the server at its direct address.
	start = strings.Replace(start, o.URL, o.Direct, 1)
	res, page := get(t, b, start)
	m := consentID.FindStringSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /oauth2/authorize: %d, want the consent page: %.400s", res.StatusCode, page)
	}
	res = postForm(t, b, o.Direct+"/oauth2/consent", url.Values{"consent_id": {m[1]}, "decision": {"allow"}})
	loc, err := res.Location()
	if err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("POST /oauth2/consent (allow): %d %v, want a redirect to %s", res.StatusCode, loc, redirect)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("iss") != o.URL || q.Get("code") == "" {
		t.Fatalf("redirect %s: want the code, state %q and iss %q", loc, state, o.URL)
	}

	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: id}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token verification: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("ID token nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var claims struct {
		AuthTime int64  `json:"auth_time"`
		ACR      string `json:"acr"`
		AZP      string `json:"azp"`
		SID      string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil || claims.AuthTime == 0 || claims.ACR != "aal1" || claims.AZP != id || claims.SID == "" {
		t.Fatalf("ID token claims %+v (%v)", claims, err)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != "ada@op.example.test" || info.Subject != idt.Subject {
		t.Fatalf("userinfo: %+v %v", info, err)
	}

	// A second exchange of the code is refused, and revokes what the
	// first one issued (RFC 6749 §4.1.2): the access token too, at once
	// (the revocation feed, SPEC §15).
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("the code was exchanged twice")
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("userinfo accepted the access token of a code exchanged twice")
	}

	if tok.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}
	// The refresh family was revoked by the second exchange of the code
	// (RFC 6749 §4.1.2): a new sign-in gives a fresh one to refresh.
	res, page = get(t, b, start)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("second authorization with the consent remembered: %d %.300s, want a redirect", res.StatusCode, page)
	}
	loc, _ = res.Location()
	tok2, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("second code exchange: %v", err)
	}
	refreshed, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	raw2, _ := refreshed.Extra("id_token").(string)
	idt2, err := provider.Verifier(&oidc.Config{ClientID: id}).Verify(ctx, raw2)
	if err != nil || idt2.Subject != idt.Subject {
		t.Fatalf("refreshed ID token: %v (sub %v)", err, idt2)
	}
	var c2 struct {
		AuthTime int64 `json:"auth_time"`
	}
	_ = idt2.Claims(&c2)
	if c2.AuthTime != claims.AuthTime {
		t.Fatalf("refresh changed auth_time from %d to %d", claims.AuthTime, c2.AuthTime)
	}

	// RP-initiated logout with the ID token as hint: back to the client,
	// signed out.
	lq := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {loggedOut}, "state": {"bye"}}
	res, _ = get(t, b, o.Direct+"/oauth2/logout?"+lq.Encode())
	loc, err = res.Location()
	if err != nil || loc.String() != loggedOut+"?state=bye" {
		t.Fatalf("logout: %d %v, want a redirect to %s?state=bye", res.StatusCode, loc, loggedOut)
	}
	if res, _ := get(t, b, o.Direct+"/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v1/me after the logout: %d, want 401", res.StatusCode)
	}
}

// TestClientRevokeAndIntrospect: a client authenticates at /oauth2/revoke
// and /oauth2/introspect and reaches only its own tokens (SPEC §14).
func TestClientRevokeAndIntrospect(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	otherID, otherSecret := o.client(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, o.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}}
	b := o.browser(t, "bo@op.example.test")
	verifier := oauth2.GenerateVerifier()
	start := strings.Replace(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), o.URL, o.Direct, 1)
	_, page := get(t, b, start)
	m := consentID.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent page: %.300s", page)
	}
	loc, _ := postForm(t, b, o.Direct+"/oauth2/consent", url.Values{"consent_id": {m[1]}, "decision": {"allow"}}).Location()
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	introspect := func(cid, csecret, token string) map[string]any {
		t.Helper()
		r := testserver.Send(t, "POST", o.Direct+"/oauth2/introspect", url.Values{"token": {token}}, "Authorization", basic(cid, csecret))
		if r.Status != http.StatusOK {
			t.Fatalf("introspect as %s: %s", cid, r)
		}
		return r.JSON(t)
	}
	if j := introspect(id, secret, tok.AccessToken); j["active"] != true || j["client_id"] != id {
		t.Fatalf("the client introspecting its own access token: %v", j)
	}
	if j := introspect(otherID, otherSecret, tok.AccessToken); j["active"] != false || len(j) != 1 {
		t.Fatalf("another client introspecting the token: %v, want only active false", j)
	}
	if r := testserver.Send(t, "POST", o.Direct+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, "Authorization", basic(id, "ghcs_wrong")); r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("introspect with a wrong secret: %s, want 401 with a Basic challenge", r)
	}
	// Another client cannot revoke it; the owner can.
	testserver.Send(t, "POST", o.Direct+"/oauth2/revoke", url.Values{"token": {tok.RefreshToken}}, "Authorization", basic(otherID, otherSecret))
	next, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh after another client's revocation attempt: %v", err)
	}
	if r := testserver.Send(t, "POST", o.Direct+"/oauth2/revoke", url.Values{"token": {next.RefreshToken}}, "Authorization", basic(id, secret)); r.Status != http.StatusOK {
		t.Fatalf("the owner's revocation: %s", r)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); err == nil {
		t.Fatal("the refresh token works after its client revoked it")
	}
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// TestPasswordGrantRefusedToThirdPartyClients: a registered third-party
// client cannot take a user's password (OAuth 2.1), and one with a wrong
// secret is refused as a client first.
func TestPasswordGrantRefusedToThirdPartyClients(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	o.Register(t, "pat@op.example.test", password)
	form := url.Values{"grant_type": {"password"}, "username": {"pat@op.example.test"}, "password": {password}}
	r := testserver.Send(t, "POST", o.Direct+"/oauth2/token", form, "Authorization", basic(id, secret))
	if r.Status != http.StatusBadRequest || r.JSON(t)["error"] != "unauthorized_client" {
		t.Fatalf("password grant by a third-party client: %s, want 400 unauthorized_client", r)
	}
	r = testserver.Send(t, "POST", o.Direct+"/oauth2/token", form, "Authorization", basic(id, "ghcs_wrong"))
	if r.Status != http.StatusUnauthorized || r.JSON(t)["error"] != "invalid_client" {
		t.Fatalf("password grant with a wrong client secret: %s, want 401 invalid_client", r)
	}
	// Gatehouse's own clients (no registration) keep the grant.
	if r := testserver.Send(t, "POST", o.Direct+"/oauth2/token", form); r.Status != http.StatusOK {
		t.Fatalf("password grant without a registered client: %s", r)
	}
}

// TestClientIDTokenAlgKeyPublishedAtRegistration: registering a client
// with id_token_signed_response_alg ES256 puts an ES256 key in the JWKS at
// once (before its first ID token, so every node can publish it in time),
// and that client's ID tokens verify with go-oidc as ES256.
func TestClientIDTokenAlgKeyPublishedAtRegistration(t *testing.T) {
	o := startOP(t)
	jwksHas := func(alg string) bool {
		r := testserver.Send(t, "GET", o.Direct+"/.well-known/jwks.json", nil)
		keys, _ := r.JSON(t)["keys"].([]any)
		for _, k := range keys {
			if m, _ := k.(map[string]any); m["alg"] == alg {
				return true
			}
		}
		return false
	}
	if jwksHas("ES256") {
		t.Fatal("an ES256 key before any client asked for it")
	}
	r := testserver.Send(t, "POST", o.Direct+"/v1/admin/clients", map[string]any{
		"name": "ES RP", "type": "confidential", "redirect_uris": []string{redirect}, "scopes": []string{"openid"},
		"id_token_signed_response_alg": "ES256",
	}, "Authorization", "Bearer "+o.admin)
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %s", r)
	}
	if !jwksHas("ES256") {
		t.Fatal("no ES256 key in the JWKS right after the client registered it")
	}
	id, secret := r.JSON(t)["client_id"].(string), r.JSON(t)["client_secret"].(string)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, o.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID}}
	b := o.browser(t, "es@op.example.test")
	verifier := oauth2.GenerateVerifier()
	_, page := get(t, b, strings.Replace(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), o.URL, o.Direct, 1))
	m := consentID.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent page: %.200s", page)
	}
	loc, _ := postForm(t, b, o.Direct+"/oauth2/consent", url.Values{"consent_id": {m[1]}, "decision": {"allow"}}).Location()
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if _, err := provider.Verifier(&oidc.Config{ClientID: id, SupportedSigningAlgs: []string{oidc.ES256}}).Verify(ctx, raw); err != nil {
		t.Fatalf("ES256 ID token: %v", err)
	}
}

// TestStepUpKeepsThirdPartyTokenShape: a third-party client's access token
// (no roles, no email) stepped up with the password gives a fresh token
// of the same shape: step-up mints nothing the presented token did not
// hold (SPEC §18).
func TestStepUpKeepsThirdPartyTokenShape(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, o.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID}}
	b := o.browser(t, "su@op.example.test")
	verifier := oauth2.GenerateVerifier()
	_, page := get(t, b, strings.Replace(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), o.URL, o.Direct, 1))
	m := consentID.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent page: %.200s", page)
	}
	loc, _ := postForm(t, b, o.Direct+"/oauth2/consent", url.Values{"consent_id": {m[1]}, "decision": {"allow"}}).Location()
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	r := testserver.Send(t, "POST", o.Direct+"/v1/mfa/step-up", map[string]string{"password": password}, "Authorization", "Bearer "+tok.AccessToken)
	if r.Status != http.StatusOK {
		t.Fatalf("step-up with the third-party token: %s", r)
	}
	fresh, _ := r.JSON(t)["access_token"].(string)
	parts := strings.Split(fresh, ".")
	if len(parts) != 3 {
		t.Fatalf("step-up answered %s", r)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if _, has := claims["roles"]; has {
		t.Fatalf("the stepped-up third-party token gained roles: %s", payload)
	}
	if _, has := claims["email"]; has {
		t.Fatalf("the stepped-up third-party token gained the email: %s", payload)
	}
	if claims["client_id"] != id || claims["acr"] != "aal1" {
		t.Fatalf("the stepped-up token's claims %s: want the same client and acr aal1", payload)
	}
}
