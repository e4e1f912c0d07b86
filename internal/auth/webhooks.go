package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/internal/webhook"
)

// Outgoing webhooks (SPEC §16): endpoints an administrator registers, the
// event catalogue, and the outbox. When an audit event is appended, the
// service looks the event's webhook types up in an in-memory snapshot of
// the enabled endpoints and, only when some endpoint subscribes, attaches
// one prepared message per endpoint to the event (AuditEvent.Webhooks): the
// store inserts them in the transaction of the audit row, so a message is
// queued exactly when its event is recorded. With no endpoint nothing is
// read or written. internal/webhook's Worker then delivers the queued
// messages (ClaimWebhook, WebhookAttempted below hold the policy: retries,
// final failure, disabling an endpoint).

// Audit events of webhook endpoints and deliveries. Their details name the
// endpoint, never a secret.
const (
	EventWebhookEndpointCreated  = "webhook.endpoint.created"
	EventWebhookEndpointUpdated  = "webhook.endpoint.updated"
	EventWebhookEndpointDeleted  = "webhook.endpoint.deleted"
	EventWebhookEndpointDisabled = "webhook.endpoint.disabled"
	EventWebhookDeliveryFailed   = "webhook.delivery.failed"
	// An administrator queued a test event, or a delivery again.
	EventWebhookEndpointTested  = "webhook.endpoint.tested"
	EventWebhookDeliveryRetried = "webhook.delivery.retried"
)

// Webhook event types: user.created differs from the audit type it reports
// (user.registered); user.disabled and user.enabled are the audit types;
// webhook.test is the test event.
const (
	WebhookUserCreated  = "user.created"
	WebhookUserDisabled = EventUserDisabled
	WebhookUserEnabled  = EventUserEnabled
	WebhookTest         = "webhook.test"
)

// Sources of user.created besides SourceRegister, SourceSocial and
// SourceEmail (hooks.go): data.details.source of the message.
const (
	SourceCLI   = "cli"   // gatehouse user create
	SourceAdmin = "admin" // made by an administrator
)

// WebhookAllEvents subscribes an endpoint to the whole default catalogue.
const WebhookAllEvents = "*"

// WebhookCatalogue is the default catalogue of webhook event types: what
// "*" subscribes to.
var WebhookCatalogue = []string{
	WebhookUserCreated, EventUserUpdated, EventUserDeleted, WebhookUserDisabled, WebhookUserEnabled,
	EventEmailVerified, EventLoginSucceeded, EventPasswordChanged, EventPasswordReset, EventRoleChanged,
	EventSessionRevoked, EventMFATOTPEnrolled, EventMFATOTPRemoved, EventMFAReset, EventAPIKeyCreated,
	EventAPIKeyRevoked, EventProviderLinked, EventProviderUnlinked, EventConsentGranted,
}

// webhookExplicitOnly are event types an endpoint gets only when it names
// them (they are noise for most receivers, and "*" does not include them).
var webhookExplicitOnly = []string{EventLoginFailed}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// WebhookSecretGrace is how long the previous secret keeps signing after a
// rotation: deliveries carry both signatures meanwhile, so a receiver can
// switch to the new secret at its own pace.
const WebhookSecretGrace = 24 * time.Hour

// WebhookFailingLimit is how long an endpoint may get nothing but failures
// before it is disabled and the administrators are told by mail.
const WebhookFailingLimit = 5 * 24 * time.Hour

// webhookRetries are the waits before each retry (Standard Webhooks'
// schedule, about three days in all); each gets ±20 % jitter.
var webhookRetries = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

