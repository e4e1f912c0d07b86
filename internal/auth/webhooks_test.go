package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/webhook"
)

// Webhooks (SPEC §16) on the service side: which events queue messages for
// which endpoints, what the messages say, the cost of a login, validation,
// sealing, and the endpoints of the configuration file.

var admin = auth.Meta{IP: "192.0.2.9", Actor: "admin-1"}

func (h *harness) webhook(t *testing.T, events ...string) string {
	t.Helper()
	e, _, err := h.svc.CreateWebhook(context.Background(), auth.WebhookInput{URL: "https://hooks.example.com/" + auth.NewID(), Events: events}, admin)
	if err != nil {
		t.Fatalf("CreateWebhook(%v): %v", events, err)
	}
	return e.ID
}

func (h *harness) deliveryRows(t *testing.T) int {
	t.Helper()
	var n int
	if err := h.rawDB(t).QueryRow(`SELECT COUNT(*) FROM webhook_deliveries`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// payloads returns the queued messages of an endpoint, oldest first, as
// decoded JSON.
func (h *harness) payloads(t *testing.T, endpointID string) []map[string]any {
	t.Helper()
	ds, _, err := h.svc.WebhookDeliveries(context.Background(), endpointID, "", "", 200)
	if err != nil {
		t.Fatalf("WebhookDeliveries: %v", err)
	}
	var out []map[string]any
	for i := len(ds) - 1; i >= 0; i-- {
		var p map[string]any
		if err := json.Unmarshal(ds[i].Payload, &p); err != nil {
			t.Fatalf("payload %s: %v", ds[i].Payload, err)
		}
		if p["type"] != ds[i].Type {
			t.Errorf("delivery type %q, payload type %v", ds[i].Type, p["type"])
		}
		out = append(out, p)
	}
	return out
}

func types(ps []map[string]any) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p["type"].(string))
	}
	return out
}

func dataOf(p map[string]any) (user, details map[string]any) {
	d, _ := p["data"].(map[string]any)
	user, _ = d["user"].(map[string]any)
	details, _ = d["details"].(map[string]any)
	return user, details
}

// countingWebhooks counts every call a service makes to its webhook store.
type countingWebhooks struct {
	auth.WebhookStore
	lists, others atomic.Int64
}

func (c *countingWebhooks) ListWebhookEndpoints(ctx context.Context) ([]*auth.WebhookEndpoint, error) {
	c.lists.Add(1)
	return c.WebhookStore.ListWebhookEndpoints(ctx)
}

func (c *countingWebhooks) WebhookEndpoint(ctx context.Context, id string) (*auth.WebhookEndpoint, error) {
	c.others.Add(1)
	return c.WebhookStore.WebhookEndpoint(ctx, id)
}

