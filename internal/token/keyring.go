// Package token signs and verifies Gatehouse access tokens (RFC 9068 JWTs)
// and owns the signing keys: generation, sealing at rest with the root
// secret, rotation, and the public JWKS.
//
// Verification pins everything an attacker could choose: the algorithm comes
// from the key named by kid (never from the token header alone), keys carried
// in the header (jwk, jku, x5c) are ignored, unknown kids are refused, and
// iss, aud, exp and nbf are checked with at most 5 seconds of leeway.
//
// A Keyring is safe for concurrent use.
package token

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"gatehouse/internal/auth"
)

// Algorithms Gatehouse signs with.
var Algorithms = []string{"EdDSA", "ES256", "RS256", "HS256"}

// Options configure a Keyring.
type Options struct {
	Issuer    string // the public URL
	Audience  string
	Alg       string // signing algorithm of new keys
	Secret    []byte // root secret; seals private keys at rest
	Store     auth.KeyStore
	AccessTTL time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

type key struct {
	kid     string
	alg     string
	priv    crypto.PrivateKey // ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey or []byte (HS256)
	pub     any               // the verification key
	created time.Time
}

// Keyring holds the signing keys.
type Keyring struct {
	opts Options
	seal cipher.AEAD
	// legacySeal opens keys sealed before the seal key came from HKDF.
	legacySeal cipher.AEAD

	mu         sync.RWMutex
	current    *key
	verifiers  map[string]*key // kid → key, the keys tokens may be signed by
	jwks       []byte
	all        []*key
	lastReload time.Time

	cache verifyCache
}

// KeyInfo describes a key for `gatehouse keys list`.
type KeyInfo struct {
	KID       string
	Alg       string
	CreatedAt time.Time
	Current   bool
	Published bool
}

// New loads the keys from the store and makes sure a current key of the
// configured algorithm exists, generating one on first start.
func New(ctx context.Context, o Options) (*Keyring, error) {
	if len(o.Secret) < 32 {
		return nil, errors.New("token: root secret shorter than 32 bytes")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// The sealing key is derived from the root secret for this purpose
	// (HKDF-SHA256), so the database alone does not reveal the private
	// keys. Keys sealed before v1 used HMAC(secret, purpose): they are
	// still opened with that key, and every new key is sealed with HKDF's.
	sk, err := auth.DeriveKey(o.Secret, sealInfo)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(sk)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, o.Secret)
	m.Write([]byte("gatehouse signing-key seal v1"))
	legacy, err := newGCM(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	k := &Keyring{opts: o, seal: aead, legacySeal: legacy}
	k.cache.init()
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	k.mu.RLock()
	cur := k.current
	k.mu.RUnlock()
	if cur == nil || cur.alg != o.Alg {
		if _, err := k.Rotate(ctx); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// sealInfo is the HKDF info of the key that seals signing keys at rest.
const sealInfo = "gatehouse/v1/signing-key-seal"

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func aad(kid, alg string) []byte { return []byte("gatehouse-signing-key\x00" + kid + "\x00" + alg) }

func generate(alg string) (crypto.PrivateKey, error) {
	switch alg {
	case "EdDSA":
		_, p, err := ed25519.GenerateKey(rand.Reader)
		return p, err
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		return rsa.GenerateKey(rand.Reader, 3072)
	case "HS256":
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}
	return nil, fmt.Errorf("token: unsupported algorithm %q", alg)
}

func marshalPrivate(alg string, p crypto.PrivateKey) ([]byte, error) {
	if alg == "HS256" {
		return p.([]byte), nil
	}
	return x509.MarshalPKCS8PrivateKey(p)
}

func parsePrivate(alg string, der []byte) (priv crypto.PrivateKey, pub any, err error) {
	if alg == "HS256" {
		return der, der, nil
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, nil, err
	}
	switch alg {
	case "EdDSA":
		if k, ok := p.(ed25519.PrivateKey); ok {
			return k, k.Public(), nil
		}
	case "ES256":
		if k, ok := p.(*ecdsa.PrivateKey); ok && k.Curve == elliptic.P256() {
			return k, &k.PublicKey, nil
		}
	case "RS256":
		if k, ok := p.(*rsa.PrivateKey); ok {
			return k, &k.PublicKey, nil
		}
	}
	return nil, nil, fmt.Errorf("token: key type %T does not match algorithm %s", p, alg)
}

// Rotate generates a new key of the configured algorithm and stores it; it
// signs every token issued after it, while the previous keys keep verifying.
func (k *Keyring) Rotate(ctx context.Context) (string, error) {
	priv, err := generate(k.opts.Alg)
	if err != nil {
		return "", err
	}
	der, err := marshalPrivate(k.opts.Alg, priv)
	if err != nil {
		return "", err
	}
	kid := auth.NewID()
	nonce := make([]byte, k.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := k.seal.Seal(nonce, nonce, der, aad(kid, k.opts.Alg))
	// The store keeps microseconds: compare at that resolution, or a key
	// made within the same microsecond as the current one ties with it and
	// the order (and so the current key) falls to the random kids.
	created := k.opts.Now().UTC().Truncate(time.Microsecond)
	// Keep keys strictly ordered by creation time even on a coarse clock.
	k.mu.RLock()
	if k.current != nil && !created.After(k.current.created) {
		created = k.current.created.Add(time.Microsecond)
	}
	k.mu.RUnlock()
	if err := k.opts.Store.AddSigningKey(ctx, &auth.SigningKey{KID: kid, Alg: k.opts.Alg, Sealed: sealed, CreatedAt: created}); err != nil {
		return "", fmt.Errorf("token: store key: %w", err)
	}
	if err := k.Reload(ctx); err != nil {
		return "", err
	}
	return kid, nil
}

// Reload reads the keys from the store again (other processes may have
// rotated them).
func (k *Keyring) Reload(ctx context.Context) error {
	stored, err := k.opts.Store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("token: load keys: %w", err)
	}
	var all []*key
	for _, s := range stored {
		ns := k.seal.NonceSize()
		if len(s.Sealed) < ns {
			return fmt.Errorf("token: key %s: sealed data too short", s.KID)
		}
		der, err := k.seal.Open(nil, s.Sealed[:ns], s.Sealed[ns:], aad(s.KID, s.Alg))
		if err != nil {
			der, err = k.legacySeal.Open(nil, s.Sealed[:ns], s.Sealed[ns:], aad(s.KID, s.Alg))
		}
		if err != nil {
			return fmt.Errorf("token: key %s cannot be unsealed: is GATEHOUSE_SECRET the one it was made with? (%w)", s.KID, err)
		}
		priv, pub, err := parsePrivate(s.Alg, der)
		if err != nil {
			return fmt.Errorf("token: key %s: %w", s.KID, err)
		}
		all = append(all, &key{kid: s.KID, alg: s.Alg, priv: priv, pub: pub, created: s.CreatedAt})
	}
	now := k.opts.Now()
	verifiers := map[string]*key{}
	var cur *key
	if n := len(all); n > 0 {
		cur = all[n-1]
		verifiers[cur.kid] = cur
		// A key stays trusted while tokens it signed can still be valid:
		// until its successor has existed for one access-token lifetime
		// (plus a margin); the immediate predecessor always.
		for i := n - 2; i >= 0; i-- {
			succ := all[i+1]
			if i == n-2 || now.Sub(succ.created) < k.opts.AccessTTL+5*time.Minute {
				verifiers[all[i].kid] = all[i]
			}
		}
	}
	jwks, err := buildJWKS(all, verifiers)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.all, k.current, k.verifiers, k.jwks, k.lastReload = all, cur, verifiers, jwks, now
	k.mu.Unlock()
	return nil
}

// Run reloads the keys every interval until ctx ends, so that a rotation
// made by another process takes effect here within a minute.
func (k *Keyring) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Reload(ctx); err != nil && ctx.Err() == nil {
				k.opts.Log.Error("reloading signing keys", "err", err)
			}
		}
	}
}

// Keys lists every stored key.
func (k *Keyring) Keys() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]KeyInfo, 0, len(k.all))
	for _, x := range k.all {
		_, pub := k.verifiers[x.kid]
		out = append(out, KeyInfo{KID: x.kid, Alg: x.alg, CreatedAt: x.created, Current: x == k.current, Published: pub && x.alg != "HS256"})
	}
	return out
}

