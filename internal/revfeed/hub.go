package revfeed

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Source is where a Hub reads events: the revocation_events table.
type Source interface {
	// RevocationsAfter returns at most limit events whose sequence number
	// is above after, in order, each with its cursor as ID.
	RevocationsAfter(ctx context.Context, after int64, limit int) ([]Event, error)
}

// HubOptions configure a Hub.
type HubOptions struct {
	Source Source
	// Set receives every event (the revocations Gatehouse's own endpoints
	// check); required.
	Set *Set
	// Retain is how long an event is served: the access-token lifetime
	// plus five minutes (SPEC §15).
	Retain time.Duration
	// Poll is how often the table is read when nothing announced a
	// commit: 250 ms without Redis, a slow safety net with it.
	Poll time.Duration
	// Announce tells the other nodes that this one committed events
	// (Redis pub/sub); nil without Redis.
	Announce func(context.Context) error
	// Applied, when set, is called with each batch of new events after
	// the Set has them (Gatehouse reloads its signing keys on key.revoked).
	Applied func([]Event)
	Log     *slog.Logger
	Now     func() time.Time
}

// Hub is one node's copy of the live revocation events: it tails the
// table (at once after a local commit, on an announcement from another
// node, or every Poll), applies each event to the Set, and serves the
// events to feed clients without a query per client.
type Hub struct {
	o HubOptions

	fetchMu sync.Mutex // one read of the table at a time

	mu      sync.RWMutex
	events  []Event // in seq order, none older than Retain
	seqs    []int64 // seqs[i] is events[i]'s sequence number
	last    int64   // the highest sequence number read (kept when pruned)
	changed chan struct{}
	loaded  bool

	wake chan struct{}
}

const fetchPage = 1000

// NewHub makes a hub; call Load, then Run.
func NewHub(o HubOptions) *Hub {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	return &Hub{o: o, changed: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// Load reads every live event (at start-up, before serving).
func (h *Hub) Load(ctx context.Context) error {
	_, err := h.fetch(ctx)
	if err == nil {
		h.mu.Lock()
		h.loaded = true
		h.mu.Unlock()
	}
	return err
}

// Committed is called, synchronously, after this node committed
// revocation events: the hub reads them before the revoking request
// answers (so this node's own endpoints refuse the revoked tokens at once)
// and announces them to the other nodes.
func (h *Hub) Committed() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := h.fetch(ctx); err != nil {
		h.o.Log.Warn("revocation feed: reading committed events failed; the poll will retry", "err", err)
		h.Wake()
	}
	if h.o.Announce != nil {
		if err := h.o.Announce(ctx); err != nil {
			h.o.Log.Warn("revocation feed: announcing to other nodes failed; they poll", "err", err)
		}
	}
}

// Wake asks Run to read the table now (an announcement from another node).
func (h *Hub) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run tails the table until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.o.Poll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-t.C:
		}
		_, err := h.fetch(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			h.o.Log.Warn("revocation feed: reading events failed", "err", err)
			failing = true
		case err == nil && failing:
			h.o.Log.Info("revocation feed: reading events again")
			failing = false
		}
	}
}

// fetch reads the events after the last one read, applies and publishes
// them, and drops those older than Retain.
func (h *Hub) fetch(ctx context.Context) (int, error) {
	h.fetchMu.Lock()
	defer h.fetchMu.Unlock()
	h.mu.RLock()
	after := h.last
	h.mu.RUnlock()
	var got []Event
	for {
		page, err := h.o.Source.RevocationsAfter(ctx, after, fetchPage)
		if err != nil {
			if len(got) > 0 {
				h.publish(got)
			}
			return len(got), err
		}
		for _, ev := range page {
			c, err := ParseCursor(ev.ID)
			if err != nil || c.Seq <= after {
				continue
			}
			after = c.Seq
			got = append(got, ev)
		}
		if len(page) < fetchPage {
			break
		}
	}
	h.publish(got)
	return len(got), nil
}

func (h *Hub) publish(evs []Event) {
	now := h.o.Now()
	for _, ev := range evs {
		h.o.Set.Apply(ev)
	}
	if h.o.Applied != nil && len(evs) > 0 {
		h.o.Applied(evs)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range evs {
		c, _ := ParseCursor(ev.ID)
		h.events = append(h.events, ev)
		h.seqs = append(h.seqs, c.Seq)
		h.last = max(h.last, c.Seq)
	}
	// Drop what is past retention (the oldest come first).
	cut := 0
	for cut < len(h.events) && h.events[cut].At.Before(now.Add(-h.o.Retain)) {
		cut++
	}
	if cut > 0 {
		h.events = append([]Event(nil), h.events[cut:]...)
		h.seqs = append([]int64(nil), h.seqs[cut:]...)
	}
	if len(evs) > 0 {
		close(h.changed)
		h.changed = make(chan struct{})
	}
}

// Head is the cursor of the newest event read (at the current time, so
// that a client idle for longer than Retain keeps a cursor that is not
// gone).
func (h *Hub) Head() Cursor {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return Cursor{Seq: h.last, At: h.o.Now()}
}

// Snapshot returns every live event and the cursor after them.
func (h *Hub) Snapshot() ([]Event, Cursor) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]Event(nil), h.events...), Cursor{Seq: h.last, At: h.o.Now()}
}

// Gone reports a cursor older than retention with events after it: the
// client may have missed some and starts again with the snapshot (410).
// An idle feed's cursor is never gone. (Missing purged events loses
// nothing: they are older than every live access token.)
func (h *Hub) Gone(c Cursor) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return c.At.Before(h.o.Now().Add(-h.o.Retain)) && c.Seq < h.last
}

// Since returns the events after c: those with a higher sequence number,
// and, with replay, those recorded up to 5 seconds before c too (SPEC
// §15: a reconnecting stream gets them again; duplicates are harmless).
func (h *Hub) Since(c Cursor, replay bool) ([]Event, Cursor, <-chan struct{}) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	i := sort.Search(len(h.seqs), func(i int) bool { return h.seqs[i] > c.Seq })
	if replay {
		from := c.At.Add(-5 * time.Second)
		for i > 0 && !h.events[i-1].At.Before(from) {
			i--
		}
	}
	head := Cursor{Seq: max(h.last, c.Seq), At: h.o.Now()}
	return append([]Event(nil), h.events[i:]...), head, h.changed
}

// Wait returns the events after c as soon as there are any, or none when
// ctx ends (the long-poll's wait).
func (h *Hub) Wait(ctx context.Context, c Cursor) ([]Event, Cursor) {
	for {
		evs, head, changed := h.Since(c, false)
		if len(evs) > 0 {
			return evs, head
		}
		select {
		case <-ctx.Done():
			return nil, head
		case <-changed:
		}
	}
}
