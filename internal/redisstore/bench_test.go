package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/redisstore"
	"gatehouse/internal/storetest"
)

// BenchmarkAllow is the cost of one rate-limit hit on Redis (redis_rate's
// GCRA script, one round trip on loopback).
func BenchmarkAllow(b *testing.B) {
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redisURL(), redisstore.Options{Prefix: "gh_bench_" + auth.NewID()[:8] + ":"})
	if err != nil {
		storetest.Unavailable(b, "Redis", err)
	}
	defer s.Close()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Allow(ctx, fmt.Sprintf("ip:10.0.%d.%d", (i>>8)&255, i&255), 1000000, time.Minute, now); err != nil {
			b.Fatal(err)
		}
	}
}
