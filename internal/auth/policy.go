package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// This file holds the authorization policy that is not a single service's:
// who may mint which credential, who is an administrator, who may
// introspect. The HTTP layer asks; it never decides.

// Principal kinds.
const (
	KindSession     = "session"
	KindAccessToken = "access_token"
	KindAPIKey      = "api_key"
	// KindMFAEnrolment is the enrolment-only mfa_token (SPEC §13).
	KindMFAEnrolment = "mfa_enrolment"
	// KindRefreshToken is a token type of introspection only: a refresh
	// token authenticates no request.
	KindRefreshToken = "refresh_token"
)

// Reasons: machine-readable codes carried by an *Error (the problem
// document's "code").
const (
	ReasonInsufficientScope = "insufficient_scope"
	ReasonAccountLocked     = "account_locked"     // too many failed sign-ins
	ReasonRateLimited       = "rate_limited"       // too many requests from one client
	ReasonEmailNotVerified  = "email_not_verified" // GATEHOUSE_REQUIRE_VERIFIED_EMAIL
	// SPEC §13.
	ReasonMFARequired           = "mfa_required"            // the first factor is proven; a second is needed
	ReasonMFAEnrollmentRequired = "mfa_enrollment_required" // as mfa_required, but the user must enrol first
	ReasonMFAInvalidCode        = "mfa_invalid_code"        // a wrong or malformed code
	ReasonMFACodeReused         = "mfa_code_reused"         // a TOTP step already used
	ReasonStepUpRequired        = "step_up_required"        // a recent (and, with MFA, aal2) sign-in is needed
)

// ScopeIntrospect and ScopeAdmin are the scopes the policy below knows by
// name.
const (
	ScopeAdmin      = "admin"
	ScopeIntrospect = "introspect"
)

// withIntrospect adds introspect wherever admin is present: introspection
// is a narrow part of what admin may do already, so whoever holds admin
// holds introspect (and a resource server's API key can carry that part
// alone). This is the one place the rule is written.
func (s *Service) withIntrospect(scopes []string) []string {
	if slices.Contains(scopes, ScopeAdmin) && s.roles.KnownScope(ScopeIntrospect) && !slices.Contains(scopes, ScopeIntrospect) {
		scopes = append(slices.Clone(scopes), ScopeIntrospect)
		slices.Sort(scopes)
	}
	return scopes
}

// allowedScopes is what the roles allow, introspect included with admin.
func (s *Service) allowedScopes(roles []string) []string {
	return s.withIntrospect(s.roles.Allowed(roles))
}

// KeyScopes is what an API key of u may carry: the scopes u's roles allow,
// introspect included with admin.
func (s *Service) KeyScopes(u *User) []string { return s.allowedScopes(u.Roles) }

// SessionPrincipal is the caller behind a cookie session: it holds every
// scope the user's current roles allow.
func (s *Service) SessionPrincipal(sess *Session, u *User) *Principal {
	return &Principal{UserID: u.ID, Kind: KindSession, Scopes: s.roles.Allowed(u.Roles), Roles: u.Roles, ExpiresAt: sess.ExpiresAt, SessionID: sess.ID,
		ACR: sess.ACR, AMR: sess.AMR, AuthTime: sess.AuthTime}
}

func insufficientScope(msg string) *Error {
	return &Error{Code: EFORBIDDEN, Reason: ReasonInsufficientScope, Message: msg}
}

// CanAddSignInMethod decides whether p may add a credential that signs in
// to its account — a passkey, a linked provider, later a TOTP
// authenticator (SPEC §18 H1): a cookie session or an access token that
// holds every scope the user's current roles allow. An API key never can,
// and a token narrowed to fewer scopes cannot either: otherwise a
// read-write token could plant a credential that signs in with admin.
func (s *Service) CanAddSignInMethod(ctx context.Context, p *Principal) error {
	if p == nil {
		return ErrInvalidCredentials
	}
	if p.Kind == KindAPIKey {
		return &Error{Code: EFORBIDDEN, Message: "API keys cannot add credentials that sign in: use a session or an access token"}
	}
	u, err := s.st.Users.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	for _, sc := range s.roles.Allowed(u.Roles) {
		if !p.HasScope(sc) {
			return insufficientScope("adding a sign-in method needs a session or a token with every scope your roles allow (missing scope: " + sc + ")")
		}
	}
	return s.RequireStepUp(ctx, p, false)
}

