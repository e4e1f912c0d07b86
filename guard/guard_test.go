package guard_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/guard"
)

var discard = slog.New(slog.DiscardHandler)

func TestAccessTokens(t *testing.T) {
	clock := newClock()
	ed, es, rs := newKey(t, "ed-1", "EdDSA"), newKey(t, "es-1", "ES256"), newKey(t, "rs-1", "RS256")
	attacker := newKey(t, "ed-1", "EdDSA") // same kid as a real key, another private key
	f := newFakeGatehouse(t, clock, ed, es, rs)
	now := clock.Now()
	edPub := []byte(ed.priv.Public().(ed25519.PublicKey))

	tests := []struct {
		name    string
		token   func() string
		wantErr error // nil: accepted
	}{
		{"valid EdDSA", func() string { return sign(t, ed, f.claims("u1", "user")) }, nil},
		{"valid ES256", func() string { return sign(t, es, f.claims("u1", "user")) }, nil},
		{"valid RS256", func() string { return sign(t, rs, f.claims("u1", "user")) }, nil},
		{"aud as a string", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { c["aud"] = f.URL })
		}, nil},
		{"typ application/at+jwt", func() string {
			return sign(t, ed, f.claims("u1"), func(h map[string]any, _ jwt.MapClaims) { h["typ"] = "application/at+jwt" })
		}, nil},
		{"expired", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { c["exp"] = now.Add(-6 * time.Second).Unix() })
		}, guard.ErrInvalidToken},
		{"expired within the leeway", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { c["exp"] = now.Add(-4 * time.Second).Unix() })
		}, nil},
		{"no exp", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { delete(c, "exp") })
		}, guard.ErrInvalidToken},
		{"nbf in the future", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })
		}, guard.ErrInvalidToken},
		{"nbf within the leeway", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { c["nbf"] = now.Add(4 * time.Second).Unix() })
		}, nil},
		{"iat in the future", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })
		}, guard.ErrInvalidToken},
		{"wrong iss", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { c["iss"] = "https://evil.example" })
		}, guard.ErrInvalidToken},
		{"wrong aud", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { c["aud"] = []string{"https://other-api.example"} })
		}, guard.ErrInvalidToken},
		{"no sub", func() string {
			return sign(t, ed, f.claims("u1"), func(_ map[string]any, c jwt.MapClaims) { delete(c, "sub") })
		}, guard.ErrInvalidToken},
		{"typ JWT (an ID token, say)", func() string {
			return sign(t, ed, f.claims("u1"), func(h map[string]any, _ jwt.MapClaims) { h["typ"] = "JWT" })
		}, guard.ErrInvalidToken},
		{"no typ", func() string {
			return sign(t, ed, f.claims("u1"), func(h map[string]any, _ jwt.MapClaims) { delete(h, "typ") })
		}, guard.ErrInvalidToken},
		{"crit header", func() string {
			return sign(t, ed, f.claims("u1"), func(h map[string]any, _ jwt.MapClaims) { h["crit"] = []string{"exp"} })
		}, guard.ErrInvalidToken},
		{"no kid", func() string {
			return sign(t, ed, f.claims("u1"), func(h map[string]any, _ jwt.MapClaims) { delete(h, "kid") })
		}, guard.ErrInvalidToken},
		{"alg none", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, f.claims("u1", "admin"))
			tok.Header["kid"], tok.Header["typ"] = ed.kid, "at+jwt"
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, guard.ErrInvalidToken},
		{"HS256 signed with the public key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, f.claims("u1", "admin"))
			tok.Header["kid"], tok.Header["typ"] = ed.kid, "at+jwt"
			s, err := tok.SignedString(edPub)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, guard.ErrInvalidToken},
		{"ES256 token naming the EdDSA key", func() string {
			return sign(t, es, f.claims("u1"), func(h map[string]any, _ jwt.MapClaims) { h["kid"] = ed.kid })
		}, guard.ErrInvalidToken},
		{"another key under a known kid, with its jwk in the header", func() string {
			return sign(t, attacker, f.claims("u1", "admin"), func(h map[string]any, _ jwt.MapClaims) { h["jwk"] = attacker.jwk() })
		}, guard.ErrInvalidToken},
		{"tampered claims", func() string {
			s := sign(t, ed, f.claims("u1", "user"))
			parts := strings.Split(s, ".")
			body, _ := json.Marshal(f.claims("u1", "admin"))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
		}, guard.ErrInvalidToken},
		{"not a JWT", func() string { return "not-a-token" }, guard.ErrInvalidToken},
		{"oversized", func() string { return strings.Repeat("a.", 5000) + "a" }, guard.ErrInvalidToken},
	}
	g := newGuard(t, f)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := g.Check(request("GET", bearer(tt.token())))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, %v; want %v", p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Subject != "u1" || p.Kind != guard.KindAccessToken || !p.HasScope("write") || p.Email != "u1@example.test" || p.ClientID != "web" {
				t.Errorf("principal %+v", p)
			}
		})
	}
	if n := f.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want once (no unknown kid, nothing stale)", n)
	}
}

