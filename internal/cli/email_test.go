package cli_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/testserver/smtptest"
)

// ---- a test SMTP server ----

// testSMTPServer is a real SMTP server (internal/testserver/smtptest) on
// 127.0.0.1 with an in-memory backend; gatehouse delivers to it through
// GATEHOUSE_SMTP_URL. With a dataDelay it answers DATA slowly.
type testSMTPServer struct{ *smtptest.Server }

func startTestSMTPServer(t *testing.T, dataDelay time.Duration) *testSMTPServer {
	t.Helper()
	return &testSMTPServer{smtptest.Start(t, smtptest.Options{DataDelay: dataDelay})}
}

// to returns the messages accepted for one recipient, parsed.
func (s *testSMTPServer) to(t *testing.T, rcpt string) []*parsedMail {
	t.Helper()
	var out []*parsedMail
	for _, m := range s.Messages() {
		for _, r := range m.To {
			if r == rcpt {
				out = append(out, parseMail(t, m.Data))
			}
		}
	}
	return out
}

// waitMail waits until n messages for rcpt arrived and returns them.
func (s *testSMTPServer) waitMail(t *testing.T, rcpt string, n int) []*parsedMail {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%d mail(s) to %s", n, rcpt), func() bool { return len(s.to(t, rcpt)) >= n })
	return s.to(t, rcpt)
}

// parsedMail is a delivered message taken apart with net/mail and
// mime/multipart (which undoes quoted-printable).
type parsedMail struct {
	Subject, Text, HTML string
}

func parseMail(t *testing.T, raw []byte) *parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("unparseable mail: %v", err)
	}
	p := &parsedMail{}
	p.Subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		switch ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct {
		case "text/plain":
			p.Text = string(b)
		case "text/html":
			p.HTML = string(b)
		}
	}
	return p
}

var mailLinkRE = regexp.MustCompile(`https?://[^\s"'<>]+`)

// mailToken checks that the mail links to PUBLIC_URL+path in both parts
// and returns the token of the link.
func mailToken(t *testing.T, m *parsedMail, path string) string {
	t.Helper()
	want := "http://gatehouse.test" + path + "?token="
	link := ""
	for _, l := range mailLinkRE.FindAllString(m.Text, -1) {
		if strings.HasPrefix(l, want) {
			link = l
		}
	}
	if link == "" {
		t.Fatalf("mail %q has no %s… link:\n%s", m.Subject, want, m.Text)
	}
	if !strings.Contains(m.HTML, `href="`+link+`"`) {
		t.Errorf("the HTML part lacks the link %s", link)
	}
	u, _ := url.Parse(link)
	tok := u.Query().Get("token")
	if len(tok) < 40 {
		t.Fatalf("short token in %s", link)
	}
	return tok
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- gatehouse with mail ----

// mailEnv is baseEnv with SMTP delivery to srv and rate limits high enough
// for the many requests from 127.0.0.1 these tests make.
func mailEnv(t *testing.T, srv *testSMTPServer, extra map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{"GATEHOUSE_SMTP_URL": srv.URL(), "GATEHOUSE_MAIL_FROM": "Gatehouse <no-reply@gatehouse.test>"}
	maps.Copy(env, extra)
	return yamlEnv(t, "rate_limits: {login_per_account_ip: 100000, login_per_ip: 100000, window: 1m}\n", env)
}

// waitQueueDrained waits until every queued mail job is done (sent, or
// nothing to send), so a test can assert what was NOT sent.
func waitQueueDrained(t *testing.T, env map[string]string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(env["GATEHOUSE_DATA_DIR"], "gatehouse.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually(t, 15*time.Second, "the mail queue to drain", func() bool {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM mail_jobs WHERE done_at IS NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	var failed int
	if err := db.QueryRow(`SELECT count(*) FROM mail_jobs WHERE failed = 1 OR last_error != ''`).Scan(&failed); err != nil {
		t.Fatal(err)
	}
	if failed != 0 {
		t.Errorf("%d mail job(s) failed", failed)
	}
}

func (s *testServer) passwordGrant(t *testing.T, email, pw string) *resp {
	t.Helper()
	return s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {pw}})
}

func (s *testServer) me(t *testing.T, hdr ...string) *resp {
	t.Helper()
	return s.do(t, "GET", "/v1/me", "", nil, hdr...)
}

