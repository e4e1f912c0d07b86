package httptest_test

import (
	"bytes"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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

// The edit form's controls, as client.html writes them: what a browser
// sends for each.
var (
	editTextRE     = regexp.MustCompile(`<input id="[^"]+" name="([^"]+)" type="(?:text|url)" value="([^"]*)"`)
	editCheckRE    = regexp.MustCompile(`<input id="[^"]+" type="checkbox" name="([^"]+)" value="([^"]*)"( checked)?`)
	editAreaRE     = regexp.MustCompile(`<textarea id="[^"]+" name="([^"]+)"[^>]*>([^<]*)</textarea>`)
	editSelectRE   = regexp.MustCompile(`(?s)<select id="[^"]+" name="([^"]+)"[^>]*>(.*?)</select>`)
	editSelectedRE = regexp.MustCompile(`<option value="([^"]*)" selected>`)
	editControlRE  = regexp.MustCompile(`<(?:input|textarea|select)\b[^>]*>`)
	editIDRE       = regexp.MustCompile(` id="([^"]+)"`)
	editDescRE     = regexp.MustCompile(`aria-describedby="([^"]+)"`)
)

// clientEditForm finds the edit form of a client's page and returns its
// HTML and the values a browser would send for it as it is.
func clientEditForm(t *testing.T, page, id string) (string, url.Values) {
	t.Helper()
	start := strings.Index(page, `<form method="post" action="/admin/clients/`+id+`/edit"`)
	if start < 0 {
		t.Fatalf("the client's page has no edit form:\n%s", page)
	}
	form := page[start:]
	form = form[:strings.Index(form, "</form>")]
	v := url.Values{}
	for _, m := range editTextRE.FindAllStringSubmatch(form, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	for _, m := range editCheckRE.FindAllStringSubmatch(form, -1) {
		if m[3] != "" {
			v.Set(m[1], m[2])
		}
	}
	for _, m := range editAreaRE.FindAllStringSubmatch(form, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	for _, m := range editSelectRE.FindAllStringSubmatch(form, -1) {
		if sel := editSelectedRE.FindStringSubmatch(m[2]); sel != nil {
			v.Set(m[1], html.UnescapeString(sel[1]))
		}
	}
	return form, v
}

// TestConsoleClientEdit: the client's page has an edit form with its
// settings; a post changes what differs (an absent checkbox is off),
// audited via the console; the domain's refusal keeps what was typed and
// changes nothing; a client of the file, a cross-site or non-form post, a
// user and a bearer token change nothing.
func TestConsoleClientEdit(t *testing.T) {
	g := startConsoleOps(t, clientsYAML, nil)
	user := g.user(t, "clientedit")
	cl := g.createClient(t, map[string]any{"name": "Edit me", "type": "confidential", "redirect_uris": []string{"https://app.example/cb"},
		"scopes": []string{"openid", "profile"}, "logo_url": "https://app.example/logo.png"})
	id := cl.ClientID
	path := "/admin/clients/" + id + "/edit"
	state := func() (oauthClient, map[string]any) {
		t.Helper()
		r := g.get(t, "/v1/admin/clients/"+id, bearer(g.root.Access))
		return decodeClient(t, "GET /v1/admin/clients/"+id, r, http.StatusOK), r.JSON(t)
	}
	updates := func() int { return len(g.auditLog(t, url.Values{"type": {"oauth.client.updated"}})) }

	// The form: every control labelled, its hints there, the client's
	// settings filled in.
	page := g.opsPage(t, "/admin/clients/"+id)
	if strings.Contains(page, `<details class="create" open>`) {
		t.Error("the edit form shows unfolded on a plain visit")
	}
	form, vals := clientEditForm(t, page, id)
	controls := editControlRE.FindAllString(form, -1)
	if len(controls) < 12 {
		t.Fatalf("the edit form has %d controls, want every setting's: %q", len(controls), controls)
	}
	for _, c := range controls {
		m := editIDRE.FindStringSubmatch(c)
		if m == nil || !strings.Contains(form, `<label for="`+m[1]+`">`) && !strings.Contains(form, `for="`+m[1]+`"><input`) {
			t.Errorf("a control of the edit form has no label: %s", c)
		}
	}
	descs := editDescRE.FindAllStringSubmatch(form, -1)
	if len(descs) < 4 {
		t.Errorf("the edit form's hints: %q, want the redirect URIs', scopes', logo's and PKCE's", descs)
	}
	for _, d := range descs {
		if !strings.Contains(form, `<p class="hint" id="`+d[1]+`">`) {
			t.Errorf("aria-describedby=%q names no hint of the form", d[1])
		}
	}
	want := url.Values{"name": {"Edit me"}, "redirect_uris": {"https://app.example/cb"}, "post_logout_redirect_uris": {""},
		"grant_authorization_code": {"1"}, "grant_refresh_token": {"1"}, "scopes": {"openid profile"},
		"token_endpoint_auth_method": {"client_secret_basic"}, "id_token_alg": {""}, "logo_url": {"https://app.example/logo.png"},
		"require_pkce": {"1"}}
	if vals.Encode() != want.Encode() {
		t.Fatalf("the edit form sends, as it shows:\n%s\nwant the client's settings:\n%s", vals.Encode(), want.Encode())
	}

	// The form sent as it is changes nothing.
	before := updates()
	r := g.consolePost(t, path, vals)
	if loc := r.Header.Get("Location"); r.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/clients/"+id+"?notice=") {
		t.Fatalf("the unchanged form: %d to %q, want 303 back to the client's page", r.Status, loc)
	}
	if n := updates(); n != before {
		t.Fatalf("the unchanged form was saved (%d oauth.client.updated events, want %d)", n, before)
	}

	// Edit: a name, a second redirect URI (a browser sends CRLF), first
	// party on, PKCE off (its checkbox left out).
	edit := url.Values{}
	for k, v := range vals {
		edit[k] = slices.Clone(v)
	}
	edit.Set("name", "Edited app")
	edit.Set("redirect_uris", "https://app.example/cb\r\nhttps://app.example/cb2\r\n")
	edit.Set("first_party", "1")
	edit.Del("require_pkce")
	r = g.consolePost(t, path, edit)
	loc := r.Header.Get("Location")
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/clients/"+id+"?notice=") {
		t.Fatalf("edit: %d to %q, want 303 back to the client's page with a notice (%.300s)", r.Status, loc, r.Body)
	}
	done := g.opsPage(t, loc)
	if !strings.Contains(done, `<p class="msg notice" role="status">Client saved.</p>`) || !strings.Contains(done, `value="Edited app"`) {
		t.Fatalf("the page after the edit lacks the notice or the new name:\n%s", done)
	}
	got, raw := state()
	if got.Name != "Edited app" || !slices.Equal(got.RedirectURIs, []string{"https://app.example/cb", "https://app.example/cb2"}) ||
		!got.FirstParty || got.RequirePKCE {
		t.Fatalf("after the edit the API shows %+v, want the new name, both redirect URIs, first party and no PKCE", got)
	}
	if !slices.Equal(got.Scopes, []string{"openid", "profile"}) || !slices.Equal(got.GrantTypes, []string{"authorization_code", "refresh_token"}) ||
		got.TokenEndpointAuthMethod != "client_secret_basic" || raw["logo_url"] != "https://app.example/logo.png" {
		t.Fatalf("the edit changed settings it left as they were: %+v (logo %v)", got, raw["logo_url"])
	}
	ev := g.wantConsoleAudit(t, "oauth.client.updated", func(d map[string]any) bool { return d["client_id"] == id })
	changed, _ := ev.Details["changed"].([]any)
	if ev.UserID != g.root.ID || !slices.Equal(changed, []any{"name", "redirect_uris", "first_party", "require_pkce"}) {
		t.Fatalf("oauth.client.updated by %s, changed %v: want root and name, redirect_uris, first_party, require_pkce", ev.UserID, ev.Details["changed"])
	}
	before = updates()

	// What the domain refuses: the page again with the reason, the form
	// open with what was sent, and nothing changed.
	for _, c := range []struct {
		what, uris, reason string
		grants             bool
	}{
		{"a javascript: redirect URI", "javascript:alert(1)", "private-use scheme must be in reverse domain notation", true},
		{"a relative redirect URI", "/relative/cb", "must be absolute", true},
		{"no grant type", "https://app.example/cb", "Choose at least one grant type.", false},
	} {
		bad := url.Values{}
		for k, v := range edit {
			bad[k] = slices.Clone(v)
		}
		bad.Set("name", "Should not stick")
		bad.Set("redirect_uris", c.uris)
		if !c.grants {
			bad.Del("grant_authorization_code")
			bad.Del("grant_refresh_token")
		}
		refused := fullPost(t, g, path, bad, http.StatusUnprocessableEntity)
		alert := regexp.MustCompile(`<p class="msg error" role="alert">([^<]*)</p>`).FindStringSubmatch(refused)
		if alert == nil || !strings.Contains(html.UnescapeString(alert[1]), c.reason) {
			t.Errorf("%s: the page's alert %q, want %q", c.what, alert, c.reason)
		}
		_, kept := clientEditForm(t, refused, id)
		if kept.Get("name") != "Should not stick" || kept.Get("redirect_uris") != c.uris || kept.Has("grant_authorization_code") != c.grants ||
			!kept.Has("first_party") || kept.Has("require_pkce") || !strings.Contains(refused, `<details class="create" open>`) {
			t.Errorf("%s: the form does not come back open with what was sent: %s", c.what, kept.Encode())
		}
		if c.grants && !strings.Contains(refused, `name="redirect_uris" rows="3" spellcheck="false" aria-describedby="edit-redirects-hint" aria-invalid="true"`) {
			t.Errorf("%s: the redirect URIs are not marked invalid", c.what)
		}
		if got, _ := state(); got.Name != "Edited app" || len(got.RedirectURIs) != 2 {
			t.Fatalf("%s changed the client: %+v", c.what, got)
		}
	}

	t.Run("Refused", func(t *testing.T) {
		for _, c := range []struct {
			what   string
			r      func() int
			status int
		}{
			{"a cross-site post", func() int { return g.send(t, http.MethodPost, path, edit, g.cookie(g.root), crossSite).Status }, http.StatusForbidden},
			{"a user's post", func() int { return g.consoleSubmit(t, user, path, edit).Status }, http.StatusForbidden},
			{"a post with the admin's access token", func() int { return g.send(t, http.MethodPost, path, edit, bearer(g.root.Access)).Status }, http.StatusForbidden},
			{"a JSON body", func() int {
				return g.send(t, http.MethodPost, path, `{"name":"JSON app"}`, g.cookie(g.root), g.sameOrigin()).Status
			}, http.StatusUnsupportedMediaType},
			{"an unknown client", func() int { return g.consoleSubmit(t, g.root, "/admin/clients/nonexistent/edit", edit).Status }, http.StatusNotFound},
		} {
			if st := c.r(); st != c.status {
				t.Errorf("%s: %d, want %d", c.what, st, c.status)
			}
		}
		if got, _ := state(); got.Name != "Edited app" {
			t.Fatalf("a refused post renamed the client to %q", got.Name)
		}
	})

	t.Run("FromConfigReadOnly", func(t *testing.T) {
		view := g.opsPage(t, "/admin/clients/from-config")
		if strings.Contains(view, "/edit\"") || strings.Contains(view, "Edit client") {
			t.Fatal("the page of a client of the configuration file offers the edit form")
		}
		r := g.consoleSubmit(t, g.root, "/admin/clients/from-config/edit", url.Values{"name": {"Renamed"}, "redirect_uris": {"https://config.example/cb"}, "grant_authorization_code": {"1"}})
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "configuration file") {
			t.Fatalf("an edit of a client of the file: %s, want 409 saying it is read-only", r)
		}
		if got := decodeClient(t, "GET from-config", g.get(t, "/v1/admin/clients/from-config", bearer(g.root.Access)), http.StatusOK); got.Name != "From the file" {
			t.Fatalf("the client of the file was renamed to %q", got.Name)
		}
	})

	if n := updates(); n != before {
		t.Fatalf("refused edits were audited as oauth.client.updated (%d events, want %d)", n, before)
	}
}