func TestAccessTokenPrincipal(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newGuard(t, f)
	tok := sign(t, ed, f.claims("u1", "editor", "user"))
	want := &guard.Principal{Subject: "u1", Kind: "access_token", Scopes: []string{"read", "write"}, Roles: []string{"editor", "user"},
		Email: "u1@example.test", ClientID: "web", ExpiresAt: clock.Now().Add(15 * time.Minute)}
	for i := range 2 { // verified, then from the cache
		p, err := g.Check(request("GET", bearer(tok)))
		if err != nil {
			t.Fatal(err)
		}
		if !samePrincipal(p, want) {
			t.Fatalf("call %d: got %+v, want %+v", i, p, want)
		}
		p.Scopes = append(p.Scopes, "admin") // must not leak into the cache
		p.Roles[0] = "x"                     // documented as forbidden; at least the slice header is ours
	}
}

func samePrincipal(a, b *guard.Principal) bool {
	return a.Subject == b.Subject && a.Kind == b.Kind && slices.Equal(a.Scopes, b.Scopes) && a.Email == b.Email &&
		a.ClientID == b.ClientID && a.ExpiresAt.Equal(b.ExpiresAt) && len(a.Roles) == len(b.Roles)
}

func TestCachedTokenStillExpires(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newGuard(t, f)
	tok := sign(t, ed, f.claims("u1"))
	if _, err := g.Check(request("GET", bearer(tok))); err != nil {
		t.Fatal(err)
	}
	clock.Advance(15*time.Minute + 4*time.Second) // within the leeway
	if _, err := g.Check(request("GET", bearer(tok))); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	clock.Advance(2 * time.Second)
	if _, err := g.Check(request("GET", bearer(tok))); !errors.Is(err, guard.ErrInvalidToken) {
		t.Fatalf("expired token from the cache: %v", err)
	}
}

