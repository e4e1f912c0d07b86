package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/storetest"
)

// TestSQLiteSessionAndUserCovered: the cookie hot path reads nothing but
// the covering indexes, the level columns of migration 8 included. SQLite
// prefers the covering indexes to the unique ones once it has statistics
// (ANALYZE); without them it takes the unique index and the table.
func TestSQLiteSessionAndUserCovered(t *testing.T) {
	db := openSQLite(t)
	ctx := t.Context()
	now := time.Now()
	for i := range 200 {
		id := fmt.Sprintf("u-%03d", i)
		if err := db.CreateUser(ctx, &auth.User{ID: id, Email: id + "@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateSession(ctx, &auth.Session{ID: "s-" + id, UserID: id, Hash: "h-" + id, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.w.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.w.QueryContext(ctx, `EXPLAIN QUERY PLAN `+sessionAndUserQuery, "h-u-007")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var (
			id, parent, unused int
			detail             string
		)
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(plan, "\n")
	for _, want := range []string{"COVERING INDEX sessions_by_hash_cover", "COVERING INDEX users_by_id_cover"} {
		if !strings.Contains(got, want) {
			t.Errorf("query plan of SessionAndUser:\n%s\nwant it to use %s", got, want)
		}
	}
}

// TestMigration8: migration 8 goes down and up again on both dialects,
// and the sessions and refresh families written before it read as one
// factor, no methods, signed in when they were created.
func TestMigration8(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testMigration8(t, openSQLite(t)) })
	t.Run("Postgres", func(t *testing.T) {
		dsn := storetest.PostgresServer(t).NewDatabase(t, "gh_test_")
		db, err := OpenPostgres(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		testMigration8(t, db)
	})
}

func testMigration8(t *testing.T, db *DB) {
	ctx := t.Context()
	p, err := db.migrator()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("down to 7: %v", err)
	}
	created := time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Rows as version 7 wrote them.
	exec(`INSERT INTO users (id, email, created_at, updated_at) VALUES (?, ?, ?, ?)`, "u-1", "one@example.com", ts(created), ts(created))
	exec(`INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, '', '')`,
		"s-1", "h-1", "u-1", ts(created), ts(created), ts(created.Add(time.Hour)))
	exec(`INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at) VALUES (?, ?, '', '', ?, ?)`,
		"f-1", "u-1", ts(created), ts(created.Add(time.Hour)))
	exec(`INSERT INTO refresh_tokens (id, family_id, token_hash, created_at) VALUES (?, ?, ?, ?)`, "t-1", "f-1", "th-1", ts(created))
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}

	check := func(what, acr string, amr []string, authTime time.Time) {
		t.Helper()
		if acr != auth.ACR1 || len(amr) != 0 || !authTime.Equal(created) {
			t.Errorf("%s from before migration 8: ACR %q, AMR %q, AuthTime %v; want aal1, none, %v", what, acr, amr, authTime, created)
		}
	}
	s, err := db.SessionByHash(ctx, "h-1")
	if err != nil {
		t.Fatal(err)
	}
	check("SessionByHash", s.ACR, s.AMR, s.AuthTime)
	s, _, err = db.SessionAndUser(ctx, "h-1")
	if err != nil {
		t.Fatal(err)
	}
	check("SessionAndUser", s.ACR, s.AMR, s.AuthTime)
	_, f, err := db.RefreshTokenByHash(ctx, "th-1")
	if err != nil {
		t.Fatal(err)
	}
	check("RefreshTokenByHash", f.ACR, f.AMR, f.AuthTime)

	// And the revocation of a user's aal1 families finds it.
	if err := db.RevokeUserFamiliesAt(ctx, "u-1", auth.ACR1, created.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, f, err = db.RefreshTokenByHash(ctx, "th-1"); err != nil || f.RevokedAt == nil {
		t.Errorf("family from before migration 8 after RevokeUserFamiliesAt(aal1): %+v, %v; want revoked", f, err)
	}
}

// TestPurgeCountersPurgesMFA: the ten-minute purge of the serve command
// (PurgeCounters) deletes expired MFA challenges and enrolments too.
func TestPurgeCountersPurgesMFA(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.CreateUser(ctx, &auth.User{ID: "u-1", Email: "one@example.com", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateMFAChallenge(ctx, &auth.MFAChallenge{Hash: "c-1", UserID: "u-1", AuthTime: t0, Finish: auth.FinishTokens, CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutPendingTOTP(ctx, &auth.TOTPAuthenticator{ID: "totp-1", UserID: "u-1", Sealed: []byte{1}, CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := db.PurgeCounters(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatalf("PurgeCounters: %v", err)
	}
	var n int
	if err := db.w.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM mfa_challenges) + (SELECT COUNT(*) FROM totp_authenticators)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d MFA challenges and enrolments left after PurgeCounters, want 0", n)
	}
}