func (s *testServer) bearerMe(t *testing.T, email, pw string) map[string]any {
	t.Helper()
	r := s.passwordGrant(t, email, pw)
	if r.Status != 200 {
		t.Fatalf("password grant for %s: %d %s", email, r.Status, r.Body)
	}
	m := s.me(t, "Authorization", "Bearer "+r.JSON(t)["access_token"].(string))
	if m.Status != 200 {
		t.Fatalf("/v1/me: %d %s", m.Status, m.Body)
	}
	return m.JSON(t)
}

func wantStatus(t *testing.T, what string, r *resp, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
}

// forgotToken asks for a reset mail for email and returns the token of the
// n-th reset mail that address received.
func (s *testServer) forgotToken(t *testing.T, srv *testSMTPServer, email string, n int) string {
	t.Helper()
	wantStatus(t, "forgot "+email, s.postJSON(t, "/v1/password/forgot", map[string]string{"email": email}), 202)
	var resets []*parsedMail
	eventually(t, 15*time.Second, fmt.Sprintf("reset mail %d to %s", n, email), func() bool {
		resets = resets[:0]
		for _, m := range srv.to(t, email) {
			if strings.Contains(m.Subject, "Reset") {
				resets = append(resets, m)
			}
		}
		return len(resets) >= n
	})
	return mailToken(t, resets[n-1], "/reset-password")
}

const (
	firstPW = "correct horse battery staple"
	newPW   = "a brand new pass phrase 7"
)

// ---- tests ----

func TestEmailVerificationOnRegister(t *testing.T) {
	srv := startTestSMTPServer(t, 0)
	s := start(t, mailEnv(t, srv, nil))
	s.Register(t, "ada@example.com", firstPW)
	m := srv.waitMail(t, "ada@example.com", 1)[0]
	if !strings.Contains(m.Subject, "Verify") {
		t.Fatalf("first mail %q, want the verification mail", m.Subject)
	}
	tok1 := mailToken(t, m, "/verify-email")
	if me := s.bearerMe(t, "ada@example.com", firstPW); me["email_verified"] != false {
		t.Fatalf("email verified before the link was used: %v", me)
	}

	// Ask for the mail again (bearer): a new token supersedes the first.
	g := s.passwordGrant(t, "ada@example.com", firstPW).JSON(t)
	wantStatus(t, "resend", s.do(t, "POST", "/v1/email/verify/resend", "", nil, "Authorization", "Bearer "+g["access_token"].(string)), 202)
	tok2 := mailToken(t, srv.waitMail(t, "ada@example.com", 2)[1], "/verify-email")
	if tok2 == tok1 {
		t.Fatal("the resent mail has the same token")
	}

	// The hosted page only shows a form: opening the link uses nothing.
	page := s.do(t, "GET", "/verify-email?token="+url.QueryEscape(tok2), "", nil)
	wantStatus(t, "GET /verify-email", page, 200)
	if !strings.Contains(string(page.Body), `value="`+tok2+`"`) {
		t.Errorf("the verify page does not carry the token in its form")
	}

	wantStatus(t, "superseded token", s.postJSON(t, "/v1/email/verify", map[string]string{"token": tok1}), 400)
	wantStatus(t, "verify", s.postJSON(t, "/v1/email/verify", map[string]string{"token": tok2}), 204)
	wantStatus(t, "verify replay", s.postJSON(t, "/v1/email/verify", map[string]string{"token": tok2}), 400)
	wantStatus(t, "verify with a junk token", s.postJSON(t, "/v1/email/verify", map[string]string{"token": "junk"}), 400)
	if me := s.bearerMe(t, "ada@example.com", firstPW); me["email_verified"] != true {
		t.Fatalf("email not verified after the link: %v", me)
	}
	// Verifying without a credential of the account removed its refresh
	// families (SPEC §18 H2), so the access token minted before is refused
	// at once (the revocation feed, SPEC §15).
	wantStatus(t, "the access token of a family removed by the verification", s.do(t, "POST", "/v1/email/verify/resend", "", nil, "Authorization", "Bearer "+g["access_token"].(string)), 401)
	// Verified: a resend sends nothing.
	fresh := s.passwordGrant(t, "ada@example.com", firstPW).JSON(t)["access_token"].(string)
	wantStatus(t, "resend when verified", s.do(t, "POST", "/v1/email/verify/resend", "", nil, "Authorization", "Bearer "+fresh), 202)
	waitQueueDrained(t, s.Env)
	if n := len(srv.to(t, "ada@example.com")); n != 2 {
		t.Errorf("%d mails to a verified address, want 2", n)
	}
}

