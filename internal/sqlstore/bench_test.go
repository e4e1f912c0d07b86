package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/internal/sqlstore"
)

// BenchmarkAllow is the cost of one rate-limit hit on SQLite (one UPSERT
// through the single writer connection, committed without waiting for
// fsync: see txNoSync).
func BenchmarkAllow(b *testing.B) {
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.Allow(ctx, fmt.Sprintf("ip:10.0.%d.%d", (i>>8)&255, i&255), 20, time.Minute, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfirmedTOTPMiss is what SPEC §13 adds to the password login of
// a user without a second factor: one indexed lookup of a confirmed TOTP
// authenticator that is not there.
func BenchmarkConfirmedTOTPMiss(b *testing.B) {
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.ConfirmedTOTP(ctx, "no-such-user"); err == nil {
			b.Fatal("found an authenticator")
		}
	}
}
