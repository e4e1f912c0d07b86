package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
	"gatehouse/internal/token"
)

// The OpenID provider (SPEC §14): the authorization endpoint, the consent
// page, the client grants of the token endpoint, userinfo, RP-initiated
// logout and discovery. The decisions are auth's (internal/auth/oidcop.go).

// pendingTTL is how long a consent or logout confirmation page stays good.
const pendingTTL = 10 * time.Minute

// consentView is the consent page.
type consentView struct {
	ID, ClientName, LogoURL string
	Scopes                  []string // what each scope allows, in words
}

func (s *Server) registerProviderRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /oauth2/authorize", s.handleAuthorize)
	mux.HandleFunc("POST /oauth2/authorize", s.handleAuthorize)
	mux.HandleFunc("POST /oauth2/consent", s.handleConsent)
	mux.HandleFunc("GET /oauth2/userinfo", s.handleUserinfo)
	mux.HandleFunc("POST /oauth2/userinfo", s.handleUserinfo)
	mux.HandleFunc("GET /oauth2/logout", s.handleRPLogout)
	mux.HandleFunc("POST /oauth2/logout", s.handleRPLogout)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleOIDCDiscovery)
}

// authorizeRequest reads an authorization request from the query (GET) or
// the form body (POST).
func authorizeRequest(v url.Values) auth.AuthorizeRequest {
	return auth.AuthorizeRequest{ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), ResponseType: v.Get("response_type"),
		ResponseMode: v.Get("response_mode"), Scope: v.Get("scope"), State: v.Get("state"), Nonce: v.Get("nonce"),
		CodeChallenge: v.Get("code_challenge"), CodeChallengeMethod: v.Get("code_challenge_method"), Prompt: v.Get("prompt"),
		MaxAge: v.Get("max_age"), LoginHint: v.Get("login_hint"), IDTokenHint: v.Get("id_token_hint"), ACRValues: v.Get("acr_values"),
		Request: v.Get("request"), RequestURI: v.Get("request_uri")}
}

// authzParams are the parameters of an authorization request worth
// keeping across the sign-in.
var authzParams = []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "acr_values"}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.authorizePage(w, http.StatusBadRequest, "The request could not be read.")
		return
	}
	v := r.URL.Query()
	if r.Method == http.MethodPost {
		v = r.PostForm
	}
	s.authorize(w, r, v)
}

// authorize answers an authorization request.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, v url.Values) {
	ctx := r.Context()
	a, err := s.auth.CheckAuthorize(ctx, authorizeRequest(v))
	if s.authorizeFailed(w, r, a, err) {
		return
	}
	res, _ := ctx.Value(keyPrincipal).(*authResult)
	var (
		sess *auth.Session
		u    *auth.User
	)
	if res != nil && res.session != nil {
		sess, u = res.session, res.user
	}
	step, err := s.auth.NextStep(ctx, a, sess, u)
	if s.authorizeFailed(w, r, a, err) {
		return
	}
	switch step {
	case auth.StepLogin:
		// Back here after the sign-in, without prompt=login (the new
		// sign-in is what it asked for).
		back := url.Values{}
		for _, k := range authzParams {
			if x := v.Get(k); x != "" && !(k == "prompt" && strings.Contains(x, "login")) {
				back.Set(k, x)
			}
		}
		to := "/login?return_to=" + url.QueryEscape("/oauth2/authorize?"+back.Encode())
		if a.Prompt("login") || sess != nil {
			to += "&prompt=login"
		}
		if h := v.Get("login_hint"); h != "" && len(h) <= 320 {
			to += "&login_hint=" + url.QueryEscape(h)
		}
		seeOther(w, r, to)
	case auth.StepConsent:
		s.showConsent(w, r, a, v, sess, u)
	case auth.StepIssue:
		code, err := s.auth.IssueCode(ctx, a, sess, u)
		if err != nil {
			s.authorizeFailed(w, r, a, err)
			return
		}
		s.authzRedirect(w, r, a, url.Values{"code": {code}})
	}
}

