package guard_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"gatehouse/guard"
	"gatehouse/internal/revfeed"
)

// newFeedGuard is a Guard following the fake's revocation feed, once the
// feed is healthy.
func newFeedGuard(t testing.TB, f *fakeGatehouse, edit ...func(*guard.Config)) *guard.Guard {
	t.Helper()
	g := newGuard(t, f, append([]func(*guard.Config){func(c *guard.Config) { c.RevocationFeed = true }}, edit...)...)
	eventually(t, "the feed to be healthy", g.FeedHealthy)
	return g
}

// eventually polls cond for up to 10 s (the feed's backoff is at most 5 s).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func withSID(c jwt.MapClaims, sid string) jwt.MapClaims { c["sid"] = sid; return c }

func isRevoked(err error) bool {
	return errors.Is(err, guard.ErrInvalidToken) && strings.Contains(err.Error(), "revoked")
}

func TestFeedRefusesARevokedSessionWithinASecond(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newFeedGuard(t, f)
	tok := sign(t, ed, withSID(f.claims("alice", "user"), "fam1"))
	other := sign(t, ed, withSID(f.claims("alice", "user"), "fam2"))
	for _, tk := range []string{tok, other} {
		if _, err := g.Check(request("GET", bearer(tk))); err != nil { // now in the verified-token cache
			t.Fatal(err)
		}
	}

	start := time.Now()
	f.revoke(revfeed.Event{Type: revfeed.TypeSessionRevoked, SID: "fam1"})
	var err error
	eventually(t, "the revoked sid to be refused", func() bool {
		_, err = g.Check(request("GET", bearer(tok)))
		return err != nil
	})
	if took := time.Since(start); took > time.Second {
		t.Errorf("revocation took %v to reach the guard, want < 1 s", took)
	}
	if !isRevoked(err) {
		t.Fatalf("refused with %v, want invalid_token (revoked)", err)
	}
	res := serve(g.Middleware(okHandler()), request("GET", bearer(tok)))
	if res.Code != http.StatusUnauthorized || !strings.Contains(res.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("middleware: %d %q", res.Code, res.Header().Get("WWW-Authenticate"))
	}
	if _, err := g.Check(request("GET", bearer(other))); err != nil {
		t.Fatalf("another session's token: %v", err)
	}
	if n := f.introHits.Load(); n != 0 {
		t.Fatalf("%d introspections: the feed should make them unnecessary", n)
	}
}

