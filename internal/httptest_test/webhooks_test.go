package httptest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/testserver"
	"gatehouse/internal/webhook"
)

// The webhook admin API (SPEC §16) on a real server, with deliveries to a
// receiver on 127.0.0.1 (GATEHOUSE_WEBHOOK_ALLOW_PRIVATE).

// webhooksYAML declares one endpoint in the file.
const webhooksYAML = baseYAML + `webhooks:
  - url: https://hooks.example.com/from-config
    events: [user.created]
    description: from the file
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=
`

// hookReceiver records the deliveries it gets and answers 204.
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hookHit
}

type hookHit struct {
	Header http.Header
	Body   []byte
	Type   string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	rc := &hookReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct{ Type string }
		_ = json.Unmarshal(body, &p)
		rc.mu.Lock()
		rc.hits = append(rc.hits, hookHit{Header: r.Header.Clone(), Body: body, Type: p.Type})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// wait returns the first delivery from index from on that match accepts,
// waiting up to 10 s.
func (rc *hookReceiver) wait(t *testing.T, from int, what string, match func(hookHit) bool) (hookHit, int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc.mu.Lock()
		hits := append([]hookHit(nil), rc.hits...)
		rc.mu.Unlock()
		for i := from; i < len(hits); i++ {
			if match(hits[i]) {
				return hits[i], i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s delivery within 10 s; got %d requests", what, len(hits))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type webhookEndpoint struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Enabled     bool     `json:"enabled"`
	FromConfig  bool     `json:"from_config"`
	Secret      string   `json:"secret"`
}

func decodeWebhook(t *testing.T, what string, r *testserver.Response, status int) webhookEndpoint {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %s, want %d", what, r, status)
	}
	var e webhookEndpoint
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("%s: %v: %s", what, err, r.Body)
	}
	return e
}

type deliveryLog struct {
	Deliveries []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		State    string `json:"state"`
		Attempts []struct {
			At              time.Time `json:"at"`
			StatusCode      int       `json:"status_code"`
			DurationMS      int64     `json:"duration_ms"`
			Error           string    `json:"error"`
			ResponseExcerpt string    `json:"response_excerpt"`
		} `json:"attempts"`
	} `json:"deliveries"`
	NextCursor string `json:"next_cursor"`
}

