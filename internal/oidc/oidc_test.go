package oidc_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"gatehouse/internal/config"
	"gatehouse/internal/oidc"
	"gatehouse/internal/oidc/oidctest"
)

const publicURL = "http://gatehouse.test"

func callbackURL(id string) string { return publicURL + "/v1/oidc/" + id + "/callback" }

var quiet = slog.New(slog.DiscardHandler)

// registry builds a Registry whose background retries end with the test.
func registry(t *testing.T, providers ...config.Provider) *oidc.Registry {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return oidc.New(ctx, providers, publicURL, nil, quiet)
}

func ready(t *testing.T, r *oidc.Registry, id string) *oidc.Provider {
	t.Helper()
	p, err := r.Get(id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return p
}

func opProvider(id string, op *oidctest.TestOP) config.Provider {
	return config.Provider{ID: id, Type: "oidc", Name: "Corp", Issuer: op.Issuer, ClientID: op.ClientID,
		ClientSecret: op.ClientSecret, Scopes: []string{"openid", "email", "profile"}}
}

type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
}

// authorize drives the browser from the provider's authorization URL to
// the redirect back to Gatehouse, and returns the code it carries.
func authorize(t *testing.T, b *oidctest.Browser, p *oidc.Provider, f flow) string {
	t.Helper()
	start := p.AuthCodeURL(f.state, f.nonce, f.verifier, "")
	back, last, err := b.Follow(start, func(u *url.URL) bool { return u.Host == "gatehouse.test" })
	if err != nil {
		t.Fatalf("browser flow from %s: %v", start, err)
	}
	if want := "/v1/oidc/" + p.ID + "/callback"; back.Path != want {
		t.Fatalf("redirected back to %s, want path %s (after %s)", back, want, last.URL)
	}
	q := back.Query()
	if q.Get("state") != f.state {
		t.Fatalf("state came back as %q, want %q", q.Get("state"), f.state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", back)
	}
	return q.Get("code")
}

// TestRealProviderFullFlow signs in at a real OpenID Provider (zitadel/oidc
// v3's op, in memory) as a browser would: authorization request with PKCE
// S256 and nonce, the provider's login form, the code back to the redirect
// URI, then Exchange verifies the ID token and reads the email from
// userinfo (this provider does not put it in the ID token).
func TestRealProviderFullFlow(t *testing.T) {
	bob := oidctest.User{ID: "bob-sub-2", Username: "bob", Password: "bob-password", Email: "Bob@Example.com", EmailVerified: false, FirstName: "Bob", LastName: "B"}
	op := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{callbackURL("corp")}, Users: []oidctest.User{oidctest.DefaultUser, bob}})
	r := registry(t, opProvider("corp", op))
	p := ready(t, r, "corp")
	ctx := context.Background()

	f := newFlow()
	start, _ := url.Parse(p.AuthCodeURL(f.state, f.nonce, f.verifier, ""))
	q := start.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") != oauth2.S256ChallengeFromVerifier(f.verifier) ||
		q.Get("nonce") != f.nonce || q.Get("redirect_uri") != callbackURL("corp") || !strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("authorization request %s lacks PKCE S256, nonce, redirect_uri or openid", start)
	}
	if q.Get("code_verifier") != "" || strings.Contains(start.String(), f.verifier) {
		t.Fatalf("the PKCE verifier leaked into the authorization URL")
	}

	code := authorize(t, oidctest.NewBrowser(), p, f)
	id, err := p.Exchange(ctx, code, f.verifier, f.nonce)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	want := oidc.Identity{Subject: "alice-sub-1", Email: "alice@example.com", EmailVerified: true, Name: "Alice Liddell"}
	if *id != want {
		t.Fatalf("identity = %+v, want %+v", *id, want)
	}
	// The code is single-use.
	if _, err := p.Exchange(ctx, code, f.verifier, f.nonce); err == nil {
		t.Fatalf("a code was redeemed twice")
	}

	// A user whose email the provider did not verify.
	b := oidctest.NewBrowser()
	b.Username, b.Password = bob.Username, bob.Password
	f = newFlow()
	id, err = p.Exchange(ctx, authorize(t, b, p, f), f.verifier, f.nonce)
	if err != nil {
		t.Fatalf("Exchange for bob: %v", err)
	}
	if id.Subject != bob.ID || id.Email != bob.Email || id.EmailVerified {
		t.Fatalf("bob's identity = %+v", *id)
	}

	// The wrong PKCE verifier: the provider refuses the code.
	f = newFlow()
	code = authorize(t, oidctest.NewBrowser(), p, f)
	if _, err := p.Exchange(ctx, code, oauth2.GenerateVerifier(), f.nonce); err == nil {
		t.Fatalf("a code was redeemed with another PKCE verifier")
	}
	// The right code and verifier but another flow's nonce.
	f = newFlow()
	code = authorize(t, oidctest.NewBrowser(), p, f)
	if _, err := p.Exchange(ctx, code, f.verifier, newFlow().nonce); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("Exchange with another nonce: %v, want a nonce error", err)
	}
}

