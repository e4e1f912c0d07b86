package cli_test

import (
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"gatehouse/internal/cli"
)

// TestClientCreate registers OAuth clients with `gatehouse client create`,
// which prints each as JSON, a confidential client's secret only there.
func TestClientCreate(t *testing.T) {
	env := baseEnv(t, nil)
	out, stderr, err := runCLI(t, env, "", "client", "create", "--name", "Billing", "--type", "confidential",
		"--redirect-uri", "https://billing.example/cb", "--redirect-uri", "http://127.0.0.1/cb",
		"--grant", "authorization_code", "--grant", "client_credentials", "--scope", "openid", "--scope", "read",
		"--first-party", "--no-require-pkce", "--post-logout-redirect-uri", "https://billing.example/bye")
	if err != nil {
		t.Fatalf("client create: %v\n%s", err, stderr)
	}
	var c struct {
		ClientID                string   `json:"client_id"`
		ClientSecret            string   `json:"client_secret"`
		Name                    string   `json:"name"`
		Type                    string   `json:"type"`
		RedirectURIs            []string `json:"redirect_uris"`
		PostLogoutRedirectURIs  []string `json:"post_logout_redirect_uris"`
		GrantTypes              []string `json:"grant_types"`
		Scopes                  []string `json:"scopes"`
		FirstParty              bool     `json:"first_party"`
		RequirePKCE             bool     `json:"require_pkce"`
		TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("client create printed %q: %v", out, err)
	}
	if c.ClientID == "" || !strings.HasPrefix(c.ClientSecret, "ghcs_") || c.Name != "Billing" || c.Type != "confidential" ||
		!slices.Equal(c.RedirectURIs, []string{"https://billing.example/cb", "http://127.0.0.1/cb"}) ||
		!slices.Equal(c.PostLogoutRedirectURIs, []string{"https://billing.example/bye"}) ||
		!slices.Equal(c.GrantTypes, []string{"authorization_code", "client_credentials"}) ||
		!slices.Equal(c.Scopes, []string{"openid", "read"}) || !c.FirstParty || c.RequirePKCE ||
		c.TokenEndpointAuthMethod != "client_secret_basic" {
		t.Fatalf("client create printed %s", out)
	}
	if strings.Contains(out, "hash") || strings.Contains(stderr, c.ClientSecret) {
		t.Fatalf("a secret hash in the output or the secret in the log:\n%s\n%s", out, stderr)
	}

	// A public client has no secret.
	out, stderr, err = runCLI(t, env, "", "client", "create", "--name", "CLI", "--type", "public", "--redirect-uri", "http://localhost/cb")
	if err != nil {
		t.Fatalf("client create public: %v\n%s", err, stderr)
	}
	if strings.Contains(out, `"client_secret":`) || !strings.Contains(out, `"token_endpoint_auth_method": "none"`) {
		t.Fatalf("public client printed %s", out)
	}

	// Mistakes: the rule broken, named; missing flags are usage errors.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "x", "--type", "public", "--redirect-uri", "https://a.example/cb", "--no-require-pkce"}, "require_pkce"},
		{[]string{"--name", "x", "--type", "confidential", "--redirect-uri", "http://example.com/cb"}, "redirect_uris[0]"},
		{[]string{"--name", "x", "--type", "confidential", "--redirect-uri", "myapp:/cb"}, "dot"},
		{[]string{"--name", "x", "--type", "confidential"}, "redirect URI"},
		{[]string{"--name", "x", "--type", "spa", "--redirect-uri", "https://a.example/cb"}, "confidential or public"},
	} {
		out, _, err := runCLI(t, env, "", append([]string{"client", "create"}, c.args...)...)
		if err == nil || cli.IsUsage(err) || !strings.Contains(err.Error(), c.want) || out != "" {
			t.Errorf("client create %q: %v (output %q), want an error naming %q", c.args, err, out, c.want)
		}
	}
	if _, stderr, err := runCLI(t, env, "", "client", "create", "--type", "public"); !cli.IsUsage(err) || !strings.Contains(stderr, "--name") {
		t.Errorf("client create without --name: %v %q", err, stderr)
	}

	// --help tells the truth: every flag the command takes.
	help, _, err := runCLI(t, map[string]string{}, "", "client", "create", "--help")
	if !cli.IsHelp(err) {
		t.Fatalf("client create --help: %v", err)
	}
	for _, want := range []string{"Usage: gatehouse client create", "-name", "-type", "-redirect-uri", "-grant", "-scope",
		"-first-party", "-no-require-pkce", "-post-logout-redirect-uri", "-token-endpoint-auth-method", "-id-token-signed-response-alg", "-client-logo-url", "GATEHOUSE_PUBLIC_URL"} {
		if !strings.Contains(help, want) {
			t.Errorf("client create --help lacks %q", want)
		}
	}
	if top, _, _ := runCLI(t, map[string]string{}, "", "help"); !strings.Contains(top, "gatehouse client create") {
		t.Errorf("the top-level help does not list client create")
	}
}

