package httptest_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/webhook"
)

var (
	deliveryRowRE     = regexp.MustCompile(`data-label="Message"><code>([^<]+)</code>`)
	olderDeliveriesRE = regexp.MustCompile(`href="([^"]+)" rel="next">Older deliveries</a>`)
	configHookRE      = regexp.MustCompile(`<a href="/admin/webhooks/([^"]+)"><code>https://hooks.example.com/from-config</code></a>`)
)

// deliveryPage reads an endpoint page's delivery log: the message ids and
// the link to older ones.
func deliveryPage(t *testing.T, g *gh, path string) (ids []string, older string) {
	t.Helper()
	body := g.opsPage(t, path)
	for _, m := range deliveryRowRE.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	if m := olderDeliveriesRE.FindStringSubmatch(body); m != nil {
		older = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return ids, older
}

// testQueued is the notice after "Send a test event".
var testQueued = regexp.MustCompile(`A webhook\.test event is queued \((msg_[0-9A-Za-z]+)\)`)

func TestConsoleWebhooks(t *testing.T) {
	g := startConsoleOps(t, webhooksYAML, map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true"})
	user := g.user(t, "consolewebhooks")
	rc := newHookReceiver(t)

	list := g.opsPage(t, "/admin/webhooks")
	for _, want := range []string{"<h1>Webhooks</h1>", "from the file", "Configuration file (read-only)", `data-label="State"`,
		`<span class="badge ok">Enabled</span>`, `<label for="webhook-url">`, "Register endpoint"} {
		if !strings.Contains(list, want) {
			t.Errorf("the webhooks page lacks %q", want)
		}
	}
	cfg := configHookRE.FindStringSubmatch(list)
	if cfg == nil {
		t.Fatal("the webhooks page does not link the file's endpoint")
	}

	// Refused registration: the form comes back open with the reason.
	refused := fullPost(t, g, "/admin/webhooks", url.Values{"url": {"ftp://x.example.com/"}, "all": {"1"}, "enabled": {"1"}}, http.StatusUnprocessableEntity)
	if !strings.Contains(refused, `role="alert"`) || !strings.Contains(refused, `value="ftp://x.example.com/"`) || !strings.Contains(refused, `<details class="create" open>`) {
		t.Fatalf("an ftp endpoint: want the form again with the reason:\n%s", refused)
	}

	// Register: the signing secret on the answer, once.
	page := fullPost(t, g, "/admin/webhooks", url.Values{"url": {rc.URL + "/in"}, "events": {"user.created", "login.failed"},
		"description": {"console receiver"}, "enabled": {"1"}}, http.StatusOK)
	m := secretShown.FindStringSubmatch(page)
	if m == nil || !strings.HasPrefix(m[1], "whsec_") {
		t.Fatalf("the registration's answer shows no whsec_ secret:\n%s", page)
	}
	m[1] = html.UnescapeString(m[1])
	key, err := webhook.ParseSecret(m[1])
	if err != nil {
		t.Fatal(err)
	}
	created := g.wantConsoleAudit(t, "webhook.endpoint.created", func(d map[string]any) bool { return d["url"] == rc.URL+"/in" })
	id, _ := created.Details["endpoint_id"].(string)
	if id == "" || created.UserID != g.root.ID {
		t.Fatalf("webhook.endpoint.created %+v", created)
	}
	if ev := created.Details["events"]; len(ev.([]any)) != 2 {
		t.Fatalf("the endpoint subscribes to %v, want the two types chosen", ev)
	}
	hookPage := "/admin/webhooks/" + id
	view := g.opsPage(t, hookPage)
	if strings.Contains(view, "whsec_") || !strings.Contains(view, "console receiver") || !strings.Contains(view, "Send a test event") {
		t.Fatal("the endpoint's page shows its secret, or lacks its settings and actions")
	}

	// Send a test event: queued, delivered signed with the secret shown,
	// and in the delivery log.
	sendTest := func() string {
		t.Helper()
		r := g.consoleSubmit(t, g.root, hookPage+"/test", url.Values{})
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), hookPage+"?notice=") {
			t.Fatalf("send a test event: %s (Location %q)", r, r.Header.Get("Location"))
		}
		// The notice travels sealed: the page it leads to shows it.
		page := g.get(t, r.Header.Get("Location"), g.cookie(g.root))
		m := testQueued.FindStringSubmatch(string(page.Body))
		if page.Status != http.StatusOK || m == nil {
			t.Fatalf("the endpoint's page after a test event: %d, its notice names no message", page.Status)
		}
		return m[1]
	}
	first := sendTest()
	hit, n := rc.wait(t, 0, "webhook.test", func(h hookHit) bool { return h.Header.Get("webhook-id") == first })
	if err := webhook.Verify(key, hit.Header, hit.Body, 0, time.Now()); err != nil || hit.Type != "webhook.test" {
		t.Fatalf("the test delivery (%s) does not verify with the secret shown: %v", hit.Type, err)
	}
	g.wantConsoleAudit(t, "webhook.endpoint.tested", func(d map[string]any) bool { return d["message_id"] == first })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ids, _ := deliveryPage(t, g, hookPage+"?status=delivered"); slices.Contains(ids, first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the test delivery does not show as delivered within 5 s")
		}
	}
	if ids, _ := deliveryPage(t, g, hookPage+"?status=failed"); len(ids) != 0 {
		t.Fatalf("failed deliveries: %q, want none", ids)
	}
	if r := g.get(t, hookPage+"?status=exploded", g.cookie(g.root)); r.Status != http.StatusBadRequest {
		t.Fatalf("an unknown state filter: %s, want 400", r)
	}

	// The log, newest first, a page at a time.
	second, third := sendTest(), sendTest()
	var got []string
	next := hookPage + "?limit=1"
	for next != "" && len(got) < 10 {
		ids, older := deliveryPage(t, g, next)
		if len(ids) != 1 {
			t.Fatalf("a page of 1 holds %q", ids)
		}
		got, next = append(got, ids...), older
	}
	if !slices.Equal(got, []string{third, second, first}) {
		t.Fatalf("the delivery log by pages of 1: %q, want %q", got, []string{third, second, first})
	}
	_, older := deliveryPage(t, g, hookPage+"?limit=1")
	if r := g.get(t, strings.Replace(older, "cursor=", "cursor=A", 1), g.cookie(g.root)); r.Status != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "page link is not valid") {
		t.Fatalf("a changed delivery-log cursor: %s, want 400", r)
	}

	// Send a delivery again: the same webhook-id reaches the receiver once
	// more.
	r := g.consoleSubmit(t, g.root, hookPage+"/deliveries/"+first+"/retry", url.Values{})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("send a delivery again: %s", r)
	}
	rc.wait(t, n+1, "the retried test", func(h hookHit) bool { return h.Header.Get("webhook-id") == first })
	g.wantConsoleAudit(t, "webhook.delivery.retried", func(d map[string]any) bool { return d["message_id"] == first && d["endpoint_id"] == id })

	// Disable, and nothing is sent; enable again.
	if r := g.consoleSubmit(t, g.root, hookPage+"/disable", url.Values{}); r.Status != http.StatusSeeOther {
		t.Fatalf("disable: %s", r)
	}
	g.wantConsoleAudit(t, "webhook.endpoint.updated", func(d map[string]any) bool { return d["enabled"] == false && d["endpoint_id"] == id })
	if v := g.opsPage(t, hookPage); !strings.Contains(v, `<span class="badge warn">Disabled</span> by an administrator`) || strings.Contains(v, "Send a test event") {
		t.Fatal("the disabled endpoint's page does not say so, or offers a test")
	}
	for _, p := range []string{hookPage + "/test", hookPage + "/deliveries/" + first + "/retry"} {
		if r := g.consoleSubmit(t, g.root, p, url.Values{}); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "enable it first") {
			t.Errorf("POST %s to a disabled endpoint: %s, want 409", p, r)
		}
	}
	if r := g.consoleSubmit(t, g.root, hookPage+"/enable", url.Values{}); r.Status != http.StatusSeeOther {
		t.Fatalf("enable: %s", r)
	}
	g.wantConsoleAudit(t, "webhook.endpoint.updated", func(d map[string]any) bool { return d["enabled"] == true && d["endpoint_id"] == id })
	if !strings.Contains(g.opsPage(t, hookPage), `<span class="badge ok">Enabled</span>`) {
		t.Fatal("the enabled endpoint's page does not say so")
	}

	// Rotate: a new secret, shown once; deliveries verify with it.
	rot := fullPost(t, g, hookPage+"/secret", url.Values{}, http.StatusOK)
	nm := secretShown.FindStringSubmatch(rot)
	if nm == nil || nm[1] == m[1] || !strings.HasPrefix(nm[1], "whsec_") {
		t.Fatalf("rotation shows no new secret:\n%s", rot)
	}
	g.wantConsoleAudit(t, "webhook.endpoint.updated", func(d map[string]any) bool { return d["secret_rotated"] == true })
	newKey, err := webhook.ParseSecret(html.UnescapeString(nm[1]))
	if err != nil {
		t.Fatal(err)
	}
	after := sendTest()
	hit, _ = rc.wait(t, 0, "the test after rotation", func(h hookHit) bool { return h.Header.Get("webhook-id") == after })
	if err := webhook.Verify(newKey, hit.Header, hit.Body, 0, time.Now()); err != nil {
		t.Fatalf("a delivery after rotation does not verify with the new secret: %v", err)
	}

	t.Run("FromConfigReadOnly", func(t *testing.T) {
		p := "/admin/webhooks/" + cfg[1]
		v := g.opsPage(t, p)
		if !strings.Contains(v, "Read-only here") || strings.Contains(v, "Rotate secret") || strings.Contains(v, "Disable</button>") {
			t.Fatal("the file's endpoint offers changes")
		}
		for _, a := range []string{"/disable", "/secret", "/delete"} {
			if r := g.consoleSubmit(t, g.root, p+a, url.Values{}); r.Status != http.StatusConflict {
				t.Errorf("POST %s%s: %s, want 409", p, a, r)
			}
		}
	})

	t.Run("Refused", func(t *testing.T) {
		before := len(g.auditLog(t, url.Values{"type": {"webhook.endpoint.created"}}))
		for _, p := range []string{"/admin/webhooks", hookPage + "/disable", hookPage + "/enable", hookPage + "/secret", hookPage + "/test",
			hookPage + "/delete", hookPage + "/deliveries/" + first + "/retry"} {
			f := url.Values{"url": {rc.URL + "/other"}, "all": {"1"}, "enabled": {"1"}}
			if r := g.send(t, http.MethodPost, p, f, g.cookie(g.root), crossSite); r.Status != http.StatusForbidden {
				t.Errorf("a cross-site POST %s: %s, want 403", p, r)
			}
			if r := g.consoleSubmit(t, user, p, f); r.Status != http.StatusForbidden {
				t.Errorf("POST %s as a user: %s, want 403", p, r)
			}
		}
		for _, p := range []string{"/admin/webhooks", hookPage, hookPage + "/delete"} {
			if r := g.get(t, p, g.cookie(user)); r.Status != http.StatusForbidden {
				t.Errorf("GET %s as a user: %s, want 403", p, r)
			}
		}
		if after := len(g.auditLog(t, url.Values{"type": {"webhook.endpoint.created"}})); after != before {
			t.Fatal("a refused post registered an endpoint")
		}
		if !strings.Contains(g.opsPage(t, hookPage), `<span class="badge ok">Enabled</span>`) {
			t.Fatal("a refused post changed the endpoint")
		}
	})

	// Delete: a confirmation page, then the post.
	confirm := g.opsPage(t, hookPage+"/delete")
	if !strings.Contains(confirm, "Delete this endpoint?") || !strings.Contains(confirm, `action="`+hookPage+`/delete"`) {
		t.Fatal("the delete confirmation page does not ask")
	}
	r = g.consoleSubmit(t, g.root, hookPage+"/delete", url.Values{})
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/admin/webhooks?notice=") {
		t.Fatalf("delete: %s (Location %q)", r, r.Header.Get("Location"))
	}
	if r := g.get(t, hookPage, g.cookie(g.root)); r.Status != http.StatusNotFound {
		t.Fatalf("the deleted endpoint's page: %s, want 404", r)
	}
	g.wantConsoleAudit(t, "webhook.endpoint.deleted", func(d map[string]any) bool { return d["endpoint_id"] == id })
}