func TestUnknownKidRefreshesOnceThenRefuses(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	stranger := newKey(t, "k-unknown", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newGuard(t, f)
	check := func(tok string) error { _, err := g.Check(request("GET", bearer(tok))); return err }

	if err := check(sign(t, ed, f.claims("u1"))); err != nil {
		t.Fatal(err)
	}
	if n := f.jwksHits.Load(); n != 1 {
		t.Fatalf("first use: %d fetches", n)
	}
	// Just fetched: an unknown kid does not fetch again.
	if err := check(sign(t, stranger, f.claims("u1"))); !errors.Is(err, guard.ErrInvalidToken) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := f.jwksHits.Load(); n != 1 {
		t.Fatalf("unknown kid within 10 s: %d fetches, want 1", n)
	}
	clock.Advance(11 * time.Second)
	for i := range 5 {
		if err := check(sign(t, stranger, f.claims("u1"))); !errors.Is(err, guard.ErrInvalidToken) {
			t.Fatalf("unknown kid, try %d: %v", i, err)
		}
	}
	if n := f.jwksHits.Load(); n != 2 {
		t.Fatalf("after 10 s, 5 unknown kids: %d fetches, want exactly one more (2)", n)
	}
}

func TestKeyRotation(t *testing.T) {
	clock := newClock()
	k1, k2 := newKey(t, "k1", "EdDSA"), newKey(t, "k2", "ES256")
	f := newFakeGatehouse(t, clock, k1)
	g := newGuard(t, f)
	old := sign(t, k1, f.claims("u1"))
	if _, err := g.Check(request("GET", bearer(old))); err != nil {
		t.Fatal(err)
	}
	f.publish(k2, k1) // gatehouse keys rotate
	clock.Advance(11 * time.Second)
	if _, err := g.Check(request("GET", bearer(sign(t, k2, f.claims("u2"))))); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if _, err := g.Check(request("GET", bearer(old))); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
	if n := f.jwksHits.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}

	// The old key leaves the JWKS: once the guard re-reads it, tokens it
	// signed stop working, cached or not.
	f.publish(k2)
	clock.Advance(5 * time.Minute)
	if _, err := g.Check(request("GET", bearer(old))); !errors.Is(err, guard.ErrInvalidToken) {
		t.Fatalf("token of a withdrawn key: %v", err)
	}
	if _, err := g.Check(request("GET", bearer(sign(t, k2, f.claims("u2"))))); err != nil {
		t.Fatalf("token of the current key after refresh: %v", err)
	}
}

func TestJWKSUnavailableFailsClosed(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	f.set(func(f *fakeGatehouse) { f.jwksDown = true })
	g := newGuard(t, f)
	tok := sign(t, ed, f.claims("u1"))
	if _, err := g.Check(request("GET", bearer(tok))); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("JWKS down: %v, want ErrUnavailable", err)
	}
	if _, err := g.Check(request("GET", bearer(tok))); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("JWKS down, retry at once: %v", err)
	}
	if n := f.jwksHits.Load(); n != 1 {
		t.Errorf("retried within a second: %d fetches", n)
	}
	f.set(func(f *fakeGatehouse) { f.jwksDown = false })
	clock.Advance(2 * time.Second)
	if _, err := g.Check(request("GET", bearer(tok))); err != nil {
		t.Fatalf("JWKS back: %v", err)
	}
}

