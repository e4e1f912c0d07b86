package httptest_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// secretShown finds a secret on a console page (shown once, in the page's
// key box).
var secretShown = regexp.MustCompile(`<div class="key"><code>([^<]+)</code></div>`)

// clientToken asks for a client_credentials token with a client's secret.
func clientToken(t *testing.T, g *gh, id, secret string) int {
	t.Helper()
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
	r := g.send(t, http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, []string{"Authorization", "Basic " + basic})
	return r.Status
}

var clientLinkRE = regexp.MustCompile(`<a href="/admin/clients/([^"/]+)">Console service</a>`)

func TestConsoleClients(t *testing.T) {
	g := startConsoleOps(t, clientsYAML, nil)
	user := g.user(t, "consoleclients")

	body := g.opsPage(t, "/admin/clients")
	for _, want := range []string{"<h1>OAuth clients</h1>", "From the file", "Configuration file", `data-label="Client ID"`, `<label for="client-name">`, "Register client"} {
		if !strings.Contains(body, want) {
			t.Errorf("the clients page lacks %q", want)
		}
	}

	// Register a confidential client for client_credentials: its secret
	// is on the answer, once (no-store), and works.
	form := url.Values{"name": {"Console service"}, "type": {"confidential"}, "grant_client_credentials": {"1"}, "scopes": {"read"}, "require_pkce": {"1"}}
	page := fullPost(t, g, "/admin/clients", form, http.StatusOK)
	m := secretShown.FindStringSubmatch(page)
	if m == nil || !strings.HasPrefix(m[1], "ghcs_") || !strings.Contains(page, "shown only this once") {
		t.Fatalf("the registration's answer shows no ghcs_ secret:\n%s", page)
	}
	created := g.wantConsoleAudit(t, "oauth.client.created", func(d map[string]any) bool { return d["name"] == "Console service" })
	second, _ := created.Details["client_id"].(string)
	if second == "" || created.UserID != g.root.ID {
		t.Fatalf("oauth.client.created %+v: want the client id and root", created)
	}
	if ids := clientLinkRE.FindAllStringSubmatch(g.opsPage(t, "/admin/clients"), -1); len(ids) != 1 || ids[0][1] != second {
		t.Fatalf("the list links %q, want the new client %s", ids, second)
	}
	if st := clientToken(t, g, second, m[1]); st != http.StatusOK {
		t.Fatalf("client_credentials with the secret shown on registration: %d, want 200", st)
	}

	// Its page: settings, never the secret.
	view := g.opsPage(t, "/admin/clients/"+second)
	if strings.Contains(view, m[1]) || strings.Contains(view, "ghcs_") {
		t.Fatal("the client's page shows its secret")
	}
	for _, want := range []string{"client_credentials", "Rotate secret", "Delete client…", "<code>read</code>"} {
		if !strings.Contains(view, want) {
			t.Errorf("the client's page lacks %q", want)
		}
	}

	// Rotate: a new secret, shown once; it works, and so does the old one
	// for a day.
	rot := fullPost(t, g, "/admin/clients/"+second+"/secret", url.Values{}, http.StatusOK)
	nm := secretShown.FindStringSubmatch(rot)
	if nm == nil || nm[1] == m[1] || !strings.HasPrefix(nm[1], "ghcs_") {
		t.Fatalf("rotation shows no new secret:\n%s", rot)
	}
	if st := clientToken(t, g, second, nm[1]); st != http.StatusOK {
		t.Fatalf("client_credentials with the rotated secret: %d", st)
	}
	if st := clientToken(t, g, second, m[1]); st != http.StatusOK {
		t.Fatalf("client_credentials with the previous secret within its day: %d", st)
	}
	g.wantConsoleAudit(t, "oauth.client.secret_rotated", func(d map[string]any) bool { return d["client_id"] == second })
	if !strings.Contains(g.opsPage(t, "/admin/clients/"+second), "Previous secret") {
		t.Error("the client's page does not say until when the previous secret works")
	}

	// A registration the domain refuses: the form comes back with the
	// reason and what was typed.
	bad := url.Values{"name": {"Broken app"}, "type": {"public"}, "grant_authorization_code": {"1"}, "require_pkce": {"1"}}
	refused := fullPost(t, g, "/admin/clients", bad, http.StatusUnprocessableEntity)
	if !strings.Contains(refused, "redirect URI is required") || !strings.Contains(refused, `value="Broken app"`) || !strings.Contains(refused, "<details class=\"create\" open>") {
		t.Fatalf("a public code-flow client without redirect URIs: want the form open again, with the name typed and the reason:\n%s", refused)
	}

	t.Run("Refused", func(t *testing.T) {
		before := len(g.auditLog(t, url.Values{"type": {"oauth.client.created"}}))
		posts := map[string]url.Values{"/admin/clients": form, "/admin/clients/" + second + "/secret": {}, "/admin/clients/" + second + "/delete": {}}
		for p, f := range posts {
			if r := g.send(t, http.MethodPost, p, f, g.cookie(g.root), crossSite); r.Status != http.StatusForbidden {
				t.Errorf("a cross-site POST %s: %s, want 403", p, r)
			}
			if r := g.consoleSubmit(t, user, p, f); r.Status != http.StatusForbidden {
				t.Errorf("POST %s as a user: %s, want 403", p, r)
			}
		}
		for _, p := range []string{"/admin/clients", "/admin/clients/" + second, "/admin/clients/" + second + "/delete"} {
			if r := g.get(t, p, g.cookie(user)); r.Status != http.StatusForbidden {
				t.Errorf("GET %s as a user: %s, want 403", p, r)
			}
		}
		if after := len(g.auditLog(t, url.Values{"type": {"oauth.client.created"}})); after != before {
			t.Fatal("a refused post registered a client")
		}
		if r := g.get(t, "/admin/clients/"+second, g.cookie(g.root)); r.Status != http.StatusOK {
			t.Fatalf("the client survived refused posts? %s", r)
		}
	})

	// Delete: a confirmation page, then the post.
	confirm := g.opsPage(t, "/admin/clients/"+second+"/delete")
	if !strings.Contains(confirm, "Delete this client?") || !strings.Contains(confirm, `action="/admin/clients/`+second+`/delete"`) {
		t.Fatal("the delete confirmation page does not ask")
	}
	r := g.consoleSubmit(t, g.root, "/admin/clients/"+second+"/delete", url.Values{})
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/admin/clients?notice=") {
		t.Fatalf("delete: %s (Location %q)", r, r.Header.Get("Location"))
	}
	if r := g.get(t, "/admin/clients/"+second, g.cookie(g.root)); r.Status != http.StatusNotFound {
		t.Fatalf("the deleted client's page: %s, want 404", r)
	}
	if st := clientToken(t, g, second, nm[1]); st == http.StatusOK {
		t.Fatal("the deleted client still gets tokens")
	}
	g.wantConsoleAudit(t, "oauth.client.deleted", func(d map[string]any) bool { return d["client_id"] == second })

	t.Run("FromConfigReadOnly", func(t *testing.T) {
		view := g.opsPage(t, "/admin/clients/from-config")
		if !strings.Contains(view, "Read-only here") || strings.Contains(view, "Rotate secret") || strings.Contains(view, "Delete client") {
			t.Fatal("a client of the configuration file offers changes")
		}
		for _, p := range []string{"/admin/clients/from-config/delete", "/admin/clients/from-config/secret"} {
			if r := g.consoleSubmit(t, g.root, p, url.Values{}); r.Status != http.StatusConflict {
				t.Errorf("POST %s: %s, want 409", p, r)
			}
		}
		if r := g.get(t, "/admin/clients/from-config/delete", g.cookie(g.root)); r.Status != http.StatusConflict {
			t.Errorf("the delete page of a client of the file: %s, want 409", r)
		}
	})

}

// fullPost posts a console form as root, wants status and no-store, and
// returns the whole HTML of the answer.
func fullPost(t *testing.T, g *gh, path string, form url.Values, status int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.Direct+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", g.cookieName+"="+g.root.Cookie)
	for i, h := 0, g.sameOrigin(); i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != status || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST %s: %d (Cache-Control %q), want %d no-store: %s", path, res.StatusCode, res.Header.Get("Cache-Control"), status, htmlMessage.FindAll(b.Bytes(), -1))
	}
	return b.String()
}
