package revfeed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of ClientConfig.
const (
	// DefaultIdleTimeout is three heartbeats (GATEHOUSE_REVOCATION_HEARTBEAT,
	// 15 s): a stream silent for that long is dead, whatever TCP says.
	DefaultIdleTimeout = 45 * time.Second
	DefaultMinBackoff  = 100 * time.Millisecond
	// DefaultMaxBackoff is short so that a Gatehouse node's restart is
	// absorbed within seconds.
	DefaultMaxBackoff = 5 * time.Second

	maxLine = 1 << 20 // longest SSE line accepted; an event is far smaller
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the stream: Gatehouse's public URL + "/v1/revocations/stream".
	URL string
	// APIKey is a Gatehouse API key with scope introspect, sent as X-API-Key.
	APIKey string
	// HTTPClient makes the requests. Its Timeout is ignored (a stream lasts
	// up to an hour; IdleTimeout catches dead ones). Default: a client
	// that follows no redirects.
	HTTPClient *http.Client
	// Set receives the events. Required.
	Set *Set
	// Logger gets connections, refusals and malformed events. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock of LastContact and Status. Default time.Now.
	Now func() time.Time
	// IdleTimeout: a connection on which nothing, not even a heartbeat,
	// arrives for this long is dropped and made again. It also bounds the
	// wait for the response headers. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed connections
	// (exponential, with jitter). Defaults DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
}

// Status is how a Client's feed stands.
type Status struct {
	// Healthy: connected, and the Set is up to date (the snapshot is
	// complete on this connection, or this connection resumed one that
	// was), and something arrived within IdleTimeout.
	Healthy bool
	// Ready: a snapshot has been complete at least once since Run began.
	// Before that the Set may lack revocations.
	Ready bool
	// DownSince is when the feed stopped being healthy (when Run began,
	// before the first ready); zero while Healthy. For a connection found
	// silent, it is the last time anything arrived on it.
	DownSince time.Time
}

// Client follows Gatehouse's revocation feed over server-sent events (SPEC
// §15) and applies every event to a Set. Run does the work; the other
// methods are safe to call from any goroutine meanwhile.
//
// It connects, reads the snapshot up to the ready event, then live events;
// when the stream ends or falls silent for IdleTimeout it reconnects with
// Last-Event-ID (duplicates in the replay are harmless: Apply is
// idempotent), with exponential backoff and jitter. A 410 (cursor older
// than the retention) makes it start again without a cursor, from a fresh
// snapshot. The long-poll form of the feed (GET /v1/revocations) is not
// used.
type Client struct {
	cfg  ClientConfig
	http *http.Client
	log  *slog.Logger
	now  func() time.Time

	lastContact atomic.Int64 // Unix nanoseconds; 0 = never
	status      atomic.Pointer[Status]

	mu     sync.Mutex
	lastID string // guarded by mu
}

// NewClient checks cfg and returns a Client; Run starts it.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.URL == "" || cfg.Set == nil {
		return nil, errors.New("revfeed: NewClient needs a URL and a Set")
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	hc.Timeout = 0 // would cut every stream after it; the idle watchdog replaces it
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	c := &Client{cfg: cfg, http: hc, log: cfg.Logger, now: cfg.Now}
	c.status.Store(&Status{DownSince: cfg.Now()})
	return c, nil
}

// Status returns the feed's status, read at once.
func (c *Client) Status() Status { return *c.status.Load() }

// Healthy reports Status().Healthy.
func (c *Client) Healthy() bool { return c.status.Load().Healthy }

// Ready reports Status().Ready.
func (c *Client) Ready() bool { return c.status.Load().Ready }

