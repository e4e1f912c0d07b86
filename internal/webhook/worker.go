package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Lease is how long a claimed delivery is reserved for one attempt: a
// worker that dies mid-attempt releases it by letting it expire, and any
// node's worker takes it up then.
const Lease = 2 * time.Minute

// ExcerptSize is how much of a receiver's response body is read and kept
// in the delivery log.
const ExcerptSize = 1024

// NewMessageID returns a webhook-id for a message made at t: "msg_" and a
// ULID, so ids sort by time.
func NewMessageID(t time.Time) string { return "msg_" + newULID(t) }

// Job is one delivery attempt to make: a queued message, the endpoint's URL
// and the secrets that sign it (two while a rotated secret is still live).
type Job struct {
	MsgID      string // msg_<ULID>: the webhook-id header, the same on every attempt
	EndpointID string
	Type       string
	URL        string
	Payload    []byte
	Secrets    [][]byte
	// Attempt counts this attempt (1 for the first).
	Attempt int
}

// Outcome is what one attempt got.
type Outcome struct {
	At         time.Time
	StatusCode int // 0 when no response arrived
	Duration   time.Duration
	// Err describes why no response arrived (a refused address, a
	// timeout); empty when one did.
	Err string
	// Excerpt is the start of the response body (at most ExcerptSize
	// bytes, valid UTF-8).
	Excerpt string
	// RetryAfter is the receiver's Retry-After on a 429 or 503 (0: none).
	RetryAfter time.Duration
}

// Delivered reports a 2xx answer: the message is delivered.
func (o Outcome) Delivered() bool { return o.StatusCode >= 200 && o.StatusCode < 300 }

// Gone reports a 410 answer: the receiver asks for the endpoint to be
// disabled.
func (o Outcome) Gone() bool { return o.StatusCode == http.StatusGone }

// Queue is what the worker needs of the outbox and its policy
// (auth.Service): ClaimWebhook leases the next due delivery (nil when none
// is due) and WebhookAttempted records an attempt and decides what follows
// (delivered, retried later, failed; disabling the endpoint), returning
// the result for the metrics: "delivered", "retrying" or "failed".
type Queue interface {
	ClaimWebhook(ctx context.Context, now time.Time, lease time.Duration) (*Job, error)
	WebhookAttempted(ctx context.Context, j *Job, o Outcome) (result string, err error)
	WebhookQueueDepth(ctx context.Context) (int, error)
}

// Worker drains the webhook outbox: it claims due deliveries (on any node;
// the lease keeps two workers off one delivery), POSTs them signed, and
// hands each outcome back to the Queue.
type Worker struct {
	Queue  Queue
	Client *http.Client // NewClient: SSRF checks at connect time, no redirects
	// UserAgent is sent with every delivery ("Gatehouse/<version>").
	UserAgent string
	Log       *slog.Logger
	// Poll is how often the outbox is checked when nobody calls Notify:
	// rows queued on other nodes are picked up within it.
	Poll time.Duration
	// Concurrency is how many deliveries are in flight at once on this
	// node, so one slow receiver does not hold up the others.
	Concurrency int
	// Delivery counts attempts by result and QueueDepth reports the
	// number of pending deliveries; either may be nil.
	Delivery   func(result string)
	QueueDepth func(n int)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time

	wake chan struct{}
}

// Init prepares the worker before Run, RunOnce or Notify are used.
func (w *Worker) Init() {
	w.wake = make(chan struct{}, 1)
	if w.Poll <= 0 {
		w.Poll = time.Second
	}
	if w.Concurrency <= 0 {
		w.Concurrency = 4
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Client == nil {
		w.Client = NewClient(ClientOptions{})
	}
}

// Notify wakes the worker: a delivery was just queued (after its commit).
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends; it returns once every attempt in flight has
// been recorded.
func (w *Worker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range w.Concurrency {
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Go(func() { w.depthLoop(ctx) })
	wg.Wait()
}

func (w *Worker) loop(ctx context.Context) {
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		for w.RunOnce(ctx) {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// depthLoop reports the queue depth every ten seconds.
func (w *Worker) depthLoop(ctx context.Context) {
	if w.QueueDepth == nil {
		return
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		if n, err := w.Queue.WebhookQueueDepth(ctx); err == nil {
			w.QueueDepth(n)
		} else if ctx.Err() == nil {
			w.Log.Warn("webhooks: queue depth", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce claims and attempts one due delivery; it reports whether there
// was one.
func (w *Worker) RunOnce(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	j, err := w.Queue.ClaimWebhook(ctx, w.Now(), Lease)
	if err != nil {
		if ctx.Err() == nil {
			w.Log.Warn("webhooks: claim", "err", err)
		}
		return false
	}
	if j == nil {
		return false
	}
	o := w.Attempt(ctx, j)
	// Record the outcome even when ctx ended during the attempt (a
	// shutdown): the attempt happened.
	result, err := w.Queue.WebhookAttempted(context.WithoutCancel(ctx), j, o)
	if err != nil {
		w.Log.Warn("webhooks: recording an attempt", "msg", j.MsgID, "err", err)
		return true
	}
	if w.Delivery != nil {
		w.Delivery(result)
	}
	// The log names the message and the endpoint, never the payload.
	w.Log.Info("webhook attempt", "msg", j.MsgID, "endpoint", j.EndpointID, "type", j.Type, "attempt", j.Attempt,
		"status", o.StatusCode, "result", result, "err", o.Err)
	return true
}

// Attempt POSTs one delivery and reports what came back. Redirects are not
// followed (a 3xx is an answer, and not a 2xx); at most ExcerptSize bytes
// of the body are read.
func (w *Worker) Attempt(ctx context.Context, j *Job) Outcome {
	at := w.Now()
	o := Outcome{At: at}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.URL, bytes.NewReader(j.Payload))
	if err != nil {
		o.Err = err.Error()
		return o
	}
	for k, v := range Headers(j.Secrets, j.MsgID, at, j.Payload) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.UserAgent)
	start := time.Now()
	res, err := w.Client.Do(req)
	if err != nil {
		o.Duration = time.Since(start)
		o.Err = attemptError(err)
		return o
	}
	body, rerr := io.ReadAll(io.LimitReader(res.Body, ExcerptSize))
	_ = res.Body.Close()
	o.Duration = time.Since(start)
	o.StatusCode = res.StatusCode
	o.Excerpt = excerpt(body)
	if rerr != nil && o.Excerpt == "" {
		o.Excerpt = "(reading the body: " + rerr.Error() + ")"
	}
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable {
		o.RetryAfter = ParseRetryAfter(res.Header.Get("Retry-After"), at)
	}
	return o
}

// attemptError is the delivery log's text for a failed request: the cause
// without Go's "Post \"url\": " prefix (the URL is the endpoint's).
func attemptError(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err.Error()
	}
	if ue.Timeout() {
		return "timeout: no answer in time"
	}
	return ue.Err.Error()
}

// excerpt makes b safe to keep and show: valid UTF-8, at most ExcerptSize
// bytes.
func excerpt(b []byte) string {
	if len(b) > ExcerptSize {
		b = b[:ExcerptSize]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	for len(s) > ExcerptSize {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// ParseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): seconds,
// or an HTTP date (relative to now). It returns 0 for a missing, malformed
// or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(7*24*3600))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
