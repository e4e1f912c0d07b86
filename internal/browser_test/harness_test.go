package browsertest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
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

	"gatehouse/internal/testserver"
)

// gatehouse is a `gatehouse serve` running in this process
// (internal/testserver). Its URL is the public URL, http://localhost:PORT:
// WebAuthn needs a host name as RP ID (an IP address is not valid), and
// the origin must match exactly, port included. Direct is
// http://127.0.0.1:PORT, where the server listens; the HTTP-only tests
// talk to it without resolving "localhost".
type gatehouse struct {
	*testserver.Server
	seen map[string]bool // mail files already read
	mu   sync.Mutex
}

// startGatehouse runs gatehouse serve with fast hashing, extraYAML added
// to its configuration file and env overriding the defaults; it stops the
// server when the test ends.
func startGatehouse(t *testing.T, extraYAML string, env map[string]string) *gatehouse {
	t.Helper()
	base := ""
	if !strings.Contains(extraYAML, "rate_limits:") {
		// One test client signs in more often than the default limits
		// allow; the limits' own messages are tested with small limits.
		base = "rate_limits: {login_per_account_ip: 1000, login_per_ip: 1000, window: 1m}\n"
	}
	s := testserver.Start(t, testserver.Options{Env: testserver.Env(t, base+extraYAML, env), Localhost: true})
	return &gatehouse{Server: s, seen: map[string]bool{}}
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