func TestAdminWebhooks(t *testing.T) {
	g := startYAML(t, webhooksYAML, map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true"})
	root := bearer(g.root.Access)
	user := g.user(t, "webhooks")
	_, readKey := g.createKey(t, g.root, "read") // an admin's key without scope admin

	// Admin only.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/v1/admin/webhooks", map[string]any{"url": "https://x.example.com/", "events": []string{"*"}}},
		{http.MethodGet, "/v1/admin/webhooks", nil},
		{http.MethodGet, "/v1/admin/webhooks/x", nil},
		{http.MethodPatch, "/v1/admin/webhooks/x", map[string]any{"description": "x"}},
		{http.MethodDelete, "/v1/admin/webhooks/x", nil},
		{http.MethodPost, "/v1/admin/webhooks/x/secret", nil},
		{http.MethodPost, "/v1/admin/webhooks/x/test", nil},
		{http.MethodGet, "/v1/admin/webhooks/x/deliveries", nil},
		{http.MethodPost, "/v1/admin/webhooks/x/deliveries/msg_x/retry", nil},
	} {
		what := c.method + " " + c.path
		wantProblem(t, what+" without a credential", g.send(t, c.method, c.path, c.body), http.StatusUnauthorized)
		wantProblem(t, what+" as a user", g.send(t, c.method, c.path, c.body, bearer(user.Access)), http.StatusForbidden)
		wantProblem(t, what+" with an admin's key without scope admin", g.send(t, c.method, c.path, c.body, apiKey(readKey)), http.StatusForbidden)
	}

	// Validation: 422 problems naming the member.
	for _, c := range []struct {
		name string
		body map[string]any
		loc  string
	}{
		{"ftp", map[string]any{"url": "ftp://x.example.com/", "events": []string{"*"}}, "body.url"},
		{"user info", map[string]any{"url": "https://u:p@x.example.com/", "events": []string{"*"}}, "body.url"},
		{"unknown event", map[string]any{"url": "https://x.example.com/", "events": []string{"user.exploded"}}, "body.events"},
	} {
		p := wantProblem(t, "POST /v1/admin/webhooks with "+c.name, g.send(t, http.MethodPost, "/v1/admin/webhooks", c.body, root), http.StatusUnprocessableEntity)
		if len(p.Errors) == 0 || p.Errors[0].Location != c.loc {
			t.Errorf("%s: problem %+v, want an error at %s", c.name, p, c.loc)
		}
	}
	wantProblem(t, "POST /v1/admin/webhooks without events", g.send(t, http.MethodPost, "/v1/admin/webhooks", map[string]any{"url": "https://x.example.com/"}, root), http.StatusUnprocessableEntity)

	// Create: the secret in this answer only.
	rc := newHookReceiver(t)
	created := decodeWebhook(t, "POST /v1/admin/webhooks", g.send(t, http.MethodPost, "/v1/admin/webhooks",
		map[string]any{"url": rc.URL + "/in", "events": []string{"user.created"}, "description": "receiver"}, root), http.StatusCreated)
	key, err := webhook.ParseSecret(created.Secret)
	if err != nil || len(key) != 32 || created.ID == "" || !created.Enabled || created.FromConfig {
		t.Fatalf("created %+v (secret: %v, %d bytes)", created, err, len(key))
	}
	for _, path := range []string{"/v1/admin/webhooks", "/v1/admin/webhooks/" + created.ID} {
		r := g.get(t, path, root)
		if r.Status != http.StatusOK || strings.Contains(string(r.Body), created.Secret) || strings.Contains(string(r.Body), `"secret"`) {
			t.Fatalf("GET %s shows a secret (or failed): %s", path, r)
		}
	}
	var list struct {
		Webhooks []webhookEndpoint `json:"webhooks"`
	}
	if err := json.Unmarshal(g.get(t, "/v1/admin/webhooks", root).Body, &list); err != nil {
		t.Fatal(err)
	}
	var cfg *webhookEndpoint
	for i, e := range list.Webhooks {
		if e.FromConfig {
			cfg = &list.Webhooks[i]
		}
	}
	if len(list.Webhooks) != 2 || cfg == nil || cfg.URL != "https://hooks.example.com/from-config" || cfg.Description != "from the file" {
		t.Fatalf("listed %+v, want the file's endpoint and the new one", list.Webhooks)
	}
	// The file's endpoint is read-only here.
	for _, c := range []struct{ method, path string }{
		{http.MethodPatch, "/v1/admin/webhooks/" + cfg.ID},
		{http.MethodDelete, "/v1/admin/webhooks/" + cfg.ID},
		{http.MethodPost, "/v1/admin/webhooks/" + cfg.ID + "/secret"},
	} {
		wantProblem(t, c.method+" of the file's endpoint", g.send(t, c.method, c.path, map[string]any{"description": "x"}, root), http.StatusConflict)
	}
	if r := g.send(t, http.MethodPatch, "/v1/admin/webhooks/"+created.ID, map[string]any{"description": "renamed"}, root); r.Status != http.StatusOK ||
		decodeWebhook(t, "PATCH", r, http.StatusOK).Description != "renamed" {
		t.Fatalf("PATCH: %s", r)
	}

	// A registration is delivered, signed with the secret.
	u := g.register(t, newEmail("webhooks"))
	h, _ := rc.wait(t, 0, "user.created", func(h hookHit) bool { return h.Type == "user.created" && strings.Contains(string(h.Body), u.ID) })
	if err := webhook.Verify(key, h.Header, h.Body, 0, time.Now()); err != nil {
		t.Fatalf("the user.created delivery does not verify: %v", err)
	}
	if ua := h.Header.Get("User-Agent"); !strings.HasPrefix(ua, "Gatehouse/") {
		t.Errorf("User-Agent %q, want Gatehouse/<version>", ua)
	}
	msgID := h.Header.Get("webhook-id")
	logPath := "/v1/admin/webhooks/" + created.ID + "/deliveries"
	deadline := time.Now().Add(5 * time.Second)
	for {
		var dl deliveryLog
		r := g.get(t, logPath, root)
		if err := json.Unmarshal(r.Body, &dl); r.Status != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %s", logPath, r)
		}
		if len(dl.Deliveries) == 1 && dl.Deliveries[0].ID == msgID && dl.Deliveries[0].State == "delivered" &&
			len(dl.Deliveries[0].Attempts) == 1 && dl.Deliveries[0].Attempts[0].StatusCode == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %s; want %s delivered after one 204", logPath, r, msgID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var failed deliveryLog
	if r := g.get(t, logPath+"?status=failed", root); r.Status != http.StatusOK || json.Unmarshal(r.Body, &failed) != nil || len(failed.Deliveries) != 0 {
		t.Errorf("GET %s?status=failed: %s, want no deliveries", logPath, r)
	}
	wantProblem(t, "GET deliveries?status=lost", g.get(t, logPath+"?status=lost", root), http.StatusUnprocessableEntity)
	wantProblem(t, "GET deliveries with a forged cursor", g.get(t, logPath+"?cursor=forged", root), http.StatusUnprocessableEntity)

	// Retry: the same message again, same id.
	if r := g.send(t, http.MethodPost, logPath+"/"+msgID+"/retry", nil, root); r.Status != http.StatusAccepted {
		t.Fatalf("retry: %s, want 202", r)
	}
	rc.wait(t, 1, "retried", func(h hookHit) bool { return h.Header.Get("webhook-id") == msgID })
	wantProblem(t, "retry of an unknown message", g.send(t, http.MethodPost, logPath+"/msg_nope/retry", nil, root), http.StatusNotFound)

	// Rotation, then a test event: signed with both secrets.
	r := g.send(t, http.MethodPost, "/v1/admin/webhooks/"+created.ID+"/secret", nil, root)
	if r.Status != http.StatusOK {
		t.Fatalf("rotate: %s", r)
	}
	newKey, err := webhook.ParseSecret(str(t, r.JSON(t), "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if r := g.send(t, http.MethodPost, "/v1/admin/webhooks/"+created.ID+"/test", nil, root); r.Status != http.StatusAccepted {
		t.Fatalf("test: %s, want 202", r)
	}
	h, _ = rc.wait(t, 0, "webhook.test", func(h hookHit) bool { return h.Type == "webhook.test" })
	for name, k := range map[string][]byte{"old": key, "new": newKey} {
		if err := webhook.Verify(k, h.Header, h.Body, 0, time.Now()); err != nil {
			t.Errorf("the test event does not verify with the %s secret: %v", name, err)
		}
	}

	// Audit and metrics.
	var audit struct {
		Events []struct {
			Details map[string]any `json:"details"`
		} `json:"events"`
	}
	if err := json.Unmarshal(g.get(t, "/v1/admin/audit?type=webhook.endpoint.created", root).Body, &audit); err != nil || len(audit.Events) < 2 {
		t.Errorf("webhook.endpoint.created events: %+v (%v)", audit, err)
	}
	if m := g.get(t, "/metrics"); !strings.Contains(string(m.Body), `gatehouse_webhook_deliveries_total{result="delivered"}`) ||
		!strings.Contains(string(m.Body), "gatehouse_webhook_queue_depth") {
		t.Errorf("/metrics lacks the webhook metrics")
	}

	// Delete.
	if r := g.send(t, http.MethodDelete, "/v1/admin/webhooks/"+created.ID, nil, root); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %s", r)
	}
	wantProblem(t, "GET after DELETE", g.get(t, "/v1/admin/webhooks/"+created.ID, root), http.StatusNotFound)
	wantProblem(t, "deliveries after DELETE", g.get(t, logPath, root), http.StatusNotFound)
}

// Without GATEHOUSE_WEBHOOK_ALLOW_PRIVATE an endpoint on this machine or
// over plain http is refused when it is registered (and at connect time,
// internal/webhook's tests).
func TestWebhookPrivateURLsRefused(t *testing.T) {
	g := start(t, nil)
	root := bearer(g.root.Access)
	for _, u := range []string{"http://hooks.example.com/in", "https://127.0.0.1:8443/in", "https://[::1]/in", "https://10.0.0.7/in",
		"https://169.254.169.254/latest/meta-data", "https://localhost/in"} {
		p := wantProblem(t, "POST /v1/admin/webhooks "+u, g.send(t, http.MethodPost, "/v1/admin/webhooks", map[string]any{"url": u, "events": []string{"*"}}, root),
			http.StatusUnprocessableEntity)
		if len(p.Errors) == 0 || p.Errors[0].Location != "body.url" {
			t.Errorf("%s: problem %+v, want an error at body.url", u, p)
		}
	}
}
