package revfeed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testKey = "gth_feedKeyOfTheResourceServer0000000000000"

// fakeFeed serves /v1/revocations/stream as Gatehouse does: the snapshot,
// ready, then live events and heartbeats.
type fakeFeed struct {
	t   *testing.T
	srv *httptest.Server

	mu           sync.Mutex
	snapshot     []Event
	statuses     []int         // answers for the next connections; 0 = serve the stream
	refuseCursor int           // a status for every request with a Last-Event-ID, 0 = none
	heartbeat    time.Duration // 0: none
	silent       bool          // send nothing after ready, not even heartbeats
	conns        []http.Header // the request headers of every connection

	live chan Event
	drop chan struct{} // a receive ends the current stream
}

func newFakeFeed(t *testing.T, snapshot ...Event) *fakeFeed {
	t.Helper()
	f := &fakeFeed{t: t, snapshot: snapshot, live: make(chan Event), drop: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFeed) URL() string { return f.srv.URL + "/v1/revocations/stream" }

func (f *fakeFeed) connections() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.conns...)
}

func writeEvent(w http.ResponseWriter, ev Event) {
	b, _ := json.Marshal(ev)
	fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, b)
}

func (f *fakeFeed) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.conns = append(f.conns, r.Header.Clone())
	status := 0
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	if r.Header.Get("Last-Event-ID") != "" && f.refuseCursor != 0 {
		status = f.refuseCursor
	}
	if r.Header.Get("X-API-Key") != testKey {
		status = http.StatusUnauthorized
	}
	snapshot, heartbeat, silent := f.snapshot, f.heartbeat, f.silent
	f.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	cursor := "0-0"
	for _, ev := range snapshot {
		writeEvent(w, ev)
		cursor = ev.ID
	}
	fmt.Fprintf(w, "event: ready\ndata: {\"cursor\":%q}\n\n", cursor)
	_ = rc.Flush()
	var tick <-chan time.Time
	if heartbeat > 0 && !silent {
		tk := time.NewTicker(heartbeat)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-f.drop:
			return
		case <-tick:
			fmt.Fprint(w, ": heartbeat\n\n")
			_ = rc.Flush()
		case ev := <-f.live:
			writeEvent(w, ev)
			_ = rc.Flush()
		}
	}
}

// send emits a live event on the current stream.
func (f *fakeFeed) send(ev Event) {
	f.t.Helper()
	select {
	case f.live <- ev:
	case <-time.After(5 * time.Second):
		f.t.Fatal("no stream took the live event")
	}
}

// dropStream ends the current stream, as a node does after an hour.
func (f *fakeFeed) dropStream() {
	f.t.Helper()
	select {
	case f.drop <- struct{}{}:
	case <-time.After(5 * time.Second):
		f.t.Fatal("no stream to drop")
	}
}

