// Package token signs and verifies Gatehouse access tokens (RFC 9068 JWTs),
// signs OpenID Connect ID tokens, and owns the signing keys: generation,
// sealing at rest with the root secret, rotation, and the public JWKS.
//
// The ring holds two kinds of key. Access-token keys (one current key, of
// Options.Alg) sign what Issue makes. ID-token keys (one current key per
// algorithm in use: RS256, ES256 or EdDSA, never HS256) sign what
// SignIDToken makes; their kid starts with "id-". Both kinds are stored
// through the same auth.KeyStore, are published in the JWKS and rotate
// together. Because the kid is bound into each key's seal, the kind of a
// key cannot be changed in the database without the key failing to load.
//
// Verification pins everything an attacker could choose: the algorithm comes
// from the key named by kid (never from the token header alone), keys carried
// in the header (jwk, jku, x5c) are ignored, unknown kids are refused, and
// iss, aud, exp and nbf are checked with at most 5 seconds of leeway. Verify
// accepts only typ at+jwt and ParseIDTokenHint only typ JWT signed by an
// ID-token key, so neither kind of token passes for the other.
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
	"slices"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/auth"
)

// Algorithms Gatehouse signs access tokens with.
var Algorithms = []string{"EdDSA", "ES256", "RS256", "HS256"}

// IDTokenAlgorithms are the algorithms Gatehouse signs ID tokens with (the
// discovery document's id_token_signing_alg_values_supported). HS256 is not
// one: an ID token must be verifiable from the JWKS, and HMAC with the
// server's secret would not be, nor with a client secret ever be offered.
var IDTokenAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// DefaultIDTokenAlg is the ID-token algorithm when none is configured:
// OIDC Core §15.1 makes RS256 the one every relying party supports.
const DefaultIDTokenAlg = "RS256"

// idKIDPrefix starts the kid of every ID-token key. Access-token kids are
// auth.NewID()s, lower-case base32 without a hyphen, so they never start
// with it.
const idKIDPrefix = "id-"

// Options configure a Keyring.
type Options struct {
	Issuer   string // the public URL
	Audience string
	Alg      string // signing algorithm of new access-token keys
	// IDTokenAlg is the algorithm of ID tokens whose client asked for none
	// (GATEHOUSE_ID_TOKEN_ALG): RS256, ES256 or EdDSA. When it is set, New
	// makes sure an ID-token key of it exists, so that the key is in every
	// node's JWKS before the first ID token; "" means DefaultIDTokenAlg,
	// its key made on first use.
	IDTokenAlg string
	Secret     []byte // root secret; seals private keys at rest
	Store      auth.KeyStore
	AccessTTL  time.Duration
	Now        func() time.Time
	Log        *slog.Logger
}

type key struct {
	kid     string
	alg     string
	idToken bool              // an ID-token key (kid "id-…"), not an access-token key
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
	current    *key            // the access-token key
	idCurrent  map[string]*key // alg → the ID-token key of that algorithm
	verifiers  map[string]*key // kid → key, the keys tokens may be signed by
	jwks       []byte
	all        []*key
	lastReload time.Time
	newest     time.Time // creation time of the newest key made or loaded

	// makeMu serialises making an ID-token key on first use, so that one
	// node makes at most one per algorithm.
	makeMu sync.Mutex

	cache verifyCache
}

// KeyInfo describes a key for `gatehouse keys list`.
type KeyInfo struct {
	KID       string
	Alg       string
	IDToken   bool // signs ID tokens, not access tokens
	CreatedAt time.Time
	Current   bool // signs new tokens of its kind (and, for ID tokens, algorithm)
	Published bool
}

// State names where the key is in its life: "current" (signs new tokens),
// "verifying" (published, still accepted) or "retired" (kept, no longer
// accepted).
func (k KeyInfo) State() string {
	switch {
	case k.Current:
		return "current"
	case k.Published:
		return "verifying"
	}
	return "retired"
}

