package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"gatehouse/internal/storetest"
)

// setting reads one setting through q (a pool or a transaction).
func setting(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string) string {
	t.Helper()
	var v string
	if err := q.QueryRowContext(context.Background(), query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// txNoSync relaxes only its own transaction: every other write on the
// shared SQLite writer connection still waits for fsync, whether the
// relaxed transaction committed, failed or had its context cancelled.
func TestTxNoSyncSQLite(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	const full, normal = "2", "1"
	if got := setting(t, db.w, `PRAGMA synchronous`); got != full {
		t.Fatalf("writer synchronous = %s, want %s (FULL)", got, full)
	}
	boom := errors.New("boom")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		fnErr   error
		wantErr bool
	}{
		{"commit", ctx, nil, false},
		{"rollback", ctx, boom, true},
		{"context cancelled inside", cctx, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := db.txNoSync(tt.ctx, func(tx *sql.Tx) error {
				if got := setting(t, tx, `PRAGMA synchronous`); got != normal {
					t.Errorf("inside: synchronous = %s, want %s (NORMAL)", got, normal)
				}
				if tt.ctx == cctx {
					cancel()
				}
				return tt.fnErr
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if tt.fnErr != nil && !errors.Is(err, tt.fnErr) {
				t.Errorf("err = %v, want %v", err, tt.fnErr)
			}
			if got := setting(t, db.w, `PRAGMA synchronous`); got != full {
				t.Errorf("after: writer synchronous = %s, want %s (FULL)", got, full)
			}
		})
	}
	// The relaxed commits are real commits.
	if _, err := db.Allow(ctx, "k", 5, time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := setting(t, db.r, `SELECT count FROM rate_counters WHERE key = 'k'`); got != "1" {
		t.Errorf("counter after Allow = %s, want 1", got)
	}
}

func TestTxNoSyncPostgres(t *testing.T) {
	pg := storetest.PostgresServer(t)
	db, err := OpenPostgres(t.Context(), pg.NewDatabase(t, "gh_nosync_"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.txNoSync(t.Context(), func(tx *sql.Tx) error {
		if got := setting(t, tx, `SHOW synchronous_commit`); got != "off" {
			t.Errorf("inside: synchronous_commit = %s, want off", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// SET LOCAL ends with the transaction: the pool's connections commit
	// synchronously again.
	db.w.SetMaxOpenConns(1)
	if got := setting(t, db.w, `SHOW synchronous_commit`); got != "on" {
		t.Errorf("after: synchronous_commit = %s, want on", got)
	}
}
