package guard_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/guard"
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