// TestCodeOfOneProviderRefusedByAnother: a code from provider A presented
// to provider B (a mix-up) does not sign anyone in.
func TestCodeOfOneProviderRefusedByAnother(t *testing.T) {
	a := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{callbackURL("a")}})
	b := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{callbackURL("b")}})
	r := registry(t, opProvider("a", a), opProvider("b", b))
	pa, pb := ready(t, r, "a"), ready(t, r, "b")
	f := newFlow()
	code := authorize(t, oidctest.NewBrowser(), pa, f)
	if id, err := pb.Exchange(context.Background(), code, f.verifier, f.nonce); err == nil {
		t.Fatalf("provider b accepted provider a's code: %+v", id)
	}
	if _, err := pa.Exchange(context.Background(), code, f.verifier, f.nonce); err != nil {
		t.Fatalf("the code still works at its own provider: %v", err)
	}
}

// TestGitHubPreset runs the github preset against a GitHub stand-in (the
// issuer is its base URL, as for GitHub Enterprise): only a verified
// primary email counts.
func TestGitHubPreset(t *testing.T) {
	gh := oidctest.StartGitHubStandIn(t)
	r := registry(t, config.Provider{ID: "gh", Type: "github", Issuer: gh.URL, ClientID: gh.ClientID, ClientSecret: gh.ClientSecret})
	p := ready(t, r, "gh")
	f := newFlow()
	start, _ := url.Parse(p.AuthCodeURL(f.state, f.nonce, f.verifier, ""))
	if start.Host != strings.TrimPrefix(gh.URL, "http://") || start.Path != "/login/oauth/authorize" {
		t.Fatalf("authorization URL %s is not the stand-in's", start)
	}
	if q := start.Query(); q.Get("scope") != "read:user user:email" || q.Get("code_challenge_method") != "S256" || q.Has("nonce") {
		t.Fatalf("github authorization request %s: want scopes read:user user:email, PKCE S256 and no nonce", start)
	}
	user := oidctest.GitHubUser{ID: 4242, Login: "octocat", Name: "The Octocat"}
	for _, tc := range []struct {
		name      string
		user      oidctest.GitHubUser
		emails    []oidctest.GitHubEmail
		wantEmail string
	}{
		{"verified primary", user, []oidctest.GitHubEmail{{Email: "other@example.com", Verified: true}, {Email: "octo@example.com", Primary: true, Verified: true}}, "octo@example.com"},
		{"primary unverified, another verified", user, []oidctest.GitHubEmail{{Email: "octo@example.com", Primary: true}, {Email: "other@example.com", Verified: true}}, ""},
		{"no emails", user, nil, ""},
		{"name falls back to login", oidctest.GitHubUser{ID: 7, Login: "hubot"}, []oidctest.GitHubEmail{{Email: "hubot@example.com", Primary: true, Verified: true}}, "hubot@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh.Set(tc.user, tc.emails...)
			f := newFlow()
			id, err := p.Exchange(context.Background(), authorize(t, oidctest.NewBrowser(), p, f), f.verifier, f.nonce)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			wantName := tc.user.Name
			if wantName == "" {
				wantName = tc.user.Login
			}
			want := oidc.Identity{Subject: strconv.FormatInt(tc.user.ID, 10), Email: tc.wantEmail, EmailVerified: tc.wantEmail != "", Name: wantName}
			if *id != want {
				t.Fatalf("identity = %+v, want %+v", *id, want)
			}
		})
	}
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		f := newFlow()
		code := authorize(t, oidctest.NewBrowser(), p, f)
		if id, err := p.Exchange(context.Background(), code, oauth2.GenerateVerifier(), f.nonce); err == nil {
			t.Fatalf("Exchange with another verifier: %+v", id)
		}
	})
}

