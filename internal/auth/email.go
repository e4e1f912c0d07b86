package auth

import (
	"context"
	"errors"
	"time"
)

// Purposes of one-time tokens.
const (
	PurposeReset  = "reset"
	PurposeVerify = "verify"
)

// Lifetimes of one-time tokens (SPEC §5).
const (
	ResetTokenTTL  = time.Hour
	VerifyTokenTTL = 24 * time.Hour
)

// OneTimeToken is a single-use token bound to one user and one purpose.
// Only its SHA-256 is stored.
type OneTimeToken struct {
	Hash      string
	UserID    string
	Purpose   string
	Email     string // the address it was sent to (verification binds to it)
	CreatedAt time.Time
	ExpiresAt time.Time
}

// TokenStore persists one-time tokens (the database, or Redis).
type TokenStore interface {
	// PutToken stores t and deletes every other token of the same user and
	// purpose (a newer token supersedes the older ones).
	PutToken(ctx context.Context, t *OneTimeToken) error
	// PeekToken returns a live token without using it; ErrNotFound.
	PeekToken(ctx context.Context, hash, purpose string, now time.Time) (*OneTimeToken, error)
	// ConsumeToken uses a live token atomically: of concurrent calls for
	// one token exactly one succeeds; the others get ErrNotFound.
	ConsumeToken(ctx context.Context, hash, purpose string, now time.Time) (*OneTimeToken, error)
}

// Kinds of mail jobs.
const (
	MailReset  = "reset"  // a reset link for To, if an account has that email
	MailVerify = "verify" // a verification link for UserID
	MailNotice = "notice" // tell the owner of To that someone tried to register it
	// SPEC §13: a recovery code of UserID was used; an admin reset the
	// second factors of UserID.
	MailRecoveryUsed = "mfa_recovery_used"
	MailMFAReset     = "mfa_reset"
	// SPEC §16: a webhook endpoint was disabled after five days of
	// failures (to each administrator, UserID).
	MailWebhookDisabled = "webhook_disabled"
	// SPEC §17: an administrator's test mail to To (any address; no
	// account is looked up and the mail holds no token).
	MailTest = "test"
)

// MailJob is a queued mail. Jobs name what to send, not the finished
// message: the worker looks the account up and makes the token, so the
// request that queued it does the same work whether or not the account
// exists (no enumeration by timing), and no secret sits in the queue.
type MailJob struct {
	ID        string
	Kind      string
	To        string
	UserID    string
	CreatedAt time.Time
	Attempts  int
}

// MailQueue is the durable mail queue.
type MailQueue interface {
	Enqueue(ctx context.Context, j *MailJob) error
}

// ErrInvalidOneTimeToken is the one answer for an invalid, used, superseded
// or expired reset or verification token.
var ErrInvalidOneTimeToken = &Error{Code: EINVALID, Field: "token", Message: "the token is invalid, used or expired"}

func (s *Service) enqueue(ctx context.Context, kind, to, userID string) error {
	return s.st.Mail.Enqueue(ctx, &MailJob{ID: NewID(), Kind: kind, To: to, UserID: userID, CreatedAt: s.now()})
}

// IssueToken makes a new one-time token for a user, superseding older
// ones of the same purpose. The mail worker calls it when it sends.
func (s *Service) IssueToken(ctx context.Context, u *User, purpose string) (string, error) {
	ttl := ResetTokenTTL
	if purpose == PurposeVerify {
		ttl = VerifyTokenTTL
	}
	tok := newSessionToken()
	now := s.now()
	if err := s.st.Tokens.PutToken(ctx, &OneTimeToken{Hash: HashToken(tok), UserID: u.ID, Purpose: purpose, Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return "", err
	}
	return tok, nil
}

// RequestPasswordReset queues a reset mail for email. It answers the same,
// doing the same work, whether or not the account exists.
func (s *Service) RequestPasswordReset(ctx context.Context, rawEmail string, m Meta) error {
	if err := s.limitIP(ctx, "password_forgot", m); err != nil {
		return err
	}
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return err
	}
	if err := s.limitAccount(ctx, "password_forgot", email, m); err != nil {
		return err
	}
	return s.enqueue(ctx, MailReset, email, "")
}