var (
	pageInputRE   = regexp.MustCompile(`<input [^>]*>`)
	inputIDRE     = regexp.MustCompile(` id="([^"]+)"`)
	describedByRE = regexp.MustCompile(`aria-describedby="([^"]+)"`)
)

// editCheckbox reports whether the edit form's checkbox for value (an
// event type, or "1" for "all") is on the page, and checked.
func editCheckbox(page, id string) (present, checked bool) {
	m := regexp.MustCompile(`<input id="` + regexp.QuoteMeta(id) + `" type="checkbox"[^>]*>`).FindString(page)
	return m != "", strings.HasSuffix(m, " checked>")
}

// apiHook reads an endpoint through the admin API as root.
func (g *gh) apiHook(t *testing.T, id string) (raw, hookURL string, events []string, desc string, enabled bool) {
	t.Helper()
	r := g.get(t, "/v1/admin/webhooks/"+id, bearer(g.root.Access))
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/admin/webhooks/%s: %s", id, r)
	}
	var b struct {
		URL         string   `json:"url"`
		Events      []string `json:"events"`
		Description string   `json:"description"`
		Enabled     bool     `json:"enabled"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	return string(r.Body), b.URL, b.Events, b.Description, b.Enabled
}

// newAPIHook registers an endpoint through the admin API and returns its id.
func (g *gh) newAPIHook(t *testing.T, hookURL, desc string, events ...string) string {
	t.Helper()
	r := g.send(t, http.MethodPost, "/v1/admin/webhooks", map[string]any{"url": hookURL, "events": events, "description": desc}, bearer(g.root.Access))
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/admin/webhooks: %s", r)
	}
	return str(t, r.JSON(t), "id")
}

// TestConsoleWebhookEdit: an endpoint's page edits its URL, description
// and events (as PATCH /v1/admin/webhooks/{id} does, audited as a console
// action); a refused value comes back with the reason and the form as
// sent; the file's endpoints have no form and refuse the post; a
// cross-site post, a user's post and a body that is not a form change
// nothing; an old sign-in steps up first.
func TestConsoleWebhookEdit(t *testing.T) {
	g := startConsoleOps(t, webhooksYAML, nil)
	user := g.user(t, "consolewebhookedit")
	id := g.newAPIHook(t, "https://a.example.com/in", "before", "user.created")
	hookPage := "/admin/webhooks/" + id
	edit := hookPage + "/edit"

	// The form, filled with the endpoint's settings; every input labelled,
	// every hint there.
	view := g.opsPage(t, hookPage)
	for _, want := range []string{`<summary>Edit endpoint</summary>`, `action="` + edit + `"`,
		`<input id="webhook-edit-url" name="url" type="url" value="https://a.example.com/in"`,
		`<input id="webhook-edit-desc" name="description" type="text" value="before"`} {
		if !strings.Contains(view, want) {
			t.Errorf("the endpoint's page lacks %q", want)
		}
	}
	if strings.Contains(view, `<details class="create" open>`) || strings.Contains(view, `name="enabled"`) {
		t.Error("the edit form is open before any post, or has an enabled field")
	}
	inputs := pageInputRE.FindAllString(view, -1)
	if len(inputs) < 4 {
		t.Fatalf("the endpoint's page has %d inputs, want the edit form's", len(inputs))
	}
	for _, in := range inputs {
		m := inputIDRE.FindStringSubmatch(in)
		if m == nil || !strings.Contains(view, `<label for="`+m[1]+`"`) && !strings.Contains(view, `<label class="check" for="`+m[1]+`"`) {
			t.Errorf("no <label for> for %s", in)
		}
	}
	for _, m := range describedByRE.FindAllStringSubmatch(view, -1) {
		for _, ref := range strings.Fields(m[1]) {
			if !strings.Contains(view, ` id="`+ref+`"`) {
				t.Errorf("aria-describedby %q: no element has that id", ref)
			}
		}
	}
	for box, want := range map[string]bool{"webhook-edit-all": false, "webhook-edit-event-user.created": true,
		"webhook-edit-event-password.changed": false, "webhook-edit-event-login.failed": false} {
		if present, checked := editCheckbox(view, box); !present || checked != want {
			t.Errorf("checkbox %s: present %v, checked %v; want checked %v", box, present, checked, want)
		}
	}

	// Save: back to the page with a notice; the API reads the new
	// settings; audited as the admin's console action.
	save := func(form url.Values) {
		t.Helper()
		r := g.consoleSubmit(t, g.root, edit, form)
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), hookPage+"?notice=") {
			t.Fatalf("save the endpoint: %s (Location %q)", r, r.Header.Get("Location"))
		}
		if page := g.get(t, r.Header.Get("Location"), g.cookie(g.root)); page.Status != http.StatusOK || !strings.Contains(string(page.Body), "The endpoint is saved.") {
			t.Fatalf("the page after saving: %s, want the notice", page)
		}
	}
	save(url.Values{"url": {" https://b.example.com/hook?x=1 "}, "description": {"after"}, "events": {"password.changed", "login.failed"}})
	_, gotURL, events, desc, enabled := g.apiHook(t, id)
	if gotURL != "https://b.example.com/hook?x=1" || desc != "after" || !slices.Equal(events, []string{"password.changed", "login.failed"}) || !enabled {
		t.Fatalf("after the edit the API reads %q %q %q enabled %v", gotURL, desc, events, enabled)
	}
	up := g.wantConsoleAudit(t, "webhook.endpoint.updated", func(d map[string]any) bool {
		return d["endpoint_id"] == id && d["url"] == "https://b.example.com/hook?x=1"
	})
	if ev, _ := up.Details["events"].([]any); len(ev) != 2 {
		t.Fatalf("webhook.endpoint.updated details %v, want the two types", up.Details)
	}
	view = g.opsPage(t, hookPage)
	if !strings.Contains(view, `name="url" type="url" value="https://b.example.com/hook?x=1"`) || !strings.Contains(view, `name="description" type="text" value="after"`) {
		t.Error("the form does not show the new URL and description")
	}
	for box, want := range map[string]bool{"webhook-edit-event-user.created": false, "webhook-edit-event-password.changed": true, "webhook-edit-event-login.failed": true} {
		if _, checked := editCheckbox(view, box); checked != want {
			t.Errorf("after the edit, checkbox %s checked %v, want %v", box, checked, want)
		}
	}

	// The same settings again (events in another order): nothing written,
	// nothing audited.
	updates := len(g.auditLog(t, url.Values{"type": {"webhook.endpoint.updated"}}))
	r := g.consoleSubmit(t, g.root, edit, url.Values{"url": {"https://b.example.com/hook?x=1"}, "description": {"after"}, "events": {"login.failed", "password.changed"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("saving an unchanged form: %s", r)
	}
	if page := g.get(t, r.Header.Get("Location"), g.cookie(g.root)); !strings.Contains(string(page.Body), "Nothing to save") {
		t.Errorf("the page after saving an unchanged form: %s, want \"Nothing to save\"", page)
	}
	if n := len(g.auditLog(t, url.Values{"type": {"webhook.endpoint.updated"}})); n != updates {
		t.Errorf("saving an unchanged form wrote %d webhook.endpoint.updated events", n-updates)
	}

	// A disabled endpoint stays disabled through an edit; "*" and an empty
	// description.
	if r := g.consoleSubmit(t, g.root, hookPage+"/disable", url.Values{}); r.Status != http.StatusSeeOther {
		t.Fatalf("disable: %s", r)
	}
	save(url.Values{"url": {"https://b.example.com/hook?x=1"}, "description": {""}, "all": {"1"}})
	_, _, events, desc, enabled = g.apiHook(t, id)
	if !slices.Equal(events, []string{"*"}) || desc != "" || enabled {
		t.Fatalf("after the second edit the API reads %q %q enabled %v, want [*], no description, still disabled", events, desc, enabled)
	}
	if _, checked := editCheckbox(g.opsPage(t, hookPage), "webhook-edit-all"); !checked {
		t.Error(`the form does not show "*" checked`)
	}

	// Refused values: 422, the reason, the form open as sent; nothing
	// changed or audited.
	before, _, _, _, _ := g.apiHook(t, id)
	updates = len(g.auditLog(t, url.Values{"type": {"webhook.endpoint.updated"}}))
	for _, c := range []struct {
		name string
		form url.Values
		why  string
	}{
		{"ftp", url.Values{"url": {"ftp://x.example.com/"}, "description": {"kept text"}, "events": {"user.deleted"}}, "must be an absolute https URL"},
		{"user info", url.Values{"url": {"https://me:pw@x.example.com/"}, "description": {"kept text"}, "events": {"user.deleted"}}, "must not contain user info"},
		{"unknown event", url.Values{"url": {"https://x.example.com/"}, "description": {"kept text"}, "events": {"user.deleted", "no.such.event"}}, "unknown event type"},
		{"no events", url.Values{"url": {"https://x.example.com/"}, "description": {"kept text"}}, "at least one event type"},
	} {
		page := fullPost(t, g, edit, c.form, http.StatusUnprocessableEntity)
		if !regexp.MustCompile(`(?i)<p class="msg error" role="alert">[^<]*` + regexp.QuoteMeta(c.why)).MatchString(page) {
			t.Errorf("%s: the page does not say %q:\n%s", c.name, c.why, page)
		}
		if !strings.Contains(page, `<details class="create" open>`) || !strings.Contains(page, `name="url" type="url" value="`+html.EscapeString(c.form.Get("url"))+`"`) ||
			!strings.Contains(page, `name="description" type="text" value="kept text"`) {
			t.Errorf("%s: the form does not come back open with the values sent", c.name)
		}
		if _, checked := editCheckbox(page, "webhook-edit-event-user.deleted"); c.form.Has("events") != checked {
			t.Errorf("%s: user.deleted checked %v, want it as sent", c.name, checked)
		}
		if _, checked := editCheckbox(page, "webhook-edit-all"); checked {
			t.Errorf("%s: the form shows the endpoint's * instead of what was sent", c.name)
		}
	}
	if after, _, _, _, _ := g.apiHook(t, id); after != before {
		t.Fatalf("a refused edit changed the endpoint:\n%s\nwas\n%s", after, before)
	}
	if n := len(g.auditLog(t, url.Values{"type": {"webhook.endpoint.updated"}})); n != updates {
		t.Fatalf("%d webhook.endpoint.updated events after refused edits, want %d", n, updates)
	}

	t.Run("FromConfigReadOnly", func(t *testing.T) {
		cfg := configHookRE.FindStringSubmatch(g.opsPage(t, "/admin/webhooks"))
		if cfg == nil {
			t.Fatal("the webhooks page does not link the file's endpoint")
		}
		p := "/admin/webhooks/" + cfg[1]
		if v := g.opsPage(t, p); strings.Contains(v, "Edit endpoint") || strings.Contains(v, `action="`+p+`/edit"`) || strings.Contains(v, `name="url"`) {
			t.Fatal("the file's endpoint offers the edit form")
		}
		was, _, _, _, _ := g.apiHook(t, cfg[1])
		r := g.consoleSubmit(t, g.root, p+"/edit", url.Values{"url": {"https://other.example.com/"}, "events": {"user.deleted"}})
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "configuration file") {
			t.Fatalf("edit the file's endpoint: %s, want 409 saying why", r)
		}
		if now, _, _, _, _ := g.apiHook(t, cfg[1]); now != was {
			t.Fatal("the refused post changed the file's endpoint")
		}
	})

	t.Run("Refused", func(t *testing.T) {
		f := url.Values{"url": {"https://evil.example.com/"}, "all": {"1"}}
		if r := g.send(t, http.MethodPost, edit, f, g.cookie(g.root), crossSite); r.Status != http.StatusForbidden {
			t.Errorf("a cross-site edit: %s, want 403", r)
		}
		if r := g.consoleSubmit(t, user, edit, f); r.Status != http.StatusForbidden {
			t.Errorf("an edit by a user: %s, want 403", r)
		}
		if r := g.send(t, http.MethodPost, edit, f, bearer(g.root.Access)); r.Status != http.StatusForbidden {
			t.Errorf("an edit with the admin's access token: %s, want 403", r)
		}
		if r := g.send(t, http.MethodPost, edit, `{"url":"https://evil.example.com/","events":["*"]}`, g.cookie(g.root), g.sameOrigin()); r.Status != http.StatusUnsupportedMediaType {
			t.Errorf("an edit with a JSON body: %s, want 415", r)
		}
		if r := g.consoleSubmit(t, g.root, "/admin/webhooks/nonexistent/edit", f); r.Status != http.StatusNotFound {
			t.Errorf("an edit of an endpoint that does not exist: %s, want 404", r)
		}
		if after, _, _, _, _ := g.apiHook(t, id); after != before {
			t.Fatalf("a refused post changed the endpoint:\n%s\nwas\n%s", after, before)
		}
	})
}

// An edit with an old sign-in is sent to the step-up page, which comes
// back to the endpoint's page; nothing is changed until then.
func TestConsoleWebhookEditNeedsStepUp(t *testing.T) {
	g := startConsoleOps(t, webhooksYAML, map[string]string{"GATEHOUSE_STEP_UP_MAX_AGE": "2s"})
	id := g.newAPIHook(t, "https://a.example.com/in", "before", "user.created")
	hookPage := "/admin/webhooks/" + id
	before, _, _, _, _ := g.apiHook(t, id)
	time.Sleep(2100 * time.Millisecond)
	form := url.Values{"url": {"https://late.example.com/"}, "description": {"late"}, "events": {"user.deleted"}}
	r := g.consoleSubmit(t, g.root, hookPage+"/edit", form)
	if want := "/admin/step-up?return_to=" + hookPage; r.Status != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("an edit with an old sign-in: %s (Location %q), want 303 to %s", r, r.Header.Get("Location"), want)
	}
	if after, _, _, _, _ := g.apiHook(t, id); after != before {
		t.Fatal("an edit without step-up changed the endpoint")
	}
	s := g.send(t, http.MethodPost, "/admin/step-up", url.Values{"password": {password}, "return_to": {hookPage}}, g.cookie(g.root), g.sameOrigin())
	if s.Status != http.StatusSeeOther || s.Header.Get("Location") != hookPage {
		t.Fatalf("step-up: %s to %q, want 303 back to %s", s, s.Header.Get("Location"), hookPage)
	}
	if r := g.consoleSubmit(t, g.root, hookPage+"/edit", form); r.Status != http.StatusSeeOther {
		t.Fatalf("the edit after step-up: %s", r)
	}
	if _, u, ev, d, _ := g.apiHook(t, id); u != "https://late.example.com/" || d != "late" || !slices.Equal(ev, []string{"user.deleted"}) {
		t.Fatalf("after step-up the edit reads %q %q %q", u, d, ev)
	}
	g.wantConsoleAudit(t, "webhook.endpoint.updated", func(d map[string]any) bool { return d["url"] == "https://late.example.com/" })
}
