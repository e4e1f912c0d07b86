// Package auth is Gatehouse's domain: users, refresh-token families, the
// audit log, the roles-and-scopes model, and the services that implement
// registration, login and token issuance on top of small store interfaces.
// All authorization policy lives here, so every storage backend enforces the
// same rules; adapters (internal/sqlstore) only persist.
//
// Services are safe for concurrent use.
package auth

import (
	"context"
	"time"
)

// User is an account.
type User struct {
	ID            string
	Email         string // normalised: trimmed and lower-cased
	EmailVerified bool
	Name          string
	// PasswordHash is a PHC string (argon2id) or a legacy bcrypt hash; empty
	// when the account has no password.
	PasswordHash string
	Roles        []string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// HasRole reports whether u has role r.
func (u *User) HasRole(r string) bool {
	for _, x := range u.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// RefreshFamily groups the refresh tokens descending from one login. Its
// ExpiresAt is the absolute lifetime of every token in it.
type RefreshFamily struct {
	ID        string
	UserID    string
	ClientID  string
	Scope     string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
	// The sign-in the family descends from (SPEC §13); a refresh keeps
	// them and never raises them.
	ACR      string
	AMR      []string
	AuthTime time.Time
	// SessionID is the browser session an authorization code was issued
	// to (SPEC §14); RP-initiated logout of that session ends the family.
	SessionID string
}

// RefreshToken is one member of a family. Only the SHA-256 of the token
// is stored.
type RefreshToken struct {
	ID        string
	FamilyID  string
	Hash      string // hex SHA-256 of the token
	CreatedAt time.Time
	// RotatedAt is set when the token was exchanged for its successor.
	RotatedAt *time.Time
}

// AuditEvent is one security event. Details never hold a secret.
type AuditEvent struct {
	ID      string
	Type    string
	At      time.Time
	UserID  string
	IP      string
	Details map[string]any
	// Webhooks are the messages the event queues (one per subscribed
	// endpoint; SPEC §16), not part of the audit row: a store appending
	// the event inserts them in the same transaction.
	Webhooks []*WebhookMessage
}

// Audit event types.
const (
	EventLoginSucceeded   = "login.succeeded"
	EventLoginFailed      = "login.failed"
	EventUserRegistered   = "user.registered"
	EventUserDeleted      = "user.deleted"
	EventPasswordChanged  = "password.changed"
	EventPasswordRehash   = "password.rehashed"
	EventRefreshReused    = "refresh.reused"
	EventRefreshRevoked   = "refresh.revoked"
	EventRoleChanged      = "role.changed"
	EventKeyRotated       = "key.rotated"
	EventKeyRevoked       = "key.revoked"
	EventSessionRevoked   = "session.revoked"
	EventAccountLocked    = "account.locked"
	EventPasswordReset    = "password.reset"
	EventEmailVerified    = "email.verified"
	EventMailFailed       = "mail.failed"
	EventAPIKeyCreated    = "apikey.created"
	EventAPIKeyRevoked    = "apikey.revoked"
	EventUserUpdated      = "user.updated"
	EventUserDisabled     = "user.disabled"
	EventUserEnabled      = "user.enabled"
	EventUserRevoked      = "user.revoked"
	EventProviderLinked   = "provider.linked"
	EventProviderUnlinked = "provider.unlinked"
	EventAccountReclaimed = "account.reclaimed"
	EventRateLimited      = "rate.limited"
)

// UserStore persists users.
type UserStore interface {
	// CreateUser inserts u; ErrEmailTaken when the email exists.
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	UpdateUserName(ctx context.Context, id, name string, now time.Time) error
	// SetPasswordHash replaces the password hash only while it is still
	// old (compare-and-set, for re-hashing on login): ErrNotFound when the
	// user is gone or the password was changed or reset meanwhile.
	SetPasswordHash(ctx context.Context, id, old, hash string, now time.Time) error
	SetRoles(ctx context.Context, id string, roles []string, now time.Time) error
	SetEmailVerified(ctx context.Context, id string, verified bool, now time.Time) error
	SetDisabled(ctx context.Context, id string, disabled bool, now time.Time) error
	// ListUsers returns users ordered by email, after the given email, whose
	// email contains query (case-insensitive), at most limit.
	ListUsers(ctx context.Context, query, afterEmail string, limit int) ([]*User, error)
	UserDirectory // the admin console's search (console_users.go)
	DeleteUser(ctx context.Context, id string) error
	// ChangePassword stores the new hash and revokes every refresh family of
	// the user, in one transaction.
	ChangePassword(ctx context.Context, id, hash string, now time.Time) error
}

// RefreshStore persists refresh-token families.
type RefreshStore interface {
	// CreateFamily inserts a family and its first token in one transaction.
	CreateFamily(ctx context.Context, f *RefreshFamily, first *RefreshToken) error
	// RefreshTokenByHash returns the token and its family; ErrNotFound.
	RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, *RefreshFamily, error)
	// RotateRefreshToken marks old rotated at now and inserts next, in one
	// transaction, only when old was not rotated yet; it reports whether this
	// call did the rotation.
	RotateRefreshToken(ctx context.Context, oldID string, next *RefreshToken, now time.Time) (bool, error)
	// RevokeFamily marks the family revoked (idempotent).
	RevokeFamily(ctx context.Context, familyID string, now time.Time) error
	// RevokeUserFamilies revokes every family of a user.
	RevokeUserFamilies(ctx context.Context, userID string, now time.Time) error
	// RevokeUserFamiliesAt revokes every family of a user whose level is
	// acr (a TOTP confirmation ends the user's aal1 families).
	RevokeUserFamiliesAt(ctx context.Context, userID, acr string, now time.Time) error
	// RevokeSessionFamilies revokes every family whose SessionID is
	// sessionID ("" revokes nothing).
	RevokeSessionFamilies(ctx context.Context, sessionID string, now time.Time) error
}

// AuditStore appends to and reads the audit log.
type AuditStore interface {
	AppendAudit(ctx context.Context, e *AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
	AuditStream // the admin console's pages and export (console_audit.go)
}

// AuditFilter selects audit events; empty fields match everything.
type AuditFilter struct {
	UserID string
	Type   string
	Limit  int
}

// SigningKey is an access-token signing key as stored: the private key is
// sealed (encrypted and authenticated) with a key derived from the root
// secret, so a copy of the database alone cannot mint tokens.
type SigningKey struct {
	KID       string
	Alg       string
	Sealed    []byte
	CreatedAt time.Time
}

// KeyStore persists signing keys.
type KeyStore interface {
	// SigningKeys returns every key, oldest first.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	AddSigningKey(ctx context.Context, k *SigningKey) error
}

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID   string
	Kind     string // "access_token", "session", "api_key"
	Scopes   []string
	Roles    []string
	ClientID string
	KeyID    string // the API key, for Kind "api_key"
	// SessionID is the cookie session, for Kind "session".
	SessionID string
	// SID is an access token's sid (its refresh family, or session).
	SID string
	// ExpiresAt is when the credential stops working.
	ExpiresAt time.Time
	// How the user signed in, for sessions and access tokens (SPEC §13);
	// zero for API keys, which stand for no sign-in.
	ACR      string
	AMR      []string
	AuthTime time.Time
	// Enrolment marks the enrolment-only mfa_token of a user who must set
	// up a second factor: it is accepted by the enrolment routes only, and
	// MFAToken is the token (for finishing the sign-in).
	Enrolment bool
	MFAToken  string
}

// HasScope reports whether the credential carries scope s.
func (p *Principal) HasScope(s string) bool {
	for _, x := range p.Scopes {
		if x == s {
			return true
		}
	}
	return false
}