// JWKS returns the JSON Web Key Set of the trusted public keys (RFC 7517).
// HS256 keys are secrets and never appear in it.
func (k *Keyring) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func buildJWKS(all []*key, trusted map[string]*key) ([]byte, error) {
	keys := []map[string]string{}
	for i := len(all) - 1; i >= 0; i-- { // newest first
		x := all[i]
		if trusted[x.kid] == nil {
			continue
		}
		j := map[string]string{"kid": x.kid, "alg": x.alg, "use": "sig"}
		switch p := x.pub.(type) {
		case ed25519.PublicKey:
			j["kty"], j["crv"], j["x"] = "OKP", "Ed25519", b64(p)
		case *ecdsa.PublicKey:
			j["kty"], j["crv"] = "EC", "P-256"
			raw, err := p.Bytes() // uncompressed point: 0x04 || X || Y
			if err != nil || len(raw) != 65 {
				return nil, fmt.Errorf("token: key %s: %v", x.kid, err)
			}
			j["x"], j["y"] = b64(raw[1:33]), b64(raw[33:65])
		case *rsa.PublicKey:
			j["kty"], j["n"], j["e"] = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
		default: // HS256: a shared secret, never published
			continue
		}
		keys = append(keys, j)
	}
	return json.Marshal(map[string]any{"keys": keys})
}
