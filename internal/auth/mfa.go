package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Two-factor authentication (SPEC §13). The first factor ends in Complete
// (authn.go); when the account needs a second one, Complete stores a
// challenge and answers *MFARequired instead of a session or tokens.
// VerifyMFA finishes the challenge with a TOTP code, a recovery code or a
// passkey; the enrolment functions manage the factors; StepUp renews a
// credential's authentication time and level; RequireStepUp is the check
// the sensitive actions make.

// Audit event types of SPEC §13.
const (
	EventMFATOTPEnrolled       = "mfa.totp.enrolled"
	EventMFATOTPRemoved        = "mfa.totp.removed"
	EventMFARecoveryGenerated  = "mfa.recovery_codes.generated"
	EventMFARecoveryUsed       = "mfa.recovery_code.used"
	EventMFAChallengeSucceeded = "mfa.challenge.succeeded"
	EventMFAChallengeFailed    = "mfa.challenge.failed"
	EventMFACodeReplayed       = "mfa.code.replayed"
	EventMFAStepUp             = "mfa.step_up"
	EventMFAReset              = "mfa.reset"
)

// Second-factor methods, as mfa_methods and the metric name them.
const (
	MFAMethodTOTP     = "totp"
	MFAMethodRecovery = "recovery_code"
	MFAMethodPasskey  = "passkey"
	MFAMethodPassword = "password" // step-up of a user without a second factor
)

// GrantTypeMFA finishes a challenged sign-in at the token endpoint.
const GrantTypeMFA = "urn:gatehouse:grant-type:mfa"

// MFATokenPrefix starts every mfa_token.
const MFATokenPrefix = "ghm_"

// totpEnrolmentTTL is how long a pending TOTP enrolment lasts.
const totpEnrolmentTTL = 10 * time.Minute

// MFARequired is Complete's answer when the first factor was right and a
// second one is needed: nothing was issued; Token is the mfa_token.
type MFARequired struct {
	Token     string
	Methods   []string // never nil
	ExpiresIn int      // seconds
	// Enrol: the user must set up a second factor first (mfa_methods is
	// empty and Token works only on the enrolment routes).
	Enrol bool
}

func (e *MFARequired) Error() string { return "second factor required" }

// Reason is the problem code of the challenge.
func (e *MFARequired) Reason() string {
	if e.Enrol {
		return ReasonMFAEnrollmentRequired
	}
	return ReasonMFARequired
}

// ErrMFAChallenge is the one answer for an unknown, expired, used or
// exhausted mfa_token.
var ErrMFAChallenge = &Error{Code: EINVALID, Field: "mfa_token", Message: "invalid or expired MFA challenge"}

// ErrStepUpRequired asks for a recent (and, with MFA, aal2) sign-in.
var ErrStepUpRequired = &Error{Code: EUNAUTHORIZED, Reason: ReasonStepUpRequired,
	Message: "this action needs a recent sign-in: confirm it with POST /v1/mfa/step-up and retry"}

func wrongCode(left int) *Error {
	return &Error{Code: EINVALID, Reason: ReasonMFAInvalidCode, Message: "invalid code", AttemptsRemaining: &left}
}

// assurance is how a sign-in was made.
type assurance struct {
	acr string
	amr []string
	at  time.Time
}

// assess turns a sign-in's methods into its level: two factors, or a
// passkey with user verification while GATEHOUSE_PASSKEY_IS_MFA holds.
func (s *Service) assess(methods []string, at time.Time) assurance {
	has := func(m string) bool { return slices.Contains(methods, m) }
	first := has(AMRPassword) || has(AMRFederated)
	two := has(AMROTP) && (first || has(AMRPasskey)) ||
		has(AMRPasskey) && first ||
		has(AMRPasskey) && has(AMRUser) && s.cfg.MFA.PasskeyIsMFA
	a := assurance{acr: ACR1, amr: slices.Clone(methods), at: at}
	if two {
		a.acr = ACR2
		if !has(AMRMFA) {
			a.amr = append(a.amr, AMRMFA)
		}
	}
	return a
}

// mfaRequiredFor reports whether u holds a role of
// GATEHOUSE_MFA_REQUIRED_ROLES.
func (s *Service) mfaRequiredFor(u *User) bool {
	for _, r := range s.cfg.MFA.RequiredRoles {
		if u.HasRole(r) {
			return true
		}
	}
	return false
}

// confirmedTOTP returns u's confirmed authenticator or nil.
func (s *Service) confirmedTOTP(ctx context.Context, userID string) (*TOTPAuthenticator, error) {
	a, err := s.st.MFA.ConfirmedTOTP(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return a, err
}

// challenge decides whether a finished first factor needs a second one and,
// when it does, stores the challenge and returns *MFARequired; nil when
// the sign-in may finish.
func (s *Service) challenge(ctx context.Context, a *Authentication) error {
	u := a.User
	t, err := s.confirmedTOTP(ctx, u.ID)
	if err != nil {
		return err
	}
	required := s.mfaRequiredFor(u)
	if t == nil && !required {
		return nil
	}
	methods, err := s.secondFactors(ctx, u.ID, t)
	if err != nil {
		return err
	}
	enrol := len(methods) == 0 || (t == nil && !slices.Contains(methods, MFAMethodPasskey))
	if enrol {
		methods = []string{}
	}
	tok := MFATokenPrefix + newSessionToken()
	now := s.now()
	ch := &MFAChallenge{Hash: HashToken(tok), UserID: u.ID, ClientID: a.ClientID, Scope: strings.Join(a.Scope, " "),
		AMR: a.Methods, AuthTime: a.Time, Finish: a.Finish, EnrolOnly: enrol, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.MFA.ChallengeTTL)}
	if err := s.st.MFA.CreateMFAChallenge(ctx, ch); err != nil {
		return err
	}
	return &MFARequired{Token: tok, Methods: methods, ExpiresIn: int(s.cfg.MFA.ChallengeTTL / time.Second), Enrol: enrol}
}

