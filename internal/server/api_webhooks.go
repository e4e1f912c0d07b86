package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// WebhookBody is a webhook endpoint as the admin API shows it: its
// settings and state, never a secret.
type WebhookBody struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Events                  []string   `json:"events"`
	Description             string     `json:"description"`
	Enabled                 bool       `json:"enabled"`
	FromConfig              bool       `json:"from_config" doc:"Declared in the configuration file (webhooks:): read-only here"`
	DisabledReason          string     `json:"disabled_reason,omitempty" doc:"Why the server disabled the endpoint (a 410 answer, five days of failures)"`
	FailingSince            *time.Time `json:"failing_since,omitempty" doc:"The first failed attempt since the last delivered one"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty" doc:"After a rotation: until when the previous secret also signs"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

func webhookView(e *auth.WebhookEndpoint) WebhookBody {
	return WebhookBody{ID: e.ID, URL: e.URL, Events: nonNil(e.Events), Description: e.Description, Enabled: e.Enabled,
		FromConfig: e.FromConfig, DisabledReason: e.DisabledReason, FailingSince: e.FailingSince,
		PreviousSecretExpiresAt: e.PreviousSecretExpiresAt, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

// CreatedWebhookBody is the answer to a registration: the endpoint and its
// secret, shown this once.
type CreatedWebhookBody struct {
	WebhookBody
	Secret string `json:"secret" doc:"whsec_ + the base64 of 32 random bytes: the signing key of Standard Webhooks. It is shown only once: store it now."`
}

type createWebhookInput struct {
	Body struct {
		URL         string   `json:"url" minLength:"1" maxLength:"2000" doc:"https (http too with GATEHOUSE_WEBHOOK_ALLOW_PRIVATE); no user info or fragment"`
		Events      []string `json:"events" minItems:"1" maxItems:"64" doc:"Event types (see docs/webhooks.md), or [\"*\"] for the default catalogue; login.failed only when named"`
		Description string   `json:"description,omitempty" maxLength:"500"`
		Enabled     *bool    `json:"enabled,omitempty" doc:"Default true"`
	}
}

type createWebhookOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         CreatedWebhookBody
}

type webhookOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         WebhookBody
}

type listWebhooksOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Webhooks []WebhookBody `json:"webhooks"`
	}
}

type webhookIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

type patchWebhookInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		URL         *string   `json:"url,omitempty" minLength:"1" maxLength:"2000"`
		Events      *[]string `json:"events,omitempty" minItems:"1" maxItems:"64"`
		Description *string   `json:"description,omitempty" maxLength:"500"`
		Enabled     *bool     `json:"enabled,omitempty" doc:"true also clears disabled_reason and failing_since"`
	}
}

type rotateWebhookSecretOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		ID                      string    `json:"id"`
		Secret                  string    `json:"secret" doc:"The new secret. It is shown only once: store it now."`
		PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at" doc:"Until then (24 hours) deliveries carry a signature with each secret"`
	}
}

type testWebhookOutput struct {
	Body struct {
		ID string `json:"id" doc:"The queued message's id (its webhook-id)"`
	}
}

type webhookDeliveriesInput struct {
	ID     string `path:"id" maxLength:"64"`
	Status string `query:"status" enum:"pending,delivered,failed" doc:"Only deliveries in this state"`
	Cursor string `query:"cursor" maxLength:"512" doc:"Opaque cursor from next_cursor"`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
}

// WebhookAttemptBody is one attempt of a delivery.
type WebhookAttemptBody struct {
	At              time.Time `json:"at"`
	StatusCode      int       `json:"status_code" doc:"0 when no answer arrived"`
	DurationMS      int64     `json:"duration_ms"`
	Error           string    `json:"error" doc:"Why no answer arrived, or why the answer was a failure"`
	ResponseExcerpt string    `json:"response_excerpt" doc:"The first KiB of the answer's body"`
}

// WebhookDeliveryBody is one message to an endpoint and its delivery log.
type WebhookDeliveryBody struct {
	ID            string               `json:"id" doc:"msg_<ULID>: the webhook-id of every attempt"`
	Type          string               `json:"type"`
	State         string               `json:"state" enum:"pending,delivered,failed"`
	CreatedAt     time.Time            `json:"created_at"`
	NextAttemptAt *time.Time           `json:"next_attempt_at,omitempty" doc:"Pending deliveries: when the next attempt is due"`
	Attempts      []WebhookAttemptBody `json:"attempts"`
}

type webhookDeliveriesOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Deliveries []WebhookDeliveryBody `json:"deliveries"`
		NextCursor string                `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page"`
	}
}

type webhookDeliveryInput struct {
	ID    string `path:"id" maxLength:"64"`
	MsgID string `path:"msg_id" maxLength:"64"`
}