func TestRegisterTakenEmailSendsNotice(t *testing.T) {
	srv := startTestSMTPServer(t, 0)
	s := start(t, mailEnv(t, srv, nil))
	first := s.postJSON(t, "/v1/register", map[string]string{"email": "ada@example.com", "password": firstPW})
	wantStatus(t, "register", first, 201)
	srv.waitMail(t, "ada@example.com", 1)

	again := s.postJSON(t, "/v1/register", map[string]string{"email": "Ada@Example.com", "password": "another pass phrase 42"})
	wantStatus(t, "register a taken email", again, 201)
	a, b := first.JSON(t), again.JSON(t)
	if len(a) != len(b) || a["email"] != b["email"] || a["id"] == b["id"] {
		t.Errorf("the answer for a taken email differs in shape:\n%s\n%s", first.Body, again.Body)
	}
	msgs := srv.waitMail(t, "ada@example.com", 2)
	n := msgs[1]
	if !strings.Contains(n.Subject, "tried to register") {
		t.Fatalf("second mail %q, want the notice", n.Subject)
	}
	if !strings.Contains(n.Text, "http://gatehouse.test/forgot-password") || !strings.Contains(n.HTML, `href="http://gatehouse.test/forgot-password"`) {
		t.Errorf("the notice does not link to the forgot page:\n%s", n.Text)
	}
	waitQueueDrained(t, s.Env)
	if got := len(srv.to(t, "ada@example.com")); got != 2 {
		t.Errorf("%d mails, want the verification and the notice", got)
	}
	// No second account: only the first password works.
	if r := s.passwordGrant(t, "ada@example.com", "another pass phrase 42"); r.Status != 400 || r.JSON(t)["error"] != "invalid_grant" {
		t.Errorf("the second registration's password: %d %s", r.Status, r.Body)
	}
	if me := s.bearerMe(t, "ada@example.com", firstPW); me["id"] != a["id"] {
		t.Errorf("the account changed: %v", me)
	}
}

