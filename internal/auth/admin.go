package auth

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// UserPatch is an administrator's change to an account; nil fields stay.
type UserPatch struct {
	Roles         *[]string
	Disabled      *bool
	EmailVerified *bool
}

// AdminUpdateUser applies a patch. Disabling an account ends every
// session, refresh token and API key use at once (API keys stop working
// through the disabled check; they come back if the account is enabled).
func (s *Service) AdminUpdateUser(ctx context.Context, actorID, id string, p UserPatch, m Meta) (*User, error) {
	u, err := s.st.Users.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	defer s.users.forget(id)
	// What changed is audited by kind: role.changed (SetRoles),
	// user.disabled / user.enabled, and user.updated for the rest — so the
	// audit log says "user.disabled" where an operator looks for it.
	changes := map[string]any{"actor": actorID}
	if p.Roles != nil {
		roles := append([]string{}, (*p.Roles)...)
		// role.changed carries the admin's id, and the console's via (SPEC §17).
		if err := s.SetRoles(ctx, id, roles, Meta{IP: m.IP, UserAgent: m.UserAgent, Via: m.Via, Actor: cmp.Or(m.Actor, actorID)}); err != nil {
			return nil, err
		}
	}
	if p.EmailVerified != nil {
		if err := s.st.Users.SetEmailVerified(ctx, id, *p.EmailVerified, s.now()); err != nil {
			return nil, err
		}
		changes["email_verified"] = *p.EmailVerified
	}
	if p.Disabled != nil {
		if err := s.st.Users.SetDisabled(ctx, id, *p.Disabled, s.now()); err != nil {
			return nil, err
		}
		if *p.Disabled && !u.Disabled {
			if err := s.revokeAll(ctx, id, false); err != nil {
				return nil, err
			}
		}
		if *p.Disabled != u.Disabled {
			ev := EventUserEnabled
			if *p.Disabled {
				ev = EventUserDisabled
			}
			s.audit(ctx, ev, id, m, map[string]any{"actor": actorID})
		}
	}
	if len(changes) > 1 {
		s.audit(ctx, EventUserUpdated, id, m, changes)
	}
	return s.st.Users.UserByID(ctx, id)
}

// revokeAll ends every session and refresh token of a user, and deletes
// the API keys when keys is set.
func (s *Service) revokeAll(ctx context.Context, userID string, keys bool) error {
	if err := s.st.Refresh.RevokeUserFamilies(ctx, userID, s.now()); err != nil {
		return err
	}
	if err := s.st.Sessions.DeleteUserSessions(ctx, userID, ""); err != nil {
		return err
	}
	if keys {
		if err := s.st.APIKeys.DeleteUserAPIKeys(ctx, userID); err != nil {
			return err
		}
	}
	return nil
}

// AdminRevokeUser ends every session, refresh token and API key of a user.
func (s *Service) AdminRevokeUser(ctx context.Context, actorID, id string, m Meta) error {
	if _, err := s.st.Users.UserByID(ctx, id); err != nil {
		return err
	}
	if err := s.revokeAll(ctx, id, true); err != nil {
		return err
	}
	s.audit(ctx, EventUserRevoked, id, m, map[string]any{"actor": actorID})
	return nil
}

// AdminDeleteUser deletes an account (sessions in Redis die with it: they
// are refused once the account is gone).
func (s *Service) AdminDeleteUser(ctx context.Context, actorID, id string, m Meta) error {
	defer s.users.forget(id)
	// Read first: the user.deleted webhook describes the account as it was.
	u, err := s.st.Users.UserByID(ctx, id)
	if err != nil {
		return err
	}
	if err := s.revokeAll(ctx, id, true); err != nil {
		return err
	}
	if err := s.st.Users.DeleteUser(ctx, id); err != nil {
		return err
	}
	s.auditAbout(ctx, EventUserDeleted, u, m, map[string]any{"actor": actorID})
	return nil
}

// ErrBadCursor is returned for a pagination cursor that was not made here.
var ErrBadCursor = &Error{Code: EINVALID, Field: "cursor", Message: "invalid cursor"}

// sealCursor makes an opaque, tamper-proof cursor: the last email of a page
// and an HMAC of it, so a client can neither read nor forge positions.
func (s *Service) sealCursor(lastEmail string) string {
	return macSeal(s.keys.cursor, lastEmail)
}

func (s *Service) openCursor(c string) (string, error) {
	v, ok := macOpen(s.keys.cursor, c, 320)
	if !ok {
		return "", ErrBadCursor
	}
	return v, nil
}

// macSeal is v with a truncated HMAC-SHA256 of it under key, base64url:
// readable, but not forgeable without the key.
func macSeal(key []byte, v string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(append(m.Sum(nil)[:16], v...))
}

// macOpen returns the value macSeal sealed under key, at most max bytes
// long (0: no bound), or false when c was not sealed so.
func macOpen(key []byte, c string, max int) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 16 || (max > 0 && len(b) > 16+max) {
		return "", false
	}
	m := hmac.New(sha256.New, key)
	m.Write(b[16:])
	if !hmac.Equal(m.Sum(nil)[:16], b[:16]) {
		return "", false
	}
	return string(b[16:]), true
}

// SearchUsers lists accounts whose email contains query, a page at a time.
func (s *Service) SearchUsers(ctx context.Context, query, cursor string, limit int) ([]*User, string, error) {
	after := ""
	if cursor != "" {
		var err error
		if after, err = s.openCursor(cursor); err != nil {
			return nil, "", err
		}
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	users, err := s.st.Users.ListUsers(ctx, strings.TrimSpace(query), after, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(users) > limit {
		users = users[:limit]
		next = s.sealCursor(users[len(users)-1].Email)
	}
	return users, next, nil
}

// AuditLog lists audit events.
func (s *Service) AuditLog(ctx context.Context, f AuditFilter) ([]*AuditEvent, error) {
	return s.st.Audit.ListAudit(ctx, f)
}
