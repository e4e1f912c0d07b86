package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/internal/auth"
	"gatehouse/internal/redisstore"
	"gatehouse/internal/storetest"
)

const defaultRedisURL = "redis://127.0.0.1:6379/0"

func redisURL() string {
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return defaultRedisURL
}

// redacted names the test Redis without its password.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}

// openRedis opens a Store on the test Redis with a random key prefix and
// deletes every key under that prefix when t ends; it skips (fails under
// GATEHOUSE_TEST_REQUIRE_ALL=1) when Redis is unreachable.
func openRedis(t *testing.T) *redisstore.Store {
	t.Helper()
	s, _ := openRedisPrefix(t)
	return s
}

// openRedisPrefix is openRedis, also returning the key prefix.
func openRedisPrefix(t *testing.T) (*redisstore.Store, string) {
	t.Helper()
	raw := redisURL()
	what := fmt.Sprintf("Redis at %s (start one, e.g. `docker run -d -p 6379:6379 redis:7`, or set GATEHOUSE_TEST_REDIS_URL)", redacted(raw))
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	prefix := "gatehouse-test:" + hex.EncodeToString(b) + ":"

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, raw, redisstore.Options{Prefix: prefix})
	if err != nil {
		storetest.Unavailable(t, what, err)
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		s.Close()
		t.Fatalf("parse GATEHOUSE_TEST_REDIS_URL: %v", err)
	}
	admin := redis.NewClient(opt)
	t.Cleanup(func() {
		s.Close()
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// redis_rate puts its own "rate:" before the key it is given.
		for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
			if err := deleteMatching(ctx, admin, pattern); err != nil {
				t.Errorf("clean up %s: %v", pattern, err)
			}
		}
	})
	return s, prefix
}

