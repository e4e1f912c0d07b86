package auth

import (
	"context"
	"time"
)

// Passkey is a WebAuthn credential of a user. Credential holds the
// library's credential record (public key, flags, sign counter) as JSON.
type Passkey struct {
	ID           string
	UserID       string
	Name         string
	CredentialID []byte
	Credential   []byte
	CreatedAt    time.Time
	LastUsedAt   *time.Time
}

// PasskeyStore persists passkeys.
type PasskeyStore interface {
	CreatePasskey(ctx context.Context, p *Passkey) error
	PasskeyByCredentialID(ctx context.Context, credentialID []byte) (*Passkey, error)
	ListPasskeys(ctx context.Context, userID string) ([]*Passkey, error)
	// UpdatePasskeyUse replaces the credential record after a login, only
	// if it is still prev (compare-and-swap): two logins racing with one
	// counter value cannot both succeed. ErrNotFound when it changed.
	UpdatePasskeyUse(ctx context.Context, id string, prev, credential []byte, at time.Time) error
	// RenamePasskey and DeletePasskey act on one of the user's passkeys;
	// ErrNotFound otherwise.
	RenamePasskey(ctx context.Context, userID, id, name string) error
	DeletePasskey(ctx context.Context, userID, id string) error
}

// Passkey audit events.
const (
	EventPasskeyAdded     = "passkey.added"
	EventPasskeyRemoved   = "passkey.removed"
	EventPasskeyRenamed   = "passkey.renamed"
	EventPasskeyRegressed = "passkey.counter_regressed"
)

// ErrPasskeyLogin is the one answer for every refused passkey login.
var ErrPasskeyLogin = &Error{Code: EUNAUTHORIZED, Message: "the passkey could not be verified"}

// RemovePasskey deletes one of the user's passkeys, unless it is the
// account's last way to sign in.
func (s *Service) RemovePasskey(ctx context.Context, userID, id string, m Meta) error {
	u, err := s.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	keys, err := s.Passkeys.ListPasskeys(ctx, userID)
	if err != nil {
		return err
	}
	found := false
	for _, k := range keys {
		found = found || k.ID == id
	}
	if !found {
		return ErrNotFound
	}
	if u.PasswordHash == "" && len(keys) == 1 {
		ids, err := s.Identities.ListIdentities(ctx, userID)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return ErrLastCredential
		}
	}
	if err := s.Passkeys.DeletePasskey(ctx, userID, id); err != nil {
		return err
	}
	s.audit(ctx, EventPasskeyRemoved, userID, m, map[string]any{"passkey_id": id})
	return nil
}

// RenamePasskey names one of the user's passkeys.
func (s *Service) RenamePasskey(ctx context.Context, userID, id, name string, m Meta) error {
	name, err := validName(name)
	if err != nil {
		return err
	}
	if name == "" {
		return &Error{Code: EINVALID, Field: "name", Message: "name is required"}
	}
	if err := s.Passkeys.RenamePasskey(ctx, userID, id, name); err != nil {
		return err
	}
	s.audit(ctx, EventPasskeyRenamed, userID, m, map[string]any{"passkey_id": id})
	return nil
}

// Record writes an audit event from outside this package (passkey ceremonies).
func (s *Service) Record(ctx context.Context, typ, userID string, m Meta, details map[string]any) {
	s.audit(ctx, typ, userID, m, details)
}
