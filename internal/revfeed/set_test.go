package revfeed

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

// clock is a settable clock for a Set.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.ns.Store(t0.UnixNano()); return c }
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func newTestSet(c *clock, retain time.Duration) *Set {
	s := NewSet(retain)
	s.Now = c.Now
	return s
}

func TestRevoked(t *testing.T) {
	at := t0.Add(-time.Minute)
	nb := t0.Add(-30 * time.Second).Unix()
	events := []Event{
		{ID: "1-1", Type: TypeSessionRevoked, At: at, SID: "fam1"},
		{ID: "2-1", Type: TypeSubjectRevoked, At: at, Sub: "alice", NotBefore: nb},
		{ID: "3-1", Type: TypeClientRevoked, At: at, ClientID: "mobile", NotBefore: nb},
		{ID: "4-1", Type: TypeKeyRevoked, At: at, KID: "k-old"},
	}
	before, after := time.Unix(nb-1, 0), time.Unix(nb, 0)
	tests := []struct {
		name   string
		c      Claims
		reason string
	}{
		{"revoked sid", Claims{SID: "fam1", Sub: "bob", IssuedAt: after}, ReasonSession},
		{"other sid", Claims{SID: "fam2", Sub: "bob", IssuedAt: before}, ""},
		{"subject, issued before not_before", Claims{SID: "fam2", Sub: "alice", IssuedAt: before}, ReasonSubject},
		{"subject, issued at not_before", Claims{SID: "fam2", Sub: "alice", IssuedAt: after}, ""},
		{"subject, no iat", Claims{Sub: "alice"}, ReasonSubject},
		{"client, issued before not_before", Claims{Sub: "bob", ClientID: "mobile", IssuedAt: before}, ReasonClient},
		{"client, issued after", Claims{Sub: "bob", ClientID: "mobile", IssuedAt: after.Add(time.Hour)}, ""},
		{"other client", Claims{Sub: "bob", ClientID: "web", IssuedAt: before}, ""},
		{"revoked kid", Claims{Sub: "bob", KID: "k-old", IssuedAt: after}, ReasonKey},
		{"other kid", Claims{Sub: "bob", KID: "k-new", IssuedAt: after}, ""},
		{"empty claims", Claims{}, ""},
	}
	c := newClock()
	s := newTestSet(c, 20*time.Minute)
	for _, ev := range events {
		s.Apply(ev)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, revoked := s.Revoked(tt.c)
			if reason != tt.reason || revoked != (tt.reason != "") {
				t.Errorf("Revoked(%+v) = %q, %v; want %q", tt.c, reason, revoked, tt.reason)
			}
		})
	}
	if s.Len() != 4 {
		t.Errorf("Len = %d, want 4", s.Len())
	}
	if got := s.SubjectNotBefore("alice"); got != nb {
		t.Errorf("SubjectNotBefore(alice) = %d, want %d", got, nb)
	}
	if got := s.SubjectNotBefore("bob"); got != 0 {
		t.Errorf("SubjectNotBefore(bob) = %d, want 0", got)
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	c := newClock()
	s := newTestSet(c, 20*time.Minute)
	evs := []Event{
		{Type: TypeSessionRevoked, At: t0, SID: "fam1"},
		{Type: TypeSubjectRevoked, At: t0, Sub: "alice", NotBefore: t0.Unix()},
		{Type: TypeKeyRevoked, At: t0, KID: "k1"},
	}
	for range 3 { // a replay after a reconnection sends events again
		for _, ev := range evs {
			s.Apply(ev)
		}
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d after replays, want 3", s.Len())
	}
	if _, ok := s.Revoked(Claims{SID: "fam1"}); !ok {
		t.Fatal("sid not revoked")
	}
}

