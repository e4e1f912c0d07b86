package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// PurgeMailJobs deletes finished (sent or given-up) jobs that ended before
// the cut-off, and nothing else: not a pending job, not one finished after.
func TestPurgeMailJobs(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	var err error
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"sent-old", "failed-old", "sent-new", "pending"} {
		if err := db.Enqueue(ctx, &auth.MailJob{ID: id, Kind: auth.MailReset, To: id + "@example.com", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, end := range []struct {
		id   string
		at   time.Time
		fail bool
	}{{"sent-old", t0.Add(time.Hour), false}, {"failed-old", t0.Add(2 * time.Hour), true}, {"sent-new", t0.Add(48 * time.Hour), false}} {
		if end.fail {
			err = db.FailMailJob(ctx, end.id, end.at, "smtp: 550")
		} else {
			err = db.FinishMailJob(ctx, end.id, end.at)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PurgeMailJobs(ctx, t0.Add(24*time.Hour)); err != nil {
		t.Fatalf("PurgeMailJobs: %v", err)
	}
	rows, err := db.w.QueryContext(ctx, `SELECT id FROM mail_jobs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var left []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		left = append(left, id)
	}
	if got, want := len(left), 2; got != want || left[0] != "pending" || left[1] != "sent-new" {
		t.Fatalf("jobs left after the purge: %q, want [pending sent-new]", left)
	}
}

// openSQLite opens a migrated SQLite store in a temporary directory, closed
// when the test ends.
func openSQLite(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}
