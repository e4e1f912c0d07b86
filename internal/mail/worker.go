package mail

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"gatehouse/internal/auth"
)

// JobStore is what the worker needs of the durable queue.
type JobStore interface {
	ClaimMailJob(ctx context.Context, now time.Time, lease time.Duration) (*auth.MailJob, error)
	FinishMailJob(ctx context.Context, id string, now time.Time) error
	RetryMailJob(ctx context.Context, id string, next time.Time, errText string) error
	FailMailJob(ctx context.Context, id string, now time.Time, errText string) error
}

// Accounts is what the worker needs of the domain.
type Accounts interface {
	UserByEmail(ctx context.Context, email string) (*auth.User, error)
	UserByID(ctx context.Context, id string) (*auth.User, error)
	IssueToken(ctx context.Context, u *auth.User, purpose string) (string, error)
	AppendAudit(ctx context.Context, e *auth.AuditEvent) error
}

// Worker drains the mail queue.
type Worker struct {
	Jobs      JobStore
	Accounts  Accounts
	Sender    Sender
	Templates *Templates
	PublicURL string // links are built from it, never from a request
	Product   string
	Log       *slog.Logger
	// MaxAttempts bounds delivery attempts before the job is given up
	// (and audited); backoff doubles from 2 s up to 10 minutes.
	MaxAttempts int
	// Poll is how often the queue is checked when nobody calls Notify.
	Poll time.Duration

	wake chan struct{}
}

// lease is how long a claimed job is reserved for one attempt; a worker
// that dies mid-send releases it by letting it expire.
const lease = 2 * time.Minute

// Notify wakes the worker: a job was just queued.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Init prepares the worker before Run or Notify are used.
func (w *Worker) Init() {
	w.wake = make(chan struct{}, 1)
	if w.MaxAttempts == 0 {
		w.MaxAttempts = 8
	}
	if w.Poll == 0 {
		w.Poll = time.Second
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
}

// Run processes jobs until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		for w.RunOnce(ctx) {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// RunOnce claims and processes one due job; it reports whether there was one.
func (w *Worker) RunOnce(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	j, err := w.Jobs.ClaimMailJob(ctx, time.Now(), lease)
	if errors.Is(err, auth.ErrNotFound) {
		return false
	}
	if err != nil {
		if ctx.Err() == nil {
			w.Log.Warn("mail queue: claim", "err", err)
		}
		return false
	}
	err = w.process(ctx, j)
	now := time.Now()
	// Record the outcome even when ctx ended during the send (a shutdown):
	// a delivered job left unfinished would be sent again after its lease,
	// with a new token that voids the one just delivered.
	bctx := context.WithoutCancel(ctx)
	switch {
	case err == nil:
		if err := w.Jobs.FinishMailJob(bctx, j.ID, now); err != nil {
			w.Log.Warn("mail queue: finish", "job", j.ID, "err", err)
		}
	case j.Attempts >= w.MaxAttempts:
		w.Log.Error("mail: giving up", "job", j.ID, "kind", j.Kind, "attempts", j.Attempts, "err", err)
		_ = w.Jobs.FailMailJob(bctx, j.ID, now, err.Error())
		_ = w.Accounts.AppendAudit(bctx, &auth.AuditEvent{ID: auth.NewID(), Type: auth.EventMailFailed, At: now, UserID: j.UserID,
			Details: map[string]any{"kind": j.Kind, "attempts": j.Attempts, "error": err.Error()}})
	default:
		backoff := min(time.Duration(1<<min(j.Attempts, 20))*time.Second, 10*time.Minute)
		w.Log.Warn("mail: delivery failed, will retry", "job", j.ID, "kind", j.Kind, "attempt", j.Attempts, "in", backoff, "err", err)
		_ = w.Jobs.RetryMailJob(bctx, j.ID, now.Add(backoff), err.Error())
	}
	return true
}

func (w *Worker) link(path, tok string) string {
	return w.PublicURL + path + "?" + url.Values{"token": {tok}}.Encode()
}

// process renders and sends one job. A reset for an address with no
// account sends nothing (and is done). A test mail goes to its address as
// it is, account or not.
func (w *Worker) process(ctx context.Context, j *auth.MailJob) error {
	var (
		u   *auth.User
		err error
	)
	switch j.Kind {
	case auth.MailTest:
		// An administrator's test (SPEC §17): to j.To as typed; no
		// account is looked up and the mail holds no token.
	case auth.MailReset, auth.MailNotice:
		u, err = w.Accounts.UserByEmail(ctx, j.To)
	case auth.MailVerify, auth.MailRecoveryUsed, auth.MailMFAReset, auth.MailWebhookDisabled:
		u, err = w.Accounts.UserByID(ctx, j.UserID)
	default:
		w.Log.Error("mail: unknown job kind", "job", j.ID, "kind", j.Kind)
		return nil
	}
	if errors.Is(err, auth.ErrNotFound) {
		return nil // no such account (any more): nothing to send
	}
	if err != nil {
		return err
	}
	var (
		subject, link string
	)
	switch j.Kind {
	case auth.MailReset:
		tok, err := w.Accounts.IssueToken(ctx, u, auth.PurposeReset)
		if err != nil {
			return err
		}
		subject, link = "Reset your "+w.Product+" password", w.link("/reset-password", tok)
	case auth.MailVerify:
		if u.EmailVerified {
			return nil
		}
		tok, err := w.Accounts.IssueToken(ctx, u, auth.PurposeVerify)
		if err != nil {
			return err
		}
		subject, link = "Verify your email address for "+w.Product, w.link("/verify-email", tok)
	case auth.MailNotice:
		subject, link = "Someone tried to register your address at "+w.Product, w.PublicURL+"/forgot-password"
	case auth.MailRecoveryUsed:
		subject, link = "A recovery code of your "+w.Product+" account was used", w.PublicURL+"/account#two-factor"
	case auth.MailMFAReset:
		subject, link = "Two-factor authentication of your "+w.Product+" account was reset", w.PublicURL+"/account#two-factor"
	case auth.MailWebhookDisabled:
		// To an administrator: the API reference lists the endpoints
		// (GET /v1/admin/webhooks) and their delivery logs.
		subject, link = "A webhook endpoint of "+w.Product+" was disabled", w.PublicURL+"/docs/"
	case auth.MailTest:
		subject, link = "Test mail from "+w.Product, w.PublicURL+"/admin/settings"
	}
	to := j.To
	if u != nil {
		to = u.Email
	}
	m, err := w.Templates.Render(j.Kind, to, subject, Data{Product: w.Product, Email: to, Link: link})
	if err != nil {
		return err
	}
	if err := w.Sender.Send(ctx, m); err != nil {
		return err
	}
	// The log names the kind and the job, never the link or the token.
	w.Log.Info("mail sent", "job", j.ID, "kind", j.Kind)
	return nil
}