func TestNotBeforeKeepsTheLatest(t *testing.T) {
	for _, typ := range []string{TypeSubjectRevoked, TypeClientRevoked} {
		t.Run(typ, func(t *testing.T) {
			c := newClock()
			s := newTestSet(c, 20*time.Minute)
			ev := func(nb int64) Event {
				return Event{Type: typ, At: time.Unix(nb, 0), Sub: "alice", ClientID: "alice", NotBefore: nb}
			}
			claims := func(iat int64) Claims {
				if typ == TypeSubjectRevoked {
					return Claims{Sub: "alice", IssuedAt: time.Unix(iat, 0)}
				}
				return Claims{ClientID: "alice", IssuedAt: time.Unix(iat, 0)}
			}
			base := t0.Unix() - 600
			s.Apply(ev(base + 100))
			s.Apply(ev(base)) // older, arriving late (replay): must not lower it
			if _, ok := s.Revoked(claims(base + 50)); !ok {
				t.Fatal("a token issued before the latest not_before passes after an older event")
			}
			s.Apply(ev(base + 200))
			if _, ok := s.Revoked(claims(base + 150)); !ok {
				t.Fatal("not_before did not move forward")
			}
			if _, ok := s.Revoked(claims(base + 200)); ok {
				t.Fatal("a token issued at not_before is refused")
			}
			if s.Len() != 1 {
				t.Fatalf("Len = %d, want 1", s.Len())
			}
		})
	}
}

func TestNotBeforeDefaultsToAt(t *testing.T) {
	c := newClock()
	s := newTestSet(c, 20*time.Minute)
	s.Apply(Event{Type: TypeSubjectRevoked, At: t0, Sub: "alice"})
	if got := s.SubjectNotBefore("alice"); got != t0.Unix() {
		t.Fatalf("not_before = %d, want the event's time %d", got, t0.Unix())
	}
}

func TestIgnoredEvents(t *testing.T) {
	c := newClock()
	s := newTestSet(c, 20*time.Minute)
	for _, ev := range []Event{
		{Type: "session.renamed", At: t0, SID: "fam1"},
		{Type: TypeSessionRevoked, At: t0},
		{Type: TypeSubjectRevoked, At: t0, NotBefore: t0.Unix()},
		{Type: TypeClientRevoked, At: t0, Sub: "alice", NotBefore: t0.Unix()}, // client_id missing
		{Type: TypeKeyRevoked, At: t0},
		{Type: TypeSessionRevoked, At: t0.Add(-21 * time.Minute), SID: "expired"},
		{Type: TypeCredentialRevoked, At: t0, Kind: KindAPIKey, SHA256: "ab"},
	} {
		s.Apply(ev)
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d, want 0", s.Len())
	}
	if _, ok := s.Revoked(Claims{SID: "expired", Sub: "alice", ClientID: "alice"}); ok {
		t.Fatal("an ignored event revoked something")
	}
}

func TestCredentialHook(t *testing.T) {
	c := newClock()
	s := newTestSet(c, 20*time.Minute)
	s.Apply(Event{Type: TypeCredentialRevoked, At: t0, Kind: KindAPIKey, SHA256: "ff"}) // no hook: no panic
	var got []string
	s.OnCredential = func(kind, sum string) { got = append(got, kind+" "+sum) }
	s.Apply(Event{Type: TypeCredentialRevoked, At: t0, Kind: KindAPIKey, SHA256: "aa"})
	s.Apply(Event{Type: TypeCredentialRevoked, At: t0, Kind: KindSession, SHA256: "bb"})
	s.Apply(Event{Type: TypeCredentialRevoked, At: t0, Kind: KindSession}) // no hash: nothing to evict
	s.Apply(Event{Type: TypeSessionRevoked, At: t0, SID: "x"})
	if fmt.Sprint(got) != "[apikey aa session bb]" {
		t.Fatalf("hook calls %v", got)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (credential events keep nothing)", s.Len())
	}
}

