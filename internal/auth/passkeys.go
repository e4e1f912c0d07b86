package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
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
	// ListPasskeys returns the user's passkeys, oldest first.
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
func (s *Service) RemovePasskey(ctx context.Context, p *Principal, id string, m Meta) error {
	if err := s.RequireStepUp(ctx, p, false); err != nil {
		return err
	}
	userID := p.UserID
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	keys, err := s.st.Passkeys.ListPasskeys(ctx, userID)
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
		ids, err := s.st.Identities.ListIdentities(ctx, userID)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return ErrLastCredential
		}
	}
	if err := s.st.Passkeys.DeletePasskey(ctx, userID, id); err != nil {
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
	if err := s.st.Passkeys.RenamePasskey(ctx, userID, id, name); err != nil {
		return err
	}
	s.audit(ctx, EventPasskeyRenamed, userID, m, map[string]any{"passkey_id": id})
	return nil
}

// Record writes an audit event from outside this package (passkey ceremonies).
func (s *Service) Record(ctx context.Context, typ, userID string, m Meta, details map[string]any) {
	s.audit(ctx, typ, userID, m, details)
}

// ListPasskeys returns the user's passkeys.
func (s *Service) ListPasskeys(ctx context.Context, userID string) ([]*Passkey, error) {
	return s.st.Passkeys.ListPasskeys(ctx, userID)
}

// AddPasskey stores a passkey whose registration was verified
// (internal/passkey) for the caller p, who must be allowed to add a
// credential that signs in (CanAddSignInMethod).
func (s *Service) AddPasskey(ctx context.Context, p *Principal, pk *Passkey, m Meta) error {
	if err := s.CanAddSignInMethod(ctx, p); err != nil {
		return err
	}
	if pk.UserID != p.UserID {
		return &Error{Code: EFORBIDDEN, Message: "a passkey can be added only to the caller's own account"}
	}
	if err := s.st.Passkeys.CreatePasskey(ctx, pk); err != nil {
		return err
	}
	s.audit(ctx, EventPasskeyAdded, pk.UserID, m, map[string]any{"passkey_id": pk.ID})
	return nil
}

// UsePasskey records a passkey sign-in: the credential record (new sign
// counter) replaces prev only if it is still prev (compare-and-swap), so
// of two sign-ins presenting one counter value only one succeeds.
func (s *Service) UsePasskey(ctx context.Context, id string, prev, next []byte) error {
	err := s.st.Passkeys.UpdatePasskeyUse(ctx, id, prev, next, s.now())
	if errors.Is(err, ErrNotFound) {
		return ErrPasskeyLogin
	}
	return err
}

// PasskeyLoginTarget is who a passkey sign-in with an email is for: the
// account and its passkeys when it has some; otherwise (unknown email,
// disabled account, no passkeys) no account and the email's decoys, the
// same on every call (SPEC §18 H6), so the answer has the same shape either
// way and reveals nothing.
func (s *Service) PasskeyLoginTarget(ctx context.Context, email string) (*User, []*Passkey, *PasskeyDecoys, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return nil, nil, s.passkeyDecoys(email), nil
	}
	u, err := s.st.Users.UserByEmail(ctx, e)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, nil, err
	}
	if u != nil && !u.Disabled {
		keys, err := s.st.Passkeys.ListPasskeys(ctx, u.ID)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(keys) > 0 {
			return u, keys, nil, nil
		}
	}
	return nil, nil, s.passkeyDecoys(e), nil
}

// PasskeyDecoys are the credentials a passkey sign-in lists for an email
// without passkeys.
type PasskeyDecoys struct {
	// IDs are 1 or 2 credential ids of 16 bytes (the length platform
	// authenticators use).
	IDs [][]byte
	// Transports says whether the entries claim transports. Real entries do
	// when the browser reported them (most platform passkeys) and do not
	// otherwise (some security keys), so decoys come in both shapes too,
	// stable per email: an entry without transports reveals no passkey.
	Transports bool
}

// passkeyDecoys derives the decoys of an email (trimmed and lower-cased,
// whether or not it is well-formed) with the passkey decoy key.
func (s *Service) passkeyDecoys(email string) *PasskeyDecoys {
	m := hmac.New(sha256.New, s.keys.passkey)
	m.Write([]byte(strings.ToLower(strings.TrimSpace(email))))
	sum := m.Sum(nil)
	d := &PasskeyDecoys{IDs: [][]byte{bytes.Clone(sum[0:16])}, Transports: sum[30]&3 != 0}
	if sum[31]&1 == 1 {
		d.IDs = append(d.IDs, bytes.Clone(sum[16:32]))
	}
	return d
}

// PutChallenge keeps single-use ceremony state (passkey and social-login
// flows) for ttl.
func (s *Service) PutChallenge(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.st.Challenges.PutChallenge(ctx, key, value, s.now().Add(ttl))
}

// TakeChallenge returns and deletes a live challenge; ErrNotFound when it
// is missing, used or expired. Of concurrent calls exactly one wins.
func (s *Service) TakeChallenge(ctx context.Context, key string) ([]byte, error) {
	return s.st.Challenges.TakeChallenge(ctx, key, s.now())
}
