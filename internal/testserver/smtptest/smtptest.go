// Package smtptest is a real SMTP server (emersion/go-smtp) on loopback
// with an in-memory backend, for tests: it keeps every message it accepts
// and can be told to require PLAIN auth, to refuse mail with 550, or to
// answer DATA slowly.
//
// It imports nothing of Gatehouse, so that the tests of any package
// (internal/mail's among them) can use it.
package smtptest

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

// Options configures a Server; the zero value accepts every message at
// once, without auth.
type Options struct {
	// User and Password, when User is set, make the server offer AUTH PLAIN
	// (without TLS: AllowInsecureAuth) and refuse MAIL before it.
	User, Password string
	RejectRcpt     bool          // 550 to every RCPT TO
	RejectData     bool          // 550 after DATA
	DataDelay      time.Duration // sleep after reading DATA, before answering
	// ListenHost is the address to listen on (default 127.0.0.1); when it
	// cannot be bound, Start returns nil.
	ListenHost string
}

// Message is one message the server accepted.
type Message struct {
	From       string
	To         []string
	Data       []byte
	AuthUser   string
	ReceivedAt time.Time
}

// Credentials are what a client sent with AUTH PLAIN.
type Credentials struct{ Identity, Username, Password string }

// Server is a running test SMTP server.
type Server struct {
	Host string
	Port int

	srv      *smtp.Server
	ln       net.Listener
	closed   chan struct{}
	stopOnce sync.Once
	opts     Options

	mu          sync.Mutex
	messages    []*Message
	auths       []Credentials
	rcptTries   int
	dataStarted int
}

// Start starts a test SMTP server; it is closed when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{closed: make(chan struct{}), opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
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
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		close(s.closed)
		_ = s.srv.Close()
		// Close before Serve registered the listener does not close it.
		_ = s.ln.Close()
	})
}

// URL is smtp://host:port, a GATEHOUSE_SMTP_URL without credentials.
func (s *Server) URL() string {
	return "smtp://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Message(nil), s.messages...)
}

// Auths returns the PLAIN credentials the server was given.
func (s *Server) Auths() []Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Credentials(nil), s.auths...)
}

// RcptTries is how many RCPT TO commands the server saw.
func (s *Server) RcptTries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcptTries
}

// DataStarted is how many DATA bodies the server began to receive.
func (s *Server) DataStarted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dataStarted
}

// WaitMessages waits until at least n messages were accepted and returns
// them; it fails the test after timeout.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []*Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for len(s.Messages()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %d message(s) at the test SMTP server", timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s.Messages()
}

var errRefused = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "refused by the test server"}

type session struct {
	s        *Server
	authUser string
	from     string
	to       []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.User == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		ss.s.mu.Lock()
		ss.s.auths = append(ss.s.auths, Credentials{identity, username, password})
		ss.s.mu.Unlock()
		if username != ss.s.opts.User || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.User != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	ss.s.rcptTries++
	ss.s.mu.Unlock()
	if ss.s.opts.RejectRcpt {
		return errRefused
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
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
	ss.s.messages = append(ss.s.messages, &Message{From: ss.from, To: append([]string(nil), ss.to...), Data: b, AuthUser: ss.authUser, ReceivedAt: time.Now()})
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }
