package auth

import (
	"context"
	"slices"
	"strings"
	"time"
)

// The admin console's Users section (SPEC §17): the searchable, filtered
// list of accounts a page at a time with a signed keyset cursor, one
// account with everything attached to it, and the administrator's actions
// on it that the admin API has no endpoint for (revoke one session or one
// API key, clear a lockout, send a reset link).

// Audit types of the console's user actions that no other path records.
const (
	// EventPasswordResetSent: an administrator had a password reset link
	// mailed to the account (details: actor).
	EventPasswordResetSent = "password.reset_link.sent"
	// EventAccountUnlocked: an administrator cleared the account's failed
	// sign-in count and lifted its lockout (details: actor, was_locked).
	EventAccountUnlocked = "account.unlocked"
)

// UserMatch says how UserQuery.Text selects accounts.
type UserMatch int

// How UserQuery.Text matches. Every match keeps email order and keyset
// pagination; what differs is the index that finds the rows.
const (
	// MatchAll ignores Text.
	MatchAll UserMatch = iota
	// MatchEmailPrefix: the email starts with Text (the email index, a
	// range scan: as fast on page 50 as on page 1).
	MatchEmailPrefix
	// MatchPrefix: the email or the name starts with Text, names compared
	// without case (the email index and the lower(name) index; a name
	// match costs in proportion to the accounts whose name starts with
	// Text, which are sorted by email).
	MatchPrefix
	// MatchEmailContains: Text anywhere in the email (no index can help:
	// the email index is walked in order until a page is found, so a rare
	// match reads the whole table).
	MatchEmailContains
	// MatchID: the account whose id is Text.
	MatchID
)

// UserQuery selects accounts for UserDirectory.FindUsers.
type UserQuery struct {
	Match UserMatch
	// Text is the search as typed (trimmed). The store folds its case:
	// emails as NormalizeEmail does (they are stored folded), names as
	// the database's lower() does (on SQLite, ASCII letters only).
	Text string
	// Role, when set, keeps accounts that have it.
	Role string
	// Disabled, Verified and MFA (a confirmed TOTP authenticator), when
	// set, keep accounts whose flag has that value.
	Disabled, Verified, MFA *bool
	// After keeps accounts whose email sorts after it; Before, those
	// whose email sorts before it (byte order). At most one is set.
	After, Before string
	// Limit is the most accounts to return (1–500; other values mean 50).
	Limit int
}

// UserDirectory is the admin console's account search.
type UserDirectory interface {
	// FindUsers returns the accounts q selects in ascending email order
	// (byte order, whatever the database's collation): the first q.Limit
	// after q.After or, with q.Before, the last q.Limit before q.Before.
	FindUsers(ctx context.Context, q UserQuery) ([]*User, error)
}

// LockoutState is an account's failed sign-in count as the lockout store
// holds it.
type LockoutState struct {
	// Failures are the attempts counted since the last success or lock
	// (an attempt counts before its password is checked).
	Failures int
	// LockedUntil is when the current lock ends; zero when none was set.
	LockedUntil time.Time
}

// LockoutInspector reads the lockout counter without counting an attempt.
type LockoutInspector interface {
	// LockoutState returns the counter of key; the zero value when there
	// is none.
	LockoutState(ctx context.Context, key string) (LockoutState, error)
}

// LockoutState of a service without lockout: there is never a counter.
func (noLimits) LockoutState(context.Context, string) (LockoutState, error) {
	return LockoutState{}, nil
}

// RoleNames returns the configured roles, sorted.
func (m *RoleModel) RoleNames() []string {
	out := make([]string, 0, len(m.roles))
	for r := range m.roles {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// UserSearch is the console's search box and filters.
type UserSearch struct {
	// Query is an email prefix ("alice@ex"), a name or email prefix
	// ("ali"), an email fragment starting with "@" ("@example.com", read
	// by a scan), or an account id (exact).
	Query string
	// Role, when set, must be a configured role.
	Role                    string
	Disabled, Verified, MFA *bool
}

// UserPage is one page of FindUsers.
type UserPage struct {
	Users []*User
	// MFA says which of Users have a confirmed TOTP authenticator.
	MFA map[string]bool
	// Next and Prev are the cursors of the following and the preceding
	// page; "" when there is none.
	Next, Prev string
}

// usersCursorTag starts the payload of a user-list cursor (see
// auditCursorTag): the admin API's cursors, which hold a bare email, and
// the audit log's are refused here.
const usersCursorTag = "users\x00"

// Cursor directions: the page after the position, or the one before it.
const (
	cursorNext = 'n'
	cursorPrev = 'p'
)

func (s *Service) sealUsersCursor(dir byte, email string) string {
	return s.sealCursor(usersCursorTag + string(dir) + email)
}

func (s *Service) openUsersCursor(c string) (byte, string, error) {
	v, err := s.openCursor(c)
	if err != nil {
		return 0, "", err
	}
	rest, ok := strings.CutPrefix(v, usersCursorTag)
	if !ok || len(rest) < 2 || (rest[0] != cursorNext && rest[0] != cursorPrev) {
		return 0, "", ErrBadCursor
	}
	return rest[0], rest[1:], nil
}

// maxUserQuery bounds the search text (an email is at most 254 bytes).
const maxUserQuery = 320

// isAccountID reports whether v has the shape of NewID's ids.
func isAccountID(v string) bool {
	if len(v) != 26 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// FindUsers is one page of the console's account list: at most limit
// (1–200, default 50) accounts in email order, from the position of cursor
// ("" for the first page). What the search text means, cheapest first:
// an account id (exact; when no account has it, the text is searched as
// below), text with "@" inside (email prefix), text starting with "@" (a
// fragment of the email, such as the domain: a scan), other text (email or
// name prefix). A cursor not made here for this list is ErrBadCursor
// (SPEC §18 H3).
func (s *Service) FindUsers(ctx context.Context, in UserSearch, cursor string, limit int) (*UserPage, error) {
	text := strings.TrimSpace(in.Query)
	if len(text) > maxUserQuery {
		return nil, &Error{Code: EINVALID, Field: "q", Message: "the search is too long"}
	}
	if in.Role != "" && !s.roles.KnownRole(in.Role) {
		return nil, &Error{Code: EINVALID, Field: "role", Message: "unknown role " + clip(in.Role)}
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	q := UserQuery{Role: in.Role, Disabled: in.Disabled, Verified: in.Verified, MFA: in.MFA, Limit: limit + 1}
	var dir byte = cursorNext
	if cursor != "" {
		d, pos, err := s.openUsersCursor(cursor)
		if err != nil {
			return nil, err
		}
		dir = d
		if d == cursorNext {
			q.After = pos
		} else {
			q.Before = pos
		}
	}
	if cursor == "" && isAccountID(text) {
		byID := q
		byID.Match, byID.Text = MatchID, text
		users, err := s.st.Users.FindUsers(ctx, byID)
		if err != nil {
			return nil, err
		}
		if len(users) > 0 {
			return s.userPage(ctx, users, "", "")
		}
	}
	q.Text = text
	switch {
	case text == "":
		q.Match = MatchAll
	case text[0] == '@':
		q.Match = MatchEmailContains
	case strings.Contains(text, "@"):
		q.Match = MatchEmailPrefix
	default:
		q.Match = MatchPrefix
	}
	users, err := s.st.Users.FindUsers(ctx, q)
	if err != nil {
		return nil, err
	}
	more := len(users) > limit
	var next, prev string
	if dir == cursorNext {
		if more {
			users = users[:limit]
		}
		if len(users) > 0 {
			if more {
				next = s.sealUsersCursor(cursorNext, users[len(users)-1].Email)
			}
			if cursor != "" {
				prev = s.sealUsersCursor(cursorPrev, users[0].Email)
			}
		}
	} else {
		if more {
			users = users[len(users)-limit:]
		}
		if len(users) > 0 {
			// This page was reached going back: the page it came from
			// follows it.
			next = s.sealUsersCursor(cursorNext, users[len(users)-1].Email)
			if more {
				prev = s.sealUsersCursor(cursorPrev, users[0].Email)
			}
		}
	}
	return s.userPage(ctx, users, next, prev)
}

func (s *Service) userPage(ctx context.Context, users []*User, next, prev string) (*UserPage, error) {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	mfa, err := s.st.MFA.MFAEnabled(ctx, ids)
	if err != nil {
		return nil, err
	}
	return &UserPage{Users: users, MFA: mfa, Next: next, Prev: prev}, nil
}

// UserDetail is one account as the console's user page shows it.
type UserDetail struct {
	User       *User
	MFA        *MFAStatus
	Sessions   []*Session // live ones, newest first
	Passkeys   []*Passkey
	Identities []*Identity
	APIKeys    []*APIKey
	Consents   []GrantedConsent
	// Audit holds the account's most recent events, newest first.
	Audit []*AuditEvent
	// Lockout is the failed sign-in counter; Locked says whether it
	// refuses sign-ins now, and Threshold is how many failures lock (0:
	// lockout is off).
	Lockout   LockoutState
	Locked    bool
	Threshold int
}

// UserDetailAuditEvents is how many recent events AdminUserDetail reads.
const UserDetailAuditEvents = 20

// AdminUserDetail reads an account and everything the console shows with
// it. The caller has checked that an administrator is asking.
func (s *Service) AdminUserDetail(ctx context.Context, id string) (*UserDetail, error) {
	u, err := s.st.Users.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &UserDetail{User: u, Threshold: s.limits.LockoutThreshold}
	if d.MFA, err = s.MFAStatus(ctx, id); err != nil {
		return nil, err
	}
	if d.Sessions, err = s.ListSessions(ctx, id); err != nil {
		return nil, err
	}
	if d.Passkeys, err = s.st.Passkeys.ListPasskeys(ctx, id); err != nil {
		return nil, err
	}
	if d.Identities, err = s.st.Identities.ListIdentities(ctx, id); err != nil {
		return nil, err
	}
	if d.APIKeys, err = s.ListAPIKeys(ctx, id); err != nil {
		return nil, err
	}
	if d.Consents, err = s.Consents(ctx, id); err != nil {
		return nil, err
	}
	if d.Audit, err = s.st.Audit.ListAudit(ctx, AuditFilter{UserID: id, Limit: UserDetailAuditEvents}); err != nil {
		return nil, err
	}
	if d.Lockout, err = s.st.Lockout.LockoutState(ctx, lockoutKey(u.Email)); err != nil {
		return nil, err
	}
	d.Locked = d.Lockout.LockedUntil.After(s.now())
	return d, nil
}

// AdminRevokeSession ends one session of the user, and the refresh
// families an authorization code issued to that browser session started
// (SPEC §14), so nothing signed in through it stays.
func (s *Service) AdminRevokeSession(ctx context.Context, actorID, userID, sessionID string, m Meta) error {
	if err := s.st.Sessions.DeleteSession(ctx, userID, sessionID); err != nil {
		return err
	}
	if err := s.st.Refresh.RevokeSessionFamilies(ctx, sessionID, s.now()); err != nil {
		return err
	}
	s.audit(ctx, EventSessionRevoked, userID, m, map[string]any{"session_id": sessionID, "actor": actorID})
	return nil
}

// AdminRevokeAPIKey deletes one API key of the user.
func (s *Service) AdminRevokeAPIKey(ctx context.Context, actorID, userID, keyID string, m Meta) error {
	if err := s.st.APIKeys.DeleteAPIKey(ctx, userID, keyID); err != nil {
		return err
	}
	s.audit(ctx, EventAPIKeyRevoked, userID, m, map[string]any{"key_id": keyID, "actor": actorID})
	return nil
}

// AdminClearLockout resets the account's failed sign-in count and lifts
// its lock (what a password reset does to it).
func (s *Service) AdminClearLockout(ctx context.Context, actorID, userID string, m Meta) error {
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	key := lockoutKey(u.Email)
	st, err := s.st.Lockout.LockoutState(ctx, key)
	if err != nil {
		return err
	}
	if err := s.st.Lockout.ClearFailures(ctx, key); err != nil {
		return err
	}
	s.audit(ctx, EventAccountUnlocked, userID, m, map[string]any{"actor": actorID, "was_locked": st.LockedUntil.After(s.now())})
	return nil
}

// AdminSendPasswordReset mails the account a password reset link: the job
// the forgot-password form queues (the mail worker makes the token), for
// an account the administrator names.
func (s *Service) AdminSendPasswordReset(ctx context.Context, actorID, userID string, m Meta) error {
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.enqueue(ctx, MailReset, u.Email, ""); err != nil {
		return err
	}
	s.audit(ctx, EventPasswordResetSent, userID, m, map[string]any{"actor": actorID})
	return nil
}

// SealNotice makes the admin console's message after an action ("API key
// revoked.") safe to carry in a redirect's URL: the text and an HMAC of it,
// so that a link made elsewhere cannot put words of its choosing on a
// console page.
func (s *Service) SealNotice(text string) string { return macSeal(s.keys.notice, text) }

// OpenNotice returns the text of a sealed notice, or false when it was not
// sealed by SealNotice with this server's root secret.
func (s *Service) OpenNotice(sealed string) (string, bool) { return macOpen(s.keys.notice, sealed, 0) }