// authorizeFailed answers a refusal (true) or reports that err is nil.
func (s *Server) authorizeFailed(w http.ResponseWriter, r *http.Request, a *auth.Authorization, err error) bool {
	if err == nil {
		return false
	}
	var pe *auth.AuthzPageError
	var ae *auth.AuthzError
	switch {
	case errors.As(err, &pe):
		s.authorizePage(w, http.StatusBadRequest, pe.Message)
	case errors.As(err, &ae) && a != nil && a.RedirectURI != "":
		s.authzRedirect(w, r, a, url.Values{"error": {ae.Code}, "error_description": {ae.Description}})
	case a != nil && a.RedirectURI != "":
		status := s.failure(r.Context(), "authorization endpoint", err, w.Header())
		code := "server_error"
		if status == http.StatusServiceUnavailable {
			code = "temporarily_unavailable"
		}
		s.authzRedirect(w, r, a, url.Values{"error": {code}, "error_description": {"the request could not be completed"}})
	default:
		status, msg := s.pageError(w, r, "authorization endpoint", err)
		s.authorizePage(w, status, msg)
	}
	return true
}

func (s *Server) authorizePage(w http.ResponseWriter, status int, msg string) {
	s.renderPage(w, status, "error", pageData{Title: "Sign-in request refused", Error: msg})
}

// authzRedirect sends the browser back to the client's redirect URI with
// params, the state and the issuer (RFC 9207).
func (s *Server) authzRedirect(w http.ResponseWriter, r *http.Request, a *auth.Authorization, params url.Values) {
	u, err := url.Parse(a.RedirectURI)
	if err != nil {
		s.authorizePage(w, http.StatusBadRequest, "The address the application asked to return to is not valid.")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if a.Req.State != "" {
		q.Set("state", a.Req.State)
	}
	q.Set("iss", s.cfg.PublicURL)
	u.RawQuery, u.Fragment = q.Encode(), ""
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, u.String(), status)
}

// pendingConsent is a consent page's request, kept server-side.
type pendingConsent struct {
	Params    url.Values `json:"p"`
	UserID    string     `json:"u"`
	SessionID string     `json:"s"`
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, a *auth.Authorization, v url.Values, sess *auth.Session, u *auth.User) {
	ctx := r.Context()
	keep := url.Values{}
	for _, k := range authzParams {
		if x := v.Get(k); x != "" {
			keep.Set(k, x)
		}
	}
	id := random256()
	b, _ := json.Marshal(pendingConsent{Params: keep, UserID: u.ID, SessionID: sess.ID})
	if err := s.auth.PutChallenge(ctx, "consent:"+auth.HashToken(id), b, pendingTTL); err != nil {
		s.authorizeFailed(w, r, a, err)
		return
	}
	view := &consentView{ID: id, ClientName: a.Client.Name, LogoURL: a.Client.LogoURL}
	for _, sc := range a.Scopes {
		view.Scopes = append(view.Scopes, s.scopeText(sc))
	}
	d := pageData{Title: "Allow access?", Consent: view, Email: u.Email, FormTarget: originOf(a.RedirectURI)}
	s.renderPage(w, http.StatusOK, "consent", d)
}

// scopeText says what a scope allows.
func (s *Server) scopeText(sc string) string {
	switch sc {
	case "openid":
		return "Know who you are (your account id)"
	case "profile":
		return "See your name"
	case "email":
		return "See your email address"
	case "offline_access":
		return "Stay signed in when you are away (a refresh token)"
	}
	if d := s.cfg.Scopes[sc]; d != "" {
		return d + " (" + sc + ")"
	}
	return sc
}

// originOf is scheme://host of an http(s) URL ("" otherwise).
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// handleConsent is the consent page's form: same-origin only (CSRF), for
// the session that was asked.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	if !s.formPost(w, r, "error", pageData{Title: "Allow access?"}) {
		return
	}
	ctx := r.Context()
	b, err := s.auth.TakeChallenge(ctx, "consent:"+auth.HashToken(r.PostForm.Get("consent_id")))
	var p pendingConsent
	if err != nil || json.Unmarshal(b, &p) != nil {
		s.authorizePage(w, http.StatusBadRequest, "This page expired. Go back to the application and start again.")
		return
	}
	res, _ := ctx.Value(keyPrincipal).(*authResult)
	if res == nil || res.session == nil || res.session.ID != p.SessionID || res.user == nil || res.user.ID != p.UserID {
		s.authorizePage(w, http.StatusBadRequest, "You are no longer signed in as the account that was asked. Go back to the application and start again.")
		return
	}
	a, err := s.auth.CheckAuthorize(ctx, authorizeRequest(p.Params))
	if s.authorizeFailed(w, r, a, err) {
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		s.auth.DenyAuthorization(ctx, a, res.user, meta(ctx))
		s.authzRedirect(w, r, a, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
		return
	}
	if err := s.auth.GrantConsent(ctx, a, res.user, meta(ctx)); err != nil {
		s.authorizeFailed(w, r, a, err)
		return
	}
	code, err := s.auth.IssueCode(ctx, a, res.session, res.user)
	if s.authorizeFailed(w, r, a, err) {
		return
	}
	s.authzRedirect(w, r, a, url.Values{"code": {code}})
}