func TestOpaqueCredentials(t *testing.T) {
	clock := newClock()
	f := newFakeGatehouse(t, clock)
	const (
		key     = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
		revoked = "gth_revokedKey0123456789abcdefghijklmnopqrstuvwxyz"
		session = "c2Vzc2lvbi1pZC1vZi1hbGljZS0wMTIzNDU2Nzg5"
		refresh = "ghr_refreshTokenSentAsACookie0123456789"
	)
	f.activate(key, "api_key", "alice", "read write", "user")
	f.activate(session, "session", "alice", "read write", "user")
	f.activate(refresh, "refresh_token", "alice", "read write", "user")

	tests := []struct {
		name     string
		header   http.Header
		cfg      func(*guard.Config)
		wantKind string
		wantErr  error
		wantCall bool // introspection was asked
	}{
		{"X-API-Key", http.Header{"X-Api-Key": {key}}, nil, guard.KindAPIKey, nil, true},
		{"Bearer gth_", bearer(key), nil, guard.KindAPIKey, nil, true},
		{"session cookie", http.Header{"Cookie": {"gatehouse_session=" + session}}, nil, guard.KindSession, nil, true},
		{"custom cookie name", http.Header{"Cookie": {"sid=" + session}}, func(c *guard.Config) { c.CookieName = "sid" }, guard.KindSession, nil, true},
		{"inactive key", http.Header{"X-Api-Key": {revoked}}, nil, "", guard.ErrInvalidToken, true},
		{"API key sent as a cookie", http.Header{"Cookie": {"gatehouse_session=" + key}}, nil, "", guard.ErrInvalidToken, true},
		{"refresh token sent as a cookie", http.Header{"Cookie": {"gatehouse_session=" + refresh}}, nil, "", guard.ErrInvalidToken, true},
		{"session id sent as an API key", http.Header{"X-Api-Key": {session}}, nil, "", guard.ErrInvalidToken, false},
		{"malformed key", http.Header{"X-Api-Key": {"gth_<script>"}}, nil, "", guard.ErrInvalidToken, false},
		{"two X-API-Key headers", http.Header{"X-Api-Key": {key, revoked}}, nil, "", guard.ErrInvalidToken, false},
		{"no introspection key: API key refused", http.Header{"X-Api-Key": {key}}, func(c *guard.Config) { c.IntrospectionKey = "" }, "", guard.ErrInvalidToken, false},
		{"no introspection key: cookie ignored", http.Header{"Cookie": {"gatehouse_session=" + session}}, func(c *guard.Config) { c.IntrospectionKey = "" }, "", guard.ErrNoCredentials, false},
		{"nothing", nil, nil, "", guard.ErrNoCredentials, false},
		{"Basic credentials are not ours", http.Header{"Authorization": {"Basic dTpw"}}, nil, "", guard.ErrNoCredentials, false},
		{"wrong introspection key", http.Header{"X-Api-Key": {key}}, func(c *guard.Config) { c.IntrospectionKey = "gth_wrong" }, "", guard.ErrUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuard(t, f, func(c *guard.Config) {
				if tt.cfg != nil {
					tt.cfg(c)
				}
			})
			before := f.introHits.Load()
			f.set(func(f *fakeGatehouse) { f.lastForm, f.lastKey = nil, "" })
			p, err := g.Check(request("GET", tt.header))
			if called := f.introHits.Load() > before; called != tt.wantCall {
				t.Errorf("introspection called: %v, want %v", called, tt.wantCall)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %+v, %v; want %v", p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Subject != "alice" || p.Kind != tt.wantKind || !p.HasScope("write") || !p.HasRole("user") || p.Email != "alice@example.test" {
				t.Errorf("principal %+v", p)
			}
			f.set(func(f *fakeGatehouse) {
				if f.lastKey != introKey {
					t.Errorf("introspection authenticated with %q, want the IntrospectionKey", f.lastKey)
				}
				if len(f.lastForm) != 1 || len(f.lastForm["token"]) != 1 {
					t.Errorf("introspection form %v, want only token", f.lastForm)
				}
			})
		})
	}
}

func TestIntrospectionCache(t *testing.T) {
	clock := newClock()
	f := newFakeGatehouse(t, clock)
	const key = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
	const bad = "gth_unknownKey0123456789abcdefghijklmnopqrstuvwxyz"
	f.activate(key, "api_key", "alice", "read")
	g := newGuard(t, f) // CacheTTL 30 s
	check := func(k string) error { _, err := g.Check(request("GET", http.Header{"X-Api-Key": {k}})); return err }
	hits := func() int32 { return f.introHits.Load() }

	for range 3 {
		if err := check(key); err != nil {
			t.Fatal(err)
		}
	}
	if hits() != 1 {
		t.Fatalf("3 checks: %d introspections, want 1", hits())
	}
	// Revoked at Gatehouse: still accepted until the cache entry expires.
	f.set(func(f *fakeGatehouse) { delete(f.active, key) })
	clock.Advance(29 * time.Second)
	if err := check(key); err != nil {
		t.Fatalf("within CacheTTL: %v", err)
	}
	clock.Advance(2 * time.Second)
	if err := check(key); !errors.Is(err, guard.ErrInvalidToken) {
		t.Fatalf("after CacheTTL, revoked: %v", err)
	}
	if hits() != 2 {
		t.Fatalf("%d introspections, want 2", hits())
	}

	// Refusals are cached for 5 s.
	for range 10 {
		if err := check(bad); !errors.Is(err, guard.ErrInvalidToken) {
			t.Fatal(err)
		}
	}
	if hits() != 3 {
		t.Fatalf("10 checks of a bad key: %d introspections in all, want 3", hits())
	}
	clock.Advance(6 * time.Second)
	_ = check(bad)
	if hits() != 4 {
		t.Fatalf("refusal cached past 5 s: %d", hits())
	}

	// An expiring credential is not cached past its exp.
	const short = "gth_shortLivedKey0123456789abcdefghijklmnopqrstuvw"
	f.activate(short, "api_key", "alice", "read")
	f.set(func(f *fakeGatehouse) { f.active[short]["exp"] = clock.Now().Add(10 * time.Second).Unix() })
	if err := check(short); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if err := check(short); !errors.Is(err, guard.ErrInvalidToken) {
		t.Fatalf("expired key: %v", err)
	}
}