// base32NoPad decodes an unpadded upper-case base32 secret.
func base32NoPad(s string) ([]byte, error) {
	return base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(s, "="))
}

// secondFactors lists the methods that can finish a challenge of the user
// whose confirmed authenticator is t (nil: none).
func (s *Service) secondFactors(ctx context.Context, userID string, t *TOTPAuthenticator) ([]string, error) {
	methods := []string{}
	if t != nil {
		methods = append(methods, MFAMethodTOTP)
	}
	if rc, err := s.st.MFA.RecoveryCodes(ctx, userID); err == nil && rc.Remaining > 0 {
		methods = append(methods, MFAMethodRecovery)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	keys, err := s.st.Passkeys.ListPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		methods = append(methods, MFAMethodPasskey)
	}
	return methods, nil
}

// ChallengeMethods describes a live challenge for the hosted second step:
// the methods that can finish it, or enrol for an enrolment-only one.
func (s *Service) ChallengeMethods(ctx context.Context, tok string) (methods []string, enrol bool, err error) {
	ch, err := s.liveChallenge(ctx, tok)
	if err != nil {
		return nil, false, err
	}
	if ch.EnrolOnly {
		return []string{}, true, nil
	}
	t, err := s.confirmedTOTP(ctx, ch.UserID)
	if err != nil {
		return nil, false, err
	}
	methods, err = s.secondFactors(ctx, ch.UserID, t)
	return methods, false, err
}

// liveChallenge reads the challenge of an mfa_token.
func (s *Service) liveChallenge(ctx context.Context, tok string) (*MFAChallenge, error) {
	if !strings.HasPrefix(tok, MFATokenPrefix) || len(tok) > 128 {
		return nil, ErrMFAChallenge
	}
	return s.challengeByHash(ctx, HashToken(tok))
}

// MFAChallengeHash is how a passkey ceremony refers to the challenge it
// finishes without keeping the token.
func MFAChallengeHash(tok string) string { return HashToken(tok) }

func (s *Service) challengeByHash(ctx context.Context, hash string) (*MFAChallenge, error) {
	if len(hash) != 64 {
		return nil, ErrMFAChallenge
	}
	ch, err := s.st.MFA.MFAChallenge(ctx, hash, s.now())
	if errors.Is(err, ErrNotFound) {
		return nil, ErrMFAChallenge
	}
	return ch, err
}

// SecondFactor is what finishes a challenge or a step-up: one of a TOTP
// code, a recovery code, or a passkey assertion verified by the caller
// (internal/passkey) for PasskeyUserID.
type SecondFactor struct {
	Code          string
	RecoveryCode  string
	PasskeyUserID string
	PasskeyUV     bool
	// Finish overrides how the challenge finishes (?tokens=true); zero:
	// the way the sign-in started.
	Finish Finish
}

func (f SecondFactor) method() string {
	switch {
	case f.PasskeyUserID != "":
		return MFAMethodPasskey
	case f.RecoveryCode != "":
		return MFAMethodRecovery
	case f.Code != "":
		return MFAMethodTOTP
	}
	return ""
}

var errNoFactor = &Error{Code: EINVALID, Field: "code", Message: "send a code, a recovery_code or use a passkey"}

// prepare checks a second factor as far as can be done before the
// redemption: it fills r with the TOTP step or the recovery code's hash and
// returns the methods it adds; ok is false for a code that is wrong on its
// face (not six digits, not a recovery code, no matching step).
func (s *Service) prepare(ctx context.Context, u *User, f SecondFactor, r *MFARedemption) (amr []string, ok bool, err error) {
	switch f.method() {
	case MFAMethodPasskey:
		if f.PasskeyUserID != u.ID {
			return nil, false, nil
		}
		amr = []string{AMRPasskey}
		if f.PasskeyUV {
			amr = append(amr, AMRUser)
		}
		return amr, true, nil
	case MFAMethodRecovery:
		norm, valid := normalizeRecoveryCode(f.RecoveryCode)
		if !valid {
			return nil, false, nil
		}
		r.RecoveryHash = recoveryCodeHash(s.keys.recover, norm)
		return []string{AMROTP}, true, nil
	case MFAMethodTOTP:
		t, err := s.confirmedTOTP(ctx, u.ID)
		if err != nil || t == nil {
			return nil, false, err
		}
		secret, err := s.openTOTP(t)
		if err != nil {
			return nil, false, err
		}
		step, match := matchTOTP(secret, strings.TrimSpace(f.Code), s.now(), s.cfg.MFA.TOTPSkew)
		if !match {
			return nil, false, nil
		}
		r.TOTPID, r.Step = t.ID, step
		return []string{AMROTP}, true, nil
	}
	return nil, false, errNoFactor
}

