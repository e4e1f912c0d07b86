package guard

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/internal/revfeed"
)

// algKeyType pins each accepted algorithm to the only key type that may
// verify it. HS* and none are absent: they have no public key, and
// accepting HS256 "signed with the public key" is the classic algorithm
// confusion attack.
var algKeyType = map[string]string{"EdDSA": "OKP", "ES256": "EC", "RS256": "RSA"}

// verifyKey is one public key from the JWKS.
type verifyKey struct {
	kid, alg string
	pub      any    // ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
	raw      []byte // the JWK as published, to recognise it across refreshes
}

// keySet is one fetch of the JWKS. It is never modified once stored.
type keySet struct {
	keys    map[string]*verifyKey
	fetched time.Time
}

// tokenEntry is a verified access token.
type tokenEntry struct {
	p   *Principal
	key *verifyKey     // the key that verified it; the entry is void once it leaves the JWKS
	rev revfeed.Claims // what the revocation feed is checked against, on every use
}

type claims struct {
	jwt.RegisteredClaims
	ClientID string           `json:"client_id"`
	SID      string           `json:"sid"` // the refresh family or session (SPEC §15)
	Scope    string           `json:"scope"`
	Roles    []string         `json:"roles"`
	Email    string           `json:"email"`
	ACR      string           `json:"acr"`       // RFC 9068 §2.2.1: "aal1" or "aal2"
	AMR      []string         `json:"amr"`       // RFC 8176 values
	AuthTime *jwt.NumericDate `json:"auth_time"` // when the user signed in
}

func newParser(g *Guard) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods(g.algs), // never "none", never HS*: checked before any key lookup
		jwt.WithIssuer(g.cfg.Issuer),
		jwt.WithAudience(g.cfg.Audience),
		jwt.WithLeeway(g.cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(g.now),
	)
}

// verifyJWT checks an access token locally. A token verified before costs
// a map lookup until it expires: a tampered token is another string and
// misses the cache. With the revocation feed, the token is checked against
// it every time, cached or not.
func (g *Guard) verifyJWT(ctx context.Context, tok string) (*Principal, error) {
	now := g.now()
	if e, ok := g.tokens.get(tok, now); ok {
		if ks := g.currentKeys(ctx, now); ks != nil && ks.keys[e.key.kid] == e.key {
			if g.revoked != nil {
				if err := g.checkRevoked(ctx, tok, e.rev, now); err != nil {
					return nil, err
				}
			}
			return e.p.clone(), nil
		}
		g.tokens.delete(tok) // its key is gone from the JWKS: verify again, and fail
	}
	if len(tok) > maxTokenLen || strings.Count(tok, ".") != 2 {
		return nil, invalid("malformed access token")
	}
	var (
		cl     claims
		key    *verifyKey
		keyErr error
	)
	_, err := g.parser.ParseWithClaims(tok, &cl, func(t *jwt.Token) (any, error) {
		key, keyErr = g.keyFor(ctx, t)
		if keyErr != nil {
			return nil, keyErr
		}
		return key.pub, nil
	})
	if err != nil {
		if errors.Is(keyErr, ErrUnavailable) {
			return nil, keyErr
		}
		return nil, invalid(err.Error())
	}
	if cl.Subject == "" {
		return nil, invalid("no sub")
	}
	p := &Principal{
		Subject: cl.Subject, Kind: KindAccessToken, Scopes: strings.Fields(cl.Scope), Roles: cl.Roles,
		Email: cl.Email, ClientID: cl.ClientID, ExpiresAt: cl.ExpiresAt.Time,
		ACR: cl.ACR, AMR: cl.AMR,
	}
	if cl.AuthTime != nil {
		p.AuthTime = unixTime(cl.AuthTime.Unix())
	}
	rev := revfeed.Claims{SID: cl.SID, Sub: cl.Subject, ClientID: cl.ClientID, KID: key.kid}
	if cl.IssuedAt != nil {
		rev.IssuedAt = cl.IssuedAt.Time
	}
	g.tokens.put(tok, tokenEntry{p: p, key: key, rev: rev}, cl.ExpiresAt.Add(g.cfg.Leeway), now)
	if g.revoked != nil {
		if err := g.checkRevoked(ctx, tok, rev, now); err != nil {
			return nil, err
		}
	}
	return p.clone(), nil
}

// keyFor picks the key the token header names and pins the algorithm to
// it. Keys carried in the header (jwk, jku, x5c, x5u) are never looked at.
func (g *Guard) keyFor(ctx context.Context, t *jwt.Token) (*verifyKey, error) {
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, errors.New("typ is not at+jwt (RFC 9068)")
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("crit header parameters are not understood")
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" || len(kid) > 256 {
		return nil, errors.New("no usable kid")
	}
	k, err := g.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	if t.Method.Alg() != k.alg {
		return nil, fmt.Errorf("alg %s does not match the key's %s", t.Method.Alg(), k.alg)
	}
	return k, nil
}