func TestConcurrentIntrospectionsShareOneCall(t *testing.T) {
	clock := newClock()
	f := newFakeGatehouse(t, clock)
	const key = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
	f.activate(key, "api_key", "alice", "read")
	gate := make(chan struct{})
	f.set(func(f *fakeGatehouse) { f.gate = gate })
	g := newGuard(t, f)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := g.Check(request("GET", http.Header{"X-Api-Key": {key}}))
			errs <- err
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.introHits.Load(); n != 1 {
		t.Fatalf("50 concurrent checks: %d introspections, want 1", n)
	}
}

func TestIntrospectionFailureFailsClosed(t *testing.T) {
	const key = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
	t.Run("error status", func(t *testing.T) {
		f := newFakeGatehouse(t, newClock())
		f.activate(key, "api_key", "alice", "read")
		f.set(func(f *fakeGatehouse) { f.introDown = http.StatusBadGateway })
		g := newGuard(t, f)
		rec := serve(g.Middleware(okHandler()), request("GET", http.Header{"X-Api-Key": {key}}))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("introspection 502: %d %v", rec.Code, rec.Header())
		}
		// Failures are not cached: back up, accepted.
		f.set(func(f *fakeGatehouse) { f.introDown = 0 })
		if rec := serve(g.Middleware(okHandler()), request("GET", http.Header{"X-Api-Key": {key}})); rec.Code != 200 {
			t.Fatalf("introspection back: %d", rec.Code)
		}
	})
	t.Run("server gone", func(t *testing.T) {
		f := newFakeGatehouse(t, newClock())
		g := newGuard(t, f)
		f.srv.Close()
		rec := serve(g.Middleware(okHandler()), request("GET", http.Header{"Cookie": {"gatehouse_session=c2Vzc2lvbi1pZC1vZi1hbGljZS0wMTIz"}}))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("introspection unreachable: %d", rec.Code)
		}
	})
	t.Run("redirect not followed", func(t *testing.T) {
		var leaked bool
		elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			leaked = true
			w.Write([]byte(`{"active":true,"token_type":"api_key","sub":"x"}`))
		}))
		defer elsewhere.Close()
		redirect := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusTemporaryRedirect))
		defer redirect.Close()
		f := newFakeGatehouse(t, newClock())
		g := newGuard(t, f, func(c *guard.Config) { c.IntrospectURL = redirect.URL })
		if _, err := g.Check(request("GET", http.Header{"X-Api-Key": {key}})); !errors.Is(err, guard.ErrUnavailable) {
			t.Fatalf("redirected introspection: %v", err)
		}
		if leaked {
			t.Fatal("the redirect was followed: the credential and the introspection key went elsewhere")
		}
	})
}

