package sqlstore_test

import (
	"database/sql"
	"strings"
	"testing"

	"gatehouse/internal/sqlstore"
	"gatehouse/internal/storetest"
)

// The session, rate-limit and lockout contracts, on both dialects. The DB
// is a SessionBackend as it is: its CreateUser makes the users the
// sessions' foreign key refers to.

func TestSQLiteSessions(t *testing.T) {
	storetest.RunSessions(t, func(t *testing.T) storetest.SessionBackend {
		db, _ := openSQLite(t)
		return db
	})
}

func TestSQLiteLimits(t *testing.T) {
	storetest.RunLimits(t, func(t *testing.T) storetest.LimitBackend {
		db, _ := openSQLite(t)
		return db
	})
}

func TestPostgresSessions(t *testing.T) {
	pg := postgres(t)
	storetest.RunSessions(t, func(t *testing.T) storetest.SessionBackend {
		return pg.migrated(t)
	})
}

func TestPostgresLimits(t *testing.T) {
	pg := postgres(t)
	storetest.RunLimits(t, func(t *testing.T) storetest.LimitBackend {
		return pg.migrated(t)
	})
}

// migrated returns a migrated, empty database for t from the pool of s's
// test. Creating and migrating a database costs most of a second, emptying
// one a few milliseconds, and the contract suites ask for a fresh store in
// every subtest: so a database, once made, goes back to the pool when the
// test that took it ends (after its store is closed), and every table but
// goose's is emptied when it is taken again. The pool's databases are
// dropped when s's test ends.
func (s *pgServer) migrated(t *testing.T) *sqlstore.DB {
	t.Helper()
	s.mu.Lock()
	var dsn string
	if n := len(s.free); n > 0 {
		dsn, s.free = s.free[n-1], s.free[:n-1]
	}
	s.mu.Unlock()
	fresh := dsn == ""
	if fresh {
		var (
			drop func() error
			err  error
		)
		dsn, drop, err = s.CreateDatabase(t.Context(), "gh_test_")
		if err != nil {
			t.Fatal(err)
		}
		owner := s.owner
		owner.Cleanup(func() {
			if err := drop(); err != nil {
				owner.Error(err)
			}
		})
	}
	// Registered before open registers the store's Close, so it runs
	// after it: cleanups run last-registered first.
	t.Cleanup(func() {
		s.mu.Lock()
		s.free = append(s.free, dsn)
		s.mu.Unlock()
	})
	if !fresh {
		emptyDatabase(t, dsn)
	}
	db := s.open(t, dsn)
	if fresh {
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	return db
}

// emptyDatabase deletes every row of a migrated database but goose's
// version table's, in one transaction. DELETE is several times faster than
// TRUNCATE on tables this small; it needs no order while every foreign key
// cascades, and should one not, TRUNCATE (indifferent to order) takes over.
func emptyDatabase(t *testing.T, dsn string) {
	t.Helper()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := t.Context()
	rows, err := raw.QueryContext(ctx, `SELECT quote_ident(tablename) FROM pg_tables
		WHERE schemaname = current_schema() AND tablename <> 'goose_db_version'`)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatalf("list tables: %v", err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	if len(tables) == 0 {
		t.Fatalf("no tables in the pooled database %s", dsn)
	}
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range tables {
		if _, err = tx.ExecContext(ctx, "DELETE FROM "+name); err != nil {
			break
		}
	}
	if err == nil {
		err = tx.Commit()
	} else {
		_ = tx.Rollback()
	}
	if err != nil {
		if _, err := raw.ExecContext(ctx, "TRUNCATE "+strings.Join(tables, ", ")); err != nil {
			t.Fatalf("empty the pooled database: %v", err)
		}
	}
}