// TestForgedIDTokensRefused forges ID tokens at a stub provider: each must
// be refused by Exchange, while the untouched token is accepted.
func TestForgedIDTokensRefused(t *testing.T) {
	stub := oidctest.StartStubOP(t)
	other := oidctest.StartStubOP(t)
	r := registry(t, config.Provider{ID: "stub", Type: "oidc", Issuer: stub.URL, ClientID: stub.ClientID, ClientSecret: stub.ClientSecret})
	p := ready(t, r, "stub")
	exchange := func(t *testing.T, f oidctest.Forge) (*oidc.Identity, error) {
		t.Helper()
		stub.SetForge(f)
		defer stub.SetForge(oidctest.Forge{})
		fl := newFlow()
		return p.Exchange(context.Background(), authorize(t, oidctest.NewBrowser(), p, fl), fl.verifier, fl.nonce)
	}
	if id, err := exchange(t, oidctest.Forge{}); err != nil || id.Subject != "alice-sub-1" || id.Email != "alice@example.com" || !id.EmailVerified {
		t.Fatalf("baseline: %+v, %v", id, err)
	}
	for _, tc := range []struct {
		name  string
		forge oidctest.Forge
		want  string // in the error
	}{
		{"another issuer", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["iss"] = other.URL }}, "issued by a different provider"},
		{"issuer with a trailing slash", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["iss"] = stub.URL + "/" }}, "issued by a different provider"},
		{"no issuer", oidctest.Forge{Claims: func(c jwt.MapClaims) { delete(c, "iss") }}, "issued by a different provider"},
		{"another audience", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["aud"] = "someone-else" }}, "audience"},
		{"audience list without us", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }}, "audience"},
		{"another nonce", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["nonce"] = "attacker-nonce" }}, "nonce"},
		{"no nonce", oidctest.Forge{Claims: func(c jwt.MapClaims) { delete(c, "nonce") }}, "nonce"},
		{"expired", oidctest.Forge{Claims: func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }}, "expired"},
		{"unsigned (alg none)", oidctest.Forge{Signing: oidctest.SignNone}, ""},
		{"signed by another key", oidctest.Forge{Signing: oidctest.SignOtherKey}, ""},
		{"HS256 keyed by the client secret", oidctest.Forge{Signing: oidctest.SignHS256ClientSecret}, ""},
		{"no subject", oidctest.Forge{Claims: func(c jwt.MapClaims) { delete(c, "sub") }}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := exchange(t, tc.forge)
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	t.Run("userinfo about another subject", func(t *testing.T) {
		stub.SetUserinfoSubject("mallory")
		defer stub.SetUserinfoSubject("")
		if id, err := exchange(t, oidctest.Forge{}); err == nil || !strings.Contains(err.Error(), "subject") {
			t.Fatalf("userinfo for another subject: %+v, %v", id, err)
		}
	})
	t.Run("email in the ID token", func(t *testing.T) {
		stub.SetEmailInIDToken(true)
		defer stub.SetEmailInIDToken(false)
		stub.SetUserinfoSubject("not-consulted") // userinfo is not needed
		defer stub.SetUserinfoSubject("")
		id, err := exchange(t, oidctest.Forge{Claims: func(c jwt.MapClaims) { c["email_verified"] = "true" }})
		if err != nil || id.Email != "alice@example.com" || !id.EmailVerified || id.Name != "Alice Liddell" {
			t.Fatalf("identity from the ID token: %+v, %v", id, err)
		}
		id, err = exchange(t, oidctest.Forge{Claims: func(c jwt.MapClaims) { c["email_verified"] = "yes" }})
		if err != nil || id.EmailVerified {
			t.Fatalf(`email_verified "yes" counts as verified: %+v, %v`, id, err)
		}
	})
}

