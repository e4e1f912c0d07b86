package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
	"sync"
	"time"
)

// APIKey is a long-lived credential of one user with a subset of the
// user's scopes. Only the SHA-256 of the key is stored.
type APIKey struct {
	ID         string
	UserID     string
	Name       string
	Prefix     string // the first characters, to recognise a key in lists
	Hash       string
	Scopes     []string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
}

// APIKeyStore persists API keys.
type APIKeyStore interface {
	CreateAPIKey(ctx context.Context, k *APIKey) error
	APIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	// ListAPIKeys returns the user's keys, newest first.
	ListAPIKeys(ctx context.Context, userID string) ([]*APIKey, error)
	// DeleteAPIKey removes one of the user's keys; ErrNotFound otherwise.
	DeleteAPIKey(ctx context.Context, userID, id string) error
	DeleteUserAPIKeys(ctx context.Context, userID string) error
	// TouchAPIKeys records last-used times in one batch.
	TouchAPIKeys(ctx context.Context, used map[string]time.Time) error
}

// API key format: "gth_" + 43 base62 characters (256 bits of randomness) +
// 6 base62 characters of CRC-32 checksum. The fixed prefix and the checksum
// let secret scanners find leaked keys with few false positives, and let
// the server refuse mistyped or made-up keys without a database lookup.
const (
	apiKeyPrefix  = "gth_"
	apiKeyRandLen = 43
	apiKeySumLen  = 6
	base62        = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

func encode62(n *big.Int, width int) string {
	b := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	x := new(big.Int).Set(n)
	for i := width - 1; i >= 0; i-- {
		x.DivMod(x, base, mod)
		b[i] = base62[mod.Int64()]
	}
	return string(b)
}

func apiKeyChecksum(random string) string {
	return encode62(big.NewInt(int64(crc32.ChecksumIEEE([]byte(random)))), apiKeySumLen)
}

// NewAPIKeySecret returns a fresh API key.
func NewAPIKeySecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	random := encode62(new(big.Int).SetBytes(b[:]), apiKeyRandLen)
	return apiKeyPrefix + random + apiKeyChecksum(random)
}

// IsAPIKey reports whether s has the shape of a Gatehouse API key.
func IsAPIKey(s string) bool { return strings.HasPrefix(s, apiKeyPrefix) }

// ValidAPIKeyChecksum checks the format and checksum of a key.
func ValidAPIKeyChecksum(s string) bool {
	if len(s) != len(apiKeyPrefix)+apiKeyRandLen+apiKeySumLen || !IsAPIKey(s) {
		return false
	}
	body := s[len(apiKeyPrefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(base62, body[i]) < 0 {
			return false
		}
	}
	random := body[:apiKeyRandLen]
	return apiKeyChecksum(random) == body[apiKeyRandLen:]
}

// ErrInvalidAPIKey is the one answer for every refused API key.
var ErrInvalidAPIKey = &Error{Code: EUNAUTHORIZED, Message: "the API key is invalid, expired or revoked"}

// CreateAPIKeyInput is a request for a new key.
type CreateAPIKeyInput struct {
	Name      string
	Scopes    []string
	ExpiresAt *time.Time
}

// CreateAPIKey makes a key for the caller p, whose account is u. Its
// scopes must be known, allowed by u's roles and held by the credential p
// uses (SPEC §18 H1).
func (s *Service) CreateAPIKey(ctx context.Context, p *Principal, u *User, in CreateAPIKeyInput, m Meta) (*APIKey, string, error) {
	if err := CanManageAPIKeys(p); err != nil {
		return nil, "", err
	}
	name, err := validName(in.Name)
	if err != nil {
		return nil, "", err
	}
	if name == "" {
		return nil, "", &Error{Code: EINVALID, Field: "name", Message: "name is required"}
	}
	if len(in.Scopes) == 0 {
		return nil, "", &Error{Code: EINVALID, Field: "scopes", Message: "at least one scope is required"}
	}
	scopes, err := s.keyScopesFor(p, u, in.Scopes)
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		return nil, "", &Error{Code: EINVALID, Field: "expires_at", Message: "expires_at must be in the future"}
	}
	// Allowed; now the sign-in must be recent enough (SPEC §13 step-up).
	if err := s.RequireStepUp(ctx, p, false); err != nil {
		return nil, "", err
	}
	secret := NewAPIKeySecret()
	k := &APIKey{ID: NewID(), UserID: u.ID, Name: name, Prefix: secret[:len(apiKeyPrefix)+6], Hash: HashToken(secret),
		Scopes: scopes, CreatedAt: now, ExpiresAt: in.ExpiresAt}
	if err := s.st.APIKeys.CreateAPIKey(ctx, k); err != nil {
		return nil, "", err
	}
	s.audit(ctx, EventAPIKeyCreated, u.ID, m, map[string]any{"key_id": k.ID, "scopes": scopes})
	return k, secret, nil
}

