package token

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"gatehouse/internal/auth"
)

const testClient = "client-rp"

// idKeyring builds a keyring whose access tokens use accessAlg and whose
// configured ID-token algorithm is idAlg ("" leaves it unset).
func (e *env) idKeyring(tb testing.TB, accessAlg, idAlg string) *Keyring {
	tb.Helper()
	o := e.options(accessAlg)
	o.IDTokenAlg = idAlg
	k, err := New(context.Background(), o)
	if err != nil {
		tb.Fatalf("New(%s, ID %s): %v", accessAlg, idAlg, err)
	}
	return k
}

// idClaimsAt are ID-token claims with every field set, issued at now.
func idClaimsAt(now time.Time) *auth.IDClaims {
	return &auth.IDClaims{
		Subject:     "user-123",
		Audience:    testClient,
		Nonce:       "n-0S6_WzA2Mj",
		ACR:         "aal2",
		AMR:         []string{"pwd", "otp"},
		AuthTime:    now.Add(-2 * time.Minute),
		IssuedAt:    now,
		ExpiresAt:   now.Add(15 * time.Minute),
		SessionID:   "sess-42",
		AccessToken: "ya29.CjHSA1l5WUn8xZ6HanHFzzdHdbXm-14rxnC7JHch9eFIsZkQEGoWzaYG4o7k5f6BnPLj",
		Extra:       map[string]any{"email": "alice@example.test", "email_verified": true},
	}
}

// signID signs c with the ID-token key of alg, failing the test on error.
func signID(tb testing.TB, k *Keyring, alg string, c *auth.IDClaims) string {
	tb.Helper()
	tok, err := k.SignIDToken(context.Background(), alg, c)
	if err != nil {
		tb.Fatalf("SignIDToken(%q): %v", alg, err)
	}
	return tok
}

// idKeyOf returns the current ID-token key of alg.
func idKeyOf(tb testing.TB, k *Keyring, alg string) *key {
	tb.Helper()
	k.mu.RLock()
	defer k.mu.RUnlock()
	x := k.idCurrent[alg]
	if x == nil {
		tb.Fatalf("no current %s ID-token key", alg)
	}
	return x
}

// relyingParty is a relying party built on coreos/go-oidc (go-jose
// underneath): it knows the keyring only through its JWKS, served over
// HTTP, so it checks our ID tokens independently of our own code.
func relyingParty(tb testing.TB, k *Keyring, alg string) *oidc.IDTokenVerifier {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(k.JWKS())
	}))
	tb.Cleanup(srv.Close)
	ks := oidc.NewRemoteKeySet(context.Background(), srv.URL)
	return oidc.NewVerifier(testIssuer, ks, &oidc.Config{ClientID: testClient, SupportedSigningAlgs: []string{alg}, Now: k.opts.Now})
}

// mustRefuseHint parses tok as an id_token_hint and fails the test unless
// it is refused with ErrInvalidIDToken and no claims.
func mustRefuseHint(tb testing.TB, k *Keyring, tok string) {
	tb.Helper()
	c, err := k.ParseIDTokenHint(tok)
	if err == nil {
		tb.Fatalf("ParseIDTokenHint accepted a token it must refuse: %+v\ntoken: %.300s", c, tok)
	}
	if !errors.Is(err, ErrInvalidIDToken) {
		tb.Fatalf("ParseIDTokenHint error = %v, want one wrapping ErrInvalidIDToken", err)
	}
	if c != nil {
		tb.Fatalf("ParseIDTokenHint returned claims %+v with error %v", c, err)
	}
}

// TestAtHash checks at_hash against published values: Google's (SHA-256,
// from one of its RS256 ID tokens) and go-oidc's (SHA-512, for EdDSA), and
// against the computation written out by hand.
func TestAtHash(t *testing.T) {
	const at = "ya29.CjHSA1l5WUn8xZ6HanHFzzdHdbXm-14rxnC7JHch9eFIsZkQEGoWzaYG4o7k5f6BnPLj"
	s256 := sha256.Sum256([]byte(at))
	s512 := sha512.Sum512([]byte(at))
	tests := []struct {
		alg, want, byHand string
	}{
		{"RS256", "piwt8oCH-K2D9pXlaS1Y-w", base64.RawURLEncoding.EncodeToString(s256[:16])},
		{"ES256", "piwt8oCH-K2D9pXlaS1Y-w", base64.RawURLEncoding.EncodeToString(s256[:16])},
		{"EdDSA", "Spa_APgwBrarSeQbxI-rbragXho6dqFpH5x9PqaPfUI", base64.RawURLEncoding.EncodeToString(s512[:32])},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			if tc.want != tc.byHand {
				t.Fatalf("test vector %s != hand computation %s", tc.want, tc.byHand)
			}
			if got := atHash(tc.alg, at); got != tc.want {
				t.Fatalf("atHash(%s) = %s, want %s", tc.alg, got, tc.want)
			}
		})
	}
}

