package httptest_test

import (
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
