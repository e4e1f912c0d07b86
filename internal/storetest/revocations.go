package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

// RevocationBackend is a revocation feed under test (SPEC §15): the event
// log itself (auth.RevocationStore), every store whose methods revoke, each
// of which must record its events in the revocation's own transaction, and
// the feed's switch (GATEHOUSE_REVOCATION_FEED) with the hook told of each
// commit that recorded events.
type RevocationBackend interface {
	auth.RevocationStore
	auth.UserStore
	auth.RefreshStore
	auth.SessionStore
	auth.APIKeyStore
	auth.ClientStore
	auth.ConsentStore
	// SetRevocationFeed turns the recording of events on or off and sets
	// the function called, synchronously, after every commit that
	// recorded some (nil: none).
	SetRevocationFeed(on bool, committed func())
}

// RunRevocations runs the revocation feed contract. open must return a
// fresh, empty backend with the feed on each time it is called (once per
// subtest) and arrange its cleanup with t.Cleanup.
//
// It pins down what a resource server relies on: each revocation appears
// as exactly its events (no event for what was already revoked, none for a
// revocation that failed), every event reads back as written, in the order
// of its commit, and a reader that follows the feed by its last sequence
// number misses nothing while writers commit concurrently.
func RunRevocations(t *testing.T, open func(t *testing.T) RevocationBackend) {
	t.Helper()
	t.Run("AppendAndRead", func(t *testing.T) { testFeedAppendAndRead(t, open) })
	t.Run("RevokeFamily", func(t *testing.T) { testFeedRevokeFamily(t, open) })
	t.Run("RevokeUserFamilies", func(t *testing.T) { testFeedRevokeUserFamilies(t, open) })
	t.Run("RevokeUserFamiliesAt", func(t *testing.T) { testFeedRevokeUserFamiliesAt(t, open) })
	t.Run("RevokeSessionFamilies", func(t *testing.T) { testFeedRevokeSessionFamilies(t, open) })
	t.Run("DeleteSession", func(t *testing.T) { testFeedDeleteSession(t, open) })
	t.Run("DeleteUserSessions", func(t *testing.T) { testFeedDeleteUserSessions(t, open) })
	t.Run("DeleteAPIKey", func(t *testing.T) { testFeedDeleteAPIKey(t, open) })
	t.Run("DeleteUserAPIKeys", func(t *testing.T) { testFeedDeleteUserAPIKeys(t, open) })
	t.Run("SetRoles", func(t *testing.T) { testFeedSetRoles(t, open) })
	t.Run("SetDisabled", func(t *testing.T) { testFeedSetDisabled(t, open) })
	t.Run("ChangePassword", func(t *testing.T) { testFeedChangePassword(t, open) })
	t.Run("DeleteUser", func(t *testing.T) { testFeedDeleteUser(t, open) })
	t.Run("DeleteClient", func(t *testing.T) { testFeedDeleteClient(t, open) })
	t.Run("DeleteConsent", func(t *testing.T) { testFeedDeleteConsent(t, open) })
	t.Run("Purge", func(t *testing.T) { testFeedPurge(t, open) })
	t.Run("CommittedHook", func(t *testing.T) { testFeedHook(t, open) })
	t.Run("FeedOff", func(t *testing.T) { testFeedOff(t, open) })
	t.Run("ConcurrentTailNeverMisses", func(t *testing.T) { testFeedConcurrentTail(t, open) })
}

// ---- expected events ----
//
// A zero at means the store's clock timed the revocation (the methods that
// take no now): see wantFeed.

func sidEvent(sid string, at time.Time) revfeed.Event {
	return revfeed.Event{Type: revfeed.TypeSessionRevoked, At: at, SID: sid}
}

func subEvent(sub string, at time.Time) revfeed.Event {
	ev := revfeed.Event{Type: revfeed.TypeSubjectRevoked, At: at, Sub: sub}
	if !at.IsZero() {
		ev.NotBefore = revfeed.NotBefore(at)
	}
	return ev
}

func clientEvent(id string, at time.Time) revfeed.Event {
	return revfeed.Event{Type: revfeed.TypeClientRevoked, At: at, ClientID: id, NotBefore: revfeed.NotBefore(at)}
}

func credEvent(kind, hash string, at time.Time) revfeed.Event {
	return revfeed.Event{Type: revfeed.TypeCredentialRevoked, At: at, Kind: kind, SHA256: hash}
}

// sessionEvents are the events of a deleted cookie session: its sid ends
// the access tokens minted from it, its hash evicts guard's cached
// introspection of the cookie.
func sessionEvents(x *auth.Session) []revfeed.Event {
	return []revfeed.Event{sidEvent(x.ID, time.Time{}), credEvent(revfeed.KindSession, x.Hash, time.Time{})}
}

// eventKey is what identifies an event of a revocation (everything but its
// cursor, its time and its not_before).
func eventKey(ev revfeed.Event) string {
	return fmt.Sprintf("%s{sid %q sub %q client_id %q kid %q kind %q sha256 %.12q}", ev.Type, ev.SID, ev.Sub, ev.ClientID, ev.KID, ev.Kind, ev.SHA256)
}

