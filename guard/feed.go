package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/internal/revfeed"
)

// startFeed makes the revocation set and starts following the feed.
func (g *Guard) startFeed() error {
	set := revfeed.NewSet(g.cfg.FeedRetain)
	set.Now = g.now
	set.OnCredential = g.evictCredential
	feed, err := revfeed.NewClient(revfeed.ClientConfig{
		URL: g.cfg.FeedURL, APIKey: g.cfg.IntrospectionKey, HTTPClient: g.client, // follows no redirects
		Set: set, Logger: g.log, Now: g.now,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.revoked, g.feed, g.stopFeed, g.feedDone = set, feed, cancel, make(chan struct{})
	go func() {
		defer close(g.feedDone)
		_ = feed.Run(ctx) // returns only once Close cancels ctx
	}()
	return nil
}

// Close stops the revocation feed's goroutine and waits for it to end. A
// Guard without Config.RevocationFeed has nothing to stop. After Close the
// Guard still works; its feed becomes stale, and Config.OnStale applies.
// Close may be called more than once.
func (g *Guard) Close() error {
	if g.stopFeed != nil {
		g.stopFeed()
		<-g.feedDone
	}
	return nil
}

// FeedHealthy reports whether the revocation feed is connected and up to
// date; false without Config.RevocationFeed. A readiness probe can use it
// to keep a service out of rotation until it knows the revocations.
func (g *Guard) FeedHealthy() bool { return g.feed != nil && g.feed.Healthy() }

// evictCredential drops the cached introspection answers for a revoked
// API key or session (a credential.revoked event): sum is the hex SHA-256
// of the credential, what the introspection cache is keyed by. Both kinds
// are dropped, whatever the event says: it costs nothing.
func (g *Guard) evictCredential(kind, sum string) {
	b, err := hex.DecodeString(sum)
	if err != nil || len(b) != sha256.Size {
		g.log.Warn("guard: credential.revoked event with a malformed sha256", "kind", kind)
		return
	}
	g.introGen.Add(1) // before the deletes: an introspection under way is not cached
	k := introKey{sum: [32]byte(b)}
	for _, code := range []uint8{codeAPIKey, codeSession} {
		k.kind = code
		g.intro.delete(k)
	}
}

// feedMode is how access tokens are checked against revocations.
type feedMode int

const (
	feedTrusted    feedMode = iota // the set alone
	feedIntrospect                 // the set, then Gatehouse
	feedReject                     // stale, and OnStale is StaleReject
)

// mode decides whether the set can be trusted at now. While the feed is
// healthy it can. Down for less than FeedStaleAfter, it still can if a
// snapshot was complete before (the replay on reconnection fills the
// gap); before the first snapshot it may lack revocations, so each token
// is introspected then, whatever OnStale says. Down for longer: OnStale.
func (g *Guard) mode(now time.Time) feedMode {
	st := g.feed.Status()
	switch {
	case st.Healthy:
		return feedTrusted
	case now.Sub(st.DownSince) < g.cfg.FeedStaleAfter:
		if st.Ready {
			return feedTrusted
		}
		return feedIntrospect
	case g.cfg.OnStale == StaleReject:
		return feedReject
	}
	return feedIntrospect
}

// checkRevoked refuses an access token that the feed says is revoked, and
// asks Gatehouse about it when the feed cannot be trusted. It runs on
// every request, cached token or not: a revocation must not wait for the
// token to leave the cache.
func (g *Guard) checkRevoked(ctx context.Context, tok string, c revfeed.Claims, now time.Time) error {
	if reason, revoked := g.revoked.Revoked(c); revoked {
		return invalid("revoked: " + reason)
	}
	switch g.mode(now) {
	case feedTrusted:
		return nil
	case feedReject:
		// Not logged per request: the feed's client logs why it is down.
		return fmt.Errorf("%w: the revocation feed has been down for more than %v", ErrUnavailable, g.cfg.FeedStaleAfter)
	}
	return g.introspectJWT(ctx, tok, now)
}

// introspectJWT asks Gatehouse whether a verified access token is still
// active; answers are cached for a second, and concurrent requests with
// the same token share one call.
func (g *Guard) introspectJWT(ctx context.Context, tok string, now time.Time) error {
	h := introKey{sum: sha256.Sum256([]byte(tok)), kind: codeAccessToken}
	if g.cfg.CacheTTL > 0 {
		if p, ok := g.intro.get(h, now); ok {
			if p == nil {
				return invalid("revoked: refused by introspection (cached)")
			}
			return nil
		}
	}
	p, err := g.flight.do(h, func() (*Principal, error) {
		p, err := g.introspect(ctx, KindAccessToken, tok)
		if err == nil && g.cfg.CacheTTL > 0 {
			now := g.now()
			g.intro.put(h, p, now.Add(staleIntrospectTTL), now)
		}
		return p, err
	})
	if err != nil {
		return err
	}
	if p == nil {
		return invalid("revoked: refused by introspection")
	}
	return nil
}

// Collector returns the Guard's metric, for the caller to register where
// it likes (it is never registered on its own):
//
//	guard_revocation_feed_lag_seconds  seconds since the revocation feed
//	                                   was last known up to date; 0 while
//	                                   it is
//
// Without Config.RevocationFeed it collects nothing.
//
//	prometheus.MustRegister(g.Collector())
func (g *Guard) Collector() prometheus.Collector { return g.lag }

// feedCollector reports the feed's lag when it is scraped.
type feedCollector struct {
	g    *Guard
	desc *prometheus.Desc
}

func (c *feedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *feedCollector) Collect(ch chan<- prometheus.Metric) {
	if c.g.feed == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, c.g.feedLag(c.g.now()).Seconds())
}

// feedLag is 0 while the feed is healthy, else how long it has not been.
func (g *Guard) feedLag(now time.Time) time.Duration {
	st := g.feed.Status()
	if st.Healthy {
		return 0
	}
	return max(now.Sub(st.DownSince), 0)
}
