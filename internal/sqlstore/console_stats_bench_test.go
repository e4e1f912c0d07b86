package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/storetest"
)

// BenchmarkAdminStats is the console overview's counting on the scale SPEC
// §17 names: 100 000 users (10 000 with TOTP) and 1 000 000 audit events
// over a year, plus 50 000 lockout rows, 20 000 mail jobs and 20 000
// webhook deliveries. Loading takes a while; run it with -bench
// AdminStats -benchtime 20x.
func BenchmarkAdminStats(b *testing.B) {
	const (
		users  = 100_000
		events = 1_000_000
	)
	now := time.Now().UTC()
	q := auth.AdminStatsQuery{Now: now, NewSince: now.Add(-auth.OverviewNewUsersWindow), SignInsSince: now.Add(-auth.OverviewSignInWindow),
		LocksSince: now.Add(-15 * time.Minute), FailuresSince: now.Add(-auth.OverviewFailureWindow)}
	run := func(b *testing.B, db *sqlstore.DB, raw *sql.DB, series func(n int) string) {
		ctx := context.Background()
		base := now.UnixMicro()
		day := (24 * time.Hour).Microseconds()
		load := []struct {
			what, q string
		}{
			{"users", `INSERT INTO users (id, email, email_verified, password_hash, roles, disabled, created_at, updated_at)
				SELECT 'u' || i, 'u' || i || '@example.com', i % 10 <> 0, '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', 'user', i % 50 = 0,
					CAST(? AS BIGINT) - i * (365 * CAST(? AS BIGINT) / CAST(? AS BIGINT)), CAST(? AS BIGINT) FROM ` + series(users)},
			{"totp", `INSERT INTO totp_authenticators (id, user_id, sealed, confirmed, created_at) SELECT 't' || i, 'u' || (i * 10), ?, TRUE, CAST(? AS BIGINT) FROM ` + series(users/10)},
			{"audit", `INSERT INTO audit_events (id, type, at, user_id, ip, details)
				SELECT 'e' || i, CASE i % 4 WHEN 0 THEN 'login.succeeded' WHEN 1 THEN 'login.failed' WHEN 2 THEN 'session.revoked' ELSE 'user.updated' END,
					CAST(? AS BIGINT) - i * (365 * CAST(? AS BIGINT) / CAST(? AS BIGINT)), 'u' || (i % CAST(? AS BIGINT)), '192.0.2.1', '{}' FROM ` + series(events)},
			{"lockouts", `INSERT INTO lockouts (key, failures, locked_until) SELECT 'k' || i, i % 5, CAST(? AS BIGINT) + (i - 25000) * 1000000 FROM ` + series(50_000)},
			{"mail", `INSERT INTO mail_jobs (id, kind, to_addr, created_at, next_attempt_at, done_at, failed)
				SELECT 'm' || i, 'reset', 'a@example.com', CAST(? AS BIGINT) - i * 60000000, CAST(? AS BIGINT) - i * 60000000, CASE WHEN i % 100 = 0 THEN NULL ELSE CAST(? AS BIGINT) - i * 60000000 END, CASE WHEN i % 7 = 0 THEN 1 ELSE 0 END FROM ` + series(20_000)},
			{"deliveries", `INSERT INTO webhook_deliveries (id, endpoint_id, type, payload, state, created_at, next_attempt_at, finished_at)
				SELECT 'd' || i, 'ep', 'user.created', '{}', CASE WHEN i % 9 = 0 THEN 'failed' ELSE 'delivered' END, CAST(? AS BIGINT) - i * 60000000, CAST(? AS BIGINT) - i * 60000000, CAST(? AS BIGINT) - i * 60000000 FROM ` + series(20_000)},
		}
		args := map[string][]any{
			"users":      {base, day, users, base},
			"totp":       {[]byte("sealed"), base},
			"audit":      {base, day, events, users},
			"lockouts":   {base},
			"mail":       {base, base, base},
			"deliveries": {base, base, base},
		}
		for _, l := range load {
			if _, err := raw.ExecContext(ctx, rebind(db, l.q), args[l.what]...); err != nil {
				b.Fatalf("loading %s: %v", l.what, err)
			}
		}
		analyze := "ANALYZE"
		if db.Dialect() == "postgres" {
			analyze = "VACUUM ANALYZE" // as autovacuum would have: index-only scans need the visibility map
		}
		if _, err := raw.ExecContext(ctx, analyze); err != nil {
			b.Fatal(err)
		}
		st, err := db.AdminStats(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if st.Users != users || st.SignInsSucceeded == 0 || st.UsersTOTP != users/10 {
			b.Fatalf("AdminStats = %+v", st)
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := db.AdminStats(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("SQLite", func(b *testing.B) {
		ctx := context.Background()
		path := filepath.Join(b.TempDir(), "bench.db")
		db, err := sqlstore.OpenSQLite(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		run(b, db, raw, func(n int) string {
			return "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < " + itoa(n) + ") SELECT i FROM s) AS s"
		})
	})
	b.Run("Postgres", func(b *testing.B) {
		pg := storetest.PostgresServer(b)
		dsn := pg.NewDatabase(b, "gh_bench_")
		ctx := context.Background()
		db, err := sqlstore.OpenPostgres(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		raw, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		run(b, db, raw, func(n int) string { return "generate_series(CAST(1 AS BIGINT), " + itoa(n) + ") AS s(i)" })
	})
}

func itoa(n int) string { return fmt.Sprint(n) }

// rebind turns ? into $n on PostgreSQL (the store's own rebind is
// unexported).
func rebind(db *sqlstore.DB, q string) string {
	if db.Dialect() != "postgres" {
		return q
	}
	var out []byte
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = append(out, '$')
			out = append(out, itoa(n)...)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}
