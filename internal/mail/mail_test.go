package mail_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/authtest"
	gmail "gatehouse/internal/mail"
	"gatehouse/internal/sqlstore"
)

const testFrom = "Gatehouse <no-reply@gatehouse.test>"

// parsedMail is a delivered message taken apart with net/mail and
// mime/multipart (which also undoes quoted-printable).
type parsedMail struct {
	Header    mail.Header
	Subject   string
	MediaType string
	Text      string
	HTML      string
}

func parseMail(t testing.TB, raw []byte) *parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot parse the message: %v\n%s", err, raw)
	}
	p := &parsedMail{Header: m.Header}
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatalf("Subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	p.MediaType = mt
	if !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("Content-Type %s, want multipart/alternative\n%s", mt, raw)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading a MIME part: %v", err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("reading a MIME part: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			p.Text = string(b)
		case "text/html":
			p.HTML = string(b)
		default:
			t.Errorf("unexpected part %s", pt)
		}
	}
	return p
}

var linkRE = regexp.MustCompile(`https?://[^\s"'<>]+`)

// links returns every URL in s.
func links(s string) []string { return linkRE.FindAllString(s, -1) }

// ---- the real SQLite store ----

type testStore struct {
	DB   *sqlstore.DB
	Path string
	raw  *sql.DB // the same file, to look at the queue's rows
}

