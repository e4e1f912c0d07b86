package token

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/internal/auth"
	"gatehouse/internal/sqlstore"
)

const (
	testIssuer   = "https://auth.example.test"
	testAudience = "https://api.example.test"
	testTTL      = 15 * time.Minute
)

// t0 is the start of every injected clock: a whole second, so that the
// second-precision NumericDates in tokens compare exactly with it.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// testSecret is a root secret of the required 32 bytes.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test-root-secret")

// clock is an injectable clock that only moves when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

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

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// env is one real SQLite store with a clock, from which keyrings (several
// "nodes" sharing the database) are built.
type env struct {
	path  string
	store *sqlstore.DB
	clock *clock
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "gatehouse.db")
	db, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		tb.Fatalf("OpenSQLite: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return &env{path: path, store: db, clock: newClock()}
}

func (e *env) options(alg string) Options {
	return Options{
		Issuer: testIssuer, Audience: testAudience, Alg: alg, Secret: testSecret,
		Store: e.store, AccessTTL: testTTL, Now: e.clock.Now,
	}
}

// keyring builds a Keyring of alg on e's store.
func (e *env) keyring(tb testing.TB, alg string) *Keyring {
	tb.Helper()
	k, err := New(context.Background(), e.options(alg))
	if err != nil {
		tb.Fatalf("New(%s): %v", alg, err)
	}
	return k
}

// rawDB opens a second, plain connection to e's database file, to play an
// attacker (or an operator) with write access to the database.
func (e *env) rawDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatalf("open raw db: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// newKeyring is newEnv plus one keyring of alg.
func newKeyring(tb testing.TB, alg string) (*Keyring, *env) {
	tb.Helper()
	e := newEnv(tb)
	return e.keyring(tb, alg), e
}

// accessClaims are claims with every field set, issued at now.
func accessClaims(now time.Time) *auth.AccessClaims {
	return &auth.AccessClaims{
		ID:        "jti-" + auth.NewID(),
		Subject:   "user-123",
		Email:     "alice@example.test",
		ClientID:  "client-web",
		Scopes:    []string{"read", "write"},
		Roles:     []string{"user", "editor"},
		IssuedAt:  now,
		ExpiresAt: now.Add(testTTL),
	}
}

// issue signs a genuine token for the current time of k's clock.
func issue(tb testing.TB, k *Keyring) string {
	tb.Helper()
	tok, err := k.Issue(context.Background(), accessClaims(k.opts.Now()))
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return tok
}

func currentKey(tb testing.TB, k *Keyring) *key {
	tb.Helper()
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.current == nil {
		tb.Fatal("keyring has no current key")
	}
	return k.current
}

// validClaims are the claims of a genuine token at now, as a JSON object,
// for tests that sign variations of them with the real key.
func validClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":       testIssuer,
		"sub":       "user-123",
		"aud":       []string{testAudience},
		"exp":       now.Add(testTTL).Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       "jti-1",
		"client_id": "client-web",
		"scope":     "read write",
		"roles":     []string{"user"},
		"email":     "alice@example.test",
	}
}

func validHeader(kid string) map[string]any {
	return map[string]any{"typ": "at+jwt", "kid": kid}
}

// sign makes a token whose header is exactly header plus "alg", signed by
// key with the signing method named alg.
func sign(tb testing.TB, alg string, key any, header, claims map[string]any) string {
	tb.Helper()
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		tb.Fatalf("no signing method %q", alg)
	}
	t := jwt.NewWithClaims(m, jwt.MapClaims(claims))
	t.Header = map[string]any{"alg": alg}
	maps.Copy(t.Header, header)
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", alg, err)
	}
	return s
}

// signWithCurrent signs header and claims with k's real current key.
func signWithCurrent(tb testing.TB, k *Keyring, header, claims map[string]any) string {
	tb.Helper()
	cur := currentKey(tb, k)
	return sign(tb, cur.alg, cur.priv, header, claims)
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// segment encodes v as a JWS segment (base64url of its JSON).
func segment(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal segment: %v", err)
	}
	return b64url(b)
}

// parts splits a compact JWS into its three segments.
func parts(tb testing.TB, tok string) (header, payload, sig string) {
	tb.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		tb.Fatalf("token %q has %d segments, want 3", tok, len(p))
	}
	return p[0], p[1], p[2]
}

// decode decodes a JSON segment into a map.
func decode(tb testing.TB, seg string) map[string]any {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatalf("segment %q is not base64url: %v", seg, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("segment %s is not a JSON object: %v", b, err)
	}
	return m
}

// hs256 signs signingInput with HMAC-SHA256 under key, as an attacker who
// believes the verifier will use key as the HMAC secret.
func hs256(tb testing.TB, signingInput string, key []byte) string {
	tb.Helper()
	sig, err := jwt.SigningMethodHS256.Sign(signingInput, key)
	if err != nil {
		tb.Fatalf("HS256 sign: %v", err)
	}
	return b64url(sig)
}

// mustVerify verifies tok and fails the test if it does not.
func mustVerify(tb testing.TB, k *Keyring, tok string) *auth.AccessClaims {
	tb.Helper()
	c, err := k.Verify(tok)
	if err != nil {
		tb.Fatalf("Verify of a genuine token: %v", err)
	}
	if c == nil {
		tb.Fatal("Verify returned nil claims and nil error")
	}
	return c
}

// mustRefuse verifies tok and fails the test unless it is refused with
// ErrInvalid and no claims.
func mustRefuse(tb testing.TB, k *Keyring, tok string) {
	tb.Helper()
	c, err := k.Verify(tok)
	if err == nil {
		tb.Fatalf("Verify accepted a token it must refuse: claims %+v\ntoken: %.300s", c, tok)
	}
	if !errors.Is(err, ErrInvalid) {
		tb.Fatalf("Verify error = %v, want one wrapping ErrInvalid", err)
	}
	if c != nil {
		tb.Fatalf("Verify returned claims %+v together with error %v", c, err)
	}
}

// isCached reports whether tok sits in k's verify cache.
func isCached(k *Keyring, tok string) bool {
	k.cache.mu.RLock()
	defer k.cache.mu.RUnlock()
	_, ok := k.cache.m[tok]
	return ok
}

// forget removes tok from k's verify cache.
func forget(k *Keyring, tok string) {
	k.cache.mu.Lock()
	delete(k.cache.m, tok)
	k.cache.mu.Unlock()
}