func (s *Server) registerWebhookRoutes(api huma.API) {
	tags := []string{"webhooks"}
	register(s, api, huma.Operation{
		OperationID: "admin-create-webhook", Method: http.MethodPost, Path: "/v1/admin/webhooks", Tags: tags,
		Summary:     "Register a webhook endpoint (scope admin)",
		Description: "Events are delivered signed (Standard Webhooks) with the secret in this answer, which is shown only once; it is stored sealed.",
		Security:    secAdmin, DefaultStatus: http.StatusCreated, Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *createWebhookInput) (*createWebhookOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		b := in.Body
		e, secret, err := s.auth.CreateWebhook(ctx, auth.WebhookInput{URL: b.URL, Events: b.Events, Description: b.Description, Enabled: b.Enabled}, meta(ctx))
		if err != nil {
			return nil, err
		}
		return &createWebhookOutput{CacheControl: "no-store", Body: CreatedWebhookBody{WebhookBody: webhookView(e), Secret: secret}}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-list-webhooks", Method: http.MethodGet, Path: "/v1/admin/webhooks", Tags: tags,
		Summary: "List webhook endpoints (scope admin)", Security: secAdmin, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*listWebhooksOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		es, err := s.auth.Webhooks(ctx)
		if err != nil {
			return nil, err
		}
		out := &listWebhooksOutput{CacheControl: "no-store"}
		out.Body.Webhooks = make([]WebhookBody, 0, len(es))
		for _, e := range es {
			out.Body.Webhooks = append(out.Body.Webhooks, webhookView(e))
		}
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-get-webhook", Method: http.MethodGet, Path: "/v1/admin/webhooks/{id}", Tags: tags,
		Summary: "Get a webhook endpoint (scope admin)", Security: secAdmin, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *webhookIDInput) (*webhookOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		e, err := s.auth.Webhook(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &webhookOutput{CacheControl: "no-store", Body: webhookView(e)}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-patch-webhook", Method: http.MethodPatch, Path: "/v1/admin/webhooks/{id}", Tags: tags,
		Summary:     "Change a webhook endpoint (scope admin)",
		Description: "Members left out stay as they are. Endpoints from the configuration file are read-only (409).",
		Security:    secAdmin, Errors: []int{401, 403, 404, 409, 422},
	}, func(ctx context.Context, in *patchWebhookInput) (*webhookOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		b := in.Body
		e, err := s.auth.UpdateWebhook(ctx, in.ID, auth.WebhookPatch{URL: b.URL, Events: b.Events, Description: b.Description, Enabled: b.Enabled}, meta(ctx))
		if err != nil {
			return nil, err
		}
		return &webhookOutput{CacheControl: "no-store", Body: webhookView(e)}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-delete-webhook", Method: http.MethodDelete, Path: "/v1/admin/webhooks/{id}", Tags: tags,
		Summary:     "Delete a webhook endpoint and its delivery log (scope admin)",
		Description: "Endpoints from the configuration file are read-only (409).",
		Security:    secAdmin, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *webhookIDInput) (*struct{}, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		return nil, s.auth.DeleteWebhook(ctx, in.ID, meta(ctx))
	})

	register(s, api, huma.Operation{
		OperationID: "admin-rotate-webhook-secret", Method: http.MethodPost, Path: "/v1/admin/webhooks/{id}/secret", Tags: tags,
		Summary:     "Rotate a webhook endpoint's secret (scope admin)",
		Description: "Returns the new secret once. For 24 hours deliveries carry two signatures, one with each secret, so the receiver can switch at its own pace. Endpoints from the configuration file are read-only (409).",
		Security:    secAdmin, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *webhookIDInput) (*rotateWebhookSecretOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		secret, until, err := s.auth.RotateWebhookSecret(ctx, in.ID, meta(ctx))
		if err != nil {
			return nil, err
		}
		out := &rotateWebhookSecretOutput{CacheControl: "no-store"}
		out.Body.ID, out.Body.Secret, out.Body.PreviousSecretExpiresAt = in.ID, secret, until
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-test-webhook", Method: http.MethodPost, Path: "/v1/admin/webhooks/{id}/test", Tags: tags,
		Summary:     "Queue a webhook.test event for one endpoint (scope admin)",
		Description: "Delivered like any event, whatever the endpoint subscribes to. A disabled endpoint gets nothing (409).",
		Security:    secAdmin, DefaultStatus: http.StatusAccepted, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *webhookIDInput) (*testWebhookOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		id, err := s.auth.TestWebhook(ctx, in.ID, meta(ctx))
		if err != nil {
			return nil, err
		}
		out := &testWebhookOutput{}
		out.Body.ID = id
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-webhook-deliveries", Method: http.MethodGet, Path: "/v1/admin/webhooks/{id}/deliveries", Tags: tags,
		Summary: "The delivery log of a webhook endpoint, newest first (scope admin)", Security: secAdmin, Errors: []int{401, 403, 404, 422},
	}, func(ctx context.Context, in *webhookDeliveriesInput) (*webhookDeliveriesOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		ds, next, err := s.auth.WebhookDeliveries(ctx, in.ID, in.Status, in.Cursor, in.Limit)
		if err != nil {
			return nil, err
		}
		out := &webhookDeliveriesOutput{CacheControl: "no-store"}
		out.Body.Deliveries = make([]WebhookDeliveryBody, 0, len(ds))
		for _, d := range ds {
			b := WebhookDeliveryBody{ID: d.ID, Type: d.Type, State: d.State, CreatedAt: d.CreatedAt, Attempts: make([]WebhookAttemptBody, 0, len(d.Attempts))}
			if d.State == auth.DeliveryPending {
				next := d.NextAttemptAt
				b.NextAttemptAt = &next
			}
			for _, a := range d.Attempts {
				b.Attempts = append(b.Attempts, WebhookAttemptBody{At: a.At, StatusCode: a.StatusCode, DurationMS: a.DurationMS,
					Error: a.Error, ResponseExcerpt: a.ResponseExcerpt})
			}
			out.Body.Deliveries = append(out.Body.Deliveries, b)
		}
		out.Body.NextCursor = next
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-retry-webhook-delivery", Method: http.MethodPost, Path: "/v1/admin/webhooks/{id}/deliveries/{msg_id}/retry", Tags: tags,
		Summary:     "Send a delivery again (scope admin)",
		Description: "The message is queued again, due at once, with the same webhook-id and a fresh attempt budget; its log stays. A disabled endpoint gets nothing (409).",
		Security:    secAdmin, DefaultStatus: http.StatusAccepted, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *webhookDeliveryInput) (*struct{}, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		return nil, s.auth.RetryWebhookDelivery(ctx, in.ID, in.MsgID, meta(ctx))
	})
}
