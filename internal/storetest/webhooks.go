package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// WebhookBackend is a webhook store under test (SPEC §16): endpoints and
// the outbox (auth.WebhookStore), plus every store method that appends
// audit events in its own transaction, which must queue the events'
// messages in that transaction (AppendAudit, FinishPasswordLogin,
// RedeemMFA), and CreateUser for the owners of refresh families and for
// UsersWithRole.
type WebhookBackend interface {
	auth.WebhookStore
	auth.AuditStore
	auth.LoginFinisher
	auth.RefreshStore
	RedeemMFA(ctx context.Context, r *auth.MFARedemption) error
	userMaker
}

// RunWebhooks runs the webhook store contract. open must return a fresh,
// empty backend each time it is called (once per subtest) and arrange its
// cleanup with t.Cleanup. Nothing in it expires by the wall clock: "now" is
// always an argument.
func RunWebhooks(t *testing.T, open func(t *testing.T) WebhookBackend) {
	t.Helper()
	t.Run("EndpointRoundTrip", func(t *testing.T) { testWebhookEndpointRoundTrip(t, open) })
	t.Run("EndpointDuplicateAndUnknown", func(t *testing.T) { testWebhookEndpointUnknown(t, open) })
	t.Run("EndpointUpdateKeepsSecrets", func(t *testing.T) { testWebhookEndpointUpdate(t, open) })
	t.Run("EndpointRotateSecret", func(t *testing.T) { testWebhookRotate(t, open) })
	t.Run("EndpointFailingAndDisable", func(t *testing.T) { testWebhookFailing(t, open) })
	t.Run("EndpointDeleteTakesDeliveries", func(t *testing.T) { testWebhookDelete(t, open) })
	t.Run("AppendAuditQueuesMessages", func(t *testing.T) { testWebhookAppendAudit(t, open) })
	t.Run("AppendAuditIsAtomic", func(t *testing.T) { testWebhookAppendAuditAtomic(t, open) })
	t.Run("FinishPasswordLoginQueuesMessages", func(t *testing.T) { testWebhookFinishLogin(t, open) })
	t.Run("RedeemMFAQueuesMessages", func(t *testing.T) { testWebhookRedeemMFA(t, open) })
	t.Run("ClaimOldestDueAndLease", func(t *testing.T) { testWebhookClaim(t, open) })
	t.Run("RecordAttempts", func(t *testing.T) { testWebhookRecord(t, open) })
	t.Run("Requeue", func(t *testing.T) { testWebhookRequeue(t, open) })
	t.Run("ListDeliveriesPages", func(t *testing.T) { testWebhookList(t, open) })
	t.Run("QueueDepthAndPurge", func(t *testing.T) { testWebhookPurge(t, open) })
	t.Run("ConcurrentClaimOfOneDelivery", func(t *testing.T) { testWebhookConcurrentClaim(t, open) })
	t.Run("UsersWithRole", func(t *testing.T) { testWebhookUsersWithRole(t, open) })
}

// fullEndpoint sets every field; the sealed secrets hold every byte value
// (a store that treats them as text mangles them).
func fullEndpoint(id string, created time.Time) *auth.WebhookEndpoint {
	secret := make([]byte, 60)
	for i := range secret {
		secret[i] = byte(255 - i*4)
	}
	prev := append([]byte{0, 1, 0xff, 0x80, 0}, []byte(id)...)
	until := created.Add(24*time.Hour + 5*time.Microsecond)
	failing := created.Add(3*time.Hour + 7*time.Microsecond)
	return &auth.WebhookEndpoint{
		ID: id, URL: "https://hooks.example.com/in?x=1&y=%3C2%3E&ü=☃",
		Events:      []string{"user.created", "*", "login.failed"},
		Description: `CRM "sync" <b>ünïcode</b>, commas`,
		Enabled:     true, Secret: secret, PreviousSecret: prev, PreviousSecretExpiresAt: &until,
		FromConfig: true, DisabledReason: "", FailingSince: &failing,
		CreatedAt: created, UpdatedAt: created.Add(time.Second),
	}
}

// minimalEndpoint is an enabled endpoint with nothing optional set.
func minimalEndpoint(id string, created time.Time) *auth.WebhookEndpoint {
	return &auth.WebhookEndpoint{ID: id, URL: "https://example.com/" + id, Events: []string{"*"}, Enabled: true,
		Secret: []byte("sealed-" + id), CreatedAt: created, UpdatedAt: created}
}

func createEndpoint(t *testing.T, s WebhookBackend, e *auth.WebhookEndpoint) *auth.WebhookEndpoint {
	t.Helper()
	in := *e
	if err := s.CreateWebhookEndpoint(t.Context(), &in); err != nil {
		t.Fatalf("CreateWebhookEndpoint(%s): %v", e.ID, err)
	}
	return e
}

func getEndpoint(t *testing.T, s WebhookBackend, id string) *auth.WebhookEndpoint {
	t.Helper()
	e, err := s.WebhookEndpoint(t.Context(), id)
	if err != nil {
		t.Fatalf("WebhookEndpoint(%s): %v", id, err)
	}
	return e
}

func checkEndpoint(t *testing.T, got, want *auth.WebhookEndpoint) {
	t.Helper()
	switch {
	case got.ID != want.ID, got.URL != want.URL, !slices.Equal(got.Events, want.Events), got.Description != want.Description,
		got.Enabled != want.Enabled, got.FromConfig != want.FromConfig, got.DisabledReason != want.DisabledReason:
		t.Errorf("endpoint = %+v\nwant %+v", got, want)
	}
	if !bytes.Equal(got.Secret, want.Secret) || !bytes.Equal(got.PreviousSecret, want.PreviousSecret) {
		t.Errorf("endpoint %s secrets = %x / %x, want %x / %x", want.ID, got.Secret, got.PreviousSecret, want.Secret, want.PreviousSecret)
	}
	if (want.PreviousSecret == nil) != (got.PreviousSecret == nil) {
		t.Errorf("endpoint %s previous secret nil = %v, want %v", want.ID, got.PreviousSecret == nil, want.PreviousSecret == nil)
	}
	sameTimePtr(t, "PreviousSecretExpiresAt", got.PreviousSecretExpiresAt, want.PreviousSecretExpiresAt)
	sameTimePtr(t, "FailingSince", got.FailingSince, want.FailingSince)
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("endpoint %s times = %v, %v; want %v, %v", want.ID, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
}

func sameTimePtr(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case (got == nil) != (want == nil):
		t.Errorf("%s = %v, want %v", what, got, want)
	case got != nil && !got.Equal(*want):
		t.Errorf("%s = %v, want %v", what, *got, *want)
	}
}

func testWebhookEndpointRoundTrip(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	full := createEndpoint(t, s, fullEndpoint("ep-full", at(time.Minute)))
	minimal := createEndpoint(t, s, minimalEndpoint("ep-min", at(0)))
	checkEndpoint(t, getEndpoint(t, s, "ep-full"), full)
	checkEndpoint(t, getEndpoint(t, s, "ep-min"), minimal)
	all, err := s.ListWebhookEndpoints(t.Context())
	if err != nil {
		t.Fatalf("ListWebhookEndpoints: %v", err)
	}
	var ids []string
	for _, e := range all {
		ids = append(ids, e.ID)
	}
	wantIDs(t, "endpoints (oldest first)", ids, "ep-min", "ep-full")
}

