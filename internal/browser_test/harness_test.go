package browsertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/cli"
)

// fastArgon2 keeps password hashing cheap, under -race too.
const fastArgon2 = "argon2: {memory: 1024, iterations: 1, parallelism: 1}\n"

// gatehouse is a `gatehouse serve` running in this process.
type gatehouse struct {
	// URL is the public URL, http://localhost:PORT: WebAuthn needs a
	// host name as RP ID (an IP address is not valid), and the origin
	// must match exactly, port included.
	URL string
	// Direct is http://127.0.0.1:PORT, where the server listens; the
	// HTTP-only tests talk to it without resolving "localhost".
	Direct  string
	DataDir string
	stderr  *syncBuffer
	seen    map[string]bool // mail files already read
	mu      sync.Mutex
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

// freePort asks the kernel for a free port. The public URL must name the
// port before the server starts, so port 0 will not do.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startGatehouse runs gatehouse serve with fast hashing, extraYAML added
// to its configuration file and env overriding the defaults; it stops the
// server when the test ends.
func startGatehouse(t *testing.T, extraYAML string, env map[string]string) *gatehouse {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	base := fastArgon2
	if !strings.Contains(extraYAML, "rate_limits:") {
		// One test client signs in more often than the default limits
		// allow; the limits' own messages are tested with small limits.
		base += "rate_limits: {login_per_account_ip: 1000, login_per_ip: 1000, window: 1m}\n"
	}
	if err := os.WriteFile(cfgFile, []byte(base+extraYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		port int
		g    *gatehouse
	)
	// The port may be taken between freePort and the listen: try again.
	for attempt := 0; ; attempt++ {
		port = freePort(t)
		g = &gatehouse{URL: fmt.Sprintf("http://localhost:%d", port), Direct: fmt.Sprintf("http://127.0.0.1:%d", port),
			DataDir: filepath.Join(dir, "data"), stderr: &syncBuffer{}, seen: map[string]bool{}}
		vars := map[string]string{
			"GATEHOUSE_DATA_DIR":   g.DataDir,
			"GATEHOUSE_ADDR":       fmt.Sprintf("127.0.0.1:%d", port),
			"GATEHOUSE_PUBLIC_URL": g.URL,
			"GATEHOUSE_CONFIG":     cfgFile,
			"GATEHOUSE_LOG_FORMAT": "json",
		}
		for k, v := range env {
			vars[k] = v
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		listening := make(chan string, 1)
		go func() {
			done <- cli.Run(ctx, cli.Env{Args: []string{"serve"}, Getenv: func(k string) string { return vars[k] },
				Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: g.stderr, Listening: func(a string) { listening <- a }})
		}()
		select {
		case <-listening:
		case err := <-done:
			cancel()
			if attempt < 3 && strings.Contains(g.stderr.String()+fmt.Sprint(err), "address already in use") {
				continue
			}
			t.Fatalf("gatehouse serve exited: %v\n%s", err, g.stderr.String())
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatalf("gatehouse serve did not start\n%s", g.stderr.String())
		}
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gatehouse serve returned %v on shutdown", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("gatehouse serve did not shut down")
			}
			if t.Failed() {
				t.Logf("server log (last 4000 bytes):\n%s", tail(g.stderr.String(), 4000))
			}
		})
		break
	}
	for i := 0; ; i++ {
		res, err := http.Get(g.Direct + "/healthz")
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
	return g
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// mailLink waits for a new mail to `to` in the outbox and returns the
// first link in it to path (/verify-email or /reset-password), built from
// the public URL.
func (g *gatehouse) mailLink(t *testing.T, to, path string) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(g.URL+path) + `\?token=[A-Za-z0-9_.~%-]+`)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(g.DataDir, "mail", "*.eml"))
		for _, f := range files {
			g.mu.Lock()
			seen := g.seen[f]
			g.mu.Unlock()
			if seen {
				continue
			}
			raw, err := os.ReadFile(f)
			if err != nil || len(raw) == 0 {
				continue
			}
			rcpt, text, ok := readMail(raw)
			if !ok {
				continue // still being written
			}
			g.mu.Lock()
			g.seen[f] = true
			g.mu.Unlock()
			if !strings.EqualFold(rcpt, to) {
				continue
			}
			if link := re.FindString(text); link != "" {
				return link
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no mail to %s with a %s link within 15 s", to, path)
	return ""
}

// readMail returns the recipient and the decoded text of every part.
func readMail(raw []byte) (to, text string, ok bool) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", "", false
	}
	if a, err := mail.ParseAddress(m.Header.Get("To")); err == nil {
		to = a.Address
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return "", "", false
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, err := io.ReadAll(m.Body)
		return to, string(b), err == nil
	}
	var all strings.Builder
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", false
		}
		b, err := io.ReadAll(p) // quoted-printable is decoded by the reader
		if err != nil {
			return "", "", false
		}
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			if d, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), "")); err == nil {
				b = d
			}
		}
		all.Write(b)
		all.WriteString("\n")
	}
	return to, all.String(), true
}

// browserClient is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each 303.
func browserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// page is a response with its body read.
type page struct {
	Status int
	Header http.Header
	Body   string
}

func (p *page) String() string {
	return fmt.Sprintf("%d %s", p.Status, tail(p.Body, 600))
}

// do sends a request to the server's direct address; hdr are name, value
// pairs.
func (g *gatehouse) do(t *testing.T, c *http.Client, method, path string, form url.Values, hdr ...string) *page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, g.Direct+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &page{Status: res.StatusCode, Header: res.Header, Body: string(b)}
}