// RevokeAPIKey deletes one of the caller's keys. An API key as the caller
// can revoke only itself (a leaked key can be retired with itself, and
// cannot retire the owner's other keys).
func (s *Service) RevokeAPIKey(ctx context.Context, p *Principal, id string, m Meta) error {
	if p.Kind == KindAPIKey && p.KeyID != id {
		return &Error{Code: EFORBIDDEN, Message: "an API key can revoke only itself"}
	}
	if err := s.st.APIKeys.DeleteAPIKey(ctx, p.UserID, id); err != nil {
		return err
	}
	s.audit(ctx, EventAPIKeyRevoked, p.UserID, m, map[string]any{"key_id": id})
	return nil
}

// AuthenticateAPIKey resolves an API key: format and checksum first (no
// database work for garbage), then the stored hash, expiry, and the owner,
// read fresh so a disable or role change applies on the next request. The
// key's effective scopes are its own within what the owner's current roles
// allow.
func (s *Service) AuthenticateAPIKey(ctx context.Context, secret string) (*APIKey, *User, []string, error) {
	if !ValidAPIKeyChecksum(secret) {
		return nil, nil, nil, ErrInvalidAPIKey
	}
	k, err := s.st.APIKeys.APIKeyByHash(ctx, HashToken(secret))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, ErrInvalidAPIKey
	}
	if err != nil {
		return nil, nil, nil, err
	}
	now := s.now()
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return nil, nil, nil, ErrInvalidAPIKey
	}
	u, err := s.st.Users.UserByID(ctx, k.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, ErrInvalidAPIKey
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if u.Disabled {
		return nil, nil, nil, ErrInvalidAPIKey
	}
	s.keyUse.note(k.ID, now)
	return k, u, s.narrow(k.Scopes, u.Roles), nil
}

// keyUsage collects last-used times in memory; FlushAPIKeyUse writes them
// in one batch, so using a key costs no database write per request.
type keyUsage struct {
	mu   sync.Mutex
	used map[string]time.Time
}

func (k *keyUsage) note(id string, t time.Time) {
	k.mu.Lock()
	if k.used == nil {
		k.used = map[string]time.Time{}
	}
	k.used[id] = t
	k.mu.Unlock()
}

// FlushAPIKeyUse writes the collected last-used times.
func (s *Service) FlushAPIKeyUse(ctx context.Context) error {
	s.keyUse.mu.Lock()
	used := s.keyUse.used
	s.keyUse.used = nil
	s.keyUse.mu.Unlock()
	if len(used) == 0 {
		return nil
	}
	return s.st.APIKeys.TouchAPIKeys(ctx, used)
}

// ListAPIKeys returns the user's keys (never the secrets), with last-used
// times not yet flushed merged in.
func (s *Service) ListAPIKeys(ctx context.Context, userID string) ([]*APIKey, error) {
	keys, err := s.st.APIKeys.ListAPIKeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	s.keyUse.mu.Lock()
	for _, k := range keys {
		if t, ok := s.keyUse.used[k.ID]; ok && (k.LastUsedAt == nil || t.After(*k.LastUsedAt)) {
			t := t
			k.LastUsedAt = &t
		}
	}
	s.keyUse.mu.Unlock()
	return keys, nil
}
