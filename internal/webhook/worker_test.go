package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"gatehouse/internal/auth"
	"gatehouse/internal/authtest"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/webhook"
)

// The delivery worker against the real outbox: an auth.Service on SQLite
// queues messages, the Worker delivers them to httptest receivers, and an
// injected clock makes the retry schedule testable without waiting.

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// hit is one request a receiver got.
type hit struct {
	Header http.Header
	Body   []byte
}

// Type is the payload's type.
func (h hit) Type() string {
	var p struct{ Type string }
	_ = json.Unmarshal(h.Body, &p)
	return p.Type
}

// receiver records requests and answers them with answer (204 when nil).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []hit
	answer func(n int, w http.ResponseWriter)
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.hits)
		rc.hits = append(rc.hits, hit{Header: r.Header.Clone(), Body: body})
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(n, w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) Hits() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

// env is a service, its database, the worker and the clock they share.
type env struct {
	svc    *auth.Service
	db     *sqlstore.DB
	clock  *clock
	worker *webhook.Worker
	admin  auth.Meta
}

type envOptions struct {
	allowPrivate bool // the service's URL checks
	maxAttempts  int
	client       *http.Client // nil: AllowPrivate (the receivers are on 127.0.0.1)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, clock: &clock{now: time.Now().UTC().Truncate(time.Second)}, admin: auth.Meta{IP: "192.0.2.9", Actor: "admin-1"}}
	e.svc = authtest.New(t, db, func(opt *auth.Options) {
		opt.Now = e.clock.Now
		opt.Config.Webhooks = auth.WebhookConfig{AllowPrivate: o.allowPrivate, MaxAttempts: o.maxAttempts}
	})
	client := o.client
	if client == nil {
		client = webhook.NewClient(webhook.ClientOptions{AllowPrivate: true, Timeout: 5 * time.Second})
	}
	e.worker = &webhook.Worker{Queue: e.svc, Client: client, UserAgent: "Gatehouse/test", Now: e.clock.Now}
	e.worker.Init()
	return e
}

// endpoint registers an endpoint and returns its id and secret key.
func (e *env) endpoint(t *testing.T, target string, events ...string) (string, []byte) {
	t.Helper()
	ep, secret, err := e.svc.CreateWebhook(context.Background(), auth.WebhookInput{URL: target, Events: events}, e.admin)
	if err != nil {
		t.Fatalf("CreateWebhook(%s): %v", target, err)
	}
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatalf("the new secret %q…: %v", secret[:10], err)
	}
	return ep.ID, key
}

func (e *env) register(t *testing.T, email string) *auth.User {
	t.Helper()
	u, err := e.svc.Register(context.Background(), auth.RegisterInput{Email: email, Password: "correct horse battery staple", Name: "Zoë"}, auth.Meta{IP: "203.0.113.5"})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return u
}

// runOnce runs one worker step and requires it to have found work (or not).
func (e *env) runOnce(t *testing.T, want bool) {
	t.Helper()
	if got := e.worker.RunOnce(context.Background()); got != want {
		t.Fatalf("RunOnce at %v = %v, want %v", e.clock.Now(), got, want)
	}
}

func (e *env) deliveries(t *testing.T, endpointID string) []*auth.WebhookDelivery {
	t.Helper()
	ds, _, err := e.svc.WebhookDeliveries(context.Background(), endpointID, "", "", 100)
	if err != nil {
		t.Fatalf("WebhookDeliveries: %v", err)
	}
	return ds
}

func (e *env) onlyDelivery(t *testing.T, endpointID string) *auth.WebhookDelivery {
	t.Helper()
	ds := e.deliveries(t, endpointID)
	if len(ds) != 1 {
		t.Fatalf("endpoint %s has %d deliveries, want 1", endpointID, len(ds))
	}
	return ds[0]
}

