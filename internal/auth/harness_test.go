package auth_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/password"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/token"
)

const (
	accessTTL  = 15 * time.Minute
	refreshTTL = 30 * 24 * time.Hour
	grace      = 10 * time.Second
	goodPass   = "correct horse battery staple"
)

// t0 is where every injected clock starts; a whole second.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// testParams are small argon2id params that keep the tests fast.
func testParams() password.Params {
	return password.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// harness is a Service on a real SQLite store in a temporary directory,
// with an injected clock, a real password hasher (small params) and a real
// token keyring.
type harness struct {
	svc    *auth.Service
	db     *sqlstore.DB
	path   string
	clock  *clock
	keys   *token.Keyring
	hasher *password.Hasher
	// hashes counts every argon2id/bcrypt computation (each one goes
	// through the limiter), so a test can prove an input was refused
	// before any hashing work.
	hashes *atomic.Int64
	logins sync.Map // login metric result → *atomic.Int64
}

// testRootSecret is the harness's root secret.
const testRootSecret = "root-secret-for-tests-0123456789abcdef"

func newHarness(t *testing.T, configure ...func(*auth.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, nil, configure...)
}

// newHarnessWith is newHarness with a last say over the service's options
// (another store in front of the database, another root secret).
func newHarnessWith(t *testing.T, options func(h *harness, o *auth.Options), configure ...func(*auth.Config)) *harness {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	h := &harness{db: db, path: path, clock: &clock{now: t0}, hashes: new(atomic.Int64)}
	h.keys, err = token.New(ctx, token.Options{
		Issuer: "https://auth.example.test", Audience: "https://api.example.test", Alg: "EdDSA",
		Secret: []byte("0123456789abcdef0123456789abcdef"), Store: db, AccessTTL: accessTTL, Now: h.clock.Now,
	})
	if err != nil {
		t.Fatalf("token.New: %v", err)
	}
	limiter := password.NewLimiter(password.LimiterOptions{
		Concurrency: 4, MaxWait: 30 * time.Second, MaxQueue: 1000,
		Observe: func(time.Duration) { h.hashes.Add(1) },
	})
	h.hasher = password.NewHasher(testParams(), limiter)
	cfg := auth.Config{
		SessionTTL: 24 * time.Hour, SessionIdleTTL: time.Hour,
		AccessTokenTTL: accessTTL, RefreshTokenTTL: refreshTTL, RefreshReuseGrace: grace,
		DefaultRoles: []string{"user"},
	}
	for _, f := range configure {
		f(&cfg)
	}
	o := auth.Options{
		Stores: auth.Stores{Users: db, Refresh: db, Audit: db, Sessions: db, Tokens: db, APIKeys: db, MFA: db,
			Identities: db, Passkeys: db, Challenges: db, Mail: db,
			Clients: db, Consents: db, AuthCodes: db, Webhooks: db, Stats: db},
		Limits: auth.Limits{Off: true},
		Hasher: h.hasher,
		Policy: password.Policy{MinLength: 8, MaxLength: 256},
		Issuer: h.keys,
		Roles: auth.NewRoleModel(map[string][]string{
			"user":   {"read", "write"},
			"editor": {"read", "write"},
			"admin":  {"read", "write", "admin"},
		}, []string{"read", "write", "admin", "introspect"}),
		RootSecret: []byte(testRootSecret),
		Config:     cfg,
		Metrics: auth.Metrics{Login: func(result string) {
			c, _ := h.logins.LoadOrStore(result, new(atomic.Int64))
			c.(*atomic.Int64).Add(1)
		}},
		Now: h.clock.Now,
	}
	if options != nil {
		options(h, &o)
	}
	h.svc, err = auth.New(o)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	return h
}

func (h *harness) loginMetric(result string) int64 {
	c, ok := h.logins.Load(result)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

var meta = auth.Meta{IP: "203.0.113.7", UserAgent: "test"}

// register creates an account through the Service.
func (h *harness) register(t *testing.T, email, plain string) *auth.User {
	t.Helper()
	u, err := h.svc.Register(context.Background(), auth.RegisterInput{Email: email, Password: plain, Name: "Test User"}, meta)
	if err != nil {
		t.Fatalf("Register(%q): %v", email, err)
	}
	return u
}

// insertUser stores a user directly, e.g. with a legacy hash or disabled.
func (h *harness) insertUser(t *testing.T, email, hash string, disabled bool, roles ...string) *auth.User {
	t.Helper()
	if roles == nil {
		roles = []string{"user"}
	}
	now := h.clock.Now()
	u := &auth.User{ID: auth.NewID(), Email: email, PasswordHash: hash, Roles: roles, Disabled: disabled, CreatedAt: now, UpdatedAt: now}
	if err := h.db.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func (h *harness) hash(t *testing.T, plain string) string {
	t.Helper()
	s, err := h.hasher.Hash(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (h *harness) user(t *testing.T, id string) *auth.User {
	t.Helper()
	u, err := h.db.UserByID(context.Background(), id)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}

// grant runs the password grant and fails the test on error.
func (h *harness) grant(t *testing.T, email, plain, scope string) *auth.TokenResponse {
	t.Helper()
	r, err := h.svc.PasswordGrant(context.Background(), email, plain, scope, "client-web", meta)
	if err != nil {
		t.Fatalf("PasswordGrant(%q, scope %q): %v", email, scope, err)
	}
	return r
}

// refresh runs the refresh grant and fails the test on error.
func (h *harness) refresh(t *testing.T, rt, scope string) *auth.TokenResponse {
	t.Helper()
	r, err := h.svc.RefreshGrant(context.Background(), rt, scope, meta)
	if err != nil {
		t.Fatalf("RefreshGrant(scope %q): %v", scope, err)
	}
	return r
}

// refuseRefresh expects RefreshGrant to answer exactly ErrInvalidRefreshToken.
func (h *harness) refuseRefresh(t *testing.T, rt string) {
	t.Helper()
	r, err := h.svc.RefreshGrant(context.Background(), rt, "", meta)
	if err != auth.ErrInvalidRefreshToken {
		t.Fatalf("RefreshGrant = %+v, %v; want exactly ErrInvalidRefreshToken", r, err)
	}
}

// audit returns the audit events matching f, newest first.
func (h *harness) audit(t *testing.T, f auth.AuditFilter) []*auth.AuditEvent {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = 1000
	}
	evs, err := h.db.ListAudit(context.Background(), f)
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	return evs
}

// assertAuditClean fails if any audit event, serialised, contains one of
// the secrets.
func (h *harness) assertAuditClean(t *testing.T, secrets ...string) {
	t.Helper()
	for _, e := range h.audit(t, auth.AuditFilter{}) {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(string(b), s) {
				t.Errorf("audit event %s contains a secret (%.12s…): %s", e.Type, s, b)
			}
		}
	}
}

// rawDB opens a plain connection to the test database for assertions the
// store API does not offer (counting rows).
func (h *harness) rawDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+h.path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (h *harness) countUsers(t *testing.T, email string) int {
	t.Helper()
	var n int
	if err := h.rawDB(t).QueryRow(`SELECT COUNT(*) FROM users WHERE email = ?`, email).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantCode checks that err is an *auth.Error with the code (and field, if
// not empty).
func wantCode(t *testing.T, err error, code, field string) {
	t.Helper()
	var e *auth.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *auth.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("error code = %q (%v), want %q", e.Code, err, code)
	}
	if field != "" && e.Field != field {
		t.Fatalf("error field = %q (%v), want %q", e.Field, err, field)
	}
}

// fresh is the principal of a cookie session of id signed in just now (by
// the harness clock): it passes the step-up of sensitive actions.
func (h *harness) fresh(id string) *auth.Principal {
	return &auth.Principal{UserID: id, Kind: auth.KindSession, SessionID: "sess-fresh", ACR: auth.ACR1, AuthTime: h.clock.Now()}
}
