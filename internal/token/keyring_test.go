package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/internal/auth"
)

// TestIssueVerifyRoundTrip issues a token with every claim set, for every
// algorithm, and checks the claims that come back, the header and the raw
// payload.
func TestIssueVerifyRoundTrip(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			k, _ := newKeyring(t, alg)
			cur := currentKey(t, k)
			now := k.opts.Now()
			in := accessClaims(now)
			tok, err := k.Issue(context.Background(), in)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}

			h, p, _ := parts(t, tok)
			hdr := decode(t, h)
			if hdr["alg"] != alg || hdr["typ"] != "at+jwt" || hdr["kid"] != cur.kid {
				t.Errorf("header = %v, want alg %s, typ at+jwt, kid %s", hdr, alg, cur.kid)
			}
			for _, banned := range []string{"jwk", "jku", "x5c", "x5u"} {
				if _, ok := hdr[banned]; ok {
					t.Errorf("header carries %q: %v", banned, hdr)
				}
			}
			pl := decode(t, p)
			wantPayload := map[string]any{
				"iss": testIssuer, "sub": in.Subject, "aud": []any{testAudience},
				"exp": float64(in.ExpiresAt.Unix()), "iat": float64(now.Unix()), "nbf": float64(now.Unix()),
				"jti": in.ID, "client_id": in.ClientID, "scope": "read write",
				"roles": []any{"user", "editor"}, "email": in.Email,
			}
			for name, want := range wantPayload {
				got, ok := pl[name]
				if !ok {
					t.Errorf("payload lacks %q: %v", name, pl)
					continue
				}
				if gj, wj := mustJSON(t, got), mustJSON(t, want); gj != wj {
					t.Errorf("payload %q = %s, want %s", name, gj, wj)
				}
			}

			out := mustVerify(t, k, tok)
			want := *in
			if out.ID != want.ID || out.Subject != want.Subject || out.Email != want.Email || out.ClientID != want.ClientID ||
				!slices.Equal(out.Scopes, want.Scopes) || !slices.Equal(out.Roles, want.Roles) ||
				!out.IssuedAt.Equal(want.IssuedAt) || !out.ExpiresAt.Equal(want.ExpiresAt) {
				t.Errorf("Verify claims = %+v\nwant %+v", *out, want)
			}
			// Again, from the cache: the same answer.
			if again := mustVerify(t, k, tok); again.ID != out.ID || !again.ExpiresAt.Equal(out.ExpiresAt) {
				t.Errorf("cached Verify = %+v, want %+v", again, out)
			}
		})
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestIssueWithoutRolesOrEmail checks the optional claims: no roles is an
// empty array (not null), no email is left out.
func TestIssueWithoutRolesOrEmail(t *testing.T) {
	k, _ := newKeyring(t, "EdDSA")
	c := accessClaims(k.opts.Now())
	c.Roles, c.Email = nil, ""
	tok, err := k.Issue(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := parts(t, tok)
	pl := decode(t, p)
	if r, ok := pl["roles"].([]any); !ok || len(r) != 0 {
		t.Errorf("roles = %#v, want []", pl["roles"])
	}
	if _, ok := pl["email"]; ok {
		t.Errorf("email present: %v", pl)
	}
	out := mustVerify(t, k, tok)
	if len(out.Roles) != 0 || out.Email != "" {
		t.Errorf("claims = %+v", out)
	}
}

type jwk map[string]string

func parseJWKS(tb testing.TB, raw []byte) []jwk {
	tb.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		tb.Fatalf("JWKS %s: %v", raw, err)
	}
	if set.Keys == nil {
		tb.Fatalf("JWKS %s: keys is not an array", raw)
	}
	var out []jwk
	for _, m := range set.Keys {
		j := jwk{}
		for name, v := range m {
			s, ok := v.(string)
			if !ok {
				tb.Fatalf("JWK member %q is %T, want string", name, v)
			}
			j[name] = s
		}
		out = append(out, j)
	}
	return out
}

// publicFromJWK rebuilds a verification key from its JWK, as a resource
// server would.
func publicFromJWK(tb testing.TB, j jwk) any {
	tb.Helper()
	dec := func(name string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(j[name])
		if err != nil {
			tb.Fatalf("JWK %s: %v", name, err)
		}
		return b
	}
	switch j["kty"] {
	case "OKP":
		return ed25519.PublicKey(dec("x"))
	case "EC":
		x, y := dec("x"), dec("y")
		if len(x) != 32 || len(y) != 32 {
			tb.Fatalf("EC coordinates of %d and %d bytes, want 32", len(x), len(y))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			tb.Fatal(err)
		}
		return pub
	case "RSA":
		return &rsa.PublicKey{N: new(big.Int).SetBytes(dec("n")), E: int(new(big.Int).SetBytes(dec("e")).Int64())}
	}
	tb.Fatalf("unexpected kty %q", j["kty"])
	return nil
}

