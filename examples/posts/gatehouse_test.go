package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/cli" // tests only: the service itself imports nothing of Gatehouse but guard
)

// liveGatehouse is a real `gatehouse serve` running in this process, on a
// loopback port whose URL is also its public URL (the token issuer).
type liveGatehouse struct {
	URL    string
	env    map[string]string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gatehouseYAML keeps hashing fast and lifts the login rate limits, which
// a test that logs in a dozen times from one IP would otherwise hit.
const gatehouseYAML = `argon2: {memory: 1024, iterations: 1, parallelism: 1}
rate_limits: {login_per_account_ip: 1000, login_per_ip: 1000}
`

// freePort finds a loopback port: the public URL must name the port before
// the server listens on it.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startGatehouse configures a fresh Gatehouse, lets setup run commands
// (user create …) before it serves, and starts it.
func startGatehouse(t *testing.T, yaml string, setup func(g *liveGatehouse)) *liveGatehouse {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	g := &liveGatehouse{
		URL: fmt.Sprintf("http://127.0.0.1:%d", port),
		env: map[string]string{
			"GATEHOUSE_CONFIG":     cfg,
			"GATEHOUSE_DATA_DIR":   filepath.Join(dir, "data"),
			"GATEHOUSE_ADDR":       fmt.Sprintf("127.0.0.1:%d", port),
			"GATEHOUSE_PUBLIC_URL": fmt.Sprintf("http://127.0.0.1:%d", port),
			"GATEHOUSE_LOG_FORMAT": "json",
		},
		stderr: &syncBuffer{},
		done:   make(chan error, 1),
	}
	if setup != nil {
		setup(g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	addr := make(chan string, 1)
	go func() {
		g.done <- cli.Run(ctx, cli.Env{Args: []string{"serve"}, Getenv: g.getenv, Stdin: strings.NewReader(""),
			Stdout: io.Discard, Stderr: g.stderr, Listening: func(a string) { addr <- a }})
	}()
	select {
	case <-addr:
	case err := <-g.done:
		cancel()
		t.Fatalf("gatehouse serve exited: %v\n%s", err, g.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("gatehouse serve did not start\n%s", g.stderr)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-g.done:
			if err != nil {
				t.Errorf("gatehouse serve returned %v on shutdown", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("gatehouse serve did not shut down")
		}
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", g.stderr)
		}
	})
	for i := 0; ; i++ {
		res, err := http.Get(g.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if i > 100 {
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return g
}

func (g *liveGatehouse) getenv(k string) string { return g.env[k] }

// command runs a gatehouse command (not serve) on the same configuration.
func (g *liveGatehouse) command(t *testing.T, stdin string, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), cli.Env{Args: args, Getenv: g.getenv, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (r *response) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)) }

// do sends a request; hdr is name, value pairs; body is JSON-encoded when
// it is not a url.Values (a form) or nil.
func do(t *testing.T, method, u string, body any, hdr ...string) *response {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// token logs in with the password grant; scope "" asks for every scope
// the user's roles allow.
func (g *liveGatehouse) token(t *testing.T, email, password, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}, "client_id": {"posts-test"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := do(t, "POST", g.URL+"/oauth2/token", form)
	if r.Status != 200 {
		t.Fatalf("password grant for %s: %s", email, r)
	}
	tok, _ := r.JSON(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("no access_token: %s", r.Body)
	}
	return tok
}

// register creates a plain user (role user) and returns its id.
func (g *liveGatehouse) register(t *testing.T, email, password string) {
	t.Helper()
	if r := do(t, "POST", g.URL+"/v1/register", map[string]string{"email": email, "password": password}); r.Status != 201 {
		t.Fatalf("register %s: %s", email, r)
	}
}

// apiKey creates an API key as the holder of the bearer token.
func (g *liveGatehouse) apiKey(t *testing.T, bearer, name string, scopes ...string) (id, key string) {
	t.Helper()
	r := do(t, "POST", g.URL+"/v1/api-keys", map[string]any{"name": name, "scopes": scopes}, "Authorization", "Bearer "+bearer)
	if r.Status != 201 {
		t.Fatalf("create API key %s %v: %s", name, scopes, r)
	}
	m := r.JSON(t)
	id, _ = m["id"].(string)
	key, _ = m["key"].(string)
	if !strings.HasPrefix(key, "gth_") {
		t.Fatalf("API key %q", key)
	}
	return id, key
}

// sessionCookie logs in with a cookie session, as the hosted pages do.
func (g *liveGatehouse) sessionCookie(t *testing.T, email, password string) *http.Cookie {
	t.Helper()
	r := do(t, "POST", g.URL+"/v1/sessions", map[string]string{"email": email, "password": password}, "Sec-Fetch-Site", "same-origin")
	if r.Status != 201 {
		t.Fatalf("session login %s: %s", email, r)
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "gatehouse_session" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no gatehouse_session cookie in %v", r.Header)
	return nil
}

// subject reads the sub of a Gatehouse access token (no verification:
// only to know the expected author).
func subject(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Sub string }
	if err := json.Unmarshal(b, &c); err != nil || c.Sub == "" {
		t.Fatalf("claims %s: %v", b, err)
	}
	return c.Sub
}