// ---- reading the feed ----

// cursorSeq parses an event's cursor, which must be the one of its time.
func cursorSeq(t *testing.T, ev revfeed.Event) int64 {
	t.Helper()
	c, err := revfeed.ParseCursor(ev.ID)
	if err != nil {
		t.Fatalf("event %s: cursor %q: %v", eventKey(ev), ev.ID, err)
	}
	if c.At.UnixMilli() != ev.At.UnixMilli() {
		t.Errorf("event %s: cursor %q has time %d ms, the event %d ms", eventKey(ev), ev.ID, c.At.UnixMilli(), ev.At.UnixMilli())
	}
	return c.Seq
}

// readFeed returns every event after seq after, read in pages of limit,
// and checks that each page keeps to its limit and that the sequence
// numbers of the cursors increase.
func readFeed(t *testing.T, s RevocationBackend, after int64, limit int) []revfeed.Event {
	t.Helper()
	var all []revfeed.Event
	for {
		page, err := s.RevocationsAfter(t.Context(), after, limit)
		if err != nil {
			t.Fatalf("RevocationsAfter(%d, %d): %v", after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("RevocationsAfter(%d, %d) returned %d events", after, limit, len(page))
		}
		if len(page) == 0 {
			return all
		}
		for _, ev := range page {
			seq := cursorSeq(t, ev)
			if seq <= after {
				t.Fatalf("RevocationsAfter(%d): event %s has seq %d, not above it (or not above the one before)", after, eventKey(ev), seq)
			}
			after = seq
		}
		all = append(all, page...)
	}
}

// feedMark is the seq of the last event recorded so far (0: none): a
// revocation's events are the ones after it.
func feedMark(t *testing.T, s RevocationBackend) int64 {
	t.Helper()
	evs := readFeed(t, s, 0, 1000)
	if len(evs) == 0 {
		return 0
	}
	return cursorSeq(t, evs[len(evs)-1])
}

// wantFeed requires the events recorded after seq after to be exactly
// want, in any order (the events of one revocation have none among
// themselves). A want with a zero At was timed by the store's clock: its At
// must lie between from and now, and the not_before of a subject.revoked
// must be revfeed.NotBefore of it.
func wantFeed(t *testing.T, s RevocationBackend, what string, after int64, from time.Time, want ...revfeed.Event) {
	t.Helper()
	to := time.Now()
	got := readFeed(t, s, after, 1000)
	byKey := map[string][]revfeed.Event{}
	for _, ev := range got {
		byKey[eventKey(ev)] = append(byKey[eventKey(ev)], ev)
	}
	for _, w := range want {
		k := eventKey(w)
		if len(byKey[k]) == 0 {
			t.Errorf("%s: no event %s", what, k)
			continue
		}
		g := byKey[k][0]
		byKey[k] = byKey[k][1:]
		switch {
		case !w.At.IsZero():
			if !g.At.Equal(w.At) {
				t.Errorf("%s: event %s: At = %v, want %v", what, k, g.At, w.At)
			}
		case g.At.Before(from.Truncate(time.Microsecond)) || g.At.After(to):
			t.Errorf("%s: event %s: At = %v, want the store's clock during the call [%v, %v]", what, k, g.At, from, to)
		}
		wantNB := w.NotBefore
		if w.At.IsZero() && (w.Type == revfeed.TypeSubjectRevoked || w.Type == revfeed.TypeClientRevoked) {
			wantNB = revfeed.NotBefore(g.At)
		}
		if g.NotBefore != wantNB {
			t.Errorf("%s: event %s: NotBefore = %d, want %d", what, k, g.NotBefore, wantNB)
		}
	}
	for k, extra := range byKey {
		for range extra {
			t.Errorf("%s: unexpected event %s", what, k)
		}
	}
}

// wantNoEvents requires that nothing was recorded after seq after.
func wantNoEvents(t *testing.T, s RevocationBackend, what string, after int64) {
	t.Helper()
	wantFeed(t, s, what, after, time.Time{})
}

// ---- setup ----

// feedFamily creates family id of userID (first token "tok-" + id) as
// newFamily makes it, changed by set when not nil.
func feedFamily(t *testing.T, s RevocationBackend, id, userID string, set func(f *auth.RefreshFamily)) {
	t.Helper()
	f := newFamily(id, userID)
	if set != nil {
		set(f)
	}
	if err := s.CreateFamily(t.Context(), f, newToken("tok-"+id, id, f.CreatedAt)); err != nil {
		t.Fatalf("CreateFamily(%s): %v", id, err)
	}
}

// revokedFamily creates family id of userID and revokes it at at(10m).
func revokedFamily(t *testing.T, s RevocationBackend, id, userID string, set func(f *auth.RefreshFamily)) {
	t.Helper()
	feedFamily(t, s, id, userID, set)
	if err := s.RevokeFamily(t.Context(), id, at(10*time.Minute)); err != nil {
		t.Fatalf("RevokeFamily(%s): %v", id, err)
	}
}

func withClient(id string) func(f *auth.RefreshFamily) {
	return func(f *auth.RefreshFamily) { f.ClientID = id }
}

func feedClient(t *testing.T, s RevocationBackend, id string) {
	t.Helper()
	if err := s.CreateClient(t.Context(), fullClient(id, "Client "+id)); err != nil {
		t.Fatalf("CreateClient(%s): %v", id, err)
	}
}

func feedConsent(t *testing.T, s RevocationBackend, userID, clientID string) {
	t.Helper()
	if err := s.PutConsent(t.Context(), newConsent(userID, clientID, at(0))); err != nil {
		t.Fatalf("PutConsent(%s, %s): %v", userID, clientID, err)
	}
}

// wantFamilyLive requires family id (made by feedFamily) not to be revoked.
func wantFamilyLive(t *testing.T, s RevocationBackend, id, why string) {
	t.Helper()
	if got := familyRevokedAt(t, s, id); got != nil {
		t.Errorf("family %s %s: RevokedAt = %v, want nil", id, why, *got)
	}
}

// ---- the log itself ----

func testFeedAppendAndRead(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	if err := s.AppendRevocations(t.Context(), nil); err != nil {
		t.Fatalf("AppendRevocations(nil): %v", err)
	}
	wantNoEvents(t, s, "after appending nothing", 0)

	// Every type with its fields, one event with every field, times at
	// microsecond precision in a zone that is not UTC and not in order
	// (the feed's order is the order of recording, not of At).
	written := []revfeed.Event{
		{Type: revfeed.TypeSessionRevoked, At: at(time.Hour + 1*time.Microsecond), SID: "fam-Zoë 🙂"},
		{Type: revfeed.TypeSubjectRevoked, At: at(time.Hour + 2*time.Microsecond), Sub: "u-1", NotBefore: revfeed.NotBefore(at(time.Hour))},
		{Type: revfeed.TypeClientRevoked, At: at(-time.Hour + 3*time.Microsecond), ClientID: "c-1", NotBefore: 1_741_961_367},
		{Type: revfeed.TypeKeyRevoked, At: at(4 * time.Microsecond), KID: "kid-2025-03", ID: "a cursor of the caller's, replaced"},
		{Type: revfeed.TypeCredentialRevoked, At: at(5 * time.Microsecond), Kind: revfeed.KindAPIKey, SHA256: hashOf("api-key-k-1")},
		{Type: revfeed.TypeCredentialRevoked, At: at(6 * time.Microsecond), Kind: revfeed.KindSession, SHA256: hashOf("session-token-s-1")},
		{
			Type: revfeed.TypeSubjectRevoked, At: at(7 * time.Microsecond), SID: "sid \"quoted\"", Sub: "sub\\back", ClientID: "client<&>",
			KID: "kid", Kind: "kind", SHA256: hashOf("all"), NotBefore: 9_007_199_254_740_993, // above 2^53: JSON numbers must stay integers
		},
	}
	if err := s.AppendRevocations(t.Context(), written[:4]); err != nil {
		t.Fatalf("AppendRevocations(4 events): %v", err)
	}
	if err := s.AppendRevocations(t.Context(), written[4:]); err != nil {
		t.Fatalf("AppendRevocations(3 events): %v", err)
	}

	got := readFeed(t, s, 0, 1000)
	if len(got) != len(written) {
		t.Fatalf("read %d events, want the %d written", len(got), len(written))
	}
	seqs := make([]int64, len(got))
	for i, g := range got {
		seqs[i] = cursorSeq(t, g)
		w := written[i]
		w.ID, g.ID = "", ""
		wAt, gAt := w.At, g.At
		w.At, g.At = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("event %d = %+v, want %+v", i, g, w)
		}
		if !gAt.Equal(wAt) {
			t.Errorf("event %d: At = %v, want %v", i, gAt, wAt)
		}
	}

	for _, tc := range []struct {
		name  string
		after int64
		limit int
		want  []int // indexes into written
	}{
		{"FromTheStart", 0, 100, []int{0, 1, 2, 3, 4, 5, 6}},
		{"LimitOne", 0, 1, []int{0}},
		{"AfterThird", seqs[2], 100, []int{3, 4, 5, 6}},
		{"AfterSecondLimitTwo", seqs[1], 2, []int{2, 3}},
		{"AcrossAppends", seqs[2], 3, []int{3, 4, 5}},
		{"AfterLast", seqs[6], 100, nil},
		{"AfterBeyondLast", seqs[6] + 1000, 100, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.RevocationsAfter(t.Context(), tc.after, tc.limit)
			if err != nil {
				t.Fatalf("RevocationsAfter(%d, %d): %v", tc.after, tc.limit, err)
			}
			var gotIdx []int
			for _, ev := range page {
				i := -1
				for j, seq := range seqs {
					if seq == cursorSeq(t, ev) {
						i = j
					}
				}
				gotIdx = append(gotIdx, i)
			}
			if fmt.Sprint(gotIdx) != fmt.Sprint(tc.want) {
				t.Errorf("RevocationsAfter(%d, %d) = events %v, want %v (-1: not one written)", tc.after, tc.limit, gotIdx, tc.want)
			}
		})
	}
}

func testFeedPurge(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	evs := []revfeed.Event{
		sidEvent("old", at(0)),
		sidEvent("edge", at(time.Hour)),
		sidEvent("new", at(2*time.Hour)),
	}
	for _, ev := range evs {
		if err := s.AppendRevocations(t.Context(), []revfeed.Event{ev}); err != nil {
			t.Fatalf("AppendRevocations(%s): %v", ev.SID, err)
		}
	}
	before := readFeed(t, s, 0, 100)
	if len(before) != 3 {
		t.Fatalf("read %d events, want 3", len(before))
	}

	// Events recorded before the time go; one recorded at it stays.
	if err := s.PurgeRevocations(t.Context(), at(time.Hour)); err != nil {
		t.Fatalf("PurgeRevocations: %v", err)
	}
	after := readFeed(t, s, 0, 100)
	var ids []string
	for _, ev := range after {
		ids = append(ids, ev.SID+" "+ev.ID)
	}
	if want := []string{"edge " + before[1].ID, "new " + before[2].ID}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("after purging before the second event: %q, want %q (same cursors as before)", ids, want)
	}

	// Emptied, the feed still never reuses a sequence number: a reader
	// holding the last cursor must see what comes next.
	if err := s.PurgeRevocations(t.Context(), at(3*time.Hour)); err != nil {
		t.Fatalf("PurgeRevocations (all): %v", err)
	}
	wantNoEvents(t, s, "after purging everything", 0)
	last := cursorSeq(t, before[2])
	for i, sid := range []string{"next-1", "next-2"} {
		if err := s.AppendRevocations(t.Context(), []revfeed.Event{sidEvent(sid, at(time.Duration(i)*time.Second))}); err != nil {
			t.Fatalf("AppendRevocations(%s): %v", sid, err)
		}
		evs := readFeed(t, s, 0, 100)
		if len(evs) != i+1 {
			t.Fatalf("read %d events, want %d", len(evs), i+1)
		}
		seq := cursorSeq(t, evs[i])
		if seq <= last {
			t.Errorf("event %s recorded after a purge has seq %d, not above the last one before it (%d): a reader at that cursor misses it", sid, seq, last)
		}
		last = seq
	}
}

