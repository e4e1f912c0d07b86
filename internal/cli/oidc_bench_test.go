package cli

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"gatehouse/internal/auth"
)

// BenchmarkCodeExchange is the authorization-code exchange of the OpenID
// provider (SPEC §14) through the whole handler chain: client
// authentication (client_secret_basic), the code's single-use redemption
// with a new refresh family in one transaction, the access token and the
// ID token. Codes are issued before the timer starts, b.N of them, for a
// session of one user. Sub-benchmarks sign the ID token with RS256 (the
// default, a 3072-bit key) and ES256 (a client's id_token_signed_response_alg).
func BenchmarkCodeExchange(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) { benchCodeExchange(b, alg) })
	}
}

func benchCodeExchange(b *testing.B, alg string) {
	srv, a := benchApp(b)
	ctx := context.Background()
	const redirect = "https://rp.example/cb"
	c, secret, err := a.auth.CreateClient(ctx, auth.ClientInput{Name: "Bench RP", Type: auth.ClientConfidential,
		RedirectURIs: []string{redirect}, GrantTypes: []string{auth.GrantAuthorizationCode, auth.GrantRefreshToken},
		Scopes: []string{"openid", "email", "offline_access"}, IDTokenAlg: alg}, auth.Meta{}, false)
	if err != nil {
		b.Fatal(err)
	}
	// A session of the benchmark's user (one password login).
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/sessions", strings.NewReader(`{"email":"bench@example.com","password":"correct horse battery staple"}`))
	req.Header.Set("Content-Type", "application/json")
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		b.Fatalf("session login: %d %s", rec.Code, rec.Body)
	}
	sess, u, err := a.auth.AuthenticateSession(ctx, rec.Result().Cookies()[0].Value)
	if err != nil {
		b.Fatal(err)
	}
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	forms := make(chan string, b.N)
	for range b.N {
		az, err := a.auth.CheckAuthorize(ctx, auth.AuthorizeRequest{ClientID: c.ID, RedirectURI: redirect, ResponseType: "code",
			Scope: "openid email offline_access", CodeChallenge: challenge, CodeChallengeMethod: "S256"})
		if err != nil {
			b.Fatal(err)
		}
		code, err := a.auth.IssueCode(ctx, az, sess, u)
		if err != nil {
			b.Fatal(err)
		}
		forms <- url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}.Encode()
	}
	close(forms)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ID)+":"+url.QueryEscape(secret)))
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(<-forms))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", basic)
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"id_token"`) {
				b.Fatalf("exchange: %d %s", rec.Code, rec.Body)
			}
		}
	})
}
