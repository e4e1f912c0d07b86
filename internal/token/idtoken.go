package token

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/internal/auth"
)

// ErrIDTokenAlg is returned for an ID-token algorithm Gatehouse does not
// sign with (anything but IDTokenAlgorithms, HS256 included).
var ErrIDTokenAlg = errors.New("token: ID tokens are signed with RS256, ES256 or EdDSA only")

// ErrInvalidIDToken is returned for every id_token_hint that does not
// verify; the reason is wrapped for logs only.
var ErrInvalidIDToken = errors.New("token: invalid ID token")

var _ auth.IDTokenSigner = (*Keyring)(nil)

// idClaims are the claims of an ID token as read back by ParseIDTokenHint.
type idClaims struct {
	jwt.RegisteredClaims
	AZP      string           `json:"azp,omitempty"`
	Nonce    string           `json:"nonce,omitempty"`
	ACR      string           `json:"acr,omitempty"`
	AMR      []string         `json:"amr,omitempty"`
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	SID      string           `json:"sid,omitempty"`
}

// reservedIDClaims are set by SignIDToken only: Extra cannot carry them.
var reservedIDClaims = []string{"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "jti",
	"auth_time", "nonce", "acr", "amr", "sid", "at_hash", "c_hash", "client_id", "scope"}

// PrepareIDTokenAlg makes sure a key of alg exists for ID tokens, so that
// it is in every node's JWKS before the first ID token it signs (a client
// registering id_token_signed_response_alg calls it).
func (k *Keyring) PrepareIDTokenAlg(ctx context.Context, alg string) error {
	if alg == "" {
		return nil
	}
	if !slices.Contains(IDTokenAlgorithms, alg) {
		return fmt.Errorf("%w: %q", ErrIDTokenAlg, alg)
	}
	_, err := k.idKey(ctx, alg)
	return err
}

// SignIDToken signs an ID token (OIDC Core §2) with the current ID-token key
// of alg: the configured IDTokenAlg when alg is "", else RS256, ES256 or
// EdDSA, as the client registered (id_token_signed_response_alg). A key of
// alg is made on first use when the ring has none; every node then signs
// with it. HS256 (or anything else) is refused with ErrIDTokenAlg.
//
// The header carries kid, alg and typ JWT; the payload iss, sub, aud (the
// client id, a string), azp, exp, iat, auth_time (when set), nonce (when
// set), acr and amr (when set), sid (when set), at_hash (when AccessToken
// is set) and Extra, whose members cannot replace any of those.
func (k *Keyring) SignIDToken(ctx context.Context, alg string, c *auth.IDClaims) (string, error) {
	if alg == "" {
		alg = k.idTokenAlg()
	}
	if !slices.Contains(IDTokenAlgorithms, alg) {
		return "", fmt.Errorf("%w: %q", ErrIDTokenAlg, alg)
	}
	if c.Subject == "" || c.Audience == "" || c.ExpiresAt.IsZero() {
		return "", errors.New("token: an ID token needs a subject, an audience and an expiry")
	}
	x, err := k.idKey(ctx, alg)
	if err != nil {
		return "", err
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = k.opts.Now()
	}
	m := make(jwt.MapClaims, len(c.Extra)+12)
	maps.Copy(m, c.Extra)
	for _, name := range reservedIDClaims {
		delete(m, name)
	}
	m["iss"] = k.opts.Issuer
	m["sub"] = c.Subject
	m["aud"] = c.Audience // one audience: a string (OIDC Core §2 allows it)
	m["azp"] = c.Audience
	m["exp"] = c.ExpiresAt.Unix()
	m["iat"] = iat.Unix()
	if !c.AuthTime.IsZero() {
		m["auth_time"] = c.AuthTime.Unix()
	}
	if c.Nonce != "" {
		m["nonce"] = c.Nonce
	}
	if c.ACR != "" {
		m["acr"] = c.ACR
	}
	if len(c.AMR) > 0 {
		m["amr"] = c.AMR
	}
	if c.SessionID != "" {
		m["sid"] = c.SessionID
	}
	if c.AccessToken != "" {
		m["at_hash"] = atHash(x.alg, c.AccessToken)
	}
	t := jwt.NewWithClaims(method(x.alg), m)
	t.Header["kid"] = x.kid
	t.Header["typ"] = "JWT" // not at+jwt: Verify refuses it as an access token
	return t.SignedString(x.priv)
}

