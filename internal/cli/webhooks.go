package cli

import (
	"log/slog"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/config"
	"gatehouse/internal/server"
	"gatehouse/internal/webhook"
)

// newWebhookWorker builds this node's webhook delivery worker (SPEC §16):
// the SSRF-safe client (https only and public addresses only, checked at
// connect time, unless webhook_allow_private), the per-attempt timeout,
// and a poll of one second so rows queued on other nodes go out quickly.
// Its Queue is the auth service, set once that is built.
func newWebhookWorker(cfg *config.Config, log *slog.Logger, m *server.Metrics) *webhook.Worker {
	w := &webhook.Worker{
		Client:    webhook.NewClient(webhook.ClientOptions{AllowPrivate: cfg.WebhookAllowPrivate, Timeout: cfg.WebhookTimeout}),
		UserAgent: "Gatehouse/" + Version,
		Log:       log,
		Poll:      time.Second,
	}
	if m != nil {
		w.Delivery, w.QueueDepth = m.WebhookDelivery, m.WebhookQueueDepth
	}
	w.Init()
	return w
}

// configWebhooks are the endpoints of the configuration file (webhooks:).
func configWebhooks(cfg *config.Config) []auth.WebhookInput {
	out := make([]auth.WebhookInput, len(cfg.Webhooks))
	for i, w := range cfg.Webhooks {
		out[i] = w.Input()
	}
	return out
}