// ---- the revoking methods ----

func testFeedRevokeFamily(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	feedFamily(t, s, "f-1", "u-1", nil)
	feedFamily(t, s, "f-2", "u-1", nil)
	wantNoEvents(t, s, "after creating families", 0)

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.RevokeFamily(t.Context(), "f-1", now); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	wantFeed(t, s, "RevokeFamily", 0, now, sidEvent("f-1", now))

	// Revoking it again is no new revocation; an unknown family is none.
	mark := feedMark(t, s)
	if err := s.RevokeFamily(t.Context(), "f-1", at(2*time.Hour)); err != nil {
		t.Fatalf("second RevokeFamily: %v", err)
	}
	if err := s.RevokeFamily(t.Context(), "f-unknown", at(2*time.Hour)); err != nil && !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("RevokeFamily of an unknown family: %v, want nil or ErrNotFound", err)
	}
	wantNoEvents(t, s, "RevokeFamily of a revoked and of an unknown family", mark)
	wantFamilyLive(t, s, "f-2", "not revoked")
}

func testFeedRevokeUserFamilies(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	feedFamily(t, s, "f-1", "u-1", nil)
	feedFamily(t, s, "f-2", "u-1", nil)
	revokedFamily(t, s, "f-3", "u-1", nil)
	feedFamily(t, s, "f-4", "u-2", nil)
	mark := feedMark(t, s)

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.RevokeUserFamilies(t.Context(), "u-1", now); err != nil {
		t.Fatalf("RevokeUserFamilies: %v", err)
	}
	wantFeed(t, s, "RevokeUserFamilies", mark, now, sidEvent("f-1", now), sidEvent("f-2", now), subEvent("u-1", now))

	// Again: the families are already revoked, but the user's access
	// tokens issued since are not.
	mark = feedMark(t, s)
	later := at(2*time.Hour + 3*time.Microsecond)
	if err := s.RevokeUserFamilies(t.Context(), "u-1", later); err != nil {
		t.Fatalf("second RevokeUserFamilies: %v", err)
	}
	wantFeed(t, s, "second RevokeUserFamilies", mark, later, subEvent("u-1", later))
}

func testFeedRevokeUserFamiliesAt(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	aal1 := func(f *auth.RefreshFamily) { f.ACR = auth.ACR1 }
	feedFamily(t, s, "f-1", "u-1", aal1)
	feedFamily(t, s, "f-2", "u-1", nil) // aal2
	revokedFamily(t, s, "f-3", "u-1", aal1)
	feedFamily(t, s, "f-4", "u-2", aal1)
	mark := feedMark(t, s)

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.RevokeUserFamiliesAt(t.Context(), "u-1", auth.ACR1, now); err != nil {
		t.Fatalf("RevokeUserFamiliesAt: %v", err)
	}
	wantFeed(t, s, "RevokeUserFamiliesAt(aal1)", mark, now, sidEvent("f-1", now))

	mark = feedMark(t, s)
	if err := s.RevokeUserFamiliesAt(t.Context(), "u-1", auth.ACR1, at(2*time.Hour)); err != nil {
		t.Fatalf("second RevokeUserFamiliesAt: %v", err)
	}
	wantNoEvents(t, s, "second RevokeUserFamiliesAt", mark)
}

