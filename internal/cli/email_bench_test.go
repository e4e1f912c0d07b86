package cli

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkForgot is POST /v1/password/forgot through the whole handler
// chain, for an address with an account and one without. The request only
// queues a job (the mail worker is not running here), so both should cost
// the same: a gap between the p50s would reveal which addresses exist.
func BenchmarkForgot(b *testing.B) {
	srv, _ := benchServer(b) // has bench@example.com and high rate limits
	forgot := func(b *testing.B, email string) time.Duration {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/password/forgot", strings.NewReader(`{"email":"`+email+`"}`))
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		srv.ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return d
	}
	// Warm up (caches, the database file, the heap after the setup's
	// password hashing) so that the first sub-benchmark is not the slower
	// one merely for running first.
	for i := 0; i < 100; i++ {
		forgot(b, "bench@example.com")
		forgot(b, "nobody@example.com")
	}
	runtime.GC()
	for _, bc := range []struct{ name, email string }{
		{"existing", "bench@example.com"},
		{"unknown", "nobody@example.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			durs := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				durs = append(durs, forgot(b, bc.email))
			}
			b.StopTimer()
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
		})
	}
}
