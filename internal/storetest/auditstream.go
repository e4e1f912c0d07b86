package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// AuditStreamBackend is an audit store under test for the admin console's
// reads (auth.AuditStream): pages by keyset and the streamed export.
type AuditStreamBackend interface {
	auth.AuditStore
}

// RunAuditStream runs the contract of auth.AuditStream.EachAudit: the
// log's order (newest first, ties by id), every filter, keyset positions
// that neither skip nor repeat an event (also among events of one
// microsecond), the limit, fn's error ending the walk, and fn writing to
// the store meanwhile. open must return a fresh, empty backend each time.
func RunAuditStream(t *testing.T, open func(t *testing.T) AuditStreamBackend) {
	t.Helper()
	t.Run("OrderAndFilters", func(t *testing.T) { testAuditStreamFilters(t, open) })
	t.Run("KeysetPages", func(t *testing.T) { testAuditStreamPages(t, open) })
	t.Run("RoundTrip", func(t *testing.T) { testAuditStreamRoundTrip(t, open) })
	t.Run("StopsAtError", func(t *testing.T) { testAuditStreamStop(t, open) })
	t.Run("WritesDuringWalk", func(t *testing.T) { testAuditStreamWrites(t, open) })
}

// walkAudit collects the ids EachAudit yields for q.
func walkAudit(t *testing.T, s AuditStreamBackend, q auth.AuditQuery) []string {
	t.Helper()
	var ids []string
	err := s.EachAudit(t.Context(), q, func(e *auth.AuditEvent) error {
		ids = append(ids, e.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("EachAudit(%+v): %v", q, err)
	}
	return ids
}

func appendEvents(t *testing.T, s AuditStreamBackend, events ...*auth.AuditEvent) {
	t.Helper()
	for _, e := range events {
		if err := s.AppendAudit(t.Context(), e); err != nil {
			t.Fatalf("AppendAudit(%s): %v", e.ID, err)
		}
	}
}

func testAuditStreamFilters(t *testing.T, open func(t *testing.T) AuditStreamBackend) {
	s := open(t)
	// e3a and e3b share a microsecond: the id breaks the tie (descending).
	// Appended out of order: the walk orders by time, then id.
	appendEvents(t, s,
		&auth.AuditEvent{ID: "e3a", Type: auth.EventLoginFailed, At: at(3 * time.Second), UserID: "u-2"},
		&auth.AuditEvent{ID: "e1", Type: auth.EventLoginSucceeded, At: at(1 * time.Second), UserID: "u-1"},
		&auth.AuditEvent{ID: "e5", Type: auth.EventKeyRotated, At: at(5 * time.Second)},
		&auth.AuditEvent{ID: "e2", Type: auth.EventLoginFailed, At: at(2 * time.Second), UserID: "u-1"},
		&auth.AuditEvent{ID: "e4", Type: auth.EventLoginSucceeded, At: at(4 * time.Second), UserID: "u-1"},
		&auth.AuditEvent{ID: "e3b", Type: auth.EventLoginSucceeded, At: at(3 * time.Second), UserID: "u-2"},
	)
	for _, tc := range []struct {
		name string
		q    auth.AuditQuery
		want []string
	}{
		{"All", auth.AuditQuery{}, []string{"e5", "e4", "e3b", "e3a", "e2", "e1"}},
		{"Type", auth.AuditQuery{Type: auth.EventLoginSucceeded}, []string{"e4", "e3b", "e1"}},
		{"User", auth.AuditQuery{UserID: "u-1"}, []string{"e4", "e2", "e1"}},
		{"UserAndType", auth.AuditQuery{UserID: "u-2", Type: auth.EventLoginFailed}, []string{"e3a"}},
		{"FromInclusive", auth.AuditQuery{From: at(3 * time.Second)}, []string{"e5", "e4", "e3b", "e3a"}},
		{"ToExclusive", auth.AuditQuery{To: at(3 * time.Second)}, []string{"e2", "e1"}},
		{"Range", auth.AuditQuery{From: at(2 * time.Second), To: at(4 * time.Second)}, []string{"e3b", "e3a", "e2"}},
		{"RangeOfOneMicrosecond", auth.AuditQuery{From: at(3 * time.Second), To: at(3*time.Second + time.Microsecond)}, []string{"e3b", "e3a"}},
		{"RangeAndUser", auth.AuditQuery{UserID: "u-1", From: at(2 * time.Second)}, []string{"e4", "e2"}},
		{"Limit", auth.AuditQuery{Limit: 2}, []string{"e5", "e4"}},
		{"LimitAboveCount", auth.AuditQuery{Type: auth.EventLoginFailed, Limit: 50}, []string{"e3a", "e2"}},
		{"BeforeTie", auth.AuditQuery{Before: &auth.AuditPosition{At: at(3 * time.Second), ID: "e3b"}}, []string{"e3a", "e2", "e1"}},
		{"BeforeAndType", auth.AuditQuery{Type: auth.EventLoginSucceeded, Before: &auth.AuditPosition{At: at(4 * time.Second), ID: "e4"}}, []string{"e3b", "e1"}},
		{"BeforeAndLimit", auth.AuditQuery{Before: &auth.AuditPosition{At: at(5 * time.Second), ID: "e5"}, Limit: 1}, []string{"e4"}},
		{"NoMatch", auth.AuditQuery{UserID: "nobody"}, nil},
		{"EmptyRange", auth.AuditQuery{From: at(10 * time.Second)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := walkAudit(t, s, tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("EachAudit(%+v) = %q, want %q (newest first, ties by id)", tc.q, got, tc.want)
			}
		})
	}
}

// Pages of 3 along 20 events, 4 to a microsecond: each page starts after
// the last event of the one before, and together they are the log, once.
func testAuditStreamPages(t *testing.T, open func(t *testing.T) AuditStreamBackend) {
	s := open(t)
	var want []string
	for i := range 20 {
		e := &auth.AuditEvent{ID: fmt.Sprintf("ev-%02d", i), Type: auth.EventLoginSucceeded, At: at(time.Duration(i/4) * time.Microsecond)}
		appendEvents(t, s, e)
		want = append(want, e.ID)
	}
	slices.Reverse(want)
	var got []string
	var before *auth.AuditPosition
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatalf("more than 10 pages of 3 for 20 events: %q", got)
		}
		var evs []*auth.AuditEvent
		err := s.EachAudit(t.Context(), auth.AuditQuery{Before: before, Limit: 3}, func(e *auth.AuditEvent) error {
			evs = append(evs, e)
			return nil
		})
		if err != nil {
			t.Fatalf("EachAudit page %d: %v", page, err)
		}
		for _, e := range evs {
			got = append(got, e.ID)
		}
		if len(evs) < 3 {
			break
		}
		last := evs[len(evs)-1]
		before = &auth.AuditPosition{At: last.At, ID: last.ID}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages of 3 = %q, want %q", got, want)
	}
}