// WebhookEndpoint is a receiver of webhooks. Its secrets are sealed
// (AES-256-GCM under a key derived from the root secret, the endpoint id as
// AAD): a copy of the database alone cannot sign webhooks.
type WebhookEndpoint struct {
	ID          string
	URL         string
	Events      []string // event types, or "*"
	Description string
	Enabled     bool
	Secret      []byte // sealed
	// PreviousSecret (sealed) keeps signing until PreviousSecretExpiresAt
	// after a rotation; nil when there is none.
	PreviousSecret          []byte
	PreviousSecretExpiresAt *time.Time
	// FromConfig marks an endpoint of the configuration file (webhooks:),
	// read-only over the API.
	FromConfig bool
	// DisabledReason says why the server disabled the endpoint (a 410,
	// five days of failures); empty when an administrator did, or when it
	// is enabled.
	DisabledReason string
	// FailingSince is the first failed attempt since the last delivered
	// one; nil while deliveries succeed.
	FailingSince *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// WebhookMessage is one message queued for one endpoint.
type WebhookMessage struct {
	ID         string // msg_<ULID>, the webhook-id of every attempt
	EndpointID string
	Type       string
	Payload    []byte // JSON
	CreatedAt  time.Time
}

// WebhookDelivery is a queued message with its state and delivery log.
type WebhookDelivery struct {
	WebhookMessage
	State string // DeliveryPending, DeliveryDelivered or DeliveryFailed
	// AttemptCount counts the attempts since the message was queued (or
	// retried by an administrator); Attempts is the whole log, oldest
	// first (ListWebhookDeliveries fills it).
	AttemptCount  int
	Attempts      []WebhookAttempt
	NextAttemptAt time.Time
}

// WebhookAttempt is one entry of the delivery log.
type WebhookAttempt struct {
	At              time.Time
	StatusCode      int // 0: no answer
	DurationMS      int64
	Error           string
	ResponseExcerpt string // at most 1 KiB
}

// WebhookStore persists webhook endpoints and the outbox. Messages
// attached to an audit event (AuditEvent.Webhooks) are inserted by the
// AuditStore, and by every store method that appends audit events in its
// own transaction, together with the event.
type WebhookStore interface {
	CreateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	// WebhookEndpoint returns an endpoint; ErrNotFound.
	WebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error)
	// ListWebhookEndpoints returns every endpoint, oldest first.
	ListWebhookEndpoints(ctx context.Context) ([]*WebhookEndpoint, error)
	// UpdateWebhookEndpoint replaces the settings and state: the URL,
	// events, description, enabled, origin, DisabledReason, FailingSince
	// and UpdatedAt (not the secrets); ErrNotFound.
	UpdateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	// RotateWebhookSecret makes sealed the current secret and the current
	// one the previous, valid until previousUntil, in one statement (two
	// concurrent rotations cannot both keep the same previous secret);
	// ErrNotFound.
	RotateWebhookSecret(ctx context.Context, id string, sealed []byte, previousUntil, now time.Time) error
	// DeleteWebhookEndpoint deletes an endpoint and its deliveries;
	// ErrNotFound.
	DeleteWebhookEndpoint(ctx context.Context, id string) error
	// SetWebhookEndpointFailing sets FailingSince to since when it is not
	// set yet, or clears it when since is nil.
	SetWebhookEndpointFailing(ctx context.Context, id string, since *time.Time) error
	// DisableWebhookEndpoint disables an enabled endpoint with a reason and
	// reports whether this call did (false: already disabled, or gone).
	DisableWebhookEndpoint(ctx context.Context, id, reason string, now time.Time) (bool, error)

	// EnqueueWebhooks queues messages that belong to no audit event (a
	// test event), due at once.
	EnqueueWebhooks(ctx context.Context, msgs []*WebhookMessage) error
	// ListWebhookDeliveries returns an endpoint's deliveries in state
	// ("" for any) whose id sorts before beforeID ("" for the newest),
	// newest first, at most limit, each with its attempts.
	ListWebhookDeliveries(ctx context.Context, endpointID, state, beforeID string, limit int) ([]*WebhookDelivery, error)
	// RequeueWebhookDelivery makes a delivery of the endpoint pending and
	// due at now with a fresh attempt count (its log stays); ErrNotFound.
	RequeueWebhookDelivery(ctx context.Context, endpointID, id string, now time.Time) error
	// ClaimWebhookDelivery leases the next due pending delivery until
	// now+lease and counts the attempt, or returns ErrNotFound. A delivery
	// whose worker died becomes due again when its lease ends; two
	// claimers never get the same delivery.
	ClaimWebhookDelivery(ctx context.Context, now time.Time, lease time.Duration) (*WebhookDelivery, error)
	// RecordWebhookAttempt logs an attempt (a nil one logs nothing) and
	// moves the delivery to state: pending again due at next, or finished
	// (delivered, failed). It releases the lease; ErrNotFound when the
	// delivery is gone.
	RecordWebhookAttempt(ctx context.Context, id string, a *WebhookAttempt, state string, next time.Time) error
	// WebhookQueueDepth counts pending deliveries.
	WebhookQueueDepth(ctx context.Context) (int, error)
	// PurgeWebhookDeliveries deletes finished deliveries queued before t.
	PurgeWebhookDeliveries(ctx context.Context, before time.Time) error

	// UsersWithRole returns the accounts that have role (the
	// administrators told about a disabled endpoint).
	UsersWithRole(ctx context.Context, role string) ([]*User, error)
}

// WebhookConfig holds the webhook settings of SPEC §16 the service applies.
type WebhookConfig struct {
	// AllowPrivate admits http URLs and private, loopback and link-local
	// hosts (development; GATEHOUSE_WEBHOOK_ALLOW_PRIVATE). The delivery
	// client enforces the same at connect time.
	AllowPrivate bool
	// MaxAttempts bounds the attempts of one message (default 10).
	MaxAttempts int
}

// ---------------------------------------------------------------------------
// Endpoints: validation.

// Limits of an endpoint's settings.
const (
	maxWebhookURL         = 2000
	maxWebhookDescription = 500
	maxWebhookEvents      = 64
)

// ErrWebhookFromConfig refuses a change over the API to an endpoint declared
// in the configuration file.
var ErrWebhookFromConfig = &Error{Code: ECONFLICT, Message: "this endpoint is declared in the configuration file (webhooks:) and is read-only here: change it there and restart"}

// ErrWebhookDisabled refuses to queue a message for a disabled endpoint.
var ErrWebhookDisabled = &Error{Code: ECONFLICT, Message: "the endpoint is disabled: enable it first (PATCH with enabled: true)"}

// ValidateWebhookURL checks an endpoint URL: an absolute https URL (http
// too with allowPrivate) with a host, without user info or fragment; a host
// that is a loopback, private or link-local address (or "localhost") is
// refused unless allowPrivate. Names are resolved only when a delivery
// connects, and checked again there (internal/webhook), so re-binding a
// name to an internal address later does not help.
func ValidateWebhookURL(raw string, allowPrivate bool) error {
	bad := func(format string, args ...any) error {
		return &Error{Code: EINVALID, Field: "url", Message: fmt.Sprintf("url %q: ", clip(raw)) + fmt.Sprintf(format, args...)}
	}
	switch {
	case raw == "":
		return &Error{Code: EINVALID, Field: "url", Message: "url is required"}
	case len(raw) > maxWebhookURL:
		return &Error{Code: EINVALID, Field: "url", Message: fmt.Sprintf("url is too long (at most %d characters)", maxWebhookURL)}
	case !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return bad("must not contain spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("is not a valid URL")
	}
	if err := webhook.CheckScheme(u, allowPrivate); err != nil {
		if allowPrivate {
			return bad("must be an absolute http or https URL")
		}
		return bad("must be an absolute https URL")
	}
	switch {
	case u.User != nil:
		return bad("must not contain user info (name:password@): the signature authenticates deliveries")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("must not have a fragment (#)")
	case u.Opaque != "":
		return bad("is not a valid URL")
	}
	if allowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return bad("must not point at this machine (set GATEHOUSE_WEBHOOK_ALLOW_PRIVATE for development)")
	}
	if ip, err := netip.ParseAddr(host); err == nil && webhook.CheckAddr(ip) != nil {
		return bad("must not point at a loopback, private or link-local address (set GATEHOUSE_WEBHOOK_ALLOW_PRIVATE for development)")
	}
	return nil
}