// A login queues nothing and asks the webhook store nothing when no
// endpoint subscribes to login.succeeded; with one endpoint that does, it
// queues exactly one row. The lockout lives in the database, as without
// Redis: the grant's writes are one transaction (FinishPasswordLogin).
func TestWebhookLoginCost(t *testing.T) {
	var counting *countingWebhooks
	h := newHarnessWith(t, func(h *harness, o *auth.Options) {
		counting = &countingWebhooks{WebhookStore: h.db}
		o.Stores.Webhooks = counting
		o.Stores.Limiter, o.Stores.Lockout = h.db, h.db
		o.Limits = auth.Limits{LoginPerAccountIP: 1000, PerIP: 1000, Window: time.Minute, LockoutThreshold: 100, LockoutDuration: time.Minute}
	})
	u := h.register(t, "zoe@example.com", goodPass)
	lists := counting.lists.Load()
	for range 5 {
		h.grant(t, u.Email, goodPass, "")
	}
	if n := h.deliveryRows(t); n != 0 {
		t.Fatalf("5 logins with no endpoint queued %d rows, want 0", n)
	}
	if l, o := counting.lists.Load()-lists, counting.others.Load(); l != 0 || o != 0 {
		t.Errorf("5 logins with no endpoint read the webhook store %d+%d times, want 0 (the snapshot answers)", l, o)
	}

	h.webhook(t, auth.EventPasswordChanged)
	h.grant(t, u.Email, goodPass, "")
	if n := h.deliveryRows(t); n != 0 {
		t.Fatalf("a login with an endpoint for password.changed only queued %d rows, want 0", n)
	}
	id := h.webhook(t, auth.EventLoginSucceeded)
	h.grant(t, u.Email, goodPass, "")
	if n := h.deliveryRows(t); n != 1 {
		t.Fatalf("a login with one endpoint for login.succeeded queued %d rows, want 1", n)
	}
	// The session sign-in (POST /v1/sessions) appends its event apart
	// from the family: it queues its message too.
	a, err := h.svc.PasswordAuthentication(context.Background(), u.Email, goodPass, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Complete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ps := h.payloads(t, id)
	if len(ps) != 2 || types(ps)[0] != auth.EventLoginSucceeded || types(ps)[1] != auth.EventLoginSucceeded {
		t.Fatalf("messages = %v, want two login.succeeded", types(ps))
	}
	user, _ := dataOf(ps[0])
	if user["id"] != u.ID || user["email"] != u.Email {
		t.Errorf("login.succeeded user = %v", user)
	}
}

// Which audit events reach which endpoint, under which webhook type.
func TestWebhookEventCatalogue(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	all := h.webhook(t, "*")
	failed := h.webhook(t, auth.EventLoginFailed)
	created := h.webhook(t, auth.WebhookUserCreated)

	// Message ids sort by the millisecond: one action per millisecond
	// keeps them in order.
	step := func() { h.clock.Advance(time.Millisecond) }
	u := h.register(t, "zoe@example.com", goodPass)
	step()
	cli, err := h.svc.CreateUser(ctx, "ops@example.com", "", []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	step()
	if _, err := h.svc.PasswordGrant(ctx, u.Email, "not the password", "", "web", meta); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	yes, no := true, false
	for _, p := range []auth.UserPatch{{Disabled: &yes}, {Disabled: &no}, {EmailVerified: &yes}, {Roles: &[]string{"editor"}}} {
		step()
		if _, err := h.svc.AdminUpdateUser(ctx, "admin-1", u.ID, p, admin); err != nil {
			t.Fatal(err)
		}
	}
	// A new name is user.updated; the same name again is nothing.
	for range 2 {
		step()
		if _, err := h.svc.UpdateName(ctx, u.ID, "Grace Hopper", meta); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if err := h.svc.ChangePassword(ctx, h.fresh(u.ID), goodPass, "another good passphrase", meta); err != nil {
		t.Fatal(err)
	}
	step()
	if err := h.svc.DeleteAccount(ctx, h.fresh(u.ID), "another good passphrase", meta); err != nil {
		t.Fatal(err)
	}

	want := []string{auth.WebhookUserCreated, auth.WebhookUserCreated, auth.WebhookUserDisabled, auth.WebhookUserEnabled,
		auth.EventUserUpdated, auth.EventRoleChanged, auth.EventUserUpdated, auth.EventPasswordChanged, auth.EventUserDeleted}
	ps := h.payloads(t, all)
	if got := types(ps); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf(`"*" got %v, want %v (login.failed only when named)`, got, want)
	}
	if got := types(h.payloads(t, failed)); len(got) != 1 || got[0] != auth.EventLoginFailed {
		t.Errorf("[login.failed] got %v", got)
	}
	cps := h.payloads(t, created)
	if got := types(cps); len(got) != 2 {
		t.Fatalf("[user.created] got %v", got)
	}
	for i, want := range []struct{ id, source string }{{u.ID, auth.SourceRegister}, {cli.ID, auth.SourceCLI}} {
		user, details := dataOf(cps[i])
		if user["id"] != want.id || details["source"] != want.source {
			t.Errorf("user.created %d: user %v, details %v; want %s from %s", i, user, details, want.id, want.source)
		}
	}
	// The deleted account is described as it was.
	user, _ := dataOf(ps[len(ps)-1])
	if user["id"] != u.ID || user["email"] != u.Email {
		t.Errorf("user.deleted user = %v, want %s <%s>", user, u.ID, u.Email)
	}
	// user.updated for the name: the account as it is now, and which
	// field changed.
	if user, details := dataOf(ps[6]); user["name"] != "Grace Hopper" || fmt.Sprint(details["fields"]) != "[name]" {
		t.Errorf("user.updated for a new name: user %v, details %v", user, details)
	}
	// role.changed carries the roles, before and after.
	_, details := dataOf(ps[5])
	if b, _ := json.Marshal(details); !strings.Contains(string(b), "editor") {
		t.Errorf("role.changed details = %s", b)
	}
}

func TestWebhookValidation(t *testing.T) {
	for _, tc := range []struct {
		name, url    string
		events       []string
		allowPrivate bool
		field        string
	}{
		{"https", "https://hooks.example.com/in?x=1", []string{"*"}, false, ""},
		{"public IP", "https://203.0.113.10:8443/in", []string{"user.created"}, false, ""},
		{"http refused", "http://hooks.example.com/in", []string{"*"}, false, "url"},
		{"http with allow_private", "http://127.0.0.1:9999/in", []string{"*"}, true, ""},
		{"ftp refused", "ftp://hooks.example.com/in", []string{"*"}, true, "url"},
		{"javascript refused", "javascript:alert(1)", []string{"*"}, true, "url"},
		{"user info refused", "https://user:pass@hooks.example.com/in", []string{"*"}, false, "url"},
		{"user info refused with allow_private", "http://user@127.0.0.1/in", []string{"*"}, true, "url"},
		{"fragment refused", "https://hooks.example.com/in#x", []string{"*"}, false, "url"},
		{"relative refused", "/in", []string{"*"}, false, "url"},
		{"no host", "https:///in", []string{"*"}, false, "url"},
		{"loopback refused", "https://127.0.0.1/in", []string{"*"}, false, "url"},
		{"mapped loopback refused", "https://[::ffff:127.0.0.1]/in", []string{"*"}, false, "url"},
		{"private refused", "https://10.1.2.3/in", []string{"*"}, false, "url"},
		{"metadata refused", "https://169.254.169.254/latest/meta-data", []string{"*"}, false, "url"},
		{"localhost refused", "https://localhost:8443/in", []string{"*"}, false, "url"},
		{"space refused", "https://hooks.example.com/a b", []string{"*"}, false, "url"},
		{"unknown event", "https://hooks.example.com/in", []string{"user.created", "user.exploded"}, false, "events"},
		{"no events", "https://hooks.example.com/in", nil, false, "events"},
		{"audit-only type", "https://hooks.example.com/in", []string{"refresh.reused"}, false, "events"},
		{"login.failed by name", "https://hooks.example.com/in", []string{"login.failed"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *auth.Config) { c.Webhooks.AllowPrivate = tc.allowPrivate })
			e, secret, err := h.svc.CreateWebhook(context.Background(), auth.WebhookInput{URL: tc.url, Events: tc.events}, admin)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("CreateWebhook(%s): %v", tc.url, err)
				}
				if !e.Enabled || e.URL != tc.url || !strings.HasPrefix(secret, "whsec_") {
					t.Errorf("endpoint %+v, secret %q…", e, secret[:6])
				}
				return
			}
			wantCode(t, err, auth.EINVALID, tc.field)
		})
	}
}

// The secret is sealed under a key derived from the root secret: the row
// holds neither it nor anything another root secret can open.
func TestWebhookSecretSealed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	e, secret, err := h.svc.CreateWebhook(ctx, auth.WebhookInput{URL: "https://hooks.example.com/in", Events: []string{"*"}}, admin)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := webhook.ParseSecret(secret)
	if len(key) != 32 {
		t.Fatalf("the secret holds %d bytes, want 32", len(key))
	}
	var sealed []byte
	if err := h.rawDB(t).QueryRow(`SELECT secret FROM webhook_endpoints WHERE id = ?`, e.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, key) || bytes.Contains(sealed, []byte(secret)) || len(sealed) < len(key)+16 {
		t.Fatalf("stored secret (%d bytes) is not a sealed box of the key", len(sealed))
	}
	// A service with the right root secret signs with it.
	if _, err := h.svc.TestWebhook(ctx, e.ID, admin); err != nil {
		t.Fatal(err)
	}
	j, err := h.svc.ClaimWebhook(ctx, h.clock.Now(), time.Minute)
	if err != nil || j == nil || len(j.Secrets) != 1 || !bytes.Equal(j.Secrets[0], key) {
		t.Fatalf("ClaimWebhook = %+v, %v; want a job signed with the endpoint's key", j, err)
	}
	// One with another root secret cannot, and sends nothing.
	other := newHarnessWith(t, func(o *harness, opt *auth.Options) {
		opt.Stores.Webhooks, opt.RootSecret = h.db, []byte("another-root-secret-0123456789abcdefgh")
	})
	if _, err := h.svc.TestWebhook(ctx, e.ID, admin); err != nil {
		t.Fatal(err)
	}
	j, err = other.svc.ClaimWebhook(ctx, h.clock.Now().Add(time.Hour), time.Minute)
	if err != nil || j != nil {
		t.Fatalf("ClaimWebhook under another root secret = %+v, %v; want nothing to send", j, err)
	}
	// Both messages (the first one's lease ran out) failed unsent.
	ds, _, _ := h.svc.WebhookDeliveries(ctx, e.ID, auth.DeliveryFailed, "", 10)
	if len(ds) != 2 {
		t.Fatalf("%d failed deliveries, want 2", len(ds))
	}
	for _, d := range ds {
		if len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "does not open") {
			t.Errorf("failed delivery %s: attempts %+v, want one naming the key that did not open", d.ID, d.Attempts)
		}
	}
}

