// Package mail sends Gatehouse's mail: it renders the plain-text and HTML
// templates, delivers through SMTP (wneessen/go-mail: STARTTLS when the
// server offers it, implicit TLS for smtps://, optional auth) or, with no
// SMTP configured, writes .eml files to an outbox folder, and runs the
// worker that drains the durable queue (auth.MailJob rows) with retries and
// backoff, so that no HTTP request ever waits on a mail server.
package mail

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	texttemplate "text/template"
	"time"

	gomail "github.com/wneessen/go-mail"

	"gatehouse/internal/auth"
)

// Message is one rendered mail.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Sender delivers a message.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

//go:embed templates
var templateFS embed.FS

// Templates renders the mails.
type Templates struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// LoadTemplates parses the embedded templates.
func LoadTemplates() (*Templates, error) {
	t, err := texttemplate.ParseFS(templateFS, "templates/*.txt")
	if err != nil {
		return nil, err
	}
	h, err := htmltemplate.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &Templates{text: t, html: h}, nil
}

// Data fills a template.
type Data struct {
	Product string
	Email   string
	Link    string
}

// Render produces the message of one kind (auth.MailReset, …).
func (t *Templates) Render(kind, to, subject string, d Data) (*Message, error) {
	var tb, hb bytes.Buffer
	if err := t.text.ExecuteTemplate(&tb, kind+".txt", d); err != nil {
		return nil, err
	}
	if err := t.html.ExecuteTemplate(&hb, kind+".html", d); err != nil {
		return nil, err
	}
	return &Message{To: to, Subject: subject, Text: tb.String(), HTML: hb.String()}, nil
}

func build(from string, m *Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

// SMTP delivers through an SMTP server.
type SMTP struct {
	from string
	opts []gomail.Option
	host string
}

// NewSMTP configures delivery from a smtp:// or smtps:// URL
// (smtp://user:pass@host:port). smtp:// uses STARTTLS when the server
// offers it; smtps:// uses implicit TLS.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("mail: invalid SMTP URL")
	}
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portText = u.Host, ""
	}
	opts := []gomail.Option{gomail.WithTimeout(15 * time.Second)}
	switch u.Scheme {
	case "smtp":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
		if portText == "" {
			portText = "587"
		}
	case "smtps":
		opts = append(opts, gomail.WithSSL())
		if portText == "" {
			portText = "465"
		}
	default:
		return nil, errors.New("mail: SMTP URL must start with smtp:// or smtps://")
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, errors.New("mail: invalid SMTP port")
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil && u.User.Username() != "" {
		pw, _ := u.User.Password()
		authOpt := gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover)
		if host == "localhost" || host == "127.0.0.1" || host == "::1" {
			// Auto-discovery never picks PLAIN or LOGIN without TLS, so a
			// local relay without STARTTLS could never be authenticated
			// to. These mechanisms (not their -NOENC forms) still refuse a
			// plaintext connection to anything but these loopback names.
			authOpt = gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin)
		}
		opts = append(opts, authOpt, gomail.WithUsername(u.User.Username()), gomail.WithPassword(pw))
	}
	return &SMTP{from: from, opts: opts, host: host}, nil
}

// Send delivers m.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	msg, err := build(s.from, m)
	if err != nil {
		return err
	}
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: sending through %s: %w", s.host, err)
	}
	return nil
}

// Outbox writes each message as an .eml file in a folder (development:
// no SMTP configured).
type Outbox struct {
	Dir  string
	From string
	Log  *slog.Logger // may be nil
}

// Send writes m to a new file (mode 0600: it holds a live link).
func (o *Outbox) Send(_ context.Context, m *Message) error {
	msg, err := build(o.From, m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	name := filepath.Join(o.Dir, time.Now().UTC().Format("20060102T150405.000000000")+"-"+auth.NewID()[:8]+".eml")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if _, err := msg.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if o.Log != nil {
		o.Log.Info("mail written to the outbox (no SMTP configured)", "path", name, "subject", m.Subject)
	}
	return nil
}