func TestExpiry(t *testing.T) {
	c := newClock()
	s := newTestSet(c, 20*time.Minute)
	s.Apply(Event{Type: TypeSessionRevoked, At: t0, SID: "a"})
	s.Apply(Event{Type: TypeSubjectRevoked, At: t0, Sub: "alice", NotBefore: t0.Unix()})
	c.Add(10 * time.Minute)
	s.Apply(Event{Type: TypeSessionRevoked, At: c.Now(), SID: "b"})
	// alice revoked again later: her entry lives 20 minutes from then.
	s.Apply(Event{Type: TypeSubjectRevoked, At: c.Now(), Sub: "alice", NotBefore: c.Now().Unix()})

	c.Add(10*time.Minute - time.Nanosecond)
	if n := s.Prune(c.Now()); n != 0 {
		t.Fatalf("Prune before retain dropped %d", n)
	}
	c.Add(time.Nanosecond)
	if n := s.Prune(c.Now()); n != 1 {
		t.Fatalf("Prune at retain dropped %d, want 1 (sid a)", n)
	}
	if _, ok := s.Revoked(Claims{SID: "a"}); ok {
		t.Fatal("sid a still revoked after retain")
	}
	if _, ok := s.Revoked(Claims{SID: "b"}); !ok {
		t.Fatal("sid b dropped early")
	}
	if s.SubjectNotBefore("alice") == 0 {
		t.Fatal("alice's extended entry dropped by the first event's expiry")
	}

	// Apply prunes too.
	c.Add(10 * time.Minute)
	s.Apply(Event{Type: TypeKeyRevoked, At: c.Now(), KID: "k"})
	if s.Len() != 1 || s.SubjectNotBefore("alice") != 0 {
		t.Fatalf("after Apply past every retain: Len %d, alice %d; want only the key", s.Len(), s.SubjectNotBefore("alice"))
	}
	if _, ok := s.Revoked(Claims{KID: "k"}); !ok {
		t.Fatal("kid not revoked")
	}
}

// A full Set forgets the revocations that expire first, a tenth at a
// time.
func TestSetIsBounded(t *testing.T) {
	c := newClock()
	s := newTestSet(c, time.Hour)
	s.max = 100
	const n = 250
	for i := range n {
		s.Apply(Event{Type: TypeSessionRevoked, At: t0.Add(time.Duration(i) * time.Millisecond), SID: strconv.Itoa(i)})
		if s.Len() > 100 {
			t.Fatalf("Len %d after %d events, over the bound", s.Len(), i+1)
		}
	}
	if s.Len() < 90 {
		t.Fatalf("Len = %d, want at least 90", s.Len())
	}
	// What is kept is the newest: a suffix of the events.
	first := n - s.Len()
	for i := range n {
		if _, ok := s.Revoked(Claims{SID: strconv.Itoa(i)}); ok != (i >= first) {
			t.Fatalf("sid %d revoked %v; want only the newest %d", i, ok, s.Len())
		}
	}
}

func TestConcurrentApplyAndRevoked(t *testing.T) {
	c := newClock()
	s := newTestSet(c, time.Minute)
	var hooks atomic.Int32
	s.OnCredential = func(string, string) { hooks.Add(1) }
	var wg sync.WaitGroup
	const writers, perWriter = 4, 200
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				c.Add(time.Millisecond)
				id := fmt.Sprintf("%d-%d", w, i)
				s.Apply(Event{Type: TypeSessionRevoked, At: c.Now(), SID: id})
				s.Apply(Event{Type: TypeSubjectRevoked, At: c.Now(), Sub: "alice", NotBefore: c.Now().Unix()})
				s.Apply(Event{Type: TypeCredentialRevoked, At: c.Now(), Kind: KindAPIKey, SHA256: id})
				if i%100 == 0 {
					s.Prune(c.Now())
				}
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Revoked(Claims{SID: "1-1", Sub: "alice", ClientID: "web", KID: "k", IssuedAt: c.Now()})
				s.SubjectNotBefore("alice")
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if hooks.Load() != writers*perWriter {
		t.Fatalf("OnCredential called %d times, want %d", hooks.Load(), writers*perWriter)
	}
	// 0.8 s of events with a 1 min retention: all kept, plus alice.
	if s.Len() != writers*perWriter+1 {
		t.Fatalf("Len = %d, want %d", s.Len(), writers*perWriter+1)
	}
	if _, ok := s.Revoked(Claims{SID: "3-199"}); !ok {
		t.Fatal("a concurrently applied sid is missing")
	}
}