// failed records a wrong second factor: it counts against the challenge
// (when there is one) and the account's lockout, audits and measures it,
// and returns the caller's answer.
func (s *Service) failed(ctx context.Context, ch *MFAChallenge, u *User, method string, replay bool, m Meta) error {
	left := s.cfg.MFA.MaxAttempts
	if ch != nil {
		n, err := s.st.MFA.FailMFAChallenge(ctx, ch.Hash, s.cfg.MFA.MaxAttempts)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		left = n
	}
	s.mfaMetric(method, "failed")
	details := map[string]any{"method": method}
	if replay {
		details["reason"] = "replay"
		s.audit(ctx, EventMFACodeReplayed, u.ID, m, map[string]any{"method": method})
	}
	s.audit(ctx, EventMFAChallengeFailed, u.ID, m, details)
	// The attempt was counted toward the account's lockout before the
	// check (beginAttempt); only a finished sign-in clears the count.
	if replay {
		e := *ErrMFAReplay
		e.AttemptsRemaining = &left
		return &e
	}
	return wrongCode(left)
}

func (s *Service) mfaMetric(method, result string) {
	if s.metrics.MFAChallenge != nil {
		s.metrics.MFAChallenge(method, result)
	}
}

// VerifyMFA finishes a challenged sign-in with its second factor (POST
// /v1/mfa/verify, the mfa grant, /login/2fa, the passkey second step). The
// challenge, the factor and the new session or token family are written
// in one transaction: a TOTP step by compare-and-set, a recovery code by
// deletion, the challenge consumed. A wrong code counts against the
// challenge, the account's lockout and the client's address.
func (s *Service) VerifyMFA(ctx context.Context, tok string, f SecondFactor, m Meta) (*Completion, error) {
	if !strings.HasPrefix(tok, MFATokenPrefix) || len(tok) > 128 {
		if err := s.limitIP(ctx, "mfa", m); err != nil {
			return nil, err
		}
		return nil, ErrMFAChallenge
	}
	return s.VerifyMFAByHash(ctx, HashToken(tok), f, m)
}

// VerifyMFAByHash is VerifyMFA for a challenge known by its hash (a passkey
// ceremony bound to it, see MFAChallengeHash).
func (s *Service) VerifyMFAByHash(ctx context.Context, hash string, f SecondFactor, m Meta) (*Completion, error) {
	ch, err := s.challengeByHash(ctx, hash)
	var u *User
	if err == nil && !ch.EnrolOnly {
		u, err = s.activeUser(ctx, ch.UserID)
	}
	if err != nil || u == nil {
		// A dead challenge still costs the client's address a hit.
		if lerr := s.limitIP(ctx, "mfa", m); lerr != nil {
			return nil, lerr
		}
		if err == nil {
			err = ErrMFAChallenge
		}
		return nil, err
	}
	method := f.method()
	// Every attempt counts like a password attempt — the client's address,
	// the account from that address, and the account's lockout, in one
	// round trip where the store can — before the code is checked; a
	// locked account finishes no challenge. Only a finished sign-in clears
	// the lockout count.
	if err := s.countLogin(ctx, "mfa", u.Email, u.ID, m); err != nil {
		return nil, err
	}
	r := &MFARedemption{UserID: u.ID, Now: s.now(), ChallengeHash: ch.Hash}
	added, ok, err := s.prepare(ctx, u, f, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, s.failed(ctx, ch, u, method, false, m)
	}
	finish := ch.Finish
	if f.Finish != 0 {
		finish = f.Finish
	}
	asr := s.assess(append(slices.Clone(ch.AMR), added...), r.Now)
	r.Audit = append(r.Audit, s.auditEvent(EventMFAChallengeSucceeded, u.ID, m, map[string]any{"method": method}))
	if method == MFAMethodRecovery {
		r.Audit = append(r.Audit, s.auditEvent(EventMFARecoveryUsed, u.ID, m, nil))
	}
	c, err := s.redeem(ctx, u, r, finish, ch.ClientID, ParseScope(ch.Scope), asr, m)
	switch {
	case errors.Is(err, ErrMFAReplay):
		return nil, s.failed(ctx, ch, u, method, true, m)
	case errors.Is(err, ErrNotFound) && method == MFAMethodRecovery:
		// The code is not (or no longer) in the set — unless the challenge
		// itself went meanwhile.
		if _, cerr := s.challengeByHash(ctx, hash); cerr != nil {
			return nil, cerr
		}
		return nil, s.failed(ctx, ch, u, method, false, m)
	case errors.Is(err, ErrNotFound):
		return nil, ErrMFAChallenge
	case err != nil:
		return nil, err
	}
	s.mfaMetric(method, "succeeded")
	s.recoveryMail(ctx, u, method)
	return c, nil
}