// TestJWKS checks the published key set: the public part only, HS256 keys
// never, and a key a resource server can verify the issued tokens with.
func TestJWKS(t *testing.T) {
	private := []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
	wantKty := map[string]string{"EdDSA": "OKP", "ES256": "EC", "RS256": "RSA"}
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			k, e := newKeyring(t, alg)
			cur := currentKey(t, k)
			keys := parseJWKS(t, k.JWKS())
			if alg == "HS256" {
				if len(keys) != 0 {
					t.Fatalf("JWKS publishes an HS256 key: %s", k.JWKS())
				}
				if bytes.Contains(k.JWKS(), []byte(b64url(cur.priv.([]byte)))) {
					t.Fatal("JWKS contains the HMAC secret")
				}
				return
			}
			if len(keys) != 1 {
				t.Fatalf("JWKS has %d keys, want 1: %s", len(keys), k.JWKS())
			}
			j := keys[0]
			for _, m := range private {
				if _, ok := j[m]; ok {
					t.Errorf("JWK has private member %q: %v", m, j)
				}
			}
			if j["kid"] != cur.kid || j["alg"] != alg || j["use"] != "sig" || j["kty"] != wantKty[alg] {
				t.Errorf("JWK = %v, want kid %s alg %s use sig kty %s", j, cur.kid, alg, wantKty[alg])
			}
			// A resource server that only has the JWKS can verify our tokens.
			pub := publicFromJWK(t, j)
			tok := issue(t, k)
			parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil },
				jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(e.clock.Now),
				jwt.WithIssuer(testIssuer), jwt.WithAudience(testAudience))
			if err != nil || !parsed.Valid {
				t.Fatalf("token does not verify with the published key: %v", err)
			}
		})
	}
}

// TestJWKSNeverPublishesHS256 mixes algorithms on one store: whatever the
// order, the HS256 secret is never in the key set, and Keys says so.
func TestJWKSNeverPublishesHS256(t *testing.T) {
	e := newEnv(t)
	e.keyring(t, "HS256")
	e.keyring(t, "EdDSA")
	k := e.keyring(t, "HS256") // HS256 current again, EdDSA the predecessor
	var hsKIDs []string
	for _, ki := range k.Keys() {
		if ki.Alg == "HS256" {
			hsKIDs = append(hsKIDs, ki.KID)
			if ki.Published {
				t.Errorf("Keys: HS256 key %s marked Published", ki.KID)
			}
		}
	}
	if len(hsKIDs) != 2 {
		t.Fatalf("Keys = %+v, want two HS256 keys", k.Keys())
	}
	keys := parseJWKS(t, k.JWKS())
	if len(keys) != 1 || keys[0]["alg"] != "EdDSA" {
		t.Fatalf("JWKS = %s, want only the EdDSA key", k.JWKS())
	}
	for _, kid := range hsKIDs {
		if bytes.Contains(k.JWKS(), []byte(kid)) {
			t.Errorf("JWKS mentions HS256 kid %s", kid)
		}
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, x := range k.all {
		if secret, ok := x.priv.([]byte); ok && bytes.Contains(k.jwks, []byte(b64url(secret))) {
			t.Errorf("JWKS contains the secret of %s", x.kid)
		}
	}
}

// TestRotate: after a rotation new tokens carry the new kid, tokens of the
// old key still verify, and both keys are published, newest first.
func TestRotate(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			k, e := newKeyring(t, alg)
			oldKID := currentKey(t, k).kid
			oldTok := issue(t, k)

			e.clock.Advance(time.Minute)
			newKID, err := k.Rotate(context.Background())
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if newKID == oldKID {
				t.Fatal("Rotate returned the old kid")
			}
			newTok := issue(t, k)
			h, _, _ := parts(t, newTok)
			if got := decode(t, h)["kid"]; got != newKID {
				t.Fatalf("new token kid = %v, want %s", got, newKID)
			}
			mustVerify(t, k, oldTok)
			mustVerify(t, k, newTok)

			keys := parseJWKS(t, k.JWKS())
			if len(keys) != 2 || keys[0]["kid"] != newKID || keys[1]["kid"] != oldKID {
				t.Fatalf("JWKS kids = %v, want [%s %s]", keys, newKID, oldKID)
			}
			infos := k.Keys()
			if len(infos) != 2 || infos[1].KID != newKID || !infos[1].Current || infos[0].Current || !infos[0].Published {
				t.Fatalf("Keys = %+v", infos)
			}

			// Another node on the same database sees the same state.
			other := e.keyring(t, alg)
			if cur := currentKey(t, other); cur.kid != newKID {
				t.Fatalf("second keyring current = %s, want %s", cur.kid, newKID)
			}
			mustVerify(t, other, oldTok)
		})
	}
}

