package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/storetest"
)

// ---- SQLite ----

// openSQLite opens and migrates a fresh SQLite database in t.TempDir.
func openSQLite(t *testing.T) (*sqlstore.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := sqlstore.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db, path
}

func TestSQLiteWAL(t *testing.T) {
	db, path := openSQLite(t)
	createUsers(t, db, "wal", 1)

	// journal_mode=WAL is persistent: a separate connection reports it.
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var mode string
	if err := raw.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatalf("PRAGMA journal_mode: %v", err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestSQLiteFileMode(t *testing.T) {
	db, path := openSQLite(t)
	// Write something so that the WAL and shared-memory files exist too:
	// they hold the same data (password hashes) as the database file.
	createUsers(t, db, "mode", 1)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", filepath.Base(p), got)
		}
	}
}

func TestSQLiteMigrateIdempotent(t *testing.T) {
	db, path := openSQLite(t) // migrated once
	createUsers(t, db, "before", 1)
	for i := range 2 {
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate again (%d): %v", i+1, err)
		}
	}
	db.Close()

	// And from a new handle, as on the next start of the server.
	db2, err := sqlstore.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db2.Close()
	if err := db2.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate after reopen: %v", err)
	}
	if _, err := db2.UserByID(t.Context(), "before-00"); err != nil {
		t.Errorf("data written before the repeated migrations: %v", err)
	}
}

// TestSQLiteConcurrentWriters: writes queue in the adapter (one writer
// connection) instead of failing with SQLITE_BUSY.
func TestSQLiteConcurrentWriters(t *testing.T) {
	t.Run("OneHandle", func(t *testing.T) {
		db, _ := openSQLite(t)
		concurrentCreate(t, []*sqlstore.DB{db}, 64)
	})
	// Two handles on one file, like the server and the CLI: the busy
	// timeout makes the second process wait instead of failing.
	t.Run("TwoHandles", func(t *testing.T) {
		db, path := openSQLite(t)
		db2, err := sqlstore.OpenSQLite(t.Context(), path)
		if err != nil {
			t.Fatalf("second OpenSQLite: %v", err)
		}
		t.Cleanup(func() { db2.Close() })
		concurrentCreate(t, []*sqlstore.DB{db, db2}, 64)
	})
}

// concurrentCreate creates n users at once, spread over dbs, while readers
// read, and checks that every write succeeded and is visible.
func concurrentCreate(t *testing.T, dbs []*sqlstore.DB, n int) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		db := dbs[i%len(dbs)]
		wg.Go(func() {
			<-start
			errs[i] = db.CreateUser(context.Background(), testUser(fmt.Sprintf("w-%02d", i)))
		})
		// Readers at the same time must not disturb the writers.
		wg.Go(func() {
			<-start
			if _, err := db.UserByEmail(context.Background(), "nobody@example.com"); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("concurrent read: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	for i := range n {
		if _, err := dbs[0].UserByID(t.Context(), fmt.Sprintf("w-%02d", i)); err != nil {
			t.Errorf("user of writer %d: %v", i, err)
		}
	}
}

func testUser(id string) *auth.User {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &auth.User{ID: id, Email: id + "@example.com", Roles: []string{"user"}, CreatedAt: now, UpdatedAt: now}
}

func createUsers(t *testing.T, db *sqlstore.DB, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := db.CreateUser(t.Context(), testUser(fmt.Sprintf("%s-%02d", prefix, i))); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
}

// ---- PostgreSQL ----

// pgServer is the test PostgreSQL server (see storetest.PostgresServer) and
// the pool of migrated databases its test's subtests share (see migrated).
type pgServer struct {
	*storetest.Postgres
	owner *testing.T // the test that called postgres: it drops the pool

	mu   sync.Mutex
	free []string // migrated databases not in use, by URL
}

// postgres connects to the test server, or skips (fails under
// GATEHOUSE_TEST_REQUIRE_ALL=1) when it is unreachable.
func postgres(t *testing.T) *pgServer {
	return &pgServer{Postgres: storetest.PostgresServer(t), owner: t}
}

// newDatabase creates an empty database, dropped when t ends, and returns
// its URL.
func (s *pgServer) newDatabase(t *testing.T) string { return s.NewDatabase(t, "gh_test_") }

// open opens a fresh database, unmigrated.
func (s *pgServer) open(t *testing.T, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { db.Close() }) // runs before the DROP registered earlier
	return db
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

// TestPostgresConcurrentMigrate: two servers starting at once on a fresh
// database both migrate successfully (the advisory lock serialises them).
func TestPostgresConcurrentMigrate(t *testing.T) {
	pg := postgres(t)
	dsn := pg.newDatabase(t)
	dbs := []*sqlstore.DB{pg.open(t, dsn), pg.open(t, dsn)}

	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, len(dbs))
	)
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			errs[i] = db.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	if t.Failed() {
		return
	}
	// Both see the schema; migrating again is a no-op.
	for i, db := range dbs {
		createUsers(t, db, fmt.Sprintf("db%d", i), 1)
		if err := db.Migrate(t.Context()); err != nil {
			t.Errorf("Migrate again: %v", err)
		}
	}
	if _, err := dbs[1].UserByID(t.Context(), "db0-00"); err != nil {
		t.Errorf("UserByID across handles: %v", err)
	}
}

// TestSQLitePathCharacters: characters that mean something in a file: URI
// ('?' starts the query, '#' the fragment, '%' an escape) are part of the
// path, not of the URI syntax; none may open another file.
func TestSQLitePathCharacters(t *testing.T) {
	for _, tc := range []struct{ name, dir string }{
		{"Hash", "a#b"},
		{"Question", "c?d"},
		{"Percent", "e%41f"},
		{"Space", "g h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, tc.dir, "gatehouse.db")
			db, err := sqlstore.OpenSQLite(t.Context(), path)
			if err != nil {
				t.Fatalf("OpenSQLite(%q): %v", path, err)
			}
			defer db.Close()
			if err := db.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			createUsers(t, db, "p", 1)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("the database is not at %q: %v", path, err)
			}
			if fi.Size() == 0 {
				t.Errorf("%q is empty", path)
			}
			if ents, _ := os.ReadDir(root); len(ents) != 1 {
				t.Errorf("files created next to %q: %d entries in %s, want 1", tc.dir, len(ents), root)
			}
		})
	}
}
