// Package testserver runs a real `gatehouse serve` in the test's own
// process (cli.Run with an injected environment), for end-to-end tests of
// Gatehouse and of programs that use it: it writes a configuration with
// cheap password hashing, picks a free port, waits for /healthz, captures
// the server's log and stops the server when the test ends. It also runs
// other gatehouse commands (user create --password-stdin, keys rotate …)
// on the same settings, and sends plain HTTP requests.
//
// It imports internal/cli, so internal/cli's own in-package tests cannot
// use it; its external tests (package cli_test) do.
package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/cli"
)

// FastArgon2 is the configuration that keeps password hashing cheap, under
// -race too. Env puts it first in every configuration file it writes.
const FastArgon2 = "argon2: {memory: 1024, iterations: 1, parallelism: 1}\n"

// Env returns the settings of a fresh Gatehouse in t.TempDir(): a
// configuration file holding FastArgon2 followed by yaml
// (GATEHOUSE_CONFIG), an empty data directory (GATEHOUSE_DATA_DIR) and JSON
// logs. extra is added last and may override any of them.
func Env(t testing.TB, yaml string, extra map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte(FastArgon2+yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"GATEHOUSE_CONFIG":     cfg,
		"GATEHOUSE_DATA_DIR":   filepath.Join(dir, "data"),
		"GATEHOUSE_LOG_FORMAT": "json",
	}
	maps.Copy(env, extra)
	return env
}

// Options configures Start.
type Options struct {
	// Env is the server's whole environment; nil means Env(t, "", nil).
	//
	// When it sets GATEHOUSE_ADDR, the server listens there (127.0.0.1:0
	// for any free port) and the settings are used as they are. Otherwise
	// Start picks a free port on 127.0.0.1 for GATEHOUSE_ADDR and, unless
	// Env sets GATEHOUSE_PUBLIC_URL, makes the public URL
	// http://127.0.0.1:PORT (http://localhost:PORT with Localhost).
	Env map[string]string
	// Localhost names the host of the public URL Start makes "localhost":
	// WebAuthn needs a host name as RP ID (an IP address is not valid).
	Localhost bool
	// Before, when set, runs once the settings are known and before the
	// server starts, to run commands such as user create (Server.Command).
	// Should the picked port turn out to be taken, Start tries another
	// one without running Before again.
	Before func(s *Server)
}

// Server is a `gatehouse serve` running in this process.
type Server struct {
	// URL is the public URL (GATEHOUSE_PUBLIC_URL), or Direct when the
	// settings have none.
	URL string
	// Direct is http://ADDRESS where the server listens, which the tests
	// can reach without resolving the public URL's host.
	Direct string
	// Env is the settings the server runs with (a copy of Options.Env,
	// with the GATEHOUSE_ADDR and GATEHOUSE_PUBLIC_URL that Start chose).
	Env map[string]string
	// DataDir is GATEHOUSE_DATA_DIR.
	DataDir string

	stderr SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

// Start runs gatehouse serve with opts, waits until /healthz answers 200
// and stops the server when the test ends (Stop stops it earlier).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	env := opts.Env
	if env == nil {
		env = Env(t, "", nil)
	}
	pickPort := env["GATEHOUSE_ADDR"] == ""
	before := opts.Before
	var s *Server
	// A port picked by FreePort may be taken before the server listens on
	// it: then try another.
	for attempt := 0; ; attempt++ {
		s = &Server{Env: maps.Clone(env), done: make(chan error, 1)}
		if pickPort {
			port := FreePort(t)
			s.Env["GATEHOUSE_ADDR"] = fmt.Sprintf("127.0.0.1:%d", port)
			if env["GATEHOUSE_PUBLIC_URL"] == "" {
				host := "127.0.0.1"
				if opts.Localhost {
					host = "localhost"
				}
				s.Env["GATEHOUSE_PUBLIC_URL"] = fmt.Sprintf("http://%s:%d", host, port)
			}
		}
		s.URL, s.DataDir = s.Env["GATEHOUSE_PUBLIC_URL"], s.Env["GATEHOUSE_DATA_DIR"]
		if before != nil {
			before(s)
			before = nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		listening := make(chan string, 1)
		go func() {
			s.done <- cli.Run(ctx, cli.Env{Args: []string{"serve"}, Getenv: s.Getenv, Stdin: strings.NewReader(""),
				Stdout: io.Discard, Stderr: &s.stderr, Listening: func(a string) { listening <- a }})
		}()
		select {
		case a := <-listening:
			s.Direct = "http://" + a
		case err := <-s.done:
			cancel()
			if pickPort && attempt < 3 && strings.Contains(s.Log()+fmt.Sprint(err), "address already in use") {
				continue
			}
			t.Fatalf("gatehouse serve exited: %v\n%s", err, s.Log())
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatalf("gatehouse serve did not start\n%s", s.Log())
		}
		break
	}
	if s.URL == "" {
		s.URL = s.Direct
	}
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("gatehouse log (last 4000 bytes):\n%s", tail(s.Log(), 4000))
		}
	})
	for i := 0; ; i++ {
		res, err := http.Get(s.Direct + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 200 {
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return s
}

// Stop shuts the server down and waits for it; serve must return nil. A
// second Stop does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("gatehouse serve returned %v on shutdown", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("gatehouse serve did not shut down")
	}
}

// Getenv reads the server's settings.
func (s *Server) Getenv(k string) string { return s.Env[k] }

// Log is what the server wrote to its standard error so far.
func (s *Server) Log() string { return s.stderr.String() }

// Command runs a gatehouse command (not serve) on the server's settings
// and returns its standard output; it fails the test when the command
// fails.
func (s *Server) Command(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := Run(t, s.Env, stdin, args...)
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// Register creates a user through POST /v1/register.
func (s *Server) Register(t testing.TB, email, password string) {
	t.Helper()
	if r := Send(t, "POST", s.Direct+"/v1/register", map[string]string{"email": email, "password": password}); r.Status != http.StatusCreated {
		t.Fatalf("register %s: %s", email, r)
	}
}

// Run runs one gatehouse command to completion with the settings env and
// returns its standard output and standard error.
func Run(t testing.TB, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = cli.Run(context.Background(), cli.Env{Args: args, Getenv: func(k string) string { return env[k] },
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return out.String(), errb.String(), err
}

// FreePort asks the kernel for a free port on 127.0.0.1, for a server
// whose URL must name its port before it listens.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent
// readers, such as a server's log.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test when it is not
// one.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (r *Response) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)) }

// Do sends one request to target with http.DefaultClient and reads the
// whole answer.
// contentType "" sends no Content-Type; hdr are name, value pairs, each
// set (not added) on the request.
func Do(t testing.TB, method, target, contentType string, body []byte, hdr ...string) *Response {
	t.Helper()
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
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
	return &Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Send is Do with the body encoded by its type: nil sends none, url.Values
// a form, anything else JSON.
func Send(t testing.TB, method, target string, body any, hdr ...string) *Response {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return Do(t, method, target, "", nil, hdr...)
	case url.Values:
		return Do(t, method, target, "application/x-www-form-urlencoded", []byte(b.Encode()), hdr...)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return Do(t, method, target, "application/json", j, hdr...)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