// validWebhookEvent reports whether an endpoint may subscribe to typ.
func validWebhookEvent(typ string) bool {
	return typ == WebhookAllEvents || slices.Contains(WebhookCatalogue, typ) || slices.Contains(webhookExplicitOnly, typ)
}

// checkWebhookEvents validates a subscription list and returns it without
// duplicates, in the order given.
func checkWebhookEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, &Error{Code: EINVALID, Field: "events", Message: `events must name at least one event type, or "*" for the whole catalogue`}
	}
	if len(events) > maxWebhookEvents {
		return nil, &Error{Code: EINVALID, Field: "events", Message: fmt.Sprintf("at most %d event types", maxWebhookEvents)}
	}
	var out []string
	for _, e := range events {
		e = strings.TrimSpace(e)
		if !validWebhookEvent(e) {
			return nil, &Error{Code: EINVALID, Field: "events", Message: fmt.Sprintf("unknown event type %q (the catalogue: %s; also %s, or *)",
				clip(e), strings.Join(WebhookCatalogue, ", "), strings.Join(webhookExplicitOnly, ", "))}
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func checkWebhookDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if !utf8.ValidString(d) || strings.ContainsRune(d, 0) {
		return "", &Error{Code: EINVALID, Field: "description", Message: "description must be valid UTF-8 text"}
	}
	if utf8.RuneCountInString(d) > maxWebhookDescription {
		return "", &Error{Code: EINVALID, Field: "description", Message: fmt.Sprintf("description is too long (at most %d characters)", maxWebhookDescription)}
	}
	return d, nil
}

// WebhookInput is a new endpoint (the admin API, or an entry of the
// configuration file's webhooks:, which also gives Secret).
type WebhookInput struct {
	URL         string
	Events      []string
	Description string
	Enabled     *bool // nil: true
	// Secret is the configuration file's "whsec_…" secret; the API makes
	// a new one.
	Secret string
}

// ValidateConfigWebhook checks an entry of the configuration file's
// webhooks: with the rules of the admin API, plus its secret, and returns
// every problem.
func ValidateConfigWebhook(in WebhookInput, allowPrivate bool) []*Error {
	var errs []*Error
	add := func(err error) {
		var de *Error
		if errors.As(err, &de) {
			errs = append(errs, de)
		}
	}
	add(ValidateWebhookURL(in.URL, allowPrivate))
	if _, err := checkWebhookEvents(in.Events); err != nil {
		add(err)
	}
	if _, err := checkWebhookDescription(in.Description); err != nil {
		add(err)
	}
	switch key, err := webhook.ParseSecret(in.Secret); {
	case in.Secret == "":
		errs = append(errs, &Error{Code: EINVALID, Field: "secret", Message: `is required: "whsec_" followed by the base64 of at least 24 random bytes`})
	case err != nil:
		errs = append(errs, &Error{Code: EINVALID, Field: "secret", Message: `must be "whsec_" followed by standard base64`})
	case len(key) < 24:
		errs = append(errs, &Error{Code: EINVALID, Field: "secret", Message: "is too short: at least 24 bytes after whsec_ (the API makes 32)"})
	}
	return errs
}

// WebhookPatch changes an endpoint; nil fields stay.
type WebhookPatch struct {
	URL         *string
	Events      *[]string
	Description *string
	Enabled     *bool
}

// ---------------------------------------------------------------------------
// Endpoints: the admin API.

// CreateWebhook registers an endpoint and returns it with its new secret
// ("whsec_" + base64 of 32 random bytes), which is shown only this once.
func (s *Service) CreateWebhook(ctx context.Context, in WebhookInput, m Meta) (*WebhookEndpoint, string, error) {
	e, err := s.buildWebhook(in)
	if err != nil {
		return nil, "", err
	}
	e.ID = NewID()
	secret := webhook.NewSecret()
	if err := s.setWebhookSecret(e, secret); err != nil {
		return nil, "", err
	}
	now := s.now()
	e.CreatedAt, e.UpdatedAt = now, now
	if err := s.st.Webhooks.CreateWebhookEndpoint(ctx, e); err != nil {
		return nil, "", err
	}
	s.audit(ctx, EventWebhookEndpointCreated, m.Actor, m, webhookDetails(e, ""))
	s.webhooksChanged(ctx)
	return e, secret, nil
}

// buildWebhook validates an endpoint's settings.
func (s *Service) buildWebhook(in WebhookInput) (*WebhookEndpoint, error) {
	if err := ValidateWebhookURL(in.URL, s.cfg.Webhooks.AllowPrivate); err != nil {
		return nil, err
	}
	events, err := checkWebhookEvents(in.Events)
	if err != nil {
		return nil, err
	}
	desc, err := checkWebhookDescription(in.Description)
	if err != nil {
		return nil, err
	}
	enabled := in.Enabled == nil || *in.Enabled
	return &WebhookEndpoint{URL: in.URL, Events: events, Description: desc, Enabled: enabled}, nil
}

// webhookDetails are an endpoint's audit details: never a secret.
func webhookDetails(e *WebhookEndpoint, source string) map[string]any {
	d := map[string]any{"endpoint_id": e.ID, "url": e.URL, "events": e.Events, "enabled": e.Enabled}
	if source != "" {
		d["source"] = source
	}
	return d
}

// Webhooks lists every endpoint (sealed secrets included: callers outside
// this package show none of them).
func (s *Service) Webhooks(ctx context.Context) ([]*WebhookEndpoint, error) {
	return s.st.Webhooks.ListWebhookEndpoints(ctx)
}

// Webhook returns one endpoint.
func (s *Service) Webhook(ctx context.Context, id string) (*WebhookEndpoint, error) {
	return s.st.Webhooks.WebhookEndpoint(ctx, id)
}

// UpdateWebhook changes an endpoint's settings. Enabling it clears why it
// was disabled and its failure streak.
func (s *Service) UpdateWebhook(ctx context.Context, id string, p WebhookPatch, m Meta) (*WebhookEndpoint, error) {
	e, err := s.st.Webhooks.WebhookEndpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.FromConfig {
		return nil, ErrWebhookFromConfig
	}
	in := WebhookInput{URL: e.URL, Events: e.Events, Description: e.Description, Enabled: &e.Enabled}
	if p.URL != nil {
		in.URL = *p.URL
	}
	if p.Events != nil {
		in.Events = *p.Events
	}
	if p.Description != nil {
		in.Description = *p.Description
	}
	if p.Enabled != nil {
		in.Enabled = p.Enabled
	}
	next, err := s.buildWebhook(in)
	if err != nil {
		return nil, err
	}
	wasEnabled := e.Enabled
	e.URL, e.Events, e.Description, e.Enabled = next.URL, next.Events, next.Description, next.Enabled
	if e.Enabled {
		e.DisabledReason, e.FailingSince = "", nil
	}
	if !e.Enabled && wasEnabled {
		e.DisabledReason = ""
	}
	e.UpdatedAt = s.now()
	if err := s.st.Webhooks.UpdateWebhookEndpoint(ctx, e); err != nil {
		return nil, err
	}
	s.audit(ctx, EventWebhookEndpointUpdated, m.Actor, m, webhookDetails(e, ""))
	s.webhooksChanged(ctx)
	return e, nil
}

// DeleteWebhook deletes an endpoint and its deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, id string, m Meta) error {
	e, err := s.st.Webhooks.WebhookEndpoint(ctx, id)
	if err != nil {
		return err
	}
	if e.FromConfig {
		return ErrWebhookFromConfig
	}
	if err := s.st.Webhooks.DeleteWebhookEndpoint(ctx, id); err != nil {
		return err
	}
	s.audit(ctx, EventWebhookEndpointDeleted, m.Actor, m, map[string]any{"endpoint_id": id, "url": e.URL})
	s.webhooksChanged(ctx)
	return nil
}