// TestIDTokenAudienceAndAuthorizedParty performs the confused-deputy
// attack of SPEC §18 H8: the provider's own, validly signed ID tokens that
// name our client id among other audiences, or whose authorized party
// (azp) is another client. The go-oidc verifier accepts all of them (our
// client id is one of the audiences); Exchange must not, except for an
// audience the provider's trusted_audiences lists, with azp our client id.
func TestIDTokenAudienceAndAuthorizedParty(t *testing.T) {
	stub := oidctest.StartStubOP(t)
	const trusted, other = "https://api.example.com", "other-client"
	plain := config.Provider{ID: "plain", Type: "oidc", Issuer: stub.URL, ClientID: stub.ClientID, ClientSecret: stub.ClientSecret}
	trusting := plain
	trusting.ID, trusting.TrustedAudiences = "trusting", []string{trusted}
	r := registry(t, plain, trusting)
	client := stub.ClientID
	for _, tc := range []struct {
		name   string
		claims func(c jwt.MapClaims)
		// accepted by the provider without, and the one with,
		// trusted_audiences
		plainOK, trustingOK bool
		want                string // in the refusal
		wantTrusting        string // in the trusting provider's refusal, when not want
	}{
		{"single audience, a string", func(c jwt.MapClaims) { c["aud"] = client }, true, true, "", ""},
		{"single audience, a list", func(c jwt.MapClaims) { c["aud"] = []string{client} }, true, true, "", ""},
		{"single audience, azp the client", func(c jwt.MapClaims) { c["aud"], c["azp"] = client, client }, true, true, "", ""},
		{"single audience, azp another client", func(c jwt.MapClaims) { c["aud"], c["azp"] = client, other }, false, false, "azp", ""},
		{"azp not a string", func(c jwt.MapClaims) { c["aud"], c["azp"] = client, 42 }, false, false, "claims", ""},
		{"another audience too, azp the client", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{client, other}, client }, false, false, "audience", ""},
		{"another audience first, azp the client", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{other, client}, client }, false, false, "audience", ""},
		{"another audience too, no azp", func(c jwt.MapClaims) { c["aud"] = []string{client, other} }, false, false, "audience", ""},
		{"another audience too, azp that audience", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{client, other}, other }, false, false, "audience", ""},
		{"trusted audience too, azp the client", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{client, trusted}, client }, false, true, "audience", ""},
		{"trusted audience too, no azp", func(c jwt.MapClaims) { c["aud"] = []string{client, trusted} }, false, false, "audience", ""},
		{"trusted audience too, azp the trusted audience", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{client, trusted}, trusted }, false, false, "audience", "azp"},
		{"trusted audience too, azp another client", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{client, trusted}, other }, false, false, "audience", "azp"},
		{"trusted and another audience, azp the client", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{client, trusted, other}, client }, false, false, "audience", ""},
		{"trusted audience only", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{trusted}, client }, false, false, "audience", ""},
		{"client id in another case", func(c jwt.MapClaims) { c["aud"], c["azp"] = []string{client, strings.ToUpper(client)}, client }, false, false, "audience", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub.SetForge(oidctest.Forge{Claims: tc.claims})
			defer stub.SetForge(oidctest.Forge{})
			if tc.wantTrusting == "" {
				tc.wantTrusting = tc.want
			}
			for _, pc := range []struct {
				id   string
				ok   bool
				want string
			}{{"plain", tc.plainOK, tc.want}, {"trusting", tc.trustingOK, tc.wantTrusting}} {
				p := ready(t, r, pc.id)
				f := newFlow()
				id, err := p.Exchange(context.Background(), authorize(t, oidctest.NewBrowser(), p, f), f.verifier, f.nonce)
				switch {
				case pc.ok && err != nil:
					t.Errorf("provider %s refused it: %v", pc.id, err)
				case pc.ok && id.Subject != oidctest.DefaultUser.ID:
					t.Errorf("provider %s: identity %+v", pc.id, *id)
				case !pc.ok && err == nil:
					t.Errorf("provider %s accepted it: %+v", pc.id, *id)
				case !pc.ok && !strings.Contains(err.Error(), pc.want):
					t.Errorf("provider %s: error %q does not mention %q", pc.id, err, pc.want)
				}
			}
		})
	}
}

// TestDiscoveryRetriedInBackground: a provider whose discovery fails at
// start-up answers ErrNotReady, is retried in the background and works
// once it is up; the other providers work meanwhile.
func TestDiscoveryRetriedInBackground(t *testing.T) {
	addr := oidctest.FreeAddr(t)
	up := oidctest.StartOP(t, oidctest.OPOptions{RedirectURIs: []string{callbackURL("up")}})
	late := config.Provider{ID: "late", Type: "oidc", Issuer: "http://" + addr, ClientID: "gatehouse", ClientSecret: "test-secret"}
	began := time.Now()
	r := registry(t, late, opProvider("up", up))
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("New took %v with one provider down", d)
	}
	if _, err := r.Get("late"); !errors.Is(err, oidc.ErrNotReady) {
		t.Fatalf("Get(late) before it is up: %v, want ErrNotReady", err)
	}
	if _, err := r.Get("nope"); !errors.Is(err, oidc.ErrUnknown) {
		t.Fatalf("Get(nope): %v, want ErrUnknown", err)
	}
	if n := len(r.List()); n != 2 {
		t.Fatalf("List has %d providers", n)
	}
	// The other provider works meanwhile.
	pu := ready(t, r, "up")
	f := newFlow()
	if id, err := pu.Exchange(context.Background(), authorize(t, oidctest.NewBrowser(), pu, f), f.verifier, f.nonce); err != nil || id.Subject != "alice-sub-1" {
		t.Fatalf("the provider that is up: %+v, %v", id, err)
	}
	if _, err := r.Get("late"); !errors.Is(err, oidc.ErrNotReady) {
		t.Fatalf("Get(late) while still down: %v", err)
	}

	oidctest.StartOP(t, oidctest.OPOptions{Addr: addr, RedirectURIs: []string{callbackURL("late")}})
	deadline := time.Now().Add(20 * time.Second)
	var pl *oidc.Provider
	for {
		p, err := r.Get("late")
		if err == nil {
			pl = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the late provider never became ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f = newFlow()
	id, err := pl.Exchange(context.Background(), authorize(t, oidctest.NewBrowser(), pl, f), f.verifier, f.nonce)
	if err != nil || id.Subject != "alice-sub-1" || id.Email != "alice@example.com" {
		t.Fatalf("the late provider once up: %+v, %v", id, err)
	}
}