func startClient(t *testing.T, set *Set, url string, edit ...func(*ClientConfig)) *Client {
	t.Helper()
	cfg := ClientConfig{URL: url, APIKey: testKey, Set: set, Logger: slog.New(slog.DiscardHandler),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	return c
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func sessionEvent(seq int, sid string) Event {
	at := time.Now().Truncate(time.Millisecond).UTC()
	return Event{ID: Cursor{Seq: int64(seq), At: at}.String(), Type: TypeSessionRevoked, At: at, SID: sid}
}

func revoked(s *Set, sid string) bool { _, ok := s.Revoked(Claims{SID: sid}); return ok }

func TestClientSnapshotThenLive(t *testing.T) {
	snap := []Event{sessionEvent(1, "fam1"), sessionEvent(2, "fam2")}
	f := newFakeFeed(t, snap...)
	set := NewSet(time.Hour)
	c := startClient(t, set, f.URL())
	if st := c.Status(); st.Healthy || st.Ready || st.DownSince.IsZero() {
		t.Fatalf("status before the first ready: %+v", st)
	}
	waitFor(t, "ready", c.Ready)
	if !c.Healthy() || !c.Status().DownSince.IsZero() {
		t.Fatalf("status after ready: %+v", c.Status())
	}
	if !revoked(set, "fam1") || !revoked(set, "fam2") {
		t.Fatal("snapshot not applied before ready")
	}
	if c.LastEventID() != snap[1].ID {
		t.Fatalf("LastEventID %q, want the ready cursor %q", c.LastEventID(), snap[1].ID)
	}
	if c.LastContact().IsZero() {
		t.Fatal("no LastContact after ready")
	}
	h := f.connections()[0]
	if h.Get("X-API-Key") != testKey || h.Get("Accept") != "text/event-stream" || h.Get("Last-Event-ID") != "" {
		t.Fatalf("first request headers: %v", h)
	}

	live := sessionEvent(3, "fam3")
	f.send(live)
	waitFor(t, "the live event", func() bool { return revoked(set, "fam3") })
	waitFor(t, "the cursor to move", func() bool { return c.LastEventID() == live.ID })
}

func TestClientReconnectsWithLastEventID(t *testing.T) {
	f := newFakeFeed(t, sessionEvent(1, "fam1"))
	set := NewSet(time.Hour)
	c := startClient(t, set, f.URL())
	waitFor(t, "ready", c.Ready)
	live := sessionEvent(7, "fam7")
	f.send(live)
	waitFor(t, "the cursor", func() bool { return c.LastEventID() == live.ID })

	f.dropStream()
	waitFor(t, "a second connection", func() bool { return len(f.connections()) == 2 })
	if got := f.connections()[1].Get("Last-Event-ID"); got != live.ID {
		t.Fatalf("reconnected with Last-Event-ID %q, want %q", got, live.ID)
	}
	waitFor(t, "healthy again", c.Healthy)
	f.send(sessionEvent(8, "fam8"))
	waitFor(t, "an event on the new stream", func() bool { return revoked(set, "fam8") })
}

// A cursor the server refuses, too old (410) or malformed (400), is
// dropped: the client starts again from a snapshot.
func TestClientStartsOverWhenTheCursorIsRefused(t *testing.T) {
	for _, status := range []int{http.StatusGone, http.StatusBadRequest} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			f := newFakeFeed(t, sessionEvent(1, "fam1"))
			f.refuseCursor = status
			set := NewSet(time.Hour)
			c := startClient(t, set, f.URL())
			waitFor(t, "ready", c.Ready)
			f.dropStream()
			waitFor(t, "two more connections", func() bool { return len(f.connections()) >= 3 })
			conns := f.connections()
			if conns[1].Get("Last-Event-ID") == "" {
				t.Fatal("the reconnection sent no Last-Event-ID")
			}
			if got := conns[2].Get("Last-Event-ID"); got != "" {
				t.Fatalf("after %d the client sent Last-Event-ID %q, want none (a fresh snapshot)", status, got)
			}
			waitFor(t, "healthy after the fresh snapshot", c.Healthy)
			if !revoked(set, "fam1") {
				t.Fatal("the set lost its state")
			}
		})
	}
}

func TestClientRetriesARefusedKey(t *testing.T) {
	f := newFakeFeed(t)
	f.statuses = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable}
	var logs syncBuffer
	c := startClient(t, NewSet(time.Hour), f.URL(), func(cfg *ClientConfig) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	waitFor(t, "ready after three refusals", c.Ready)
	if n := len(f.connections()); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
	if !strings.Contains(logs.String(), "API key is refused") {
		t.Fatalf("the refusal was not logged: %s", logs.String())
	}
}

func TestClientHeartbeatKeepsItHealthy(t *testing.T) {
	f := newFakeFeed(t)
	f.heartbeat = 20 * time.Millisecond
	c := startClient(t, NewSet(time.Hour), f.URL(), func(cfg *ClientConfig) { cfg.IdleTimeout = 300 * time.Millisecond })
	waitFor(t, "ready", c.Ready)
	first := c.LastContact()
	time.Sleep(700 * time.Millisecond) // more than two idle timeouts
	if n := len(f.connections()); n != 1 {
		t.Fatalf("%d connections: heartbeats did not keep the stream alive", n)
	}
	if !c.Healthy() || !c.LastContact().After(first) {
		t.Fatalf("healthy %v, last contact %v (first %v)", c.Healthy(), c.LastContact(), first)
	}
}

func TestClientDropsASilentStream(t *testing.T) {
	snap := sessionEvent(1, "fam1")
	f := newFakeFeed(t, snap)
	f.silent = true
	c := startClient(t, NewSet(time.Hour), f.URL(), func(cfg *ClientConfig) {
		cfg.IdleTimeout = 100 * time.Millisecond
		cfg.MinBackoff, cfg.MaxBackoff = 300*time.Millisecond, 300*time.Millisecond
	})
	waitFor(t, "ready", c.Ready)
	contact := c.LastContact()
	waitFor(t, "unhealthy", func() bool { return !c.Healthy() })
	if st := c.Status(); !st.DownSince.Equal(contact) || !st.Ready {
		t.Fatalf("a silent stream: status %+v, want down since its last contact %v", st, contact)
	}
	if n := len(f.connections()); n != 1 {
		t.Fatalf("%d connections before the backoff ended", n)
	}
	waitFor(t, "a second connection", func() bool { return len(f.connections()) >= 2 })
	if got := f.connections()[1].Get("Last-Event-ID"); got != snap.ID {
		t.Fatalf("Last-Event-ID %q after a silent stream, want %q", got, snap.ID)
	}
	waitFor(t, "healthy again", c.Healthy)
}