// recoveryUsed audits a used recovery code and mails the owner.
func (s *Service) recoveryUsed(ctx context.Context, u *User, method string, m Meta) {
	if method != MFAMethodRecovery {
		return
	}
	s.audit(ctx, EventMFARecoveryUsed, u.ID, m, nil)
	s.recoveryMail(ctx, u, method)
}

// recoveryMail tells the owner a recovery code was used.
func (s *Service) recoveryMail(ctx context.Context, u *User, method string) {
	if method != MFAMethodRecovery {
		return
	}
	if err := s.enqueue(ctx, MailRecoveryUsed, u.Email, u.ID); err != nil {
		s.log.ErrorContext(ctx, "mail enqueue failed", "kind", MailRecoveryUsed, "err", err)
	}
}

// redeem makes r, with the session or token family of finish, in one
// transaction (the session separately when sessions live elsewhere, such
// as Redis), then signs the access token.
func (s *Service) redeem(ctx context.Context, u *User, r *MFARedemption, finish Finish, clientID string, scope []string, asr assurance, m Meta) (*Completion, error) {
	c := &Completion{User: u}
	var (
		rt     string
		scopes []string
		err    error
	)
	if finish&FinishTokens != 0 {
		r.Family, r.First, rt, scopes, err = s.newFamily(u, clientID, scope, asr)
		if err != nil {
			return nil, err
		}
	}
	var tok string
	sameDB := any(s.st.Sessions) == any(s.st.MFA)
	var later []*AuditEvent
	if any(s.st.Audit) != any(s.st.MFA) {
		later, r.Audit = r.Audit, nil
	}
	// A finished sign-in clears the account's lockout count, in the same
	// transaction when the lockout lives in the same database.
	unlockLater := any(s.st.Lockout) != any(s.st.MFA)
	if !unlockLater {
		r.ClearLockout = lockoutKey(u.Email)
	}
	if finish&FinishSession != 0 {
		tok, c.Session = s.newSession(u, m, asr)
		c.SessionToken = tok
		if sameDB {
			r.Session = c.Session
		}
	}
	for _, e := range r.Audit {
		s.attachWebhooks(ctx, e, u)
	}
	if err := s.st.MFA.RedeemMFA(ctx, r); err != nil {
		return nil, err
	}
	s.webhooksQueued(r.Audit...)
	for _, e := range later {
		s.appendAudit(ctx, e)
	}
	if unlockLater {
		if err := s.Unlock(ctx, u.Email); err != nil {
			return nil, err
		}
	}
	if c.Session != nil && !sameDB {
		if err := s.st.Sessions.CreateSession(ctx, c.Session); err != nil {
			return nil, err
		}
	}
	if r.Family != nil {
		at, err := s.issueAccess(ctx, u, clientID, scopes, asr, r.Family.ID)
		if err != nil {
			return nil, err
		}
		c.Tokens = &TokenResponse{AccessToken: at, ExpiresIn: int(s.cfg.AccessTokenTTL / time.Second), RefreshToken: rt, Scope: scopes}
	}
	return c, nil
}

// MFAPasskeyTarget is the account a passkey second step (or a passkey
// step-up of p) is for, checked before the ceremony begins.
func (s *Service) MFAPasskeyTarget(ctx context.Context, tok string, p *Principal) (*User, []*Passkey, error) {
	var uid string
	if p != nil && !p.Enrolment {
		uid = p.UserID
	} else {
		ch, err := s.liveChallenge(ctx, tok)
		if err != nil {
			return nil, nil, err
		}
		if ch.EnrolOnly {
			return nil, nil, ErrMFAChallenge
		}
		uid = ch.UserID
	}
	u, err := s.activeUser(ctx, uid)
	if err != nil {
		return nil, nil, err
	}
	if u == nil {
		return nil, nil, ErrMFAChallenge
	}
	keys, err := s.st.Passkeys.ListPasskeys(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		return nil, nil, &Error{Code: EINVALID, Message: "this account has no passkey"}
	}
	return u, keys, nil
}

// ---------------------------------------------------------------------------
// Enrolment.

// TOTPEnrollment is a pending TOTP authenticator as shown once.
type TOTPEnrollment struct {
	ID        string
	Secret    string // base32
	URI       string // otpauth://
	ExpiresAt time.Time
}

// MFAStatus is GET /v1/mfa.
type MFAStatus struct {
	TOTP     *TOTPAuthenticator
	Recovery *RecoveryCodeSet
	Passkeys int
	// PasskeyFactor: the user's passkeys are a second factor (a passkey
	// sign-in with user verification is aal2: GATEHOUSE_PASSKEY_IS_MFA).
	PasskeyFactor bool
	Required      bool
}