func testFeedRevokeSessionFamilies(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	inSession := func(sid string) func(f *auth.RefreshFamily) {
		return func(f *auth.RefreshFamily) { f.SessionID = sid }
	}
	feedFamily(t, s, "f-1", "u-1", inSession("s-1"))
	feedFamily(t, s, "f-2", "u-2", inSession("s-1"))
	revokedFamily(t, s, "f-3", "u-1", inSession("s-1"))
	feedFamily(t, s, "f-4", "u-1", inSession("s-2"))
	feedFamily(t, s, "f-5", "u-1", nil) // of no session
	mark := feedMark(t, s)

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.RevokeSessionFamilies(t.Context(), "s-1", now); err != nil {
		t.Fatalf("RevokeSessionFamilies: %v", err)
	}
	wantFeed(t, s, "RevokeSessionFamilies(s-1)", mark, now, sidEvent("f-1", now), sidEvent("f-2", now))

	mark = feedMark(t, s)
	for _, sid := range []string{"s-1", ""} {
		if err := s.RevokeSessionFamilies(t.Context(), sid, at(2*time.Hour)); err != nil {
			t.Fatalf("RevokeSessionFamilies(%q): %v", sid, err)
		}
	}
	wantNoEvents(t, s, `RevokeSessionFamilies of s-1 again and of ""`, mark)
	wantFamilyLive(t, s, "f-5", `after RevokeSessionFamilies("")`)
}

func testFeedDeleteSession(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	base := sessionBase()
	gone := createSession(t, s, newSession("s-1", "u-1", base))
	createSession(t, s, newSession("s-2", "u-1", base))
	createSession(t, s, newSession("s-3", "u-2", base))
	wantNoEvents(t, s, "after creating sessions", 0)

	from := time.Now()
	if err := s.DeleteSession(t.Context(), "u-1", "s-1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantFeed(t, s, "DeleteSession", 0, from, sessionEvents(gone)...)

	// Failed deletions record nothing: their transaction is rolled back.
	mark := feedMark(t, s)
	for _, tc := range []struct{ name, userID, id string }{
		{"Unknown", "u-1", "s-unknown"},
		{"Again", "u-1", "s-1"},
		{"AnotherUsers", "u-1", "s-3"},
	} {
		wantErr(t, "DeleteSession "+tc.name, s.DeleteSession(t.Context(), tc.userID, tc.id), auth.ErrNotFound)
	}
	wantNoEvents(t, s, "failed DeleteSession calls", mark)
}

func testFeedDeleteUserSessions(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	base := sessionBase()
	s1 := createSession(t, s, newSession("s-1", "u-1", base))
	createSession(t, s, newSession("s-2", "u-1", base))
	s3 := createSession(t, s, newSession("s-3", "u-1", base))
	createSession(t, s, newSession("s-4", "u-2", base))

	from := time.Now()
	if err := s.DeleteUserSessions(t.Context(), "u-1", "s-2"); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	wantFeed(t, s, "DeleteUserSessions but s-2", 0, from, append(sessionEvents(s1), sessionEvents(s3)...)...)

	mark := feedMark(t, s)
	if err := s.DeleteUserSessions(t.Context(), "u-1", "s-2"); err != nil {
		t.Fatalf("second DeleteUserSessions: %v", err)
	}
	wantNoEvents(t, s, "second DeleteUserSessions", mark)
}

func testFeedDeleteAPIKey(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	gone := createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0)))
	createAPIKey(t, s, newAPIKey("k-2", "u-1", at(0)))
	createAPIKey(t, s, newAPIKey("k-3", "u-2", at(0)))
	wantNoEvents(t, s, "after creating API keys", 0)

	from := time.Now()
	if err := s.DeleteAPIKey(t.Context(), "u-1", "k-1"); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	wantFeed(t, s, "DeleteAPIKey", 0, from, credEvent(revfeed.KindAPIKey, gone.Hash, time.Time{}))

	mark := feedMark(t, s)
	for _, tc := range []struct{ name, userID, id string }{
		{"Unknown", "u-1", "k-unknown"},
		{"Again", "u-1", "k-1"},
		{"AnotherUsers", "u-1", "k-3"},
	} {
		wantErr(t, "DeleteAPIKey "+tc.name, s.DeleteAPIKey(t.Context(), tc.userID, tc.id), auth.ErrNotFound)
	}
	wantNoEvents(t, s, "failed DeleteAPIKey calls", mark)
}