// ---------------------------------------------------------------------------
// Token endpoint: client authentication and the client grants.

// tokenClient authenticates the client of a token request:
// client_secret_basic, client_secret_post, or a public client by its id
// alone. ok false means the answer (401 invalid_client) is written.
func (s *Server) tokenClient(w http.ResponseWriter, r *http.Request, form url.Values) (*auth.Client, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if body := form.Get("client_id"); body != "" && body != id {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "client_id in the body differs from the authenticated client")
			return nil, false
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	fail := func() (*auth.Client, bool) {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return nil, false
	}
	if id == "" || len(id) > 256 {
		return fail()
	}
	ctx := r.Context()
	if secret != "" {
		c, err := s.auth.AuthenticateClient(ctx, id, secret)
		if err != nil {
			if auth.ErrorCode(err) == auth.EUNAUTHORIZED {
				return fail()
			}
			s.oauthDomainError(w, r, err, "client authentication failed")
			return nil, false
		}
		return c, true
	}
	c, err := s.auth.ClientByID(ctx, id)
	if err != nil {
		if auth.ErrorCode(err) == auth.ENOTFOUND {
			return fail()
		}
		s.oauthDomainError(w, r, err, "client authentication failed")
		return nil, false
	}
	if c.Type != auth.ClientPublic {
		return fail()
	}
	return c, true
}

// registeredClient reports whether a token request names a registered
// client (by HTTP Basic or client_id): such requests are the client
// grants, with client authentication.
func (s *Server) registeredClient(r *http.Request, form url.Values) bool {
	id := clientID(r, form)
	if id == "" {
		return false
	}
	_, err := s.auth.ClientByID(r.Context(), id)
	return err == nil
}

type clientTokenJSON struct {
	tokenJSON
	IDToken string `json:"id_token,omitempty"`
}

func writeClientTokens(w http.ResponseWriter, t *auth.ClientTokens) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, clientTokenJSON{tokenJSON: tokenJSON{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn,
		RefreshToken: t.RefreshToken, Scope: strings.Join(t.Scope, " ")}, IDToken: t.IDToken})
}

// clientGrant answers the grants of registered clients; false when the
// request is not one.
func (s *Server) clientGrant(w http.ResponseWriter, r *http.Request, form url.Values, m auth.Meta) bool {
	gt := form.Get("grant_type")
	switch {
	case gt == auth.GrantAuthorizationCode, gt == auth.GrantClientCredentials:
	case gt == auth.GrantRefreshToken && s.registeredClient(r, form):
	default:
		return false
	}
	c, ok := s.tokenClient(w, r, form)
	if !ok {
		return true
	}
	ctx := r.Context()
	switch gt {
	case auth.GrantAuthorizationCode:
		if !slices.Contains(c.GrantTypes, auth.GrantAuthorizationCode) {
			writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "this client may not use the authorization code grant")
			return true
		}
		if form.Get("code") == "" || form.Get("redirect_uri") == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code and redirect_uri are required")
			return true
		}
		t, err := s.auth.ExchangeCode(ctx, c, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"), m)
		if err != nil {
			s.oauthDomainError(w, r, err, "invalid, expired or used authorization code")
			return true
		}
		writeClientTokens(w, t)
	case auth.GrantClientCredentials:
		t, err := s.auth.ClientCredentials(ctx, c, form.Get("scope"))
		if err != nil {
			var de *auth.Error
			if errors.As(err, &de) && de.Reason == "unauthorized_client" {
				writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", de.Message)
				return true
			}
			s.oauthDomainError(w, r, err, "client credentials refused")
			return true
		}
		writeTokenResponse(w, t)
	case auth.GrantRefreshToken:
		if form.Get("refresh_token") == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
			return true
		}
		t, err := s.auth.RefreshGrantFor(ctx, c, form.Get("refresh_token"), form.Get("scope"), m)
		if err != nil {
			var de *auth.Error
			if errors.As(err, &de) && de.Reason == "unauthorized_client" {
				writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", de.Message)
				return true
			}
			s.oauthDomainError(w, r, err, "invalid refresh token")
			return true
		}
		writeClientTokens(w, t)
	}
	return true
}