// LastContact is when the last byte (an event, a heartbeat) arrived; zero
// before any.
func (c *Client) LastContact() time.Time {
	ns := c.lastContact.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// LastEventID is the cursor the next connection resumes from; empty for a
// fresh snapshot.
func (c *Client) LastEventID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

func (c *Client) setLastID(id string) {
	c.mu.Lock()
	c.lastID = id
	c.mu.Unlock()
}

var (
	errIdle = errors.New("revfeed: no heartbeat within the idle timeout")
	errGone = errors.New("revfeed: cursor older than the retention (410)")
	errBad  = errors.New("revfeed: cursor refused as malformed (400)")
)

// Run follows the feed until ctx ends, and then returns ctx's error. It
// never gives up: a refused key (401, 403) or an unreachable Gatehouse is
// logged and tried again after the backoff.
func (c *Client) Run(ctx context.Context) error {
	c.status.Store(&Status{Ready: c.Ready(), DownSince: c.now()})
	backoff := c.cfg.MinBackoff
	for {
		resumed := c.LastEventID() != ""
		synced, err := c.stream(ctx)
		if ctx.Err() != nil {
			c.markDown(false)
			return ctx.Err()
		}
		cursorRefused := errors.Is(err, errGone) || errors.Is(err, errBad)
		switch {
		case cursorRefused:
			c.setLastID("")
			c.log.WarnContext(ctx, "revfeed: starting again from a snapshot", "url", c.cfg.URL, "err", err)
			if resumed {
				continue // at once: with no cursor it cannot be refused so again
			}
		case synced:
			backoff = c.cfg.MinBackoff // it worked: the next failure starts short again
		}
		switch {
		case cursorRefused:
		case synced && errors.Is(err, io.EOF): // the hourly close: expected
			c.log.InfoContext(ctx, "revfeed: stream closed by the server, reconnecting", "url", c.cfg.URL)
		default:
			c.log.WarnContext(ctx, "revfeed: stream ended", "url", c.cfg.URL, "err", err, "retry_in", backoff)
		}
		// Full jitter on the upper half: nodes dropped together do not
		// come back together.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			c.markDown(false)
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// markDown records that the feed is no longer healthy. silent: the
// connection was found dead, so it was last known alive at LastContact.
func (c *Client) markDown(silent bool) {
	st := c.status.Load()
	if !st.Healthy {
		return
	}
	since := c.now()
	if last := c.LastContact(); silent && !last.IsZero() {
		since = last
	}
	c.status.Store(&Status{Ready: true, DownSince: since})
}

func (c *Client) markHealthy() {
	c.status.Store(&Status{Healthy: true, Ready: true})
}

// stream makes one connection and reads it until it ends. synced reports
// whether the Set was brought up to date on it.
func (c *Client) stream(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The watchdog: any byte pushes it back; silence for IdleTimeout
	// cancels the request, which ends the read.
	watchdog := time.AfterFunc(c.cfg.IdleTimeout, func() { cancel(errIdle) })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("X-API-Key", c.cfg.APIKey)
	lastID := c.LastEventID()
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return false, c.cause(ctx, err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusGone:
		return false, errGone
	case res.StatusCode == http.StatusBadRequest && lastID != "":
		return false, errBad
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		// Nothing passes until an operator fixes the key: say so loudly.
		c.log.ErrorContext(ctx, "revfeed: the API key is refused (it needs scope introspect)", "url", c.cfg.URL, "status", res.StatusCode)
		return false, fmt.Errorf("GET %s: status %d", c.cfg.URL, res.StatusCode)
	case res.StatusCode != http.StatusOK:
		return false, fmt.Errorf("GET %s: status %d", c.cfg.URL, res.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, fmt.Errorf("GET %s: Content-Type %q, want text/event-stream", c.cfg.URL, res.Header.Get("Content-Type"))
	}
	c.touch(watchdog)
	c.log.InfoContext(ctx, "revocation.feed.connected", "url", c.cfg.URL, "resumed", lastID != "")
	if lastID != "" && c.Ready() {
		// Resuming: the Set held everything up to lastID, and the replay
		// that follows fills the gap.
		c.markHealthy()
		synced = true
	}

	sc := bufio.NewScanner(&contactReader{r: res.Body, c: c, watchdog: watchdog})
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(scanLines)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if c.dispatch(ctx, &ev) {
				synced = true
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' { // a comment: the heartbeat
			c.cfg.Set.Prune(c.now())
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.typ = string(value)
		case "data":
			ev.data = append(append(ev.data, value...), '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id, ev.hasID = string(value), true
			}
		}
		// retry: ignored, the backoff is ours. Unknown fields: ignored
		// (the SSE specification).
	}
	err = sc.Err()
	if err == nil {
		err = io.EOF // the server closed the stream (it does after an hour)
	}
	err = c.cause(ctx, err)
	c.markDown(errors.Is(err, errIdle))
	return synced, err
}

// cause names the watchdog when it is what ended the request.
func (c *Client) cause(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errIdle) {
		return errIdle
	}
	return err
}

func (c *Client) touch(watchdog *time.Timer) {
	c.lastContact.Store(c.now().UnixNano())
	watchdog.Reset(c.cfg.IdleTimeout)
}

// contactReader records every read that brings bytes as contact.
type contactReader struct {
	r        io.Reader
	c        *Client
	watchdog *time.Timer
}

func (r *contactReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.c.touch(r.watchdog)
	}
	return n, err
}

type sseEvent struct {
	id    string
	hasID bool
	typ   string
	data  []byte
}

// dispatch handles one complete event, and reports whether it was ready.
// The cursor moves past an event only once it is applied, so a
// reconnection never skips one.
func (c *Client) dispatch(ctx context.Context, ev *sseEvent) (ready bool) {
	data := bytes.TrimSuffix(ev.data, []byte("\n"))
	switch {
	case ev.typ == "ready":
		var r struct {
			Cursor string `json:"cursor"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			c.log.WarnContext(ctx, "revfeed: malformed ready event", "err", err)
		}
		if _, err := ParseCursor(r.Cursor); err == nil {
			ev.id, ev.hasID = r.Cursor, true
		}
		if !c.Healthy() {
			c.log.InfoContext(ctx, "revfeed: snapshot complete", "url", c.cfg.URL, "revocations", c.cfg.Set.Len())
		}
		c.markHealthy()
		ready = true
	case len(data) > 0:
		var e Event
		if err := json.Unmarshal(data, &e); err != nil {
			// Skipped, not retried: the same bytes would come again.
			c.log.WarnContext(ctx, "revfeed: malformed event", "id", ev.id, "type", ev.typ, "err", err)
			break
		}
		if e.Type == "" {
			e.Type = ev.typ
		}
		c.cfg.Set.Apply(e)
	}
	if ev.hasID {
		c.setLastID(ev.id)
	}
	return ready
}

// scanLines splits at "\n", "\r\n" or "\r", the three line ends of
// text/event-stream.
func scanLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	for i, b := range data {
		switch b {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // a "\n" may follow
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