// CanManageAPIKeys refuses API keys as the credential that lists or
// creates API keys: a leaked key must not make itself permanent.
func CanManageAPIKeys(p *Principal) error {
	if p != nil && p.Kind == KindAPIKey {
		return &Error{Code: EFORBIDDEN, Message: "API keys cannot manage API keys: use a session or an access token"}
	}
	return nil
}

// keyScopesFor checks the scopes asked for a new API key against what the
// caller holds and what the owner's roles allow (SPEC §18 H1): a credential
// mints only what it holds.
func (s *Service) keyScopesFor(p *Principal, u *User, asked []string) ([]string, error) {
	if p == nil || p.UserID != u.ID {
		return nil, &Error{Code: EFORBIDDEN, Message: "API keys can be created only for the caller's own account"}
	}
	if err := CanManageAPIKeys(p); err != nil {
		return nil, err
	}
	allowed := s.allowedScopes(u.Roles)
	held := s.withIntrospect(p.Scopes)
	var scopes []string
	for _, sc := range asked {
		if !s.roles.KnownScope(sc) {
			return nil, &Error{Code: EINVALID, Field: "scopes", Message: "unknown scope " + sc}
		}
		if !slices.Contains(allowed, sc) {
			return nil, insufficientScope("your roles do not allow the scope " + sc + " (missing scope: " + sc + ")")
		}
		if !slices.Contains(held, sc) {
			return nil, insufficientScope("the credential you are using does not hold the scope " + sc + " (missing scope: " + sc + ")")
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	slices.Sort(scopes)
	return scopes, nil
}

// currentRolesAllow reads the caller's account fresh and reports whether
// its current roles allow scope (SPEC §18 H5): a token minted before a
// role was taken away does not keep the power the role gave.
func (s *Service) currentRolesAllow(ctx context.Context, p *Principal, scope string) (*User, error) {
	if p == nil {
		return nil, ErrInvalidCredentials
	}
	u, err := s.activeUser(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, ErrInvalidCredentials
	}
	if !slices.Contains(s.allowedScopes(u.Roles), scope) {
		return nil, &Error{Code: EFORBIDDEN, Message: "your current roles do not allow " + scope + " (missing scope: " + scope + ")"}
	}
	return u, nil
}

// AuthorizeAdmin decides whether p may use the admin API: the credential
// carries scope admin and the account's current roles (read fresh) allow
// it. It returns the administrator's account.
func (s *Service) AuthorizeAdmin(ctx context.Context, p *Principal) (*User, error) {
	if p == nil {
		return nil, ErrInvalidCredentials
	}
	if !p.HasScope(ScopeAdmin) {
		return nil, insufficientScope("this requires the scope admin (missing scope: admin)")
	}
	return s.currentRolesAllow(ctx, p, ScopeAdmin)
}

// AuthorizeIntrospection decides whether p may introspect tokens: the
// credential holds introspect (admin includes it) and the account's
// current roles still allow it. Where no introspect scope is configured,
// admin is what it takes.
func (s *Service) AuthorizeIntrospection(ctx context.Context, p *Principal) error {
	if p == nil {
		return ErrInvalidCredentials
	}
	scope := ScopeIntrospect
	if !s.roles.KnownScope(ScopeIntrospect) {
		scope = ScopeAdmin
	}
	if !slices.Contains(s.withIntrospect(p.Scopes), scope) {
		return insufficientScope("introspection requires scope admin or introspect (missing scope: " + scope + ")")
	}
	_, err := s.currentRolesAllow(ctx, p, scope)
	return err
}

// Introspection is an active token's description (RFC 7662); a nil
// *Introspection means inactive.
type Introspection struct {
	TokenType string
	User      *User
	Scope     []string // narrowed to what the user's current roles allow
	ClientID  string
	IssuedAt  time.Time
	ExpiresAt time.Time // zero: does not expire
	// How the user signed in (SPEC §13); empty for API keys.
	ACR      string
	AMR      []string
	AuthTime time.Time
}

// narrow keeps the scopes the current roles allow.
func (s *Service) narrow(scopes []string, roles []string) []string {
	allowed := s.allowedScopes(roles)
	out := []string{}
	for _, sc := range scopes {
		if slices.Contains(allowed, sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// activeUser reads a token's account: nil when it is gone or disabled.
func (s *Service) activeUser(ctx context.Context, id string) (*User, error) {
	u, err := s.st.Users.UserByID(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && u.Disabled) {
		return nil, nil
	}
	return u, err
}

// IntrospectAccessToken describes a verified access token's claims, its
// scope narrowed to what the subject's current roles allow (SPEC §18 H5).
func (s *Service) IntrospectAccessToken(ctx context.Context, c *AccessClaims) (*Introspection, error) {
	u, err := s.activeUser(ctx, c.Subject)
	if u == nil || err != nil {
		return nil, err
	}
	return &Introspection{TokenType: KindAccessToken, User: u, Scope: s.narrow(c.Scopes, u.Roles), ClientID: c.ClientID,
		IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, ACR: c.ACR, AMR: c.AMR, AuthTime: c.AuthTime}, nil
}

// IntrospectSession describes a session cookie without counting as use.
func (s *Service) IntrospectSession(ctx context.Context, tok string) (*Introspection, error) {
	sess, u, err := s.InspectSession(ctx, tok)
	if err != nil {
		if ErrorCode(err) == EUNAUTHORIZED {
			return nil, nil
		}
		return nil, err
	}
	return &Introspection{TokenType: KindSession, User: u, Scope: s.roles.Allowed(u.Roles), IssuedAt: sess.CreatedAt, ExpiresAt: sess.ExpiresAt,
		ACR: sess.ACR, AMR: sess.AMR, AuthTime: sess.AuthTime}, nil
}

// IntrospectAPIKey describes an API key (its scopes within the owner's
// current roles).
func (s *Service) IntrospectAPIKey(ctx context.Context, secret string) (*Introspection, error) {
	k, u, scopes, err := s.AuthenticateAPIKey(ctx, secret)
	if err != nil {
		if ErrorCode(err) == EUNAUTHORIZED {
			return nil, nil
		}
		return nil, err
	}
	in := &Introspection{TokenType: KindAPIKey, User: u, Scope: scopes, IssuedAt: k.CreatedAt}
	if k.ExpiresAt != nil {
		in.ExpiresAt = *k.ExpiresAt
	}
	return in, nil
}

// IntrospectRefreshToken describes a refresh token: active while its
// family is live and it is the family's current token (or was rotated
// within the grace window, so a retry still works); its scope narrowed to
// the current roles.
func (s *Service) IntrospectRefreshToken(ctx context.Context, tok string) (*Introspection, error) {
	if tok == "" || len(tok) > 512 {
		return nil, nil
	}
	rt, fam, err := s.st.Refresh.RefreshTokenByHash(ctx, HashToken(tok))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if fam.RevokedAt != nil || !now.Before(fam.ExpiresAt) {
		return nil, nil
	}
	if rt.RotatedAt != nil && now.Sub(*rt.RotatedAt) > s.cfg.RefreshReuseGrace {
		return nil, nil
	}
	u, err := s.activeUser(ctx, fam.UserID)
	if u == nil || err != nil {
		return nil, err
	}
	a := familyAssurance(fam)
	return &Introspection{TokenType: KindRefreshToken, User: u, Scope: s.narrow(strings.Fields(fam.Scope), u.Roles), ClientID: fam.ClientID,
		IssuedAt: rt.CreatedAt, ExpiresAt: fam.ExpiresAt, ACR: a.acr, AMR: a.amr, AuthTime: a.at}, nil
}
