package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

// attackerKeys are keys the attacker controls, one per algorithm, made once
// (RSA generation is slow).
var attackerKeys = sync.OnceValue(func() map[string]any {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return map[string]any{"EdDSA": ed, "ES256": ec, "RS256": rs, "HS256": []byte("attacker-chosen-hmac-secret-32by")}
})

// publicKeyEncodings are the ways an attacker might serialise the server's
// public verification key to use it as an HMAC secret (the classic RS256 →
// HS256 key-confusion attack).
func publicKeyEncodings(tb testing.TB, k *Keyring, cur *key) map[string][]byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(cur.pub)
	if err != nil {
		tb.Fatalf("MarshalPKIXPublicKey: %v", err)
	}
	var raw []byte
	switch p := cur.pub.(type) {
	case ed25519.PublicKey:
		raw = p
	case *ecdsa.PublicKey:
		if raw, err = p.Bytes(); err != nil {
			tb.Fatalf("ecdsa public key bytes: %v", err)
		}
	case *rsa.PublicKey:
		raw = x509.MarshalPKCS1PublicKey(p)
	default:
		tb.Fatalf("unexpected public key type %T", cur.pub)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil || len(set.Keys) == 0 {
		tb.Fatalf("JWKS %s: %v", k.JWKS(), err)
	}
	return map[string][]byte{
		"raw public key":               raw,
		"PKIX DER":                     der,
		"PEM":                          pemBytes,
		"PEM without trailing newline": []byte(strings.TrimRight(string(pemBytes), "\n")),
		"JWKS JSON":                    k.JWKS(),
		"JWK JSON":                     set.Keys[0],
		"base64url raw public key":     []byte(b64url(raw)),
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TestVerifyRefusesForgeries attacks Verify, for a keyring of every
// algorithm, with tokens an attacker can build without the private key:
// "none" algorithms, key confusion, tampered payloads, attacker keys
// named by kid or embedded in the header, and mangled signatures.
func TestVerifyRefusesForgeries(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			k, _ := newKeyring(t, alg)
			cur := currentKey(t, k)
			genuine := issue(t, k)
			// Warm the verify cache with the genuine token: a forgery must
			// not be accepted on the strength of a cached look-alike.
			mustVerify(t, k, genuine)
			h, p, s := parts(t, genuine)
			hdr, payload := decode(t, h), decode(t, p)
			if hdr["kid"] != cur.kid || hdr["alg"] != alg {
				t.Fatalf("genuine header %v, want kid %s alg %s", hdr, cur.kid, alg)
			}
			now := k.opts.Now()

			type forgery struct {
				name string
				tok  string
			}
			var cases []forgery
			add := func(name, tok string) {
				if tok == genuine {
					return // e.g. base64 padding of a signature whose length needs none
				}
				cases = append(cases, forgery{name, tok})
			}

			// alg "none" in any spelling, with and without a signature.
			for _, none := range []string{"none", "None", "NONE", "nOnE"} {
				nh := segment(t, with(hdr, "alg", none))
				add("alg "+none+" with empty signature", nh+"."+p+".")
				add("alg "+none+" with original signature", nh+"."+p+"."+s)
				add("alg "+none+" without kid, empty signature", segment(t, with(hdr, "alg", none, "kid", nil))+"."+p+".")
				add("alg "+none+" with admin payload", nh+"."+segment(t, with(payload, "scope", "read write admin", "roles", []string{"admin"}))+".")
			}
			add("alg missing", segment(t, with(hdr, "alg", nil))+"."+p+"."+s)
			add("alg empty", segment(t, with(hdr, "alg", ""))+"."+p+"."+s)
			add("alg as array", segment(t, with(hdr, "alg", []string{alg}))+"."+p+"."+s)

			// HS256 keyed with the public key, in every plausible encoding.
			if alg != "HS256" {
				for name, secret := range publicKeyEncodings(t, k, cur) {
					for _, kid := range []any{cur.kid, nil} {
						hh := segment(t, with(hdr, "alg", "HS256", "kid", kid))
						label := "HS256 keyed with " + name
						if kid == nil {
							label += ", no kid"
						}
						add(label, hh+"."+p+"."+hs256(t, hh+"."+p, secret))
					}
				}
			}

			// The payload changed, the original signature kept.
			for _, tc := range []struct {
				name string
				kv   []any
			}{
				{"scope widened", []any{"scope", "read write admin"}},
				{"roles escalated", []any{"roles", []string{"admin"}}},
				{"exp extended", []any{"exp", now.Add(365 * 24 * time.Hour).Unix()}},
				{"sub changed", []any{"sub", "some-admin-id"}},
				{"email changed", []any{"email", "admin@example.test"}},
				{"client_id changed", []any{"client_id", "other-client"}},
				{"aud changed", []any{"aud", "https://other.example.test"}},
			} {
				add("payload "+tc.name+", original signature", h+"."+segment(t, with(payload, tc.kv...))+"."+s)
			}
			add("header typ dropped, original signature", segment(t, with(hdr, "typ", nil))+"."+p+"."+s)
			add("header re-encoded with extra member, original signature", segment(t, with(hdr, "x", "y"))+"."+p+"."+s)

			// The signature stripped, truncated, emptied or altered.
			sig, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			flipped := append([]byte(nil), sig...)
			flipped[len(flipped)/2] ^= 0x01
			other := issue(t, k)
			_, _, otherSig := parts(t, other)
			add("signature stripped (two segments)", h+"."+p)
			add("signature empty", h+"."+p+".")
			add("signature truncated to half", h+"."+p+"."+s[:len(s)/2])
			add("signature missing its last character", h+"."+p+"."+s[:len(s)-1])
			add("signature with one byte less", h+"."+p+"."+b64url(sig[:len(sig)-1]))
			add("signature with an extra character", h+"."+p+"."+s+"A")
			add("signature with one bit flipped", h+"."+p+"."+b64url(flipped))
			add("signature all zero", h+"."+p+"."+b64url(make([]byte, len(sig))))
			add("signature base64-padded", h+"."+p+"."+base64.URLEncoding.EncodeToString(sig))
			add("signature in standard base64", h+"."+p+"."+base64.StdEncoding.EncodeToString(sig))
			add("signature of another token", h+"."+p+"."+otherSig)
			add("four segments", genuine+"."+s)
			add("header and payload swapped", p+"."+h+"."+s)
			add("whitespace around token", " "+genuine+" ")

			// Keys the attacker controls.
			att := attackerKeys()
			claims := validClaims(now)
			attPub := att["EdDSA"].(ed25519.PrivateKey).Public().(ed25519.PublicKey)
			attJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64url(attPub)}
			add("unknown kid signed by attacker key", sign(t, "EdDSA", att["EdDSA"], with(validHeader("attacker-kid")), claims))
			add("no kid, signed by attacker key", sign(t, "EdDSA", att["EdDSA"], with(validHeader(""), "kid", nil), claims))
			add("attacker key as jwk header, no kid", sign(t, "EdDSA", att["EdDSA"], with(validHeader(""), "kid", nil, "jwk", attJWK), claims))
			add("attacker key as jwk header, real kid", sign(t, "EdDSA", att["EdDSA"], with(validHeader(cur.kid), "jwk", with(attJWK, "kid", cur.kid)), claims))
			add("attacker jku, own kid", sign(t, "EdDSA", att["EdDSA"], with(validHeader("attacker-kid"), "jku", "https://evil.example/jwks.json"), claims))
			add("attacker jku, real kid", sign(t, "EdDSA", att["EdDSA"], with(validHeader(cur.kid), "jku", "https://evil.example/jwks.json"), claims))
			add("attacker x5u, real kid", sign(t, "EdDSA", att["EdDSA"], with(validHeader(cur.kid), "x5u", "https://evil.example/cert.pem"), claims))
			for _, a := range Algorithms {
				add("attacker "+a+" key claiming the real kid", sign(t, a, att[a], validHeader(cur.kid), claims))
			}
			// A key freshly made by the same generator as the real one.
			fresh, err := generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			add("fresh "+alg+" key claiming the real kid", sign(t, alg, fresh, validHeader(cur.kid), claims))

			// Tokens signed by the real key but with claims Verify must refuse.
			realHdr := validHeader(cur.kid)
			// SPEC: at most 5 s of leeway; 6 s is beyond it whatever the constant says.
			beyond := 6 * time.Second
			for _, tc := range []struct {
				name   string
				header map[string]any
				claims map[string]any
			}{
				{"wrong iss", realHdr, with(claims, "iss", "https://evil.example")},
				{"iss with trailing slash", realHdr, with(claims, "iss", testIssuer+"/")},
				{"missing iss", realHdr, with(claims, "iss", nil)},
				{"wrong aud", realHdr, with(claims, "aud", []string{"https://other-api.example.test"})},
				{"aud as other string", realHdr, with(claims, "aud", "https://other-api.example.test")},
				{"missing aud", realHdr, with(claims, "aud", nil)},
				{"empty aud", realHdr, with(claims, "aud", []string{})},
				{"expired beyond the leeway", realHdr, with(claims, "exp", now.Add(-beyond).Unix())},
				{"expired exactly 5s ago", realHdr, with(claims, "exp", now.Add(-5*time.Second).Unix())},
				{"expired long ago", realHdr, with(claims, "exp", now.Add(-24*time.Hour).Unix(), "iat", now.Add(-25*time.Hour).Unix(), "nbf", now.Add(-25*time.Hour).Unix())},
				{"nbf in the future beyond the leeway", realHdr, with(claims, "nbf", now.Add(beyond).Unix())},
				{"iat in the future beyond the leeway", realHdr, with(claims, "iat", now.Add(beyond).Unix())},
				{"missing exp", realHdr, with(claims, "exp", nil)},
				{"exp as bool", realHdr, with(claims, "exp", true)},
				{"missing sub", realHdr, with(claims, "sub", nil)},
				{"empty sub", realHdr, with(claims, "sub", "")},
				{"typ missing", with(realHdr, "typ", nil), claims},
				{"typ JWT", with(realHdr, "typ", "JWT"), claims},
				{"typ empty", with(realHdr, "typ", ""), claims},
				{"typ at+jwt with suffix", with(realHdr, "typ", "at+jwt2"), claims},
				{"typ as number", with(realHdr, "typ", 1), claims},
				{"kid missing", with(realHdr, "kid", nil), claims},
				{"kid as number", with(realHdr, "kid", 7), claims},
				{"kid with different case", with(realHdr, "kid", strings.ToUpper(cur.kid)), claims},
				{"token longer than 8 KiB", realHdr, with(claims, "email", strings.Repeat("a", maxTokenLen)+"@example.test")},
			} {
				add("real key, "+tc.name, signWithCurrent(t, k, tc.header, tc.claims))
			}

			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					mustRefuse(t, k, tc.tok)
					if isCached(k, tc.tok) {
						t.Fatal("a refused token was put in the verify cache")
					}
				})
			}
			// The attacks did not disturb the genuine token.
			mustVerify(t, k, genuine)
		})
	}
}