// ---------------------------------------------------------------------------
// Userinfo (OIDC Core §5.3).

func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("access_token") {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the access token is never accepted in the query string")
		return
	}
	tok, ok := bearerToken(r)
	if !ok && r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			if err := r.ParseForm(); err == nil {
				tok = r.PostForm.Get("access_token")
			}
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "an access token is required")
		return
	}
	c, err := s.verifyAccess(tok)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid or expired")
		return
	}
	claims, err := s.auth.Userinfo(r.Context(), c)
	if err != nil {
		switch auth.ErrorCode(err) {
		case auth.EFORBIDDEN:
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="insufficient_scope", scope="openid"`)
			writeOAuthError(w, http.StatusForbidden, "insufficient_scope", "userinfo needs the scope openid")
		case auth.EUNAUTHORIZED:
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "the token's account no longer exists or is disabled")
		default:
			s.oauthDomainError(w, r, err, "userinfo failed")
		}
		return
	}
	writeJSON(w, http.StatusOK, claims)
}

// ---------------------------------------------------------------------------
// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

type pendingLogout struct {
	ClientID string `json:"c"`
	Redirect string `json:"r"`
	State    string `json:"st"`
	Session  string `json:"s"`
}

func (s *Server) handleRPLogout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.authorizePage(w, http.StatusBadRequest, "The request could not be read.")
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodPost && r.PostForm.Has("logout_id") {
		s.confirmRPLogout(w, r)
		return
	}
	v := r.URL.Query()
	if r.Method == http.MethodPost {
		v = r.PostForm
	}
	clientID := v.Get("client_id")
	var hint *auth.IDClaims
	if h := v.Get("id_token_hint"); h != "" {
		c, err := s.auth.ParseIDTokenHint(h)
		if err != nil {
			s.authorizePage(w, http.StatusBadRequest, "The sign-out request carries an ID token this server did not issue.")
			return
		}
		if clientID != "" && clientID != c.Audience {
			s.authorizePage(w, http.StatusBadRequest, "The sign-out request names two different applications.")
			return
		}
		hint, clientID = c, c.Audience
	}
	redirect := v.Get("post_logout_redirect_uri")
	var client *auth.Client
	if clientID != "" {
		c, err := s.auth.ClientByID(ctx, clientID)
		if err != nil {
			s.authorizePage(w, http.StatusBadRequest, "The application that asked to sign you out is not registered with this server.")
			return
		}
		client = c
	}
	if redirect != "" && (client == nil || !slices.Contains(client.PostLogoutRedirectURIs, redirect)) {
		s.authorizePage(w, http.StatusBadRequest, "The address the application asked to return to after signing out is not registered for it.")
		return
	}
	sess := currentSession(ctx)
	res, _ := ctx.Value(keyPrincipal).(*authResult)
	if hint != nil && (sess == nil || (res != nil && res.user != nil && res.user.ID == hint.Subject)) {
		// A valid hint for the signed-in user (or no session): no page.
		s.finishRPLogout(w, r, sess, clientID, redirect, v.Get("state"))
		return
	}
	// Without a valid hint, ask first: a link must not sign anyone out.
	id := random256()
	sid := ""
	if sess != nil {
		sid = sess.ID
	}
	b, _ := json.Marshal(pendingLogout{ClientID: clientID, Redirect: redirect, State: v.Get("state"), Session: sid})
	if err := s.auth.PutChallenge(ctx, "rplogout:"+auth.HashToken(id), b, pendingTTL); err != nil {
		status, msg := s.pageError(w, r, "rp logout", err)
		s.authorizePage(w, status, msg)
		return
	}
	d := pageData{Title: "Sign out?", Token: id, FormTarget: originOf(redirect)}
	if client != nil {
		d.Name = client.Name
	}
	if res != nil && res.user != nil {
		d.Email = res.user.Email
	}
	s.renderPage(w, http.StatusOK, "rplogout", d)
}

func (s *Server) confirmRPLogout(w http.ResponseWriter, r *http.Request) {
	if !s.formPost(w, r, "error", pageData{Title: "Sign out?"}) {
		return
	}
	ctx := r.Context()
	b, err := s.auth.TakeChallenge(ctx, "rplogout:"+auth.HashToken(r.PostForm.Get("logout_id")))
	var p pendingLogout
	if err != nil || json.Unmarshal(b, &p) != nil {
		s.authorizePage(w, http.StatusBadRequest, "This page expired. Sign out again from the application.")
		return
	}
	sess := currentSession(ctx)
	if r.PostForm.Get("decision") != "logout" {
		seeOther(w, r, "/account")
		return
	}
	if sess != nil && sess.ID != p.Session {
		sess = nil // another session than the one asked: it stays
	}
	s.finishRPLogout(w, r, sess, p.ClientID, p.Redirect, p.State)
}

func (s *Server) finishRPLogout(w http.ResponseWriter, r *http.Request, sess *auth.Session, clientID, redirect, state string) {
	ctx := r.Context()
	if err := s.auth.LogoutRP(ctx, sess, clientID, meta(ctx)); err != nil {
		status, msg := s.pageError(w, r, "rp logout", err)
		s.authorizePage(w, status, msg)
		return
	}
	c := s.clearedSessionCookie()
	http.SetCookie(w, &c)
	if redirect == "" {
		seeOther(w, r, "/login?done=signed-out")
		return
	}
	u, _ := url.Parse(redirect)
	if state != "" {
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
	}
	seeOther(w, r, u.String())
}

// ---------------------------------------------------------------------------
// Discovery (OIDC Discovery 1.0 §3; RFC 8414 lists the same).

func (s *Server) providerMetadata() map[string]any {
	base := s.cfg.PublicURL
	grants := []string{"authorization_code", "refresh_token", "client_credentials", auth.GrantTypeMFA}
	if s.cfg.PasswordGrant {
		grants = append([]string{"password"}, grants...)
	}
	scopes := auth.OIDCScopes()
	for _, sc := range s.auth.Roles().Scopes() {
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	algs := token.IDTokenAlgorithms
	return map[string]any{
		"issuer":                                         base,
		"authorization_endpoint":                         base + "/oauth2/authorize",
		"token_endpoint":                                 base + "/oauth2/token",
		"userinfo_endpoint":                              base + "/oauth2/userinfo",
		"end_session_endpoint":                           base + "/oauth2/logout",
		"jwks_uri":                                       base + "/.well-known/jwks.json",
		"revocation_endpoint":                            base + "/oauth2/revoke",
		"introspection_endpoint":                         base + "/oauth2/introspect",
		"scopes_supported":                               scopes,
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          grants,
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          algs,
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":     []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic", "client_secret_post", "bearer"},
		"code_challenge_methods_supported":               []string{"S256"},
		"claims_supported":                               []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash", "name", "updated_at", "email", "email_verified"},
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"acr_values_supported":                           []string{auth.ACR1, auth.ACR2},
		"claims_parameter_supported":                     false,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"authorization_response_iss_parameter_supported": true,
		"service_documentation":                          base + "/docs",
	}
}

func (s *Server) handleOIDCDiscovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.providerMetadata())
}

// ---------------------------------------------------------------------------
// The user's grants: GET/DELETE /v1/me/consents.

// ConsentBody is a grant of the user's to a client.
type ConsentBody struct {
	ClientID   string     `json:"client_id"`
	ClientName string     `json:"client_name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

type consentsOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Consents []ConsentBody `json:"consents"`
	}
}

