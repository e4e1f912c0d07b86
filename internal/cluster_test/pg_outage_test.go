package clustertest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/internal/storetest"
	"gatehouse/internal/testserver"
)

// pgBinDir holds the PostgreSQL server binaries (Debian's layout).
const pgBinDir = "/usr/lib/postgresql/15/bin"

// TestPostgresOutage is the PostgreSQL counterpart of TestRedisOutage
// (SPEC §12): one node on a private PostgreSQL server, which the test
// crashes (pg_ctl stop -m immediate: no checkpoint, recovery from the WAL
// on the next start) and brings back on the same port and data directory.
// While it is down the node must report not ready, answer 503 with
// Retry-After (never 500, never a stack trace or the database URL) and stay
// up; when it is back the node must recover by itself, with the account
// registered before the crash intact.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	pg := startPrivatePostgres(t)
	dbURL := pg.createDatabase(t, "gatehouse")

	cfg := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte(fastArgon2), 0o600); err != nil {
		t.Fatal(err)
	}
	// No GATEHOUSE_REDIS_URL: sessions, rate limits and lockouts live in
	// the database too, so the database is the node's only dependency.
	cl := &cluster{env: []string{
		"GATEHOUSE_DATABASE_URL=" + dbURL,
		"GATEHOUSE_SECRET=" + randomHex(t, 32),
		"GATEHOUSE_PUBLIC_URL=" + publicURL,
		"GATEHOUSE_TRUSTED_PROXIES=127.0.0.1/32",
		"GATEHOUSE_LOG_FORMAT=json",
		"GATEHOUSE_CONFIG=" + cfg,
	}}
	n := cl.startNode(t, "A")
	ready := func() bool { return n.do(t, "GET", "/readyz", nil).Status == http.StatusOK }
	if !ready() {
		t.Fatal("baseline: /readyz is not 200")
	}

	u := newUser(t, n)
	access, _ := n.tokens(t, u)
	cookie, _ := n.login(t, u)
	if r := n.me(t, u, withBearer(access)); r.Status != http.StatusOK {
		t.Fatalf("baseline: GET /v1/me with the access token: %s", r)
	}
	if r := n.me(t, u, withCookie(cookie)); r.Status != http.StatusOK {
		t.Fatalf("baseline: GET /v1/me with the session cookie: %s", r)
	}

	downAt := time.Now()
	pg.crash(t)
	took := eventually(t, 10*time.Second, "with PostgreSQL down, /readyz non-200", func() bool { return !ready() })
	t.Logf("/readyz turned red %v after PostgreSQL went down", took.Round(100*time.Millisecond))

	// leaks reports what a body in the outage window must not show.
	leaks := func(body []byte) []string {
		var found []string
		for _, s := range []string{
			dbURL, pg.hostPort(), "postgres://", // the database URL, or its address
			"goroutine ", "panic", "runtime/debug", ".go:", // a stack trace
		} {
			if bytes.Contains(body, []byte(s)) {
				found = append(found, strconv.Quote(s))
			}
		}
		return found
	}
	check := func(name string, r *response, took time.Duration, allowed ...int) {
		t.Helper()
		t.Logf("PostgreSQL down, %s → %d in %v, Retry-After %q: %s", name, r.Status, took.Round(time.Millisecond), r.Header.Get("Retry-After"), strings.TrimSpace(string(r.Body)))
		if r.Status == http.StatusInternalServerError {
			t.Errorf("PostgreSQL down: %s answered 500 (want 503 with Retry-After, SPEC §12): %s", name, r)
		}
		ok := false
		for _, s := range allowed {
			ok = ok || r.Status == s
		}
		if !ok {
			t.Errorf("PostgreSQL down: %s: want one of %v, got %s", name, allowed, r)
		}
		if r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") == "" {
			t.Errorf("PostgreSQL down: %s: 503 without Retry-After", name)
		}
		if l := leaks(r.Body); len(l) > 0 {
			t.Errorf("PostgreSQL down: the body of %s shows %s: %s", name, strings.Join(l, ", "), r)
		}
		if took > 10*time.Second {
			t.Errorf("PostgreSQL down: %s took %v; want under 10 s", name, took.Round(100*time.Millisecond))
		}
	}
	timed := func(send func() *response) (*response, time.Duration) {
		start := time.Now()
		r := send()
		return r, time.Since(start)
	}

	// Twice: right after the crash, and once the outage has lasted past
	// the one-second account cache of access-token requests and the pool
	// holds no live connection.
	for _, phase := range []string{"at once", "after 2 s"} {
		if phase != "at once" {
			time.Sleep(2 * time.Second)
		}
		r, d := timed(func() *response { return n.do(t, "GET", "/readyz", nil) })
		t.Logf("PostgreSQL down (%s): GET /readyz → %d in %v: %s", phase, r.Status, d.Round(time.Millisecond), strings.TrimSpace(string(r.Body)))
		if r.Status == http.StatusOK {
			t.Errorf("PostgreSQL down (%s): /readyz answered 200", phase)
		}
		if l := leaks(r.Body); len(l) > 0 {
			t.Errorf("PostgreSQL down (%s): the body of /readyz shows %s: %s", phase, strings.Join(l, ", "), r)
		}

		r, d = timed(func() *response { return n.passwordGrant(t, u, u.Password, u.IP) })
		check(phase+": POST /oauth2/token (password grant)", r, d, http.StatusServiceUnavailable)
		if r.Status == http.StatusServiceUnavailable {
			if e := oauthError(t, r); e != "temporarily_unavailable" {
				t.Logf("note: the 503 of the token endpoint has the RFC 6749 error %q", e)
			}
		}

		// The JWT verifies without the database; loading its account
		// does not (except from the one-second cache).
		r, d = timed(func() *response { return n.me(t, u, withBearer(access)) })
		check(phase+": GET /v1/me with the access token", r, d, http.StatusOK, http.StatusServiceUnavailable)

		r, d = timed(func() *response { return n.me(t, u, withCookie(cookie)) })
		check(phase+": GET /v1/me with the session cookie", r, d, http.StatusServiceUnavailable)

		r, d = timed(func() *response { return n.sessionLogin(t, u, u.Password, u.IP) })
		check(phase+": POST /v1/sessions", r, d, http.StatusServiceUnavailable)

		other := &user{Email: "u-" + randomHex(t, 6) + "@example.com", Password: "cluster pass phrase " + randomHex(t, 4), IP: randomIP()}
		r, d = timed(func() *response {
			return n.do(t, "POST", "/v1/register", map[string]string{"email": other.Email, "password": other.Password}, fromIP(other.IP))
		})
		check(phase+": POST /v1/register", r, d, http.StatusServiceUnavailable, http.StatusBadRequest, http.StatusUnprocessableEntity)

		r, d = timed(func() *response {
			return n.do(t, "POST", "/v1/register", map[string]string{"email": "not an address", "password": "x"}, fromIP(randomIP()))
		})
		check(phase+": POST /v1/register (invalid body)", r, d, http.StatusServiceUnavailable, http.StatusBadRequest, http.StatusUnprocessableEntity)
	}

	select {
	case <-n.exited:
		t.Fatalf("the node exited while PostgreSQL was down: %v", n.waitErr)
	default:
	}
	if r := n.do(t, "GET", "/healthz", nil); r.Status != http.StatusOK {
		t.Errorf("PostgreSQL down: /healthz (liveness) answered %s; want 200", r)
	}
	t.Logf("PostgreSQL was down for %v", time.Since(downAt).Round(100*time.Millisecond))

	pg.start(t)
	took = eventually(t, 20*time.Second, "with PostgreSQL back, /readyz 200", ready)
	t.Logf("/readyz turned green %v after PostgreSQL came back", took.Round(100*time.Millisecond))

	// The account committed before the crash survived it.
	access2, _ := n.tokens(t, u)
	if r := n.me(t, u, withBearer(access2)); r.Status != http.StatusOK {
		t.Errorf("after the outage, GET /v1/me with a new access token: %s", r)
	}
	if r := n.me(t, u, withBearer(access)); r.Status != http.StatusOK {
		t.Errorf("after the outage, GET /v1/me with the access token from before it: %s", r)
	}
	// Sessions live in the database here (no Redis): the one from before
	// the crash is committed, so it must have survived too.
	if r := n.me(t, u, withCookie(cookie)); r.Status != http.StatusOK {
		t.Errorf("after the outage, GET /v1/me with the session from before it: %s", r)
	}
	fresh := newUser(t, n)
	if c, _ := n.login(t, fresh); n.me(t, fresh, withCookie(c)).Status != http.StatusOK {
		t.Errorf("after the outage, a new account's session does not work")
	}
}

