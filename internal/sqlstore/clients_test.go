package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/storetest"
)

// TestPurgeCountersPurgesAuthCodes: the ten-minute purge of the serve
// command (PurgeCounters) deletes expired authorization codes too, and
// only those.
func TestPurgeCountersPurgesAuthCodes(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.CreateUser(ctx, &auth.User{ID: "u-1", Email: "one@example.com", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, &auth.Client{ID: "c-1", Type: auth.ClientPublic, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		hash    string
		expires time.Time
	}{{"old", t0.Add(time.Minute)}, {"live", t0.Add(2 * time.Hour)}} {
		if err := db.CreateAuthCode(ctx, &auth.AuthCode{Hash: c.hash, ClientID: "c-1", UserID: "u-1", AuthTime: t0, CreatedAt: t0, ExpiresAt: c.expires}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PurgeCounters(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatalf("PurgeCounters: %v", err)
	}
	if _, err := db.AuthCodeByHash(ctx, "old"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("expired code after PurgeCounters: %v, want ErrNotFound", err)
	}
	if _, err := db.AuthCodeByHash(ctx, "live"); err != nil {
		t.Errorf("live code after PurgeCounters: %v", err)
	}
}

// TestMigration9: migration 9 goes down, leaving no table or index of
// its own behind, and up again on both dialects.
func TestMigration9(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testMigration9(t, openSQLite(t)) })
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
		testMigration9(t, db)
	})
}

func testMigration9(t *testing.T, db *DB) {
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.CreateUser(ctx, &auth.User{ID: "u-1", Email: "one@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, &auth.Client{ID: "c-1", Type: auth.ClientPublic, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	p, err := db.migrator()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 8); err != nil {
		t.Fatalf("down to 8: %v", err)
	}
	if _, err := db.ClientByID(ctx, "c-1"); err == nil {
		t.Fatal("ClientByID works after migration 9 went down")
	}
	// The users survive the way down.
	if _, err := db.UserByID(ctx, "u-1"); err != nil {
		t.Fatalf("UserByID after going down: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if _, err := db.ClientByID(ctx, "c-1"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("ClientByID after up again: %v, want ErrNotFound (an empty table)", err)
	}
	if err := db.CreateClient(ctx, &auth.Client{ID: "c-1", Type: auth.ClientPublic, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("CreateClient after up again: %v", err)
	}
}