// New loads the keys from the store and makes sure a current access-token
// key of the configured algorithm exists, and an ID-token key of
// IDTokenAlg when that is set, generating them on first start.
func New(ctx context.Context, o Options) (*Keyring, error) {
	if len(o.Secret) < 32 {
		return nil, errors.New("token: root secret shorter than 32 bytes")
	}
	if o.IDTokenAlg != "" && !slices.Contains(IDTokenAlgorithms, o.IDTokenAlg) {
		return nil, fmt.Errorf("%w: %q", ErrIDTokenAlg, o.IDTokenAlg)
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
		if _, err := k.add(ctx, o.Alg, false); err != nil {
			return nil, err
		}
		if err := k.Reload(ctx); err != nil {
			return nil, err
		}
	}
	if o.IDTokenAlg != "" {
		if _, err := k.idKey(ctx, o.IDTokenAlg); err != nil {
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

// Rotate generates a new access-token key of the configured algorithm and
// a new ID-token key for every algorithm that has one (RotateAll), and
// stores them; they sign every token issued after them, while the previous
// keys keep verifying. It returns the kid of the new access-token key.
func (k *Keyring) Rotate(ctx context.Context) (string, error) {
	made, err := k.RotateAll(ctx)
	if err != nil {
		return "", err
	}
	return made[0].KID, nil
}

// RotateAll is Rotate, returning every key it made: the access-token key
// first, then the ID-token keys in the order of IDTokenAlgorithms.
func (k *Keyring) RotateAll(ctx context.Context) ([]KeyInfo, error) {
	// Another node may have made ID-token keys this one has not seen.
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	k.mu.RLock()
	var idAlgs []string
	for _, alg := range IDTokenAlgorithms {
		if k.idCurrent[alg] != nil || alg == k.opts.IDTokenAlg {
			idAlgs = append(idAlgs, alg)
		}
	}
	k.mu.RUnlock()
	made := make([]KeyInfo, 0, 1+len(idAlgs))
	ki, err := k.add(ctx, k.opts.Alg, false)
	if err == nil {
		made = append(made, ki)
		for _, alg := range idAlgs {
			if ki, err = k.add(ctx, alg, true); err != nil {
				break
			}
			made = append(made, ki)
		}
	}
	// Load what was stored even after a failure, so that this ring signs
	// with the keys every other node will load too.
	if rerr := k.Reload(ctx); err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	for i := range made {
		made[i].Current, made[i].Published = true, made[i].Alg != "HS256"
	}
	return made, nil
}

// add generates a key of alg, seals it and stores it, without loading it:
// callers Reload.
func (k *Keyring) add(ctx context.Context, alg string, idToken bool) (KeyInfo, error) {
	if idToken && !slices.Contains(IDTokenAlgorithms, alg) {
		return KeyInfo{}, fmt.Errorf("%w: %q", ErrIDTokenAlg, alg)
	}
	priv, err := generate(alg)
	if err != nil {
		return KeyInfo{}, err
	}
	der, err := marshalPrivate(alg, priv)
	if err != nil {
		return KeyInfo{}, err
	}
	kid := auth.NewID()
	if idToken {
		kid = idKIDPrefix + kid
	}
	nonce := make([]byte, k.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return KeyInfo{}, err
	}
	// The kid (and so the kind of key) and the alg are the seal's
	// additional data: relabelling either in the database breaks the seal.
	sealed := k.seal.Seal(nonce, nonce, der, aad(kid, alg))
	// The store keeps microseconds: compare at that resolution, or a key
	// made within the same microsecond as the current one ties with it and
	// the order (and so the current key) falls to the random kids.
	created := k.opts.Now().UTC().Truncate(time.Microsecond)
	// Keep keys strictly ordered by creation time even on a coarse clock.
	k.mu.Lock()
	if !created.After(k.newest) {
		created = k.newest.Add(time.Microsecond)
	}
	k.newest = created
	k.mu.Unlock()
	if err := k.opts.Store.AddSigningKey(ctx, &auth.SigningKey{KID: kid, Alg: alg, Sealed: sealed, CreatedAt: created}); err != nil {
		return KeyInfo{}, fmt.Errorf("token: store key: %w", err)
	}
	return KeyInfo{KID: kid, Alg: alg, IDToken: idToken, CreatedAt: created}, nil
}

// idKey returns the current ID-token key of alg, making one when there is
// none. It looks in the store first: another node may have made one, and
// every node then signs with that key (the newest of its algorithm).
func (k *Keyring) idKey(ctx context.Context, alg string) (*key, error) {
	k.mu.RLock()
	x := k.idCurrent[alg]
	k.mu.RUnlock()
	if x != nil {
		return x, nil
	}
	k.makeMu.Lock()
	defer k.makeMu.Unlock()
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	k.mu.RLock()
	x = k.idCurrent[alg]
	k.mu.RUnlock()
	if x != nil {
		return x, nil
	}
	if _, err := k.add(ctx, alg, true); err != nil {
		return nil, err
	}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	k.mu.RLock()
	x = k.idCurrent[alg]
	k.mu.RUnlock()
	if x == nil {
		return nil, fmt.Errorf("token: the new %s ID-token key did not load", alg)
	}
	return x, nil
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
		all = append(all, &key{kid: s.KID, alg: s.Alg, idToken: strings.HasPrefix(s.KID, idKIDPrefix), priv: priv, pub: pub, created: s.CreatedAt})
	}
	// Each kind of key, and each algorithm of ID-token key, is a chain of
	// its own, oldest first: its newest key is current.
	var access []*key
	idChains := map[string][]*key{}
	for _, x := range all {
		switch {
		case !x.idToken:
			access = append(access, x)
		case slices.Contains(IDTokenAlgorithms, x.alg): // never an HS256 ID-token key
			idChains[x.alg] = append(idChains[x.alg], x)
		}
	}
	now := k.opts.Now()
	verifiers := map[string]*key{}
	// A key stays trusted while tokens it signed can still be valid: until
	// its successor in its chain has existed for one access-token lifetime
	// (plus a margin); the immediate predecessor always. (ID tokens are
	// checked by relying parties as they arrive; an id_token_hint signed
	// by a retired key only makes logout ask for confirmation.)
	trust := func(chain []*key) *key {
		n := len(chain)
		if n == 0 {
			return nil
		}
		verifiers[chain[n-1].kid] = chain[n-1]
		for i := n - 2; i >= 0; i-- {
			succ := chain[i+1]
			if i == n-2 || now.Sub(succ.created) < k.opts.AccessTTL+5*time.Minute {
				verifiers[chain[i].kid] = chain[i]
			}
		}
		return chain[n-1]
	}
	cur := trust(access)
	idCurrent := map[string]*key{}
	for alg, chain := range idChains {
		idCurrent[alg] = trust(chain)
	}
	jwks, err := buildJWKS(all, verifiers)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.all, k.current, k.idCurrent, k.verifiers, k.jwks, k.lastReload = all, cur, idCurrent, verifiers, jwks, now
	if n := len(all); n > 0 && all[n-1].created.After(k.newest) {
		k.newest = all[n-1].created
	}
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

// Keys lists every stored key, oldest first.
func (k *Keyring) Keys() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]KeyInfo, 0, len(k.all))
	for _, x := range k.all {
		_, pub := k.verifiers[x.kid]
		current := x == k.current || x == k.idCurrent[x.alg] // idCurrent holds ID-token keys only
		out = append(out, KeyInfo{KID: x.kid, Alg: x.alg, IDToken: x.idToken, CreatedAt: x.created, Current: current, Published: pub && x.alg != "HS256"})
	}
	return out
}

// JWKS returns the JSON Web Key Set of the trusted public keys (RFC 7517),
// access-token and ID-token keys alike. HS256 keys are secrets and never
// appear in it.
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