// TestRotateOrderWithSubMicrosecondClock rotates with a clock that moves by
// less than the store's microsecond resolution: the key Rotate returns must
// still become the current one.
func TestRotateOrderWithSubMicrosecondClock(t *testing.T) {
	k, e := newKeyring(t, "EdDSA")
	for i := range 8 {
		e.clock.Advance(300 * time.Nanosecond)
		kid, err := k.Rotate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cur := currentKey(t, k); cur.kid != kid {
			t.Fatalf("rotation %d: current kid %s, want the new key %s", i, cur.kid, kid)
		}
		h, _, _ := parts(t, issue(t, k))
		if got := decode(t, h)["kid"]; got != kid {
			t.Fatalf("rotation %d: token kid %v, want %s", i, got, kid)
		}
	}
}

// TestRetiredKeyIsRefused: a key stops being trusted once its successor has
// existed for an access-token lifetime plus 5 minutes, except the immediate
// predecessor of the current key.
func TestRetiredKeyIsRefused(t *testing.T) {
	k, e := newKeyring(t, "EdDSA")
	ctx := context.Background()
	long := func() string {
		c := accessClaims(e.clock.Now())
		c.ExpiresAt = c.IssuedAt.Add(48 * time.Hour) // outlives the key
		tok, err := k.Issue(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	kid1 := currentKey(t, k).kid
	tok1 := long()
	e.clock.Advance(time.Minute)
	kid2, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok2 := long()
	e.clock.Advance(time.Minute)
	kid3, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(parseJWKS(t, k.JWKS())); got != 3 {
		t.Fatalf("JWKS has %d keys right after rotation, want 3", got)
	}

	// kid2 was made a minute ago: an access-token lifetime plus 4 minutes
	// after it, tokens of kid1 may still be live.
	e.clock.Advance(testTTL + 3*time.Minute)
	if err := k.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, k, tok1)
	forget(k, tok1)

	e.clock.Advance(2 * time.Minute) // now past the lifetime plus 5 minutes
	if err := k.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, k, tok1)
	mustVerify(t, k, tok2) // the predecessor of the current key
	keys := parseJWKS(t, k.JWKS())
	if len(keys) != 2 || keys[0]["kid"] != kid3 || keys[1]["kid"] != kid2 {
		t.Fatalf("JWKS = %s, want %s and %s only", k.JWKS(), kid3, kid2)
	}
	for _, ki := range k.Keys() {
		if ki.KID == kid1 && ki.Published {
			t.Errorf("retired key %s still marked Published", kid1)
		}
	}
}

// TestKeysAreSealed checks that the store never holds a private key in the
// clear, and that the seal is bound to the root secret, the kid and the alg.
func TestKeysAreSealed(t *testing.T) {
	ctx := context.Background()
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			k, e := newKeyring(t, alg)
			cur := currentKey(t, k)
			stored, err := e.store.SigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(stored) != 1 || stored[0].KID != cur.kid || stored[0].Alg != alg {
				t.Fatalf("stored keys = %+v", stored)
			}
			der, err := marshalPrivate(alg, cur.priv)
			if err != nil {
				t.Fatal(err)
			}
			secrets := map[string][]byte{"private key DER": der}
			switch p := cur.priv.(type) {
			case ed25519.PrivateKey:
				secrets["Ed25519 seed"] = p.Seed()
			case *ecdsa.PrivateKey:
				b, err := p.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				secrets["ECDSA scalar"] = b
			case *rsa.PrivateKey:
				secrets["RSA prime"] = p.Primes[0].Bytes()
			}
			for name, s := range secrets {
				if bytes.Contains(stored[0].Sealed, s) {
					t.Errorf("stored Sealed bytes contain the %s", name)
				}
			}
		})
	}
}

func TestNewRefusesWrongOrShortSecret(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t, "EdDSA")
	tok := issue(t, k)

	o := e.options("EdDSA")
	o.Secret = []byte("another-root-secret-of-32-bytes!!")
	if _, err := New(context.Background(), o); err == nil {
		t.Fatal("New with a different secret loaded the keys")
	} else if !strings.Contains(strings.ToLower(err.Error()), "secret") {
		t.Fatalf("error %q does not mention the secret", err)
	}

	o.Secret = testSecret[:31]
	if _, err := New(context.Background(), o); err == nil {
		t.Fatal("New accepted a 31-byte secret")
	}
	// The failed attempts stored nothing: the right secret still works.
	mustVerify(t, e.keyring(t, "EdDSA"), tok)
}