// RotateWebhookSecret gives an endpoint a new secret and returns it (shown
// only this once); the previous one keeps signing until the time returned
// (WebhookSecretGrace), so deliveries carry both signatures meanwhile.
func (s *Service) RotateWebhookSecret(ctx context.Context, id string, m Meta) (string, time.Time, error) {
	e, err := s.st.Webhooks.WebhookEndpoint(ctx, id)
	if err != nil {
		return "", time.Time{}, err
	}
	if e.FromConfig {
		return "", time.Time{}, ErrWebhookFromConfig
	}
	secret := webhook.NewSecret()
	until, err := s.rotateWebhook(ctx, e, secret)
	if err != nil {
		return "", time.Time{}, err
	}
	s.audit(ctx, EventWebhookEndpointUpdated, m.Actor, m, map[string]any{"endpoint_id": e.ID, "secret_rotated": true, "previous_valid_until": until})
	s.webhooksChanged(ctx)
	return secret, until, nil
}

// rotateWebhook makes secret e's current secret and the current one its
// previous, valid for WebhookSecretGrace. (The sealed box moves as it is:
// its AAD names the endpoint, not the slot.)
func (s *Service) rotateWebhook(ctx context.Context, e *WebhookEndpoint, secret string) (time.Time, error) {
	now := s.now()
	until := now.Add(WebhookSecretGrace)
	next := &WebhookEndpoint{ID: e.ID}
	if err := s.setWebhookSecret(next, secret); err != nil {
		return time.Time{}, err
	}
	if err := s.st.Webhooks.RotateWebhookSecret(ctx, e.ID, next.Secret, until, now); err != nil {
		return time.Time{}, err
	}
	return until, nil
}

// TestWebhook queues a webhook.test message for one endpoint (whatever it
// subscribes to) and returns its id.
func (s *Service) TestWebhook(ctx context.Context, id string, m Meta) (string, error) {
	e, err := s.st.Webhooks.WebhookEndpoint(ctx, id)
	if err != nil {
		return "", err
	}
	if !e.Enabled {
		return "", ErrWebhookDisabled
	}
	now := s.now()
	payload, err := json.Marshal(webhookPayload{Type: WebhookTest, Timestamp: now.UTC().Format(time.RFC3339),
		Data: webhookData{Details: map[string]any{"endpoint_id": e.ID, "message": "a test event sent by an administrator"}}})
	if err != nil {
		return "", err
	}
	msg := &WebhookMessage{ID: webhook.NewMessageID(now), EndpointID: e.ID, Type: WebhookTest, Payload: payload, CreatedAt: now}
	if err := s.st.Webhooks.EnqueueWebhooks(ctx, []*WebhookMessage{msg}); err != nil {
		return "", err
	}
	s.audit(ctx, EventWebhookEndpointTested, m.Actor, m, map[string]any{"endpoint_id": e.ID, "message_id": msg.ID})
	s.notifyWebhooks()
	return msg.ID, nil
}