func TestWebhookAdminOperations(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	e, _, err := h.svc.CreateWebhook(ctx, auth.WebhookInput{URL: "https://hooks.example.com/in", Events: []string{"*", "*", "user.created"}, Description: "  CRM  "}, admin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(e.Events, ",") != "*,user.created" || e.Description != "CRM" {
		t.Errorf("events %v, description %q: want duplicates dropped and the description trimmed", e.Events, e.Description)
	}
	url := "https://other.example.com/x"
	up, err := h.svc.UpdateWebhook(ctx, e.ID, auth.WebhookPatch{URL: &url, Events: &[]string{"login.failed"}}, admin)
	if err != nil || up.URL != url || up.Events[0] != "login.failed" || up.Description != "CRM" {
		t.Fatalf("UpdateWebhook = %+v, %v", up, err)
	}
	bad := "http://other.example.com/x"
	_, err = h.svc.UpdateWebhook(ctx, e.ID, auth.WebhookPatch{URL: &bad}, admin)
	wantCode(t, err, auth.EINVALID, "url")
	_, err = h.svc.UpdateWebhook(ctx, "nope", auth.WebhookPatch{URL: &url}, admin)
	wantCode(t, err, auth.ENOTFOUND, "")
	// Paging of the delivery log: 3 messages, pages of 2.
	for range 3 {
		if _, err := h.svc.TestWebhook(ctx, e.ID, admin); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(time.Millisecond)
	}
	page, next, err := h.svc.WebhookDeliveries(ctx, e.ID, "", "", 2)
	if err != nil || len(page) != 2 || next == "" {
		t.Fatalf("first page: %d, cursor %q, %v", len(page), next, err)
	}
	rest, last, err := h.svc.WebhookDeliveries(ctx, e.ID, "", next, 2)
	if err != nil || len(rest) != 1 || last != "" || rest[0].ID >= page[1].ID {
		t.Fatalf("second page: %d, cursor %q, %v", len(rest), last, err)
	}
	_, _, err = h.svc.WebhookDeliveries(ctx, e.ID, "", "forged", 2)
	wantCode(t, err, auth.EINVALID, "cursor")
	_, _, err = h.svc.WebhookDeliveries(ctx, e.ID, "lost", "", 2)
	wantCode(t, err, auth.EINVALID, "status")
	wantCode(t, h.svc.RetryWebhookDelivery(ctx, e.ID, "msg_nope", admin), auth.ENOTFOUND, "")
	if err := h.svc.DeleteWebhook(ctx, e.ID, admin); err != nil {
		t.Fatal(err)
	}
	wantCode(t, h.svc.DeleteWebhook(ctx, e.ID, admin), auth.ENOTFOUND, "")
	for _, typ := range []string{auth.EventWebhookEndpointCreated, auth.EventWebhookEndpointUpdated, auth.EventWebhookEndpointDeleted} {
		evs := h.audit(t, auth.AuditFilter{Type: typ})
		if len(evs) != 1 || evs[0].Details["endpoint_id"] != e.ID || evs[0].UserID != admin.Actor {
			t.Errorf("%s events = %+v, want one by %s", typ, evs, admin.Actor)
		}
	}
	h.assertAuditClean(t, "whsec_")
}

// Endpoints of the configuration file: created, left alone when unchanged,
// rotated when their secret changes, deleted when removed; read-only over
// the API.
func TestSyncConfigWebhooks(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	s1, s2 := webhook.NewSecret(), webhook.NewSecret()
	in := auth.WebhookInput{URL: "https://crm.example.com/in", Events: []string{"user.created"}, Secret: s1}
	if err := h.svc.SyncConfigWebhooks(ctx, []auth.WebhookInput{in}); err != nil {
		t.Fatal(err)
	}
	es, _ := h.svc.Webhooks(ctx)
	if len(es) != 1 || !es[0].FromConfig || es[0].URL != in.URL {
		t.Fatalf("endpoints after the first sync: %+v", es)
	}
	id := es[0].ID
	if err := h.svc.SyncConfigWebhooks(ctx, []auth.WebhookInput{in}); err != nil {
		t.Fatal(err)
	}
	if evs := h.audit(t, auth.AuditFilter{Type: auth.EventWebhookEndpointUpdated}); len(evs) != 0 {
		t.Errorf("an unchanged sync audited %d updates", len(evs))
	}
	url := "https://x.example.com/"
	_, err := h.svc.UpdateWebhook(ctx, id, auth.WebhookPatch{URL: &url}, admin)
	if !errors.Is(err, auth.ErrWebhookFromConfig) {
		t.Errorf("UpdateWebhook of a config endpoint = %v, want ErrWebhookFromConfig", err)
	}
	if _, _, err := h.svc.RotateWebhookSecret(ctx, id, admin); !errors.Is(err, auth.ErrWebhookFromConfig) {
		t.Errorf("RotateWebhookSecret of a config endpoint = %v, want ErrWebhookFromConfig", err)
	}
	if err := h.svc.DeleteWebhook(ctx, id, admin); !errors.Is(err, auth.ErrWebhookFromConfig) {
		t.Errorf("DeleteWebhook of a config endpoint = %v, want ErrWebhookFromConfig", err)
	}
	// A new secret in the file rotates: both sign for a day.
	in.Secret = s2
	if err := h.svc.SyncConfigWebhooks(ctx, []auth.WebhookInput{in}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.TestWebhook(ctx, id, admin); err != nil {
		t.Fatal(err)
	}
	j, err := h.svc.ClaimWebhook(ctx, h.clock.Now(), time.Minute)
	k1, _ := webhook.ParseSecret(s1)
	k2, _ := webhook.ParseSecret(s2)
	if err != nil || j == nil || len(j.Secrets) != 2 || !bytes.Equal(j.Secrets[0], k2) || !bytes.Equal(j.Secrets[1], k1) {
		t.Fatalf("after a secret change in the file: job %+v, %v; want the new and the old key", j, err)
	}
	// Removed from the file: deleted.
	if err := h.svc.SyncConfigWebhooks(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if es, _ := h.svc.Webhooks(ctx); len(es) != 0 {
		t.Errorf("endpoints after removing it from the file: %+v", es)
	}
	// Bad entries are refused.
	for _, bad := range []auth.WebhookInput{
		{URL: "https://a.example.com/", Events: []string{"*"}},
		{URL: "https://a.example.com/", Events: []string{"*"}, Secret: "not-a-secret"},
		{URL: "https://a.example.com/", Events: []string{"*"}, Secret: "whsec_c2hvcnQ="},
		{URL: "http://a.example.com/", Events: []string{"*"}, Secret: s1},
	} {
		if err := h.svc.SyncConfigWebhooks(ctx, []auth.WebhookInput{bad}); err == nil {
			t.Errorf("SyncConfigWebhooks(%+v) succeeded", bad)
		}
	}
}

// Another node's endpoints reach this node's snapshot when it reloads
// (RunWebhookSnapshot does every few seconds).
func TestWebhookSnapshotReload(t *testing.T) {
	a := newHarness(t)
	b := newHarnessWith(t, func(h *harness, o *auth.Options) {
		db := a.db
		o.Stores = auth.Stores{Users: db, Refresh: db, Audit: db, Sessions: db, Tokens: db, APIKeys: db, MFA: db,
			Identities: db, Passkeys: db, Challenges: db, Mail: db, Clients: db, Consents: db, AuthCodes: db, Webhooks: db, Stats: db}
	})
	ctx := context.Background()
	b.register(t, "first@example.com", goodPass) // loads b's (empty) snapshot
	a.webhook(t, auth.WebhookUserCreated)
	if err := b.svc.ReloadWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	before := a.deliveryRows(t)
	b.register(t, "second@example.com", goodPass)
	if n := a.deliveryRows(t) - before; n != 1 {
		t.Fatalf("a registration on node b after its reload queued %d rows, want 1", n)
	}
}
