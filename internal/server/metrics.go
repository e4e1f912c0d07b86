package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are Gatehouse's Prometheus metrics; every name starts with
// gatehouse_. Labels never carry user input beyond the matched route
// pattern, so cardinality stays bounded and no secret can leak into them.
type Metrics struct {
	Registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	logins      *prometheus.CounterVec
	hashWait    prometheus.Histogram
	rateLimited *prometheus.CounterVec
	oidc        *prometheus.CounterVec
	mfa         *prometheus.CounterVec
	// Webhooks (SPEC §16).
	webhookDeliveries *prometheus.CounterVec
	webhookQueue      prometheus.Gauge
}

// NewMetrics registers the metrics on a new registry (with the Go and
// process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_logins_total", Help: "Password logins by result (succeeded, failed).",
		}, []string{"result"}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_password_hash_wait_seconds", Help: "Time a password hash waited for an admission slot.",
			Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_rate_limited_total", Help: "Requests refused by a rate limit or lockout, by endpoint.",
		}, []string{"endpoint"}),
		oidc: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_oidc_logins_total", Help: "Social logins by provider and result.",
		}, []string{"provider", "result"}),
		mfa: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_mfa_challenges_total", Help: "Second-factor checks by method (totp, recovery_code, passkey, password) and result (succeeded, failed).",
		}, []string{"method", "result"}),
		webhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_webhook_deliveries_total", Help: "Webhook delivery attempts by result (delivered, retrying, failed).",
		}, []string{"result"}),
		webhookQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_webhook_queue_depth", Help: "Webhook messages waiting for delivery (pending, due or retrying later).",
		}),
	}
	m.Registry.MustRegister(m.webhookDeliveries, m.webhookQueue)
	m.Registry.MustRegister(m.requests, m.duration, m.logins, m.hashWait, m.rateLimited, m.oidc, m.mfa,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) request(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// Login counts a password login by result.
func (m *Metrics) Login(result string) { m.logins.WithLabelValues(result).Inc() }

// HashWait observes how long a hash waited for admission.
func (m *Metrics) HashWait(d time.Duration) { m.hashWait.Observe(d.Seconds()) }

// RateLimited counts a refusal by a limit.
func (m *Metrics) RateLimited(endpoint string) { m.rateLimited.WithLabelValues(endpoint).Inc() }

// MFAChallenge counts a second-factor check by method and result.
func (m *Metrics) MFAChallenge(method, result string) {
	if method == "" {
		method = "none"
	}
	m.mfa.WithLabelValues(method, result).Inc()
}

// OIDC counts a social login by provider and result.
func (m *Metrics) OIDC(provider, result string) { m.oidc.WithLabelValues(provider, result).Inc() }

// WebhookDelivery counts a webhook delivery attempt by result.
func (m *Metrics) WebhookDelivery(result string) { m.webhookDeliveries.WithLabelValues(result).Inc() }

// WebhookQueueDepth sets the number of webhook messages waiting.
func (m *Metrics) WebhookQueueDepth(n int) { m.webhookQueue.Set(float64(n)) }