// WebhookDeliveries lists an endpoint's deliveries, newest first, in state
// ("" for any), a page at a time (cursor: the next_cursor of the previous
// page).
func (s *Service) WebhookDeliveries(ctx context.Context, id, state, cursor string, limit int) ([]*WebhookDelivery, string, error) {
	switch state {
	case "", DeliveryPending, DeliveryDelivered, DeliveryFailed:
	default:
		return nil, "", &Error{Code: EINVALID, Field: "status", Message: "status must be pending, delivered or failed"}
	}
	if _, err := s.st.Webhooks.WebhookEndpoint(ctx, id); err != nil {
		return nil, "", err
	}
	before := ""
	if cursor != "" {
		var err error
		if before, err = s.openCursor(cursor); err != nil {
			return nil, "", err
		}
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	ds, err := s.st.Webhooks.ListWebhookDeliveries(ctx, id, state, before, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = s.sealCursor(ds[len(ds)-1].ID)
	}
	return ds, next, nil
}

// RetryWebhookDelivery queues a delivery of the endpoint again, due at
// once, with a fresh attempt count.
func (s *Service) RetryWebhookDelivery(ctx context.Context, id, msgID string, m Meta) error {
	e, err := s.st.Webhooks.WebhookEndpoint(ctx, id)
	if err != nil {
		return err
	}
	if !e.Enabled {
		return ErrWebhookDisabled
	}
	if err := s.st.Webhooks.RequeueWebhookDelivery(ctx, id, msgID, s.now()); err != nil {
		return err
	}
	s.audit(ctx, EventWebhookDeliveryRetried, m.Actor, m, map[string]any{"endpoint_id": id, "message_id": msgID})
	s.notifyWebhooks()
	return nil
}

// SyncConfigWebhooks makes the endpoints of the configuration file
// (webhooks:) the stored ones: each is created, or updated when its
// settings or secret changed (a changed secret rotates: the old one signs
// for WebhookSecretGrace more), and endpoints of an earlier file that are
// gone from it are deleted. An endpoint's id is derived from its URL, so
// nodes starting together agree on it.
func (s *Service) SyncConfigWebhooks(ctx context.Context, ins []WebhookInput) error {
	m := Meta{IP: "config"}
	want := map[string]bool{}
	for i, in := range ins {
		if errs := ValidateConfigWebhook(in, s.cfg.Webhooks.AllowPrivate); len(errs) > 0 {
			return fmt.Errorf("webhooks[%d]: %s: %s", i, errs[0].Field, errs[0].Message)
		}
		e, err := s.buildWebhook(in)
		if err != nil {
			return fmt.Errorf("webhooks[%d]: %w", i, err)
		}
		e.ID, e.FromConfig = configWebhookID(in.URL), true
		if want[e.ID] {
			return fmt.Errorf("webhooks[%d]: the url %q is listed twice", i, in.URL)
		}
		want[e.ID] = true
		if err := s.syncConfigWebhook(ctx, e, in.Secret, m); err != nil {
			return fmt.Errorf("webhooks[%d]: %w", i, err)
		}
	}
	all, err := s.st.Webhooks.ListWebhookEndpoints(ctx)
	if err != nil {
		return err
	}
	for _, e := range all {
		if !e.FromConfig || want[e.ID] {
			continue
		}
		if err := s.st.Webhooks.DeleteWebhookEndpoint(ctx, e.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		s.audit(ctx, EventWebhookEndpointDeleted, "", m, map[string]any{"endpoint_id": e.ID, "url": e.URL, "source": "config"})
	}
	s.webhooksChanged(ctx)
	return nil
}

func (s *Service) syncConfigWebhook(ctx context.Context, e *WebhookEndpoint, secret string, m Meta) error {
	now := s.now()
	old, err := s.st.Webhooks.WebhookEndpoint(ctx, e.ID)
	if errors.Is(err, ErrNotFound) {
		if err := s.setWebhookSecret(e, secret); err != nil {
			return err
		}
		e.CreatedAt, e.UpdatedAt = now, now
		err = s.st.Webhooks.CreateWebhookEndpoint(ctx, e)
		if err == nil {
			s.audit(ctx, EventWebhookEndpointCreated, "", m, webhookDetails(e, "config"))
			return nil
		}
		if ErrorCode(err) != ECONFLICT {
			return err
		}
		// Another node starting at the same time created it.
		old, err = s.st.Webhooks.WebhookEndpoint(ctx, e.ID)
	}
	if err != nil {
		return err
	}
	same := old.FromConfig && old.URL == e.URL && slices.Equal(old.Events, e.Events) && old.Description == e.Description &&
		old.Enabled == e.Enabled
	cur, err := s.openWebhookSecret(old.ID, old.Secret)
	if err != nil {
		return err
	}
	want, _ := webhook.ParseSecret(secret)
	rotated := subtle.ConstantTimeCompare(cur, want) != 1
	if same && !rotated {
		return nil
	}
	next := *old
	next.URL, next.Events, next.Description, next.Enabled, next.FromConfig = e.URL, e.Events, e.Description, e.Enabled, true
	if next.Enabled && !old.Enabled {
		next.DisabledReason, next.FailingSince = "", nil
	}
	next.UpdatedAt = now
	if !same {
		if err := s.st.Webhooks.UpdateWebhookEndpoint(ctx, &next); err != nil {
			return err
		}
	}
	if rotated {
		if _, err := s.rotateWebhook(ctx, &next, secret); err != nil {
			return err
		}
	}
	d := webhookDetails(&next, "config")
	if rotated {
		d["secret_rotated"] = true
	}
	s.audit(ctx, EventWebhookEndpointUpdated, "", m, d)
	return nil
}

// configWebhookID derives the id of a configuration file's endpoint from
// its URL.
func configWebhookID(u string) string {
	sum := sha256.Sum256([]byte("gatehouse webhook config\x00" + u))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}

// ---------------------------------------------------------------------------
// Secrets at rest (AES-256-GCM, AAD = the endpoint id).

func (s *Service) webhookAEAD() (cipher.AEAD, error) {
	b, err := aes.NewCipher(s.keys.webhook)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func webhookAAD(id string) []byte { return []byte("webhook-secret\x00" + id) }

// setWebhookSecret seals a "whsec_" secret as e's current secret; e.ID must
// be set (it is the AAD: a sealed secret copied to another endpoint's row
// does not open).
func (s *Service) setWebhookSecret(e *WebhookEndpoint, secret string) error {
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		return &Error{Code: EINVALID, Field: "secret", Message: "invalid webhook secret", Cause: err}
	}
	g, err := s.webhookAEAD()
	if err != nil {
		return err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(key)+g.Overhead())
	_, _ = rand.Read(nonce)
	e.Secret = g.Seal(nonce, nonce, key, webhookAAD(e.ID))
	return nil
}

func (s *Service) openWebhookSecret(id string, sealed []byte) ([]byte, error) {
	g, err := s.webhookAEAD()
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, fmt.Errorf("auth: sealed secret of webhook endpoint %s is truncated", id)
	}
	out, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], webhookAAD(id))
	if err != nil {
		return nil, fmt.Errorf("auth: secret of webhook endpoint %s does not open (wrong root secret, or tampered)", id)
	}
	return out, nil
}

