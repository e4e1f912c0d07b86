package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/internal/config"
)

// TestPresetIssuers: the issuers the presets discover (no network).
func TestPresetIssuers(t *testing.T) {
	for _, tc := range []struct {
		p    config.Provider
		want string
	}{
		{config.Provider{Type: "google"}, "https://accounts.google.com"},
		{config.Provider{Type: "microsoft", Tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47"}, "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"},
		{config.Provider{Type: "microsoft"}, "https://login.microsoftonline.com/common/v2.0"},
		{config.Provider{Type: "auth0", Domain: "example.eu.auth0.com"}, "https://example.eu.auth0.com/"},
		{config.Provider{Type: "auth0", Domain: "example.eu.auth0.com/"}, "https://example.eu.auth0.com/"},
		{config.Provider{Type: "auth0", Issuer: "https://login.example.com/"}, "https://login.example.com/"},
		{config.Provider{Type: "oidc", Issuer: "https://sso.corp.example"}, "https://sso.corp.example"},
	} {
		if got := issuerFor(tc.p); got != tc.want {
			t.Errorf("issuerFor(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
	var r *Registry
	if _, err := r.Get("x"); !errors.Is(err, ErrUnknown) || r.List() != nil {
		t.Errorf("nil registry: Get %v, List %v", err, r.List())
	}
}

// microsoftStandIn stands in for login.microsoftonline.com: discovery for
// the multi-tenant "common" endpoint (issuer template {tenantid}) and for
// one tenant, a JWKS, and a token endpoint that answers with an ID token
// of the claims the test sets.
type microsoftStandIn struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	mu     sync.Mutex
	claims jwt.MapClaims
}

func startMicrosoftStandIn(t *testing.T) *microsoftStandIn {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	m := &microsoftStandIn{key: key}
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	discovery := func(issuer string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			base := m.srv.URL
			writeJSON(w, map[string]any{"issuer": strings.ReplaceAll(issuer, "BASE", base),
				"authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
				"jwks_uri": base + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"}})
		}
	}
	mux.HandleFunc("GET /common/v2.0/.well-known/openid-configuration", discovery("BASE/{tenantid}/v2.0"))
	mux.HandleFunc("GET /contoso-tid/v2.0/.well-known/openid-configuration", discovery("BASE/contoso-tid/v2.0"))
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
		writeJSON(w, map[string]any{"keys": []map[string]any{{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		c := jwt.MapClaims{}
		for k, v := range m.claims {
			c[k] = v
		}
		m.mu.Unlock()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		writeJSON(w, map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": s})
	})
	m.srv = httptest.NewServer(mux)
	t.Cleanup(m.srv.Close)
	return m
}

func (m *microsoftStandIn) set(c jwt.MapClaims) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = c
}

// TestMicrosoftTenants: the multi-tenant endpoint (no tenant, or common)
// publishes an issuer template; its ID tokens are accepted only when iss
// is the template filled with the token's own tid. A fixed tenant is
// checked like any issuer.
func TestMicrosoftTenants(t *testing.T) {
	ms := startMicrosoftStandIn(t)
	old := microsoftLogin
	microsoftLogin = ms.srv.URL
	t.Cleanup(func() { microsoftLogin = old })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := New(ctx, []config.Provider{
		{ID: "ms", Type: "microsoft", ClientID: "app"},
		{ID: "contoso", Type: "microsoft", Tenant: "contoso-tid", ClientID: "app"},
	}, "http://gatehouse.test", nil, slog.New(slog.DiscardHandler))
	base := ms.srv.URL
	claims := func(iss, tid string) jwt.MapClaims {
		c := jwt.MapClaims{"iss": iss, "aud": "app", "sub": "ms-sub", "nonce": "n1", "exp": time.Now().Add(time.Minute).Unix(),
			"iat": time.Now().Unix(), "email": "ms@example.com", "name": "MS User"}
		if tid != "" {
			c["tid"] = tid
		}
		return c
	}
	for _, tc := range []struct {
		provider string
		claims   jwt.MapClaims
		ok       bool
	}{
		{"ms", claims(base+"/tenant-a/v2.0", "tenant-a"), true},
		{"ms", claims(base+"/tenant-b/v2.0", "tenant-a"), false},
		{"ms", claims(base+"/tenant-a/v2.0", ""), false},
		{"ms", claims(base+"/{tenantid}/v2.0", "{tenantid}"), false},
		{"ms", claims("https://evil.example/tenant-a/v2.0", "tenant-a"), false},
		{"ms", claims(base+"/a/b/v2.0", "a/b"), false},
		{"contoso", claims(base+"/contoso-tid/v2.0", "contoso-tid"), true},
		{"contoso", claims(base+"/tenant-a/v2.0", "tenant-a"), false},
	} {
		p, err := r.Get(tc.provider)
		if err != nil {
			t.Fatalf("Get(%s): %v", tc.provider, err)
		}
		ms.set(tc.claims)
		id, err := p.Exchange(context.Background(), "code", "verifier", "n1")
		if tc.ok && (err != nil || id.Subject != "ms-sub" || id.Email != "ms@example.com" || id.EmailVerified) {
			t.Errorf("%s %v: %+v, %v; want accepted (email not verified: Microsoft sends no email_verified)", tc.provider, tc.claims, id, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%s %v: accepted", tc.provider, tc.claims)
		}
	}
}
