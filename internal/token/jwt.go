package token

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/internal/auth"
)

// Leeway is the clock skew tolerated on exp, nbf and iat (SPEC: at most 5 s).
const Leeway = 5 * time.Second

// maxTokenLen bounds what is parsed at all.
const maxTokenLen = 8 << 10

// ErrInvalid is returned for every token that does not verify; the reason is
// wrapped for logs only.
var ErrInvalid = errors.New("token: invalid access token")

type claims struct {
	jwt.RegisteredClaims
	ClientID string           `json:"client_id"`
	Scope    string           `json:"scope"`
	Roles    *[]string        `json:"roles,omitempty"` // absent for third-party clients (SPEC §14)
	Email    string           `json:"email,omitempty"`
	ACR      string           `json:"acr,omitempty"`
	AMR      []string         `json:"amr,omitempty"`
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	SID      string           `json:"sid,omitempty"`
}

func authTime(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t)
}

func method(alg string) jwt.SigningMethod {
	switch alg {
	case "EdDSA":
		return jwt.SigningMethodEdDSA
	case "ES256":
		return jwt.SigningMethodES256
	case "RS256":
		return jwt.SigningMethodRS256
	case "HS256":
		return jwt.SigningMethodHS256
	}
	return nil
}

var _ auth.AccessTokenIssuer = (*Keyring)(nil)

// Issue signs an access token with the current key.
func (k *Keyring) Issue(_ context.Context, c *auth.AccessClaims) (string, error) {
	k.mu.RLock()
	cur := k.current
	k.mu.RUnlock()
	if cur == nil {
		return "", errors.New("token: no signing key")
	}
	var roles *[]string
	if !c.NoRoles {
		r := c.Roles
		if r == nil {
			r = []string{}
		}
		roles = &r
	}
	nbf := c.IssuedAt
	if !c.NotBefore.IsZero() {
		nbf = c.NotBefore
	}
	t := jwt.NewWithClaims(method(cur.alg), claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    k.opts.Issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{k.opts.Audience},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			NotBefore: jwt.NewNumericDate(nbf),
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ID:        c.ID,
		},
		ClientID: c.ClientID,
		Scope:    strings.Join(c.Scopes, " "),
		Roles:    roles,
		Email:    c.Email,
		ACR:      c.ACR,
		AMR:      c.AMR,
		AuthTime: authTime(c.AuthTime),
		SID:      c.SID,
	})
	t.Header["kid"] = cur.kid
	t.Header["typ"] = "at+jwt" // RFC 9068 §2.1
	return t.SignedString(cur.priv)
}

// Verify checks an access token and returns its claims.
func (k *Keyring) Verify(tok string) (*auth.AccessClaims, error) {
	now := k.opts.Now()
	if c := k.cache.get(tok, now); c != nil {
		return c, nil
	}
	if len(tok) > maxTokenLen || strings.Count(tok, ".") != 2 {
		return nil, ErrInvalid
	}
	k.mu.RLock()
	algs := make([]string, 0, 2)
	for _, x := range k.verifiers {
		if !contains(algs, x.alg) {
			algs = append(algs, x.alg)
		}
	}
	k.mu.RUnlock()
	p := jwt.NewParser(
		jwt.WithValidMethods(algs), // never "none", never an algorithm we do not sign with
		jwt.WithIssuer(k.opts.Issuer),
		jwt.WithAudience(k.opts.Audience),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(k.opts.Now),
	)
	var cl claims
	parsed, err := p.ParseWithClaims(tok, &cl, k.keyFunc)
	if err != nil {
		return nil, errors.Join(ErrInvalid, err)
	}
	if cl.Subject == "" || cl.ExpiresAt == nil {
		return nil, ErrInvalid
	}
	out := &auth.AccessClaims{
		ID: cl.ID, Subject: cl.Subject, Email: cl.Email, ClientID: cl.ClientID,
		Scopes: auth.ParseScope(cl.Scope), ExpiresAt: cl.ExpiresAt.Time,
	}
	if cl.IssuedAt != nil {
		out.IssuedAt = cl.IssuedAt.Time
	}
	if cl.Roles != nil {
		out.Roles = *cl.Roles
	}
	out.ACR, out.AMR, out.SID = cl.ACR, cl.AMR, cl.SID
	out.KID, _ = parsed.Header["kid"].(string)
	if cl.AuthTime != nil {
		out.AuthTime = cl.AuthTime.Time
	}
	var nbf time.Time
	if cl.NotBefore != nil {
		nbf = cl.NotBefore.Time
	}
	k.cache.put(tok, out, nbf)
	return out, nil
}

// keyFunc picks the verification key by kid and pins the algorithm to the
// key's own: a token cannot choose HS256 to be checked with a public key.
// Keys embedded in the header (jwk, jku, x5c, x5u) are never used.
//
// Only typ at+jwt passes: an ID token (typ JWT) is never an access token.
// Any trusted key may have signed an access token: while a cluster is
// upgraded, a node from before ID-token keys existed signs with the newest
// key of the ring, which may be one.
func (k *Keyring) keyFunc(t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, errors.New("typ is not at+jwt")
	}
	kid, _ := t.Header["kid"].(string)
	x := k.lookup(kid)
	if x == nil {
		return nil, errors.New("unknown kid")
	}
	if t.Method.Alg() != x.alg {
		return nil, errors.New("algorithm does not match the key")
	}
	return x.pub, nil
}

// lookup returns the trusted key named kid, or nil.
func (k *Keyring) lookup(kid string) *key {
	k.mu.RLock()
	x := k.verifiers[kid]
	stale := k.opts.Now().Sub(k.lastReload) > 2*time.Second // lastReload is on the same clock
	k.mu.RUnlock()
	if x == nil && kid != "" && stale {
		// Another node may have rotated: look again, at most every 2 s, so
		// a flood of made-up kids costs one cheap query a second.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = k.Reload(ctx)
		cancel()
		k.mu.RLock()
		x = k.verifiers[kid]
		k.mu.RUnlock()
	}
	return x
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// verifyCache remembers tokens that verified, until they expire, so a token
// presented many times is checked cryptographically once. A tampered token
// is a different string and never hits the cache.
type verifyCache struct {
	mu sync.RWMutex
	m  map[string]cached
}

type cached struct {
	c   *auth.AccessClaims
	nbf time.Time
}

const cacheMax = 50_000

func (v *verifyCache) init() { v.m = make(map[string]cached) }

func (v *verifyCache) get(tok string, now time.Time) *auth.AccessClaims {
	v.mu.RLock()
	e, ok := v.m[tok]
	v.mu.RUnlock()
	if !ok {
		return nil
	}
	if !now.Before(e.c.ExpiresAt.Add(Leeway)) || now.Add(Leeway).Before(e.nbf) {
		v.mu.Lock()
		delete(v.m, tok)
		v.mu.Unlock()
		return nil
	}
	return e.c
}

func (v *verifyCache) put(tok string, c *auth.AccessClaims, nbf time.Time) {
	v.mu.Lock()
	if len(v.m) >= cacheMax {
		clear(v.m) // crude but bounded; re-verification is only slower
	}
	v.m[tok] = cached{c: c, nbf: nbf}
	v.mu.Unlock()
}
