package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

func TestValidateRedirectURI(t *testing.T) {
	tests := []struct {
		name, uri string
		ok        bool
	}{
		{"https", "https://a.example/cb", true},
		{"https with port and query", "https://a.example:8443/cb?tenant=1", true},
		{"https on an IP address", "https://192.0.2.7/cb", true},
		{"http localhost with port", "http://localhost:8080/cb", true},
		{"http 127.0.0.1", "http://127.0.0.1/cb", true},
		{"http [::1] with port", "http://[::1]:51234/cb", true},
		{"private-use scheme", "com.example.app:/cb", true},
		{"private-use scheme with authority", "com.example.app://callback", true},

		{"empty", "", false},
		{"http on another host", "http://example.com/cb", false},
		{"http on a host that starts with localhost", "http://localhost.evil.example/cb", false},
		{"http on another loopback address", "http://127.0.0.2/cb", false},
		{"fragment", "https://a.example/cb#x", false},
		{"empty fragment", "https://a.example/cb#", false},
		{"userinfo", "https://user@a.example/cb", false},
		{"userinfo with password", "https://user:pw@a.example/cb", false},
		{"userinfo hiding the host", "http://127.0.0.1@evil.example/cb", false},
		{"wildcard host", "https://*.example/cb", false},
		{"wildcard path", "https://a.example/*", false},
		{"private-use scheme without a dot", "myapp:/cb", false},
		{"javascript", "javascript:alert(1)", false},
		{"data", "data:text/html,<script>alert(1)</script>", false},
		{"relative path", "/cb", false},
		{"relative word", "cb", false},
		{"scheme-relative", "//a.example/cb", false},
		{"https without host", "https:///cb", false},
		{"https opaque", "https:a.example/cb", false},
		{"space", "https://a.example/c b", false},
		{"newline", "https://a.example/cb\nx", false},
		{"bad port", "https://a.example:port/cb", false},
		{"nothing after a private-use scheme", "com.example.app:", false},
		{"too long", "https://a.example/" + strings.Repeat("a", 2000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.ValidateRedirectURI(tt.uri)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateRedirectURI(%q) = %v, want ok %v", tt.uri, err, tt.ok)
			}
			if err != nil {
				var e *auth.Error
				if !errors.As(err, &e) || e.Code != auth.EINVALID || e.Field != "redirect_uris" || e.Message == "" {
					t.Fatalf("ValidateRedirectURI(%q) = %#v, want an EINVALID error on redirect_uris", tt.uri, err)
				}
			}
		})
	}
}

