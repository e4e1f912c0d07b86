// Package sqlstore stores Gatehouse's durable state in SQL: SQLite (the
// zero-configuration default, through the pure-Go modernc.org/sqlite) and
// PostgreSQL (through pgx v5). The two dialects share one adapter because
// their SQL differs only in placeholders, column types and error codes; each
// has its own embedded migrations folder, applied by goose, each migration
// in a transaction.
//
// SQLite runs in WAL mode with one writer connection (SQLite admits one
// writer at a time; serialising writes in the pool instead of in SQLite
// means concurrent requests queue in Go rather than fail with SQLITE_BUSY)
// and a pool of read connections. A busy timeout covers other processes
// (the CLI) writing to the same file.
//
// A DB is safe for concurrent use.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrations embed.FS

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// DB is a SQL store.
type DB struct {
	dialect dialect
	w       *sql.DB // writes (SQLite: exactly one connection)
	r       *sql.DB // reads (PostgreSQL: the same pool as w)

	// stmts caches prepared read statements: parsing SQL is most of the
	// cost of a primary-key lookup in SQLite.
	stmts sync.Map // query → *sql.Stmt

	feed revocationFeed // SPEC §15 (revocations.go)
}

// Open opens the database named by a GATEHOUSE_DATABASE_URL value:
// "sqlite:PATH" or "postgres://…".
func Open(ctx context.Context, databaseURL string) (*DB, error) {
	switch {
	case strings.HasPrefix(databaseURL, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//"))
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return OpenPostgres(ctx, databaseURL)
	}
	return nil, errors.New("sqlstore: database URL must start with sqlite: or postgres://")
}

// OpenSQLite opens (creating if needed) the SQLite database at path.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlstore: %w", err)
		}
	}
	// synchronous(FULL): a commit is on disk before it is acknowledged, so a
	// crash (even of the machine) loses no committed account, key or
	// revocation. _txlock=immediate takes the write lock at BEGIN, so a
	// transaction never fails half-way on a lock upgrade.
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	// In a file: URI '?' and '#' end the path and '%' escapes: a path
	// holding one would silently open another file (or none).
	dsn := "file:" + strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path) + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)
	db := &DB{dialect: dialectSQLite, w: w, r: r}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// Restrict the database file to the owner: it holds password hashes.
	_ = os.Chmod(path, 0o600)
	return db, nil
}

// OpenPostgres connects to PostgreSQL.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	p, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	p.SetMaxOpenConns(32)
	p.SetMaxIdleConns(32)
	p.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{dialect: dialectPostgres, w: p, r: p}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Dialect names the backend: "sqlite" or "postgres".
func (db *DB) Dialect() string {
	if db.dialect == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	return nil
}

// Close closes the connection pools.
func (db *DB) Close() error {
	db.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Migrate applies every pending migration; safe to run from several
// processes at once (PostgreSQL takes an advisory lock).
func (db *DB) Migrate(ctx context.Context) error {
	p, err := db.migrator()
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return nil
}

// migrator is goose on the dialect's migrations folder.
func (db *DB) migrator() (*goose.Provider, error) {
	var (
		d    goose.Dialect
		dir  = "migrations/sqlite"
		opts []goose.ProviderOption
	)
	if db.dialect == dialectPostgres {
		d, dir = goose.DialectPostgres, "migrations/postgres"
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	} else {
		d = goose.DialectSQLite3
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(d, db.w, sub, opts...)
}

// rebind turns ? placeholders into $n for PostgreSQL. Queries in this
// package never contain a literal '?'.
func (db *DB) rebind(q string) string {
	if db.dialect != dialectPostgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (db *DB) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.w.ExecContext(ctx, db.rebind(q), args...)
}

// queryRow runs a read through a cached prepared statement.
func (db *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st, ok := db.stmts.Load(q); ok {
		return st.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := db.r.PrepareContext(ctx, db.rebind(q))
	if err != nil {
		return db.r.QueryRowContext(ctx, db.rebind(q), args...)
	}
	if prev, loaded := db.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}

// tx runs fn in a write transaction, committing when it returns nil.
func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// txNoSync is tx for bookkeeping whose loss in a power failure is harmless
// — rate-limit and lockout counters, a login's audit event and refresh
// family: its commit does not wait for the disk. A crash of the process
// loses nothing (the commit is in the operating system's cache); a power
// failure may roll back the last such commits, never half of one, and the
// next ordinary commit or checkpoint makes them durable too. SQLite runs it
// with synchronous=NORMAL on the writer connection (the pragma cannot
// change inside a transaction, so it brackets it), PostgreSQL with
// synchronous_commit off. Everything else — accounts, passwords, keys,
// revocations, sessions — commits with fsync.
func (db *DB) txNoSync(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.dialect == dialectPostgres {
		return db.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return err
			}
			return fn(tx)
		})
	}
	c, err := db.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return err
	}
	err = func() error {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}()
	// Back to FULL whatever happened (even if ctx ended): every other write
	// shares this connection. If that fails, the connection is dropped
	// rather than left relaxed.
	if _, rerr := c.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); rerr != nil {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(err, rerr)
	}
	return err
}

// isUnique reports a unique-constraint violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return false
}

// Time is stored as Unix microseconds in both dialects.
func ts(t time.Time) int64 { return t.UnixMicro() }

func fromTS(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullTS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromTS(v.Int64)
	return &t
}

// scanner is a row being read (*sql.Row or *sql.Rows).
type scanner interface{ Scan(...any) error }

// queryAll runs a read and scans every row with scan.
func queryAll[T any](ctx context.Context, db *DB, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.r.QueryContext(ctx, db.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Name says what the database is, for the admin console's health panel.
func (db *DB) Name() string {
	if db.dialect == dialectPostgres {
		return "PostgreSQL"
	}
	return "SQLite"
}
