package server

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"gatehouse/internal/auth"
)

// oauthForm parses an application/x-www-form-urlencoded body (RFC 6749
// §4.3.2). Credentials in the query string are refused, never read, and a
// repeated parameter is a malformed request (RFC 6749 §3.2).
func oauthForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		// SPEC §12: 415 for a wrong content type, in RFC 6749's error format.
		writeOAuthError(w, http.StatusUnsupportedMediaType, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return nil, false
	}
	if r.URL.RawQuery != "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "parameters are accepted only in the request body, never in the query string")
		return nil, false
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body is not a valid form")
		return nil, false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "parameter "+k+" is repeated")
			return nil, false
		}
	}
	return r.PostForm, true
}

// clientID takes the client id from HTTP Basic or the body. Gatehouse's
// first-party clients are public (no secret); an empty Basic header, as
// Swagger UI sends, is not an error.
func clientID(r *http.Request, form url.Values) string {
	if id, _, ok := r.BasicAuth(); ok && id != "" {
		if u, err := url.QueryUnescape(id); err == nil {
			return u
		}
	}
	return form.Get("client_id")
}

type tokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// writeTokenResponse writes a successful token response (RFC 6749 §5.1).
func writeTokenResponse(w http.ResponseWriter, t *auth.TokenResponse) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, tokenJSON{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn,
		RefreshToken: t.RefreshToken, Scope: strings.Join(t.Scope, " ")})
}

// oauthDomainError maps a domain error to RFC 6749 §5.2.
func (s *Server) oauthDomainError(w http.ResponseWriter, r *http.Request, err error, grantDesc string) {
	var mr *auth.MFARequired
	if errors.As(err, &mr) {
		writeMFAChallenge(w, http.StatusForbidden, map[string]any{"error": "mfa_required", "error_description": "second factor required"}, mr)
		return
	}
	var de *auth.Error
	if !errors.As(err, &de) {
		if s.failure(r.Context(), "token endpoint", err, w.Header()) == http.StatusServiceUnavailable {
			writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", msgUnavailable)
			return
		}
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	switch {
	case de == auth.ErrMFAChallenge:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", de.Message)
	case de.Reason == auth.ReasonMFAInvalidCode || de.Reason == auth.ReasonMFACodeReused:
		writeOAuthErrorWith(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "invalid code",
			"code": de.Reason, "attempts_remaining": de.AttemptsRemaining})
	case de == auth.ErrInvalidScope || de.Field == "scope":
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", de.Message)
	case de.Code == auth.EUNAUTHORIZED || de.Code == auth.ENOTFOUND:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", grantDesc)
	case de.Code == auth.EFORBIDDEN:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", de.Message)
	case de.Code == auth.ETOOMANY:
		retryAfter(w.Header(), de.RetryAfter)
		writeOAuthError(w, http.StatusTooManyRequests, "slow_down", de.Message)
	case de.Code == auth.EUNAVAILABLE:
		retryAfter(w.Header(), de.RetryAfter)
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", de.Message)
	case de.Code == auth.EINVALID:
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", de.Message)
	default:
		s.log.ErrorContext(r.Context(), "token endpoint", "err", err, "request_id", requestID(r.Context()))
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "internal error")
	}
}

// handleToken is POST /oauth2/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, ok := oauthForm(w, r)
	if !ok {
		return
	}
	m := auth.Meta{IP: clientIP(r.Context()), UserAgent: r.UserAgent()}
	if s.clientGrant(w, r, form, m) {
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
	case "password":
		if !s.cfg.PasswordGrant {
			writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "the password grant is disabled on this server")
			return
		}
		user, pw := form.Get("username"), form.Get("password")
		if user == "" || pw == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "username and password are required")
			return
		}
		if s.registeredClient(r, form) {
			// A registered client authenticates, and only a first-party
			// one may take a password (OAuth 2.1 drops the grant for
			// everyone else).
			c, ok := s.tokenClient(w, r, form)
			if !ok {
				return
			}
			if !c.FirstParty {
				writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "the password grant is for first-party clients only: use the authorization code flow")
				return
			}
		}
		t, err := s.auth.PasswordGrant(r.Context(), user, pw, form.Get("scope"), clientID(r, form), m)
		if err != nil {
			s.oauthDomainError(w, r, err, "invalid credentials")
			return
		}
		writeTokenResponse(w, t)
	case "refresh_token":
		rt := form.Get("refresh_token")
		if rt == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
			return
		}
		t, err := s.auth.RefreshGrant(r.Context(), rt, form.Get("scope"), m)
		if err != nil {
			s.oauthDomainError(w, r, err, "invalid refresh token")
			return
		}
		writeTokenResponse(w, t)
	case auth.GrantTypeMFA:
		tok := form.Get("mfa_token")
		if tok == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "mfa_token is required")
			return
		}
		f := auth.SecondFactor{Code: form.Get("otp"), RecoveryCode: form.Get("recovery_code"), Finish: auth.FinishTokens}
		if f.Code == "" && f.RecoveryCode == "" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "otp or recovery_code is required")
			return
		}
		c, err := s.auth.VerifyMFA(r.Context(), tok, f, m)
		if err != nil {
			s.oauthDomainError(w, r, err, "invalid or expired MFA challenge")
			return
		}
		writeTokenResponse(w, c.Tokens)
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "supported grant types: password, refresh_token, authorization_code, client_credentials, "+auth.GrantTypeMFA)
	}
}

