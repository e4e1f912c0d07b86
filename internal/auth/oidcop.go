package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The OpenID provider's decisions (SPEC §14): what an authorization request
// may get, consent, authorization codes and their exchange, ID tokens,
// client credentials and userinfo. HTTP lives in internal/server; this file
// says yes or no and makes the tokens.

// OIDC scopes: granted by the user's consent, never by roles.
var oidcScopes = []string{"openid", "profile", "email", "offline_access"}

// IsOIDCScope reports a scope of OpenID Connect itself.
func IsOIDCScope(s string) bool { return slices.Contains(oidcScopes, s) }

// OIDCScopes lists the OpenID Connect scopes.
func OIDCScopes() []string { return slices.Clone(oidcScopes) }

// AuthzError is a refusal of an authorization request that may be sent to
// the client's redirect_uri (RFC 6749 §4.1.2.1).
type AuthzError struct {
	Code        string // RFC 6749 / OIDC error code
	Description string
}

func (e *AuthzError) Error() string { return e.Code + ": " + e.Description }

func authzErr(code, desc string) *AuthzError { return &AuthzError{Code: code, Description: desc} }

// AuthzPageError is a refusal that must not redirect: an unknown client or
// a redirect_uri that is not registered (RFC 6749 §4.1.2.1).
type AuthzPageError struct{ Message string }

func (e *AuthzPageError) Error() string { return e.Message }

// AuthorizeRequest is an authorization request (RFC 6749 §4.1.1, OIDC
// Core §3.1.2.1), as sent.
type AuthorizeRequest struct {
	ClientID, RedirectURI, ResponseType, ResponseMode, Scope, State, Nonce string
	CodeChallenge, CodeChallengeMethod                                     string
	Prompt, MaxAge, LoginHint, IDTokenHint, ACRValues                      string
	Request, RequestURI                                                    string
}

// Authorization is a checked authorization request: the client, the
// redirect URI to answer at, and the scopes asked for.
type Authorization struct {
	Client      *Client
	RedirectURI string
	Scopes      []string
	Req         AuthorizeRequest
	prompts     []string
	maxAge      int // -1: none
}

// Prompt reports whether prompt holds p.
func (a *Authorization) Prompt(p string) bool { return slices.Contains(a.prompts, p) }