func (e *env) auditTypes(t *testing.T, typ string) []*auth.AuditEvent {
	t.Helper()
	evs, err := e.db.ListAudit(context.Background(), auth.AuditFilter{Type: typ, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func statuses(d *auth.WebhookDelivery) []int {
	var out []int
	for _, a := range d.Attempts {
		out = append(out, a.StatusCode)
	}
	return out
}

func TestWorkerDeliversSigned(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	rc := newReceiver(t, nil)
	id, key := e.endpoint(t, rc.URL+"/hooks", auth.WebhookUserCreated)
	u := e.register(t, "zoe@example.com")
	e.runOnce(t, true)
	e.runOnce(t, false)
	hits := rc.Hits()
	if len(hits) != 1 {
		t.Fatalf("the receiver got %d requests, want 1", len(hits))
	}
	h := hits[0]
	if err := webhook.Verify(key, h.Header, h.Body, 0, e.clock.Now()); err != nil {
		t.Fatalf("webhook.Verify of the delivery: %v (headers %v)", err, h.Header)
	}
	// The two receivers of docs/webhooks.md accept it too.
	secret := webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(h.Body, h.Header); err != nil {
		t.Errorf("the reference library refuses the delivery: %v", err)
	}
	if !docsVerify(secret, h.Header, h.Body) {
		t.Error("the standard-library receiver of docs/webhooks.md refuses the delivery")
	}
	if docsVerify(secret, h.Header, append([]byte(" "), h.Body...)) {
		t.Error("the standard-library receiver of docs/webhooks.md accepts a changed body")
	}
	if ct := h.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if ua := h.Header.Get("User-Agent"); ua != "Gatehouse/test" {
		t.Errorf("User-Agent = %q, want Gatehouse/test", ua)
	}
	if id := h.Header.Get("webhook-id"); !strings.HasPrefix(id, "msg_") || len(id) != 30 {
		t.Errorf("webhook-id = %q, want msg_<ULID>", id)
	}
	var p struct {
		Type      string
		Timestamp string
		Data      struct {
			User struct {
				ID            string   `json:"id"`
				Email         string   `json:"email"`
				EmailVerified bool     `json:"email_verified"`
				Name          string   `json:"name"`
				Roles         []string `json:"roles"`
			}
			IP      string
			Details map[string]any
		}
	}
	if err := json.Unmarshal(h.Body, &p); err != nil {
		t.Fatalf("payload %s: %v", h.Body, err)
	}
	if p.Type != auth.WebhookUserCreated || p.Data.User.ID != u.ID || p.Data.User.Email != u.Email || p.Data.User.Name != "Zoë" ||
		len(p.Data.User.Roles) != 1 || p.Data.User.Roles[0] != "user" || p.Data.IP != "203.0.113.5" || p.Data.Details["source"] != "register" {
		t.Errorf("payload = %s", h.Body)
	}
	if ts, err := time.Parse(time.RFC3339, p.Timestamp); err != nil || !strings.HasSuffix(p.Timestamp, "Z") || ts.After(e.clock.Now()) {
		t.Errorf("timestamp %q: want RFC 3339 in UTC (%v)", p.Timestamp, err)
	}
	d := e.onlyDelivery(t, id)
	if d.ID != h.Header.Get("webhook-id") || d.State != auth.DeliveryDelivered || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 204 {
		t.Errorf("delivery log = %+v, want %s delivered after one 204", d, h.Header.Get("webhook-id"))
	}
}

func TestWorkerRetryKeepsID(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 0 {
			http.Error(w, strings.Repeat("ü", 2000), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	id, key := e.endpoint(t, rc.URL, auth.WebhookUserCreated)
	e.register(t, "zoe@example.com")
	e.runOnce(t, true)
	e.runOnce(t, false)
	// The first retry comes after 5 s ± 20 %: not before 4 s.
	e.clock.Advance(3900 * time.Millisecond)
	e.runOnce(t, false)
	e.clock.Advance(2200 * time.Millisecond)
	e.runOnce(t, true)
	hits := rc.Hits()
	if len(hits) != 2 {
		t.Fatalf("the receiver got %d requests, want 2", len(hits))
	}
	if a, b := hits[0].Header.Get("webhook-id"), hits[1].Header.Get("webhook-id"); a == "" || a != b {
		t.Fatalf("webhook-id of the attempts = %q, %q; want the same", a, b)
	}
	if hits[0].Header.Get("webhook-timestamp") == hits[1].Header.Get("webhook-timestamp") {
		t.Errorf("both attempts carry webhook-timestamp %s; want each attempt's own", hits[0].Header.Get("webhook-timestamp"))
	}
	if err := webhook.Verify(key, hits[1].Header, hits[1].Body, 0, e.clock.Now()); err != nil {
		t.Errorf("the retry does not verify: %v", err)
	}
	d := e.onlyDelivery(t, id)
	if d.State != auth.DeliveryDelivered || len(d.Attempts) != 2 || d.Attempts[0].StatusCode != 500 || d.Attempts[1].StatusCode != 200 {
		t.Fatalf("delivery log = state %s, statuses %v; want delivered after 500, 200", d.State, statuses(d))
	}
	if ex := d.Attempts[0].ResponseExcerpt; len(ex) > webhook.ExcerptSize || !strings.HasPrefix(ex, "üü") || strings.ContainsRune(ex, '\uFFFD') {
		t.Errorf("excerpt of the 500: %d bytes %q…; want at most 1 KiB of whole characters", len(ex), ex[:min(10, len(ex))])
	}
}

func TestWorkerGoneDisablesEndpoint(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	rc := newReceiver(t, func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	id, _ := e.endpoint(t, rc.URL, auth.WebhookUserCreated)
	e.register(t, "a@example.com")
	e.runOnce(t, true)
	ep, err := e.svc.Webhook(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Enabled || !strings.Contains(ep.DisabledReason, "410") {
		t.Fatalf("after a 410 the endpoint is enabled=%v (reason %q); want disabled", ep.Enabled, ep.DisabledReason)
	}
	if d := e.onlyDelivery(t, id); d.State != auth.DeliveryFailed {
		t.Errorf("the delivery answered 410 is %s, want failed", d.State)
	}
	if evs := e.auditTypes(t, auth.EventWebhookEndpointDisabled); len(evs) != 1 || evs[0].Details["endpoint_id"] != id {
		t.Errorf("webhook.endpoint.disabled events = %+v, want one for %s", evs, id)
	}
	// Nothing more is queued for it, and nothing is sent.
	e.register(t, "b@example.com")
	if ds := e.deliveries(t, id); len(ds) != 1 {
		t.Errorf("a disabled endpoint got %d deliveries queued, want still 1", len(ds))
	}
	e.clock.Advance(time.Hour)
	e.runOnce(t, false)
	if _, err := e.svc.TestWebhook(context.Background(), id, e.admin); !errors.Is(err, auth.ErrWebhookDisabled) {
		t.Errorf("TestWebhook of a disabled endpoint = %v, want ErrWebhookDisabled", err)
	}
	if len(rc.Hits()) != 1 {
		t.Errorf("the receiver got %d requests, want 1", len(rc.Hits()))
	}
}

func TestWorkerHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header func(now time.Time) string
		wait   time.Duration
	}{
		{"503 seconds", http.StatusServiceUnavailable, func(time.Time) string { return "120" }, 120 * time.Second},
		{"429 date", http.StatusTooManyRequests, func(now time.Time) string { return now.Add(10 * time.Minute).UTC().Format(http.TimeFormat) }, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{allowPrivate: true})
			rc := newReceiver(t, func(n int, w http.ResponseWriter) {
				if n == 0 {
					w.Header().Set("Retry-After", tc.header(e.clock.Now()))
					w.WriteHeader(tc.status)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			id, _ := e.endpoint(t, rc.URL, auth.WebhookUserCreated)
			e.register(t, "a@example.com")
			e.runOnce(t, true)
			// Far past the schedule's 5 s, still before Retry-After.
			e.clock.Advance(tc.wait - 2*time.Second)
			e.runOnce(t, false)
			e.clock.Advance(3 * time.Second)
			e.runOnce(t, true)
			if d := e.onlyDelivery(t, id); d.State != auth.DeliveryDelivered || len(d.Attempts) != 2 || d.Attempts[0].StatusCode != tc.status {
				t.Errorf("delivery log = state %s, statuses %v; want delivered after %d, 204", d.State, statuses(d), tc.status)
			}
		})
	}
}

func TestWorkerRedirectIsFailure(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Location", target.URL)
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	id, _ := e.endpoint(t, rc.URL, auth.WebhookUserCreated)
	e.register(t, "a@example.com")
	e.runOnce(t, true)
	if n := len(target.Hits()); n != 0 {
		t.Fatalf("the redirect was followed: its target got %d requests", n)
	}
	d := e.onlyDelivery(t, id)
	if d.State != auth.DeliveryPending || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 307 || !strings.Contains(d.Attempts[0].Error, "redirect") {
		t.Fatalf("after a 307: state %s, attempts %+v; want pending (a failure, retried) with the redirect named", d.State, d.Attempts)
	}
}

func TestWorkerTwoSignaturesAfterRotation(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	rc := newReceiver(t, nil)
	id, oldKey := e.endpoint(t, rc.URL, "*")
	secret, until, err := e.svc.RotateWebhookSecret(context.Background(), id, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(24 * time.Hour); !until.Equal(want) {
		t.Errorf("previous secret valid until %v, want %v", until, want)
	}
	test := func() hit {
		t.Helper()
		if _, err := e.svc.TestWebhook(context.Background(), id, e.admin); err != nil {
			t.Fatal(err)
		}
		e.runOnce(t, true)
		hits := rc.Hits()
		h := hits[len(hits)-1]
		if h.Type() != auth.WebhookTest {
			t.Fatalf("delivered %q, want webhook.test", h.Type())
		}
		return h
	}
	h := test()
	if n := len(strings.Fields(h.Header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("webhook-signature %q has %d entries, want 2 while both secrets are live", h.Header.Get("webhook-signature"), n)
	}
	for name, key := range map[string][]byte{"old": oldKey, "new": newKey} {
		if err := webhook.Verify(key, h.Header, h.Body, 0, e.clock.Now()); err != nil {
			t.Errorf("the delivery does not verify with the %s secret: %v", name, err)
		}
	}
	// After 24 hours only the new secret signs.
	e.clock.Advance(24*time.Hour + time.Second)
	h = test()
	if n := len(strings.Fields(h.Header.Get("webhook-signature"))); n != 1 {
		t.Errorf("a day after the rotation webhook-signature has %d entries, want 1", n)
	}
	if err := webhook.Verify(oldKey, h.Header, h.Body, 0, e.clock.Now()); err == nil {
		t.Error("a day after the rotation the old secret still verifies")
	}
	if err := webhook.Verify(newKey, h.Header, h.Body, 0, e.clock.Now()); err != nil {
		t.Errorf("the new secret does not verify: %v", err)
	}
}

// No payload carries a password, its hash, a token or the endpoint's
// secret, whatever the event.
func TestWorkerPayloadCarriesNoSecret(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	rc := newReceiver(t, nil)
	id, key := e.endpoint(t, rc.URL, "*", auth.EventLoginFailed)
	ctx := context.Background()
	const pw = "correct horse battery staple"
	u := e.register(t, "zoe@example.com")
	tok, err := e.svc.PasswordGrant(ctx, u.Email, pw, "", "web", auth.Meta{IP: "203.0.113.5"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PasswordGrant(ctx, u.Email, "wrong password!", "", "web", auth.Meta{IP: "203.0.113.5"}); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	disabled := true
	if _, err := e.svc.AdminUpdateUser(ctx, "admin-1", u.ID, auth.UserPatch{Disabled: &disabled}, e.admin); err != nil {
		t.Fatal(err)
	}
	stored, err := e.db.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AdminDeleteUser(ctx, "admin-1", u.ID, e.admin); err != nil {
		t.Fatal(err)
	}
	for e.worker.RunOnce(ctx) {
	}
	seen := map[string]bool{}
	for _, h := range rc.Hits() {
		seen[h.Type()] = true
		body := string(h.Body)
		for what, secret := range map[string]string{"password": pw, "password hash": stored.PasswordHash, "access token": tok.AccessToken,
			"refresh token": tok.RefreshToken, "endpoint secret": string(key)} {
			if secret != "" && strings.Contains(body, secret) {
				t.Errorf("the %s payload carries the %s: %s", h.Type(), what, body)
			}
		}
		for _, word := range []string{"password_hash", "argon2", "ghr_", "whsec_"} {
			if strings.Contains(body, word) {
				t.Errorf("the %s payload mentions %q: %s", h.Type(), word, body)
			}
		}
	}
	for _, typ := range []string{auth.WebhookUserCreated, auth.EventLoginSucceeded, auth.EventLoginFailed, auth.WebhookUserDisabled, auth.EventUserDeleted} {
		if !seen[typ] {
			t.Errorf("no %s delivery among %v", typ, seen)
		}
	}
	if n := len(e.deliveries(t, id)); n != len(rc.Hits()) {
		t.Errorf("%d deliveries logged, %d received", n, len(rc.Hits()))
	}
}

// An endpoint whose host name resolves to a loopback address when the
// delivery connects (DNS rebinding after the URL was accepted) is refused
// by the dialer: no request leaves, the attempt is logged as a failure.
func TestWorkerRefusesLoopbackAtConnectTime(t *testing.T) {
	var reached sync.Mutex
	got := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Lock()
		got++
		reached.Unlock()
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	e := newEnv(t, envOptions{allowPrivate: false, client: webhook.NewClient(webhook.ClientOptions{Timeout: 5 * time.Second})})
	ctx := context.Background()
	// Literal internal addresses are refused when the URL is saved.
	for _, bad := range []string{srv.URL, "https://localhost:" + u.Port() + "/", "https://169.254.169.254/latest", "http://hooks.example.com/"} {
		if _, _, err := e.svc.CreateWebhook(ctx, auth.WebhookInput{URL: bad, Events: []string{"*"}}, e.admin); auth.ErrorCode(err) != auth.EINVALID {
			t.Errorf("CreateWebhook(%s) = %v, want EINVALID", bad, err)
		}
	}
	// A public-looking name passes; make it resolve to 127.0.0.1 later,
	// as a re-bound DNS name would, by pointing the stored row at
	// localhost.
	id, _ := e.endpoint(t, "https://hooks.example.com/in", "*")
	ep, err := e.db.WebhookEndpoint(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ep.URL = "https://localhost:" + u.Port() + "/in"
	if err := e.db.UpdateWebhookEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.TestWebhook(ctx, id, e.admin); err != nil {
		t.Fatal(err)
	}
	e.runOnce(t, true)
	reached.Lock()
	defer reached.Unlock()
	if got != 0 {
		t.Fatalf("the loopback server got %d requests", got)
	}
	d := e.onlyDelivery(t, id)
	if d.State != auth.DeliveryPending || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 0 || !strings.Contains(d.Attempts[0].Error, "not allowed") {
		t.Fatalf("delivery = state %s, attempts %+v; want a failed attempt naming the refused address, retried later", d.State, d.Attempts)
	}
}

func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true, maxAttempts: 3})
	rc := newReceiver(t, func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
	id, _ := e.endpoint(t, rc.URL, auth.WebhookUserCreated)
	e.register(t, "a@example.com")
	for range 3 {
		e.runOnce(t, true)
		e.clock.Advance(time.Hour) // past the first two waits (5 s, 5 min)
	}
	e.runOnce(t, false)
	d := e.onlyDelivery(t, id)
	if d.State != auth.DeliveryFailed || len(d.Attempts) != 3 {
		t.Fatalf("after 3 attempts: state %s, statuses %v; want failed after 3", d.State, statuses(d))
	}
	evs := e.auditTypes(t, auth.EventWebhookDeliveryFailed)
	if len(evs) != 1 || evs[0].Details["msg_id"] != d.ID {
		t.Errorf("webhook.delivery.failed events = %+v, want one for %s", evs, d.ID)
	}
	if ep, _ := e.svc.Webhook(context.Background(), id); !ep.Enabled {
		t.Error("the endpoint was disabled after one failed message")
	}
}

func TestWorkerDisablesAfterFiveDaysOfFailures(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	rc := newReceiver(t, func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	ctx := context.Background()
	admin, err := e.svc.CreateUser(ctx, "root@example.com", "", []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := e.endpoint(t, rc.URL, auth.WebhookUserCreated)
	e.register(t, "a@example.com")
	e.runOnce(t, true)
	ep, _ := e.svc.Webhook(ctx, id)
	if ep.FailingSince == nil || !ep.FailingSince.Equal(e.clock.Now()) {
		t.Fatalf("after a failure failing_since = %v, want %v", ep.FailingSince, e.clock.Now())
	}
	e.clock.Advance(4 * 24 * time.Hour)
	e.register(t, "b@example.com")
	for e.worker.RunOnce(ctx) {
	}
	if ep, _ := e.svc.Webhook(ctx, id); !ep.Enabled {
		t.Fatal("disabled after four days")
	}
	e.clock.Advance(24*time.Hour + time.Second)
	e.register(t, "c@example.com")
	for e.worker.RunOnce(ctx) {
	}
	ep, _ = e.svc.Webhook(ctx, id)
	if ep.Enabled || !strings.Contains(ep.DisabledReason, "5 days") {
		t.Fatalf("after five days of failures: enabled=%v, reason %q; want disabled", ep.Enabled, ep.DisabledReason)
	}
	if evs := e.auditTypes(t, auth.EventWebhookEndpointDisabled); len(evs) != 1 {
		t.Errorf("webhook.endpoint.disabled events: %d, want 1", len(evs))
	}
	j, err := e.db.ClaimMailJob(ctx, e.clock.Now().Add(time.Hour), time.Minute)
	for err == nil && j.Kind != auth.MailWebhookDisabled {
		j, err = e.db.ClaimMailJob(ctx, e.clock.Now().Add(time.Hour), time.Minute)
	}
	if err != nil || j.UserID != admin.ID || j.To != admin.Email {
		t.Fatalf("mail to the administrator: %+v, %v; want a %s job for %s", j, err, auth.MailWebhookDisabled, admin.Email)
	}
	// A success ends a failure streak: enabling clears it, and a 2xx
	// keeps it clear.
	enabled := true
	if _, err := e.svc.UpdateWebhook(ctx, id, auth.WebhookPatch{Enabled: &enabled}, e.admin); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.answer = nil
	rc.mu.Unlock()
	if _, err := e.svc.TestWebhook(ctx, id, e.admin); err != nil {
		t.Fatal(err)
	}
	e.runOnce(t, true)
	if ep, _ := e.svc.Webhook(ctx, id); !ep.Enabled || ep.FailingSince != nil || ep.DisabledReason != "" {
		t.Errorf("after enabling and a delivery: %+v", ep)
	}
}

func TestWorkerSkipsDisabledEndpoint(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	rc := newReceiver(t, nil)
	id, _ := e.endpoint(t, rc.URL, auth.WebhookUserCreated)
	e.register(t, "a@example.com")
	off := false
	if _, err := e.svc.UpdateWebhook(context.Background(), id, auth.WebhookPatch{Enabled: &off}, e.admin); err != nil {
		t.Fatal(err)
	}
	e.runOnce(t, false)
	if len(rc.Hits()) != 0 {
		t.Fatal("a disabled endpoint got a delivery")
	}
	d := e.onlyDelivery(t, id)
	if d.State != auth.DeliveryFailed || len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "disabled") {
		t.Errorf("delivery = %s %+v, want failed as not sent (disabled)", d.State, d.Attempts)
	}
	// An administrator's retry after enabling sends it, with its id.
	on := true
	if _, err := e.svc.UpdateWebhook(context.Background(), id, auth.WebhookPatch{Enabled: &on}, e.admin); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RetryWebhookDelivery(context.Background(), id, d.ID, e.admin); err != nil {
		t.Fatal(err)
	}
	e.runOnce(t, true)
	if hits := rc.Hits(); len(hits) != 1 || hits[0].Header.Get("webhook-id") != d.ID {
		t.Fatalf("after the retry the receiver got %d requests, want 1 with webhook-id %s", len(hits), d.ID)
	}
}

// Run delivers a message queued on this node at once (Notify), with a
// poll interval far longer than the test.
func TestWorkerNotifyWakesRun(t *testing.T) {
	e := newEnv(t, envOptions{allowPrivate: true})
	e.worker = &webhook.Worker{Queue: e.svc, Client: webhook.NewClient(webhook.ClientOptions{AllowPrivate: true}), Poll: time.Hour, Now: e.clock.Now}
	e.worker.Init()
	svc := authtest.New(t, e.db, func(o *auth.Options) {
		o.Now = e.clock.Now
		o.Config.Webhooks.AllowPrivate = true
		o.WebhookNotify = e.worker.Notify
	})
	e.worker.Queue = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { e.worker.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond) // Run's first pass found nothing
	rc := newReceiver(t, nil)
	if _, _, err := svc.CreateWebhook(ctx, auth.WebhookInput{URL: rc.URL, Events: []string{auth.WebhookUserCreated}}, e.admin); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := svc.Register(ctx, auth.RegisterInput{Email: "a@example.com", Password: "correct horse battery staple"}, auth.Meta{}); err != nil {
		t.Fatal(err)
	}
	for len(rc.Hits()) == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("no delivery within 5 s of the registration although Notify was called")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// docsVerify is the standard-library receiver of docs/webhooks.md, as
// printed there.
func docsVerify(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || math.Abs(time.Since(time.Unix(ts, 0)).Seconds()) > 300 {
		return false // refuse replays of old messages
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, entry := range strings.Fields(h.Get("webhook-signature")) {
		sig, ok := strings.CutPrefix(entry, "v1,")
		if !ok {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(sig); err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-5", 0}, {"abc", 0}, {"30", 30 * time.Second}, {" 7 ", 7 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"99999999999", 7 * 24 * time.Hour},
	} {
		if got := webhook.ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