// TestConfigClients: the clients of the configuration file are checked at
// load time, synced into the database at start-up (the secret from the
// environment), read-only over the API, and deleted once removed from the
// file.
func TestConfigClients(t *testing.T) {
	const yaml = `clients:
  - id: billing-web
    name: Billing
    type: confidential
    redirect_uris: [https://billing.example/cb]
`
	// Without its secret the file does not load; with a bad redirect URI
	// neither, each problem named.
	_, _, err := runCLI(t, yamlEnv(t, yaml, nil), "", "migrate")
	if err == nil || !strings.Contains(err.Error(), "clients[0].secret") {
		t.Fatalf("a confidential client without a secret: %v", err)
	}
	bad := strings.Replace(yaml, "https://billing.example/cb", "http://billing.example/cb", 1) + "    unknown: 1\n"
	_, _, err = runCLI(t, yamlEnv(t, bad, nil), "", "migrate")
	for _, key := range []string{"clients[0].redirect_uris[0]", "clients[0].unknown", "clients[0].secret"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("a bad client: %v, want a problem naming %s", err, key)
		}
	}

	env := yamlEnv(t, yaml, map[string]string{"GATEHOUSE_CLIENT_BILLING_WEB_SECRET": "billing-secret-from-the-environment-0123"})
	if _, stderr, err := runCLI(t, env, "an admin pass phrase\n", "user", "create", "--email", "root@example.com", "--role", "admin", "--password-stdin"); err != nil {
		t.Fatalf("user create: %v\n%s", err, stderr)
	}
	s := start(t, env)
	r := s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"root@example.com"}, "password": {"an admin pass phrase"}})
	if r.Status != 200 {
		t.Fatalf("admin login: %d %s", r.Status, r.Body)
	}
	auth := "Bearer " + r.JSON(t)["access_token"].(string)
	r = s.do(t, "GET", "/v1/admin/clients/billing-web", "", nil, "Authorization", auth)
	if r.Status != 200 || r.JSON(t)["from_config"] != true || r.JSON(t)["name"] != "Billing" {
		t.Fatalf("the config client: %d %s", r.Status, r.Body)
	}
	if r := s.do(t, "DELETE", "/v1/admin/clients/billing-web", "", nil, "Authorization", auth); r.Status != 409 {
		t.Fatalf("DELETE a config client: %d %s, want 409", r.Status, r.Body)
	}
	if strings.Contains(s.Log(), "billing-secret-from-the-environment") {
		t.Fatal("the client secret is in the log")
	}
	s.Stop(t)

	// Removed from the file: deleted at the next start.
	if err := os.WriteFile(env["GATEHOUSE_CONFIG"], []byte("argon2: {memory: 1024, iterations: 1, parallelism: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = start(t, env)
	if r := s.do(t, "GET", "/v1/admin/clients/billing-web", "", nil, "Authorization", auth); r.Status != 404 {
		t.Fatalf("a client removed from the file: %d %s, want 404", r.Status, r.Body)
	}
}