func testFeedDeleteUserAPIKeys(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	k1 := createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0)))
	k2 := createAPIKey(t, s, newAPIKey("k-2", "u-1", at(0)))
	createAPIKey(t, s, newAPIKey("k-3", "u-2", at(0)))

	from := time.Now()
	if err := s.DeleteUserAPIKeys(t.Context(), "u-1"); err != nil {
		t.Fatalf("DeleteUserAPIKeys: %v", err)
	}
	wantFeed(t, s, "DeleteUserAPIKeys", 0, from,
		credEvent(revfeed.KindAPIKey, k1.Hash, time.Time{}), credEvent(revfeed.KindAPIKey, k2.Hash, time.Time{}))

	mark := feedMark(t, s)
	if err := s.DeleteUserAPIKeys(t.Context(), "u-1"); err != nil {
		t.Fatalf("second DeleteUserAPIKeys: %v", err)
	}
	wantNoEvents(t, s, "second DeleteUserAPIKeys", mark)
}

func testFeedSetRoles(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.SetRoles(t.Context(), "u-1", []string{"admin"}, now); err != nil {
		t.Fatalf("SetRoles: %v", err)
	}
	wantFeed(t, s, "SetRoles", 0, now, subEvent("u-1", now))

	mark := feedMark(t, s)
	wantErr(t, "SetRoles of an unknown user", s.SetRoles(t.Context(), "nobody", []string{"admin"}, now), auth.ErrNotFound)
	wantNoEvents(t, s, "SetRoles of an unknown user", mark)
}

func testFeedSetDisabled(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.SetDisabled(t.Context(), "u-1", true, now); err != nil {
		t.Fatalf("SetDisabled(true): %v", err)
	}
	wantFeed(t, s, "SetDisabled(true)", 0, now, subEvent("u-1", now))

	// Enabling revokes nothing; a failed disable records nothing.
	mark := feedMark(t, s)
	if err := s.SetDisabled(t.Context(), "u-1", false, at(2*time.Hour)); err != nil {
		t.Fatalf("SetDisabled(false): %v", err)
	}
	wantErr(t, "SetDisabled of an unknown user", s.SetDisabled(t.Context(), "nobody", true, now), auth.ErrNotFound)
	wantNoEvents(t, s, "SetDisabled(false) and SetDisabled of an unknown user", mark)
}

func testFeedChangePassword(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	feedFamily(t, s, "f-1", "u-1", nil)
	revokedFamily(t, s, "f-2", "u-1", nil)
	feedFamily(t, s, "f-3", "u-2", nil)
	mark := feedMark(t, s)

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.ChangePassword(t.Context(), "u-1", "$argon2id$new", now); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	wantFeed(t, s, "ChangePassword", mark, now, sidEvent("f-1", now), subEvent("u-1", now))

	mark = feedMark(t, s)
	wantErr(t, "ChangePassword of an unknown user", s.ChangePassword(t.Context(), "nobody", "$argon2id$x", now), auth.ErrNotFound)
	wantNoEvents(t, s, "ChangePassword of an unknown user", mark)
}

func testFeedDeleteUser(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	base := sessionBase()
	s1 := createSession(t, s, newSession("s-1", "u-1", base))
	s2 := createSession(t, s, newSession("s-2", "u-1", base))
	createSession(t, s, newSession("s-3", "u-2", base))
	k1 := createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0)))
	createAPIKey(t, s, newAPIKey("k-2", "u-2", at(0)))
	feedFamily(t, s, "f-1", "u-1", nil)
	revokedFamily(t, s, "f-2", "u-1", nil)
	feedFamily(t, s, "f-3", "u-2", nil)
	mark := feedMark(t, s)

	from := time.Now()
	if err := s.DeleteUser(t.Context(), "u-1"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	want := append(sessionEvents(s1), sessionEvents(s2)...)
	want = append(want,
		credEvent(revfeed.KindAPIKey, k1.Hash, time.Time{}),
		sidEvent("f-1", time.Time{}),
		subEvent("u-1", time.Time{}))
	wantFeed(t, s, "DeleteUser", mark, from, want...)

	mark = feedMark(t, s)
	wantErr(t, "second DeleteUser", s.DeleteUser(t.Context(), "u-1"), auth.ErrNotFound)
	wantNoEvents(t, s, "second DeleteUser", mark)
}

func testFeedDeleteClient(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	feedClient(t, s, "c-1")
	feedClient(t, s, "c-2")
	feedConsent(t, s, "u-1", "c-1")
	feedFamily(t, s, "f-1", "u-1", withClient("c-1"))
	feedFamily(t, s, "f-2", "u-2", withClient("c-1"))
	revokedFamily(t, s, "f-3", "u-1", withClient("c-1"))
	feedFamily(t, s, "f-4", "u-1", withClient("c-2"))
	mark := feedMark(t, s)

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.DeleteClient(t.Context(), "c-1", now); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	wantFeed(t, s, "DeleteClient", mark, now, sidEvent("f-1", now), sidEvent("f-2", now), clientEvent("c-1", now))

	mark = feedMark(t, s)
	wantErr(t, "second DeleteClient", s.DeleteClient(t.Context(), "c-1", now), auth.ErrNotFound)
	wantErr(t, "DeleteClient of an unknown client", s.DeleteClient(t.Context(), "c-unknown", now), auth.ErrNotFound)
	wantNoEvents(t, s, "failed DeleteClient calls", mark)
}