// TestVerifyAcceptsWithinLeeway is the counterpart of the clock cases above:
// genuine tokens that are inside the 5 s leeway, and the other spelling of
// typ that RFC 9068 allows, verify.
func TestVerifyAcceptsWithinLeeway(t *testing.T) {
	k, _ := newKeyring(t, "EdDSA")
	cur := currentKey(t, k)
	now := k.opts.Now()
	within := 4 * time.Second // inside the 5 s leeway
	claims := validClaims(now)
	hdr := validHeader(cur.kid)
	tests := []struct {
		name   string
		header map[string]any
		claims map[string]any
	}{
		{"valid", hdr, claims},
		{"expired 4s ago", hdr, with(claims, "exp", now.Add(-within).Unix(), "iat", now.Add(-time.Minute).Unix(), "nbf", now.Add(-time.Minute).Unix())},
		{"nbf 4s ahead", hdr, with(claims, "nbf", now.Add(within).Unix())},
		{"iat 4s ahead", hdr, with(claims, "iat", now.Add(within).Unix(), "nbf", now.Add(within).Unix())},
		{"no nbf", hdr, with(claims, "nbf", nil)},
		{"no iat", hdr, with(claims, "iat", nil)},
		{"aud as a string", hdr, with(claims, "aud", testAudience)},
		{"aud among others", hdr, with(claims, "aud", []string{"https://x.example.test", testAudience})},
		{"typ application/at+jwt", with(hdr, "typ", "application/at+jwt"), claims},
		{"typ in upper case", with(hdr, "typ", "AT+JWT"), claims},
		{"token of exactly-ish 8 KiB", hdr, with(claims, "email", strings.Repeat("a", maxTokenLen*3/4-400)+"@example.test")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := signWithCurrent(t, k, tc.header, tc.claims)
			if len(tok) > maxTokenLen {
				t.Fatalf("test token is %d bytes, over the %d limit", len(tok), maxTokenLen)
			}
			c := mustVerify(t, k, tok)
			if c.Subject != "user-123" {
				t.Fatalf("Subject = %q", c.Subject)
			}
		})
	}
}