// webhookSecrets are the keys that sign a delivery at now: the current
// secret, and the previous one while it is within its grace period.
func (s *Service) webhookSecrets(e *WebhookEndpoint, now time.Time) ([][]byte, error) {
	cur, err := s.openWebhookSecret(e.ID, e.Secret)
	if err != nil {
		return nil, err
	}
	out := [][]byte{cur}
	if e.PreviousSecret != nil && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		prev, err := s.openWebhookSecret(e.ID, e.PreviousSecret)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// The snapshot of subscriptions.

// webhookSnapshotEvery is how often RunWebhookSnapshot reloads the
// endpoints, so changes made on other nodes reach this one.
const webhookSnapshotEvery = 5 * time.Second

// webhookSnapshot maps an event type to the enabled endpoints that get it.
type webhookSnapshot struct {
	byType map[string][]string // event type → endpoint ids
}

// webhookState is the service's view of the endpoints.
type webhookState struct {
	snap   atomic.Pointer[webhookSnapshot]
	mu     sync.Mutex // one load at a time
	notify func()     // wakes this node's delivery worker
}

// loadWebhooks reads the endpoints and replaces the snapshot.
func (s *Service) loadWebhooks(ctx context.Context) error {
	s.webhooks.mu.Lock()
	defer s.webhooks.mu.Unlock()
	eps, err := s.st.Webhooks.ListWebhookEndpoints(ctx)
	if err != nil {
		return err
	}
	snap := &webhookSnapshot{byType: map[string][]string{}}
	for _, e := range eps {
		if !e.Enabled {
			continue
		}
		seen := map[string]bool{}
		add := func(typ string) {
			if !seen[typ] {
				seen[typ] = true
				snap.byType[typ] = append(snap.byType[typ], e.ID)
			}
		}
		for _, ev := range e.Events {
			if ev == WebhookAllEvents {
				for _, typ := range WebhookCatalogue {
					add(typ)
				}
				continue
			}
			add(ev)
		}
	}
	s.webhooks.snap.Store(snap)
	return nil
}

// webhooksChanged reloads the snapshot after a change made here.
func (s *Service) webhooksChanged(ctx context.Context) {
	if err := s.loadWebhooks(context.WithoutCancel(ctx)); err != nil {
		s.log.ErrorContext(ctx, "webhooks: reloading the endpoints", "err", err)
		s.webhooks.snap.Store(nil) // the next event loads them again
	}
}

// ReloadWebhooks reads the endpoints now (at start-up).
func (s *Service) ReloadWebhooks(ctx context.Context) error { return s.loadWebhooks(ctx) }

// RunWebhookSnapshot reloads the endpoints every few seconds until ctx
// ends, so endpoints created, changed or disabled on another node take
// effect here too.
func (s *Service) RunWebhookSnapshot(ctx context.Context) {
	t := time.NewTicker(webhookSnapshotEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.loadWebhooks(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "webhooks: reloading the endpoints", "err", err)
			}
		}
	}
}

// subscriptions returns the snapshot (loading it on first use); nil when
// no enabled endpoint subscribes to anything.
func (s *Service) subscriptions(ctx context.Context) map[string][]string {
	snap := s.webhooks.snap.Load()
	if snap == nil {
		if err := s.loadWebhooks(ctx); err != nil {
			s.log.ErrorContext(ctx, "webhooks: loading the endpoints", "err", err)
			return nil
		}
		snap = s.webhooks.snap.Load()
	}
	if snap == nil || len(snap.byType) == 0 {
		return nil
	}
	return snap.byType
}

// notifyWebhooks wakes this node's delivery worker after messages were
// committed (other nodes' workers poll).
func (s *Service) notifyWebhooks() {
	if s.webhooks.notify != nil {
		s.webhooks.notify()
	}
}