func TestFeedRevocations(t *testing.T) {
	// A token: signed by kid for sub and client, before or after the event.
	type token struct {
		kid, sub, client string
		after, refused   bool
	}
	tests := []struct {
		name   string
		event  revfeed.Event // NotBefore, when it applies, is the time of the event
		tokens []token
	}{
		{"subject not_before", revfeed.Event{Type: revfeed.TypeSubjectRevoked, Sub: "alice"}, []token{
			{kid: "k1", sub: "alice", client: "web", refused: true},
			{kid: "k1", sub: "alice", client: "web", after: true},
			{kid: "k1", sub: "bob", client: "web"},
		}},
		{"client not_before", revfeed.Event{Type: revfeed.TypeClientRevoked, ClientID: "web"}, []token{
			{kid: "k1", sub: "alice", client: "web", refused: true},
			{kid: "k1", sub: "alice", client: "web", after: true},
			{kid: "k1", sub: "alice", client: "mobile"},
		}},
		{"signing key", revfeed.Event{Type: revfeed.TypeKeyRevoked, KID: "k1"}, []token{
			{kid: "k1", sub: "alice", client: "web", refused: true},
			{kid: "k1", sub: "alice", client: "web", after: true, refused: true},
			{kid: "k2", sub: "alice", client: "web"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			keys := map[string]*signingKey{"k1": newKey(t, "k1", "EdDSA"), "k2": newKey(t, "k2", "ES256")}
			f := newFakeGatehouse(t, clock, keys["k1"], keys["k2"])
			g := newFeedGuard(t, f)
			mint := func(tk token) string {
				c := f.claims(tk.sub, "user")
				c["client_id"] = tk.client
				return sign(t, keys[tk.kid], c)
			}
			signed := make([]string, len(tt.tokens))
			for i, tk := range tt.tokens {
				if !tk.after {
					signed[i] = mint(tk)
					if _, err := g.Check(request("GET", bearer(signed[i]))); err != nil {
						t.Fatalf("token %d before the event: %v", i, err)
					}
				}
			}
			clock.Advance(10 * time.Second)
			ev := tt.event
			if ev.Type == revfeed.TypeSubjectRevoked || ev.Type == revfeed.TypeClientRevoked {
				ev.NotBefore = clock.Now().Unix()
			}
			f.revoke(ev)
			for i, tk := range tt.tokens {
				if tk.after {
					signed[i] = mint(tk) // iat = not_before: alive
				}
			}
			eventually(t, "the event", func() bool {
				_, err := g.Check(request("GET", bearer(signed[0])))
				return err != nil
			})
			for i, tk := range tt.tokens {
				_, err := g.Check(request("GET", bearer(signed[i])))
				if tk.refused != (err != nil) || (err != nil && !isRevoked(err)) {
					t.Errorf("token %d %+v: %v", i, tk, err)
				}
			}
		})
	}
}

func TestFeedCredentialRevokedEvictsTheIntrospectionCache(t *testing.T) {
	const key = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
	const keep = "gth_bobKey0123456789abcdefghijklmnopqrstuvwxyzABCD"
	const cookie = "sessionOfAlice0123456789abcdefghij"
	tests := []struct {
		name, cred, kind string
		header           http.Header
	}{
		{"api key", key, revfeed.KindAPIKey, http.Header{"X-Api-Key": {key}}},
		{"session", cookie, revfeed.KindSession, http.Header{"Cookie": {"gatehouse_session=" + cookie}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			f := newFakeGatehouse(t, clock)
			f.activate(key, "api_key", "alice", "read")
			f.activate(keep, "api_key", "bob", "read")
			f.activate(cookie, "session", "alice", "")
			g := newFeedGuard(t, f)
			check := func(h http.Header) error { _, err := g.Check(request("GET", h)); return err }
			for range 2 {
				if err := check(tt.header); err != nil {
					t.Fatal(err)
				}
				if err := check(http.Header{"X-Api-Key": {keep}}); err != nil {
					t.Fatal(err)
				}
			}
			if n := f.introHits.Load(); n != 2 {
				t.Fatalf("%d introspections, want 2 (then cached)", n)
			}

			f.set(func(f *fakeGatehouse) { delete(f.active, tt.cred) }) // revoked at Gatehouse
			sum := sha256.Sum256([]byte(tt.cred))
			f.revoke(revfeed.Event{Type: revfeed.TypeCredentialRevoked, Kind: tt.kind, SHA256: hex.EncodeToString(sum[:])})
			// Within CacheTTL (the clock stands still): only the eviction
			// makes the guard ask again.
			eventually(t, "the credential to be refused", func() bool { return check(tt.header) != nil })
			if err := check(tt.header); !errors.Is(err, guard.ErrInvalidToken) {
				t.Fatalf("revoked %s: %v", tt.name, err)
			}
			if err := check(http.Header{"X-Api-Key": {keep}}); err != nil {
				t.Fatalf("another key: %v", err)
			}
			if n := f.introHits.Load(); n != 3 {
				t.Fatalf("%d introspections, want 3: only the revoked credential is asked about again", n)
			}
		})
	}
}

func TestFeedStaleFallsBackToIntrospection(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newFeedGuard(t, f) // FeedStaleAfter 10 s, OnStale StaleIntrospect
	tok := sign(t, ed, withSID(f.claims("alice", "user"), "fam1"))
	f.activate(tok, "access_token", "alice", "read write")
	check := func() error { _, err := g.Check(request("GET", bearer(tok))); return err }
	hits := func() int32 { return f.introHits.Load() }
	if err := check(); err != nil || hits() != 0 {
		t.Fatalf("feed healthy: %v, %d introspections", err, hits())
	}

	f.feedOutage(http.StatusServiceUnavailable)
	eventually(t, "the feed to be down", func() bool { return !g.FeedHealthy() })
	clock.Advance(9 * time.Second)
	if err := check(); err != nil || hits() != 0 {
		t.Fatalf("down 9 s, not stale yet: %v, %d introspections, want the set trusted", err, hits())
	}
	clock.Advance(2 * time.Second)
	if err := check(); err != nil || hits() != 1 {
		t.Fatalf("stale: %v, %d introspections, want 1", err, hits())
	}
	if err := check(); err != nil || hits() != 1 {
		t.Fatalf("again within a second: %v, %d introspections, want the answer cached", err, hits())
	}
	clock.Advance(time.Second)
	if err := check(); err != nil || hits() != 2 {
		t.Fatalf("a second later: %v, %d introspections, want 2", err, hits())
	}
	// Revoked while the feed is down: introspection says so.
	f.set(func(f *fakeGatehouse) { delete(f.active, tok) })
	clock.Advance(time.Second)
	if err := check(); !isRevoked(err) || hits() != 3 {
		t.Fatalf("revoked during the outage: %v, %d introspections", err, hits())
	}

	// The feed recovers: no more introspection.
	f.feedOutage(0)
	eventually(t, "the feed to recover", g.FeedHealthy)
	fresh := sign(t, ed, withSID(f.claims("alice", "user"), "fam2"))
	if _, err := g.Check(request("GET", bearer(fresh))); err != nil || hits() != 3 {
		t.Fatalf("after recovery: %v, %d introspections, want 3", err, hits())
	}
}

func TestFeedStaleReject(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newFeedGuard(t, f, func(c *guard.Config) { c.OnStale = guard.StaleReject })
	tok := sign(t, ed, f.claims("alice", "user"))
	if _, err := g.Check(request("GET", bearer(tok))); err != nil {
		t.Fatal(err)
	}
	f.feedOutage(http.StatusBadGateway)
	eventually(t, "the feed to be down", func() bool { return !g.FeedHealthy() })
	clock.Advance(11 * time.Second)
	if _, err := g.Check(request("GET", bearer(tok))); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("stale with StaleReject: %v, want ErrUnavailable", err)
	}
	if res := serve(g.Middleware(okHandler()), request("GET", bearer(tok))); res.Code != http.StatusServiceUnavailable {
		t.Fatalf("middleware: %d, want 503", res.Code)
	}
	if n := f.introHits.Load(); n != 0 {
		t.Fatalf("%d introspections with StaleReject", n)
	}
	f.feedOutage(0)
	eventually(t, "the feed to recover", g.FeedHealthy)
	if _, err := g.Check(request("GET", bearer(tok))); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// Before its first snapshot the guard knows no revocations: it asks
// Gatehouse about each token, even with StaleReject, until FeedStaleAfter.
func TestFeedStartingIntrospects(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	f.feedOutage(http.StatusServiceUnavailable)
	g := newGuard(t, f, func(c *guard.Config) { c.RevocationFeed, c.OnStale = true, guard.StaleReject })
	live := sign(t, ed, f.claims("alice", "user"))
	f.activate(live, "access_token", "alice", "read write")
	dead := sign(t, ed, f.claims("bob", "user")) // unknown to introspection: revoked
	if _, err := g.Check(request("GET", bearer(live))); err != nil {
		t.Fatalf("starting, active token: %v", err)
	}
	if _, err := g.Check(request("GET", bearer(dead))); !isRevoked(err) {
		t.Fatalf("starting, inactive token: %v", err)
	}
	if n := f.introHits.Load(); n != 2 {
		t.Fatalf("%d introspections, want 2", n)
	}
	clock.Advance(10 * time.Second)
	if _, err := g.Check(request("GET", bearer(live))); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("no snapshot after FeedStaleAfter with StaleReject: %v", err)
	}
	f.feedOutage(0)
	eventually(t, "the first snapshot", g.FeedHealthy)
	if _, err := g.Check(request("GET", bearer(dead))); err != nil {
		t.Fatalf("with the feed healthy, a token the feed does not name: %v", err)
	}
}