// BenchmarkSetCheck is what every bearer request costs: a populated Set,
// asked from every core at once, mostly about tokens that are not revoked.
func BenchmarkSetCheck(b *testing.B) {
	s := NewSet(time.Hour)
	now := time.Now()
	for i := range 10_000 {
		s.Apply(Event{Type: TypeSessionRevoked, At: now, SID: "fam-" + strconv.Itoa(i)})
		if i%10 == 0 {
			s.Apply(Event{Type: TypeSubjectRevoked, At: now, Sub: "user-" + strconv.Itoa(i), NotBefore: now.Unix()})
		}
	}
	s.Apply(Event{Type: TypeKeyRevoked, At: now, KID: "k-old"})
	claims := make([]Claims, 1024)
	for i := range claims {
		claims[i] = Claims{SID: "fam-" + strconv.Itoa(20_000+i), Sub: "user-" + strconv.Itoa(i*7), ClientID: "web", KID: "k1", IssuedAt: now}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, revoked := s.Revoked(claims[i&1023]); revoked {
				b.Error("a live token is revoked")
			}
			i++
		}
	})
}

// After a burst has expired the maps are made again at the size of what
// is left (Go maps do not shrink), and what is left stays revoked.
func TestSetShrinksAfterABurst(t *testing.T) {
	c := newClock()
	s := newTestSet(c, 20*time.Minute)
	for i := range 5000 {
		s.Apply(Event{Type: TypeSessionRevoked, At: t0, SID: "burst-" + strconv.Itoa(i)})
	}
	c.Add(10 * time.Minute)
	for i := range 100 {
		s.Apply(Event{Type: TypeSessionRevoked, At: c.Now(), SID: "late-" + strconv.Itoa(i)})
		s.Apply(Event{Type: TypeSubjectRevoked, At: c.Now(), Sub: "user-" + strconv.Itoa(i), NotBefore: c.Now().Unix()})
	}
	c.Add(10 * time.Minute)
	if n := s.Prune(c.Now()); n != 5000 {
		t.Fatalf("Prune dropped %d, want 5000", n)
	}
	if s.peak != 200 || s.Len() != 200 {
		t.Fatalf("peak %d, Len %d after the burst expired; want both 200 (maps made again)", s.peak, s.Len())
	}
	for i := range 100 {
		if _, ok := s.Revoked(Claims{SID: "late-" + strconv.Itoa(i)}); !ok {
			t.Fatalf("late-%d lost when the maps were made again", i)
		}
		if s.SubjectNotBefore("user-"+strconv.Itoa(i)) != c.Now().Add(-10*time.Minute).Unix() {
			t.Fatalf("user-%d's not_before lost", i)
		}
	}
	if _, ok := s.Revoked(Claims{SID: "burst-1"}); ok {
		t.Fatal("an expired entry survived")
	}
}

// Replays interleave events: a later event may carry an earlier
// not_before, an earlier one a later not_before. Whatever the order, the
// entry keeps the latest not_before and lives until the latest expiry.
func TestSubjectEventsInAnyOrder(t *testing.T) {
	retain := 20 * time.Minute
	a := Event{Type: TypeSubjectRevoked, At: t0.Add(-100 * time.Second), Sub: "alice", NotBefore: t0.Unix() - 50}
	b := Event{Type: TypeSubjectRevoked, At: t0.Add(-10 * time.Second), Sub: "alice", NotBefore: t0.Unix() - 200}
	for _, tt := range []struct {
		name  string
		order []Event
	}{{"a then b", []Event{a, b}}, {"b then a", []Event{b, a}}} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := newTestSet(c, retain)
			for _, ev := range tt.order {
				s.Apply(ev)
			}
			if got := s.SubjectNotBefore("alice"); got != a.NotBefore {
				t.Fatalf("not_before %d, want the latest %d", got, a.NotBefore)
			}
			if n := s.Prune(a.At.Add(retain)); n != 0 {
				t.Fatal("dropped at the first event's expiry, before the second's")
			}
			if got := s.SubjectNotBefore("alice"); got != a.NotBefore {
				t.Fatalf("not_before %d after a's expiry, want %d", got, a.NotBefore)
			}
			if n := s.Prune(b.At.Add(retain)); n != 1 {
				t.Fatalf("Prune at the second event's expiry dropped %d, want 1", n)
			}
		})
	}
}
