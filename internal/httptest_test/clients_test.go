package httptest_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/testserver"
)

// The OAuth client registry over HTTP (SPEC §14): /v1/admin/clients.

// configClientSecret is the secret of the client the configuration file
// declares in TestAdminClients.
const configClientSecret = "config-client-secret-0123456789abcdef"

const clientsYAML = baseYAML + `clients:
  - id: from-config
    name: From the file
    type: confidential
    secret: ` + configClientSecret + `
    redirect_uris: [https://config.example/cb]
`

// oauthClient is a client as the admin API shows it.
type oauthClient struct {
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
	FromConfig              bool     `json:"from_config"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
	CreatedAt               string   `json:"created_at"`
	UpdatedAt               string   `json:"updated_at"`
}

func decodeClient(t *testing.T, what string, r *testserver.Response, status int) oauthClient {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %s, want %d", what, r, status)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, cc)
	}
	var c oauthClient
	if err := json.Unmarshal(r.Body, &c); err != nil {
		t.Fatalf("%s: %v: %s", what, err, r.Body)
	}
	return c
}

// hexHash finds what could be a stored secret hash (hex SHA-256).
var hexHash = regexp.MustCompile(`[0-9a-f]{64}`)

// noSecrets fails when an answer carries a secret hash or any member
// named after a hash.
func noSecrets(t *testing.T, what string, r *testserver.Response) {
	t.Helper()
	if hexHash.Match(r.Body) || strings.Contains(string(r.Body), "hash") {
		t.Fatalf("%s shows a secret hash: %s", what, r.Body)
	}
}

// createClient registers a client as root; body is its settings.
func (g *gh) createClient(t *testing.T, body any) oauthClient {
	t.Helper()
	r := g.send(t, http.MethodPost, "/v1/admin/clients", body, bearer(g.root.Access))
	noSecrets(t, "POST /v1/admin/clients", r)
	return decodeClient(t, "POST /v1/admin/clients", r, http.StatusCreated)
}

func TestAdminClients(t *testing.T) {
	g := startYAML(t, clientsYAML, nil)
	root := bearer(g.root.Access)
	user := g.user(t, "clients")
	_, secretKey := g.createKey(t, g.root, "read") // an admin's key without scope admin

	// Admin only: 401 without a credential, 403 for anyone else.
	body := map[string]any{"name": "Billing", "type": "confidential", "redirect_uris": []string{"https://billing.example/cb"}}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/v1/admin/clients", body},
		{http.MethodGet, "/v1/admin/clients", nil},
		{http.MethodGet, "/v1/admin/clients/from-config", nil},
		{http.MethodPatch, "/v1/admin/clients/from-config", map[string]any{"name": "x"}},
		{http.MethodDelete, "/v1/admin/clients/from-config", nil},
		{http.MethodPost, "/v1/admin/clients/from-config/secret", nil},
	} {
		what := c.method + " " + c.path
		wantProblem(t, what+" without a credential", g.send(t, c.method, c.path, c.body), http.StatusUnauthorized)
		wantProblem(t, what+" as a user", g.send(t, c.method, c.path, c.body, bearer(user.Access)), http.StatusForbidden)
		wantProblem(t, what+" as a user's session", g.send(t, c.method, c.path, c.body, g.cookie(user), g.sameOrigin()), http.StatusForbidden)
		wantProblem(t, what+" with an admin's key without scope admin", g.send(t, c.method, c.path, c.body, apiKey(secretKey)), http.StatusForbidden)
	}

	// Create: the secret once, only in this answer.
	c := g.createClient(t, body)
	if !strings.HasPrefix(c.ClientSecret, "ghcs_") || len(c.ClientSecret) != 54 || c.ClientID == "" ||
		c.Type != "confidential" || c.TokenEndpointAuthMethod != "client_secret_basic" || !c.RequirePKCE ||
		!slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) || c.FromConfig {
		t.Fatalf("created client: %+v", c)
	}
	secret := c.ClientSecret
	get := g.get(t, "/v1/admin/clients/"+c.ClientID, root)
	noSecrets(t, "GET /v1/admin/clients/{id}", get)
	if got := decodeClient(t, "GET /v1/admin/clients/{id}", get, http.StatusOK); got.ClientSecret != "" || got.Name != "Billing" {
		t.Fatalf("GET shows %+v", got)
	}
	list := g.get(t, "/v1/admin/clients", root)
	noSecrets(t, "GET /v1/admin/clients", list)
	if strings.Contains(string(list.Body), secret) || strings.Contains(string(list.Body), `"client_secret":`) {
		t.Fatalf("the list shows a secret: %s", list.Body)
	}
	var all struct {
		Clients []oauthClient `json:"clients"`
	}
	if err := json.Unmarshal(list.Body, &all); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range all.Clients {
		names = append(names, x.Name)
	}
	if !slices.Equal(names, []string{"Billing", "From the file"}) {
		t.Fatalf("listed %q", names)
	}

	// A public client: no secret, none, PKCE.
	pub := g.createClient(t, map[string]any{"name": "CLI", "type": "public", "redirect_uris": []string{"http://127.0.0.1/cb"},
		"scopes": []string{"openid", "read"}})
	if pub.ClientSecret != "" || pub.TokenEndpointAuthMethod != "none" || !pub.RequirePKCE {
		t.Fatalf("public client: %+v", pub)
	}
	wantProblem(t, "rotating a public client's secret", g.send(t, http.MethodPost, "/v1/admin/clients/"+pub.ClientID+"/secret", nil, root), http.StatusConflict)

	// Rotation: a new secret, once; the previous one works for 24 h.
	r := g.send(t, http.MethodPost, "/v1/admin/clients/"+c.ClientID+"/secret", nil, root)
	noSecrets(t, "POST /v1/admin/clients/{id}/secret", r)
	if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate: %s (Cache-Control %q)", r, r.Header.Get("Cache-Control"))
	}
	m := r.JSON(t)
	next := str(t, m, "client_secret")
	if str(t, m, "client_id") != c.ClientID || next == secret || !strings.HasPrefix(next, "ghcs_") {
		t.Fatalf("rotate: %s", r.Body)
	}
	until, err := time.Parse(time.RFC3339, str(t, m, "previous_secret_expires_at"))
	if err != nil || time.Until(until) < 23*time.Hour || time.Until(until) > 25*time.Hour {
		t.Fatalf("previous secret valid until %v (%v), want in 24 h", until, err)
	}
	after := decodeClient(t, "GET after rotation", g.get(t, "/v1/admin/clients/"+c.ClientID, root), http.StatusOK)
	if after.PreviousSecretExpiresAt == nil {
		t.Fatalf("after rotation: %+v", after)
	}

	// PATCH: the members named change, the rest stays; bad values are 422
	// problems naming the member.
	p := decodeClient(t, "PATCH", g.send(t, http.MethodPatch, "/v1/admin/clients/"+c.ClientID,
		map[string]any{"name": "Billing 2", "redirect_uris": []string{"https://billing.example/cb", "http://localhost:8080/cb"},
			"post_logout_redirect_uris": []string{"https://billing.example/bye"}, "require_pkce": false}, root), http.StatusOK)
	if p.Name != "Billing 2" || len(p.RedirectURIs) != 2 || p.RequirePKCE || p.Type != "confidential" ||
		!slices.Equal(p.PostLogoutRedirectURIs, []string{"https://billing.example/bye"}) || p.CreatedAt != c.CreatedAt {
		t.Fatalf("patched: %+v", p)
	}
	for _, bad := range []struct {
		name, path, body, location string
	}{
		{"http redirect URI", "/v1/admin/clients", `{"name":"x","type":"confidential","redirect_uris":["http://example.com/cb"]}`, "body.redirect_uris[0]"},
		{"fragment", "/v1/admin/clients", `{"name":"x","type":"confidential","redirect_uris":["https://a.example/cb#x"]}`, "body.redirect_uris[0]"},
		{"userinfo", "/v1/admin/clients", `{"name":"x","type":"public","redirect_uris":["https://user@a.example/cb"]}`, "body.redirect_uris[0]"},
		{"wildcard", "/v1/admin/clients", `{"name":"x","type":"public","redirect_uris":["https://a.example/cb","https://*.example/cb"]}`, "body.redirect_uris[1]"},
		{"scheme without a dot", "/v1/admin/clients", `{"name":"x","type":"public","redirect_uris":["myapp:/cb"]}`, "body.redirect_uris[0]"},
		{"no redirect URI", "/v1/admin/clients", `{"name":"x","type":"public"}`, "body.redirect_uris"},
		{"public without PKCE", "/v1/admin/clients", `{"name":"x","type":"public","redirect_uris":["https://a.example/cb"],"require_pkce":false}`, "body.require_pkce"},
		{"public client_credentials", "/v1/admin/clients", `{"name":"x","type":"public","redirect_uris":["https://a.example/cb"],"grant_types":["authorization_code","client_credentials"]}`, "body.grant_types"},
		{"unknown scope", "/v1/admin/clients", `{"name":"x","type":"public","redirect_uris":["https://a.example/cb"],"scopes":["nope"]}`, "body.scopes"},
		{"unknown type", "/v1/admin/clients", `{"name":"x","type":"spa","redirect_uris":["https://a.example/cb"]}`, "body.type"},
		{"unknown member", "/v1/admin/clients", `{"name":"x","type":"public","redirect_uris":["https://a.example/cb"],"client_secret":"mine"}`, ""},
		{"PATCH http redirect URI", "/v1/admin/clients/" + c.ClientID, `{"redirect_uris":["http://example.com/cb"]}`, "body.redirect_uris[0]"},
		{"PATCH auth method none", "/v1/admin/clients/" + c.ClientID, `{"token_endpoint_auth_method":"none"}`, "body.token_endpoint_auth_method"},
		{"PATCH the type", "/v1/admin/clients/" + c.ClientID, `{"type":"public"}`, ""},
	} {
		method := http.MethodPost
		if strings.HasPrefix(bad.name, "PATCH") {
			method = http.MethodPatch
		}
		pr := wantProblem(t, bad.name, g.send(t, method, bad.path, bad.body, root), http.StatusUnprocessableEntity)
		if bad.location != "" && (len(pr.Errors) == 0 || pr.Errors[0].Location != bad.location) {
			t.Errorf("%s: errors %+v, want location %s", bad.name, pr.Errors, bad.location)
		}
	}
	if got := decodeClient(t, "GET after refused patches", g.get(t, "/v1/admin/clients/"+c.ClientID, root), http.StatusOK); got.Name != "Billing 2" || len(got.RedirectURIs) != 2 {
		t.Fatalf("a refused patch changed the client: %+v", got)
	}

	// The configuration file's client: readable, read-only.
	fc := decodeClient(t, "GET the config client", g.get(t, "/v1/admin/clients/from-config", root), http.StatusOK)
	if !fc.FromConfig || fc.Name != "From the file" {
		t.Fatalf("config client: %+v", fc)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPatch, "/v1/admin/clients/from-config", map[string]any{"name": "x"}},
		{http.MethodDelete, "/v1/admin/clients/from-config", nil},
		{http.MethodPost, "/v1/admin/clients/from-config/secret", nil},
	} {
		pr := wantProblem(t, c.method+" the config client", g.send(t, c.method, c.path, c.body, root), http.StatusConflict)
		if !strings.Contains(pr.Detail, "configuration file") {
			t.Errorf("%s the config client: %q does not say why", c.method, pr.Detail)
		}
	}

	// DELETE: 204, then gone.
	if r := g.send(t, http.MethodDelete, "/v1/admin/clients/"+c.ClientID, nil, root); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %s", r)
	}
	wantProblem(t, "GET a deleted client", g.get(t, "/v1/admin/clients/"+c.ClientID, root), http.StatusNotFound)
	wantProblem(t, "DELETE a deleted client", g.send(t, http.MethodDelete, "/v1/admin/clients/"+c.ClientID, nil, root), http.StatusNotFound)
	wantProblem(t, "rotate a deleted client", g.send(t, http.MethodPost, "/v1/admin/clients/"+c.ClientID+"/secret", nil, root), http.StatusNotFound)

	// The audit log has the events, and no secret is in it or in the log.
	audit := g.get(t, "/v1/admin/audit?limit=1000", root)
	for _, typ := range []string{"oauth.client.created", "oauth.client.updated", "oauth.client.secret_rotated", "oauth.client.deleted"} {
		if !strings.Contains(string(audit.Body), `"`+typ+`"`) {
			t.Errorf("no %s in the audit log", typ)
		}
		// The administrator who acted is the event's user.
		byAdmin := g.get(t, "/v1/admin/audit?limit=1000&type="+typ+"&user_id="+g.root.ID, root)
		if !strings.Contains(string(byAdmin.Body), `"`+typ+`"`) {
			t.Errorf("%s does not name the administrator %s as its user: %s", typ, g.root.ID, byAdmin)
		}
	}
	for _, s := range []string{secret, next, configClientSecret} {
		if strings.Contains(string(audit.Body), s) || strings.Contains(g.Log(), s) {
			t.Fatalf("a client secret is in the audit log or the server log")
		}
	}
}