// privatePostgres is a PostgreSQL server of the test's own: its data
// directory in t.TempDir(), listening on 127.0.0.1 only (no Unix socket),
// trust authentication, superuser "postgres".
type privatePostgres struct {
	Port int

	dataDir string
	log     string
	cred    *syscall.Credential // run the server binaries as this user; nil: as ourselves
}

// startPrivatePostgres runs initdb and starts the server on a free port;
// the server is stopped when t ends.
//
// PostgreSQL refuses to run as root. When the test runs as root, the
// binaries run as the "postgres" OS user (exec with a uid/gid Credential,
// which needs neither runuser nor su), the data directory is chowned to it
// and the directory above it made traversable.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(pgBinDir, b)); err != nil {
			storetest.Unavailable(t, "the PostgreSQL 15 server binaries in "+pgBinDir, err)
		}
	}
	dir := t.TempDir()
	pg := &privatePostgres{Port: testserver.FreePort(t), dataDir: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		pu, err := osuser.Lookup("postgres")
		if err != nil {
			storetest.Unavailable(t, `the "postgres" OS user (PostgreSQL does not run as root)`, err)
		}
		uid, err1 := strconv.Atoi(pu.Uid)
		gid, err2 := strconv.Atoi(pu.Gid)
		if err1 != nil || err2 != nil {
			t.Fatalf("postgres user: uid %q gid %q", pu.Uid, pu.Gid)
		}
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// t.TempDir() makes 0700 directories: the postgres user must be
		// able to reach dir and own it (initdb creates data in it, the
		// server writes the log there).
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	out, err := pg.command(t.Context(), "initdb", "-D", pg.dataDir, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		pg.crash(t)
		if t.Failed() {
			t.Logf("private PostgreSQL on port %d, last lines of its log:\n%s", pg.Port, tail(pg.log, 30))
		}
	})
	pg.start(t)
	return pg
}