func TestForgotAndResetPassword(t *testing.T) {
	srv := startTestSMTPServer(t, 0)
	s := start(t, mailEnv(t, srv, nil))
	for _, e := range []string{"ada", "bob", "cy", "dee", "eve", "fay"} {
		s.Register(t, e+"@example.com", firstPW)
		srv.waitMail(t, e+"@example.com", 1) // the verification mail
	}

	t.Run("same answer for known and unknown", func(t *testing.T) {
		unknown := s.postJSON(t, "/v1/password/forgot", map[string]string{"email": "nobody@example.com"})
		// Spoofed host headers change nothing: links come from PUBLIC_URL.
		known := s.postJSON(t, "/v1/password/forgot", map[string]string{"email": "ada@example.com"},
			"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https", "Forwarded", "host=evil.example")
		wantStatus(t, "forgot unknown", unknown, 202)
		wantStatus(t, "forgot known", known, 202)
		if !bytes.Equal(unknown.Body, known.Body) || unknown.Header.Get("Content-Type") != known.Header.Get("Content-Type") {
			t.Errorf("answers differ:\n%s\n%s", unknown.Body, known.Body)
		}
		msgs := srv.waitMail(t, "ada@example.com", 2)
		tok := mailToken(t, msgs[1], "/reset-password")
		if strings.Contains(msgs[1].Text, "evil.example") || strings.Contains(msgs[1].HTML, "evil.example") {
			t.Errorf("the mail links to a spoofed host")
		}
		waitQueueDrained(t, s.Env)
		if n := len(srv.to(t, "nobody@example.com")); n != 0 {
			t.Errorf("%d mail(s) to an address without an account", n)
		}

		// The mailed token works once.
		wantStatus(t, "reset", s.postJSON(t, "/v1/password/reset", map[string]string{"token": tok, "new_password": newPW}), 204)
		wantStatus(t, "reset replay", s.postJSON(t, "/v1/password/reset", map[string]string{"token": tok, "new_password": "yet another pass phrase 9"}), 400)
		if r := s.passwordGrant(t, "ada@example.com", firstPW); r.Status != 400 {
			t.Errorf("the old password still works: %d", r.Status)
		}
		s.bearerMe(t, "ada@example.com", newPW)
	})

	t.Run("a newer mail supersedes the older token", func(t *testing.T) {
		old := s.forgotToken(t, srv, "bob@example.com", 1)
		newer := s.forgotToken(t, srv, "bob@example.com", 2)
		if old == newer {
			t.Fatal("two reset mails with one token")
		}
		wantStatus(t, "superseded token", s.postJSON(t, "/v1/password/reset", map[string]string{"token": old, "new_password": newPW}), 400)
		wantStatus(t, "newer token", s.postJSON(t, "/v1/password/reset", map[string]string{"token": newer, "new_password": newPW}), 204)
	})

	t.Run("concurrent resets with one token", func(t *testing.T) {
		tok := s.forgotToken(t, srv, "cy@example.com", 1)
		body := fmt.Sprintf(`{"token":%q,"new_password":%q}`, tok, newPW)
		const n = 20
		statuses := make([]int, n)
		var wg sync.WaitGroup
		startGun := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startGun
				res, err := http.Post(s.Direct+"/v1/password/reset", "application/json", strings.NewReader(body))
				if err != nil {
					statuses[i] = -1
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				statuses[i] = res.StatusCode
			}()
		}
		close(startGun)
		wg.Wait()
		count := map[int]int{}
		for _, st := range statuses {
			count[st]++
		}
		if count[204] != 1 || count[400] != n-1 {
			t.Fatalf("statuses %v, want one 204 and %d 400", count, n-1)
		}
		s.bearerMe(t, "cy@example.com", newPW)
	})

	t.Run("reset ends sessions and refresh tokens and verifies the email", func(t *testing.T) {
		login := s.postJSON(t, "/v1/sessions", map[string]string{"email": "dee@example.com", "password": firstPW}, "Sec-Fetch-Site", "same-origin")
		wantStatus(t, "cookie login", login, 201)
		cookies := (&http.Response{Header: login.Header}).Cookies()
		if len(cookies) == 0 {
			t.Fatal("no session cookie")
		}
		cookie := cookies[0].Name + "=" + cookies[0].Value
		me := s.me(t, "Cookie", cookie)
		wantStatus(t, "/v1/me with the cookie", me, 200)
		if me.JSON(t)["email_verified"] != false {
			t.Fatalf("verified before any link: %s", me.Body)
		}
		grant := s.passwordGrant(t, "dee@example.com", firstPW)
		wantStatus(t, "password grant", grant, 200)
		refresh := grant.JSON(t)["refresh_token"].(string)

		tok := s.forgotToken(t, srv, "dee@example.com", 1)
		wantStatus(t, "reset", s.postJSON(t, "/v1/password/reset", map[string]string{"token": tok, "new_password": newPW}), 204)

		wantStatus(t, "/v1/me with the old cookie", s.me(t, "Cookie", cookie), 401)
		r := s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if r.Status != 400 || r.JSON(t)["error"] != "invalid_grant" {
			t.Fatalf("refresh after the reset: %d %s", r.Status, r.Body)
		}
		if me := s.bearerMe(t, "dee@example.com", newPW); me["email_verified"] != true {
			t.Errorf("the reset did not mark the email verified: %v", me)
		}
	})

	t.Run("hosted reset page", func(t *testing.T) {
		tok := s.forgotToken(t, srv, "eve@example.com", 1)
		for i := 0; i < 2; i++ { // a mail scanner opening the link twice burns nothing
			page := s.do(t, "GET", "/reset-password?token="+url.QueryEscape(tok), "", nil)
			wantStatus(t, "GET /reset-password", page, 200)
			if ct := page.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
			csp := page.Header.Get("Content-Security-Policy")
			if csp == "" || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") {
				t.Errorf("CSP %q", csp)
			}
			if rp := page.Header.Get("Referrer-Policy"); rp != "no-referrer" {
				t.Errorf("Referrer-Policy %q on a page whose URL holds a token", rp)
			}
			if !strings.Contains(string(page.Body), `name="token" value="`+tok+`"`) {
				t.Errorf("the page's form does not carry the token:\n%s", page.Body)
			}
		}
		form := url.Values{"token": {tok}, "new_password": {newPW}}.Encode()
		cross := s.do(t, "POST", "/reset-password", "application/x-www-form-urlencoded", []byte(form), "Sec-Fetch-Site", "cross-site")
		wantStatus(t, "cross-site form post", cross, 403)
		if !strings.HasPrefix(cross.Header.Get("Content-Type"), "text/html") {
			t.Errorf("the 403 is not the page: %q", cross.Header.Get("Content-Type"))
		}
		// Neither the page views nor the refused post used the token.
		done := s.do(t, "POST", "/reset-password", "application/x-www-form-urlencoded", []byte(form), "Sec-Fetch-Site", "same-origin")
		wantStatus(t, "same-origin form post", done, 200)
		if !strings.Contains(string(done.Body), "Password changed") {
			t.Errorf("no confirmation:\n%s", done.Body)
		}
		wantStatus(t, "token after the form", s.postJSON(t, "/v1/password/reset", map[string]string{"token": tok, "new_password": "yet another pass phrase 9"}), 400)
		s.bearerMe(t, "eve@example.com", newPW)
	})

	t.Run("ambiguous email is refused", func(t *testing.T) {
		before := len(srv.to(t, "fay@example.com"))
		for name, body := range map[string]string{
			"array":        `{"email":["fay@example.com","nobody@example.com"]}`,
			"repeated key": `{"email":"nobody@example.com","email":"fay@example.com"}`,
		} {
			r := s.do(t, "POST", "/v1/password/forgot", "application/json", []byte(body))
			if r.Status < 400 || r.Status > 499 {
				t.Errorf("%s: status %d, want 4xx: %s", name, r.Status, r.Body)
			}
			t.Logf("%s: %d", name, r.Status)
		}
		waitQueueDrained(t, s.Env)
		if n := len(srv.to(t, "fay@example.com")); n != before {
			t.Errorf("a refused request sent mail (%d → %d)", before, n)
		}
	})
}