// TestConsoleClientEditNeedsStepUp: an edit with a sign-in older than
// GATEHOUSE_STEP_UP_MAX_AGE goes to the step-up page, which comes back to
// the client, and is not done until then.
func TestConsoleClientEditNeedsStepUp(t *testing.T) {
	g := startConsoleOps(t, baseYAML, map[string]string{"GATEHOUSE_STEP_UP_MAX_AGE": "2s"})
	cl := g.createClient(t, map[string]any{"name": "Step up", "type": "public", "redirect_uris": []string{"https://spa.example/cb"}})
	id, back := cl.ClientID, "/admin/clients/"+cl.ClientID
	_, vals := clientEditForm(t, g.opsPage(t, back), cl.ClientID)
	vals.Set("name", "Stepped up")
	name := func() string {
		t.Helper()
		return decodeClient(t, "GET client", g.get(t, "/v1/admin/clients/"+id, bearer(g.root.Access)), http.StatusOK).Name
	}

	time.Sleep(2100 * time.Millisecond)
	r := g.consoleSubmit(t, g.root, back+"/edit", vals)
	if want := "/admin/step-up?return_to=" + back; r.Status != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("an edit with an old sign-in: %s (Location %q), want 303 to %s", r, r.Header.Get("Location"), want)
	}
	if n := name(); n != "Step up" {
		t.Fatalf("an edit without step-up renamed the client to %q", n)
	}
	s := g.send(t, http.MethodPost, "/admin/step-up", url.Values{"password": {password}, "return_to": {back}}, g.cookie(g.root), g.sameOrigin())
	if s.Status != http.StatusSeeOther || s.Header.Get("Location") != back {
		t.Fatalf("step-up: %s to %q, want 303 back to %s", s, s.Header.Get("Location"), back)
	}
	if r := g.consolePost(t, back+"/edit", vals); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), back+"?notice=") {
		t.Fatalf("the edit after step-up: %d to %q", r.Status, r.Header.Get("Location"))
	}
	if n := name(); n != "Stepped up" {
		t.Fatalf("after step-up the client is named %q, want Stepped up", n)
	}
	g.wantConsoleAudit(t, "oauth.client.updated", func(d map[string]any) bool { return d["client_id"] == id })
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
