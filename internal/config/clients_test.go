package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestClientsSection(t *testing.T) {
	const yaml = `scopes:
  read: Read
  billing:read: See invoices
roles:
  user: [read]
clients:
  - id: billing-web
    name: Billing
    type: confidential
    secret: from-the-file-0123456789abcdef0123456789
    redirect_uris: [https://billing.example/cb, "http://127.0.0.1/cb"]
    post_logout_redirect_uris: [https://billing.example/bye]
    grant_types: [authorization_code, client_credentials]
    scopes: openid billing:read
    first_party: true
    require_pkce: false
    token_endpoint_auth_method: client_secret_post
    id_token_signed_response_alg: ES256
    id_token_claims: true
    logo_url: https://billing.example/logo.png
  - id: cli
    name: CLI
    type: public
    redirect_uris: [com.example.cli:/cb]
`
	c := mustLoad(t, nil, nil, yaml)
	f := false
	want := []ClientConfig{{
		ID: "billing-web", Secret: "from-the-file-0123456789abcdef0123456789", Name: "Billing", Type: "confidential",
		RedirectURIs: []string{"https://billing.example/cb", "http://127.0.0.1/cb"}, PostLogoutRedirectURIs: []string{"https://billing.example/bye"},
		GrantTypes: []string{"authorization_code", "client_credentials"}, Scopes: []string{"openid", "billing:read"},
		FirstParty: true, RequirePKCE: &f, TokenEndpointAuthMethod: "client_secret_post", IDTokenAlg: "ES256", IDTokenClaims: true,
		LogoURL: "https://billing.example/logo.png",
	}, {ID: "cli", Name: "CLI", Type: "public", RedirectURIs: []string{"com.example.cli:/cb"}}}
	if !reflect.DeepEqual(c.Clients, want) {
		t.Fatalf("clients = %+v\nwant %+v", c.Clients, want)
	}

	// The environment's secret wins; Redacted hides it.
	env := map[string]string{ClientSecretEnv("billing-web"): "from-the-environment-0123456789abcdef"}
	c = mustLoad(t, nil, env, yaml)
	if ClientSecretEnv("billing-web") != "GATEHOUSE_CLIENT_BILLING_WEB_SECRET" || c.Clients[0].Secret != "from-the-environment-0123456789abcdef" {
		t.Fatalf("secret %q from %s", c.Clients[0].Secret, ClientSecretEnv("billing-web"))
	}
	r := c.Redacted()
	if r.Clients[0].Secret != redactedText || r.Clients[1].Secret != "" || c.Clients[0].Secret == redactedText {
		t.Fatalf("Redacted: %+v (original %+v)", r.Clients, c.Clients)
	}
	r.Clients[0].RedirectURIs[0] = "changed"
	if c.Clients[0].RedirectURIs[0] == "changed" {
		t.Fatal("Redacted shares the redirect URIs with the original")
	}
	if in := c.Clients[0].Input(); in.ID != "billing-web" || in.Secret != c.Clients[0].Secret || *in.RequirePKCE || in.IDTokenAlg != "ES256" {
		t.Fatalf("Input() = %+v", in)
	}
}

func TestClientsSectionProblems(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		env      map[string]string
		wantKeys []string
	}{
		{name: "not a list", yaml: "clients: {id: x}\n", wantKeys: []string{"clients"}},
		{name: "empty entry", yaml: "clients:\n  -\n", wantKeys: []string{"clients[0]"}},
		{name: "every problem of one client",
			yaml: "clients:\n  - type: spa\n    redirect_uris: [http://example.com/cb, myapp:/cb]\n    require_pkce: maybe\n    colour: blue\n",
			wantKeys: []string{"clients[0].colour", "clients[0].require_pkce", "clients[0].id", "clients[0].name", "clients[0].type",
				"clients[0].redirect_uris[0]", "clients[0].redirect_uris[1]"}},
		{name: "confidential without a secret",
			yaml:     "clients:\n  - {id: a, name: A, type: confidential, redirect_uris: [https://a.example/cb]}\n",
			wantKeys: []string{"clients[0].secret"}},
		{name: "a short secret from the environment",
			yaml:     "clients:\n  - {id: a, name: A, type: confidential, redirect_uris: [https://a.example/cb]}\n",
			env:      map[string]string{"GATEHOUSE_CLIENT_A_SECRET": "short"},
			wantKeys: []string{"clients[0].secret"}},
		{name: "public with a secret",
			yaml:     "clients:\n  - {id: a, name: A, type: public, secret: 0123456789abcdef0123456789abcdef, redirect_uris: [https://a.example/cb]}\n",
			wantKeys: []string{"clients[0].secret"}},
		{name: "a scope the file does not define",
			yaml:     "clients:\n  - {id: a, name: A, type: public, redirect_uris: [https://a.example/cb], scopes: [openid, billing]}\n",
			wantKeys: []string{"clients[0].scopes"}},
		{name: "duplicate id",
			yaml: "clients:\n  - {id: a, name: A, type: public, redirect_uris: [https://a.example/cb]}\n" +
				"  - {id: a, name: B, type: public, redirect_uris: [https://b.example/cb]}\n",
			wantKeys: []string{"clients[1].id"}},
		{name: "ids sharing a secret variable",
			yaml: "clients:\n  - {id: a-b, name: A, type: public, redirect_uris: [https://a.example/cb]}\n" +
				"  - {id: a.b, name: B, type: public, redirect_uris: [https://b.example/cb]}\n",
			wantKeys: []string{"clients[1].id"}},
		{name: "fragment, userinfo and wildcard",
			yaml:     "clients:\n  - {id: a, name: A, type: public, redirect_uris: [\"https://a.example/cb#x\", \"https://u@a.example/cb\", \"https://*.example/cb\"]}\n",
			wantKeys: []string{"clients[0].redirect_uris[0]", "clients[0].redirect_uris[1]", "clients[0].redirect_uris[2]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, nil, tt.env, tt.yaml)
			ps := problemsOf(t, err)
			got := keysOf(ps)
			if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tt.wantKeys))) {
				t.Fatalf("problem keys = %q, want %q\n%v", got, tt.wantKeys, err)
			}
			for _, p := range ps {
				if p.Message == "" || strings.Contains(p.Message, "0123456789abcdef") {
					t.Errorf("problem %+v: empty or shows the secret", p)
				}
			}
		})
	}
}