func testAuditStreamRoundTrip(t *testing.T, open func(t *testing.T) AuditStreamBackend) {
	s := open(t)
	in := &auth.AuditEvent{ID: "e1", Type: auth.EventLoginFailed, At: at(42*time.Second + 17*time.Microsecond), UserID: "u-1",
		IP: "2001:db8::1", Details: map[string]any{"reason": "bad password", "attempts": float64(3), "client": "cli ✓", "nested": map[string]any{"a": "b"}}}
	appendEvents(t, s, in)
	var got []*auth.AuditEvent
	if err := s.EachAudit(t.Context(), auth.AuditQuery{}, func(e *auth.AuditEvent) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatalf("EachAudit: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("EachAudit yielded %d events, want 1", len(got))
	}
	g := got[0]
	if g.ID != in.ID || g.Type != in.Type || !g.At.Equal(in.At) || g.UserID != in.UserID || g.IP != in.IP {
		t.Errorf("EachAudit = %+v, want %+v", g, in)
	}
	if fmt.Sprint(g.Details) != fmt.Sprint(in.Details) {
		t.Errorf("details = %v, want %v", g.Details, in.Details)
	}
}

// fn's error ends the walk at once and is EachAudit's answer.
func testAuditStreamStop(t *testing.T, open func(t *testing.T) AuditStreamBackend) {
	s := open(t)
	for i := range 10 {
		appendEvents(t, s, &auth.AuditEvent{ID: fmt.Sprintf("ev-%d", i), Type: auth.EventLoginSucceeded, At: at(time.Duration(i) * time.Second)})
	}
	stop := errors.New("enough")
	calls := 0
	err := s.EachAudit(t.Context(), auth.AuditQuery{}, func(*auth.AuditEvent) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("EachAudit after fn's error: %v, want that error", err)
	}
	if calls != 3 {
		t.Fatalf("fn called %d times after it returned an error at the 3rd, want 3", calls)
	}
}

// The export audits itself and other requests keep writing while it
// streams: fn may append to the log mid-walk. Events appended during the
// walk are newer than the walk's start and may or may not be seen; every
// event that was there before is yielded once.
func testAuditStreamWrites(t *testing.T, open func(t *testing.T) AuditStreamBackend) {
	s := open(t)
	var want []string
	for i := range 50 {
		e := &auth.AuditEvent{ID: fmt.Sprintf("old-%02d", i), Type: auth.EventLoginSucceeded, At: at(time.Duration(i) * time.Second)}
		appendEvents(t, s, e)
		want = append(want, e.ID)
	}
	slices.Reverse(want)
	var got []string
	n := 0
	err := s.EachAudit(t.Context(), auth.AuditQuery{To: at(time.Hour)}, func(e *auth.AuditEvent) error {
		got = append(got, e.ID)
		n++
		return s.AppendAudit(t.Context(), &auth.AuditEvent{ID: fmt.Sprintf("new-%02d", n), Type: auth.EventLoginFailed, At: at(2 * time.Hour)})
	})
	if err != nil {
		t.Fatalf("EachAudit with fn appending: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("EachAudit while appending = %q, want %q", got, want)
	}
	if all := walkAudit(t, s, auth.AuditQuery{Type: auth.EventLoginFailed}); len(all) != 50 {
		t.Fatalf("%d events appended during the walk are stored, want 50", len(all))
	}
}
