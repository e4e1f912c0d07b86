package mail_test

import (
	"errors"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testSMTPServer is a real SMTP server (emersion/go-smtp) listening on
// 127.0.0.1 with an in-memory backend: it keeps every message it accepts
// and can be told to require PLAIN auth, to refuse mail with 550, or to
// answer DATA slowly.
type testSMTPServer struct {
	Host string
	Port int

	srv      *smtp.Server
	ln       net.Listener
	closed   chan struct{}
	stopOnce sync.Once
	opts     testSMTPOptions

	mu          sync.Mutex
	messages    []*receivedMail
	auths       []plainCredentials
	rcptTries   int
	dataStarted int
}

// testSMTPOptions configures a testSMTPServer.
type testSMTPOptions struct {
	// User and Password, when User is set, make the server offer AUTH PLAIN
	// (without TLS: AllowInsecureAuth) and refuse MAIL before it.
	User, Password string
	RejectRcpt     bool          // 550 to every RCPT TO
	RejectData     bool          // 550 after DATA
	DataDelay      time.Duration // sleep after reading DATA, before answering
	// ListenHost is the address to listen on (default 127.0.0.1); when it
	// cannot be bound, startTestSMTPServer returns nil.
	ListenHost string
}

// receivedMail is one message the server accepted.
type receivedMail struct {
	From       string
	To         []string
	Data       []byte
	AuthUser   string
	ReceivedAt time.Time
}

type plainCredentials struct{ Identity, Username, Password string }

// startTestSMTPServer starts a test SMTP server; it is closed when the test
// ends.
func startTestSMTPServer(t testing.TB, opts testSMTPOptions) *testSMTPServer {
	t.Helper()
	s := &testSMTPServer{closed: make(chan struct{}), opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &testSMTPSession{s: s}, nil
	}))
	srv.Domain = "smtp.test"
	srv.AllowInsecureAuth = true // PLAIN over plaintext on loopback
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	host := opts.ListenHost
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		if opts.ListenHost != "" {
			return nil
		}
		t.Fatal(err)
	}
	s.srv, s.ln = srv, ln
	s.Host, s.Port = host, ln.Addr().(*net.TCPAddr).Port
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-served
	})
	return s
}

// Stop closes the server and every connection to it.
func (s *testSMTPServer) Stop() {
	s.stopOnce.Do(func() {
		close(s.closed)
		_ = s.srv.Close()
		// Close before Serve registered the listener does not close it.
		_ = s.ln.Close()
	})
}

// URL is smtp://[user:pass@]127.0.0.1:port.
func (s *testSMTPServer) URL() string {
	return "smtp://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// Messages returns the messages accepted so far.
func (s *testSMTPServer) Messages() []*receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*receivedMail(nil), s.messages...)
}

// Auths returns the PLAIN credentials the server was given.
func (s *testSMTPServer) Auths() []plainCredentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]plainCredentials(nil), s.auths...)
}

// RcptTries is how many RCPT TO commands the server saw.
func (s *testSMTPServer) RcptTries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcptTries
}

// DataStarted is how many DATA bodies the server began to receive.
func (s *testSMTPServer) DataStarted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataStarted
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitMessages waits until at least n messages were accepted.
func (s *testSMTPServer) WaitMessages(t testing.TB, n int, timeout time.Duration) []*receivedMail {
	t.Helper()
	waitFor(t, timeout, strconv.Itoa(n)+" message(s) at the test SMTP server", func() bool { return len(s.Messages()) >= n })
	return s.Messages()
}

var errRefused = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "refused by the test server"}

type testSMTPSession struct {
	s        *testSMTPServer
	authUser string
	from     string
	to       []string
}

func (ss *testSMTPSession) AuthMechanisms() []string {
	if ss.s.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *testSMTPSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.User == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		ss.s.mu.Lock()
		ss.s.auths = append(ss.s.auths, plainCredentials{identity, username, password})
		ss.s.mu.Unlock()
		if username != ss.s.opts.User || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *testSMTPSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.User != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *testSMTPSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	ss.s.rcptTries++
	ss.s.mu.Unlock()
	if ss.s.opts.RejectRcpt {
		return errRefused
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *testSMTPSession) Data(r io.Reader) error {
	ss.s.mu.Lock()
	ss.s.dataStarted++
	ss.s.mu.Unlock()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.opts.RejectData {
		return errRefused
	}
	if d := ss.s.opts.DataDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-ss.s.closed:
			return errors.New("test SMTP server closed")
		}
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, &receivedMail{From: ss.from, To: append([]string(nil), ss.to...), Data: b, AuthUser: ss.authUser, ReceivedAt: time.Now()})
	ss.s.mu.Unlock()
	return nil
}

func (ss *testSMTPSession) Reset() { ss.from, ss.to = "", nil }

func (ss *testSMTPSession) Logout() error { return nil }