// MFAStatus describes the user's second factors.
func (s *Service) MFAStatus(ctx context.Context, userID string) (*MFAStatus, error) {
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	st := &MFAStatus{Required: s.mfaRequiredFor(u)}
	if st.TOTP, err = s.confirmedTOTP(ctx, userID); err != nil {
		return nil, err
	}
	rc, err := s.st.MFA.RecoveryCodes(ctx, userID)
	switch {
	case err == nil:
		st.Recovery = rc
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	keys, err := s.st.Passkeys.ListPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	st.Passkeys = len(keys)
	st.PasskeyFactor = st.Passkeys > 0 && s.cfg.MFA.PasskeyIsMFA
	return st, nil
}

// MFAEnabled reports whether the user has a confirmed TOTP authenticator
// (mfa_enabled of /v1/me).
//
// The answer comes from a cache at most a second old (like TokenUser's):
// changes made through this Service invalidate it at once, another node's
// show within the second.
func (s *Service) MFAEnabled(ctx context.Context, userID string) (bool, error) {
	now := s.now()
	if on, ok := s.users.getMFA(userID, now); ok {
		return on, nil
	}
	t, err := s.confirmedTOTP(ctx, userID)
	if err != nil {
		return false, err
	}
	s.users.putMFA(userID, t != nil, now)
	return t != nil, nil
}

// MFAEnabledMany is MFAEnabled for a page of users (admin lists).
func (s *Service) MFAEnabledMany(ctx context.Context, ids []string) (map[string]bool, error) {
	return s.st.MFA.MFAEnabled(ctx, ids)
}

// BeginTOTP starts a TOTP enrolment for p: a fresh 20-byte secret, pending
// for ten minutes, replacing an earlier pending one.
func (s *Service) BeginTOTP(ctx context.Context, p *Principal, m Meta) (*TOTPEnrollment, error) {
	u, err := s.enrolCaller(ctx, p)
	if err != nil {
		return nil, err
	}
	if t, err := s.confirmedTOTP(ctx, u.ID); err != nil {
		return nil, err
	} else if t != nil {
		return nil, ErrTOTPExists
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.MFA.TOTPIssuer, AccountName: u.Email,
		Period: uint(TOTPPeriod / time.Second), SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, err
	}
	raw, err := base32NoPad(key.Secret())
	if err != nil {
		return nil, err
	}
	now := s.now()
	a := &TOTPAuthenticator{ID: NewID(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(totpEnrolmentTTL)}
	if a.Sealed, err = s.sealTOTP(a, raw); err != nil {
		return nil, err
	}
	if err := s.st.MFA.PutPendingTOTP(ctx, a); err != nil {
		return nil, err
	}
	return &TOTPEnrollment{ID: a.ID, Secret: key.Secret(), URI: key.URL(), ExpiresAt: a.ExpiresAt}, nil
}

// enrolCaller checks that p may change its second factors: an enrolment
// token, or a credential that may add a sign-in method (SPEC §18 H1)
// whose sign-in is recent enough (step-up).
func (s *Service) enrolCaller(ctx context.Context, p *Principal) (*User, error) {
	if p == nil {
		return nil, ErrInvalidCredentials
	}
	u, err := s.st.Users.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if p.Enrolment {
		return u, nil
	}
	// CanAddSignInMethod includes the step-up.
	if err := s.CanAddSignInMethod(ctx, p); err != nil {
		return nil, err
	}
	return u, nil
}

// TOTPConfirmation is what confirming an enrolment yields: the recovery
// codes (shown once) and, for an enrolment token, the finished sign-in.
type TOTPConfirmation struct {
	RecoveryCodes []string
	Completion    *Completion
}

// ConfirmTOTP activates a pending enrolment with a code of its secret. The
// code's step is recorded as used; a new recovery-code set is made; every
// other aal1 session and token family of the user ends, and the caller's
// session becomes aal2. An enrolment token's sign-in finishes here.
func (s *Service) ConfirmTOTP(ctx context.Context, p *Principal, id, code string, m Meta) (*TOTPConfirmation, error) {
	if err := s.limitIP(ctx, "mfa", m); err != nil {
		return nil, err
	}
	u, err := s.enrolCaller(ctx, p)
	if err != nil {
		return nil, err
	}
	var ch *MFAChallenge
	if p.Enrolment {
		if ch, err = s.liveChallenge(ctx, p.MFAToken); err != nil {
			return nil, err
		}
	}
	a, err := s.st.MFA.PendingTOTP(ctx, u.ID, id)
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Code: ENOTFOUND, Field: "enrollment_id", Message: "no pending TOTP enrolment with this id: start again with POST /v1/mfa/totp"}
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(a.ExpiresAt) {
		return nil, &Error{Code: EINVALID, Field: "enrollment_id", Message: "the enrolment expired: start again"}
	}
	secret, err := s.openTOTP(a)
	if err != nil {
		return nil, err
	}
	step, ok := matchTOTP(secret, strings.TrimSpace(code), now, s.cfg.MFA.TOTPSkew)
	if !ok {
		s.mfaMetric(MFAMethodTOTP, "failed")
		return nil, &Error{Code: EINVALID, Field: "code", Reason: ReasonMFAInvalidCode, Message: "that code is not right: check the time on your device and try the current code"}
	}
	codes, hashes := s.newRecoverySet()
	defer s.users.forget(u.ID)
	if err := s.st.MFA.ConfirmTOTP(ctx, u.ID, id, step, hashes, now); err != nil {
		return nil, err
	}
	s.audit(ctx, EventMFATOTPEnrolled, u.ID, m, nil)
	s.audit(ctx, EventMFARecoveryGenerated, u.ID, m, map[string]any{"count": len(codes)})
	out := &TOTPConfirmation{RecoveryCodes: codes}
	if err := s.endWeakerSignIns(ctx, u.ID, p.SessionID, now); err != nil {
		return nil, err
	}
	if ch != nil {
		asr := s.assess(append(slices.Clone(ch.AMR), AMROTP), now)
		c, err := s.redeem(ctx, u, &MFARedemption{UserID: u.ID, Now: now, ChallengeHash: ch.Hash}, ch.Finish, ch.ClientID, ParseScope(ch.Scope), asr, m)
		if err != nil {
			return nil, err
		}
		out.Completion = c
		s.audit(ctx, EventMFAChallengeSucceeded, u.ID, m, map[string]any{"method": "enrolment"})
		return out, nil
	}
	if p.Kind == KindSession && p.SessionID != "" {
		amr := p.AMR
		if !slices.Contains(amr, AMROTP) {
			amr = append(slices.Clone(amr), AMROTP)
		}
		asr := s.assess(amr, p.AuthTime)
		if err := s.st.Sessions.ElevateSession(ctx, &Session{ID: p.SessionID, UserID: u.ID}, asr.acr, asr.amr, p.AuthTime); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}

// endWeakerSignIns ends every aal1 session (but keep) and aal1 token
// family of the user: one stolen before the second factor was set up must
// not outlive it.
func (s *Service) endWeakerSignIns(ctx context.Context, userID, keep string, now time.Time) error {
	sessions, err := s.st.Sessions.ListSessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, x := range sessions {
		if x.ID != keep && x.ACR != ACR2 {
			if err := s.st.Sessions.DeleteSession(ctx, userID, x.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return s.st.Refresh.RevokeUserFamiliesAt(ctx, userID, ACR1, now)
}

func (s *Service) newRecoverySet() (codes, hashes []string) {
	n := s.cfg.MFA.RecoveryCodeCount
	seen := make(map[string]bool, n)
	for len(codes) < n {
		c := newRecoveryCode()
		norm, _ := normalizeRecoveryCode(c)
		if seen[norm] {
			continue
		}
		seen[norm] = true
		codes = append(codes, c)
		hashes = append(hashes, recoveryCodeHash(s.keys.recover, norm))
	}
	return codes, hashes
}

// RemoveTOTP removes p's TOTP authenticator; with no passkey left, the
// recovery codes go too (they are never the only factor).
func (s *Service) RemoveTOTP(ctx context.Context, p *Principal, m Meta) error {
	u, err := s.manageCaller(ctx, p)
	if err != nil {
		return err
	}
	keys, err := s.st.Passkeys.ListPasskeys(ctx, u.ID)
	if err != nil {
		return err
	}
	defer s.users.forget(u.ID)
	removed, err := s.st.MFA.DeleteTOTP(ctx, u.ID, len(keys) == 0)
	if err != nil {
		return err
	}
	if !removed {
		return &Error{Code: ENOTFOUND, Message: "no TOTP authenticator is set up"}
	}
	s.audit(ctx, EventMFATOTPRemoved, u.ID, m, nil)
	return nil
}

// RegenerateRecoveryCodes replaces p's whole recovery-code set.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *Principal, m Meta) ([]string, error) {
	u, err := s.manageCaller(ctx, p)
	if err != nil {
		return nil, err
	}
	t, err := s.confirmedTOTP(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	keys, err := s.st.Passkeys.ListPasskeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if t == nil && len(keys) == 0 {
		return nil, &Error{Code: ECONFLICT, Message: "set up a second factor first: recovery codes are never the only one"}
	}
	codes, hashes := s.newRecoverySet()
	if err := s.st.MFA.ReplaceRecoveryCodes(ctx, u.ID, hashes, s.now()); err != nil {
		return nil, err
	}
	s.audit(ctx, EventMFARecoveryGenerated, u.ID, m, map[string]any{"count": len(codes)})
	return codes, nil
}

// manageCaller checks that p may change its existing second factors: a
// session or access token (never an API key or enrolment token) with a
// recent enough sign-in.
func (s *Service) manageCaller(ctx context.Context, p *Principal) (*User, error) {
	if p == nil || p.Enrolment {
		return nil, ErrInvalidCredentials
	}
	if err := s.CanAddSignInMethod(ctx, p); err != nil { // includes the step-up
		return nil, err
	}
	return s.st.Users.UserByID(ctx, p.UserID)
}

// AdminResetMFA removes a user's TOTP authenticator and recovery codes
// (and passkeys too with passkeys), ends every session and token family
// of the user, and mails them a notice.
func (s *Service) AdminResetMFA(ctx context.Context, admin *Principal, userID string, passkeys bool, m Meta) error {
	if _, err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return err
	}
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if _, err := s.st.MFA.DeleteTOTP(ctx, u.ID, true); err != nil {
		return err
	}
	if passkeys {
		keys, err := s.st.Passkeys.ListPasskeys(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := s.st.Passkeys.DeletePasskey(ctx, u.ID, k.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	now := s.now()
	if err := s.st.Sessions.DeleteUserSessions(ctx, u.ID, ""); err != nil {
		return err
	}
	if err := s.st.Refresh.RevokeUserFamilies(ctx, u.ID, now); err != nil {
		return err
	}
	s.users.forget(u.ID)
	s.audit(ctx, EventMFAReset, u.ID, m, map[string]any{"admin_id": admin.UserID, "passkeys": passkeys})
	if err := s.enqueue(ctx, MailMFAReset, u.Email, u.ID); err != nil {
		s.log.ErrorContext(ctx, "mail enqueue failed", "kind", MailMFAReset, "err", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Step-up (RFC 9470).

// RequireStepUp is the check of every sensitive action: the credential's
// sign-in is younger than GATEHOUSE_STEP_UP_MAX_AGE and, for a user with
// MFA, aal2. passwordChecked says the request itself proved the password
// (a password change): for a user without a second factor that is as good
// as a fresh sign-in.
func (s *Service) RequireStepUp(ctx context.Context, p *Principal, passwordChecked bool) error {
	if p == nil {
		return ErrInvalidCredentials
	}
	if p.Enrolment {
		return nil
	}
	t, err := s.confirmedTOTP(ctx, p.UserID)
	if err != nil {
		return err
	}
	if t == nil && passwordChecked {
		return nil
	}
	fresh := !p.AuthTime.IsZero() && s.now().Sub(p.AuthTime) < s.cfg.MFA.StepUpMaxAge
	if fresh && (t == nil || p.ACR == ACR2) {
		return nil
	}
	return ErrStepUpRequired
}

// IsStepUpRequired reports an ErrStepUpRequired answer.
func IsStepUpRequired(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == ReasonStepUpRequired
}

// PendingTOTP shows p's pending enrolment id again (the account page
// re-shows the QR code after a mistyped confirmation code).
func (s *Service) PendingTOTP(ctx context.Context, p *Principal, id string) (*TOTPEnrollment, error) {
	if p == nil {
		return nil, ErrInvalidCredentials
	}
	u, err := s.st.Users.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	a, err := s.st.MFA.PendingTOTP(ctx, u.ID, id)
	if err != nil {
		return nil, err
	}
	if !s.now().Before(a.ExpiresAt) {
		return nil, ErrNotFound
	}
	raw, err := s.openTOTP(a)
	if err != nil {
		return nil, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.MFA.TOTPIssuer, AccountName: u.Email, Secret: raw,
		Period: uint(TOTPPeriod / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, err
	}
	return &TOTPEnrollment{ID: a.ID, Secret: key.Secret(), URI: key.URL(), ExpiresAt: a.ExpiresAt}, nil
}

// StepUpMaxAge is GATEHOUSE_STEP_UP_MAX_AGE (for the RFC 9470 challenge).
func (s *Service) StepUpMaxAge() time.Duration { return s.cfg.MFA.StepUpMaxAge }

// StepUpInput is POST /v1/mfa/step-up.
type StepUpInput struct {
	Password string
	Factor   SecondFactor
}

// StepUp renews p's authentication: a user with MFA proves a second factor
// (and, if given, the password); one without proves the password. A cookie
// session is renewed in place; for a bearer token the answer is a fresh
// access token of the same client and scope (the refresh family keeps its
// own level and time).
func (s *Service) StepUp(ctx context.Context, p *Principal, in StepUpInput, m Meta) (*TokenResponse, error) {
	if p == nil || p.Enrolment || (p.Kind != KindSession && p.Kind != KindAccessToken) {
		return nil, &Error{Code: EFORBIDDEN, Message: "step-up needs a cookie session or an access token"}
	}
	if err := s.limitIP(ctx, "mfa", m); err != nil {
		return nil, err
	}
	u, err := s.activeUser(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, ErrInvalidCredentials
	}
	t, err := s.confirmedTOTP(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	var methods []string
	if in.Password != "" {
		if tooLong(in.Password) {
			return nil, &Error{Code: EINVALID, Field: "password", Message: "password is incorrect"}
		}
		if err := s.countLogin(ctx, "mfa", u.Email, u.ID, m); err != nil {
			return nil, err
		}
		ok, err := s.checkPassword(ctx, u, in.Password)
		if err != nil {
			return nil, err
		}
		if !ok {
			s.audit(ctx, EventMFAChallengeFailed, u.ID, m, map[string]any{"method": MFAMethodPassword, "step_up": true})
			return nil, &Error{Code: EINVALID, Field: "password", Message: "password is incorrect"}
		}
		methods = append(methods, AMRPassword)
	}
	method := MFAMethodPassword
	if in.Factor.method() != "" {
		method = in.Factor.method()
		if err := s.beginAttempt(ctx, u.Email, u.ID, m); err != nil {
			return nil, err
		}
		r := &MFARedemption{UserID: u.ID, Now: s.now()}
		added, ok, err := s.prepare(ctx, u, in.Factor, r)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, s.failed(ctx, nil, u, method, false, m)
		}
		if r.TOTPID != "" || r.RecoveryHash != "" {
			err := s.st.MFA.RedeemMFA(ctx, r)
			switch {
			case errors.Is(err, ErrMFAReplay):
				return nil, s.failed(ctx, nil, u, method, true, m)
			case errors.Is(err, ErrNotFound):
				return nil, s.failed(ctx, nil, u, method, false, m)
			case err != nil:
				return nil, err
			}
		}
		methods = append(methods, added...)
		if !slices.Contains(methods, AMRPassword) {
			// The credential's own first factor still stands.
			for _, x := range p.AMR {
				if x == AMRPassword || x == AMRFederated {
					methods = append([]string{x}, methods...)
					break
				}
			}
		}
	} else if t != nil {
		return nil, &Error{Code: EINVALID, Field: "code", Reason: ReasonMFAInvalidCode, Message: "your account has a second factor: step up with a code, a recovery code or a passkey"}
	}
	if len(methods) == 0 {
		return nil, &Error{Code: EINVALID, Field: "password", Message: "send your password (or a second-factor code)"}
	}
	now := s.now()
	asr := s.assess(methods, now)
	if err := s.Unlock(ctx, u.Email); err != nil {
		return nil, err
	}
	s.mfaMetric(method, "succeeded")
	s.audit(ctx, EventMFAStepUp, u.ID, m, map[string]any{"method": method, "acr": asr.acr})
	s.recoveryUsed(ctx, u, method, m)
	if p.Kind == KindSession {
		err := s.st.Sessions.ElevateSession(ctx, &Session{ID: p.SessionID, UserID: u.ID}, asr.acr, asr.amr, now)
		if errors.Is(err, ErrNotFound) {
			return nil, ErrInvalidSession
		}
		return nil, err
	}
	// The fresh token is the presented one renewed: its client, scopes and
	// sid; a third-party client's token had no roles or email, and gets
	// none now (SPEC §18: a credential mints nothing more than it holds).
	claims := s.accessClaims(u, p.ClientID, p.Scopes, asr, p.SID)
	if p.Roles == nil {
		claims.NoRoles, claims.Email = true, ""
	}
	at, err := s.issuer.Issue(ctx, claims)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: at, ExpiresIn: int(s.cfg.AccessTokenTTL / time.Second), Scope: p.Scopes}, nil
}

// EnrolmentPrincipal resolves an enrolment-only mfa_token (Authorization:
// Bearer ghm_…) to the caller the enrolment routes accept; any other
// challenge is refused.
func (s *Service) EnrolmentPrincipal(ctx context.Context, tok string) (*Principal, error) {
	ch, err := s.liveChallenge(ctx, tok)
	if err != nil {
		return nil, ErrInvalidCredentials
	}
	if !ch.EnrolOnly {
		return nil, ErrInvalidCredentials
	}
	u, err := s.activeUser(ctx, ch.UserID)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, ErrInvalidCredentials
	}
	return &Principal{UserID: u.ID, Kind: KindMFAEnrolment, Scopes: s.roles.Allowed(u.Roles), Roles: u.Roles,
		ExpiresAt: ch.ExpiresAt, ACR: ACR1, AMR: ch.AMR, AuthTime: ch.AuthTime, Enrolment: true, MFAToken: tok}, nil
}

// FinishEnrolment finishes an enrolment token's sign-in after a second
// factor other than TOTP (a passkey) was added with it.
func (s *Service) FinishEnrolment(ctx context.Context, p *Principal, amr []string, m Meta) (*Completion, error) {
	if p == nil || !p.Enrolment {
		return nil, nil
	}
	ch, err := s.liveChallenge(ctx, p.MFAToken)
	if err != nil {
		return nil, err
	}
	u, err := s.activeUser(ctx, ch.UserID)
	if err != nil || u == nil {
		return nil, errors.Join(ErrMFAChallenge, err)
	}
	now := s.now()
	asr := s.assess(append(slices.Clone(ch.AMR), amr...), now)
	c, err := s.redeem(ctx, u, &MFARedemption{UserID: u.ID, Now: now, ChallengeHash: ch.Hash}, ch.Finish, ch.ClientID, ParseScope(ch.Scope), asr, m)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, EventMFAChallengeSucceeded, u.ID, m, map[string]any{"method": "enrolment"})
	return c, nil
}

// ---------------------------------------------------------------------------
// Sealing TOTP secrets (AES-256-GCM, AAD = authenticator id and user id).

func (s *Service) totpAEAD() (cipher.AEAD, error) {
	b, err := aes.NewCipher(s.keys.totp)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func totpAAD(a *TOTPAuthenticator) []byte { return []byte("totp\x00" + a.ID + "\x00" + a.UserID) }

func (s *Service) sealTOTP(a *TOTPAuthenticator, secret []byte) ([]byte, error) {
	g, err := s.totpAEAD()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(secret)+g.Overhead())
	_, _ = rand.Read(nonce)
	return g.Seal(nonce, nonce, secret, totpAAD(a)), nil
}

func (s *Service) openTOTP(a *TOTPAuthenticator) ([]byte, error) {
	g, err := s.totpAEAD()
	if err != nil {
		return nil, err
	}
	if len(a.Sealed) < g.NonceSize() {
		return nil, fmt.Errorf("auth: sealed TOTP secret of %s is truncated", a.ID)
	}
	out, err := g.Open(nil, a.Sealed[:g.NonceSize()], a.Sealed[g.NonceSize():], totpAAD(a))
	if err != nil {
		return nil, fmt.Errorf("auth: TOTP secret of %s does not open (wrong root secret, or tampered)", a.ID)
	}
	return out, nil
}