// TestSignIDToken signs an ID token with every ID-token algorithm on a
// ring whose access tokens use EdDSA, and checks the header, every claim,
// the published key, and that a go-oidc relying party that has only the
// JWKS accepts it, with its at_hash.
func TestSignIDToken(t *testing.T) {
	e := newEnv(t)
	k := e.idKeyring(t, "EdDSA", "RS256")
	ctx := context.Background()
	now := e.clock.Now()
	private := []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
	wantKty := map[string]string{"EdDSA": "OKP", "ES256": "EC", "RS256": "RSA"}
	for _, alg := range IDTokenAlgorithms {
		t.Run(alg, func(t *testing.T) {
			in := idClaimsAt(now)
			tok := signID(t, k, alg, in)
			x := idKeyOf(t, k, alg)

			h, p, _ := parts(t, tok)
			hdr := decode(t, h)
			if len(hdr) != 3 || hdr["alg"] != alg || hdr["typ"] != "JWT" || hdr["kid"] != x.kid {
				t.Errorf("header = %v, want exactly alg %s, typ JWT, kid %s", hdr, alg, x.kid)
			}
			if !strings.HasPrefix(x.kid, "id-") || x.kid == currentKey(t, k).kid {
				t.Errorf("ID-token kid %q: want an id- key apart from the access key", x.kid)
			}
			pl := decode(t, p)
			want := map[string]any{
				"iss": testIssuer, "sub": in.Subject, "aud": testClient, "azp": testClient,
				"exp": float64(in.ExpiresAt.Unix()), "iat": float64(now.Unix()), "auth_time": float64(in.AuthTime.Unix()),
				"nonce": in.Nonce, "acr": "aal2", "amr": []any{"pwd", "otp"}, "sid": "sess-42",
				"at_hash": atHash(alg, in.AccessToken), "email": "alice@example.test", "email_verified": true,
			}
			if gj, wj := mustJSON(t, pl), mustJSON(t, want); gj != wj {
				t.Errorf("payload =\n%s\nwant\n%s", gj, wj)
			}

			// The key is published, public part only.
			var j jwk
			for _, c := range parseJWKS(t, k.JWKS()) {
				if c["kid"] == x.kid {
					j = c
				}
			}
			if j == nil {
				t.Fatalf("JWKS lacks the ID-token key %s: %s", x.kid, k.JWKS())
			}
			if j["alg"] != alg || j["use"] != "sig" || j["kty"] != wantKty[alg] {
				t.Errorf("JWK = %v, want alg %s use sig kty %s", j, alg, wantKty[alg])
			}
			for _, m := range private {
				if _, ok := j[m]; ok {
					t.Errorf("JWK has private member %q", m)
				}
			}

			// A relying party with the JWKS alone accepts it, and its at_hash.
			rp := relyingParty(t, k, alg)
			idt, err := rp.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("go-oidc refuses the ID token: %v", err)
			}
			if idt.Subject != in.Subject || idt.Nonce != in.Nonce || !slices.Equal(idt.Audience, []string{testClient}) ||
				!idt.Expiry.Equal(in.ExpiresAt) || !idt.IssuedAt.Equal(now) {
				t.Errorf("go-oidc claims = %+v", idt)
			}
			if err := idt.VerifyAccessToken(in.AccessToken); err != nil {
				t.Errorf("go-oidc refuses at_hash: %v", err)
			}
			if err := idt.VerifyAccessToken(in.AccessToken + "x"); err == nil {
				t.Error("go-oidc accepts at_hash for another access token")
			}
			// ... and refuses it for another client.
			other := oidc.NewVerifier(testIssuer, oidc.NewRemoteKeySet(ctx, "http://127.0.0.1:1/unused"),
				&oidc.Config{ClientID: "other-client", SupportedSigningAlgs: []string{alg}, Now: e.clock.Now, InsecureSkipSignatureCheck: true})
			if _, err := other.Verify(ctx, tok); err == nil {
				t.Error("go-oidc accepted the token for another client")
			}
		})
	}

	t.Run("no alg is the configured one", func(t *testing.T) {
		tok := signID(t, k, "", idClaimsAt(now))
		h, _, _ := parts(t, tok)
		if hdr := decode(t, h); hdr["alg"] != "RS256" || hdr["kid"] != idKeyOf(t, k, "RS256").kid {
			t.Fatalf("header = %v, want the RS256 ID-token key", hdr)
		}
	})
	t.Run("access tokens unchanged", func(t *testing.T) {
		tok := issue(t, k)
		h, _, _ := parts(t, tok)
		if hdr := decode(t, h); hdr["alg"] != "EdDSA" || hdr["typ"] != "at+jwt" || hdr["kid"] != currentKey(t, k).kid {
			t.Fatalf("access-token header = %v", hdr)
		}
		mustVerify(t, k, tok)
	})
}