// ResetPassword sets a new password with a mailed reset token. It revokes
// every session and refresh token of the user, marks the email verified
// (the mail proved ownership) and lifts a lockout.
func (s *Service) ResetPassword(ctx context.Context, tok, next string, m Meta) error {
	if err := s.limitIP(ctx, "password_reset", m); err != nil {
		return err
	}
	if tok == "" || len(tok) > 128 {
		return ErrInvalidOneTimeToken
	}
	hash := HashToken(tok)
	now := s.now()
	t, err := s.st.Tokens.PeekToken(ctx, hash, PurposeReset, now)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidOneTimeToken
	}
	if err != nil {
		return err
	}
	u, err := s.st.Users.UserByID(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidOneTimeToken
	}
	if err != nil {
		return err
	}
	// Check and hash the new password before using the token, so a weak
	// password or a busy server does not burn it.
	if err := s.policy.Check(next, u.Email); err != nil {
		return policyError(err)
	}
	ph, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return hashError(err)
	}
	if _, err := s.st.Tokens.ConsumeToken(ctx, hash, PurposeReset, s.now()); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrInvalidOneTimeToken
		}
		return err
	}
	defer s.users.forget(u.ID)
	if err := s.st.Users.ChangePassword(ctx, u.ID, ph, s.now()); err != nil {
		return err
	}
	if err := s.st.Users.SetEmailVerified(ctx, u.ID, true, s.now()); err != nil {
		return err
	}
	if err := s.st.Sessions.DeleteUserSessions(ctx, u.ID, ""); err != nil {
		return err
	}
	// The reset proves who owns the address. On an account that was never
	// verified, everything set up before that proof goes (a pre-registered
	// account must not keep an intruder's passkey or key); otherwise only
	// identities whose provider never vouched for the address.
	if !u.EmailVerified {
		if err := s.dropUnproven(ctx, u.ID); err != nil {
			return err
		}
	} else {
		if err := s.st.Identities.DeleteUserIdentities(ctx, u.ID, true); err != nil {
			return err
		}
	}
	if err := s.Unlock(ctx, u.Email); err != nil {
		return err
	}
	s.audit(ctx, EventPasswordReset, u.ID, m, nil)
	return nil
}

// VerifyEmail marks an email verified with a mailed token, if the account
// still has the address the token was sent to. callerID is the account of
// the credential the request came with (its cookie session or one of its
// access tokens), empty without one.
//
// Verifying proves the mailbox, not the registrant (SPEC §18 H2): without a
// credential of that same account, everything the account had — sessions,
// refresh families, passkeys, API keys, linked identities — is removed and
// the account is audited as reclaimed; the password stays, and a later
// password reset ends it too. Whoever registered someone else's address
// therefore loses access once the owner verifies and resets.
func (s *Service) VerifyEmail(ctx context.Context, tok, callerID string, m Meta) error {
	if tok == "" || len(tok) > 128 {
		return ErrInvalidOneTimeToken
	}
	t, err := s.st.Tokens.ConsumeToken(ctx, HashToken(tok), PurposeVerify, s.now())
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidOneTimeToken
	}
	if err != nil {
		return err
	}
	u, err := s.st.Users.UserByID(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) || (err == nil && u.Email != t.Email) {
		return ErrInvalidOneTimeToken
	}
	if err != nil {
		return err
	}
	defer s.users.forget(u.ID)
	if callerID != u.ID {
		err = s.reclaim(ctx, u, m, "email_verification", true)
	} else {
		err = s.st.Users.SetEmailVerified(ctx, u.ID, true, s.now())
	}
	if err != nil {
		return err
	}
	s.audit(ctx, EventEmailVerified, u.ID, m, nil)
	return nil
}

// ResendVerification queues a new verification mail for the caller.
func (s *Service) ResendVerification(ctx context.Context, userID string, m Meta) error {
	if err := s.limitIP(ctx, "verify_resend", m); err != nil {
		return err
	}
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.limitAccount(ctx, "verify_resend", u.Email, m); err != nil {
		return err
	}
	if u.EmailVerified {
		return nil
	}
	return s.enqueue(ctx, MailVerify, u.Email, u.ID)
}
