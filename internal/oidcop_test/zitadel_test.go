package oidcop_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// TestZitadelRelyingParty: the code flow with zitadel/oidc's rp package as
// the relying party — discovery, the code exchange with its ID-token
// verification (signature, issuer, audience, nonce-free), userinfo and a
// refresh that returns a new ID token.
func TestZitadelRelyingParty(t *testing.T) {
	o := startOP(t)
	id, secret := o.client(t)
	ctx := context.Background()
	party, err := rp.NewRelyingPartyOIDC(ctx, o.URL, id, secret, redirect, []string{"openid", "email", "profile", "offline_access"})
	if err != nil {
		t.Fatalf("rp discovery: %v", err)
	}
	b := o.browser(t, "zoe@op.example.test")
	verifier := oauth2.GenerateVerifier()
	start := party.OAuthConfig().AuthCodeURL("zs", oauth2.S256ChallengeOption(verifier))
	start = strings.Replace(start, o.URL, o.Direct, 1)
	_, page := get(t, b, start)
	m := consentID.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent page: %.300s", page)
	}
	res := postForm(t, b, o.Direct+"/oauth2/consent", url.Values{"consent_id": {m[1]}, "decision": {"allow"}})
	loc, err := res.Location()
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("consent: %d %v", res.StatusCode, loc)
	}
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, loc.Query().Get("code"), party, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("rp.CodeExchange: %v", err)
	}
	if tokens.IDTokenClaims.GetSubject() == "" || tokens.IDTokenClaims.AuthTime == 0 {
		t.Fatalf("ID token claims: %+v", tokens.IDTokenClaims)
	}
	info, err := rp.Userinfo[*oidc.UserInfo](ctx, tokens.AccessToken, tokens.TokenType, tokens.IDTokenClaims.GetSubject(), party)
	if err != nil || info.Email != "zoe@op.example.test" {
		t.Fatalf("rp.Userinfo: %+v %v", info, err)
	}
	fresh, err := rp.RefreshTokens[*oidc.IDTokenClaims](ctx, party, tokens.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("rp.RefreshTokens: %v", err)
	}
	if fresh.IDTokenClaims == nil || fresh.IDTokenClaims.GetSubject() != tokens.IDTokenClaims.GetSubject() || fresh.IDTokenClaims.AuthTime != tokens.IDTokenClaims.AuthTime {
		t.Fatalf("refreshed ID token: %+v", fresh.IDTokenClaims)
	}
}