func TestCookieCrossOrigin(t *testing.T) {
	f := newFakeGatehouse(t, newClock())
	const session = "c2Vzc2lvbi1pZC1vZi1hbGljZS0wMTIzNDU2Nzg5"
	f.activate(session, "session", "alice", "read write", "user")
	g := newGuard(t, f, func(c *guard.Config) { c.TrustedOrigins = []string{"https://app.example.test"} })
	tests := []struct {
		name   string
		method string
		extra  http.Header
		want   int
	}{
		{"GET cross-site", "GET", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 200},
		{"POST same-origin", "POST", http.Header{"Sec-Fetch-Site": {"same-origin"}}, 200},
		{"POST without browser headers", "POST", nil, 200},
		{"POST cross-site", "POST", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"DELETE from another origin", "DELETE", http.Header{"Origin": {"https://evil.example"}}, 403},
		{"POST from a trusted origin", "POST", http.Header{"Origin": {"https://app.example.test"}, "Sec-Fetch-Site": {"cross-site"}}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": {"gatehouse_session=" + session}}
			for k, v := range tt.extra {
				h[k] = v
			}
			before := f.introHits.Load()
			rec := serve(g.Middleware(okHandler()), request(tt.method, h))
			if rec.Code != tt.want {
				t.Fatalf("%d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == 403 && f.introHits.Load() != before {
				t.Error("a cross-origin request was introspected")
			}
		})
	}
	// Bearer credentials are exempt: browsers do not send them on their own.
	const key = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
	f.activate(key, "api_key", "alice", "write")
	if rec := serve(g.Middleware(okHandler()), request("POST", http.Header{"X-Api-Key": {key}, "Sec-Fetch-Site": {"cross-site"}})); rec.Code != 200 {
		t.Fatalf("API key cross-site: %d", rec.Code)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  guard.Config
		want string // in the error; "" = accepted
	}{
		{"minimal", guard.Config{Issuer: "https://auth.example.com/"}, ""},
		{"loopback http", guard.Config{Issuer: "http://127.0.0.1:8080"}, ""},
		{"localhost http", guard.Config{Issuer: "http://localhost:8080"}, ""},
		{"no issuer", guard.Config{}, "Issuer is required"},
		{"http to another host", guard.Config{Issuer: "http://auth.example.com"}, "in clear"},
		{"http allowed", guard.Config{Issuer: "http://gatehouse:8080", AllowInsecureHTTP: true}, ""},
		{"http introspection", guard.Config{Issuer: "https://a.example", IntrospectURL: "http://a.example/i"}, "IntrospectURL"},
		{"HS256", guard.Config{Issuer: "https://a.example", Algorithms: []string{"EdDSA", "HS256"}}, `"HS256" is not accepted`},
		{"none", guard.Config{Issuer: "https://a.example", Algorithms: []string{"none"}}, `"none" is not accepted`},
		{"leeway too long", guard.Config{Issuer: "https://a.example", Leeway: time.Minute}, "Leeway"},
		{"cache too long", guard.Config{Issuer: "https://a.example", CacheTTL: time.Hour}, "CacheTTL"},
		{"bad trusted origin", guard.Config{Issuer: "https://a.example", TrustedOrigins: []string{"not an origin"}}, "TrustedOrigins"},
		{"every problem at once", guard.Config{Leeway: time.Minute, CacheTTL: time.Hour}, "CacheTTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := guard.New(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestHTTPSIssuerUsesHostCookie(t *testing.T) {
	f := newFakeGatehouse(t, newClock())
	const session = "c2Vzc2lvbi1pZC1vZi1hbGljZS0wMTIzNDU2Nzg5"
	f.activate(session, "session", "alice", "read")
	g := newGuard(t, f, func(c *guard.Config) {
		c.Issuer = "https://auth.example.test"
		c.IntrospectURL = f.URL + "/oauth2/introspect"
	})
	if _, err := g.Check(request("GET", http.Header{"Cookie": {"gatehouse_session=" + session}})); !errors.Is(err, guard.ErrNoCredentials) {
		t.Fatalf("plain cookie name on https: %v", err)
	}
	// The fake answers with iss = its own URL, not the configured Issuer.
	if _, err := g.Check(request("GET", http.Header{"Cookie": {"__Host-gatehouse_session=" + session}})); !errors.Is(err, guard.ErrInvalidToken) {
		t.Fatalf("introspection answer from another issuer: %v", err)
	}
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := guard.PrincipalFrom(r.Context())
		if !ok {
			w.Write([]byte("anonymous"))
			return
		}
		w.Write([]byte(p.Subject))
	})
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
