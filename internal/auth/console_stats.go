package auth

import (
	"context"
	"time"
)

// The admin console's figures and its test mail (SPEC §17).

// EventAdminMailTestSent records a test mail an administrator queued.
const EventAdminMailTestSent = "admin.mail_test.sent"

// Windows of the overview's figures.
const (
	OverviewNewUsersWindow = 7 * 24 * time.Hour // users created lately
	OverviewSignInWindow   = 24 * time.Hour     // sign-ins (login.succeeded, login.failed)
	OverviewFailureWindow  = 7 * 24 * time.Hour // mail and webhook failures
)

// AdminStatsQuery asks for the overview's counts at Now.
type AdminStatsQuery struct {
	Now time.Time
	// Users created at or after NewSince count as new.
	NewSince time.Time
	// Sign-ins (audit events login.succeeded and login.failed) at or
	// after SignInsSince.
	SignInsSince time.Time
	// Lockouts begun (audit events account.locked) at or after LocksSince.
	LocksSince time.Time
	// Mail jobs given up and webhook deliveries failed at or after
	// FailuresSince.
	FailuresSince time.Time
}

// AdminStats are the overview's counts, each exact.
type AdminStats struct {
	Users           int64 // every account
	UsersNew        int64 // created at or after NewSince
	UsersUnverified int64 // email not verified
	UsersDisabled   int64
	UsersTOTP       int64 // with a confirmed TOTP authenticator

	SignInsSucceeded int64 // login.succeeded since SignInsSince
	SignInsFailed    int64 // login.failed since SignInsSince

	// LockedNow counts the lockouts the store keeps (as a LockoutStore)
	// that last beyond Now — keys of sign-in names, whether or not an
	// account has the name. It means nothing when lockouts are kept
	// elsewhere (Redis).
	LockedNow int64
	// LocksBegun counts account.locked events since LocksSince, wherever
	// the lockouts are kept.
	LocksBegun int64

	MailQueued int64 // mail jobs not done yet (due or retrying)
	MailFailed int64 // mail jobs given up since FailuresSince

	WebhooksFailed           int64 // deliveries failed since FailuresSince
	WebhookEndpointsDisabled int64 // endpoints disabled now
}

// AdminStatsStore counts what the console's overview shows. Every count
// must be served by an index: the overview stays fast with hundreds of
// thousands of users and millions of audit events.
type AdminStatsStore interface {
	AdminStats(ctx context.Context, q AdminStatsQuery) (*AdminStats, error)
}

// AdminOverview is what the console's overview shows of accounts,
// sign-ins, lockouts, mail and webhooks.
type AdminOverview struct {
	AdminStats
	At time.Time
	// NewUsersWindow, SignInWindow and FailureWindow are the periods of
	// UsersNew, the sign-ins and the failures.
	NewUsersWindow, SignInWindow, FailureWindow time.Duration
	// Lockout says how lockouts are counted: LockoutsCounted (LockedNow
	// is exact), LockoutsElsewhere (kept in Redis, which is not scanned:
	// only LocksBegun within LockoutWindow is known) or LockoutsOff.
	Lockout       string
	LockoutWindow time.Duration // the lockout duration
}

// How AdminOverview knows the lockouts (AdminOverview.Lockout).
const (
	LockoutsCounted   = "counted"
	LockoutsElsewhere = "elsewhere"
	LockoutsOff       = "off"
)

// AdminOverview counts accounts, sign-ins, lockouts, mail and webhook
// failures for the admin console (SPEC §17), in a few indexed queries.
func (s *Service) AdminOverview(ctx context.Context) (*AdminOverview, error) {
	now := s.now()
	o := &AdminOverview{At: now, NewUsersWindow: OverviewNewUsersWindow, SignInWindow: OverviewSignInWindow,
		FailureWindow: OverviewFailureWindow, LockoutWindow: s.limits.LockoutDuration}
	switch {
	case s.limits.Off || s.limits.LockoutThreshold <= 0:
		o.Lockout = LockoutsOff
	case any(s.st.Lockout) == any(s.st.Stats):
		// The store that counts is the one that keeps the lockouts.
		o.Lockout = LockoutsCounted
	default:
		o.Lockout = LockoutsElsewhere
	}
	st, err := s.st.Stats.AdminStats(ctx, AdminStatsQuery{Now: now, NewSince: now.Add(-OverviewNewUsersWindow),
		SignInsSince: now.Add(-OverviewSignInWindow), LocksSince: now.Add(-s.limits.LockoutDuration),
		FailuresSince: now.Add(-OverviewFailureWindow)})
	if err != nil {
		return nil, err
	}
	o.AdminStats = *st
	return o, nil
}

// SendTestMail queues a test mail (SPEC §17, "send a test mail") to the
// address an administrator chose — any address: the mail carries no link
// or token of an account — and audits it as admin.mail_test.sent about the
// administrator (m.Actor). It returns the normalised address.
func (s *Service) SendTestMail(ctx context.Context, to string, m Meta) (string, error) {
	email, err := NormalizeEmail(to)
	if err != nil {
		return "", err
	}
	if err := s.enqueue(ctx, MailTest, email, m.Actor); err != nil {
		return "", err
	}
	s.audit(ctx, EventAdminMailTestSent, m.Actor, m, map[string]any{"to": email})
	return email, nil
}