func openStore(t testing.TB, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func newTestStore(t testing.TB) *testStore {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	st := &testStore{DB: openStore(t, path), Path: path}
	t.Cleanup(func() { st.DB.Close() })
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	st.raw = raw
	return st
}

func (st *testStore) createUser(t testing.TB, email string) *auth.User {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &auth.User{ID: auth.NewID(), Email: email, Roles: []string{"user"}, CreatedAt: now, UpdatedAt: now}
	if err := st.DB.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func (st *testStore) enqueue(t testing.TB, kind, to, userID string) string {
	t.Helper()
	id := auth.NewID()
	if err := st.DB.Enqueue(context.Background(), &auth.MailJob{ID: id, Kind: kind, To: to, UserID: userID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return id
}

type jobRow struct {
	Attempts    int
	Done        bool
	Failed      bool
	NextAttempt time.Time
	LockedUntil time.Time
	LastError   string
}

func (st *testStore) job(t testing.TB, id string) jobRow {
	t.Helper()
	var (
		r            jobRow
		done         sql.NullInt64
		next, locked int64
	)
	err := st.raw.QueryRow(`SELECT attempts, done_at, failed, next_attempt_at, locked_until, last_error FROM mail_jobs WHERE id = ?`, id).
		Scan(&r.Attempts, &done, &r.Failed, &next, &locked, &r.LastError)
	if err != nil {
		t.Fatalf("reading job %s: %v", id, err)
	}
	r.Done = done.Valid
	r.NextAttempt, r.LockedUntil = time.UnixMicro(next), time.UnixMicro(locked)
	return r
}

// makeDue moves a job's next attempt into the past, so a test need not
// sit out the real backoff.
func (st *testStore) makeDue(t testing.TB, id string) {
	t.Helper()
	if _, err := st.raw.Exec(`UPDATE mail_jobs SET next_attempt_at = 0 WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
}

// accounts is what cli wires for the worker: the store plus the service's
// IssueToken.
type accounts struct {
	*sqlstore.DB
	svc *auth.Service
}

func (a accounts) IssueToken(ctx context.Context, u *auth.User, purpose string) (string, error) {
	return a.svc.IssueToken(ctx, u, purpose)
}

func newWorker(t testing.TB, db *sqlstore.DB, sender gmail.Sender, publicURL string) *gmail.Worker {
	t.Helper()
	tpl, err := gmail.LoadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	svc := authtest.New(t, db)
	w := &gmail.Worker{Jobs: db, Accounts: accounts{DB: db, svc: svc}, Sender: sender, Templates: tpl,
		PublicURL: publicURL, Product: "Gatehouse", Poll: 50 * time.Millisecond}
	w.Init()
	return w
}

func newSMTP(t testing.TB, rawURL string) *gmail.SMTP {
	t.Helper()
	s, err := gmail.NewSMTP(rawURL, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testMessage() *gmail.Message {
	return &gmail.Message{To: "ada@example.com", Subject: "Réinitialiser votre mot de passe",
		Text: "Open http://gatehouse.test/reset-password?token=abc123 within one hour.\n",
		HTML: `<p><a href="http://gatehouse.test/reset-password?token=abc123">Choose a new password</a></p>`}
}

// ---- tests ----

func TestSMTPDeliversMultipartAlternative(t *testing.T) {
	srv := startTestSMTPServer(t, testSMTPOptions{})
	tpl, err := gmail.LoadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	link := "http://gatehouse.test/reset-password?token=tok_ABC-123"
	m, err := tpl.Render(auth.MailReset, "ada@example.com", "Reset your Gatehouse password", gmail.Data{Product: "Gatehouse", Email: "ada@example.com", Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if err := newSMTP(t, srv.URL()).Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.WaitMessages(t, 1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.From != "no-reply@gatehouse.test" || len(got.To) != 1 || got.To[0] != "ada@example.com" {
		t.Errorf("envelope MAIL FROM %q RCPT TO %q", got.From, got.To)
	}
	p := parseMail(t, got.Data)
	if p.MediaType != "multipart/alternative" {
		t.Errorf("Content-Type %s, want multipart/alternative", p.MediaType)
	}
	if from, err := mail.ParseAddress(p.Header.Get("From")); err != nil || from.Address != "no-reply@gatehouse.test" || from.Name != "Gatehouse" {
		t.Errorf("From %q (%v)", p.Header.Get("From"), err)
	}
	if to, err := mail.ParseAddress(p.Header.Get("To")); err != nil || to.Address != "ada@example.com" {
		t.Errorf("To %q (%v)", p.Header.Get("To"), err)
	}
	if p.Subject != "Reset your Gatehouse password" {
		t.Errorf("Subject %q", p.Subject)
	}
	if p.Header.Get("Date") == "" || p.Header.Get("Message-Id") == "" {
		t.Errorf("no Date or Message-ID: %v", p.Header)
	}
	if !strings.Contains(p.Text, link) {
		t.Errorf("text part lacks the link:\n%s", p.Text)
	}
	if !strings.Contains(p.HTML, `href="`+link+`"`) {
		t.Errorf("HTML part lacks the link:\n%s", p.HTML)
	}
	if strings.Contains(p.Text, "<p>") || !strings.Contains(p.HTML, "<p>") {
		t.Errorf("the parts are mixed up")
	}

	// A non-ASCII subject survives the trip (RFC 2047).
	if err := newSMTP(t, srv.URL()).Send(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	p2 := parseMail(t, srv.WaitMessages(t, 2, 5*time.Second)[1].Data)
	if p2.Subject != testMessage().Subject {
		t.Errorf("Subject %q, want %q", p2.Subject, testMessage().Subject)
	}
}

func TestSMTPAuthPlain(t *testing.T) {
	const user, pass = "mailer", "s3cret:with/odd@chars"
	srv := startTestSMTPServer(t, testSMTPOptions{User: user, Password: pass})
	u := "smtp://" + url.UserPassword(user, pass).String() + "@" + strings.TrimPrefix(srv.URL(), "smtp://")
	if err := newSMTP(t, u).Send(context.Background(), testMessage()); err != nil {
		t.Fatalf("Send with credentials: %v", err)
	}
	msgs := srv.WaitMessages(t, 1, 5*time.Second)
	if msgs[0].AuthUser != user {
		t.Errorf("message accepted as %q, want %q", msgs[0].AuthUser, user)
	}
	auths := srv.Auths()
	if len(auths) != 1 || auths[0].Username != user || auths[0].Password != pass {
		t.Errorf("PLAIN credentials seen: %+v", auths)
	}

	// Wrong credentials: the server refuses, Send reports it.
	bad := "smtp://" + url.UserPassword(user, "wrong").String() + "@" + strings.TrimPrefix(srv.URL(), "smtp://")
	if err := newSMTP(t, bad).Send(context.Background(), testMessage()); err == nil {
		t.Errorf("Send with wrong credentials succeeded")
	}
	// No credentials at all: MAIL is refused before AUTH.
	if err := newSMTP(t, srv.URL()).Send(context.Background(), testMessage()); err == nil {
		t.Errorf("Send without credentials to a server that requires AUTH succeeded")
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages accepted, want 1", n)
	}

}

// Without TLS, credentials go in the clear only to a loopback name: a
// server on 127.0.0.2 (still this machine, but not a name go-mail trusts
// as local) gets no AUTH, and Send fails.
func TestSMTPNoPlaintextAuthToOtherHosts(t *testing.T) {
	const user, pass = "mailer", "s3cret"
	srv := startTestSMTPServer(t, testSMTPOptions{User: user, Password: pass, ListenHost: "127.0.0.2"})
	if srv == nil {
		t.Skip("cannot listen on 127.0.0.2 here")
	}
	u := "smtp://" + url.UserPassword(user, pass).String() + "@" + net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port))
	err := newSMTP(t, u).Send(context.Background(), testMessage())
	if err == nil {
		t.Fatal("Send with credentials over plaintext to a non-loopback name succeeded")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "auth") {
		t.Errorf("Send failed for another reason than auth: %v", err)
	}
	if n := len(srv.Auths()); n != 0 {
		t.Errorf("the server was sent %d sets of credentials in the clear", n)
	}
}

func TestSMTPRefusedIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testSMTPOptions
	}{
		{"RCPT 550", testSMTPOptions{RejectRcpt: true}},
		{"DATA 550", testSMTPOptions{RejectData: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startTestSMTPServer(t, tc.opts)
			err := newSMTP(t, srv.URL()).Send(context.Background(), testMessage())
			if err == nil {
				t.Fatal("Send to a refusing server succeeded")
			}
			if !strings.Contains(err.Error(), "550") {
				t.Errorf("error %q does not carry the server's 550", err)
			}
			if len(srv.Messages()) != 0 {
				t.Errorf("the refusing server kept a message")
			}
		})
	}
	// Nobody listening: an error too, not a hang.
	srv := startTestSMTPServer(t, testSMTPOptions{})
	url := srv.URL()
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := newSMTP(t, url).Send(ctx, testMessage()); err == nil {
		t.Errorf("Send to a closed port succeeded")
	}
}

func TestNewSMTPRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://mail.example.com", "smtp://mail.example.com:notaport", "mail.example.com:25", "://"} {
		if _, err := gmail.NewSMTP(u, testFrom); err == nil {
			t.Errorf("NewSMTP(%q) accepted", u)
		}
	}
	for _, u := range []string{"smtp://mail.example.com", "smtps://mail.example.com", "smtp://u:p@mail.example.com:2525"} {
		if _, err := gmail.NewSMTP(u, testFrom); err != nil {
			t.Errorf("NewSMTP(%q): %v", u, err)
		}
	}
}

func TestWorkerRetriesThenGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testSMTPOptions
	}{
		{"RCPT 550", testSMTPOptions{RejectRcpt: true}},
		{"DATA 550", testSMTPOptions{RejectData: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startTestSMTPServer(t, tc.opts)
			st := newTestStore(t)
			u := st.createUser(t, "ada@example.com")
			w := newWorker(t, st.DB, newSMTP(t, srv.URL()), "http://gatehouse.test")
			w.MaxAttempts = 3
			ctx := context.Background()
			id := st.enqueue(t, auth.MailReset, u.Email, "")

			for attempt := 1; attempt < w.MaxAttempts; attempt++ {
				before := time.Now()
				if !w.RunOnce(ctx) {
					t.Fatalf("attempt %d: RunOnce found no job", attempt)
				}
				j := st.job(t, id)
				if j.Done || j.Failed || j.Attempts != attempt {
					t.Fatalf("attempt %d: job %+v, want pending with %d attempts", attempt, j, attempt)
				}
				if !strings.Contains(j.LastError, "550") {
					t.Errorf("attempt %d: last_error %q", attempt, j.LastError)
				}
				// Backoff doubles from 2 s.
				want := time.Duration(1<<attempt) * time.Second
				if d := j.NextAttempt.Sub(before); d < want || d > want+5*time.Second {
					t.Errorf("attempt %d: next attempt in %v, want about %v", attempt, d, want)
				}
				if !j.LockedUntil.Before(time.Now()) {
					t.Errorf("attempt %d: the job is still leased after the attempt", attempt)
				}
				if w.RunOnce(ctx) {
					t.Fatalf("attempt %d: the job was retried before its backoff", attempt)
				}
				st.makeDue(t, id)
			}
			if !w.RunOnce(ctx) {
				t.Fatal("last attempt: RunOnce found no job")
			}
			j := st.job(t, id)
			if !j.Done || !j.Failed || j.Attempts != w.MaxAttempts {
				t.Fatalf("after MaxAttempts: job %+v, want done and failed", j)
			}
			if w.RunOnce(ctx) {
				t.Errorf("a failed job was claimed again")
			}
			if len(srv.Messages()) != 0 {
				t.Errorf("the refusing server kept a message")
			}
			if tc.opts.RejectRcpt && srv.RcptTries() != w.MaxAttempts {
				t.Errorf("%d delivery attempts reached the server, want %d", srv.RcptTries(), w.MaxAttempts)
			}
			if tc.opts.RejectData && srv.DataStarted() != w.MaxAttempts {
				t.Errorf("%d delivery attempts reached the server, want %d", srv.DataStarted(), w.MaxAttempts)
			}
			evs, err := st.DB.ListAudit(ctx, auth.AuditFilter{Type: auth.EventMailFailed})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 {
				t.Fatalf("%d %s events, want 1", len(evs), auth.EventMailFailed)
			}
			d := evs[0].Details
			if d["kind"] != auth.MailReset || d["attempts"] != float64(w.MaxAttempts) || !strings.Contains(d["error"].(string), "550") {
				t.Errorf("audit details %v", d)
			}
			// The audit names no token and no link.
			if strings.Contains(d["error"].(string), "token=") {
				t.Errorf("the audit event holds a link: %v", d)
			}
		})
	}
}

// A worker that died mid-send (its claim is still leased) does not lose the
// job: once the lease ends, a new worker on the same database delivers it,
// exactly once.
func TestWorkerRestartDeliversLeasedJobOnce(t *testing.T) {
	srv := startTestSMTPServer(t, testSMTPOptions{})
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	ctx := context.Background()

	first := openStore(t, path)
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &auth.User{ID: auth.NewID(), Email: "ada@example.com", Roles: []string{"user"}, CreatedAt: now, UpdatedAt: now}
	if err := first.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := first.Enqueue(ctx, &auth.MailJob{ID: auth.NewID(), Kind: auth.MailVerify, To: u.Email, UserID: u.ID, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	second := openStore(t, path) // the restarted process
	defer second.Close()

	// The dying worker claims the job with a short lease and never finishes.
	const leaseFor = 200 * time.Millisecond
	claimedAt := time.Now()
	j, err := first.ClaimMailJob(ctx, claimedAt, leaseFor)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if j.Attempts != 1 {
		t.Fatalf("claimed job has %d attempts", j.Attempts)
	}
	first.Close()

	w := newWorker(t, second, newSMTP(t, srv.URL()), "http://gatehouse.test")
	if w.RunOnce(ctx) {
		if time.Since(claimedAt) < leaseFor {
			t.Fatal("the new worker took a job that is still leased")
		}
		t.Log("the lease ran out before the first check (slow machine)")
	} else {
		time.Sleep(time.Until(claimedAt.Add(leaseFor + 50*time.Millisecond)))
		if !w.RunOnce(ctx) {
			t.Fatal("the new worker did not take the job after its lease ended")
		}
	}
	if w.RunOnce(ctx) {
		t.Fatal("a second job was processed")
	}
	msgs := srv.WaitMessages(t, 1, 5*time.Second)
	p := parseMail(t, msgs[0].Data)
	if !strings.Contains(p.Text, "http://gatehouse.test/verify-email?token=") {
		t.Errorf("the delivered mail is not the verification mail:\n%s", p.Text)
	}
	// Run the worker a little longer: nothing more arrives.
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	w.Run(rctx)
	cancel()
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages arrived, want exactly 1", n)
	}
	var attempts int
	var done sql.NullInt64
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRow(`SELECT attempts, done_at FROM mail_jobs WHERE id = ?`, j.ID).Scan(&attempts, &done); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || !done.Valid {
		t.Errorf("job attempts %d done %v, want 2 and done", attempts, done.Valid)
	}
}

// The worker sends in the background: queueing (what a request does) does
// not wait for a slow server, and the mail still arrives.
func TestWorkerSlowServer(t *testing.T) {
	const delay = time.Second
	srv := startTestSMTPServer(t, testSMTPOptions{DataDelay: delay})
	st := newTestStore(t)
	u := st.createUser(t, "ada@example.com")
	w := newWorker(t, st.DB, newSMTP(t, srv.URL()), "http://gatehouse.test")
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		w.Run(ctx)
	}()
	defer func() {
		cancel()
		<-ran
	}()

	id := st.enqueue(t, auth.MailReset, u.Email, "")
	w.Notify()
	// The worker is now inside the slow DATA; queueing more and waking it
	// again still returns at once.
	waitFor(t, 10*time.Second, "the server to start receiving", func() bool { return srv.DataStarted() == 1 })
	id2 := st.enqueue(t, auth.MailReset, "nobody@example.com", "")
	w.Notify()
	w.Notify()
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("the slow server finished (%d messages) before queueing returned", n)
	}
	msgs := srv.WaitMessages(t, 1, 10*delay)
	if !strings.Contains(parseMail(t, msgs[0].Data).Text, "http://gatehouse.test/reset-password?token=") {
		t.Errorf("the slow delivery is not the reset mail")
	}
	waitFor(t, 10*time.Second, "both jobs done", func() bool { return st.job(t, id).Done && st.job(t, id2).Done })
	if j := st.job(t, id); j.Failed || j.Attempts != 1 {
		t.Errorf("slow job %+v, want done on the first attempt", j)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages, want 1 (none for an unknown address)", n)
	}
}

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	o := &gmail.Outbox{Dir: dir, From: testFrom}
	m := testMessage()
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("outbox folder mode %v, want 0700", st.Mode().Perm())
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("want 2 .eml files, got %v (%v)", files, err)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := parseMail(t, raw)
		if p.MediaType != "multipart/alternative" {
			t.Errorf("Content-Type %s", p.MediaType)
		}
		if p.Subject != m.Subject || !strings.Contains(p.Header.Get("To"), "ada@example.com") || !strings.Contains(p.Header.Get("From"), "no-reply@gatehouse.test") {
			t.Errorf("headers %v", p.Header)
		}
		if !strings.Contains(p.Text, "http://gatehouse.test/reset-password?token=abc123") || !strings.Contains(p.HTML, `href="http://gatehouse.test/reset-password?token=abc123"`) {
			t.Errorf("parts lack the link:\n%s\n%s", p.Text, p.HTML)
		}
	}
}

func TestTemplatesRenderEveryKind(t *testing.T) {
	tpl, err := gmail.LoadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	const email = `o'brien&<b>x</b>"@example.com`
	const link = "https://id.example.org/reset-password?token=T0K"
	for _, kind := range []string{auth.MailReset, auth.MailVerify, auth.MailNotice, auth.MailRecoveryUsed, auth.MailMFAReset, auth.MailWebhookDisabled, auth.MailTest} {
		t.Run(kind, func(t *testing.T) {
			m, err := tpl.Render(kind, "to@example.com", "subject", gmail.Data{Product: "Acme ID", Email: email, Link: link})
			if err != nil {
				t.Fatal(err)
			}
			if m.To != "to@example.com" || m.Subject != "subject" {
				t.Errorf("message %+v", m)
			}
			for name, body := range map[string]string{"text": m.Text, "html": m.HTML} {
				if !strings.Contains(body, link) {
					t.Errorf("%s part lacks the link", name)
				}
				if !strings.Contains(body, "Acme ID") {
					t.Errorf("%s part lacks the product name", name)
				}
			}
			if !strings.Contains(m.Text, email) {
				t.Errorf("text part lacks the raw email")
			}
			if strings.Contains(m.HTML, "<b>x</b>") || strings.Contains(m.HTML, email) {
				t.Errorf("HTML part does not escape the email:\n%s", m.HTML)
			}
			if !strings.Contains(m.HTML, "&amp;&lt;b&gt;x&lt;/b&gt;") {
				t.Errorf("HTML part lacks the escaped email:\n%s", m.HTML)
			}
		})
	}
	if _, err := tpl.Render("nope", "to@example.com", "s", gmail.Data{}); err == nil {
		t.Errorf("an unknown kind rendered")
	}
	// A hostile link cannot break out of the href.
	m, err := tpl.Render(auth.MailReset, "to@example.com", "s", gmail.Data{Product: "P", Email: "e@x", Link: `javascript:alert(1)`})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, `href="javascript:`) {
		t.Errorf("HTML part links to javascript:")
	}
}

// recorder is a Sender that keeps what it is given (the store stays real).
type recorder struct{ msgs []*gmail.Message }

func (r *recorder) Send(_ context.Context, m *gmail.Message) error {
	r.msgs = append(r.msgs, m)
	return nil
}

func TestWorkerLinksFromPublicURLOnly(t *testing.T) {
	st := newTestStore(t)
	ada := st.createUser(t, "ada@example.com")
	rec := &recorder{}
	const public = "https://id.example.org/base"
	w := newWorker(t, st.DB, rec, public)
	ctx := context.Background()
	st.enqueue(t, auth.MailReset, ada.Email, "")
	st.enqueue(t, auth.MailVerify, ada.Email, ada.ID)
	st.enqueue(t, auth.MailNotice, ada.Email, "")
	st.enqueue(t, auth.MailRecoveryUsed, ada.Email, ada.ID)
	st.enqueue(t, auth.MailMFAReset, ada.Email, ada.ID)
	st.enqueue(t, auth.MailReset, "nobody@example.com", "") // no account: nothing sent
	st.enqueue(t, "bogus", ada.Email, "")                   // unknown kind: dropped
	for i := 0; i < 7; i++ {
		if !w.RunOnce(ctx) {
			t.Fatalf("job %d not processed", i)
		}
	}
	if w.RunOnce(ctx) {
		t.Fatal("more jobs than queued")
	}
	if len(rec.msgs) != 5 {
		t.Fatalf("%d messages sent, want 5", len(rec.msgs))
	}
	paths := map[string]string{}
	for _, m := range rec.msgs {
		if m.To != ada.Email {
			t.Errorf("message to %q", m.To)
		}
		ls := append(links(m.Text), links(m.HTML)...)
		if len(ls) == 0 {
			t.Errorf("no link in %q", m.Subject)
		}
		for _, l := range ls {
			if !strings.HasPrefix(l, public+"/") {
				t.Errorf("link %q is not under the public URL %s", l, public)
			}
		}
		u, _ := url.Parse(links(m.Text)[0])
		paths[strings.TrimPrefix(u.Path, "/base")] = u.Query().Get("token")
	}
	if paths["/reset-password"] == "" || paths["/verify-email"] == "" {
		t.Errorf("links %v: want a reset and a verify link with tokens", paths)
	}
	if _, ok := paths["/forgot-password"]; !ok {
		t.Errorf("links %v: the notice links to /forgot-password", paths)
	}
	if _, ok := paths["/account"]; !ok {
		t.Errorf("links %v: the two-factor notices link to /account", paths)
	}
	// The mailed tokens are live, stored only as hashes.
	for purpose, tok := range map[string]string{auth.PurposeReset: paths["/reset-password"], auth.PurposeVerify: paths["/verify-email"]} {
		ot, err := st.DB.PeekToken(ctx, auth.HashToken(tok), purpose, time.Now())
		if err != nil || ot.UserID != ada.ID || ot.Email != ada.Email {
			t.Errorf("%s token: %+v %v", purpose, ot, err)
		}
	}
	// A verify job for an address that is already verified sends nothing.
	if err := st.DB.SetEmailVerified(ctx, ada.ID, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	st.enqueue(t, auth.MailVerify, ada.Email, ada.ID)
	if !w.RunOnce(ctx) || len(rec.msgs) != 5 {
		t.Errorf("a verification mail went to a verified address")
	}
}

// A shutdown (ctx ends) while the server is still answering DATA: the send
// completes, and the job is recorded as done, not left leased to be sent
// again (with a new token voiding the delivered one) after a restart.
func TestWorkerShutdownMidSendRecordsDelivery(t *testing.T) {
	srv := startTestSMTPServer(t, testSMTPOptions{DataDelay: 300 * time.Millisecond})
	st := newTestStore(t)
	u := st.createUser(t, "ada@example.com")
	w := newWorker(t, st.DB, newSMTP(t, srv.URL()), "http://gatehouse.test")
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		w.Run(ctx)
	}()
	id := st.enqueue(t, auth.MailReset, u.Email, "")
	w.Notify()
	waitFor(t, 10*time.Second, "the server to start receiving", func() bool { return srv.DataStarted() == 1 })
	cancel()
	<-ran
	if len(srv.Messages()) != 1 {
		t.Skip("the client gave up on cancellation; nothing was delivered")
	}
	j := st.job(t, id)
	if !j.Done || j.Failed {
		t.Fatalf("delivered job left %+v: it would be sent again after a restart", j)
	}
	// A restarted worker has nothing to send.
	w2 := newWorker(t, st.DB, newSMTP(t, srv.URL()), "http://gatehouse.test")
	if w2.RunOnce(context.Background()) {
		t.Errorf("a delivered job was processed again")
	}
}