func TestFeedLagMetric(t *testing.T) {
	clock := newClock()
	f := newFakeGatehouse(t, clock)
	lag := func(g *guard.Guard) (float64, bool) {
		t.Helper()
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(g.Collector()); err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "guard_revocation_feed_lag_seconds" && mf.GetType() == dto.MetricType_GAUGE {
				return mf.GetMetric()[0].GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	if v, ok := lag(newGuard(t, f)); ok {
		t.Fatalf("without the feed the metric is there: %v", v)
	}
	g := newFeedGuard(t, f)
	if v, ok := lag(g); !ok || v != 0 {
		t.Fatalf("healthy feed: lag %v (present %v), want 0", v, ok)
	}
	f.feedOutage(http.StatusServiceUnavailable)
	eventually(t, "the feed to be down", func() bool { return !g.FeedHealthy() })
	clock.Advance(30 * time.Second)
	if v, _ := lag(g); v != 30 {
		t.Fatalf("down for 30 s: lag %v", v)
	}
}

func TestCloseStopsTheFeed(t *testing.T) {
	clock := newClock()
	f := newFakeGatehouse(t, clock)
	g := newFeedGuard(t, f)
	if n := f.feedOpen.Load(); n != 1 {
		t.Fatalf("%d streams open, want 1", n)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stream to close", func() bool { return f.feedOpen.Load() == 0 })
	hits := f.feedHits.Load()
	time.Sleep(300 * time.Millisecond) // longer than the first backoff
	if f.feedHits.Load() != hits || g.FeedHealthy() {
		t.Fatal("the feed goes on after Close")
	}
	if err := g.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
}

func TestNewRefusesBadFeedConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  guard.Config
		want string
	}{
		{"no introspection key", guard.Config{Issuer: "https://auth.example.com", RevocationFeed: true}, "IntrospectionKey"},
		{"feed over plain http", guard.Config{Issuer: "https://auth.example.com", RevocationFeed: true, IntrospectionKey: introKey,
			FeedURL: "http://auth.example.com/v1/revocations/stream"}, "FeedURL"},
		{"negative FeedStaleAfter", guard.Config{Issuer: "https://auth.example.com", FeedStaleAfter: -time.Second}, "FeedStaleAfter"},
		{"negative FeedRetain", guard.Config{Issuer: "https://auth.example.com", FeedRetain: -time.Second}, "FeedRetain"},
		{"unknown OnStale", guard.Config{Issuer: "https://auth.example.com", OnStale: 7}, "OnStale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := guard.New(tt.cfg)
			if err == nil {
				_ = g.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

// An introspection under way when its credential is revoked answers the
// request that asked, but its answer is not cached: it may predate the
// revocation.
func TestFeedEvictionDuringIntrospection(t *testing.T) {
	const key = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	f.activate(key, "api_key", "alice", "read")
	g := newFeedGuard(t, f)
	check := func() error { _, err := g.Check(request("GET", http.Header{"X-Api-Key": {key}})); return err }

	gate := make(chan struct{})
	f.set(func(f *fakeGatehouse) { f.gate = gate })
	done := make(chan error, 1)
	go func() { done <- check() }()
	eventually(t, "the introspection to start", func() bool { return f.introHits.Load() == 1 })

	sum := sha256.Sum256([]byte(key))
	f.revoke(revfeed.Event{Type: revfeed.TypeCredentialRevoked, Kind: revfeed.KindAPIKey, SHA256: hex.EncodeToString(sum[:])})
	// Events are applied in order: once this one is, so is the eviction.
	marker := sign(t, ed, withSID(f.claims("bob", "user"), "marker"))
	f.revoke(revfeed.Event{Type: revfeed.TypeSessionRevoked, SID: "marker"})
	eventually(t, "the events to be applied", func() bool { _, err := g.Check(request("GET", bearer(marker))); return err != nil })

	f.set(func(f *fakeGatehouse) { f.gate = nil })
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("the request under way: %v", err)
	}
	f.set(func(f *fakeGatehouse) { delete(f.active, key) })
	if err := check(); !errors.Is(err, guard.ErrInvalidToken) || f.introHits.Load() != 2 {
		t.Fatalf("after the revocation: %v, %d introspections; want a fresh one refusing it", err, f.introHits.Load())
	}
}
