package guard_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"gatehouse/guard"
	"gatehouse/internal/revfeed"
)

var sink *guard.Principal

func benchHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sink, _ = guard.PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
}

// BenchmarkBareHandler is the floor: the handler with no guard.
func BenchmarkBareHandler(b *testing.B) {
	h := benchHandler()
	r := httptest.NewRequest("GET", "/posts/1", nil)
	r.Header.Set("Authorization", "Bearer x")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkMiddlewareJWT is a token presented again: a cache hit.
func BenchmarkMiddlewareJWT(b *testing.B) {
	clock := newClock()
	ed := newKey(b, "k1", "EdDSA")
	f := newFakeGatehouse(b, clock, ed)
	g := newGuard(b, f)
	h := g.Middleware(benchHandler())
	r := request("GET", bearer(sign(b, ed, f.claims("alice", "user"))))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkVerifyUncached is the first sight of each token: parsing and
// an Ed25519 signature check.
func BenchmarkVerifyUncached(b *testing.B) {
	clock := newClock()
	ed := newKey(b, "k1", "EdDSA")
	f := newFakeGatehouse(b, clock, ed)
	g := newGuard(b, f)
	const n = 4096
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = request("GET", bearer(sign(b, ed, f.claims("alice", "user"))))
	}
	if _, err := g.Check(reqs[0]); err != nil { // fetches the JWKS
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 1
	for b.Loop() {
		if i == n {
			// Every token is cached now: start again with a fresh cache.
			b.StopTimer()
			g = newGuard(b, f)
			_, _ = g.Check(reqs[0])
			i = 1
			b.StartTimer()
		}
		if _, err := g.Check(reqs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// feedBenchGuard is a Guard following a feed whose snapshot holds 10,000
// revoked sessions, 1,000 subjects with a not_before (the caller's among
// them, older than its token) and 100 clients; and a token that passes.
func feedBenchGuard(b *testing.B) (*guard.Guard, string) {
	clock := newClock()
	ed := newKey(b, "k1", "EdDSA")
	f := newFakeGatehouse(b, clock, ed)
	past := clock.Now().Add(-time.Minute).Unix()
	for i := range 10_000 {
		f.revoke(revfeed.Event{Type: revfeed.TypeSessionRevoked, SID: "fam-" + strconv.Itoa(i)})
	}
	for i := range 1_000 {
		f.revoke(revfeed.Event{Type: revfeed.TypeSubjectRevoked, Sub: "user-" + strconv.Itoa(i), NotBefore: past})
	}
	for i := range 100 {
		f.revoke(revfeed.Event{Type: revfeed.TypeClientRevoked, ClientID: "client-" + strconv.Itoa(i), NotBefore: past})
	}
	f.revoke(revfeed.Event{Type: revfeed.TypeSubjectRevoked, Sub: "alice", NotBefore: past})
	g := newFeedGuard(b, f)
	// The fake's copy of the events is not the guard's cost: let it go.
	f.set(func(f *fakeGatehouse) { f.feedEvents = nil })
	runtime.GC()
	return g, sign(b, ed, withSID(f.claims("alice", "user"), "fam-live"))
}

// BenchmarkMiddlewareJWTFeed is BenchmarkMiddlewareJWT with the revocation
// feed on: the token is looked up in the set on every request.
func BenchmarkMiddlewareJWTFeed(b *testing.B) {
	g, tok := feedBenchGuard(b)
	h := g.Middleware(benchHandler())
	r := request("GET", bearer(tok))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// benchServe measures requests per second to h over loopback HTTP, from
// as many goroutines as there are cores, as bench/run.sh does with wrk.
// The ratio of two of these is the figure docs/BENCHMARKS.md targets.
func benchServe(b *testing.B, h http.Handler, tok string) {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	get := func() error {
		req, _ := http.NewRequest("GET", srv.URL+"/posts/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	if err := get(); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16) // 32 connections on two cores, like wrk -c64 on its share
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkHTTPBare, BenchmarkHTTPGuard and BenchmarkHTTPGuardFeed are the
// handler bare, behind the guard, and behind the guard with the feed on
// (10,000 revocations), over HTTP.
func BenchmarkHTTPBare(b *testing.B) { benchServe(b, benchHandler(), "x") }

func BenchmarkHTTPGuard(b *testing.B) {
	clock := newClock()
	ed := newKey(b, "k1", "EdDSA")
	f := newFakeGatehouse(b, clock, ed)
	g := newGuard(b, f)
	benchServe(b, g.Middleware(benchHandler()), sign(b, ed, f.claims("alice", "user")))
}

func BenchmarkHTTPGuardFeed(b *testing.B) {
	g, tok := feedBenchGuard(b)
	benchServe(b, g.Middleware(benchHandler()), tok)
}