// TestClientParsesEventStream feeds the parser what the SSE specification
// allows: CRLF and CR line ends, data over several lines, comments, fields
// without a space, an id without data, a ready whose cursor is not one,
// and an unterminated event at the end (discarded).
func TestClientParsesEventStream(t *testing.T) {
	at := time.Now().UTC().Format(time.RFC3339Nano)
	body := ": hello\r\n" +
		"retry: 10000\r\n" +
		"id: 1-1\r\nevent: session.revoked\r\ndata: {\"type\":\"session.revoked\",\r\ndata:\"sid\":\"multi\",\"at\":\"" + at + "\"}\r\n\r\n" +
		"id:2-1\revent:key.revoked\rdata:{\"kid\":\"k9\",\"at\":\"" + at + "\"}\r\r" + // type from the event field
		"id: 3-1\n\n" + // an id alone moves the cursor
		"event: session.revoked\ndata: not json\n\n" + // skipped
		"event: unknown.thing\ndata: {\"sid\":\"nope\"}\n\n" +
		"event: ready\ndata: {\"cursor\":\"not-a-cursor\"}\n\n" + // not adopted
		"id: 9-9\nevent: session.revoked\ndata: {\"type\":\"session.revoked\",\"sid\":\"unterminated\"}\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	set := NewSet(time.Hour)
	c := startClient(t, set, srv.URL, func(cfg *ClientConfig) { cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour })
	waitFor(t, "ready", c.Ready)
	waitFor(t, "the end of the stream", func() bool { return !c.Healthy() })
	if !revoked(set, "multi") {
		t.Error("multi-line data not applied")
	}
	if _, ok := set.Revoked(Claims{KID: "k9"}); !ok {
		t.Error("event with its type only in the event field not applied")
	}
	if revoked(set, "nope") || revoked(set, "unterminated") {
		t.Error("an unknown or unterminated event was applied")
	}
	if c.LastEventID() != "3-1" {
		t.Errorf("LastEventID %q, want 3-1", c.LastEventID())
	}
}

func TestClientRefusesOtherContent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "event: ready\ndata: {}\n\n")
	}))
	t.Cleanup(srv.Close)
	c := startClient(t, NewSet(time.Hour), srv.URL)
	waitFor(t, "a second try", func() bool { return calls.Load() >= 2 })
	if c.Ready() {
		t.Fatal("a text/html answer was read as the feed")
	}
}

func TestScanLines(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"LF", "a\nb\n", []string{"a", "b"}},
		{"CRLF", "a\r\nb\r\n", []string{"a", "b"}},
		{"CR", "a\rb\r", []string{"a", "b"}},
		{"blank lines", "a\n\r\n\rb", []string{"a", "", "", "b"}},
		{"CR at the end", "a\r", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			data := []byte(tt.in)
			for len(data) > 0 {
				adv, tok, err := scanLines(data, true)
				if err != nil || adv == 0 {
					t.Fatalf("scanLines(%q) = %d, %v", data, adv, err)
				}
				got = append(got, string(tok))
				data = data[adv:]
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("lines %q, want %q", got, tt.want)
			}
		})
	}
	// A CR at the end of what has arrived may be the first half of CRLF.
	if adv, tok, _ := scanLines([]byte("a\r"), false); adv != 0 || tok != nil {
		t.Fatalf("a trailing CR was taken as a line end before the next byte: %d %q", adv, tok)
	}
}

func TestNewClientNeedsURLAndSet(t *testing.T) {
	if _, err := NewClient(ClientConfig{URL: "http://x"}); err == nil {
		t.Error("no Set: no error")
	}
	if _, err := NewClient(ClientConfig{Set: NewSet(time.Minute)}); err == nil {
		t.Error("no URL: no error")
	}
	c, err := NewClient(ClientConfig{URL: "http://x", Set: NewSet(time.Minute), HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if c.http.Timeout != 0 {
		t.Error("the HTTP client's Timeout would cut every stream")
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