func TestRequireVerifiedEmailBlocksPasswordGrant(t *testing.T) {
	srv := startTestSMTPServer(t, 0)
	s := start(t, mailEnv(t, srv, map[string]string{"GATEHOUSE_REQUIRE_VERIFIED_EMAIL": "true"}))
	s.Register(t, "ada@example.com", firstPW)
	r := s.passwordGrant(t, "ada@example.com", firstPW)
	if r.Status != 400 || r.JSON(t)["error"] != "invalid_grant" {
		t.Fatalf("password grant before verification: %d %s", r.Status, r.Body)
	}
	tok := mailToken(t, srv.waitMail(t, "ada@example.com", 1)[0], "/verify-email")
	wantStatus(t, "verify", s.postJSON(t, "/v1/email/verify", map[string]string{"token": tok}), 204)
	if me := s.bearerMe(t, "ada@example.com", firstPW); me["email_verified"] != true {
		t.Errorf("/v1/me after verification: %v", me)
	}
}

// A slow mail server does not slow the request: the answer to the forgot
// request comes back while the server is still receiving the mail.
func TestSlowSMTPDoesNotDelayForgot(t *testing.T) {
	srv := startTestSMTPServer(t, 3*time.Second)
	env := mailEnv(t, srv, nil)
	if _, stderr, err := runCLI(t, env, firstPW+"\n", "user", "create", "--email", "slow@example.com", "--password-stdin"); err != nil {
		t.Fatalf("user create: %v\n%s", err, stderr)
	}
	s := start(t, env)

	r := s.postJSON(t, "/v1/password/forgot", map[string]string{"email": "slow@example.com"})
	answered := time.Now()
	wantStatus(t, "forgot", r, 202)
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("the mail (%d) was delivered before the request was answered", n)
	}
	// The worker is now inside the slow DATA; another request is answered
	// while it waits there.
	eventually(t, 15*time.Second, "the server to start receiving", func() bool { return srv.DataStarted() >= 1 })
	r2 := s.postJSON(t, "/v1/password/forgot", map[string]string{"email": "nobody@example.com"})
	answered2 := time.Now()
	wantStatus(t, "second forgot", r2, 202)
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("the slow server finished before the second request was answered")
	}
	m := srv.waitMail(t, "slow@example.com", 1)
	mailToken(t, m[0], "/reset-password")
	got := srv.Messages()[0].ReceivedAt
	if !got.After(answered) || !got.After(answered2) {
		t.Errorf("the mail was received (%v) before the requests were answered (%v, %v)", got, answered, answered2)
	}
	waitQueueDrained(t, env)
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
}