// CheckAuthorize validates an authorization request. An unknown client or
// an unregistered redirect URI is *AuthzPageError (an error page, never a
// redirect); every other refusal is *AuthzError for the redirect, with the
// checked Authorization so the caller knows where to send it.
func (s *Service) CheckAuthorize(ctx context.Context, req AuthorizeRequest) (*Authorization, error) {
	if req.ClientID == "" {
		return nil, &AuthzPageError{Message: "The request names no client (client_id is missing)."}
	}
	c, err := s.st.Clients.ClientByID(ctx, req.ClientID)
	if errors.Is(err, ErrNotFound) {
		return nil, &AuthzPageError{Message: "The application that sent you here is not registered with this server."}
	}
	if err != nil {
		return nil, err
	}
	a := &Authorization{Client: c, Req: req, maxAge: -1}
	switch {
	case req.RedirectURI != "":
		if !RedirectURIMatches(c, req.RedirectURI) {
			return nil, &AuthzPageError{Message: "The address the application asked to return to is not registered for it."}
		}
		a.RedirectURI = req.RedirectURI
	case len(c.RedirectURIs) == 1:
		a.RedirectURI = c.RedirectURIs[0]
	default:
		return nil, &AuthzPageError{Message: "The application must say where to return (redirect_uri): it has several."}
	}
	// From here on, refusals go back to the client.
	switch {
	case req.Request != "":
		return a, authzErr("request_not_supported", "request objects are not supported")
	case req.RequestURI != "":
		return a, authzErr("request_uri_not_supported", "request_uri is not supported")
	case req.ResponseType == "":
		return a, authzErr("invalid_request", "response_type is required (code)")
	case req.ResponseType != "code":
		return a, authzErr("unsupported_response_type", "only response_type=code is supported")
	case req.ResponseMode != "" && req.ResponseMode != "query":
		return a, authzErr("invalid_request", "only response_mode=query is supported")
	case !slices.Contains(c.GrantTypes, GrantAuthorizationCode):
		return a, authzErr("unauthorized_client", "this client may not use the authorization code grant")
	}
	switch {
	case req.CodeChallengeMethod != "" && req.CodeChallengeMethod != "S256":
		return a, authzErr("invalid_request", "code_challenge_method must be S256")
	case req.CodeChallenge != "" && req.CodeChallengeMethod == "":
		return a, authzErr("invalid_request", "code_challenge_method must be S256")
	case req.CodeChallenge == "" && (c.RequirePKCE || c.Type == ClientPublic):
		return a, authzErr("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
	case req.CodeChallenge != "" && (len(req.CodeChallenge) < 43 || len(req.CodeChallenge) > 128):
		return a, authzErr("invalid_request", "code_challenge must be 43 to 128 characters")
	}
	for _, p := range strings.Fields(req.Prompt) {
		switch p {
		case "none", "login", "consent", "select_account":
			a.prompts = append(a.prompts, p)
		default:
			return a, authzErr("invalid_request", "unsupported prompt value "+p)
		}
	}
	if a.Prompt("none") && len(a.prompts) > 1 {
		return a, authzErr("invalid_request", "prompt=none cannot be combined with other values")
	}
	if req.MaxAge != "" {
		n, err := strconv.Atoi(req.MaxAge)
		if err != nil || n < 0 {
			return a, authzErr("invalid_request", "max_age must be a non-negative integer")
		}
		a.maxAge = n
	}
	// Scopes the client is not registered for are dropped, as OIDC Core
	// §3.1.2.1 asks of unknown ones (relying parties often ask for phone
	// or address by default); nothing left is invalid_scope.
	for _, sc := range ParseScope(req.Scope) {
		if slices.Contains(c.Scopes, sc) && !slices.Contains(a.Scopes, sc) {
			a.Scopes = append(a.Scopes, sc)
		}
	}
	if len(a.Scopes) == 0 {
		return a, authzErr("invalid_scope", "none of the requested scopes is allowed for this client")
	}
	return a, nil
}

// AuthorizeStep is what the authorization endpoint must do next.
type AuthorizeStep int

const (
	StepLogin   AuthorizeStep = iota + 1 // send the browser to /login, then back
	StepConsent                          // show the consent page
	StepIssue                            // issue the code
)

// NextStep decides, for a checked request and the browser's session (nil:
// none) and its account, whether to sign in, ask consent or issue. With
// prompt=none, what would need a page is an *AuthzError instead.
func (s *Service) NextStep(ctx context.Context, a *Authorization, sess *Session, u *User) (AuthorizeStep, error) {
	none := a.Prompt("none")
	needLogin := sess == nil || u == nil || a.Prompt("login")
	if !needLogin && a.maxAge >= 0 {
		at := sess.AuthTime
		if at.IsZero() {
			at = sess.CreatedAt
		}
		// Clamped: a huge max_age must not overflow into "always too old".
		limit := time.Duration(min(int64(a.maxAge), int64(math.MaxInt64/time.Second))) * time.Second
		needLogin = s.now().Sub(at) > limit
	}
	if needLogin {
		if none {
			return 0, authzErr("login_required", "the user is not signed in")
		}
		return StepLogin, nil
	}
	if slices.Contains(strings.Fields(a.Req.ACRValues), ACR2) && sess.ACR != ACR2 {
		t, err := s.confirmedTOTP(ctx, u.ID)
		if err != nil {
			return 0, err
		}
		if t != nil {
			if none {
				return 0, authzErr("interaction_required", "a second factor is needed")
			}
			return StepLogin, nil
		}
	}
	if a.Client.FirstParty && !a.Prompt("consent") {
		return StepIssue, nil
	}
	if !a.Prompt("consent") {
		c, err := s.st.Consents.Consent(ctx, u.ID, a.Client.ID)
		switch {
		case err == nil && (c.ExpiresAt == nil || s.now().Before(*c.ExpiresAt)) && subset(a.Scopes, c.Scopes):
			return StepIssue, nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return 0, err
		}
	}
	if none {
		return 0, authzErr("consent_required", "the user has not granted these scopes to this client")
	}
	return StepConsent, nil
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// GrantConsent remembers that u granted a's scopes to its client (added
// to what was granted before).
func (s *Service) GrantConsent(ctx context.Context, a *Authorization, u *User, m Meta) error {
	now := s.now()
	scopes := slices.Clone(a.Scopes)
	created := now
	if old, err := s.st.Consents.Consent(ctx, u.ID, a.Client.ID); err == nil {
		created = old.CreatedAt
		if old.ExpiresAt == nil || now.Before(*old.ExpiresAt) {
			for _, sc := range old.Scopes {
				if !slices.Contains(scopes, sc) {
					scopes = append(scopes, sc)
				}
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	slices.Sort(scopes)
	c := &Consent{UserID: u.ID, ClientID: a.Client.ID, Scopes: scopes, CreatedAt: created, UpdatedAt: now}
	if s.cfg.ConsentTTL > 0 {
		exp := now.Add(s.cfg.ConsentTTL)
		c.ExpiresAt = &exp
	}
	if err := s.st.Consents.PutConsent(ctx, c); err != nil {
		return err
	}
	s.audit(ctx, EventConsentGranted, u.ID, m, map[string]any{"client_id": a.Client.ID, "scopes": a.Scopes})
	return nil
}

// DenyAuthorization audits a refused consent.
func (s *Service) DenyAuthorization(ctx context.Context, a *Authorization, u *User, m Meta) {
	s.audit(ctx, EventAuthorizeDenied, u.ID, m, map[string]any{"client_id": a.Client.ID})
}

// IssueCode makes the authorization code for a's client and the signed-in
// session.
func (s *Service) IssueCode(ctx context.Context, a *Authorization, sess *Session, u *User) (string, error) {
	scopes := s.grantable(a.Client, u, a.Scopes)
	now := s.now()
	code := newSessionToken() // 256 random bits, like every opaque token
	at := sess.AuthTime
	if at.IsZero() {
		at = sess.CreatedAt
	}
	acr := sess.ACR
	if acr == "" {
		acr = ACR1
	}
	c := &AuthCode{Hash: HashToken(code), ClientID: a.Client.ID, UserID: u.ID, RedirectURI: a.RedirectURI,
		Scope: strings.Join(scopes, " "), Nonce: a.Req.Nonce, CodeChallenge: a.Req.CodeChallenge, SessionID: sess.ID,
		ACR: acr, AMR: sess.AMR, AuthTime: at, CreatedAt: now, ExpiresAt: now.Add(s.cfg.AuthCodeTTL)}
	if err := s.st.AuthCodes.CreateAuthCode(ctx, c); err != nil {
		return "", err
	}
	return code, nil
}

// grantable narrows scopes to what the client may have and u's roles
// allow: OIDC scopes pass, API scopes only when the roles allow them.
func (s *Service) grantable(c *Client, u *User, scopes []string) []string {
	allowed := s.allowedScopes(u.Roles)
	out := []string{}
	for _, sc := range scopes {
		if !slices.Contains(c.Scopes, sc) || slices.Contains(out, sc) {
			continue
		}
		if IsOIDCScope(sc) || slices.Contains(allowed, sc) {
			out = append(out, sc)
		}
	}
	slices.Sort(out)
	return out
}

// ClientTokens is the token response of a client grant.
type ClientTokens struct {
	TokenResponse
	IDToken string
}

// ErrInvalidGrant is the one answer for a bad code or refresh token.
var ErrInvalidGrant = &Error{Code: EUNAUTHORIZED, Message: "invalid grant"}

// ExchangeCode redeems an authorization code for client c (already
// authenticated, or public): redirect_uri must equal the authorized one,
// the PKCE verifier must match. A second presentation revokes the refresh
// family the first one made (RFC 6749 §4.1.2).
func (s *Service) ExchangeCode(ctx context.Context, c *Client, code, redirectURI, verifier string, m Meta) (*ClientTokens, error) {
	if code == "" || len(code) > 256 {
		return nil, ErrInvalidGrant
	}
	hash := HashToken(code)
	ac, err := s.st.AuthCodes.AuthCodeByHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidGrant
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	// Another client's code is refused before anything else: it neither
	// spends the code nor, once used, revokes its owner's tokens.
	if ac.ClientID != c.ID {
		return nil, ErrInvalidGrant
	}
	if ac.UsedAt != nil {
		return nil, s.codeReused(ctx, ac, m)
	}
	if ac.RedirectURI != redirectURI || !now.Before(ac.ExpiresAt) {
		return nil, ErrInvalidGrant
	}
	if ac.CodeChallenge != "" || verifier != "" {
		sum := sha256.Sum256([]byte(verifier))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if verifier == "" || subtle.ConstantTimeCompare([]byte(want), []byte(ac.CodeChallenge)) != 1 {
			return nil, ErrInvalidGrant
		}
	}
	u, err := s.activeUser(ctx, ac.UserID)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, ErrInvalidGrant
	}
	scopes := s.grantable(c, u, ParseScope(ac.Scope))
	asr := assurance{acr: ac.ACR, amr: ac.AMR, at: ac.AuthTime}
	var (
		f     *RefreshFamily
		first *RefreshToken
		rt    string
	)
	if slices.Contains(c.GrantTypes, GrantRefreshToken) && (slices.Contains(scopes, "offline_access") || c.FirstParty) {
		f = &RefreshFamily{ID: NewID(), UserID: u.ID, ClientID: c.ID, Scope: strings.Join(scopes, " "),
			CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenTTL), ACR: asr.acr, AMR: asr.amr, AuthTime: asr.at, SessionID: ac.SessionID}
		rt = newRefreshToken()
		first = &RefreshToken{ID: NewID(), FamilyID: f.ID, Hash: HashToken(rt), CreatedAt: now}
	}
	err = s.st.AuthCodes.RedeemAuthCode(ctx, hash, now, f, first)
	switch {
	case errors.Is(err, ErrAuthCodeUsed):
		if again, rerr := s.st.AuthCodes.AuthCodeByHash(ctx, hash); rerr == nil {
			return nil, s.codeReused(ctx, again, m)
		}
		return nil, ErrInvalidGrant
	case errors.Is(err, ErrNotFound):
		return nil, ErrInvalidGrant
	case err != nil:
		return nil, err
	}
	famID := ""
	if f != nil {
		famID = f.ID
	}
	out, err := s.clientTokens(ctx, c, u, scopes, asr, ac.Nonce, ac.SessionID, famID)
	if err != nil {
		return nil, err
	}
	out.RefreshToken = rt
	return out, nil
}

// codeReused answers a used code: the family its first exchange made is
// revoked.
func (s *Service) codeReused(ctx context.Context, ac *AuthCode, m Meta) error {
	if ac.FamilyID != "" {
		if err := s.st.Refresh.RevokeFamily(ctx, ac.FamilyID, s.now()); err != nil {
			return err
		}
	}
	s.audit(ctx, EventCodeReused, ac.UserID, m, map[string]any{"client_id": ac.ClientID, "family_id": ac.FamilyID})
	return ErrInvalidGrant
}

// clientTokens signs the access token (and the ID token with openid) of a
// client grant.
// sid is the browser session (the ID token's sid); tokenSID the access
// token's: the refresh family's id, else the session's.
func (s *Service) clientTokens(ctx context.Context, c *Client, u *User, scopes []string, asr assurance, nonce, sid, tokenSID string) (*ClientTokens, error) {
	now := s.now()
	if tokenSID == "" {
		tokenSID = sid
	}
	claims := s.accessClaims(u, c.ID, scopes, asr, tokenSID)
	if !c.FirstParty {
		// Roles and email go to first-party clients only (SPEC §14).
		claims.Roles, claims.NoRoles, claims.Email = nil, true, ""
	}
	at, err := s.issuer.Issue(ctx, claims)
	if err != nil {
		return nil, err
	}
	out := &ClientTokens{TokenResponse: TokenResponse{AccessToken: at, ExpiresIn: int(s.cfg.AccessTokenTTL / time.Second), Scope: scopes}}
	if slices.Contains(scopes, "openid") {
		if s.idTokens == nil {
			return nil, errors.New("auth: no ID-token signer")
		}
		ic := &IDClaims{Subject: u.ID, Audience: c.ID, Nonce: nonce, ACR: asr.acr, AMR: asr.amr, AuthTime: asr.at,
			IssuedAt: now, ExpiresAt: now.Add(s.cfg.IDTokenTTL), SessionID: sid, AccessToken: at}
		if c.IDTokenClaims {
			ic.Extra = s.userClaims(u, scopes)
		}
		if out.IDToken, err = s.idTokens.SignIDToken(ctx, c.IDTokenAlg, ic); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// userClaims are the profile and email claims the scopes allow.
func (s *Service) userClaims(u *User, scopes []string) map[string]any {
	out := map[string]any{}
	if slices.Contains(scopes, "profile") {
		out["name"] = u.Name
		out["updated_at"] = u.UpdatedAt.Unix()
	}
	if slices.Contains(scopes, "email") {
		out["email"] = u.Email
		out["email_verified"] = u.EmailVerified
	}
	return out
}

// ClientCredentials is the client_credentials grant: an access token whose
// subject is the client, with scopes within the client's, no roles, no
// refresh token.
func (s *Service) ClientCredentials(ctx context.Context, c *Client, scope string) (*TokenResponse, error) {
	if c.Type != ClientConfidential || !slices.Contains(c.GrantTypes, GrantClientCredentials) {
		return nil, &Error{Code: EFORBIDDEN, Reason: "unauthorized_client", Message: "this client may not use the client_credentials grant"}
	}
	var scopes []string
	for _, sc := range ParseScope(scope) {
		if !slices.Contains(c.Scopes, sc) || IsOIDCScope(sc) {
			return nil, ErrInvalidScope
		}
		scopes = append(scopes, sc)
	}
	if len(scopes) == 0 {
		for _, sc := range c.Scopes {
			if !IsOIDCScope(sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	now := s.now()
	at, err := s.issuer.Issue(ctx, &AccessClaims{ID: NewID(), Subject: c.ID, ClientID: c.ID, Scopes: scopes,
		IssuedAt: now, ExpiresAt: now.Add(s.cfg.AccessTokenTTL), NoRoles: true})
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: at, ExpiresIn: int(s.cfg.AccessTokenTTL / time.Second), Scope: scopes}, nil
}

// Userinfo returns the claims of the access token's user (OIDC Core
// §5.3): sub, and by scope profile and email claims. The token needs
// openid.
func (s *Service) Userinfo(ctx context.Context, c *AccessClaims) (map[string]any, error) {
	if !slices.Contains(c.Scopes, "openid") {
		return nil, insufficientScope("userinfo needs a token with the scope openid")
	}
	u, err := s.activeUser(ctx, c.Subject)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, ErrInvalidCredentials
	}
	out := s.userClaims(u, c.Scopes)
	out["sub"] = u.ID
	return out, nil
}

// GrantedConsent is a grant as the user sees it: with the client's name.
type GrantedConsent struct {
	*Consent
	ClientName string
}

// Consents lists the user's grants, each with its client's name (the id
// when the client is gone).
func (s *Service) Consents(ctx context.Context, userID string) ([]GrantedConsent, error) {
	list, err := s.st.Consents.ListConsents(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]GrantedConsent, 0, len(list))
	for _, c := range list {
		g := GrantedConsent{Consent: c, ClientName: c.ClientID}
		cl, err := s.st.Clients.ClientByID(ctx, c.ClientID)
		switch {
		case err == nil:
			g.ClientName = cl.Name
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// RevokeConsent removes the user's grant to a client and ends that
// client's refresh families of the user.
func (s *Service) RevokeConsent(ctx context.Context, userID, clientID string, m Meta) error {
	if err := s.st.Consents.DeleteConsent(ctx, userID, clientID, s.now()); err != nil {
		return err
	}
	s.audit(ctx, EventConsentRevoked, userID, m, map[string]any{"client_id": clientID})
	return nil
}

// ClientByID returns a registered client.
func (s *Service) ClientByID(ctx context.Context, id string) (*Client, error) {
	return s.st.Clients.ClientByID(ctx, id)
}

// ParseIDTokenHint reads an id_token_hint this server issued.
func (s *Service) ParseIDTokenHint(tok string) (*IDClaims, error) {
	if s.idTokens == nil {
		return nil, ErrInvalidCredentials
	}
	return s.idTokens.ParseIDTokenHint(tok)
}

// LogoutRP ends the browser's session (RP-initiated logout) and the
// refresh families issued to it through the code flow, audited.
func (s *Service) LogoutRP(ctx context.Context, sess *Session, clientID string, m Meta) error {
	if sess == nil {
		return nil
	}
	if err := s.st.Sessions.DeleteSession(ctx, sess.UserID, sess.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := s.st.Refresh.RevokeSessionFamilies(ctx, sess.ID, s.now()); err != nil {
		return err
	}
	s.audit(ctx, EventLogoutRP, sess.UserID, m, map[string]any{"client_id": clientID})
	return nil
}

// OAuth audit event types (SPEC §14).
const (
	EventConsentGranted  = "oauth.consent.granted"
	EventConsentRevoked  = "oauth.consent.revoked"
	EventCodeReused      = "oauth.code.reused"
	EventAuthorizeDenied = "oauth.authorize.denied"
	EventLogoutRP        = "logout.rp_initiated"
)

// RevokeRefreshFor revokes the family of a refresh token for the client
// that presents it (RFC 7009): only a token of that client's own family;
// anything else is not an error, and nothing is revoked.
func (s *Service) RevokeRefreshFor(ctx context.Context, c *Client, tok string, m Meta) error {
	if tok == "" || len(tok) > 512 {
		return nil
	}
	_, fam, err := s.st.Refresh.RefreshTokenByHash(ctx, HashToken(tok))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if fam.ClientID != c.ID {
		return nil
	}
	if err := s.st.Refresh.RevokeFamily(ctx, fam.ID, s.now()); err != nil {
		return err
	}
	s.audit(ctx, EventRefreshRevoked, fam.UserID, m, map[string]any{"family_id": fam.ID, "client_id": c.ID})
	return nil
}