// TestIDTokenOptionalClaims leaves every optional claim out: they are
// absent, not empty; and Extra cannot replace a claim the signer sets.
func TestIDTokenOptionalClaims(t *testing.T) {
	e := newEnv(t)
	k := e.idKeyring(t, "EdDSA", "EdDSA")
	now := e.clock.Now()
	c := &auth.IDClaims{
		Subject: "user-123", Audience: testClient, ExpiresAt: now.Add(time.Minute),
		Extra: map[string]any{"iss": "https://evil.example", "sub": "admin", "aud": "other", "nonce": "forged",
			"at_hash": "forged", "sid": "forged", "exp": 1 << 40, "name": "Alice"},
	}
	_, p, _ := parts(t, signID(t, k, "", c))
	pl := decode(t, p)
	want := map[string]any{
		"iss": testIssuer, "sub": "user-123", "aud": testClient, "azp": testClient,
		"exp": float64(now.Add(time.Minute).Unix()), "iat": float64(now.Unix()), "name": "Alice",
	}
	if gj, wj := mustJSON(t, pl), mustJSON(t, want); gj != wj {
		t.Fatalf("payload =\n%s\nwant\n%s", gj, wj)
	}
}

// TestIDTokenAlgorithms: HS256 (a secret no relying party has) and
// anything but RS256, ES256 and EdDSA never sign an ID token, not even on
// a ring whose access tokens use HS256; and New refuses them too.
func TestIDTokenAlgorithms(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t, "HS256")
	now := e.clock.Now()
	for _, alg := range []string{"HS256", "HS512", "none", "RS512", "PS256", "ES384", "rs256", "eddsa", "Ed25519"} {
		t.Run(alg, func(t *testing.T) {
			tok, err := k.SignIDToken(context.Background(), alg, idClaimsAt(now))
			if !errors.Is(err, ErrIDTokenAlg) || tok != "" {
				t.Fatalf("SignIDToken(%s) = %q, %v; want ErrIDTokenAlg", alg, tok, err)
			}
			o := e.options("EdDSA")
			o.IDTokenAlg = alg
			if _, err := New(context.Background(), o); !errors.Is(err, ErrIDTokenAlg) {
				t.Fatalf("New with IDTokenAlg %s: %v, want ErrIDTokenAlg", alg, err)
			}
		})
	}
	for _, ki := range k.Keys() {
		if ki.IDToken {
			t.Errorf("a refused algorithm made an ID-token key: %+v", ki)
		}
	}
	t.Run("claims missing", func(t *testing.T) {
		for name, c := range map[string]*auth.IDClaims{
			"no subject":  {Audience: testClient, ExpiresAt: now.Add(time.Minute)},
			"no audience": {Subject: "u", ExpiresAt: now.Add(time.Minute)},
			"no expiry":   {Subject: "u", Audience: testClient},
		} {
			if _, err := k.SignIDToken(context.Background(), "EdDSA", c); err == nil {
				t.Errorf("%s: signed", name)
			}
		}
	})
}