func testFeedDeleteConsent(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	feedClient(t, s, "c-1")
	feedClient(t, s, "c-2")
	feedConsent(t, s, "u-1", "c-1")
	feedConsent(t, s, "u-2", "c-1")
	feedConsent(t, s, "u-1", "c-2")
	feedFamily(t, s, "f-1", "u-1", withClient("c-1"))
	feedFamily(t, s, "f-2", "u-1", withClient("c-1"))
	revokedFamily(t, s, "f-3", "u-1", withClient("c-1"))
	feedFamily(t, s, "f-4", "u-2", withClient("c-1"))
	feedFamily(t, s, "f-5", "u-1", withClient("c-2"))
	feedFamily(t, s, "f-6", "u-2", withClient("c-2")) // u-2 gave c-2 no consent
	mark := feedMark(t, s)

	now := at(time.Hour + 7*time.Microsecond)
	if err := s.DeleteConsent(t.Context(), "u-1", "c-1", now); err != nil {
		t.Fatalf("DeleteConsent: %v", err)
	}
	wantFeed(t, s, "DeleteConsent(u-1, c-1)", mark, now, sidEvent("f-1", now), sidEvent("f-2", now))

	// Without a grant the call fails whole: the families stay live and
	// nothing is recorded.
	mark = feedMark(t, s)
	wantErr(t, "second DeleteConsent", s.DeleteConsent(t.Context(), "u-1", "c-1", now), auth.ErrNotFound)
	wantErr(t, "DeleteConsent without a grant", s.DeleteConsent(t.Context(), "u-2", "c-2", now), auth.ErrNotFound)
	wantNoEvents(t, s, "failed DeleteConsent calls", mark)
	wantFamilyLive(t, s, "f-6", "after a failed DeleteConsent")
}

// ---- the switch and the hook ----

// feedHook counts the calls of a committed hook and the events readable
// at each: the hook runs after the commit, so they are there already.
type feedHook struct {
	t       *testing.T
	s       RevocationBackend
	calls   atomic.Int32
	mu      sync.Mutex
	visible []int
}

func (h *feedHook) committed() {
	h.calls.Add(1)
	evs, err := h.s.RevocationsAfter(context.WithoutCancel(h.t.Context()), 0, 1000)
	if err != nil {
		h.t.Errorf("RevocationsAfter in the committed hook: %v", err)
	}
	h.mu.Lock()
	h.visible = append(h.visible, len(evs))
	h.mu.Unlock()
}

// want requires calls hook calls so far, the last of which saw visible
// events.
func (h *feedHook) want(what string, calls int32, visible int) {
	h.t.Helper()
	if got := h.calls.Load(); got != calls {
		h.t.Errorf("after %s: hook called %d times, want %d", what, got, calls)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if calls > 0 && h.visible[len(h.visible)-1] != visible {
		h.t.Errorf("after %s: the hook's call saw %d events, want %d (the hook must run after the commit)", what, h.visible[len(h.visible)-1], visible)
	}
}

func testFeedHook(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	h := &feedHook{t: t, s: s}
	s.SetRevocationFeed(true, h.committed)
	makeUsers(t, s, "u-1")
	feedFamily(t, s, "f-1", "u-1", nil)
	feedFamily(t, s, "f-2", "u-1", nil)
	h.want("creating a user and families", 0, 0)

	now := at(time.Hour)
	if err := s.RevokeFamily(t.Context(), "f-1", now); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	h.want("RevokeFamily", 1, 1)

	// Commits that recorded nothing, and a rolled-back one.
	if err := s.RevokeFamily(t.Context(), "f-1", now); err != nil {
		t.Fatalf("second RevokeFamily: %v", err)
	}
	if err := s.SetDisabled(t.Context(), "u-1", false, now); err != nil {
		t.Fatalf("SetDisabled(false): %v", err)
	}
	if err := s.AppendRevocations(t.Context(), nil); err != nil {
		t.Fatalf("AppendRevocations(nil): %v", err)
	}
	wantErr(t, "DeleteSession of an unknown session", s.DeleteSession(t.Context(), "u-1", "s-unknown"), auth.ErrNotFound)
	h.want("revocations that recorded nothing", 1, 1)

	// Once per commit, not per event.
	if err := s.AppendRevocations(t.Context(), []revfeed.Event{sidEvent("x-1", now), sidEvent("x-2", now)}); err != nil {
		t.Fatalf("AppendRevocations: %v", err)
	}
	h.want("AppendRevocations of two events", 2, 3)
	if err := s.RevokeUserFamilies(t.Context(), "u-1", now); err != nil {
		t.Fatalf("RevokeUserFamilies: %v", err)
	}
	h.want("RevokeUserFamilies", 3, 5)

	s.SetRevocationFeed(true, nil)
	if err := s.SetRoles(t.Context(), "u-1", nil, now); err != nil {
		t.Fatalf("SetRoles: %v", err)
	}
	h.want("SetRoles after the hook was removed", 3, 5)
}

func testFeedOff(t *testing.T, open func(t *testing.T) RevocationBackend) {
	s := open(t)
	h := &feedHook{t: t, s: s}
	s.SetRevocationFeed(false, h.committed)
	makeUsers(t, s, "u-1")
	feedFamily(t, s, "f-1", "u-1", nil)
	createSession(t, s, newSession("s-1", "u-1", sessionBase()))
	createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0)))

	// The revocations happen; their events are not recorded.
	now := at(time.Hour)
	if err := s.RevokeFamily(t.Context(), "f-1", now); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	wantRevoked(t, s, "f-1", &now, "revoked with the feed off")
	if err := s.SetRoles(t.Context(), "u-1", []string{"admin"}, now); err != nil {
		t.Fatalf("SetRoles: %v", err)
	}
	if err := s.DeleteSession(t.Context(), "u-1", "s-1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if err := s.DeleteAPIKey(t.Context(), "u-1", "k-1"); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	if err := s.AppendRevocations(t.Context(), []revfeed.Event{sidEvent("x-1", now)}); err != nil {
		t.Fatalf("AppendRevocations: %v", err)
	}
	wantNoEvents(t, s, "revocations with the feed off", 0)
	h.want("revocations with the feed off", 0, 0)

	// Turned on, it records what comes next, and nothing of before.
	s.SetRevocationFeed(true, h.committed)
	later := at(2 * time.Hour)
	if err := s.SetRoles(t.Context(), "u-1", nil, later); err != nil {
		t.Fatalf("SetRoles: %v", err)
	}
	wantFeed(t, s, "SetRoles with the feed on again", 0, later, subEvent("u-1", later))
	h.want("SetRoles with the feed on again", 1, 1)
}