func deleteMatching(ctx context.Context, rdb *redis.Client, pattern string) error {
	iter := rdb.Scan(ctx, 0, pattern, 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return rdb.Del(ctx, keys...).Err()
}

// sessionStore is a Store as a storetest.SessionBackend: Redis keeps no
// users, so there is nothing to create.
type sessionStore struct{ *redisstore.Store }

func (sessionStore) CreateUser(context.Context, *auth.User) error { return nil }

func TestRedisSessions(t *testing.T) {
	storetest.RunSessions(t, func(t *testing.T) storetest.SessionBackend {
		return sessionStore{openRedis(t)}
	})
}

func TestRedisLimits(t *testing.T) {
	storetest.RunLimits(t, func(t *testing.T) storetest.LimitBackend {
		return openRedis(t)
	})
}

// TestRedisCleanup checks the test harness itself: the keys a Store writes
// are all found by the cleanup's patterns, so no test leaves keys behind in
// a shared Redis.
func TestRedisCleanup(t *testing.T) {
	var prefix string
	t.Run("Write", func(t *testing.T) {
		var s *redisstore.Store
		s, prefix = openRedisPrefix(t)
		now := time.Now()
		x := &auth.Session{ID: "s-1", UserID: "u-1", Hash: "h-1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateSession(t.Context(), x); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := s.Allow(t.Context(), "k", 1, time.Hour, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.BeginAttempt(t.Context(), "k", 3, time.Minute, now); err != nil {
			t.Fatal(err)
		}
		keys, err := adminClient(t).Keys(t.Context(), "*"+prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		// s:, sid:, us:, rate:…rl:, rld:, lock:
		if len(keys) != 6 {
			t.Errorf("keys written: %q, want 6", keys)
		}
	})
	if prefix == "" {
		return
	}
	keys, err := adminClient(t).Keys(t.Context(), "*"+prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left behind: %q", keys)
	}
}

func adminClient(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisOpenUnreachable: Open fails fast when nothing listens, and its
// error does not repeat the password of the URL.
func TestRedisOpenUnreachable(t *testing.T) {
	for _, tc := range []struct{ name, url string }{
		{"Refused", "redis://:s3cret@127.0.0.1:1/0"},
		{"RefusedWithUser", "redis://gatehouse:s3cret@127.0.0.1:1/0"},
		{"InvalidURL", "redis://:s3cret@127.0.0.1:notaport/0"},
		{"InvalidDB", "redis://:s3cret@127.0.0.1:1/notadb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s, err := redisstore.Open(context.Background(), tc.url, redisstore.Options{})
			elapsed := time.Since(start)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", redacted(tc.url))
			}
			if elapsed >= 5*time.Second {
				t.Errorf("Open took %v, want < 5s", elapsed)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open error reveals the password: %v", err)
			}
		})
	}
}

// ---- outage ----

// privateRedis is a redis-server of the test's own on a free port, so that
// an outage can be staged without touching the shared one.
type privateRedis struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		storetest.Unavailable(t, "redis-server on PATH (install Redis or Valkey's redis-server)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &privateRedis{bin: bin, dir: t.TempDir(), port: port}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.stop()
			t.Fatalf("redis-server on %s did not start: %v", r.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server this test started (by its process, nothing else)
// and waits for it to exit.
func (r *privateRedis) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// TestRedisOutage: while Redis is down every call fails (an error, never
// ErrNotFound nor a session, so requests fail closed), and the same Store
// works again once Redis is back.
func TestRedisOutage(t *testing.T) {
	r := startPrivateRedis(t)
	ctx := t.Context()
	s, err := redisstore.Open(ctx, "redis://"+r.addr()+"/0", redisstore.Options{Prefix: "outage:"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	now := time.Now()
	x := &auth.Session{ID: "s-1", UserID: "u-1", Hash: "h-1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, x); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if _, err := s.SessionByHash(ctx, x.Hash); err != nil {
		t.Fatalf("SessionByHash before the outage: %v", err)
	}

	r.stop()

	start := time.Now()
	got, err := s.SessionByHash(ctx, x.Hash)
	if err == nil || errors.Is(err, auth.ErrNotFound) || got != nil {
		t.Errorf("SessionByHash during the outage = %+v, %v; want an error other than ErrNotFound", got, err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Errorf("Ping during the outage succeeded")
	}
	d, err := s.Allow(ctx, "k", 10, time.Minute, now)
	if err == nil || d.Allowed {
		t.Errorf("Allow during the outage = %+v, %v; want an error", d, err)
	}
	if locked, _, err := s.BeginAttempt(ctx, "k", 3, time.Minute, now); err == nil {
		t.Errorf("BeginAttempt during the outage = %v, nil; want an error", locked)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("calls during the outage took %v: they must fail fast", elapsed)
	}

	r.start(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping still failing 10s after Redis came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The restarted server has no data (no persistence): the session is
	// simply unknown now, and the Store works.
	if _, err := s.SessionByHash(ctx, x.Hash); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("SessionByHash after the restart: %v, want ErrNotFound", err)
	}
	if err := s.CreateSession(ctx, x); err != nil {
		t.Errorf("CreateSession after the restart: %v", err)
	}
}

// TestRedisElevateSession: a step-up rewrites the session's level in place,
// keeping its expiry (Redis drops the session at its absolute end, as
// before), and never writes a session revoked meanwhile back as a key
// without an expiry.
func TestRedisElevateSession(t *testing.T) {
	s, prefix := openRedisPrefix(t)
	admin := adminClient(t)
	now := time.Now()
	x := &auth.Session{ID: "s-1", UserID: "u-1", Hash: "h-1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour),
		ACR: auth.ACR1, AMR: []string{"pwd"}, AuthTime: now}
	if err := s.CreateSession(t.Context(), x); err != nil {
		t.Fatal(err)
	}
	if err := s.ElevateSession(t.Context(), x, auth.ACR2, []string{"pwd", "otp", "mfa"}, now.Add(time.Minute)); err != nil {
		t.Fatalf("ElevateSession: %v", err)
	}
	for _, key := range []string{prefix + "s:h-1", prefix + "sid:s-1"} {
		ttl, err := admin.PTTL(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < 59*time.Minute || ttl > time.Hour {
			t.Errorf("TTL of %s after ElevateSession = %v, want about an hour", key, ttl)
		}
	}
	got, err := s.SessionByHash(t.Context(), "h-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ACR != auth.ACR2 || auth.JoinAMR(got.AMR) != "pwd otp mfa" {
		t.Errorf("session after ElevateSession: ACR %q, AMR %q", got.ACR, got.AMR)
	}

	if err := s.DeleteSession(t.Context(), "u-1", "s-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.ElevateSession(t.Context(), x, auth.ACR2, nil, now); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ElevateSession of a deleted session: %v, want ErrNotFound", err)
	}
	if n, err := admin.Exists(t.Context(), prefix+"s:h-1").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS of the deleted session's key after ElevateSession = %d, %v; want 0", n, err)
	}
}