// TestVerifyAlgorithmConfusionMixedKeyring covers a keyring that trusts an
// asymmetric key and an HS256 key at once (after the operator switched the
// algorithm): HS256 is then an accepted method, so the pinning of each
// key's algorithm is the only thing stopping a token that names the
// asymmetric key and is HMAC-ed with its public key.
func TestVerifyAlgorithmConfusionMixedKeyring(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t)
			asym := e.keyring(t, alg)
			oldKey := currentKey(t, asym)
			oldTok := issue(t, asym)
			encodings := publicKeyEncodings(t, asym, oldKey)

			mixed := e.keyring(t, "HS256")
			if cur := currentKey(t, mixed); cur.alg != "HS256" {
				t.Fatalf("current alg = %s, want HS256", cur.alg)
			}
			mustVerify(t, mixed, oldTok)          // the old key is still trusted
			mustVerify(t, mixed, issue(t, mixed)) // and so is the new one

			h, p, _ := parts(t, oldTok)
			hdr, payload := decode(t, h), decode(t, p)
			admin := segment(t, with(payload, "roles", []string{"admin"}, "scope", "read write admin"))
			for name, secret := range encodings {
				t.Run("HS256 keyed with "+name, func(t *testing.T) {
					hh := segment(t, with(hdr, "alg", "HS256"))
					mustRefuse(t, mixed, hh+"."+p+"."+hs256(t, hh+"."+p, secret))
					mustRefuse(t, mixed, hh+"."+admin+"."+hs256(t, hh+"."+admin, secret))
				})
			}
			t.Run("attacker HS256 secret with the HS256 kid", func(t *testing.T) {
				hk := currentKey(t, mixed).kid
				mustRefuse(t, mixed, sign(t, "HS256", attackerKeys()["HS256"], validHeader(hk), validClaims(e.clock.Now())))
			})
			t.Run("HS256 keyed with the public key under the HS256 kid", func(t *testing.T) {
				hk := currentKey(t, mixed).kid
				mustRefuse(t, mixed, sign(t, "HS256", encodings["raw public key"], validHeader(hk), validClaims(e.clock.Now())))
			})
		})
	}
}