func testWebhookEndpointUnknown(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	if err := s.CreateWebhookEndpoint(t.Context(), minimalEndpoint("ep-1", at(time.Second))); auth.ErrorCode(err) != auth.ECONFLICT {
		t.Errorf("CreateWebhookEndpoint of a taken id = %v, want ECONFLICT", err)
	}
	if _, err := s.WebhookEndpoint(t.Context(), "ep-nope"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("WebhookEndpoint(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.UpdateWebhookEndpoint(t.Context(), minimalEndpoint("ep-nope", at(0))); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("UpdateWebhookEndpoint(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.RotateWebhookSecret(t.Context(), "ep-nope", []byte("x"), at(time.Hour), at(0)); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("RotateWebhookSecret(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteWebhookEndpoint(t.Context(), "ep-nope"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("DeleteWebhookEndpoint(unknown) = %v, want ErrNotFound", err)
	}
	if done, err := s.DisableWebhookEndpoint(t.Context(), "ep-nope", "gone", at(0)); err != nil || done {
		t.Errorf("DisableWebhookEndpoint(unknown) = %v, %v; want false, nil", done, err)
	}
}

func testWebhookEndpointUpdate(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	orig := createEndpoint(t, s, fullEndpoint("ep-1", at(0)))
	next := *orig
	next.URL, next.Events, next.Description = "https://other.example.com/x", []string{"password.changed"}, ""
	next.Enabled, next.FromConfig, next.DisabledReason, next.FailingSince = false, false, "why", nil
	next.UpdatedAt = at(time.Hour)
	// Secrets given to an update are not written: rotation has its own
	// method.
	next.Secret, next.PreviousSecret, next.PreviousSecretExpiresAt = []byte("ignored"), nil, nil
	if err := s.UpdateWebhookEndpoint(t.Context(), &next); err != nil {
		t.Fatalf("UpdateWebhookEndpoint: %v", err)
	}
	want := next
	want.Secret, want.PreviousSecret, want.PreviousSecretExpiresAt = orig.Secret, orig.PreviousSecret, orig.PreviousSecretExpiresAt
	checkEndpoint(t, getEndpoint(t, s, "ep-1"), &want)
}

func testWebhookRotate(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	orig := createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	until := at(24*time.Hour + time.Microsecond)
	if err := s.RotateWebhookSecret(t.Context(), "ep-1", []byte{0, 9, 0xfe}, until, at(time.Minute)); err != nil {
		t.Fatalf("RotateWebhookSecret: %v", err)
	}
	want := *orig
	want.Secret, want.PreviousSecret, want.PreviousSecretExpiresAt, want.UpdatedAt = []byte{0, 9, 0xfe}, orig.Secret, &until, at(time.Minute)
	checkEndpoint(t, getEndpoint(t, s, "ep-1"), &want)
	// A second rotation moves the second secret down: the first is gone.
	until2 := at(25 * time.Hour)
	if err := s.RotateWebhookSecret(t.Context(), "ep-1", []byte("third"), until2, at(time.Hour)); err != nil {
		t.Fatalf("RotateWebhookSecret: %v", err)
	}
	want.Secret, want.PreviousSecret, want.PreviousSecretExpiresAt, want.UpdatedAt = []byte("third"), []byte{0, 9, 0xfe}, &until2, at(time.Hour)
	checkEndpoint(t, getEndpoint(t, s, "ep-1"), &want)
}

func testWebhookFailing(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	first, later := at(time.Minute), at(time.Hour)
	for _, since := range []time.Time{first, later} {
		if err := s.SetWebhookEndpointFailing(t.Context(), "ep-1", &since); err != nil {
			t.Fatalf("SetWebhookEndpointFailing: %v", err)
		}
	}
	sameTimePtr(t, "FailingSince after two failures", getEndpoint(t, s, "ep-1").FailingSince, &first)
	if err := s.SetWebhookEndpointFailing(t.Context(), "ep-1", nil); err != nil {
		t.Fatalf("SetWebhookEndpointFailing(nil): %v", err)
	}
	sameTimePtr(t, "FailingSince after a success", getEndpoint(t, s, "ep-1").FailingSince, nil)

	done, err := s.DisableWebhookEndpoint(t.Context(), "ep-1", "410", at(2*time.Hour))
	if err != nil || !done {
		t.Fatalf("DisableWebhookEndpoint = %v, %v; want true, nil", done, err)
	}
	if done, err := s.DisableWebhookEndpoint(t.Context(), "ep-1", "again", at(3*time.Hour)); err != nil || done {
		t.Errorf("DisableWebhookEndpoint of a disabled endpoint = %v, %v; want false, nil", done, err)
	}
	e := getEndpoint(t, s, "ep-1")
	if e.Enabled || e.DisabledReason != "410" || !e.UpdatedAt.Equal(at(2*time.Hour)) {
		t.Errorf("disabled endpoint = enabled %v, reason %q, updated %v; want false, 410, %v", e.Enabled, e.DisabledReason, e.UpdatedAt, at(2*time.Hour))
	}
}

// msgID makes sortable message ids: n orders them.
func msgID(n int) string { return fmt.Sprintf("msg_01TEST%020d", n) }

func newMessage(n int, endpoint string, created time.Time) *auth.WebhookMessage {
	return &auth.WebhookMessage{ID: msgID(n), EndpointID: endpoint, Type: "user.created",
		Payload: []byte(fmt.Sprintf(`{"type":"user.created","data":{"n":%d,"name":"ünï \"q\" <b>"}}`, n)), CreatedAt: created}
}

func enqueueMessages(t *testing.T, s WebhookBackend, msgs ...*auth.WebhookMessage) {
	t.Helper()
	if err := s.EnqueueWebhooks(t.Context(), msgs); err != nil {
		t.Fatalf("EnqueueWebhooks: %v", err)
	}
}

func listDeliveries(t *testing.T, s WebhookBackend, endpoint, state string) []*auth.WebhookDelivery {
	t.Helper()
	ds, err := s.ListWebhookDeliveries(t.Context(), endpoint, state, "", 100)
	if err != nil {
		t.Fatalf("ListWebhookDeliveries(%s, %q): %v", endpoint, state, err)
	}
	return ds
}

func deliveryIDs(ds []*auth.WebhookDelivery) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func testWebhookDelete(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	createEndpoint(t, s, minimalEndpoint("ep-2", at(0)))
	enqueueMessages(t, s, newMessage(1, "ep-1", at(time.Second)), newMessage(2, "ep-2", at(time.Second)))
	if err := s.DeleteWebhookEndpoint(t.Context(), "ep-1"); err != nil {
		t.Fatalf("DeleteWebhookEndpoint: %v", err)
	}
	if _, err := s.WebhookEndpoint(t.Context(), "ep-1"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("WebhookEndpoint after delete = %v, want ErrNotFound", err)
	}
	wantIDs(t, "deliveries of the deleted endpoint", deliveryIDs(listDeliveries(t, s, "ep-1", "")))
	d, err := s.ClaimWebhookDelivery(t.Context(), at(time.Hour), lease)
	if err != nil || d.ID != msgID(2) {
		t.Fatalf("ClaimWebhookDelivery = %v, %v; want the other endpoint's %s", d, err, msgID(2))
	}
	if _, err := s.ClaimWebhookDelivery(t.Context(), at(time.Hour), lease); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a second claim = %v, want ErrNotFound (the deleted endpoint's delivery went with it)", err)
	}
}

func auditEvent(id string, msgs ...*auth.WebhookMessage) *auth.AuditEvent {
	return &auth.AuditEvent{ID: id, Type: auth.EventUserRegistered, At: at(time.Second), UserID: "u-1", IP: "192.0.2.1",
		Details: map[string]any{"source": "register"}, Webhooks: msgs}
}

func auditIDsOf(t *testing.T, s WebhookBackend, typ string) []string {
	t.Helper()
	es, err := s.ListAudit(t.Context(), auth.AuditFilter{Type: typ})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	return ids
}

func testWebhookAppendAudit(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	createEndpoint(t, s, minimalEndpoint("ep-2", at(0)))
	m1, m2 := newMessage(1, "ep-1", at(time.Second)), newMessage(2, "ep-2", at(time.Second))
	if err := s.AppendAudit(t.Context(), auditEvent("e-1", m1, m2)); err != nil {
		t.Fatalf("AppendAudit with messages: %v", err)
	}
	if err := s.AppendAudit(t.Context(), auditEvent("e-2")); err != nil {
		t.Fatalf("AppendAudit without messages: %v", err)
	}
	wantIDs(t, "audit events", auditIDsOf(t, s, auth.EventUserRegistered), "e-1", "e-2")
	for _, m := range []*auth.WebhookMessage{m1, m2} {
		ds := listDeliveries(t, s, m.EndpointID, "")
		if len(ds) != 1 {
			t.Fatalf("deliveries of %s = %q, want [%s]", m.EndpointID, deliveryIDs(ds), m.ID)
		}
		d := ds[0]
		if d.ID != m.ID || d.Type != m.Type || !bytes.Equal(d.Payload, m.Payload) || d.State != auth.DeliveryPending ||
			d.AttemptCount != 0 || len(d.Attempts) != 0 || !d.CreatedAt.Equal(m.CreatedAt) || !d.NextAttemptAt.Equal(m.CreatedAt) {
			t.Errorf("delivery = %+v (payload %s), want the pending message %+v, due at once", d, d.Payload, m)
		}
	}
}

// A message that cannot be stored takes its audit event with it, and an
// audit event that cannot be stored its messages.
func testWebhookAppendAuditAtomic(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	enqueueMessages(t, s, newMessage(1, "ep-1", at(time.Second)))
	if err := s.AppendAudit(t.Context(), auditEvent("e-1", newMessage(2, "ep-1", at(time.Second)), newMessage(1, "ep-1", at(time.Second)))); err == nil {
		t.Fatal("AppendAudit with a taken message id succeeded")
	}
	wantIDs(t, "audit events after a failed append", auditIDsOf(t, s, auth.EventUserRegistered))
	if err := s.AppendAudit(t.Context(), auditEvent("e-2")); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := s.AppendAudit(t.Context(), auditEvent("e-2", newMessage(3, "ep-1", at(time.Second)))); err == nil {
		t.Fatal("AppendAudit with a taken event id succeeded")
	}
	wantIDs(t, "deliveries after two failed appends", deliveryIDs(listDeliveries(t, s, "ep-1", "")), msgID(1))
}

func testWebhookFinishLogin(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	e := auditEvent("e-1", newMessage(1, "ep-1", at(time.Second)))
	e.Type = auth.EventLoginSucceeded
	f := newFamily("f-1", "u-1")
	if err := s.FinishPasswordLogin(t.Context(), "lock:u-1", e, f, newToken("tok-1", "f-1", f.CreatedAt)); err != nil {
		t.Fatalf("FinishPasswordLogin: %v", err)
	}
	wantIDs(t, "deliveries after a login", deliveryIDs(listDeliveries(t, s, "ep-1", "")), msgID(1))
	// A login that cannot finish (its family id is taken) queues nothing.
	e2 := auditEvent("e-2", newMessage(2, "ep-1", at(time.Second)))
	e2.Type = auth.EventLoginSucceeded
	if err := s.FinishPasswordLogin(t.Context(), "lock:u-1", e2, newFamily("f-1", "u-1"), newToken("tok-2", "f-1", f.CreatedAt)); err == nil {
		t.Fatal("FinishPasswordLogin with a taken family id succeeded")
	}
	wantIDs(t, "deliveries after a failed login", deliveryIDs(listDeliveries(t, s, "ep-1", "")), msgID(1))
}

func testWebhookRedeemMFA(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	r := &auth.MFARedemption{UserID: "u-1", Now: at(time.Minute), Audit: []*auth.AuditEvent{auditEvent("e-1", newMessage(1, "ep-1", at(time.Second)))}}
	if err := s.RedeemMFA(t.Context(), r); err != nil {
		t.Fatalf("RedeemMFA: %v", err)
	}
	wantIDs(t, "deliveries after a redemption", deliveryIDs(listDeliveries(t, s, "ep-1", "")), msgID(1))
	// A refused redemption (no such recovery code) queues nothing.
	bad := &auth.MFARedemption{UserID: "u-1", Now: at(time.Minute), RecoveryHash: hashOf("no such code"),
		Audit: []*auth.AuditEvent{auditEvent("e-2", newMessage(2, "ep-1", at(time.Second)))}}
	if err := s.RedeemMFA(t.Context(), bad); err == nil {
		t.Fatal("RedeemMFA of an unknown recovery code succeeded")
	}
	wantIDs(t, "deliveries after a refused redemption", deliveryIDs(listDeliveries(t, s, "ep-1", "")), msgID(1))
}

func claimDelivery(t *testing.T, s WebhookBackend, now time.Time, wantID string, attempt int) *auth.WebhookDelivery {
	t.Helper()
	d, err := s.ClaimWebhookDelivery(t.Context(), now, lease)
	if err != nil {
		t.Fatalf("ClaimWebhookDelivery at %v: %v; want %s", now, err, wantID)
	}
	if d.ID != wantID || d.AttemptCount != attempt {
		t.Fatalf("ClaimWebhookDelivery at %v = %s (attempt %d), want %s (attempt %d)", now, d.ID, d.AttemptCount, wantID, attempt)
	}
	return d
}

func noClaim(t *testing.T, s WebhookBackend, now time.Time, why string) {
	t.Helper()
	if d, err := s.ClaimWebhookDelivery(t.Context(), now, lease); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("ClaimWebhookDelivery at %v = %v, %v; want ErrNotFound (%s)", now, d, err, why)
	}
}

func testWebhookClaim(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	// Queued out of order; the later one is due later.
	m2, m1, m3 := newMessage(2, "ep-1", at(2*time.Second)), newMessage(1, "ep-1", at(time.Second)), newMessage(3, "ep-1", at(time.Hour))
	enqueueMessages(t, s, m2, m1, m3)
	now := at(time.Minute)
	d := claimDelivery(t, s, now, m1.ID, 1)
	if d.EndpointID != "ep-1" || d.Type != m1.Type || !bytes.Equal(d.Payload, m1.Payload) || d.State != auth.DeliveryPending || !d.CreatedAt.Equal(m1.CreatedAt) {
		t.Errorf("claimed delivery = %+v, want message %+v", d, m1)
	}
	claimDelivery(t, s, now, m2.ID, 1)
	noClaim(t, s, now, "both due ones are leased and the third is not due")
	// A lease that ran out (the worker died) frees the delivery again,
	// counting another attempt.
	claimDelivery(t, s, now.Add(lease), m1.ID, 2)
}

func testWebhookRecord(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	m := newMessage(1, "ep-1", at(time.Second))
	enqueueMessages(t, s, m)
	now := at(time.Minute)
	claimDelivery(t, s, now, m.ID, 1)
	a1 := &auth.WebhookAttempt{At: now.Add(time.Microsecond), StatusCode: 500, DurationMS: 1234, Error: "", ResponseExcerpt: "oops ☃ \"x\" <b>"}
	retryAt := now.Add(5 * time.Second)
	if err := s.RecordWebhookAttempt(t.Context(), m.ID, a1, auth.DeliveryPending, retryAt); err != nil {
		t.Fatalf("RecordWebhookAttempt(pending): %v", err)
	}
	noClaim(t, s, retryAt.Add(-time.Microsecond), "the retry is not due yet (the lease was released, the schedule holds)")
	claimDelivery(t, s, retryAt, m.ID, 2)
	a2 := &auth.WebhookAttempt{At: retryAt.Add(time.Second), StatusCode: 0, DurationMS: 10000, Error: "timeout: no answer in time"}
	if err := s.RecordWebhookAttempt(t.Context(), m.ID, a2, auth.DeliveryPending, retryAt.Add(time.Minute)); err != nil {
		t.Fatalf("RecordWebhookAttempt: %v", err)
	}
	claimDelivery(t, s, retryAt.Add(time.Minute), m.ID, 3)
	a3 := &auth.WebhookAttempt{At: retryAt.Add(time.Minute), StatusCode: 204, DurationMS: 3}
	if err := s.RecordWebhookAttempt(t.Context(), m.ID, a3, auth.DeliveryDelivered, time.Time{}); err != nil {
		t.Fatalf("RecordWebhookAttempt(delivered): %v", err)
	}
	noClaim(t, s, at(100*time.Hour), "a delivered message is done")
	ds := listDeliveries(t, s, "ep-1", auth.DeliveryDelivered)
	if len(ds) != 1 {
		t.Fatalf("delivered deliveries = %q, want [%s]", deliveryIDs(ds), m.ID)
	}
	if ds[0].AttemptCount != 3 || len(ds[0].Attempts) != 3 {
		t.Fatalf("delivery = %d attempts counted, %d logged; want 3, 3", ds[0].AttemptCount, len(ds[0].Attempts))
	}
	for i, want := range []*auth.WebhookAttempt{a1, a2, a3} {
		got := ds[0].Attempts[i]
		if !got.At.Equal(want.At) || got.StatusCode != want.StatusCode || got.DurationMS != want.DurationMS || got.Error != want.Error || got.ResponseExcerpt != want.ResponseExcerpt {
			t.Errorf("attempt %d = %+v, want %+v", i+1, got, *want)
		}
	}
	if err := s.RecordWebhookAttempt(t.Context(), "msg_nope", a1, auth.DeliveryFailed, time.Time{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("RecordWebhookAttempt(unknown) = %v, want ErrNotFound", err)
	}
	// A delivery failed without an attempt (its endpoint was disabled)
	// logs nothing.
	m2 := newMessage(2, "ep-1", at(time.Second))
	enqueueMessages(t, s, m2)
	claimDelivery(t, s, now, m2.ID, 1)
	if err := s.RecordWebhookAttempt(t.Context(), m2.ID, nil, auth.DeliveryFailed, time.Time{}); err != nil {
		t.Fatalf("RecordWebhookAttempt(nil, failed): %v", err)
	}
	ds = listDeliveries(t, s, "ep-1", auth.DeliveryFailed)
	if len(ds) != 1 || ds[0].ID != m2.ID || len(ds[0].Attempts) != 0 {
		t.Errorf("failed deliveries = %q, want [%s] without attempts", deliveryIDs(ds), m2.ID)
	}
}

func testWebhookRequeue(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	createEndpoint(t, s, minimalEndpoint("ep-2", at(0)))
	m := newMessage(1, "ep-1", at(time.Second))
	enqueueMessages(t, s, m)
	now := at(time.Minute)
	claimDelivery(t, s, now, m.ID, 1)
	a := &auth.WebhookAttempt{At: now, StatusCode: 500}
	if err := s.RecordWebhookAttempt(t.Context(), m.ID, a, auth.DeliveryFailed, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.RequeueWebhookDelivery(t.Context(), "ep-2", m.ID, at(time.Hour)); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("RequeueWebhookDelivery through another endpoint = %v, want ErrNotFound", err)
	}
	if err := s.RequeueWebhookDelivery(t.Context(), "ep-1", "msg_nope", at(time.Hour)); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("RequeueWebhookDelivery(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.RequeueWebhookDelivery(t.Context(), "ep-1", m.ID, at(time.Hour)); err != nil {
		t.Fatalf("RequeueWebhookDelivery: %v", err)
	}
	noClaim(t, s, at(time.Hour).Add(-time.Second), "requeued due at its time")
	d := claimDelivery(t, s, at(time.Hour), m.ID, 1) // a fresh attempt count
	if d.State != auth.DeliveryPending {
		t.Errorf("requeued state = %q, want pending", d.State)
	}
	ds := listDeliveries(t, s, "ep-1", "")
	if len(ds) != 1 || len(ds[0].Attempts) != 1 {
		t.Errorf("requeued delivery's log = %+v, want the earlier attempt kept", ds)
	}
}

func testWebhookList(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	createEndpoint(t, s, minimalEndpoint("ep-2", at(0)))
	for n := 1; n <= 5; n++ {
		enqueueMessages(t, s, newMessage(n, "ep-1", at(time.Duration(n)*time.Second)))
	}
	enqueueMessages(t, s, newMessage(6, "ep-2", at(time.Second)))
	// Fail message 2 and 4, deliver the others; ep-2's stays pending.
	now := at(time.Minute)
	for range 6 {
		d, err := s.ClaimWebhookDelivery(t.Context(), now, lease)
		if err != nil {
			t.Fatal(err)
		}
		state := auth.DeliveryDelivered
		if d.ID == msgID(2) || d.ID == msgID(4) {
			state = auth.DeliveryFailed
		}
		if d.ID == msgID(6) {
			state = auth.DeliveryPending
		}
		if err := s.RecordWebhookAttempt(t.Context(), d.ID, &auth.WebhookAttempt{At: now, StatusCode: 200}, state, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	page := func(state, before string, limit int) []string {
		t.Helper()
		ds, err := s.ListWebhookDeliveries(t.Context(), "ep-1", state, before, limit)
		if err != nil {
			t.Fatalf("ListWebhookDeliveries: %v", err)
		}
		return deliveryIDs(ds)
	}
	wantIDs(t, "first page", page("", "", 2), msgID(5), msgID(4))
	wantIDs(t, "second page", page("", msgID(4), 2), msgID(3), msgID(2))
	wantIDs(t, "last page", page("", msgID(2), 2), msgID(1))
	wantIDs(t, "failed", page(auth.DeliveryFailed, "", 10), msgID(4), msgID(2))
	wantIDs(t, "failed after 4", page(auth.DeliveryFailed, msgID(4), 10), msgID(2))
	wantIDs(t, "pending of ep-1", page(auth.DeliveryPending, "", 10))
}

func testWebhookPurge(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	old, oldPending, recent := newMessage(1, "ep-1", at(time.Second)), newMessage(2, "ep-1", at(2*time.Second)), newMessage(3, "ep-1", at(time.Hour))
	enqueueMessages(t, s, old, oldPending, recent)
	if n, err := s.WebhookQueueDepth(t.Context()); err != nil || n != 3 {
		t.Fatalf("WebhookQueueDepth = %d, %v; want 3", n, err)
	}
	now := at(2 * time.Hour)
	for _, id := range []string{old.ID, oldPending.ID, recent.ID} {
		claimDelivery(t, s, now, id, 1)
		state := auth.DeliveryDelivered
		if id == oldPending.ID {
			state = auth.DeliveryPending
		}
		if err := s.RecordWebhookAttempt(t.Context(), id, &auth.WebhookAttempt{At: now, StatusCode: 204}, state, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.WebhookQueueDepth(t.Context()); err != nil || n != 1 {
		t.Errorf("WebhookQueueDepth = %d, %v; want 1 (the one retrying)", n, err)
	}
	if err := s.PurgeWebhookDeliveries(t.Context(), at(time.Minute)); err != nil {
		t.Fatalf("PurgeWebhookDeliveries: %v", err)
	}
	wantIDs(t, "deliveries after purging those finished and queued before 1m", deliveryIDs(listDeliveries(t, s, "ep-1", "")), recent.ID, oldPending.ID)
}

func testWebhookConcurrentClaim(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	createEndpoint(t, s, minimalEndpoint("ep-1", at(0)))
	enqueueMessages(t, s, newMessage(1, "ep-1", at(time.Second)))
	const n = 32
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, err := s.ClaimWebhookDelivery(context.Background(), at(time.Minute), lease)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, auth.ErrNotFound):
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 || len(errs) > 0 {
		t.Fatalf("%d concurrent claims of one delivery: %d won, errors %v; want exactly one winner", n, wins, errs)
	}
}

func testWebhookUsersWithRole(t *testing.T, open func(t *testing.T) WebhookBackend) {
	s := open(t)
	for _, u := range []*auth.User{
		{ID: "u-1", Email: "a@example.com", Roles: []string{"admin"}},
		{ID: "u-2", Email: "b@example.com", Roles: []string{"user", "admin"}},
		{ID: "u-3", Email: "c@example.com", Roles: []string{"administrator"}},
		{ID: "u-4", Email: "d@example.com", Roles: []string{"super_admin"}},
		{ID: "u-5", Email: "e@example.com", Roles: []string{"superXadmin"}},
		{ID: "u-6", Email: "f@example.com"},
	} {
		u.CreatedAt, u.UpdatedAt = at(0), at(0)
		if err := s.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(role string) []string {
		t.Helper()
		us, err := s.UsersWithRole(t.Context(), role)
		if err != nil {
			t.Fatalf("UsersWithRole(%q): %v", role, err)
		}
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}
	wantIDs(t, "admins", ids("admin"), "u-1", "u-2")
	wantIDs(t, "super_admins (an _ is not a wildcard)", ids("super_admin"), "u-4")
	wantIDs(t, "nobody", ids("auditor"))
}