type consentIDInput struct {
	ClientID string `path:"client_id" maxLength:"256"`
}

func (s *Server) registerConsentRoutes(api huma.API) {
	tags := []string{"oauth2"}
	register(s, api, huma.Operation{
		OperationID: "list-consents", Method: http.MethodGet, Path: "/v1/me/consents", Tags: tags,
		Summary: "The applications you granted access", Security: secRead, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*consentsOutput, error) {
		p, err := require(ctx, "read")
		if err != nil {
			return nil, err
		}
		list, err := s.auth.Consents(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		out := &consentsOutput{CacheControl: "no-store"}
		out.Body.Consents = make([]ConsentBody, 0, len(list))
		for _, c := range list {
			out.Body.Consents = append(out.Body.Consents, ConsentBody{ClientID: c.ClientID, ClientName: c.ClientName, Scopes: nonNil(c.Scopes),
				CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, ExpiresAt: c.ExpiresAt})
		}
		return out, nil
	})
	register(s, api, huma.Operation{
		OperationID: "revoke-consent", Method: http.MethodDelete, Path: "/v1/me/consents/{client_id}", Tags: tags,
		Summary: "Take back an application's access", Description: "Also ends that application's refresh tokens of yours.",
		Security: secWrite, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *consentIDInput) (*struct{}, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		return nil, s.auth.RevokeConsent(ctx, p.UserID, in.ClientID, meta(ctx))
	})
}