// ---- concurrency ----

// testFeedConcurrentTail follows the feed the way the hub does, by the
// last sequence number seen, while writers commit: a backend whose
// sequence numbers can become visible out of order (a PostgreSQL sequence
// without the feed's lock) lets the reader step over an event that commits
// after a higher one.
func testFeedConcurrentTail(t *testing.T, open func(t *testing.T) RevocationBackend) {
	const (
		writers = 8
		each    = 40 // events per writer: a quarter through RevokeFamily
	)
	s := open(t)
	makeUsers(t, s, "u-tail")
	want := map[string]bool{} // SIDs
	for w := range writers {
		for i := range each {
			sid := fmt.Sprintf("e-%d-%02d", w, i)
			if i%4 == 3 {
				sid = fmt.Sprintf("f-%d-%02d", w, i)
				feedFamily(t, s, sid, "u-tail", nil)
			}
			want[sid] = true
		}
	}
	mark := feedMark(t, s)
	now := at(time.Hour)

	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			ctx := context.WithoutCancel(t.Context())
			for i := 0; i < each; i++ {
				var err error
				switch i % 4 {
				case 0: // two events in one commit
					err = s.AppendRevocations(ctx, []revfeed.Event{
						sidEvent(fmt.Sprintf("e-%d-%02d", w, i), now),
						sidEvent(fmt.Sprintf("e-%d-%02d", w, i+1), now),
					})
					i++
				case 2:
					err = s.AppendRevocations(ctx, []revfeed.Event{sidEvent(fmt.Sprintf("e-%d-%02d", w, i), now)})
				case 3:
					err = s.RevokeFamily(ctx, fmt.Sprintf("f-%d-%02d", w, i), now)
				}
				if err != nil {
					t.Errorf("writer %d, event %d: %v", w, i, err)
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	seen := map[string]int{}
	last, reads, finished := mark, 0, false
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-done:
			finished = true
		default:
		}
		page, err := s.RevocationsAfter(t.Context(), last, 16)
		if err != nil {
			<-done
			t.Fatalf("RevocationsAfter(%d): %v", last, err)
		}
		reads++
		for _, ev := range page {
			seq := cursorSeq(t, ev)
			if seq <= last {
				<-done
				t.Fatalf("RevocationsAfter(%d): event %s has seq %d after seq %d", last, ev.SID, seq, last)
			}
			last = seq
			seen[ev.SID]++
		}
		// The writers were done before this read began: it saw everything.
		if finished && len(page) == 0 {
			break
		}
		if time.Now().After(deadline) {
			<-done
			t.Fatalf("tail still reading after a minute (%d reads, %d events)", reads, len(seen))
		}
	}

	var missed, twice, unknown []string
	for sid := range want {
		switch seen[sid] {
		case 0:
			missed = append(missed, sid)
		case 1:
		default:
			twice = append(twice, sid)
		}
	}
	for sid := range seen {
		if !want[sid] {
			unknown = append(unknown, sid)
		}
	}
	if len(missed)+len(twice)+len(unknown) > 0 {
		recorded := len(readFeed(t, s, mark, 1000))
		t.Errorf("the tail (%d reads) missed %d events %q, saw %d twice %q and %d never written %q; %d of %d were recorded",
			reads, len(missed), firstFew(missed), len(twice), firstFew(twice), len(unknown), firstFew(unknown), recorded, len(want))
	}
}

// firstFew is the first ten of ss in order, for a message.
func firstFew(ss []string) []string {
	slices.Sort(ss)
	return ss[:min(len(ss), 10)]
}
