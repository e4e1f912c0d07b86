package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// TokenResponse is what the token endpoint returns (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken  string
	ExpiresIn    int
	RefreshToken string
	Scope        []string
}

func (s *Service) issueAccess(ctx context.Context, u *User, clientID string, scopes []string, asr assurance, sid string) (string, error) {
	return s.issuer.Issue(ctx, s.accessClaims(u, clientID, scopes, asr, sid))
}

// accessClaims are the claims of an access token of u issued now.
func (s *Service) accessClaims(u *User, clientID string, scopes []string, asr assurance, sid string) *AccessClaims {
	now := s.now()
	iat, nbf := now, time.Time{}
	if s.revocations != nil {
		// A subject revoked this very second has not_before = the next
		// second (iat is whole seconds): a token minted now carries that
		// iat, or it would be born dead (SPEC §15).
		if nb := s.revocations.SubjectNotBefore(u.ID); nb > now.Unix() {
			iat, nbf = time.Unix(nb, 0), now
		}
	}
	return &AccessClaims{
		ID: NewID(), Subject: u.ID, Email: u.Email, ClientID: clientID, SID: sid,
		Scopes: scopes, Roles: u.Roles, IssuedAt: iat, NotBefore: nbf, ExpiresAt: now.Add(s.cfg.AccessTokenTTL),
		ACR: asr.acr, AMR: asr.amr, AuthTime: asr.at,
	}
}

// familyAssurance is the level a family records (families made before
// SPEC §13 read as aal1 signed in when the family began).
func familyAssurance(f *RefreshFamily) assurance {
	a := assurance{acr: f.ACR, amr: f.AMR, at: f.AuthTime}
	if a.acr == "" {
		a.acr = ACR1
	}
	if a.at.IsZero() {
		a.at = f.CreatedAt
	}
	return a
}

// newFamily makes (without storing) a refresh family for a sign-in of
// asr, its first token, and the scopes it grants.
func (s *Service) newFamily(u *User, clientID string, requested []string, asr assurance) (*RefreshFamily, *RefreshToken, string, []string, error) {
	scopes, err := s.roles.Negotiate(requested, u.Roles)
	if err != nil {
		return nil, nil, "", nil, err
	}
	now := s.now()
	f := &RefreshFamily{ID: NewID(), UserID: u.ID, ClientID: clientID, Scope: strings.Join(scopes, " "),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenTTL), ACR: asr.acr, AMR: asr.amr, AuthTime: asr.at}
	rt := newRefreshToken()
	first := &RefreshToken{ID: NewID(), FamilyID: f.ID, Hash: HashToken(rt), CreatedAt: now}
	return f, first, rt, scopes, nil
}

// LoginFinisher is an optional store extension: it makes every write of a
// successful password login — clearing the lockout count, the audit event,
// the new refresh family and its first token — in one transaction.
type LoginFinisher interface {
	FinishPasswordLogin(ctx context.Context, lockKey string, e *AuditEvent, f *RefreshFamily, first *RefreshToken) error
}

// settle makes a successful login's deferred writes on their own.
func (s *Service) settle(ctx context.Context, ls *loginSuccess) error {
	if ls == nil || ls.event == nil {
		return nil
	}
	if err := s.st.Lockout.ClearFailures(ctx, ls.lockKey); err != nil {
		return err
	}
	if err := s.st.Audit.AppendAudit(ctx, ls.event); err != nil {
		s.log.ErrorContext(ctx, "audit append failed", "type", ls.event.Type, "err", err)
		return nil
	}
	s.webhooksQueued(ls.event)
	return nil
}

func (s *Service) startFamily(ctx context.Context, u *User, clientID string, requested []string, ls *loginSuccess, asr assurance) (*TokenResponse, error) {
	f, first, rt, scopes, err := s.newFamily(u, clientID, requested, asr)
	if err != nil {
		if serr := s.settle(ctx, ls); serr != nil {
			return nil, serr
		}
		return nil, err
	}
	// One transaction for the whole login when the store can (the lockout
	// store must be the same database for that).
	lf, one := s.st.Refresh.(LoginFinisher)
	if one && ls != nil && ls.event != nil && any(s.st.Lockout) == any(s.st.Refresh) {
		if err := lf.FinishPasswordLogin(ctx, ls.lockKey, ls.event, f, first); err != nil {
			return nil, err
		}
		s.webhooksQueued(ls.event)
	} else {
		if err := s.settle(ctx, ls); err != nil {
			return nil, err
		}
		if err := s.st.Refresh.CreateFamily(ctx, f, first); err != nil {
			return nil, err
		}
	}
	at, err := s.issueAccess(ctx, u, clientID, scopes, asr, f.ID)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: at, ExpiresIn: int(s.cfg.AccessTokenTTL / time.Second), RefreshToken: rt, Scope: scopes}, nil
}

// RefreshGrant exchanges a refresh token for a new access token and its
// successor (rotation). A token that was already rotated is reuse: the
// whole family is revoked (RFC 9700 §4.14.2) — except within the grace
// window, where the same successor is returned again.
func (s *Service) RefreshGrant(ctx context.Context, tok, scope string, m Meta) (*TokenResponse, error) {
	succ, fam, u, scopes, err := s.refresh(ctx, nil, tok, scope, m)
	if err != nil {
		return nil, err
	}
	at, err := s.issueAccess(ctx, u, fam.ClientID, scopes, familyAssurance(fam), fam.ID)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: at, ExpiresIn: int(s.cfg.AccessTokenTTL / time.Second), RefreshToken: succ, Scope: scopes}, nil
}

// RefreshGrantFor is the refresh grant of a registered client c (already
// authenticated, or public): the family must be c's, and the answer
// carries a new ID token (same sub, the original auth_time) when the
// scope holds openid (SPEC §14).
func (s *Service) RefreshGrantFor(ctx context.Context, c *Client, tok, scope string, m Meta) (*ClientTokens, error) {
	if !slices.Contains(c.GrantTypes, GrantRefreshToken) {
		return nil, &Error{Code: EFORBIDDEN, Reason: "unauthorized_client", Message: "this client may not use the refresh_token grant"}
	}
	succ, fam, u, scopes, err := s.refresh(ctx, c, tok, scope, m)
	if err != nil {
		return nil, err
	}
	out, err := s.clientTokens(ctx, c, u, scopes, familyAssurance(fam), "", fam.SessionID, fam.ID)
	if err != nil {
		return nil, err
	}
	out.RefreshToken = succ
	return out, nil
}

// refresh rotates a refresh token (see RefreshGrant) and returns the
// successor, the family, its user and the scopes to grant. c is the
// registered client presenting it, nil for Gatehouse's own clients; a
// family of a registered client is refreshed by that client only.
func (s *Service) refresh(ctx context.Context, c *Client, tok, scope string, m Meta) (string, *RefreshFamily, *User, []string, error) {
	if err := s.limitIP(ctx, "refresh", m); err != nil {
		return "", nil, nil, nil, err
	}
	if tok == "" || len(tok) > 512 {
		return "", nil, nil, nil, ErrInvalidRefreshToken
	}
	rt, fam, err := s.st.Refresh.RefreshTokenByHash(ctx, HashToken(tok))
	if errors.Is(err, ErrNotFound) {
		return "", nil, nil, nil, ErrInvalidRefreshToken
	}
	if err != nil {
		return "", nil, nil, nil, err
	}
	if c != nil && fam.ClientID != c.ID {
		return "", nil, nil, nil, ErrInvalidRefreshToken
	}
	if c == nil && fam.ClientID != "" {
		// A family of a registered client needs that client's credentials.
		if _, err := s.st.Clients.ClientByID(ctx, fam.ClientID); err == nil {
			return "", nil, nil, nil, ErrInvalidRefreshToken
		} else if !errors.Is(err, ErrNotFound) {
			return "", nil, nil, nil, err
		}
	}
	succ, u, scopes, err := s.rotate(ctx, c, rt, fam, tok, scope, m)
	return succ, fam, u, scopes, err
}

func (s *Service) rotate(ctx context.Context, c *Client, rt *RefreshToken, fam *RefreshFamily, tok, scope string, m Meta) (string, *User, []string, error) {
	now := s.now()
	if fam.RevokedAt != nil || !now.Before(fam.ExpiresAt) {
		return "", nil, nil, ErrInvalidRefreshToken
	}
	// Reuse is detected before anything else is checked, so no variation of
	// the request (another scope, say) can replay a rotated token without
	// revoking its family.
	if err := s.detectReuse(ctx, rt, fam, now, m); err != nil {
		return "", nil, nil, err
	}
	u, err := s.st.Users.UserByID(ctx, fam.UserID)
	if errors.Is(err, ErrNotFound) {
		return "", nil, nil, ErrInvalidRefreshToken
	}
	if err != nil {
		return "", nil, nil, err
	}
	if u.Disabled {
		return "", nil, nil, ErrInvalidRefreshToken
	}
	// A refresh may narrow the scope, never widen it (RFC 6749 §6); the
	// user's current roles bound it too, so a role change shows at once.
	granted := ParseScope(fam.Scope)
	if req := ParseScope(scope); len(req) > 0 {
		for _, sc := range req {
			if !strings.Contains(" "+fam.Scope+" ", " "+sc+" ") {
				return "", nil, nil, ErrInvalidScope
			}
		}
		granted = req
	}
	var scopes []string
	if c != nil {
		// A registered client's family: OIDC scopes stay, API scopes
		// within the current roles.
		scopes = s.grantable(c, u, granted)
	} else if scopes, err = s.roles.Negotiate(granted, u.Roles); err != nil {
		return "", nil, nil, err
	}

	succ := s.successorToken(tok)
	if rt.RotatedAt == nil {
		next := &RefreshToken{ID: NewID(), FamilyID: fam.ID, Hash: HashToken(succ), CreatedAt: now}
		won, err := s.st.Refresh.RotateRefreshToken(ctx, rt.ID, next, now)
		if err != nil {
			return "", nil, nil, err
		}
		if !won {
			// Another request rotated it a moment ago: read it again and
			// treat this as a repeat presentation.
			rt, fam, err = s.st.Refresh.RefreshTokenByHash(ctx, HashToken(tok))
			if err != nil {
				return "", nil, nil, err
			}
			if fam.RevokedAt != nil || rt.RotatedAt == nil {
				return "", nil, nil, ErrInvalidRefreshToken
			}
		}
	}
	if rt.RotatedAt != nil {
		if err := s.detectReuse(ctx, rt, fam, now, m); err != nil {
			return "", nil, nil, err
		}
		// Inside the grace window: the successor is the same one the first
		// rotation stored. It is handed out again only while it is still
		// the family's current token (SPEC §18 H4): once it was itself
		// used, presenting its predecessor walks back the chain — reuse.
		srt, f2, err := s.st.Refresh.RefreshTokenByHash(ctx, HashToken(succ))
		if errors.Is(err, ErrNotFound) {
			return "", nil, nil, ErrInvalidRefreshToken
		}
		if err != nil {
			return "", nil, nil, err
		}
		if f2.RevokedAt != nil {
			return "", nil, nil, ErrInvalidRefreshToken
		}
		if srt.RotatedAt != nil {
			return "", nil, nil, s.revokeReused(ctx, fam, now, m)
		}
	}
	return succ, u, scopes, nil
}

// RevokeRefresh revokes the family of a refresh token (RFC 7009). Unknown
// tokens are not an error.
func (s *Service) RevokeRefresh(ctx context.Context, tok string, m Meta) error {
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
	if err := s.st.Refresh.RevokeFamily(ctx, fam.ID, s.now()); err != nil {
		return err
	}
	s.audit(ctx, EventRefreshRevoked, fam.UserID, m, map[string]any{"family_id": fam.ID})
	return nil
}

// CreateUser makes an account from the operator command line: unlike
// Register it says when the email is taken and takes explicit roles.
func (s *Service) CreateUser(ctx context.Context, email, plain string, roles []string) (*User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		roles = s.cfg.DefaultRoles
	}
	for _, r := range roles {
		if !s.roles.KnownRole(r) {
			return nil, &Error{Code: EINVALID, Field: "role", Message: "unknown role " + r}
		}
	}
	u := &User{ID: NewID(), Email: email, EmailVerified: true, Roles: roles}
	if plain != "" {
		if err := s.policy.Check(plain, email); err != nil {
			return nil, policyError(err)
		}
		if u.PasswordHash, err = s.hasher.Hash(ctx, plain); err != nil {
			return nil, hashError(err)
		}
	}
	u.CreatedAt, u.UpdatedAt = s.now(), s.now()
	if err := s.st.Users.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	s.auditAbout(ctx, EventUserRegistered, u, Meta{IP: "cli"}, map[string]any{"roles": roles, "source": SourceCLI})
	return u, nil
}

// detectReuse revokes the family of a token that was rotated longer ago than
// the grace window (RFC 9700 §4.14.2) and reports ErrInvalidRefreshToken.
func (s *Service) detectReuse(ctx context.Context, rt *RefreshToken, fam *RefreshFamily, now time.Time, m Meta) error {
	if rt.RotatedAt == nil {
		return nil
	}
	if s.cfg.RefreshReuseGrace > 0 && now.Sub(*rt.RotatedAt) <= s.cfg.RefreshReuseGrace {
		return nil
	}
	return s.revokeReused(ctx, fam, now, m)
}

// revokeReused revokes a family whose token was reused, audits it, and
// reports ErrInvalidRefreshToken (or the store's failure).
func (s *Service) revokeReused(ctx context.Context, fam *RefreshFamily, now time.Time, m Meta) error {
	if err := s.st.Refresh.RevokeFamily(ctx, fam.ID, now); err != nil {
		return err
	}
	s.audit(ctx, EventRefreshReused, fam.UserID, m, map[string]any{"family_id": fam.ID})
	return ErrInvalidRefreshToken
}