// key returns the public key with the given kid. The JWKS is fetched on
// first use and re-read when stale; an unknown kid makes it re-read at
// most once every jwksMinInterval (after a rotation, the new kid appears),
// so made-up kids cannot make the guard hammer Gatehouse.
func (g *Guard) key(ctx context.Context, kid string) (*verifyKey, error) {
	if ks := g.currentKeys(ctx, g.now()); ks != nil {
		if k := ks.keys[kid]; k != nil {
			return k, nil
		}
	}

	g.fetchMu.Lock()
	defer g.fetchMu.Unlock()
	ks := g.keys.Load()
	if ks != nil { // another request may have fetched meanwhile
		if k := ks.keys[kid]; k != nil {
			return k, nil
		}
	}
	if !g.mayFetchLocked(g.now()) {
		if ks == nil || !g.lastFetchOK {
			return nil, fmt.Errorf("%w: JWKS: %v", ErrUnavailable, g.lastErr)
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	ks, err := g.fetchLocked(ctx)
	if err != nil {
		return nil, g.unavailable(ctx, "fetch JWKS", err)
	}
	if k := ks.keys[kid]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("unknown kid %q", kid)
}

// currentKeys returns the key set, nil before the first fetch. When it is
// older than jwksMaxAge, one request re-reads it (keys are withdrawn too)
// while the others go on with the keys they have; on failure the old keys
// stay in use.
func (g *Guard) currentKeys(ctx context.Context, now time.Time) *keySet {
	ks := g.keys.Load()
	if ks == nil || now.Sub(ks.fetched) < jwksMaxAge || !g.fetchMu.TryLock() {
		return ks
	}
	defer g.fetchMu.Unlock()
	if !g.mayFetchLocked(now) {
		return g.keys.Load()
	}
	fresh, err := g.fetchLocked(ctx)
	if err != nil {
		g.log.WarnContext(ctx, "guard: refreshing the JWKS failed; keeping the previous keys", "err", err)
		return ks
	}
	return fresh
}

// mayFetchLocked applies the rate limit on JWKS fetches.
func (g *Guard) mayFetchLocked(now time.Time) bool {
	if g.lastFetch.IsZero() {
		return true
	}
	wait := jwksMinInterval
	if !g.lastFetchOK {
		wait = jwksRetry
	}
	return now.Sub(g.lastFetch) >= wait
}

// fetchLocked fetches the JWKS and stores it; fetchMu must be held.
func (g *Guard) fetchLocked(ctx context.Context) (*keySet, error) {
	g.lastFetch = g.now()
	ks, err := g.fetchJWKS(ctx)
	g.lastFetchOK, g.lastErr = err == nil, err
	if err != nil {
		return nil, err
	}
	g.keys.Store(ks)
	return ks, nil
}

func (g *Guard) fetchJWKS(ctx context.Context) (*keySet, error) {
	// Detached from the request: one caller hanging up must not fail the
	// fetch that others wait for.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", g.cfg.JWKSURL, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("GET %s: JWKS larger than %d bytes", g.cfg.JWKSURL, maxBody)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || set.Keys == nil {
		return nil, fmt.Errorf("GET %s: not a JWK set", g.cfg.JWKSURL)
	}
	old := g.keys.Load()
	ks := &keySet{keys: make(map[string]*verifyKey, len(set.Keys)), fetched: g.now()}
	dup := map[string]bool{}
	for _, raw := range set.Keys {
		k, err := g.parseJWK(raw)
		if err != nil {
			continue // a key we cannot or must not use (HS, enc, unknown type)
		}
		if _, seen := ks.keys[k.kid]; seen {
			dup[k.kid] = true // ambiguous: trust neither
			continue
		}
		if old != nil {
			if o := old.keys[k.kid]; o != nil && bytes.Equal(o.raw, k.raw) {
				k = o // unchanged: cached tokens it verified stay valid
			}
		}
		ks.keys[k.kid] = k
	}
	for kid := range dup {
		delete(ks.keys, kid)
	}
	return ks, nil
}

type jwkJSON struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	N      string   `json:"n"`
	E      string   `json:"e"`
}

// parseJWK turns one JWK (RFC 7517/7518/8037) into a verification key. The
// algorithm is the JWK's alg, which must agree with its kty and curve; a
// JWK without alg gets the one its kty and curve imply.
func (g *Guard) parseJWK(raw json.RawMessage) (*verifyKey, error) {
	var j jwkJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, err
	}
	if j.Kid == "" {
		return nil, errors.New("no kid")
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, errors.New("not a signing key")
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, errors.New("key_ops does not allow verify")
	}
	alg := j.Alg
	if alg == "" {
		alg = map[string]string{"OKP": "EdDSA", "EC": "ES256", "RSA": "RS256"}[j.Kty]
	}
	if algKeyType[alg] != j.Kty || !slices.Contains(g.algs, alg) {
		return nil, fmt.Errorf("alg %q with kty %q is not accepted", alg, j.Kty)
	}
	k := &verifyKey{kid: j.Kid, alg: alg, raw: slices.Clone(raw)}
	switch j.Kty {
	case "OKP":
		x, err := b64(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		k.pub = ed25519.PublicKey(x)
	case "EC":
		x, errx := b64(j.X)
		y, erry := b64(j.Y)
		if j.Crv != "P-256" || errx != nil || erry != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("bad P-256 key")
		}
		// Rejects points that are not on the curve (invalid-curve attacks).
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, err
		}
		k.pub = pub
	case "RSA":
		n, errn := b64(j.N)
		e, erre := b64(j.E)
		if errn != nil || erre != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA key")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("weak RSA key")
		}
		k.pub = pub
	}
	return k, nil
}

// unixTime is a NumericDate in seconds as a time; zero (unknown) for 0 or
// less, so that "no auth_time" never reads as 1970.
func unixTime(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }
