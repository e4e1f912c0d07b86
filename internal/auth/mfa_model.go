package auth

import (
	"context"
	"strings"
	"time"
)

// Assurance levels (SPEC §13, NIST SP 800-63B): what the "acr" claim says.
const (
	ACR1 = "aal1" // one factor
	ACR2 = "aal2" // two factors, or a passkey with user verification
)

// More authentication methods (RFC 8176).
const (
	AMROTP = "otp" // a one-time code (TOTP or a recovery code)
	AMRMFA = "mfa" // more than one factor
)

// JoinAMR and SplitAMR are how stores keep an amr list: space-separated.
func JoinAMR(amr []string) string { return strings.Join(amr, " ") }

// SplitAMR is the inverse of JoinAMR.
func SplitAMR(s string) []string { return strings.Fields(s) }

// TOTPAuthenticator is a user's TOTP secret: pending until confirmed (then
// ExpiresAt says when the enrolment lapses), confirmed afterwards (one per
// user). Sealed is the secret under AES-256-GCM with a key derived from the
// root secret, AAD = ID and UserID; it is never stored or logged in clear.
type TOTPAuthenticator struct {
	ID          string
	UserID      string
	Sealed      []byte
	Confirmed   bool
	CreatedAt   time.Time
	ExpiresAt   time.Time  // pending only: when the enrolment lapses
	ConfirmedAt *time.Time // confirmed only
	// LastStep is the last RFC 6238 time step used (confirmation or a
	// sign-in); a code is accepted only for a later step.
	LastStep   int64
	LastUsedAt *time.Time
}

// RecoveryCodeSet describes a user's recovery codes: never the codes.
type RecoveryCodeSet struct {
	Total     int
	Remaining int
	CreatedAt time.Time
}

// MFAChallenge is a sign-in whose first factor is proven and whose second
// is awaited (the mfa_token). Only the SHA-256 of the token is stored.
type MFAChallenge struct {
	Hash     string
	UserID   string
	ClientID string
	Scope    string   // the requested scope, space-separated
	AMR      []string // the first factor's methods
	AuthTime time.Time
	Finish   Finish
	// EnrolOnly marks a challenge for a user who must have a second factor
	// and has none: its token only enrols one (SPEC §13).
	EnrolOnly bool
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
}

// MFARedemption is the write that finishes a second factor, made in one
// transaction: the challenge (when there is one) is consumed, the factor is
// used — TOTP by compare-and-set of its last step, a recovery code by
// deleting it — and the refresh family and session, when given, are
// created. Nothing is written when any part fails.
type MFARedemption struct {
	UserID string
	Now    time.Time
	// ChallengeHash is the challenge to consume ("" for a step-up). The
	// challenge must be live at Now, else ErrNotFound.
	ChallengeHash string
	// Exactly one factor, or none when the factor was proven elsewhere (a
	// passkey assertion, a TOTP confirmation).
	TOTPID       string // with Step: UPDATE … SET last_step = Step WHERE id = TOTPID AND last_step < Step; 0 rows ⇒ ErrMFAReplay
	Step         int64
	RecoveryHash string // DELETE … RETURNING; 0 rows ⇒ ErrNotFound
	// Created in the same transaction when set.
	Family  *RefreshFamily
	First   *RefreshToken
	Session *Session
	// Audit events appended in the same transaction.
	Audit []*AuditEvent
	// ClearLockout, when set, is the lockout key whose failure count the
	// same transaction clears (the store is also the LockoutStore).
	ClearLockout string
}

// MFAStore persists second factors and sign-in challenges.
type MFAStore interface {
	// PutPendingTOTP stores a pending enrolment, replacing the user's
	// previous pending one (a confirmed authenticator is left alone).
	PutPendingTOTP(ctx context.Context, a *TOTPAuthenticator) error
	// PendingTOTP returns the user's pending enrolment id; ErrNotFound.
	PendingTOTP(ctx context.Context, userID, id string) (*TOTPAuthenticator, error)
	// ConfirmedTOTP returns the user's confirmed authenticator; ErrNotFound.
	ConfirmedTOTP(ctx context.Context, userID string) (*TOTPAuthenticator, error)
	// ConfirmTOTP makes the pending enrolment id the user's confirmed
	// authenticator with LastStep = step and, when recoveryHashes is not
	// nil, replaces the recovery-code set, in one transaction. ErrNotFound
	// when the enrolment is gone or expired at now; ErrTOTPExists when the
	// user has a confirmed one already.
	ConfirmTOTP(ctx context.Context, userID, id string, step int64, recoveryHashes []string, now time.Time) error
	// DeleteTOTP removes the user's authenticators, pending and confirmed,
	// and with recovery also the recovery codes; it reports whether a
	// confirmed one was removed.
	DeleteTOTP(ctx context.Context, userID string, recovery bool) (bool, error)
	// RecoveryCodes describes the user's set; ErrNotFound when none.
	RecoveryCodes(ctx context.Context, userID string) (*RecoveryCodeSet, error)
	// ReplaceRecoveryCodes replaces the whole set in one transaction.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, now time.Time) error
	// MFAEnabled reports, for each user id, whether it has a confirmed
	// TOTP authenticator (ids without one are absent or false).
	MFAEnabled(ctx context.Context, userIDs []string) (map[string]bool, error)

	CreateMFAChallenge(ctx context.Context, c *MFAChallenge) error
	// MFAChallenge returns a challenge live at now; ErrNotFound.
	MFAChallenge(ctx context.Context, hash string, now time.Time) (*MFAChallenge, error)
	// FailMFAChallenge counts one wrong attempt atomically and returns how
	// many are left of max; the challenge is deleted when none are.
	// ErrNotFound when it is gone.
	FailMFAChallenge(ctx context.Context, hash string, max int) (int, error)
	// RedeemMFA makes r in one transaction (see MFARedemption). Without a
	// session to create, its commit may skip waiting for the disk, like a
	// password login's (a power failure can roll back the last such
	// commits whole, never half of one).
	RedeemMFA(ctx context.Context, r *MFARedemption) error
	// PurgeMFA deletes challenges and pending enrolments expired before now.
	PurgeMFA(ctx context.Context, now time.Time) error
}

// ErrMFAReplay is a TOTP code whose time step was already used.
var ErrMFAReplay = &Error{Code: EINVALID, Reason: ReasonMFACodeReused, Message: "this code was used already: wait for the next code"}

// ErrTOTPExists refuses a second TOTP authenticator.
var ErrTOTPExists = &Error{Code: ECONFLICT, Message: "a TOTP authenticator is already set up: remove it first"}