func TestRedirectURIMatches(t *testing.T) {
	c := &auth.Client{RedirectURIs: []string{"https://a.example/cb", "http://127.0.0.1/cb", "http://localhost:3000/cb",
		"http://[::1]/cb", "com.example.app:/cb"}}
	tests := []struct {
		uri  string
		want bool
	}{
		{"https://a.example/cb", true},
		{"https://a.example/cb/", false},
		{"https://a.example:443/cb", false}, // exact strings outside loopback
		{"https://A.example/cb", false},
		{"https://a.example/cb?x=1", false},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:51234/cb", true}, // RFC 8252 §7.3: any port
		{"http://127.0.0.1:51234/cb2", false},
		{"http://127.0.0.1:51234/cb?x=1", false},
		{"http://127.0.0.1:51234/cb#x", false},
		{"http://user@127.0.0.1:51234/cb", false},
		{"https://127.0.0.1:51234/cb", false},
		{"http://localhost/cb", true},
		{"http://localhost:1/cb", true},
		{"http://localhost.evil.example:3000/cb", false},
		{"http://[::1]:8080/cb", true},
		{"http://[::1]:8080/other", false},
		{"com.example.app:/cb", true},
		{"com.example.app:/cb2", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := auth.RedirectURIMatches(c, tt.uri); got != tt.want {
			t.Errorf("RedirectURIMatches(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
	// Only a registered loopback URI lets the port vary.
	https := &auth.Client{RedirectURIs: []string{"https://a.example/cb"}}
	if auth.RedirectURIMatches(https, "http://127.0.0.1:8080/cb") {
		t.Error("a loopback URI matched a client without one")
	}
	ip := &auth.Client{RedirectURIs: []string{"http://127.0.0.1:8080/cb"}}
	if auth.RedirectURIMatches(ip, "http://localhost:8080/cb") || auth.RedirectURIMatches(ip, "http://[::1]:8080/cb") {
		t.Error("another loopback host matched: only the port may differ")
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateClientValidation(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	good := func() auth.ClientInput {
		return auth.ClientInput{Name: "Billing", Type: auth.ClientConfidential, RedirectURIs: []string{"https://billing.example/cb"}}
	}
	tests := []struct {
		name  string
		edit  func(in *auth.ClientInput)
		field string
	}{
		{"no name", func(in *auth.ClientInput) { in.Name = "  " }, "name"},
		{"name too long", func(in *auth.ClientInput) { in.Name = strings.Repeat("n", 201) }, "name"},
		{"no type", func(in *auth.ClientInput) { in.Type = "" }, "type"},
		{"unknown type", func(in *auth.ClientInput) { in.Type = "spa" }, "type"},
		{"public with client_credentials", func(in *auth.ClientInput) {
			in.Type, in.GrantTypes = auth.ClientPublic, []string{"authorization_code", "client_credentials"}
		}, "grant_types"},
		{"public without PKCE", func(in *auth.ClientInput) { in.Type, in.RequirePKCE = auth.ClientPublic, ptr(false) }, "require_pkce"},
		{"public with a secret method", func(in *auth.ClientInput) {
			in.Type, in.TokenEndpointAuthMethod = auth.ClientPublic, auth.ClientAuthBasic
		}, "token_endpoint_auth_method"},
		{"confidential with none", func(in *auth.ClientInput) { in.TokenEndpointAuthMethod = auth.ClientAuthNone }, "token_endpoint_auth_method"},
		{"confidential with private_key_jwt", func(in *auth.ClientInput) { in.TokenEndpointAuthMethod = "private_key_jwt" }, "token_endpoint_auth_method"},
		{"unknown grant", func(in *auth.ClientInput) { in.GrantTypes = []string{"password"} }, "grant_types"},
		{"refresh_token alone", func(in *auth.ClientInput) { in.GrantTypes = []string{"refresh_token"} }, "grant_types"},
		{"code flow without redirect URI", func(in *auth.ClientInput) { in.RedirectURIs = nil }, "redirect_uris"},
		{"bad second redirect URI", func(in *auth.ClientInput) {
			in.RedirectURIs = append(in.RedirectURIs, "http://example.com/cb")
		}, "redirect_uris[1]"},
		{"too many redirect URIs", func(in *auth.ClientInput) {
			in.RedirectURIs = nil
			for i := range 33 {
				in.RedirectURIs = append(in.RedirectURIs, "https://a.example/cb"+strings.Repeat("x", i))
			}
		}, "redirect_uris"},
		{"bad post-logout URI", func(in *auth.ClientInput) { in.PostLogoutRedirectURIs = []string{"https://a.example/#x"} }, "post_logout_redirect_uris[0]"},
		{"unknown scope", func(in *auth.ClientInput) { in.Scopes = []string{"openid", "billing"} }, "scopes"},
		{"client_credentials without scopes", func(in *auth.ClientInput) {
			in.GrantTypes, in.RedirectURIs = []string{"client_credentials"}, nil
		}, "scopes"},
		{"HS256 ID tokens", func(in *auth.ClientInput) { in.IDTokenAlg = "HS256" }, "id_token_signed_response_alg"},
		{"logo over http", func(in *auth.ClientInput) { in.LogoURL = "http://billing.example/logo.png" }, "logo_url"},
		{"id from the API", func(in *auth.ClientInput) { in.ID = "chosen" }, "id"},
		{"secret from the API", func(in *auth.ClientInput) { in.Secret = strings.Repeat("s", 40) }, "secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good()
			tt.edit(&in)
			c, secret, err := h.svc.CreateClient(ctx, in, meta, false)
			var e *auth.Error
			if !errors.As(err, &e) || e.Code != auth.EINVALID || e.Field != tt.field {
				t.Fatalf("CreateClient: %v (%#v), want EINVALID on %s", err, err, tt.field)
			}
			if c != nil || secret != "" || e.Message == "" {
				t.Fatalf("a refused client came back: %+v %q", c, secret)
			}
		})
	}
	if cs, _ := h.svc.ListClients(ctx); len(cs) != 0 {
		t.Fatalf("refused clients were stored: %+v", cs)
	}

	// The defaults.
	c, secret, err := h.svc.CreateClient(ctx, good(), meta, false)
	if err != nil {
		t.Fatal(err)
	}
	want := &auth.Client{ID: c.ID, Name: "Billing", Type: auth.ClientConfidential, RedirectURIs: []string{"https://billing.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "email", "offline_access"},
		RequirePKCE: true, TokenEndpointAuthMethod: auth.ClientAuthBasic, CreatedAt: t0, UpdatedAt: t0}
	if !clientsEqual(c, want) || len(c.ID) != 26 || secret == "" {
		t.Fatalf("CreateClient = %+v, %q; want %+v", c, secret, want)
	}
	p, secret, err := h.svc.CreateClient(ctx, auth.ClientInput{Name: "CLI", Type: auth.ClientPublic,
		RedirectURIs: []string{"http://127.0.0.1/cb", "http://127.0.0.1/cb"}, GrantTypes: []string{"authorization_code"},
		Scopes: []string{"openid", "read", "openid"}}, meta, false)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" || p.TokenEndpointAuthMethod != auth.ClientAuthNone || !p.RequirePKCE ||
		!slices.Equal(p.RedirectURIs, []string{"http://127.0.0.1/cb"}) || !slices.Equal(p.Scopes, []string{"openid", "read"}) {
		t.Fatalf("public client = %+v, secret %q", p, secret)
	}
	// A confidential client may go without PKCE, and serve only itself.
	m, _, err := h.svc.CreateClient(ctx, auth.ClientInput{Name: "Machine", Type: auth.ClientConfidential,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, RequirePKCE: ptr(false),
		TokenEndpointAuthMethod: auth.ClientAuthPost, IDTokenAlg: "EdDSA"}, meta, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.RequirePKCE || len(m.RedirectURIs) != 0 {
		t.Fatalf("machine client = %+v", m)
	}
}

func clientsEqual(a, b *auth.Client) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Type == b.Type && slices.Equal(a.RedirectURIs, b.RedirectURIs) &&
		slices.Equal(a.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs) && slices.Equal(a.GrantTypes, b.GrantTypes) &&
		slices.Equal(a.Scopes, b.Scopes) && a.FirstParty == b.FirstParty && a.RequirePKCE == b.RequirePKCE &&
		a.TokenEndpointAuthMethod == b.TokenEndpointAuthMethod && a.IDTokenAlg == b.IDTokenAlg &&
		a.IDTokenClaims == b.IDTokenClaims && a.LogoURL == b.LogoURL && a.FromConfig == b.FromConfig &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

// newConfidential registers a confidential client and returns it and its
// secret.
func (h *harness) newConfidential(t *testing.T, name string) (*auth.Client, string) {
	t.Helper()
	c, secret, err := h.svc.CreateClient(context.Background(), auth.ClientInput{Name: name, Type: auth.ClientConfidential,
		RedirectURIs: []string{"https://" + name + ".example/cb"}}, meta, false)
	if err != nil {
		t.Fatalf("CreateClient(%s): %v", name, err)
	}
	return c, secret
}

func TestClientSecretShownOnceStoredHashed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, secret := h.newConfidential(t, "billing")
	if !strings.HasPrefix(secret, "ghcs_") || len(secret) != 5+43+6 || !auth.IsClientSecret(secret) {
		t.Fatalf("secret %q is not ghcs_ + 43 base62 + 6 checksum", secret)
	}
	typo := secret[:10] + string(secret[10]^1) + secret[11:]
	if auth.IsClientSecret(typo) || auth.IsClientSecret(auth.NewAPIKeySecret()) {
		t.Error("IsClientSecret accepted a mistyped secret or an API key")
	}
	if _, other, _ := h.svc.CreateClient(ctx, auth.ClientInput{Name: "b", Type: auth.ClientConfidential,
		RedirectURIs: []string{"https://b.example/cb"}}, meta, false); other == secret {
		t.Fatal("two clients got the same secret")
	}
	// Stored: the hex SHA-256 only.
	row, err := h.db.ClientByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.SecretHash != auth.HashToken(secret) || row.PreviousSecretHash != "" {
		t.Fatalf("stored hashes %q / %q, want the SHA-256 of the secret", row.SecretHash, row.PreviousSecretHash)
	}
	// Never shown again, nor its hash.
	got, err := h.svc.Client(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.svc.ListClients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range append(list, got, c) {
		if x.SecretHash != "" || x.PreviousSecretHash != "" {
			t.Fatalf("a client came back with its secret hash: %+v", x)
		}
	}
	if _, err := h.svc.Client(ctx, "nope"); auth.ErrorCode(err) != auth.ENOTFOUND {
		t.Fatalf("unknown client: %v", err)
	}
}

func TestAuthenticateClient(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, first := h.newConfidential(t, "billing")
	pub, _, err := h.svc.CreateClient(ctx, auth.ClientInput{Name: "spa", Type: auth.ClientPublic,
		RedirectURIs: []string{"https://spa.example/cb"}}, meta, false)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(what, id, secret string) {
		t.Helper()
		got, err := h.svc.AuthenticateClient(ctx, id, secret)
		if err != nil || got.ID != id || got.SecretHash != "" || got.PreviousSecretHash != "" {
			t.Fatalf("%s: AuthenticateClient = %+v, %v; want the client, without hashes", what, got, err)
		}
	}
	refused := func(what, id, secret string) {
		t.Helper()
		got, err := h.svc.AuthenticateClient(ctx, id, secret)
		// One answer for every failure, so none says what was wrong.
		if got != nil || err != auth.ErrInvalidClient {
			t.Fatalf("%s: AuthenticateClient = %+v, %v; want ErrInvalidClient", what, got, err)
		}
	}
	ok("current secret", c.ID, first)
	refused("wrong secret", c.ID, auth.NewClientSecret())
	refused("the secret with one character changed", c.ID, first[:len(first)-1]+"x")
	refused("no secret", c.ID, "")
	refused("the secret's hash", c.ID, auth.HashToken(first))
	refused("unknown client", "nope", first)
	refused("no client id", "", first)
	refused("another client's id", pub.ID, first)
	ok("public client, no secret", pub.ID, "")
	refused("a secret sent for a public client", pub.ID, "anything")

	// Rotation: the new secret works at once, the previous for 24 h.
	second, until, err := h.svc.RotateClientSecret(ctx, c.ID, meta)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || !auth.IsClientSecret(second) || !until.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("rotation: %q until %v", second, until)
	}
	ok("new secret", c.ID, second)
	ok("previous secret inside its grace", c.ID, first)
	h.clock.Advance(24*time.Hour - time.Second)
	ok("previous secret a second before it expires", c.ID, first)
	h.clock.Advance(time.Second)
	refused("expired previous secret", c.ID, first)
	ok("new secret after the grace", c.ID, second)

	// A second rotation: the first secret ends at once, the second is
	// the previous.
	third, _, err := h.svc.RotateClientSecret(ctx, c.ID, meta)
	if err != nil {
		t.Fatal(err)
	}
	ok("third secret", c.ID, third)
	ok("second secret as the previous", c.ID, second)
	refused("first secret", c.ID, first)
	if got, _ := h.svc.Client(ctx, c.ID); got.PreviousSecretExpiresAt == nil || !got.PreviousSecretExpiresAt.Equal(h.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("previous secret expiry %v", got.PreviousSecretExpiresAt)
	}

	if _, _, err := h.svc.RotateClientSecret(ctx, pub.ID, meta); auth.ErrorCode(err) != auth.ECONFLICT {
		t.Fatalf("rotating a public client's secret: %v, want ECONFLICT", err)
	}
	if _, _, err := h.svc.RotateClientSecret(ctx, "nope", meta); auth.ErrorCode(err) != auth.ENOTFOUND {
		t.Fatalf("rotating an unknown client's secret: %v, want ENOTFOUND", err)
	}
	// A deleted client authenticates no more.
	if err := h.svc.DeleteClient(ctx, c.ID, meta); err != nil {
		t.Fatal(err)
	}
	refused("deleted client", c.ID, third)
}

func TestUpdateClient(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, secret := h.newConfidential(t, "billing")
	h.clock.Advance(time.Minute)

	got, err := h.svc.UpdateClient(ctx, c.ID, auth.ClientPatch{
		Name:         ptr("Billing v2"),
		RedirectURIs: &[]string{"https://billing.example/cb", "https://billing.example/cb2"},
		Scopes:       &[]string{"openid", "read"},
		FirstParty:   ptr(true),
		RequirePKCE:  ptr(false),
	}, meta)
	if err != nil {
		t.Fatal(err)
	}
	want := &auth.Client{ID: c.ID, Name: "Billing v2", Type: auth.ClientConfidential,
		RedirectURIs: []string{"https://billing.example/cb", "https://billing.example/cb2"},
		GrantTypes:   []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "read"}, FirstParty: true,
		TokenEndpointAuthMethod: auth.ClientAuthBasic, CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)}
	if !clientsEqual(got, want) {
		t.Fatalf("UpdateClient = %+v, want %+v", got, want)
	}
	if stored, _ := h.svc.Client(ctx, c.ID); !clientsEqual(stored, want) {
		t.Fatalf("stored %+v, want %+v", stored, want)
	}
	if _, err := h.svc.AuthenticateClient(ctx, c.ID, secret); err != nil {
		t.Fatalf("the secret stopped working after an update: %v", err)
	}

	// A patch that breaks a rule changes nothing.
	for name, p := range map[string]auth.ClientPatch{
		"no redirect URIs":  {RedirectURIs: &[]string{}},
		"http redirect URI": {RedirectURIs: &[]string{"http://billing.example/cb"}},
		"empty name":        {Name: ptr(""), FirstParty: ptr(false)},
		"auth method none":  {TokenEndpointAuthMethod: ptr(auth.ClientAuthNone)},
	} {
		if _, err := h.svc.UpdateClient(ctx, c.ID, p, meta); auth.ErrorCode(err) != auth.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if stored, _ := h.svc.Client(ctx, c.ID); !clientsEqual(stored, want) {
		t.Fatalf("a refused patch changed the client: %+v", stored)
	}
	if _, err := h.svc.UpdateClient(ctx, "nope", auth.ClientPatch{Name: ptr("x")}, meta); auth.ErrorCode(err) != auth.ENOTFOUND {
		t.Fatalf("unknown client: %v", err)
	}
	if err := h.svc.DeleteClient(ctx, c.ID, meta); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.DeleteClient(ctx, c.ID, meta); auth.ErrorCode(err) != auth.ENOTFOUND {
		t.Fatalf("deleting twice: %v", err)
	}
}

// configClient is a confidential client as the configuration file gives
// one.
func configClient(id, secret string) auth.ClientInput {
	return auth.ClientInput{ID: id, Secret: secret, Name: "Config " + id, Type: auth.ClientConfidential,
		RedirectURIs: []string{"https://" + id + ".example/cb"}}
}

func TestConfigClientsAreReadOnly(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	secret := strings.Repeat("k", 40)
	c, shown, err := h.svc.CreateClient(ctx, configClient("billing-web", secret), meta, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "billing-web" || !c.FromConfig || shown != "" {
		t.Fatalf("config client %+v, secret shown %q", c, shown)
	}
	if _, err := h.svc.AuthenticateClient(ctx, c.ID, secret); err != nil {
		t.Fatalf("the configured secret: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		var e *auth.Error
		if !errors.As(err, &e) || e.Code != auth.ECONFLICT || !strings.Contains(e.Message, "configuration file") {
			t.Fatalf("%s of a config client: %v, want ECONFLICT naming the configuration file", what, err)
		}
	}
	_, err = h.svc.UpdateClient(ctx, c.ID, auth.ClientPatch{Name: ptr("changed")}, meta)
	check("UpdateClient", err)
	check("DeleteClient", h.svc.DeleteClient(ctx, c.ID, meta))
	_, _, err = h.svc.RotateClientSecret(ctx, c.ID, meta)
	check("RotateClientSecret", err)
	if got, _ := h.svc.Client(ctx, c.ID); got.Name != "Config billing-web" {
		t.Fatalf("a config client changed: %+v", got)
	}

	// The configuration file's own rules.
	for name, in := range map[string]auth.ClientInput{
		"no id":                   configClient("", secret),
		"id with a slash":         configClient("a/b", secret),
		"short secret":            configClient("short", "too-short"),
		"no secret":               configClient("nosecret", ""),
		"public with a secret":    {ID: "pub", Secret: secret, Name: "p", Type: auth.ClientPublic, RedirectURIs: []string{"https://p.example/cb"}},
		"unknown scope":           {ID: "s", Secret: secret, Name: "s", Type: auth.ClientConfidential, RedirectURIs: []string{"https://s.example/cb"}, Scopes: []string{"nope"}},
		"a wildcard redirect URI": {ID: "w", Secret: secret, Name: "w", Type: auth.ClientConfidential, RedirectURIs: []string{"https://*.example/cb"}},
	} {
		if _, _, err := h.svc.CreateClient(ctx, in, meta, true); auth.ErrorCode(err) != auth.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	// ValidateConfigClient reports every problem at once.
	errs := auth.ValidateConfigClient(auth.ClientInput{Type: "spa", RedirectURIs: []string{"myapp:/cb"}}, nil)
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	for _, f := range []string{"id", "name", "type", "redirect_uris[0]"} {
		if !slices.Contains(fields, f) {
			t.Errorf("ValidateConfigClient reported %q, missing %s", fields, f)
		}
	}
	if errs := auth.ValidateConfigClient(configClient("ok", secret), nil); errs != nil {
		t.Errorf("a valid client: %v", errs)
	}
}

func TestSyncConfigClients(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	api, apiSecret := h.newConfidential(t, "api")
	taken, _ := h.newConfidential(t, "taken")
	a := configClient("a", strings.Repeat("a", 40))
	b := auth.ClientInput{ID: "b", Name: "B", Type: auth.ClientPublic, RedirectURIs: []string{"http://127.0.0.1/cb"}}
	over := configClient(taken.ID, strings.Repeat("t", 40))
	if err := h.svc.SyncConfigClients(ctx, []auth.ClientInput{a, b, over}); err != nil {
		t.Fatal(err)
	}
	ids := func() []string {
		t.Helper()
		cs, err := h.svc.ListClients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			if c.FromConfig {
				out = append(out, c.ID+"(config)")
			} else {
				out = append(out, c.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	want := []string{a.ID + "(config)", api.ID, b.ID + "(config)", taken.ID + "(config)"}
	slices.Sort(want)
	if got := ids(); !slices.Equal(got, want) {
		t.Fatalf("after the first sync: %q, want %q", got, want)
	}
	if _, err := h.svc.AuthenticateClient(ctx, "a", a.Secret); err != nil {
		t.Fatalf("config client a: %v", err)
	}
	if _, err := h.svc.AuthenticateClient(ctx, taken.ID, over.Secret); err != nil {
		t.Fatalf("a config client that took an API client's id: %v", err)
	}

	// Unchanged: nothing is written.
	events := func() int {
		t.Helper()
		es, err := h.db.ListAudit(ctx, auth.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range es {
			if strings.HasPrefix(e.Type, "oauth.client.") {
				n++
			}
		}
		return n
	}
	before := events()
	h.clock.Advance(time.Hour)
	if err := h.svc.SyncConfigClients(ctx, []auth.ClientInput{a, b, over}); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.svc.Client(ctx, "a"); !got.UpdatedAt.Equal(t0) || events() != before {
		t.Fatalf("an unchanged sync wrote: updated_at %v, %d events after %d", got.UpdatedAt, events(), before)
	}

	// a changes its name and secret (the old one ends at once), b goes.
	a2 := a
	a2.Name, a2.Secret = "A renamed", strings.Repeat("z", 40)
	if err := h.svc.SyncConfigClients(ctx, []auth.ClientInput{a2, over}); err != nil {
		t.Fatal(err)
	}
	want = []string{a.ID + "(config)", api.ID, taken.ID + "(config)"}
	slices.Sort(want)
	if got := ids(); !slices.Equal(got, want) {
		t.Fatalf("after the second sync: %q, want %q", got, want)
	}
	if got, _ := h.svc.Client(ctx, "a"); got.Name != "A renamed" {
		t.Fatalf("a was not replaced: %+v", got)
	}
	if _, err := h.svc.AuthenticateClient(ctx, "a", a.Secret); err != auth.ErrInvalidClient {
		t.Fatalf("the replaced secret: %v, want ErrInvalidClient", err)
	}
	if _, err := h.svc.AuthenticateClient(ctx, "a", a2.Secret); err != nil {
		t.Fatalf("the new secret: %v", err)
	}
	if _, err := h.svc.AuthenticateClient(ctx, api.ID, apiSecret); err != nil {
		t.Fatalf("an API client after syncs: %v", err)
	}

	// No clients in the file: the file's clients go, the API's stay.
	if err := h.svc.SyncConfigClients(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := ids(); !slices.Equal(got, []string{api.ID}) {
		t.Fatalf("after an empty sync: %q", got)
	}

	// Invalid input changes nothing.
	if err := h.svc.SyncConfigClients(ctx, []auth.ClientInput{a, a}); err == nil {
		t.Fatal("a repeated id was accepted")
	}
	if err := h.svc.SyncConfigClients(ctx, []auth.ClientInput{configClient("bad", "short")}); err == nil {
		t.Fatal("a short secret was accepted")
	}
	if got := ids(); !slices.Equal(got, []string{api.ID}) {
		t.Fatalf("after refused syncs: %q", got)
	}
}

// TestClientAuditHasNoSecret: every client operation is audited, and no
// event holds a secret or a secret's hash.
func TestClientAuditHasNoSecret(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c, first := h.newConfidential(t, "billing")
	if _, err := h.svc.UpdateClient(ctx, c.ID, auth.ClientPatch{Name: ptr("Billing 2")}, meta); err != nil {
		t.Fatal(err)
	}
	second, _, err := h.svc.RotateClientSecret(ctx, c.ID, meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.DeleteClient(ctx, c.ID, meta); err != nil {
		t.Fatal(err)
	}
	cfgSecret := strings.Repeat("c", 40)
	if err := h.svc.SyncConfigClients(ctx, []auth.ClientInput{configClient("cfg", cfgSecret)}); err != nil {
		t.Fatal(err)
	}
	changed := configClient("cfg", strings.Repeat("d", 40))
	if err := h.svc.SyncConfigClients(ctx, []auth.ClientInput{changed}); err != nil {
		t.Fatal(err)
	}
	es, err := h.db.ListAudit(ctx, auth.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range es {
		if !strings.HasPrefix(e.Type, "oauth.client.") {
			continue
		}
		types = append(types, e.Type)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{first, second, cfgSecret, changed.Secret} {
			if strings.Contains(string(b), s) || strings.Contains(string(b), auth.HashToken(s)) {
				t.Fatalf("audit event %s holds a secret or its hash: %s", e.Type, b)
			}
		}
		if strings.Contains(string(b), "ghcs_") {
			t.Fatalf("audit event %s holds a client secret: %s", e.Type, b)
		}
		if e.IP == "" || e.Details["client_id"] == nil {
			t.Errorf("audit event %s without IP or client_id: %s", e.Type, b)
		}
	}
	for _, want := range []string{auth.EventClientCreated, auth.EventClientUpdated, auth.EventClientSecretRotated, auth.EventClientDeleted} {
		if !slices.Contains(types, want) {
			t.Errorf("no %s event among %q", want, types)
		}
	}
}