// TestIDTokenKeyMadeWhenNeeded: with IDTokenAlg set, New makes its key
// (published before the first ID token); unset, the key of the default
// RS256 is made on first use; either way a client's other algorithm gets
// a key on first use, which later calls reuse.
func TestIDTokenKeyMadeWhenNeeded(t *testing.T) {
	t.Run("configured", func(t *testing.T) {
		e := newEnv(t)
		k := e.idKeyring(t, "EdDSA", "ES256")
		x := idKeyOf(t, k, "ES256")
		if !strings.Contains(string(k.JWKS()), x.kid) {
			t.Fatalf("JWKS lacks the configured ID-token key before any ID token: %s", k.JWKS())
		}
		h, _, _ := parts(t, signID(t, k, "", idClaimsAt(e.clock.Now())))
		if hdr := decode(t, h); hdr["alg"] != "ES256" || hdr["kid"] != x.kid {
			t.Fatalf("header = %v, want the configured ES256 key", hdr)
		}
		// A restart with the same setting makes no new key.
		if again := e.idKeyring(t, "EdDSA", "ES256"); idKeyOf(t, again, "ES256").kid != x.kid || len(again.Keys()) != 2 {
			t.Fatalf("restart: keys %+v", again.Keys())
		}
		// A client that registered EdDSA: one key, made once.
		first := signID(t, k, "EdDSA", idClaimsAt(e.clock.Now()))
		second := signID(t, k, "EdDSA", idClaimsAt(e.clock.Now()))
		h1, _, _ := parts(t, first)
		h2, _, _ := parts(t, second)
		if decode(t, h1)["kid"] != decode(t, h2)["kid"] || len(k.Keys()) != 3 {
			t.Fatalf("EdDSA ID tokens: kids %v %v, keys %+v", decode(t, h1)["kid"], decode(t, h2)["kid"], k.Keys())
		}
	})
	t.Run("unset means RS256 on first use", func(t *testing.T) {
		e := newEnv(t)
		k := e.keyring(t, "EdDSA")
		if n := len(k.Keys()); n != 1 {
			t.Fatalf("New made %d keys without IDTokenAlg, want the access key only", n)
		}
		h, _, _ := parts(t, signID(t, k, "", idClaimsAt(e.clock.Now())))
		if hdr := decode(t, h); hdr["alg"] != "RS256" || hdr["kid"] != idKeyOf(t, k, "RS256").kid {
			t.Fatalf("header = %v, want a new RS256 ID-token key", hdr)
		}
	})
}

// TestIDTokenIsNotAnAccessToken: Verify refuses an ID token even when its
// algorithm is the access tokens' and its aud is the access-token audience
// (a client whose id is the API's URL).
func TestIDTokenIsNotAnAccessToken(t *testing.T) {
	for _, alg := range IDTokenAlgorithms {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t)
			k := e.idKeyring(t, alg, alg)
			c := idClaimsAt(e.clock.Now())
			c.Audience = testAudience
			c.Extra = map[string]any{"client_id": "x", "scope": "read write admin", "roles": []string{"admin"}}
			tok := signID(t, k, "", c)
			mustVerify(t, k, issue(t, k)) // warm the cache with an access token
			mustRefuse(t, k, tok)
			if isCached(k, tok) {
				t.Fatal("a refused ID token is in the verify cache")
			}
			// The typ relabelled, signature kept: the signature breaks.
			h, p, s := parts(t, tok)
			mustRefuse(t, k, segment(t, with(decode(t, h), "typ", "at+jwt"))+"."+p+"."+s)
		})
	}
}