// command prepares one of the server binaries, run as the server's user.
func (pg *privatePostgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(pgBinDir, name), args...)
	cmd.Dir = filepath.Dir(pg.dataDir)
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	// PG* variables of this process must not redirect the tools.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

func (pg *privatePostgres) hostPort() string { return "127.0.0.1:" + strconv.Itoa(pg.Port) }

// url is the URL of database name on the server.
func (pg *privatePostgres) url(name string) string {
	return "postgres://postgres@" + pg.hostPort() + "/" + name + "?sslmode=disable"
}

// start (re)starts the server on its port and data directory and waits
// until it accepts a query. fsync stays on: the crash test needs it.
func (pg *privatePostgres) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories='' -c max_connections=50 -c shared_buffers=16MB", pg.Port)
	out, err := pg.command(ctx, "pg_ctl", "start", "-D", pg.dataDir, "-l", pg.log, "-w", "-t", "30", "-o", opts).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_ctl start on port %d: %v\n%s\n%s", pg.Port, err, out, tail(pg.log, 30))
	}
	db, err := sql.Open("pgx", pg.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually(t, 20*time.Second, "the private PostgreSQL answers SELECT 1", func() bool {
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		defer qcancel()
		return db.QueryRowContext(qctx, "SELECT 1").Scan(new(int)) == nil
	})
}

// crash stops the server at once, as a crash would: immediate mode quits
// without a checkpoint, so the next start replays the WAL. A server that
// is not running is left alone.
func (pg *privatePostgres) crash(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pg.dataDir, "postmaster.pid")); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := pg.command(ctx, "pg_ctl", "stop", "-D", pg.dataDir, "-m", "immediate", "-w", "-t", "30").CombinedOutput()
	if err != nil {
		t.Errorf("pg_ctl stop -m immediate: %v\n%s", err, out)
	}
}

// createDatabase creates database name and returns its URL.
func (pg *privatePostgres) createDatabase(t *testing.T, name string) string {
	t.Helper()
	db, err := sql.Open("pgx", pg.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	return pg.url(name)
}
