package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"gatehouse/internal/config"
	"gatehouse/internal/password"
	"gatehouse/internal/revfeed"
	"gatehouse/internal/server"
)

// benchServer wires a full server (SQLite in a temp dir) without a socket.
func benchServer(b *testing.B) (*server.Server, string) {
	b.Helper()
	srv, _, tok := benchSetup(b)
	return srv, tok
}

// benchApp is benchServer with the app behind it.
func benchApp(b *testing.B) (*server.Server, *app) {
	b.Helper()
	srv, a, _ := benchSetup(b)
	return srv, a
}

func benchSetup(b *testing.B) (*server.Server, *app, string) {
	b.Helper()
	dir := b.TempDir()
	// Default settings, except rate limits: the benchmarks log in from one
	// address far more often than the limits allow.
	yaml := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(yaml, []byte("rate_limits: {login_per_account_ip: 100000000, login_per_ip: 100000000, window: 1m}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	env := map[string]string{"GATEHOUSE_DATA_DIR": filepath.Join(dir, "data"), "GATEHOUSE_CONFIG": yaml}
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a, err := openApp(context.Background(), cfg, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	srv := server.New(server.Deps{Config: cfg, Auth: a.auth, Keys: a.keys, Ready: []server.Pinger{a.db}, Metrics: a.metrics, Log: log,
		Feed: a.hub, Revoked: a.revoked})
	body := `{"email":"bench@example.com","password":"correct horse battery staple"}`
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	srv.ServeHTTP(rec, req)
	form := url.Values{"grant_type": {"password"}, "username": {"bench@example.com"}, "password": {"correct horse battery staple"}}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	srv.ServeHTTP(rec, req)
	tok := between(rec.Body.String(), `"access_token":"`, `"`)
	if tok == "" {
		b.Fatalf("login: %s", rec.Body.String())
	}
	return srv, a, tok
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// BenchmarkMeBearer is GET /v1/me with a bearer token through the whole
// handler chain (no network): the per-request cost of the server itself.
func BenchmarkMeBearer(b *testing.B) {
	srv, tok := benchServer(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// BenchmarkMeBearerRevocations is BenchmarkMeBearer with 10,000 live
// revocations in the feed's set (sessions, subjects and clients of others):
// the revocation check every bearer request makes (SPEC §15) stays an
// in-memory lookup whatever the set holds.
func BenchmarkMeBearerRevocations(b *testing.B) {
	srv, a, tok := benchSetup(b)
	if a.revoked == nil {
		b.Fatal("the revocation feed is off")
	}
	now := time.Now()
	for i := range 10_000 {
		id := strconv.Itoa(i)
		switch i % 3 {
		case 0:
			a.revoked.Apply(revfeed.Event{Type: revfeed.TypeSessionRevoked, At: now, SID: "sid-" + id})
		case 1:
			a.revoked.Apply(revfeed.Event{Type: revfeed.TypeSubjectRevoked, At: now, Sub: "sub-" + id, NotBefore: now.Unix()})
		default:
			a.revoked.Apply(revfeed.Event{Type: revfeed.TypeClientRevoked, At: now, ClientID: "client-" + id, NotBefore: now.Unix()})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// BenchmarkPasswordGrant is the password grant through the whole handler
// chain, 8 at a time (hashing admission lets CPU-count of them hash).
func BenchmarkPasswordGrant(b *testing.B) {
	srv, _ := benchServer(b)
	form := url.Values{"grant_type": {"password"}, "username": {"bench@example.com"}, "password": {"correct horse battery staple"}}.Encode()
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkMeCookie is GET /v1/me with a session cookie through the whole
// handler chain: the session and the account are read on every request.
func BenchmarkMeCookie(b *testing.B) {
	srv, _ := benchServer(b)
	body := `{"email":"bench@example.com","password":"correct horse battery staple"}`
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/sessions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	srv.ServeHTTP(rec, req)
	cookie := rec.Result().Cookies()
	if rec.Code != http.StatusCreated || len(cookie) == 0 {
		b.Fatalf("session login: %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/v1/me", nil)
			req.AddCookie(cookie[0])
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// BenchmarkArgon2idParallel is the raw baseline of BenchmarkPasswordGrant:
// argon2id at the default parameters on as many goroutines as the hash
// admission allows (GOMAXPROCS), in the same process.
func BenchmarkArgon2idParallel(b *testing.B) {
	p := password.DefaultParams()
	b.SetParallelism(1)
	b.RunParallel(func(pb *testing.PB) {
		salt := make([]byte, 16)
		for pb.Next() {
			argon2.IDKey([]byte("correct horse battery staple"), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
		}
	})
}