func (k *Keyring) idTokenAlg() string {
	if k.opts.IDTokenAlg != "" {
		return k.opts.IDTokenAlg
	}
	return DefaultIDTokenAlg
}

// atHash is the at_hash of an access token (OIDC Core §3.1.3.6): the
// left-most half of the hash of its ASCII text, base64url without padding,
// with the hash of the signing algorithm — SHA-256 for RS256 and ES256,
// SHA-512 for EdDSA with Ed25519 (the hash Ed25519 itself uses).
func atHash(alg, accessToken string) string {
	switch alg {
	case "EdDSA":
		sum := sha512.Sum512([]byte(accessToken))
		return b64(sum[:len(sum)/2])
	default:
		sum := sha256.Sum256([]byte(accessToken))
		return b64(sum[:len(sum)/2])
	}
}

// ParseIDTokenHint verifies an ID token this server signed and returns its
// claims (AccessToken and Extra stay empty). It checks the signature with
// the ID-token key named by kid, the algorithm pinned to that key, typ JWT,
// iss, and that sub and one aud are present — but not exp, nbf or iat: an
// id_token_hint may have expired (OIDC RP-Initiated Logout §2). Access
// tokens, signed by access-token keys with typ at+jwt, never pass. Every
// failure wraps ErrInvalidIDToken.
func (k *Keyring) ParseIDTokenHint(tok string) (*auth.IDClaims, error) {
	if len(tok) > maxTokenLen || strings.Count(tok, ".") != 2 {
		return nil, ErrInvalidIDToken
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(IDTokenAlgorithms), // never "none" or HS256
		jwt.WithoutClaimsValidation(),           // no exp: iss is checked below
	)
	var cl idClaims
	if _, err := p.ParseWithClaims(tok, &cl, k.idKeyFunc); err != nil {
		return nil, errors.Join(ErrInvalidIDToken, err)
	}
	if cl.Issuer != k.opts.Issuer {
		return nil, errors.Join(ErrInvalidIDToken, errors.New("wrong issuer"))
	}
	if cl.Subject == "" || len(cl.Audience) != 1 || cl.Audience[0] == "" {
		return nil, errors.Join(ErrInvalidIDToken, errors.New("no sub or not exactly one aud"))
	}
	out := &auth.IDClaims{
		Subject: cl.Subject, Audience: cl.Audience[0], Nonce: cl.Nonce,
		ACR: cl.ACR, AMR: cl.AMR, SessionID: cl.SID,
	}
	if cl.AuthTime != nil {
		out.AuthTime = cl.AuthTime.Time
	}
	if cl.IssuedAt != nil {
		out.IssuedAt = cl.IssuedAt.Time
	}
	if cl.ExpiresAt != nil {
		out.ExpiresAt = cl.ExpiresAt.Time
	}
	return out, nil
}

// idKeyFunc is keyFunc for ID tokens: typ JWT, and only an ID-token key
// — an access-token key named by kid is refused, whatever the token says.
func (k *Keyring) idKeyFunc(t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "JWT") {
		return nil, errors.New("typ is not JWT")
	}
	kid, _ := t.Header["kid"].(string)
	x := k.lookup(kid)
	if x == nil || !x.idToken {
		return nil, errors.New("unknown kid")
	}
	if t.Method.Alg() != x.alg {
		return nil, errors.New("algorithm does not match the key")
	}
	return x.pub, nil
}
