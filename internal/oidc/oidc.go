// Package oidc talks to external identity providers for social login:
// generic OpenID Connect by issuer discovery (coreos/go-oidc), the presets
// google, microsoft (tenant), auth0 (domain), and github (OAuth2 plus its
// user and emails API, where only a verified primary email counts).
//
// A provider whose discovery fails at start-up is retried in the background
// with backoff; the others work meanwhile. What to do with the identity
// (which account it signs in to) is the domain's decision (internal/auth),
// not this package's.
//
// A Registry is safe for concurrent use.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/internal/config"
)

// Identity is what a provider says about the user who signed in.
type Identity struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// ErrNotReady is returned while a provider's discovery has not succeeded.
var ErrNotReady = errors.New("oidc: the provider is not reachable yet")

// ErrUnknown is returned for a provider id that is not configured.
var ErrUnknown = errors.New("oidc: no such provider")

// Provider is one configured identity provider.
type Provider struct {
	ID   string
	Name string
	Type string

	cfg         config.Provider
	redirectURL string
	client      *http.Client

	mu       sync.RWMutex
	oauth    *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	userinfo func(ctx context.Context, ts oauth2.TokenSource) (*gooidc.UserInfo, error)
	github   string // API base for the github preset
}

// Registry holds the configured providers.
type Registry struct {
	providers map[string]*Provider
	order     []*Provider
	log       *slog.Logger
}

// microsoftLogin is Microsoft's sign-in host (a variable for tests).
var microsoftLogin = "https://login.microsoftonline.com"

// multiTenant reports a microsoft preset on one of Microsoft's multi-tenant
// endpoints, whose discovery document names the issuer template
// https://login.microsoftonline.com/{tenantid}/v2.0 rather than an issuer:
// each ID token's iss is then checked against its own tid (Exchange).
func multiTenant(p config.Provider) bool {
	if p.Type != "microsoft" {
		return false
	}
	switch strings.ToLower(p.Tenant) {
	case "", "common", "organizations", "consumers":
		return true
	}
	return false
}

// issuerFor returns the discovery issuer of a provider, presets included.
func issuerFor(p config.Provider) string {
	switch p.Type {
	case "google":
		return "https://accounts.google.com"
	case "microsoft":
		tenant := p.Tenant
		if tenant == "" {
			tenant = "common"
		}
		return microsoftLogin + "/" + tenant + "/v2.0"
	case "auth0":
		if p.Issuer != "" {
			return p.Issuer
		}
		return "https://" + strings.TrimSuffix(p.Domain, "/") + "/"
	}
	return p.Issuer
}

// New builds the registry and starts discovery for every provider; those
// that fail are retried in the background until ctx ends.
func New(ctx context.Context, providers []config.Provider, publicURL string, client *http.Client, log *slog.Logger) *Registry {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	r := &Registry{providers: map[string]*Provider{}, log: log}
	for _, pc := range providers {
		p := &Provider{ID: pc.ID, Name: pc.Name, Type: pc.Type, cfg: pc, client: client,
			redirectURL: publicURL + "/v1/oidc/" + pc.ID + "/callback"}
		if p.Name == "" {
			p.Name = pc.ID
		}
		r.providers[pc.ID] = p
		r.order = append(r.order, p)
		if err := p.setup(ctx); err != nil {
			log.Warn("identity provider not ready; retrying in the background", "provider", p.ID, "err", err)
			go p.retry(ctx, log)
		}
	}
	return r
}

// List returns the providers in configuration order.
func (r *Registry) List() []*Provider {
	if r == nil {
		return nil
	}
	return r.order
}

// Get returns a ready provider.
func (r *Registry) Get(id string) (*Provider, error) {
	if r == nil {
		return nil, ErrUnknown
	}
	p := r.providers[id]
	if p == nil {
		return nil, ErrUnknown
	}
	p.mu.RLock()
	ready := p.oauth != nil
	p.mu.RUnlock()
	if !ready {
		return nil, ErrNotReady
	}
	return p, nil
}

func (p *Provider) retry(ctx context.Context, log *slog.Logger) {
	wait := 2 * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := p.setup(ctx); err != nil {
			log.Warn("identity provider still not ready", "provider", p.ID, "err", err, "next_try_in", wait)
			wait = min(wait*2, 5*time.Minute)
			continue
		}
		log.Info("identity provider ready", "provider", p.ID)
		return
	}
}

func (p *Provider) setup(ctx context.Context) error {
	scopes := p.cfg.Scopes
	if p.Type == "github" {
		base := strings.TrimSuffix(p.cfg.Issuer, "/")
		authURL, tokenURL, api := "https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token", "https://api.github.com"
		if base != "" { // GitHub Enterprise, or a stand-in in tests
			authURL, tokenURL, api = base+"/login/oauth/authorize", base+"/login/oauth/access_token", base+"/api/v3"
		}
		if len(scopes) == 0 {
			scopes = []string{"read:user", "user:email"}
		}
		p.mu.Lock()
		p.oauth = &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, RedirectURL: p.redirectURL, Scopes: scopes,
			Endpoint: oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL}}
		p.github = api
		p.mu.Unlock()
		return nil
	}
	dctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, p.client), 10*time.Second)
	defer cancel()
	issuer := issuerFor(p.cfg)
	if multiTenant(p.cfg) {
		dctx = gooidc.InsecureIssuerURLContext(dctx, microsoftLogin+"/{tenantid}/v2.0")
	}
	op, err := gooidc.NewProvider(dctx, issuer)
	if err != nil {
		return fmt.Errorf("discovery of %s: %w", issuer, err)
	}
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "email", "profile"}
	}
	hasOpenID := false
	for _, s := range scopes {
		hasOpenID = hasOpenID || s == gooidc.ScopeOpenID
	}
	if !hasOpenID {
		scopes = append([]string{gooidc.ScopeOpenID}, scopes...)
	}
	// The verifier pins the issuer configured for THIS provider and its
	// client id as audience: an ID token from another provider (mix-up) or
	// for another client is refused. (It accepts a token that names other
	// audiences too: checkAudience refuses those in Exchange.)
	// (Microsoft's multi-tenant endpoints: the issuer is checked against
	// the token's tenant in Exchange instead.)
	v := op.Verifier(&gooidc.Config{ClientID: p.cfg.ClientID, SkipIssuerCheck: multiTenant(p.cfg)})
	p.mu.Lock()
	p.oauth = &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, RedirectURL: p.redirectURL,
		Scopes: scopes, Endpoint: op.Endpoint()}
	p.verifier = v
	p.userinfo = func(ctx context.Context, ts oauth2.TokenSource) (*gooidc.UserInfo, error) {
		return op.UserInfo(ctx, ts)
	}
	p.mu.Unlock()
	return nil
}

// AuthCodeURL is where the browser goes to sign in at the provider: the
// authorization code flow with state, nonce (OIDC only) and PKCE S256.
// prompt, when not empty, is passed on (OIDC Core §3.1.2.1): "login" asks
// the provider to authenticate the user again, which is how a user who
// signs in only through a provider steps up (SPEC §13).
func (p *Provider) AuthCodeURL(state, nonce, verifier, prompt string) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if p.Type != "github" {
		opts = append(opts, gooidc.Nonce(nonce))
	}
	if prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
	}
	return p.oauth.AuthCodeURL(state, opts...)
}