// webhooksQueued wakes the worker when any of events carried messages.
func (s *Service) webhooksQueued(events ...*AuditEvent) {
	for _, e := range events {
		if e != nil && len(e.Webhooks) > 0 {
			s.notifyWebhooks()
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Messages of audit events.

// webhookTypes maps an audit event to the webhook event types it reports
// (none for most: the catalogue is the audit types minus noise).
func webhookTypes(e *AuditEvent) []string {
	switch e.Type {
	case EventUserRegistered:
		return []string{WebhookUserCreated}
	case EventUserRevoked:
		return []string{EventSessionRevoked}
	}
	if slices.Contains(WebhookCatalogue, e.Type) || slices.Contains(webhookExplicitOnly, e.Type) {
		return []string{e.Type}
	}
	return nil
}

// auditAbout appends an event about u, whom the caller holds: the webhook
// payload describes u as it is (an account just deleted, a fresh sign-in)
// without reading it again.
func (s *Service) auditAbout(ctx context.Context, typ string, u *User, m Meta, details map[string]any) {
	e := s.auditEvent(typ, u.ID, m, details)
	s.attachWebhooks(ctx, e, u)
	s.appendAudit(ctx, e)
}

// attachWebhooks prepares the messages of e for every enabled endpoint
// subscribed to its webhook types. It costs a map lookup when no endpoint
// is; otherwise the user (u, or read by e.UserID) goes into the payload.
func (s *Service) attachWebhooks(ctx context.Context, e *AuditEvent, u *User) {
	if e == nil || e.Webhooks != nil {
		return
	}
	subs := s.subscriptions(ctx)
	if subs == nil {
		return // no endpoint: nothing to prepare (the common case)
	}
	for _, typ := range webhookTypes(e) {
		eps := subs[typ]
		if len(eps) == 0 {
			continue
		}
		if u == nil && e.UserID != "" {
			if found, err := s.st.Users.UserByID(ctx, e.UserID); err == nil {
				u = found
			}
		}
		payload, err := json.Marshal(webhookPayload{Type: typ, Timestamp: e.At.UTC().Format(time.RFC3339),
			Data: webhookData{User: webhookUserOf(u, e.UserID), IP: e.IP, Details: webhookEventDetails(typ, e.Details)}})
		if err != nil {
			s.log.ErrorContext(ctx, "webhooks: encoding a payload", "type", typ, "err", err)
			continue
		}
		for _, id := range eps {
			e.Webhooks = append(e.Webhooks, &WebhookMessage{ID: webhook.NewMessageID(e.At), EndpointID: id, Type: typ, Payload: payload, CreatedAt: e.At})
		}
	}
}

// webhookPayload is a message's body (Standard Webhooks' shape): thin,
// never a secret, token or password hash.
type webhookPayload struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Data      webhookData `json:"data"`
}

type webhookData struct {
	User    *webhookUser   `json:"user,omitempty"`
	IP      string         `json:"ip,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

type webhookUser struct {
	ID            string   `json:"id"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name,omitempty"`
	Roles         []string `json:"roles"`
}

func webhookUserOf(u *User, id string) *webhookUser {
	switch {
	case u != nil:
		return &webhookUser{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Roles: append([]string{}, u.Roles...)}
	case id != "":
		return &webhookUser{ID: id, Roles: []string{}}
	}
	return nil
}

// webhookEventDetails are the details a message carries: the audit
// details without anything that could be a secret, and user.created's
// source.
func webhookEventDetails(typ string, d map[string]any) map[string]any {
	out := scrubDetails(d)
	if typ == WebhookUserCreated {
		if out == nil {
			out = map[string]any{}
		}
		if _, ok := out["source"]; !ok {
			out["source"] = SourceRegister
		}
	}
	return out
}

// secretWords mark detail keys that could hold a secret.
var secretWords = []string{"secret", "token", "password", "passwd", "hash", "cookie", "credential", "private", "otp", "recovery", "code", "key", "seed", "sealed"}

// secretPrefixes mark values that are Gatehouse secrets, password hashes or
// JWTs.
var secretPrefixes = []string{"gth_", "ghr_", "ghcs_", "whsec_", "$argon2", "$2a$", "$2b$", "$2y$", "eyJ"}

// secretKey reports a detail key that could name a secret. Identifiers
// (…_id) are kept unless they name a secret or token outright.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	strong := []string{"secret", "token", "password", "passwd", "hash"}
	if strings.HasSuffix(k, "_id") || strings.HasSuffix(k, "_ids") {
		return slices.ContainsFunc(strong, func(w string) bool { return strings.Contains(k, w) })
	}
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(k, w) })
}

func secretValue(v string) bool {
	return slices.ContainsFunc(secretPrefixes, func(p string) bool { return strings.HasPrefix(v, p) })
}

// scrubDetails copies details without keys or values that could be
// secrets, recursively.
func scrubDetails(d map[string]any) map[string]any {
	if len(d) == 0 {
		return nil
	}
	out := make(map[string]any, len(d))
	for k, v := range d {
		if secretKey(k) {
			continue
		}
		if v, ok := scrubValue(v); ok {
			out[k] = v
		}
	}
	return out
}

func scrubValue(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		return x, !secretValue(x)
	case []string:
		out := make([]string, 0, len(x))
		for _, s := range x {
			if !secretValue(s) {
				out = append(out, s)
			}
		}
		return out, true
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if e, ok := scrubValue(e); ok {
				out = append(out, e)
			}
		}
		return out, true
	case map[string]any:
		return scrubDetails(x), true
	case nil, bool, int, int64, float64, time.Time:
		return x, true
	}
	// Anything else goes through JSON and is scrubbed as what it encodes.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var back any
	if err := json.Unmarshal(b, &back); err != nil {
		return nil, false
	}
	if _, isObject := back.(map[string]any); !isObject {
		if _, isList := back.([]any); !isList {
			if s, ok := back.(string); ok {
				return s, !secretValue(s)
			}
			return back, true
		}
	}
	return scrubValue(back)
}

// ---------------------------------------------------------------------------
// Delivery: the policy behind internal/webhook's Worker.