// TestStoreTamperingIsDetected plays an attacker with write access to the
// database: relabelling a key (e.g. an EdDSA key as HS256, so that its
// bytes would become an HMAC secret), renaming it, or changing its sealed
// bytes must make loading fail rather than trust the altered key.
func TestStoreTamperingIsDetected(t *testing.T) {
	tests := []struct {
		name string
		sql  string
	}{
		{"alg relabelled to HS256", `UPDATE signing_keys SET alg = 'HS256'`},
		{"alg relabelled to ES256", `UPDATE signing_keys SET alg = 'ES256'`},
		{"kid renamed", `UPDATE signing_keys SET kid = 'attacker-kid'`},
		{"sealed bytes altered", `UPDATE signing_keys SET sealed = substr(sealed, 1, 20) || X'00' || substr(sealed, 22)`},
		{"sealed bytes truncated", `UPDATE signing_keys SET sealed = substr(sealed, 1, 8)`},
		{"sealed bytes replaced", `UPDATE signing_keys SET sealed = X'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.keyring(t, "EdDSA")
			tok := issue(t, k)
			mustVerify(t, k, tok)
			if _, err := e.rawDB(t).Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			if err := k.Reload(context.Background()); err == nil {
				t.Fatal("Reload accepted a tampered key")
			}
			if _, err := New(context.Background(), e.options("EdDSA")); err == nil {
				t.Fatal("New accepted a tampered key")
			}
			// A failed reload leaves the running keyring as it was.
			forget(k, tok)
			mustVerify(t, k, tok)
		})
	}
}

// TestAlgorithmChange: starting with a different Alg makes a new current
// key of that algorithm, while tokens of the old key keep verifying.
func TestAlgorithmChange(t *testing.T) {
	e := newEnv(t)
	ed := e.keyring(t, "EdDSA")
	edKID := currentKey(t, ed).kid
	edTok := issue(t, ed)

	e.clock.Advance(time.Minute)
	es := e.keyring(t, "ES256")
	cur := currentKey(t, es)
	if cur.alg != "ES256" || cur.kid == edKID {
		t.Fatalf("current key = %s %s, want a new ES256 key", cur.kid, cur.alg)
	}
	esTok := issue(t, es)
	h, _, _ := parts(t, esTok)
	if hdr := decode(t, h); hdr["alg"] != "ES256" || hdr["kid"] != cur.kid {
		t.Fatalf("new token header = %v", hdr)
	}
	mustVerify(t, es, edTok)
	mustVerify(t, es, esTok)
	if n := len(parseJWKS(t, es.JWKS())); n != 2 {
		t.Fatalf("JWKS has %d keys, want 2", n)
	}

	// Starting again with the same Alg does not rotate.
	again := e.keyring(t, "ES256")
	if got := currentKey(t, again).kid; got != cur.kid {
		t.Fatalf("restart with the same alg rotated: current %s, want %s", got, cur.kid)
	}
	if n := len(again.Keys()); n != 2 {
		t.Fatalf("Keys() has %d keys, want 2", n)
	}
}

// TestVerifyCacheHonoursExpiry: a cached token is refused once the clock
// passes exp plus the leeway, and before nbf minus the leeway.
func TestVerifyCacheHonoursExpiry(t *testing.T) {
	k, e := newKeyring(t, "EdDSA")
	tok := issue(t, k)
	c := mustVerify(t, k, tok)
	if !isCached(k, tok) {
		t.Fatal("a verified token was not cached")
	}
	exp := c.ExpiresAt

	e.clock.Set(exp.Add(4 * time.Second))
	mustVerify(t, k, tok)
	if !isCached(k, tok) {
		t.Fatal("cache entry dropped while still valid")
	}

	e.clock.Set(exp.Add(5 * time.Second))
	mustRefuse(t, k, tok)
	e.clock.Set(exp.Add(time.Hour))
	mustRefuse(t, k, tok)
	if isCached(k, tok) {
		t.Fatal("expired token still in the cache")
	}

	t.Run("clock set back before nbf", func(t *testing.T) {
		e.clock.Set(t0)
		tok := issue(t, k)
		mustVerify(t, k, tok)
		e.clock.Set(t0.Add(-6 * time.Second))
		mustRefuse(t, k, tok)
	})
}

// TestVerifyCacheIsBounded fills the cache past its cap: it must not grow
// without bound.
func TestVerifyCacheIsBounded(t *testing.T) {
	var v verifyCache
	v.init()
	c := &auth.AccessClaims{ExpiresAt: t0.Add(time.Hour)}
	for i := range cacheMax + 10 {
		v.put("tok-"+strconv.Itoa(i), c, t0)
	}
	if n := len(v.m); n > cacheMax {
		t.Fatalf("cache holds %d entries, cap %d", n, cacheMax)
	}
}

// TestUnknownKidReloadsFromStore: a token signed by a key another node just
// made verifies once this node's keys are stale (10 s), without waiting for
// the periodic reload; before that, an unknown kid costs no reload.
func TestUnknownKidReloadsFromStore(t *testing.T) {
	e := newEnv(t)
	a := e.keyring(t, "EdDSA")
	b := e.keyring(t, "EdDSA")
	if currentKey(t, a).kid != currentKey(t, b).kid {
		t.Fatal("two keyrings on one store made two keys")
	}
	kid, err := b.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, b)
	mustRefuse(t, a, tok) // a's keys are fresh: no reload yet
	if currentKey(t, a).kid == kid {
		t.Fatal("a reloaded although its keys were fresh")
	}
	e.clock.Advance(11 * time.Second)
	mustVerify(t, a, tok)
	if got := currentKey(t, a).kid; got != kid {
		t.Fatalf("after the reload a's current kid = %s, want %s", got, kid)
	}
}

// TestConcurrentUse runs Issue, Verify, JWKS and Rotate at once (for the
// race detector).
func TestConcurrentUse(t *testing.T) {
	k, _ := newKeyring(t, "EdDSA")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 4 {
		wg.Go(func() {
			for range 20 {
				tok, err := k.Issue(ctx, accessClaims(k.opts.Now()))
				if err != nil {
					errs <- err
					return
				}
				if _, err := k.Verify(tok); err != nil {
					errs <- err
					return
				}
				_ = k.JWKS()
				_ = k.Keys()
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			if _, err := k.Rotate(ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLeewayIsAtMostFiveSeconds pins the SPEC's bound on clock skew.
func TestLeewayIsAtMostFiveSeconds(t *testing.T) {
	if Leeway > 5*time.Second || Leeway <= 0 {
		t.Fatalf("Leeway = %v, want (0, 5s]", Leeway)
	}
}

// TestSealKeyIsPurposeDerived: new keys are sealed with the HKDF-derived
// seal key (not the legacy HMAC one), and a key sealed with the legacy key
// before the upgrade still loads and verifies its tokens.
func TestSealKeyIsPurposeDerived(t *testing.T) {
	ctx := context.Background()
	k, e := newKeyring(t, "EdDSA")
	stored, err := e.store.SigningKeys(ctx)
	if err != nil || len(stored) != 1 {
		t.Fatalf("SigningKeys = %v, %v", stored, err)
	}
	s := stored[0]
	ns := k.seal.NonceSize()
	if _, err := k.legacySeal.Open(nil, s.Sealed[:ns], s.Sealed[ns:], aad(s.KID, s.Alg)); err == nil {
		t.Fatal("a new key opens with the legacy HMAC seal key")
	}
	want, err := hkdf.Key(sha256.New, testSecret, nil, "gatehouse/v1/signing-key-seal", 32)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := newGCM(want)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gcm.Open(nil, s.Sealed[:ns], s.Sealed[ns:], aad(s.KID, s.Alg)); err != nil {
		t.Fatalf("a new key does not open with HKDF(secret, %q): %v", sealInfo, err)
	}

	// A key sealed the old way, as a database from before the upgrade
	// holds it, and newer than the current one.
	e.clock.Advance(time.Second)
	priv, err := generate("EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	der, err := marshalPrivate("EdDSA", priv)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, ns)
	old := &auth.SigningKey{KID: "legacy-kid", Alg: "EdDSA", Sealed: k.legacySeal.Seal(nonce, nonce, der, aad("legacy-kid", "EdDSA")),
		CreatedAt: e.clock.Now().UTC().Truncate(time.Microsecond)}
	if err := e.store.AddSigningKey(ctx, old); err != nil {
		t.Fatal(err)
	}
	k2 := e.keyring(t, "EdDSA")
	if cur := currentKey(t, k2); cur.kid != "legacy-kid" {
		t.Fatalf("current key %s, want the legacy-sealed one", cur.kid)
	}
	if _, err := k2.Verify(issue(t, k2)); err != nil {
		t.Fatalf("a token signed with the legacy-sealed key: %v", err)
	}
}