// Exchange redeems the code (with the PKCE verifier), verifies the ID token
// — signature, iss exactly the configured issuer, aud (the client id plus
// only trusted audiences) and azp, exp, and the nonce — and returns the
// identity. The provider's tokens never leave this call.
func (p *Provider) Exchange(ctx context.Context, code, verifier, nonce string) (*Identity, error) {
	p.mu.RLock()
	oc, v, userinfo, github := p.oauth, p.verifier, p.userinfo, p.github
	p.mu.RUnlock()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("oidc: code exchange: %w", err)
	}
	if p.Type == "github" {
		return githubIdentity(ctx, p.client, github, tok)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("oidc: the token response has no id_token")
	}
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("oidc: ID token: %w", err)
	}
	if idt.Nonce == "" || idt.Nonce != nonce {
		return nil, errors.New("oidc: ID token nonce does not match")
	}
	if err := p.checkAudience(idt); err != nil {
		return nil, err
	}
	if multiTenant(p.cfg) {
		var t struct {
			TID string `json:"tid"`
		}
		if err := idt.Claims(&t); err != nil || !tenantID(t.TID) || idt.Issuer != microsoftLogin+"/"+t.TID+"/v2.0" {
			return nil, fmt.Errorf("oidc: ID token issued by a different provider: %q for tenant %q", idt.Issuer, t.TID)
		}
	}
	var c struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("oidc: ID token claims: %w", err)
	}
	id := &Identity{Subject: idt.Subject, Email: c.Email, EmailVerified: truthy(c.EmailVerified), Name: c.Name}
	if id.Email == "" && userinfo != nil {
		ui, err := userinfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fmt.Errorf("oidc: userinfo: %w", err)
		}
		// The userinfo response must be about the same user (OIDC Core
		// §5.3.2): otherwise a token substitution could swap identities.
		if ui.Subject != idt.Subject {
			return nil, errors.New("oidc: userinfo subject differs from the ID token's")
		}
		id.Email, id.EmailVerified = ui.Email, ui.EmailVerified
		if id.Name == "" {
			var extra struct {
				Name string `json:"name"`
			}
			_ = ui.Claims(&extra)
			id.Name = extra.Name
		}
	}
	if id.Subject == "" {
		return nil, errors.New("oidc: no subject")
	}
	return id, nil
}

// checkAudience applies SPEC §18 H8 after the verifier, which only checks
// that the client id is one of the audiences: every audience must be the
// client id or one the provider's trusted_audiences lists, and the
// authorized party (azp), when present — and it must be present when there
// are several audiences — must be the client id. Otherwise a token issued
// to another client that merely names us too (a confused deputy) would sign
// its holder in here.
func (p *Provider) checkAudience(idt *gooidc.IDToken) error {
	client := p.cfg.ClientID
	for _, a := range idt.Audience {
		if a != client && !slices.Contains(p.cfg.TrustedAudiences, a) {
			return fmt.Errorf("oidc: ID token audience %q is neither the client id nor a trusted audience", a)
		}
	}
	var c struct {
		AZP *string `json:"azp"`
	}
	if err := idt.Claims(&c); err != nil {
		return fmt.Errorf("oidc: ID token claims: %w", err)
	}
	switch {
	case c.AZP != nil && *c.AZP != client:
		return fmt.Errorf("oidc: ID token authorized party (azp) %q is not the client id", *c.AZP)
	case c.AZP == nil && len(idt.Audience) > 1:
		return errors.New("oidc: ID token with several audiences has no authorized party (azp)")
	}
	return nil
}

// tenantID reports the shape of a Microsoft tenant id (a GUID).
func tenantID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return false
		}
	}
	return true
}

// truthy reads email_verified, which some providers send as a string.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	}
	return false
}

// githubIdentity reads the user and their emails from GitHub's API; only
// a verified primary email counts.
func githubIdentity(ctx context.Context, client *http.Client, api string, tok *oauth2.Token) (*Identity, error) {
	get := func(path string, v any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Accept", "application/vnd.github+json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("oidc: github %s: %w", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("oidc: github %s: status %d", path, resp.StatusCode)
		}
		return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
	}
	var u struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := get("/user", &u); err != nil {
		return nil, err
	}
	if u.ID == 0 {
		return nil, errors.New("oidc: github user without id")
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := get("/user/emails", &emails); err != nil {
		return nil, err
	}
	id := &Identity{Subject: fmt.Sprint(u.ID), Name: u.Name}
	if id.Name == "" {
		id.Name = u.Login
	}
	for _, e := range emails {
		if e.Primary && e.Verified {
			id.Email, id.EmailVerified = e.Email, true
		}
	}
	return id, nil
}