// ClaimWebhook leases the next due delivery and returns it with its
// endpoint's URL and signing keys; nil when nothing is due. A delivery
// whose endpoint was deleted or disabled meanwhile fails at once.
func (s *Service) ClaimWebhook(ctx context.Context, now time.Time, lease time.Duration) (*webhook.Job, error) {
	now = now.UTC()
	for range 100 {
		d, err := s.st.Webhooks.ClaimWebhookDelivery(ctx, now, lease)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		e, err := s.st.Webhooks.WebhookEndpoint(ctx, d.EndpointID)
		reason := ""
		switch {
		case errors.Is(err, ErrNotFound):
			reason = "the endpoint was deleted"
		case err != nil:
			return nil, err // the lease runs out and another attempt comes
		case !e.Enabled:
			reason = "the endpoint is disabled"
		}
		var secrets [][]byte
		if reason == "" {
			if secrets, err = s.webhookSecrets(e, now); err != nil {
				s.log.ErrorContext(ctx, "webhooks: signing key", "endpoint", e.ID, "err", err)
				reason = "the endpoint's secret does not open (was the root secret changed?)"
			}
		}
		if reason != "" {
			if err := s.st.Webhooks.RecordWebhookAttempt(ctx, d.ID, &WebhookAttempt{At: now, Error: "not sent: " + reason}, DeliveryFailed, time.Time{}); err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			continue
		}
		return &webhook.Job{MsgID: d.ID, EndpointID: e.ID, Type: d.Type, URL: e.URL, Payload: d.Payload, Secrets: secrets, Attempt: d.AttemptCount}, nil
	}
	return nil, nil
}

// WebhookAttempted records an attempt and decides what follows: a 2xx is
// delivered; a 410 fails the message and disables the endpoint; any other
// answer (3xx included: redirects are not followed) or none is retried on
// the schedule (Retry-After, on a 429 or 503, is honoured: the retry comes
// no earlier), until MaxAttempts, when the message fails for good (audited).
// An endpoint that has got nothing but failures for WebhookFailingLimit is
// disabled and the administrators are mailed.
func (s *Service) WebhookAttempted(ctx context.Context, j *webhook.Job, o webhook.Outcome) (string, error) {
	at := o.At.UTC().Truncate(time.Microsecond)
	a := &WebhookAttempt{At: at, StatusCode: o.StatusCode, DurationMS: o.Duration.Milliseconds(), Error: o.Err, ResponseExcerpt: o.Excerpt}
	if a.Error == "" && o.StatusCode >= 300 && o.StatusCode < 400 {
		a.Error = "redirect not followed: a 3xx answer is a failed delivery"
	}
	st := s.st.Webhooks
	if o.Delivered() {
		if err := st.RecordWebhookAttempt(ctx, j.MsgID, a, DeliveryDelivered, time.Time{}); err != nil {
			return "", err
		}
		if e, err := st.WebhookEndpoint(ctx, j.EndpointID); err == nil && e.FailingSince != nil {
			if err := st.SetWebhookEndpointFailing(ctx, e.ID, nil); err != nil {
				return DeliveryDelivered, err
			}
		}
		return DeliveryDelivered, nil
	}
	if o.Gone() {
		if err := st.RecordWebhookAttempt(ctx, j.MsgID, a, DeliveryFailed, time.Time{}); err != nil {
			return "", err
		}
		return DeliveryFailed, s.disableWebhook(ctx, j.EndpointID, "the receiver answered 410 Gone", false)
	}
	e, err := st.WebhookEndpoint(ctx, j.EndpointID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return "", err
	}
	if e != nil {
		if e.FailingSince == nil {
			if err := st.SetWebhookEndpointFailing(ctx, e.ID, &at); err != nil {
				return "", err
			}
		} else if at.Sub(*e.FailingSince) >= WebhookFailingLimit {
			if err := st.RecordWebhookAttempt(ctx, j.MsgID, a, DeliveryFailed, time.Time{}); err != nil {
				return "", err
			}
			return DeliveryFailed, s.disableWebhook(ctx, e.ID, "nothing but failed deliveries for 5 days", true)
		}
	}
	maxAttempts := s.cfg.Webhooks.MaxAttempts
	if e == nil || j.Attempt >= maxAttempts {
		if err := st.RecordWebhookAttempt(ctx, j.MsgID, a, DeliveryFailed, time.Time{}); err != nil {
			return "", err
		}
		s.audit(ctx, EventWebhookDeliveryFailed, "", Meta{}, map[string]any{"endpoint_id": j.EndpointID, "msg_id": j.MsgID,
			"type": j.Type, "attempts": j.Attempt, "status_code": o.StatusCode, "error": a.Error})
		return DeliveryFailed, nil
	}
	wait := retryWait(j.Attempt)
	if o.RetryAfter > wait {
		wait = min(o.RetryAfter, 24*time.Hour)
	}
	if err := st.RecordWebhookAttempt(ctx, j.MsgID, a, DeliveryPending, at.Add(wait)); err != nil {
		return "", err
	}
	return "retrying", nil
}

// retryWait is the wait after the attempt'th failed attempt, with ±20 %
// jitter so that the retries of many messages do not arrive together.
func retryWait(attempt int) time.Duration {
	d := webhookRetries[min(max(attempt, 1), len(webhookRetries))-1]
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

// disableWebhook disables an endpoint the server gave up on, audits it and,
// with mail, tells every administrator.
func (s *Service) disableWebhook(ctx context.Context, id, reason string, mail bool) error {
	done, err := s.st.Webhooks.DisableWebhookEndpoint(ctx, id, reason, s.now())
	if err != nil || !done {
		return err
	}
	s.audit(ctx, EventWebhookEndpointDisabled, "", Meta{}, map[string]any{"endpoint_id": id, "reason": reason})
	s.webhooksChanged(ctx)
	if !mail {
		return nil
	}
	admins, err := s.st.Webhooks.UsersWithRole(ctx, "admin")
	if err != nil {
		return err
	}
	for _, u := range admins {
		if u.Disabled {
			continue
		}
		if err := s.enqueue(ctx, MailWebhookDisabled, u.Email, u.ID); err != nil {
			s.log.ErrorContext(ctx, "mail enqueue failed", "kind", MailWebhookDisabled, "err", err)
		}
	}
	return nil
}

// WebhookQueueDepth counts the deliveries waiting (the queue-depth metric).
func (s *Service) WebhookQueueDepth(ctx context.Context) (int, error) {
	return s.st.Webhooks.WebhookQueueDepth(ctx)
}
