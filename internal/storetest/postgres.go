package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// PostgresEnv names the PostgreSQL server tests use; its user needs the
// CREATEDB privilege.
const PostgresEnv = "GATEHOUSE_TEST_POSTGRES_URL"

// DefaultPostgresURL is used when PostgresEnv is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Postgres makes throw-away databases on the test PostgreSQL server.
type Postgres struct {
	admin *sql.DB
	base  *url.URL
}

// PostgresServer connects to the test server, or skips the test (fails it
// under GATEHOUSE_TEST_REQUIRE_ALL=1) when the server is unreachable.
func PostgresServer(t testing.TB) *Postgres {
	t.Helper()
	raw := os.Getenv(PostgresEnv)
	if raw == "" {
		raw = DefaultPostgresURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, got %q", PostgresEnv, raw)
	}
	what := fmt.Sprintf("PostgreSQL at %s (set %s to a server whose user may CREATE DATABASE)", u.Redacted(), PostgresEnv)
	admin, err := sql.Open("pgx", raw)
	if err != nil {
		Unavailable(t, what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		Unavailable(t, what, err)
	}
	t.Cleanup(func() { admin.Close() })
	return &Postgres{admin: admin, base: u}
}

// NewDatabase creates an empty database named prefix + random hex, dropped
// (WITH FORCE) when the test ends, and returns its URL.
func (p *Postgres) NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, drop, err := p.CreateDatabase(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// CreateDatabase creates an empty database named prefix + random hex and
// returns its URL and a function that drops it (WITH FORCE). It is
// NewDatabase for a caller that owns the database longer than one test,
// such as a pool of databases reused by the subtests of a suite.
func (p *Postgres) CreateDatabase(ctx context.Context, prefix string) (dsn string, drop func() error, err error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	name := prefix + hex.EncodeToString(b)
	if _, err := p.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("CREATE DATABASE %s: %w", name, err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := p.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("DROP DATABASE %s: %w", name, err)
		}
		return nil
	}
	u := *p.base
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), drop, nil
}