// TestAccessTokenIsNotAnIDTokenHint: ParseIDTokenHint refuses access
// tokens — by typ, and by key: even a token shaped as an ID token, with
// typ JWT, signed by the real access-token key is refused.
func TestAccessTokenIsNotAnIDTokenHint(t *testing.T) {
	e := newEnv(t)
	k := e.idKeyring(t, "EdDSA", "EdDSA")
	mustRefuseHint(t, k, issue(t, k))

	now := e.clock.Now()
	cur := currentKey(t, k)
	idShaped := map[string]any{"iss": testIssuer, "sub": "user-123", "aud": testClient, "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()}
	mustRefuseHint(t, k, sign(t, cur.alg, cur.priv, map[string]any{"kid": cur.kid, "typ": "JWT"}, idShaped))
	// The same signed by the ID-token key passes: the key made the difference.
	x := idKeyOf(t, k, "EdDSA")
	if _, err := k.ParseIDTokenHint(sign(t, x.alg, x.priv, map[string]any{"kid": x.kid, "typ": "JWT"}, idShaped)); err != nil {
		t.Fatalf("an ID-shaped token of the ID-token key: %v", err)
	}
}

// TestParseIDTokenHint reads back every claim, also once the token has
// long expired (OIDC RP-Initiated Logout §2), and from another node.
func TestParseIDTokenHint(t *testing.T) {
	e := newEnv(t)
	k := e.idKeyring(t, "EdDSA", "ES256")
	now := e.clock.Now()
	in := idClaimsAt(now)
	tok := signID(t, k, "", in)
	check := func(t *testing.T, k *Keyring) {
		t.Helper()
		got, err := k.ParseIDTokenHint(tok)
		if err != nil {
			t.Fatalf("ParseIDTokenHint: %v", err)
		}
		want := *in
		want.AccessToken, want.Extra = "", nil
		if mustJSON(t, got) != mustJSON(t, &want) {
			t.Fatalf("claims =\n%+v\nwant\n%+v", *got, want)
		}
	}
	check(t, k)
	e.clock.Advance(30 * 24 * time.Hour)
	check(t, k)
	check(t, e.idKeyring(t, "EdDSA", "ES256"))
}

// TestParseIDTokenHintRefusesForgeries attacks ParseIDTokenHint with
// tokens an attacker can make without an ID-token private key, and with
// tokens of the real key whose header or issuer are wrong.
func TestParseIDTokenHintRefusesForgeries(t *testing.T) {
	e := newEnv(t)
	k := e.idKeyring(t, "EdDSA", "RS256")
	now := e.clock.Now()
	for _, alg := range IDTokenAlgorithms {
		t.Run(alg, func(t *testing.T) {
			genuine := signID(t, k, alg, idClaimsAt(now))
			if _, err := k.ParseIDTokenHint(genuine); err != nil {
				t.Fatalf("genuine hint: %v", err)
			}
			x := idKeyOf(t, k, alg)
			h, p, s := parts(t, genuine)
			hdr, payload := decode(t, h), decode(t, p)
			sig, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			flipped := append([]byte(nil), sig...)
			flipped[len(flipped)/2] ^= 0x01
			pkix, err := x509.MarshalPKIXPublicKey(x.pub)
			if err != nil {
				t.Fatal(err)
			}
			att := attackerKeys()
			claims := map[string]any{"iss": testIssuer, "sub": "admin", "aud": testClient, "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()}
			idHdr := func(kid string) map[string]any { return map[string]any{"kid": kid, "typ": "JWT"} }
			hsKeyed := func(secret []byte) string { // HS256 keyed with public material
				hh := segment(t, with(hdr, "alg", "HS256"))
				return hh + "." + p + "." + hs256(t, hh+"."+p, secret)
			}
			cases := map[string]string{
				"payload sub changed":            h + "." + segment(t, with(payload, "sub", "admin")) + "." + s,
				"payload aud changed":            h + "." + segment(t, with(payload, "aud", "other-client")) + "." + s,
				"signature bit flipped":          h + "." + p + "." + b64url(flipped),
				"signature empty":                h + "." + p + ".",
				"two segments":                   h + "." + p,
				"four segments":                  genuine + "." + s,
				"alg none":                       segment(t, with(hdr, "alg", "none")) + "." + p + ".",
				"HS256 keyed with the PKIX key":  hsKeyed(pkix),
				"HS256 keyed with the JWKS":      hsKeyed(k.JWKS()),
				"attacker key, unknown kid":      sign(t, "EdDSA", att["EdDSA"], idHdr("id-attacker"), claims),
				"attacker key, no kid":           sign(t, "EdDSA", att["EdDSA"], map[string]any{"typ": "JWT"}, claims),
				"attacker key, the real kid":     sign(t, alg, att[alg], idHdr(x.kid), claims),
				"attacker key in a jwk header":   sign(t, "EdDSA", att["EdDSA"], map[string]any{"typ": "JWT", "jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64url(att["EdDSA"].(ed25519.PrivateKey).Public().(ed25519.PublicKey))}}, claims),
				"real key, typ at+jwt":           sign(t, alg, x.priv, map[string]any{"kid": x.kid, "typ": "at+jwt"}, claims),
				"real key, typ missing":          sign(t, alg, x.priv, map[string]any{"kid": x.kid}, claims),
				"real key, wrong iss":            sign(t, alg, x.priv, idHdr(x.kid), with(claims, "iss", "https://evil.example")),
				"real key, iss trailing slash":   sign(t, alg, x.priv, idHdr(x.kid), with(claims, "iss", testIssuer+"/")),
				"real key, no iss":               sign(t, alg, x.priv, idHdr(x.kid), with(claims, "iss", nil)),
				"real key, no sub":               sign(t, alg, x.priv, idHdr(x.kid), with(claims, "sub", nil)),
				"real key, no aud":               sign(t, alg, x.priv, idHdr(x.kid), with(claims, "aud", nil)),
				"real key, two audiences":        sign(t, alg, x.priv, idHdr(x.kid), with(claims, "aud", []string{testClient, "other"})),
				"real key, the access key's kid": sign(t, alg, x.priv, idHdr(currentKey(t, k).kid), claims),
				"real key, token over 8 KiB":     sign(t, alg, x.priv, idHdr(x.kid), with(claims, "name", strings.Repeat("a", maxTokenLen))),
				"whitespace around a good token": " " + genuine + " ",
			}
			for name, tok := range cases {
				t.Run(name, func(t *testing.T) { mustRefuseHint(t, k, tok) })
			}
		})
	}
}

// TestRotateRotatesIDTokenKeys: a rotation makes a new key for the access
// tokens and for every ID-token algorithm in use (and no other); old ID
// tokens keep verifying — for a relying party and as hints — until their
// key retires like an access-token key.
func TestRotateRotatesIDTokenKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k := e.idKeyring(t, "EdDSA", "ES256")
	oldES := signID(t, k, "", idClaimsAt(e.clock.Now()))
	oldEd := signID(t, k, "EdDSA", idClaimsAt(e.clock.Now()))
	oldAccess := issue(t, k)
	oldKids := map[string]bool{currentKey(t, k).kid: true, idKeyOf(t, k, "ES256").kid: true, idKeyOf(t, k, "EdDSA").kid: true}

	e.clock.Advance(time.Minute)
	made, err := k.RotateAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range made {
		got = append(got, m.Alg+"/"+map[bool]string{false: "access", true: "id"}[m.IDToken])
		if oldKids[m.KID] || !m.Current || !m.Published {
			t.Errorf("RotateAll made %+v", m)
		}
	}
	if want := []string{"EdDSA/access", "ES256/id", "EdDSA/id"}; !slices.Equal(got, want) {
		t.Fatalf("RotateAll made %v, want %v (no RS256: no client uses it)", got, want)
	}
	if currentKey(t, k).kid != made[0].KID || idKeyOf(t, k, "ES256").kid != made[1].KID || idKeyOf(t, k, "EdDSA").kid != made[2].KID {
		t.Fatal("the new keys are not current")
	}
	h, _, _ := parts(t, signID(t, k, "", idClaimsAt(e.clock.Now())))
	if decode(t, h)["kid"] != made[1].KID {
		t.Fatal("a new ID token is not signed by the new key")
	}
	current := 0
	for _, ki := range k.Keys() {
		if ki.Current {
			current++
		}
	}
	if current != 3 || len(k.Keys()) != 6 {
		t.Fatalf("Keys = %+v, want 6 with 3 current", k.Keys())
	}
	for alg, tok := range map[string]string{"ES256": oldES, "EdDSA": oldEd} {
		if _, err := relyingParty(t, k, alg).Verify(ctx, tok); err != nil {
			t.Errorf("an old %s ID token fails at the relying party after rotation: %v", alg, err)
		}
		if _, err := k.ParseIDTokenHint(tok); err != nil {
			t.Errorf("an old %s ID token fails as a hint after rotation: %v", alg, err)
		}
	}
	mustVerify(t, k, oldAccess)

	// Rotate — what `gatehouse keys rotate` calls — rotates them too.
	e.clock.Advance(time.Minute)
	kid, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kid != currentKey(t, k).kid || idKeyOf(t, k, "ES256").kid == made[1].KID || idKeyOf(t, k, "EdDSA").kid == made[2].KID {
		t.Fatal("Rotate did not rotate the ID-token keys")
	}
	// The first keys now have a successor's successor: once that has
	// lived an access-token lifetime plus 5 minutes, they retire.
	e.clock.Advance(testTTL + 5*time.Minute)
	if err := k.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	mustRefuseHint(t, k, oldES)
	mustRefuseHint(t, k, oldEd)
	for kid := range oldKids {
		if strings.Contains(string(k.JWKS()), kid) {
			t.Errorf("retired key %s still published", kid)
		}
	}
}

// TestIDTokenKeysAcrossNodes: nodes sharing a database share the ID-token
// key of an algorithm (the second node finds the first's key instead of
// making its own), and a node that has not seen a new key yet verifies a
// hint it signed after the usual reload.
func TestIDTokenKeysAcrossNodes(t *testing.T) {
	e := newEnv(t)
	a := e.keyring(t, "EdDSA")
	b := e.keyring(t, "EdDSA")
	c := e.keyring(t, "EdDSA")
	ta := signID(t, a, "ES256", idClaimsAt(e.clock.Now()))
	tb := signID(t, b, "ES256", idClaimsAt(e.clock.Now()))
	ha, _, _ := parts(t, ta)
	hb, _, _ := parts(t, tb)
	if decode(t, ha)["kid"] != decode(t, hb)["kid"] {
		t.Fatalf("two nodes made two ES256 ID-token keys: %v, %v", decode(t, ha)["kid"], decode(t, hb)["kid"])
	}
	if _, err := b.ParseIDTokenHint(ta); err != nil {
		t.Fatalf("node b: %v", err)
	}
	mustRefuseHint(t, c, ta) // c's keys are fresh: no reload yet
	e.clock.Advance(3 * time.Second)
	if _, err := c.ParseIDTokenHint(ta); err != nil {
		t.Fatalf("node c after its keys went stale: %v", err)
	}
	if !strings.Contains(string(c.JWKS()), decode(t, ha)["kid"].(string)) {
		t.Fatal("node c does not publish the key node a made")
	}
}

// TestIDTokenKeyMadeOnceUnderConcurrency signs from many goroutines on a
// ring without an EdDSA ID-token key: one key is made, every token uses it.
func TestIDTokenKeyMadeOnceUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t, "ES256")
	var wg sync.WaitGroup
	toks := make([]string, 8)
	errs := make([]error, 8)
	for i := range toks {
		wg.Go(func() {
			toks[i], errs[i] = k.SignIDToken(context.Background(), "EdDSA", idClaimsAt(e.clock.Now()))
			if errs[i] == nil {
				_, errs[i] = k.ParseIDTokenHint(toks[i])
			}
			_ = k.JWKS()
			_, _ = k.Verify(toks[i])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 {
		t.Fatalf("stored %d keys, want the access key and one ID-token key", len(stored))
	}
}

// TestIDTokenKeyKindIsSealed: the kind of a key is its kid, which is in
// the seal's additional data: relabelling an access-token key as an
// ID-token key (or back) in the database makes loading fail.
func TestIDTokenKeyKindIsSealed(t *testing.T) {
	for name, sql := range map[string]string{
		"access key relabelled as ID key": `UPDATE signing_keys SET kid = 'id-' || kid WHERE kid NOT LIKE 'id-%'`,
		"ID key relabelled as access key": `UPDATE signing_keys SET kid = substr(kid, 4) WHERE kid LIKE 'id-%'`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			k := e.idKeyring(t, "EdDSA", "EdDSA")
			if _, err := e.rawDB(t).Exec(sql); err != nil {
				t.Fatal(err)
			}
			if err := k.Reload(context.Background()); err == nil {
				t.Fatal("Reload accepted a relabelled key")
			}
		})
	}
}

// BenchmarkSignIDToken signs a full ID token (every claim, at_hash) with
// each ID-token algorithm.
func BenchmarkSignIDToken(b *testing.B) {
	e := newEnv(b)
	k := e.idKeyring(b, "EdDSA", "RS256")
	ctx := context.Background()
	for _, alg := range IDTokenAlgorithms {
		b.Run(alg, func(b *testing.B) {
			c := idClaimsAt(e.clock.Now())
			signID(b, k, alg, c) // make the key outside the timing
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.SignIDToken(ctx, alg, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