// writeMFAChallenge answers a sign-in whose second factor is awaited: body
// plus the challenge (SPEC §13), never cached.
func writeMFAChallenge(w http.ResponseWriter, status int, body map[string]any, mr *auth.MFARequired) {
	body["mfa_token"] = mr.Token
	body["mfa_methods"] = mr.Methods
	body["expires_in"] = mr.ExpiresIn
	body["code"] = mr.Reason()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeOAuthErrorWith writes an RFC 6749 §5.2 error with extra members.
func writeOAuthErrorWith(w http.ResponseWriter, status int, body map[string]any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// handleRevoke is POST /oauth2/revoke (RFC 7009): always 200 for a
// well-formed request, whether or not the token existed.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, ok := oauthForm(w, r)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	m := auth.Meta{IP: clientIP(r.Context()), UserAgent: r.UserAgent()}
	if s.registeredClient(r, form) {
		// A registered client authenticates and revokes its own tokens only.
		c, ok := s.tokenClient(w, r, form)
		if !ok {
			return
		}
		if err := s.auth.RevokeRefreshFor(r.Context(), c, tok, m); err != nil {
			s.oauthDomainError(w, r, err, "invalid token")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	// Access tokens are self-contained JWTs that expire on their own; only
	// refresh tokens (and their families) are revocable here.
	if err := s.auth.RevokeRefresh(r.Context(), tok, m); err != nil {
		s.oauthDomainError(w, r, err, "invalid token")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// handleIntrospect is POST /oauth2/introspect (RFC 7662), for credentials
// with scope admin or introspect (typically a resource server's API key).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	res, _ := r.Context().Value(keyPrincipal).(*authResult)
	if _, _, basic := r.BasicAuth(); basic || res == nil {
		// No bearer, API key or session: a registered client introspects
		// its own tokens (client authentication in the body or Basic).
		s.introspectAsClient(w, r)
		return
	}
	if res == nil || res.p == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		if res != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "introspection requires an admin token or an API key with scope introspect")
		return
	}
	if err := s.auth.AuthorizeIntrospection(r.Context(), res.p); err != nil {
		switch auth.ErrorCode(err) {
		case auth.EFORBIDDEN:
			writeOAuthError(w, http.StatusForbidden, "insufficient_scope", auth.ErrorMessage(err))
		case auth.EUNAUTHORIZED:
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "the credential's account no longer exists or is disabled")
		default:
			s.oauthDomainError(w, r, err, "introspection failed")
		}
		return
	}
	form, ok := oauthForm(w, r)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	out, err := s.introspect(r.Context(), tok)
	if err != nil {
		s.oauthDomainError(w, r, err, "introspection failed")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// introspect describes tok (RFC 7662 §2.2): an API key, a session cookie
// value, an access token or a refresh token. What is active, and with
// which scope, is auth's decision.
func (s *Server) introspect(ctx context.Context, tok string) (map[string]any, error) {
	var (
		in  *auth.Introspection
		err error
	)
	switch {
	case auth.IsAPIKey(tok):
		in, err = s.auth.IntrospectAPIKey(ctx, tok)
	case !strings.Contains(tok, ".") && !strings.HasPrefix(tok, "ghr_"):
		in, err = s.auth.IntrospectSession(ctx, tok)
	default:
		// The token's own validity, not the revocation feed's: SPEC §15
		// has /v1 and userinfo refuse revoked access tokens, and
		// introspection keeps answering for the token as issued (see
		// DECISIONS.md, "Revocation feed").
		if c, verr := s.keys.Verify(tok); verr == nil {
			in, err = s.auth.IntrospectAccessToken(ctx, c)
		} else {
			in, err = s.auth.IntrospectRefreshToken(ctx, tok)
		}
	}
	if err != nil || in == nil {
		return map[string]any{"active": false}, err
	}
	out := map[string]any{"active": true, "token_type": in.TokenType, "sub": in.User.ID, "scope": strings.Join(in.Scope, " "),
		"iat": in.IssuedAt.Unix(), "username": in.User.Email, "roles": nonNil(in.User.Roles), "iss": s.cfg.PublicURL}
	if !in.ExpiresAt.IsZero() {
		out["exp"] = in.ExpiresAt.Unix()
	}
	if in.TokenType == auth.KindAccessToken || in.TokenType == auth.KindRefreshToken {
		out["client_id"] = in.ClientID
	}
	// SPEC §13: how the user signed in (RFC 9068 §2.2.1 names).
	if in.ACR != "" {
		out["acr"] = in.ACR
	}
	if len(in.AMR) > 0 {
		out["amr"] = in.AMR
	}
	if !in.AuthTime.IsZero() {
		out["auth_time"] = in.AuthTime.Unix()
	}
	return out, nil
}

// handleMetadata is GET /.well-known/oauth-authorization-server (RFC
// 8414): the same metadata as the OpenID discovery document.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.providerMetadata())
}

// handleJWKS is GET /.well-known/jwks.json.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(s.keys.JWKS())
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// introspectAsClient is POST /oauth2/introspect with client
// authentication: the answer describes only the client's own tokens;
// every other token is {"active": false}.
func (s *Server) introspectAsClient(w http.ResponseWriter, r *http.Request) {
	form, ok := oauthForm(w, r)
	if !ok {
		return
	}
	c, ok := s.tokenClient(w, r, form)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	out := map[string]any{"active": false}
	if !auth.IsAPIKey(tok) && strings.Contains(tok, ".") || strings.HasPrefix(tok, "ghr_") {
		in, err := s.introspect(r.Context(), tok)
		if err != nil {
			s.oauthDomainError(w, r, err, "introspection failed")
			return
		}
		if in["active"] == true && in["client_id"] == c.ID {
			out = in
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}
