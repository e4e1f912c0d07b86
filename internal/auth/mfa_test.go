package auth_test

// Attack tests for two-factor authentication (SPEC §13). Each test plays
// an attacker (or a race, or a careless client) against the second factor
// and fails if the rule it attacks breaks. Codes are computed from the
// secret shown at enrolment with github.com/pquerna/otp, independently of
// the package's own verifier.
//
// The harness runs with GATEHOUSE_TOTP_SKEW 0 (only the current 30-second
// step is accepted) unless a test says otherwise, and a step can be used
// once, so tests advance the clock a step (mfaNext) between codes.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"gatehouse/internal/auth"
)

// ---------------------------------------------------------------------------
// Helpers.

// mfaTOTPOpts are the fixed TOTP parameters of SPEC §13.
var mfaTOTPOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// mfaUser is an account with a confirmed TOTP authenticator.
type mfaUser struct {
	*auth.User
	secret string   // base32, as enrolment shows it
	codes  []string // recovery codes, display form
	// enrol is the cookie session that enrolled (aal2 since confirmation).
	enrol *auth.Completion
}

// mfaCodeAt is the code of secret at the given time.
func mfaCodeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, mfaTOTPOpts)
	if err != nil {
		t.Fatalf("GenerateCodeCustom: %v", err)
	}
	return c
}

// mfaCode is u's code at the harness clock's current step.
func (h *harness) mfaCode(t *testing.T, u *mfaUser) string {
	t.Helper()
	return mfaCodeAt(t, u.secret, h.clock.Now())
}

// mfaNext moves the clock to the next TOTP step.
func (h *harness) mfaNext() { h.clock.Advance(auth.TOTPPeriod) }

// mfaOther is a well-formed six-digit code different from code.
func mfaOther(code string) string {
	b := []byte(code)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}

// mfaFlipLast changes the last character of tok.
func mfaFlipLast(tok string) string {
	if strings.HasSuffix(tok, "A") {
		return tok[:len(tok)-1] + "B"
	}
	return tok[:len(tok)-1] + "A"
}

// mfaEnrol registers email (verified address, role user), signs in with a
// cookie session and enrols TOTP through that session, at the clock's
// current step (which confirmation consumes).
func (h *harness) mfaEnrol(t *testing.T, email string) *mfaUser {
	t.Helper()
	ctx := context.Background()
	id := h.register(t, email, goodPass).ID
	h.verifyEmail(t, id)
	u := h.user(t, id)
	c, err := h.svc.SignInForTest(ctx, u, auth.FinishSession, meta)
	if err != nil {
		t.Fatalf("SignInForTest(%s): %v", email, err)
	}
	p := h.svc.SessionPrincipal(c.Session, u)
	e, err := h.svc.BeginTOTP(ctx, p, meta)
	if err != nil {
		t.Fatalf("BeginTOTP(%s): %v", email, err)
	}
	conf, err := h.svc.ConfirmTOTP(ctx, p, e.ID, mfaCodeAt(t, e.Secret, h.clock.Now()), meta)
	if err != nil {
		t.Fatalf("ConfirmTOTP(%s): %v", email, err)
	}
	if len(conf.RecoveryCodes) != 10 {
		t.Fatalf("ConfirmTOTP(%s) gave %d recovery codes, want 10", email, len(conf.RecoveryCodes))
	}
	return &mfaUser{User: u, secret: e.Secret, codes: conf.RecoveryCodes, enrol: c}
}

// asMFARequired checks that a first factor was answered with a challenge
// and nothing else.
func asMFARequired(t *testing.T, what string, issued bool, err error) *auth.MFARequired {
	t.Helper()
	var m *auth.MFARequired
	if !errors.As(err, &m) {
		t.Fatalf("%s: err = %v, want *auth.MFARequired", what, err)
	}
	if issued {
		t.Fatalf("%s: something was issued along with the challenge", what)
	}
	if !strings.HasPrefix(m.Token, auth.MFATokenPrefix) || m.Methods == nil {
		t.Fatalf("%s: malformed challenge %+v", what, m)
	}
	return m
}

// mfaGrant runs the password grant of a challenged user and returns the
// challenge.
func (h *harness) mfaGrant(t *testing.T, email, pass, scope string) *auth.MFARequired {
	t.Helper()
	r, err := h.svc.PasswordGrant(context.Background(), email, pass, scope, "client-web", meta)
	return asMFARequired(t, "PasswordGrant("+email+")", r != nil, err)
}

// mfaSession runs a cookie-session login of a challenged user and returns
// the challenge.
func (h *harness) mfaSession(t *testing.T, email string) *auth.MFARequired {
	t.Helper()
	c, err := h.svc.SessionLogin(context.Background(), email, goodPass, meta)
	return asMFARequired(t, "SessionLogin("+email+")", c != nil, err)
}

// mfaVerify finishes a challenge and fails the test on error.
func (h *harness) mfaVerify(t *testing.T, tok string, f auth.SecondFactor) *auth.Completion {
	t.Helper()
	c, err := h.svc.VerifyMFA(context.Background(), tok, f, meta)
	if err != nil {
		t.Fatalf("VerifyMFA(%+v): %v", f, err)
	}
	if c == nil || (c.Tokens == nil && c.Session == nil) {
		t.Fatalf("VerifyMFA(%+v) finished nothing: %+v", f, c)
	}
	return c
}

// wantWrongCode checks a wrong-code answer and how many attempts it says
// are left (-1: do not check).
func wantWrongCode(t *testing.T, what string, c *auth.Completion, err error, left int) {
	t.Helper()
	if c != nil {
		t.Fatalf("%s: a wrong code finished the sign-in: %+v", what, c)
	}
	wantReason(t, what, err, auth.EINVALID, auth.ReasonMFAInvalidCode)
	var e *auth.Error
	errors.As(err, &e)
	if left >= 0 && (e.AttemptsRemaining == nil || *e.AttemptsRemaining != left) {
		got := "nil"
		if e.AttemptsRemaining != nil {
			got = fmt.Sprint(*e.AttemptsRemaining)
		}
		t.Fatalf("%s: attempts_remaining = %s, want %d", what, got, left)
	}
}

// wantReplay checks a replayed-step answer.
func wantReplay(t *testing.T, what string, c *auth.Completion, err error) {
	t.Helper()
	if c != nil {
		t.Fatalf("%s: a replayed code finished the sign-in: %+v", what, c)
	}
	wantReason(t, what, err, auth.EINVALID, auth.ReasonMFACodeReused)
}

// wantChallengeGone checks the one answer for an unknown, expired, used or
// exhausted mfa_token.
func wantChallengeGone(t *testing.T, what string, c *auth.Completion, err error) {
	t.Helper()
	if c != nil {
		t.Fatalf("%s: finished the sign-in: %+v", what, c)
	}
	if !errors.Is(err, auth.ErrMFAChallenge) {
		t.Fatalf("%s: err = %v, want ErrMFAChallenge", what, err)
	}
}

// wantLocked checks the lockout answer.
func wantLocked(t *testing.T, what string, err error) {
	t.Helper()
	wantReason(t, what, err, auth.ETOOMANY, auth.ReasonAccountLocked)
}

// claimsOf verifies an access token with the harness's keyring.
func (h *harness) claimsOf(t *testing.T, at string) *auth.AccessClaims {
	t.Helper()
	c, err := h.keys.Verify(at)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

// wantAssurance checks a credential's level, methods and sign-in time.
func wantAssurance(t *testing.T, what, acr string, amr []string, at time.Time, wantACR string, wantAMR []string, wantAt time.Time) {
	t.Helper()
	if acr != wantACR {
		t.Errorf("%s: acr = %q, want %q", what, acr, wantACR)
	}
	for _, m := range wantAMR {
		if !slices.Contains(amr, m) {
			t.Errorf("%s: amr = %v, missing %q", what, amr, m)
		}
	}
	if !at.Equal(wantAt) {
		t.Errorf("%s: auth_time = %v, want %v", what, at, wantAt)
	}
}

// newLockoutHarness is a harness whose lockout is on (threshold failed
// attempts, then 15 minutes); the other rate limits stay off.
func newLockoutHarness(t *testing.T, threshold int) *harness {
	t.Helper()
	return newHarnessWith(t, func(h *harness, o *auth.Options) {
		o.Stores.Limiter, o.Stores.Lockout = h.db, h.db
		o.Limits = auth.Limits{LockoutThreshold: threshold, LockoutDuration: 15 * time.Minute}
	})
}

// mfaRace runs f(0..n-1) in n goroutines released at once and returns
// their answers.
func mfaRace[T any](n int, f func(i int) (T, error)) ([]T, []error) {
	out, errs := make([]T, n), make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[i], errs[i] = f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return out, errs
}

// remainingRecovery is how many recovery codes u has left.
func (h *harness) remainingRecovery(t *testing.T, userID string) int {
	t.Helper()
	st, err := h.svc.MFAStatus(context.Background(), userID)
	if err != nil {
		t.Fatalf("MFAStatus: %v", err)
	}
	if st.Recovery == nil {
		return 0
	}
	return st.Recovery.Remaining
}

// ---------------------------------------------------------------------------
// 1. Replay.

// An eavesdropper (shoulder-surfer, phishing proxy, log) who saw a code
// replays it: on another challenge, at the same step as confirmation, or
// an older step still inside the skew window. RFC 6238 §5.2: a step is
// accepted once, and only after the last one used.
func TestMFACodeReplay(t *testing.T) {
	h := newHarness(t, func(c *auth.Config) { c.MFA.TOTPSkew = 1 })
	u := h.mfaEnrol(t, "ada@example.com")
	confirmCode := h.mfaCode(t, u)

	// The confirmation code, at once, as the first sign-in's code.
	ch := h.mfaGrant(t, "ada@example.com", goodPass, "")
	c, err := h.svc.VerifyMFA(context.Background(), ch.Token, auth.SecondFactor{Code: confirmCode}, meta)
	wantReplay(t, "the confirmation code as the first sign-in code", c, err)
	var e *auth.Error
	errors.As(err, &e)
	if e.AttemptsRemaining == nil || *e.AttemptsRemaining != 4 {
		t.Fatalf("a replay must count as an attempt: attempts_remaining = %v", e.AttemptsRemaining)
	}
	// A step before confirmation's, inside the skew window.
	c, err = h.svc.VerifyMFA(context.Background(), ch.Token, auth.SecondFactor{Code: mfaCodeAt(t, u.secret, h.clock.Now().Add(-auth.TOTPPeriod))}, meta)
	wantReplay(t, "a step older than confirmation's", c, err)

	// The next step finishes the sign-in…
	h.mfaNext()
	used := h.mfaCode(t, u)
	h.mfaVerify(t, ch.Token, auth.SecondFactor{Code: used})
	// …and that code is refused for a second challenge at the same step.
	ch2 := h.mfaGrant(t, "ada@example.com", goodPass, "")
	c, err = h.svc.VerifyMFA(context.Background(), ch2.Token, auth.SecondFactor{Code: used}, meta)
	wantReplay(t, "a used code on another challenge", c, err)

	// One step later, the previous step's code is still inside the skew
	// window, but older than the last step used: refused.
	h.mfaNext()
	c, err = h.svc.VerifyMFA(context.Background(), ch2.Token, auth.SecondFactor{Code: used}, meta)
	wantReplay(t, "the previous step's code (inside the skew window)", c, err)
	// The current code still works on that challenge: only the replay was
	// refused.
	h.mfaVerify(t, ch2.Token, auth.SecondFactor{Code: h.mfaCode(t, u)})

	// A code of the next step (accepted early, within the skew) moves the
	// last step forward: the current step is then in the past.
	ch3 := h.mfaGrant(t, "ada@example.com", goodPass, "")
	h.mfaNext()
	ahead := mfaCodeAt(t, u.secret, h.clock.Now().Add(auth.TOTPPeriod))
	h.mfaVerify(t, ch3.Token, auth.SecondFactor{Code: ahead})
	ch4 := h.mfaGrant(t, "ada@example.com", goodPass, "")
	c, err = h.svc.VerifyMFA(context.Background(), ch4.Token, auth.SecondFactor{Code: h.mfaCode(t, u)}, meta)
	wantReplay(t, "a code of a step before the last one used", c, err)

	if evs := h.audit(t, auth.AuditFilter{UserID: u.ID, Type: auth.EventMFACodeReplayed}); len(evs) != 5 {
		t.Errorf("%d mfa.code.replayed events, want 5", len(evs))
	}
}

// ---------------------------------------------------------------------------
// 2. Concurrency.

const mfaRaceN = 8

// An attacker who learned one code races it on many challenges at once
// (opened with the stolen password), hoping the check and the write of
// the last step interleave: exactly one may win.
func TestMFAConcurrentSameTOTPCode(t *testing.T) {
	h := newHarness(t)
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	toks := make([]string, mfaRaceN)
	for i := range toks {
		toks[i] = h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	}
	code := h.mfaCode(t, u)
	out, errs := mfaRace(mfaRaceN, func(i int) (*auth.Completion, error) {
		return h.svc.VerifyMFA(context.Background(), toks[i], auth.SecondFactor{Code: code}, meta)
	})
	won := 0
	for i := range out {
		if errs[i] == nil {
			won++
			continue
		}
		wantReplay(t, fmt.Sprintf("racer %d", i), out[i], errs[i])
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent redemptions of one code succeeded, want exactly 1", won, mfaRaceN)
	}
}

// The same race with one recovery code: it is consumed once.
func TestMFAConcurrentSameRecoveryCode(t *testing.T) {
	h := newHarness(t)
	u := h.mfaEnrol(t, "ada@example.com")
	toks := make([]string, mfaRaceN)
	for i := range toks {
		toks[i] = h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	}
	out, errs := mfaRace(mfaRaceN, func(i int) (*auth.Completion, error) {
		return h.svc.VerifyMFA(context.Background(), toks[i], auth.SecondFactor{RecoveryCode: u.codes[0]}, meta)
	})
	won := 0
	for i := range out {
		if errs[i] == nil {
			won++
			continue
		}
		wantWrongCode(t, fmt.Sprintf("racer %d", i), out[i], errs[i], 4)
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent redemptions of one recovery code succeeded, want exactly 1", won, mfaRaceN)
	}
	if n := h.remainingRecovery(t, u.ID); n != 9 {
		t.Fatalf("%d recovery codes left, want 9", n)
	}
	if evs := h.audit(t, auth.AuditFilter{UserID: u.ID, Type: auth.EventMFARecoveryUsed}); len(evs) != 1 {
		t.Fatalf("%d mfa.recovery_code.used events, want 1", len(evs))
	}
}

// One challenge answered concurrently with different valid factors (a
// client retrying with several recovery codes, or two devices): the
// challenge is single-use, so exactly one sign-in finishes, and the
// losers' codes are not spent.
func TestMFAConcurrentOneChallenge(t *testing.T) {
	h := newHarness(t)
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	tok := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	out, errs := mfaRace(mfaRaceN, func(i int) (*auth.Completion, error) {
		return h.svc.VerifyMFA(context.Background(), tok, auth.SecondFactor{RecoveryCode: u.codes[i]}, meta)
	})
	won := 0
	for i := range out {
		if errs[i] == nil {
			if out[i] == nil || out[i].Tokens == nil {
				t.Fatalf("racer %d: success without tokens", i)
			}
			won++
			continue
		}
		wantChallengeGone(t, fmt.Sprintf("racer %d", i), out[i], errs[i])
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent answers to one challenge finished it, want exactly 1", won, mfaRaceN)
	}
	if n := h.remainingRecovery(t, u.ID); n != 9 {
		t.Fatalf("%d recovery codes left, want 9 (only the winner's is spent)", n)
	}
	// A TOTP code and a recovery code racing on one challenge: one wins.
	tok = h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	code := h.mfaCode(t, u)
	out, errs = mfaRace(2, func(i int) (*auth.Completion, error) {
		f := auth.SecondFactor{Code: code}
		if i == 1 {
			f = auth.SecondFactor{RecoveryCode: u.codes[9]}
		}
		return h.svc.VerifyMFA(context.Background(), tok, f, meta)
	})
	if (errs[0] == nil) == (errs[1] == nil) || (out[0] != nil) == (out[1] != nil) {
		t.Fatalf("TOTP and recovery code on one challenge: errors %v / %v, want exactly one success", errs[0], errs[1])
	}
}

// ---------------------------------------------------------------------------
// 3. Brute force.

// An attacker with the password guesses codes: the challenge takes
// MaxAttempts wrong answers, counting down, then is destroyed, so even the
// right code is refused on it afterwards.
func TestMFAChallengeAttemptLimit(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	right := h.mfaCode(t, u)
	wrong := mfaOther(right)
	tok := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	for left := 4; left >= 1; left-- {
		c, err := h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{Code: wrong}, meta)
		wantWrongCode(t, fmt.Sprintf("wrong code with %d left", left), c, err, left)
	}
	// The fifth wrong code is the last: the challenge goes with it.
	c, err := h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{Code: wrong}, meta)
	wantWrongCode(t, "the fifth wrong code", c, err, 0)
	for _, f := range []auth.SecondFactor{{Code: right}, {RecoveryCode: u.codes[0]}, {Code: wrong}} {
		c, err := h.svc.VerifyMFA(ctx, tok, f, meta)
		wantChallengeGone(t, fmt.Sprintf("%+v on an exhausted challenge", f), c, err)
	}
	// The right code was not spent by the refusals: a new challenge takes it.
	h.mfaVerify(t, h.mfaGrant(t, "ada@example.com", goodPass, "").Token, auth.SecondFactor{Code: right})
	if n := h.remainingRecovery(t, u.ID); n != 10 {
		t.Fatalf("%d recovery codes left, want 10", n)
	}
}

// Malformed answers (wrong length, letters, a recovery code that is not
// one) are wrong attempts like any other, not free probes.
func TestMFAMalformedCodesCount(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	tok := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	bad := []auth.SecondFactor{{Code: "12345"}, {Code: "abcdef"}, {Code: "1234567"}, {RecoveryCode: "zzz"}}
	for i, f := range bad {
		c, err := h.svc.VerifyMFA(ctx, tok, f, meta)
		wantWrongCode(t, fmt.Sprintf("malformed %+v", f), c, err, 4-i)
	}
	// A recovery code one symbol short, and one of another alphabet.
	c, err := h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{RecoveryCode: u.codes[0][:len(u.codes[0])-1]}, meta)
	wantWrongCode(t, "a truncated recovery code", c, err, 0)
	c, err = h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{Code: h.mfaCode(t, u)}, meta)
	wantChallengeGone(t, "the right code after five malformed ones", c, err)
}

// Wrong codes count toward the account's lockout: enough of them lock the
// account, and then even the right password is refused. (Whether the
// challenged sign-in's own password attempt still counts until the second
// factor is right decides whether the lock comes at the threshold's or the
// next wrong code; either is fine, later is not.)
func TestMFAWrongCodesLockTheAccount(t *testing.T) {
	const threshold = 3
	h := newLockoutHarness(t, threshold)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	wrong := mfaOther(h.mfaCode(t, u))
	tok := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	lockedAt := 0
	for i := 1; i <= threshold+1 && lockedAt == 0; i++ {
		c, err := h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{Code: wrong}, meta)
		var e *auth.Error
		if errors.As(err, &e) && e.Reason == auth.ReasonAccountLocked {
			lockedAt = i
			continue
		}
		wantWrongCode(t, fmt.Sprintf("wrong code %d", i), c, err, 5-i)
	}
	if lockedAt < threshold {
		t.Fatalf("locked after %d wrong codes, before the threshold %d", lockedAt, threshold)
	}
	if lockedAt == 0 {
		t.Fatalf("%d wrong codes (threshold %d) did not lock the account", threshold+1, threshold)
	}
	_, err := h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{Code: wrong}, meta)
	wantLocked(t, "a wrong code on a locked account", err)
	r, err := h.svc.PasswordGrant(ctx, "ada@example.com", goodPass, "", "client-web", meta)
	if r != nil {
		t.Fatal("the password grant issued tokens for a locked account")
	}
	wantLocked(t, "the right password after the lockout", err)
	c, err := h.svc.SessionLogin(ctx, "ada@example.com", goodPass, meta)
	if c != nil {
		t.Fatal("a session was made for a locked account")
	}
	wantLocked(t, "a session login after the lockout", err)
	if evs := h.audit(t, auth.AuditFilter{UserID: u.ID, Type: auth.EventAccountLocked}); len(evs) != 1 {
		t.Fatalf("%d account.locked events, want 1", len(evs))
	}
}

// An attacker with the password interleaves sign-ins with guesses, staying
// under the per-challenge limit each time. The wrong codes must still add
// up to a lockout: a correct password is only the first factor and must
// not wipe the count of failed second factors, or the lockout never bounds
// how many codes can be guessed.
func TestMFAPasswordSignInDoesNotResetCodeFailures(t *testing.T) {
	h := newLockoutHarness(t, 5)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	wrong := mfaOther(h.mfaCode(t, u))
	for round := range 4 {
		r, err := h.svc.PasswordGrant(ctx, "ada@example.com", goodPass, "", "client-web", meta)
		var locked *auth.Error
		if errors.As(err, &locked) && locked.Reason == auth.ReasonAccountLocked {
			return // locked after round*4 wrong codes
		}
		tok := asMFARequired(t, fmt.Sprintf("round %d sign-in", round), r != nil, err).Token
		for i := range 4 {
			_, err := h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{Code: wrong}, meta)
			if errors.As(err, &locked) && locked.Reason == auth.ReasonAccountLocked {
				return
			}
			wantWrongCode(t, fmt.Sprintf("round %d guess %d", round, i+1), nil, err, 4-i)
		}
	}
	t.Fatalf("16 wrong second-factor codes (lockout threshold 5), interleaved with correct passwords, never locked the account: " +
		"each password sign-in clears the failure count, so the lockout does not bound TOTP guessing")
}

// Once wrong codes have locked the account, a challenge opened before the
// lock must not finish: otherwise guessing simply continues on challenges
// the attacker opened in advance, and the lock stops nothing.
func TestMFALockedAccountCannotFinishOpenChallenge(t *testing.T) {
	h := newLockoutHarness(t, 3)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	right := h.mfaCode(t, u)
	wrong := mfaOther(right)
	spare := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	burn := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	for range 3 {
		_, _ = h.svc.VerifyMFA(ctx, burn, auth.SecondFactor{Code: wrong}, meta)
	}
	_, err := h.svc.VerifyMFA(ctx, burn, auth.SecondFactor{Code: wrong}, meta)
	wantLocked(t, "the wrong code over the threshold", err)
	c, err := h.svc.VerifyMFA(ctx, spare, auth.SecondFactor{Code: right}, meta)
	if c != nil {
		t.Fatal("a locked account finished a sign-in on a challenge opened before the lock")
	}
	wantLocked(t, "the right code on a pre-opened challenge of a locked account", err)
}

// ---------------------------------------------------------------------------
// 4. Token confusion.

// The mfa_token is bound to its user, single-use, short-lived and
// unguessable; an enrolment-only token finishes nothing by itself, and a
// normal challenge's token is no enrolment credential.
func TestMFATokenConfusion(t *testing.T) {
	h := newHarness(t, func(c *auth.Config) { c.MFA.RequiredRoles = []string{"admin"} })
	ctx := context.Background()
	a := h.mfaEnrol(t, "ada@example.com")
	b := h.mfaEnrol(t, "bob@example.com")
	h.mfaNext()

	// A's challenge answered with B's factors.
	tokA := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	codeA, codeB := h.mfaCode(t, a), h.mfaCode(t, b)
	if codeA != codeB { // 1 in 10^6 they coincide
		c, err := h.svc.VerifyMFA(ctx, tokA, auth.SecondFactor{Code: codeB}, meta)
		wantWrongCode(t, "B's TOTP code on A's challenge", c, err, -1)
	}
	c, err := h.svc.VerifyMFA(ctx, tokA, auth.SecondFactor{RecoveryCode: b.codes[0]}, meta)
	wantWrongCode(t, "B's recovery code on A's challenge", c, err, -1)
	// B's factors were not spent by the attempts on A's challenge.
	if n := h.remainingRecovery(t, b.ID); n != 10 {
		t.Fatalf("B has %d recovery codes left, want 10", n)
	}
	cb := h.mfaVerify(t, h.mfaGrant(t, "bob@example.com", goodPass, "").Token, auth.SecondFactor{RecoveryCode: b.codes[0]})
	if cb.User.ID != b.ID {
		t.Fatalf("B's challenge finished as %s", cb.User.ID)
	}

	// Single use: a finished challenge's token is refused.
	ca := h.mfaVerify(t, tokA, auth.SecondFactor{Code: codeA})
	if ca.User.ID != a.ID || h.claimsOf(t, ca.Tokens.AccessToken).Subject != a.ID {
		t.Fatalf("A's challenge finished for someone else")
	}
	c, err = h.svc.VerifyMFA(ctx, tokA, auth.SecondFactor{RecoveryCode: a.codes[0]}, meta)
	wantChallengeGone(t, "a finished challenge's token", c, err)
	if n := h.remainingRecovery(t, a.ID); n != 10 {
		t.Fatalf("a refused token spent a recovery code: %d left", n)
	}

	// Expiry: alive until 5 minutes, refused at 5 minutes.
	live := h.mfaGrant(t, "ada@example.com", goodPass, "")
	if live.ExpiresIn != 300 {
		t.Fatalf("expires_in = %d, want 300", live.ExpiresIn)
	}
	expired := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	h.clock.Advance(5*time.Minute - time.Second)
	h.mfaVerify(t, live.Token, auth.SecondFactor{Code: h.mfaCode(t, a)})
	h.clock.Advance(time.Second)
	c, err = h.svc.VerifyMFA(ctx, expired, auth.SecondFactor{RecoveryCode: a.codes[1]}, meta)
	wantChallengeGone(t, "a token 5 minutes old", c, err)

	// Forged and mangled tokens.
	fresh := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	for name, tok := range map[string]string{
		"random ghm_ token":        auth.MFATokenPrefix + strings.Repeat("A", 43),
		"empty":                    "",
		"prefix only":              auth.MFATokenPrefix,
		"without the prefix":       strings.TrimPrefix(fresh, auth.MFATokenPrefix),
		"another prefix":           "ghp_" + strings.TrimPrefix(fresh, auth.MFATokenPrefix),
		"the stored hash":          auth.MFAChallengeHash(fresh),
		"the stored hash prefixed": auth.MFATokenPrefix + auth.MFAChallengeHash(fresh),
		"overlong":                 fresh + strings.Repeat("x", 200),
		"changed last character":   mfaFlipLast(fresh),
	} {
		c, err := h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{RecoveryCode: a.codes[2]}, meta)
		wantChallengeGone(t, name, c, err)
	}
	if n := h.remainingRecovery(t, a.ID); n != 10 {
		t.Fatalf("forged tokens spent recovery codes: %d left", n)
	}

	// Enrolment-only challenge: VerifyMFA finishes nothing with it.
	h.insertUser(t, "boss@example.com", h.hash(t, goodPass), false, "admin")
	enrol := h.mfaGrant(t, "boss@example.com", goodPass, "")
	if !enrol.Enrol {
		t.Fatal("a required-role user without a factor was not sent to enrol")
	}
	for _, f := range []auth.SecondFactor{{Code: "123456"}, {RecoveryCode: a.codes[3]}, {PasskeyUserID: "x", PasskeyUV: true}} {
		c, err := h.svc.VerifyMFA(ctx, enrol.Token, f, meta)
		wantChallengeGone(t, fmt.Sprintf("enrolment token with %+v", f), c, err)
	}
	// A normal challenge's token is no enrolment credential, nor is a forged one.
	for name, tok := range map[string]string{"a normal challenge": fresh, "a forged token": auth.MFATokenPrefix + "forged"} {
		p, err := h.svc.EnrolmentPrincipal(ctx, tok)
		if p != nil || !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("EnrolmentPrincipal(%s) = %+v, %v; want ErrInvalidCredentials", name, p, err)
		}
	}
	// The enrolment token itself still works for enrolment (the refusals
	// above did not hide a dead token).
	if p, err := h.svc.EnrolmentPrincipal(ctx, enrol.Token); err != nil || !p.Enrolment {
		t.Fatalf("EnrolmentPrincipal(enrolment token) = %+v, %v", p, err)
	}
}

// ---------------------------------------------------------------------------
// 5. Password reset.

// Whoever controls the mailbox (or a stolen reset link) resets the
// password: the next sign-in is still challenged, and the second factor
// still works.
func TestMFAPasswordResetDoesNotBypass(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	tok, err := h.svc.IssueToken(ctx, h.user(t, u.ID), auth.PurposeReset)
	if err != nil {
		t.Fatal(err)
	}
	const next = "a brand new pass phrase"
	if err := h.svc.ResetPassword(ctx, tok, next, meta); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	h.mfaNext()
	ch := h.mfaGrant(t, "ada@example.com", next, "")
	if ch.Enrol || !slices.Contains(ch.Methods, auth.MFAMethodTOTP) || !slices.Contains(ch.Methods, auth.MFAMethodRecovery) {
		t.Fatalf("challenge after the reset = %+v, want totp and recovery_code", ch)
	}
	c, err := h.svc.SessionLogin(ctx, "ada@example.com", next, meta)
	asMFARequired(t, "SessionLogin after the reset", c != nil, err)
	done := h.mfaVerify(t, ch.Token, auth.SecondFactor{Code: h.mfaCode(t, u)})
	if cl := h.claimsOf(t, done.Tokens.AccessToken); cl.ACR != auth.ACR2 {
		t.Fatalf("acr after the reset's sign-in = %q, want aal2", cl.ACR)
	}
	if on, err := h.svc.MFAEnabled(ctx, u.ID); err != nil || !on {
		t.Fatalf("MFAEnabled after the reset = %v, %v", on, err)
	}
}

// SPEC §18 H2: someone who pre-registers another person's address and
// sets up TOTP on it must not keep it once the owner verifies the address
// without a credential of the account — or the owner, after resetting the
// password, is locked out by the intruder's authenticator.
func TestMFAVerificationReclaimRemovesIntrudersTOTP(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// The intruder registers the victim's address (unverified) and enrols.
	acct := h.user(t, h.register(t, "victim@example.com", "intruder's password 1").ID)
	c, err := h.svc.SignInForTest(ctx, acct, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	p := h.svc.SessionPrincipal(c.Session, acct)
	e, err := h.svc.BeginTOTP(ctx, p, meta)
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}
	if _, err := h.svc.ConfirmTOTP(ctx, p, e.ID, mfaCodeAt(t, e.Secret, h.clock.Now()), meta); err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	// The owner follows the verification link, signed in to nothing.
	vt, err := h.svc.IssueToken(ctx, acct, auth.PurposeVerify)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.VerifyEmail(ctx, vt, "", meta); err != nil {
		t.Fatalf("VerifyEmail: %v", err)
	}
	st, err := h.svc.MFAStatus(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.TOTP != nil || st.Recovery != nil {
		t.Fatalf("the intruder's TOTP authenticator (%v) / recovery codes (%v) survived the reclaim (SPEC §18 H2)", st.TOTP != nil, st.Recovery != nil)
	}
}

// ---------------------------------------------------------------------------
// 6. Assurance.

// A resource server trusts acr/amr/auth_time: a finished challenge is
// aal2 with pwd+otp+mfa at the time of the sign-in; a refresh keeps the
// level and the time and never renews them; a one-factor sign-in says
// aal1 and pwd only.
func TestMFAAssuranceClaims(t *testing.T) {
	h := newHarness(t)
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	signedIn := h.clock.Now()
	ch := h.mfaGrant(t, "ada@example.com", goodPass, "read")
	done := h.mfaVerify(t, ch.Token, auth.SecondFactor{Code: h.mfaCode(t, u)})
	cl := h.claimsOf(t, done.Tokens.AccessToken)
	wantAssurance(t, "TOTP sign-in", cl.ACR, cl.AMR, cl.AuthTime, auth.ACR2, []string{"pwd", "otp", "mfa"}, signedIn)
	if cl.Subject != u.ID || cl.ClientID != "client-web" || !slices.Equal(cl.Scopes, []string{"read"}) {
		t.Fatalf("the challenge did not keep its binding: sub %s client %q scope %v", cl.Subject, cl.ClientID, cl.Scopes)
	}
	if done.Session != nil {
		t.Fatal("a token sign-in also made a cookie session")
	}

	// A refresh an hour later keeps aal2 and the original auth_time.
	h.clock.Advance(time.Hour)
	r := h.refresh(t, done.Tokens.RefreshToken, "")
	rc := h.claimsOf(t, r.AccessToken)
	wantAssurance(t, "refreshed token", rc.ACR, rc.AMR, rc.AuthTime, auth.ACR2, []string{"pwd", "otp", "mfa"}, signedIn)
	if !rc.IssuedAt.Equal(h.clock.Now()) {
		t.Fatalf("the refreshed token was not issued now")
	}

	// A recovery code is a second factor too; a cookie sign-in records it.
	h.mfaNext()
	signedIn = h.clock.Now()
	sc := h.mfaVerify(t, h.mfaSession(t, "ada@example.com").Token, auth.SecondFactor{RecoveryCode: u.codes[0]})
	if sc.Session == nil || sc.SessionToken == "" || sc.Tokens != nil {
		t.Fatalf("a cookie sign-in finished as %+v", sc)
	}
	sess, _, err := h.svc.AuthenticateSession(context.Background(), sc.SessionToken)
	if err != nil {
		t.Fatalf("AuthenticateSession: %v", err)
	}
	wantAssurance(t, "recovery-code session", sess.ACR, sess.AMR, sess.AuthTime, auth.ACR2, []string{"pwd", "otp", "mfa"}, signedIn)

	// Without a second factor: aal1, pwd only, also after a refresh.
	h.register(t, "plain@example.com", goodPass)
	signedIn = h.clock.Now()
	one := h.grant(t, "plain@example.com", goodPass, "")
	pc := h.claimsOf(t, one.AccessToken)
	wantAssurance(t, "password-only sign-in", pc.ACR, pc.AMR, pc.AuthTime, auth.ACR1, nil, signedIn)
	if !slices.Equal(pc.AMR, []string{"pwd"}) {
		t.Fatalf("password-only amr = %v, want [pwd]", pc.AMR)
	}
	h.clock.Advance(time.Hour)
	prc := h.claimsOf(t, h.refresh(t, one.RefreshToken, "").AccessToken)
	wantAssurance(t, "refreshed password-only token", prc.ACR, prc.AMR, prc.AuthTime, auth.ACR1, []string{"pwd"}, signedIn)
	if slices.Contains(prc.AMR, "mfa") || slices.Contains(prc.AMR, "otp") {
		t.Fatalf("a refresh raised the methods: %v", prc.AMR)
	}
}

// ---------------------------------------------------------------------------
// 7. Confirmation ends weaker sign-ins.

// A session or refresh token stolen before the owner turned on 2FA must
// not outlive it: confirmation ends every aal1 session and family but the
// confirming session, which becomes aal2.
func TestMFAConfirmationEndsWeakerSignIns(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.user(t, h.register(t, "ada@example.com", goodPass).ID)
	stolen, err := h.svc.SignInForTest(ctx, u, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	stolenRT := h.grant(t, "ada@example.com", goodPass, "").RefreshToken
	h.clock.Advance(time.Minute)
	own, err := h.svc.SignInForTest(ctx, u, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	signedIn := h.clock.Now()
	h.clock.Advance(time.Minute)
	p := h.svc.SessionPrincipal(own.Session, u)
	e, err := h.svc.BeginTOTP(ctx, p, meta)
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}
	conf, err := h.svc.ConfirmTOTP(ctx, p, e.ID, mfaCodeAt(t, e.Secret, h.clock.Now()), meta)
	if err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	if conf.Completion != nil {
		t.Fatal("a session's confirmation made a new sign-in")
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, stolen.SessionToken); err == nil {
		t.Fatal("an aal1 session from before confirmation survived it")
	}
	h.refuseRefresh(t, stolenRT)
	sess, _, err := h.svc.AuthenticateSession(ctx, own.SessionToken)
	if err != nil {
		t.Fatalf("the confirming session was ended: %v", err)
	}
	wantAssurance(t, "confirming session", sess.ACR, sess.AMR, sess.AuthTime, auth.ACR2, []string{"pwd", "otp", "mfa"}, signedIn)
	// And the elevation is real for the step-up check.
	if err := h.svc.RequireStepUp(ctx, h.svc.SessionPrincipal(sess, u), false); err != nil {
		t.Fatalf("RequireStepUp on the elevated session: %v", err)
	}
}

// ---------------------------------------------------------------------------
// 8. Secrets at rest.

// dumpDB returns every value of every table, as text and bytes, and the
// raw bytes of the database files (the main file and its WAL).
func (h *harness) dumpDB(t *testing.T) []byte {
	t.Helper()
	db := h.rawDB(t)
	names, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		if err := names.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	names.Close()
	if !slices.Contains(tables, "totp_authenticators") || !slices.Contains(tables, "recovery_codes") {
		t.Fatalf("tables %v: the MFA tables are missing", tables)
	}
	var out bytes.Buffer
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					out.Write(v)
				default:
					fmt.Fprint(&out, v)
				}
				out.WriteByte(0)
			}
		}
		rows.Close()
	}
	for _, f := range []string{h.path, h.path + "-wal"} {
		if b, err := os.ReadFile(f); err == nil {
			out.Write(b)
		}
	}
	return out.Bytes()
}

// A database dump (a backup, a read-only SQL injection) must not hold a
// usable TOTP secret, recovery code or mfa_token, nor let an attacker test
// recovery-code guesses with a plain hash.
func TestMFASecretsAtRest(t *testing.T) {
	h := newHarness(t)
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	pending := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(u.secret, "="))
	if err != nil || len(raw) != 20 {
		t.Fatalf("the secret %q is not 20 bytes of base32: %v", u.secret, err)
	}
	secrets := [][]byte{raw, []byte(u.secret), []byte(strings.ToLower(u.secret)), []byte(pending),
		[]byte(strings.TrimPrefix(pending, auth.MFATokenPrefix))}
	for _, c := range u.codes {
		norm := strings.ReplaceAll(c, "-", "")
		plain := sha256.Sum256([]byte(norm))
		display := sha256.Sum256([]byte(c))
		secrets = append(secrets, []byte(c), []byte(norm), []byte(strings.ToUpper(norm)),
			[]byte(hex.EncodeToString(plain[:])), []byte(hex.EncodeToString(display[:])), plain[:])
	}
	dump := h.dumpDB(t)
	for _, s := range secrets {
		if bytes.Contains(dump, s) {
			t.Errorf("the database holds a secret in a usable form: %.24q", s)
		}
	}
	// The stored hashes exist (the check above did not pass on an empty table).
	var n int
	if err := h.rawDB(t).QueryRow(`SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?`, u.ID).Scan(&n); err != nil || n != 10 {
		t.Fatalf("%d stored recovery codes (%v), want 10", n, err)
	}
	var sealed []byte
	if err := h.rawDB(t).QueryRow(`SELECT sealed FROM totp_authenticators WHERE user_id = ?`, u.ID).Scan(&sealed); err != nil || len(sealed) < len(raw)+16 {
		t.Fatalf("sealed secret %d bytes (%v): not an AEAD box of the secret", len(sealed), err)
	}
	h.assertAuditClean(t, u.secret, pending, u.codes[0], strings.ReplaceAll(u.codes[0], "-", ""))
}

// What users type: upper case, spaces instead of hyphens, no hyphens,
// stray whitespace — all the same code, and still single-use.
func TestMFARecoveryCodeNormalisation(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	typed := []string{
		strings.ToUpper(u.codes[0]),
		strings.ReplaceAll(u.codes[1], "-", " "),
		strings.ReplaceAll(u.codes[2], "-", ""),
		"  " + strings.ToUpper(strings.ReplaceAll(u.codes[3], "-", "")) + " ",
	}
	for i, in := range typed {
		tok := h.mfaGrant(t, "ada@example.com", goodPass, "").Token
		c, err := h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{RecoveryCode: in}, meta)
		if err != nil || c == nil {
			t.Fatalf("recovery code typed as %q: %v", in, err)
		}
		// The same code in its display form is now spent.
		tok = h.mfaGrant(t, "ada@example.com", goodPass, "").Token
		c, err = h.svc.VerifyMFA(ctx, tok, auth.SecondFactor{RecoveryCode: u.codes[i]}, meta)
		wantWrongCode(t, fmt.Sprintf("code %d again in its display form", i), c, err, 4)
	}
	if n := h.remainingRecovery(t, u.ID); n != 6 {
		t.Fatalf("%d recovery codes left, want 6", n)
	}
}

// ---------------------------------------------------------------------------
// 9. Step-up.

// RequireStepUp: a user with MFA needs a recent aal2 sign-in; one without
// needs a recent sign-in or the password in the request.
func TestMFARequireStepUp(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	v := h.register(t, "plain@example.com", goodPass)
	now := h.clock.Now()
	principal := func(id, acr string, at time.Time) *auth.Principal {
		return &auth.Principal{UserID: id, Kind: auth.KindSession, SessionID: "s", ACR: acr, AMR: []string{"pwd"}, AuthTime: at}
	}
	refused := func(what string, p *auth.Principal, pw bool) {
		t.Helper()
		err := h.svc.RequireStepUp(ctx, p, pw)
		wantReason(t, what, err, auth.EUNAUTHORIZED, auth.ReasonStepUpRequired)
		if !auth.IsStepUpRequired(err) {
			t.Fatalf("%s: IsStepUpRequired = false", what)
		}
	}
	accepted := func(what string, p *auth.Principal, pw bool) {
		t.Helper()
		if err := h.svc.RequireStepUp(ctx, p, pw); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// With TOTP.
	refused("MFA user, fresh aal1", principal(u.ID, auth.ACR1, now), false)
	refused("MFA user, fresh aal1 with the password", principal(u.ID, auth.ACR1, now), true)
	refused("MFA user, aal2 exactly 10 minutes old", principal(u.ID, auth.ACR2, now.Add(-10*time.Minute)), false)
	refused("MFA user, stale aal2 with the password", principal(u.ID, auth.ACR2, now.Add(-time.Hour)), true)
	refused("MFA user, aal2 without auth_time", principal(u.ID, auth.ACR2, time.Time{}), false)
	accepted("MFA user, aal2 9m59s old", principal(u.ID, auth.ACR2, now.Add(-10*time.Minute+time.Second)), false)
	accepted("MFA user, fresh aal2", principal(u.ID, auth.ACR2, now), false)
	// Without.
	refused("no MFA, stale aal1", principal(v.ID, auth.ACR1, now.Add(-11*time.Minute)), false)
	refused("no MFA, no auth_time", principal(v.ID, auth.ACR1, time.Time{}), false)
	accepted("no MFA, stale aal1 with the password", principal(v.ID, auth.ACR1, now.Add(-11*time.Minute)), true)
	accepted("no MFA, fresh aal1", principal(v.ID, auth.ACR1, now), false)
	if err := h.svc.RequireStepUp(ctx, nil, true); err == nil {
		t.Fatal("RequireStepUp(nil) passed")
	}
}

// Step-up of a cookie session with a code: the session itself is renewed
// (aal2, auth_time now), and the code's step is spent like any other.
func TestMFAStepUpSession(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	done := h.mfaVerify(t, h.mfaSession(t, "ada@example.com").Token, auth.SecondFactor{Code: h.mfaCode(t, u)})
	h.clock.Advance(11 * time.Minute)
	sess, user, err := h.svc.AuthenticateSession(ctx, done.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	p := h.svc.SessionPrincipal(sess, user)
	wantReason(t, "an 11-minute-old aal2 session", h.svc.RequireStepUp(ctx, p, false), auth.EUNAUTHORIZED, auth.ReasonStepUpRequired)
	code := h.mfaCode(t, u)
	r, err := h.svc.StepUp(ctx, p, auth.StepUpInput{Factor: auth.SecondFactor{Code: code}}, meta)
	if err != nil || r != nil {
		t.Fatalf("StepUp(session) = %+v, %v; want nil, nil", r, err)
	}
	sess, user, err = h.svc.AuthenticateSession(ctx, done.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	wantAssurance(t, "stepped-up session", sess.ACR, sess.AMR, sess.AuthTime, auth.ACR2, []string{"pwd", "otp", "mfa"}, h.clock.Now())
	if err := h.svc.RequireStepUp(ctx, h.svc.SessionPrincipal(sess, user), false); err != nil {
		t.Fatalf("RequireStepUp after the step-up: %v", err)
	}
	// The step-up's code is spent: not for a sign-in, not for another step-up.
	c, err := h.svc.VerifyMFA(ctx, h.mfaGrant(t, "ada@example.com", goodPass, "").Token, auth.SecondFactor{Code: code}, meta)
	wantReplay(t, "the step-up code as a sign-in code", c, err)
	_, err = h.svc.StepUp(ctx, p, auth.StepUpInput{Factor: auth.SecondFactor{Code: code}}, meta)
	wantReason(t, "the step-up code again", err, auth.EINVALID, auth.ReasonMFACodeReused)
}

// Step-up of a bearer token: a new access token, aal2 and auth_time now,
// same subject, client and scope.
func TestMFAStepUpBearer(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	done := h.mfaVerify(t, h.mfaGrant(t, "ada@example.com", goodPass, "read write").Token, auth.SecondFactor{Code: h.mfaCode(t, u)})
	h.clock.Advance(11 * time.Minute)
	p := h.accessPrincipal(t, done.Tokens.AccessToken)
	wantReason(t, "an 11-minute-old aal2 token", h.svc.RequireStepUp(ctx, p, false), auth.EUNAUTHORIZED, auth.ReasonStepUpRequired)
	r, err := h.svc.StepUp(ctx, p, auth.StepUpInput{Factor: auth.SecondFactor{RecoveryCode: u.codes[0]}}, meta)
	if err != nil || r == nil || r.AccessToken == "" {
		t.Fatalf("StepUp(bearer) = %+v, %v", r, err)
	}
	if r.RefreshToken != "" {
		t.Fatal("a step-up started a new refresh family")
	}
	cl := h.claimsOf(t, r.AccessToken)
	wantAssurance(t, "stepped-up token", cl.ACR, cl.AMR, cl.AuthTime, auth.ACR2, []string{"pwd", "otp", "mfa"}, h.clock.Now())
	if cl.Subject != u.ID || cl.ClientID != "client-web" || !slices.Equal(cl.Scopes, []string{"read", "write"}) {
		t.Fatalf("stepped-up token: sub %s client %q scope %v", cl.Subject, cl.ClientID, cl.Scopes)
	}
	if err := h.svc.RequireStepUp(ctx, h.accessPrincipal(t, r.AccessToken), false); err != nil {
		t.Fatalf("RequireStepUp with the new token: %v", err)
	}
	if n := h.remainingRecovery(t, u.ID); n != 9 {
		t.Fatalf("%d recovery codes left after a step-up with one, want 9", n)
	}
}

// Someone holding a TOTP user's session and password (but not the
// authenticator) tries to step up with the password alone: refused, and
// nothing is renewed. A user without MFA steps up with the password.
func TestMFAStepUpNeedsTheSecondFactor(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	done := h.mfaVerify(t, h.mfaSession(t, "ada@example.com").Token, auth.SecondFactor{Code: h.mfaCode(t, u)})
	signedIn := h.clock.Now()
	h.clock.Advance(11 * time.Minute)
	sess, user, err := h.svc.AuthenticateSession(ctx, done.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	p := h.svc.SessionPrincipal(sess, user)
	for name, in := range map[string]auth.StepUpInput{
		"the password alone":         {Password: goodPass},
		"nothing":                    {},
		"a wrong password and code":  {Password: "not the password", Factor: auth.SecondFactor{Code: h.mfaCode(t, u)}},
		"the password, a wrong code": {Password: goodPass, Factor: auth.SecondFactor{Code: mfaOther(h.mfaCode(t, u))}},
	} {
		if _, err := h.svc.StepUp(ctx, p, in, meta); auth.ErrorCode(err) != auth.EINVALID {
			t.Fatalf("StepUp with %s: %v, want a refusal", name, err)
		}
	}
	sess, _, err = h.svc.AuthenticateSession(ctx, done.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.AuthTime.Equal(signedIn) {
		t.Fatalf("a refused step-up renewed the session: auth_time %v, want %v", sess.AuthTime, signedIn)
	}
	// An enrolment principal and an API key cannot step up.
	for name, q := range map[string]*auth.Principal{
		"enrolment": {UserID: u.ID, Kind: auth.KindMFAEnrolment, Enrolment: true},
		"api key":   {UserID: u.ID, Kind: auth.KindAPIKey, Scopes: []string{"read", "write"}},
	} {
		if _, err := h.svc.StepUp(ctx, q, auth.StepUpInput{Factor: auth.SecondFactor{Code: h.mfaCode(t, u)}}, meta); auth.ErrorCode(err) != auth.EFORBIDDEN {
			t.Fatalf("StepUp as %s: %v, want forbidden", name, err)
		}
	}

	// Without MFA the password is the step-up, and it renews the session.
	v := h.user(t, h.register(t, "plain@example.com", goodPass).ID)
	c, err := h.svc.SignInForTest(ctx, v, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(11 * time.Minute)
	vs, vu, err := h.svc.AuthenticateSession(ctx, c.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	vp := h.svc.SessionPrincipal(vs, vu)
	if _, err := h.svc.StepUp(ctx, vp, auth.StepUpInput{Password: "not the password"}, meta); auth.ErrorCode(err) != auth.EINVALID {
		t.Fatalf("StepUp with a wrong password: %v", err)
	}
	if _, err := h.svc.StepUp(ctx, vp, auth.StepUpInput{Password: goodPass}, meta); err != nil {
		t.Fatalf("StepUp with the password: %v", err)
	}
	vs, _, err = h.svc.AuthenticateSession(ctx, c.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	wantAssurance(t, "password step-up", vs.ACR, vs.AMR, vs.AuthTime, auth.ACR1, []string{"pwd"}, h.clock.Now())
}

// Guessing codes through the step-up endpoint (no challenge, so no
// per-challenge limit) still counts toward the lockout.
func TestMFAStepUpWrongCodesLockTheAccount(t *testing.T) {
	h := newLockoutHarness(t, 3)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	p := h.svc.SessionPrincipal(u.enrol.Session, u.User)
	wrong := mfaOther(h.mfaCode(t, u))
	for i := range 3 {
		_, err := h.svc.StepUp(ctx, p, auth.StepUpInput{Factor: auth.SecondFactor{Code: wrong}}, meta)
		wantReason(t, fmt.Sprintf("step-up wrong code %d", i+1), err, auth.EINVALID, auth.ReasonMFAInvalidCode)
	}
	_, err := h.svc.StepUp(ctx, p, auth.StepUpInput{Factor: auth.SecondFactor{Code: wrong}}, meta)
	wantLocked(t, "the step-up wrong code over the threshold", err)
	r, err := h.svc.PasswordGrant(ctx, "ada@example.com", goodPass, "", "client-web", meta)
	if r != nil {
		t.Fatal("tokens issued for a locked account")
	}
	wantLocked(t, "the right password after step-up guessing", err)
}

// ---------------------------------------------------------------------------
// 10. Admin reset.

// A user who lost their authenticator is reset by an admin: TOTP and
// recovery codes go, every session and family ends; nobody else can do it.
func TestMFAAdminReset(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.mfaEnrol(t, "ada@example.com")
	h.mfaNext()
	sess := h.mfaVerify(t, h.mfaSession(t, "ada@example.com").Token, auth.SecondFactor{Code: h.mfaCode(t, u)})
	h.mfaNext()
	fam := h.mfaVerify(t, h.mfaGrant(t, "ada@example.com", goodPass, "").Token, auth.SecondFactor{Code: h.mfaCode(t, u)})
	pending := h.mfaGrant(t, "ada@example.com", goodPass, "").Token

	h.insertUser(t, "root@example.com", h.hash(t, goodPass), false, "admin")
	admin := h.accessPrincipal(t, h.grant(t, "root@example.com", goodPass, "").AccessToken)
	h.register(t, "mallory@example.com", goodPass)
	mallory := h.accessPrincipal(t, h.grant(t, "mallory@example.com", goodPass, "").AccessToken)
	self := h.accessPrincipal(t, fam.Tokens.AccessToken)
	narrowAdmin := h.accessPrincipal(t, h.grant(t, "root@example.com", goodPass, "read write").AccessToken)
	forged := &auth.Principal{UserID: u.ID, Kind: auth.KindAccessToken, Scopes: []string{"read", "write", "admin"}}

	for name, p := range map[string]*auth.Principal{"another user": mallory, "the user": self, "an admin token without scope admin": narrowAdmin,
		"a forged admin scope": forged, "nobody": nil} {
		err := h.svc.AdminResetMFA(ctx, p, u.ID, false, meta)
		if c := auth.ErrorCode(err); c != auth.EFORBIDDEN && c != auth.EUNAUTHORIZED {
			t.Fatalf("AdminResetMFA by %s: %v, want a refusal", name, err)
		}
	}
	if on, _ := h.svc.MFAEnabled(ctx, u.ID); !on {
		t.Fatal("a refused reset removed the TOTP authenticator")
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, sess.SessionToken); err != nil {
		t.Fatalf("a refused reset ended a session: %v", err)
	}

	if err := h.svc.AdminResetMFA(ctx, admin, u.ID, false, meta); err != nil {
		t.Fatalf("AdminResetMFA: %v", err)
	}
	st, err := h.svc.MFAStatus(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.TOTP != nil || st.Recovery != nil {
		t.Fatalf("after the reset: totp %v, recovery codes %+v", st.TOTP != nil, st.Recovery)
	}
	for name, tok := range map[string]string{"the MFA session": sess.SessionToken, "the enrolling session": u.enrol.SessionToken} {
		if _, _, err := h.svc.AuthenticateSession(ctx, tok); err == nil {
			t.Fatalf("%s survived the reset", name)
		}
	}
	h.refuseRefresh(t, fam.Tokens.RefreshToken)
	// Old factors on a challenge opened before the reset finish nothing.
	for _, f := range []auth.SecondFactor{{RecoveryCode: u.codes[0]}, {Code: h.mfaCode(t, u)}} {
		if c, err := h.svc.VerifyMFA(ctx, pending, f, meta); err == nil || c != nil {
			t.Fatalf("%+v finished a pre-reset challenge after the reset", f)
		}
	}
	evs := h.audit(t, auth.AuditFilter{UserID: u.ID, Type: auth.EventMFAReset})
	if len(evs) != 1 {
		t.Fatalf("%d mfa.reset events, want 1", len(evs))
	}
	if got := fmt.Sprint(evs[0].Details["admin_id"]); got != admin.UserID {
		t.Fatalf("mfa.reset admin_id = %q, want %q", got, admin.UserID)
	}
	// The next sign-in is a one-factor one.
	r := h.grant(t, "ada@example.com", goodPass, "")
	if cl := h.claimsOf(t, r.AccessToken); cl.ACR != auth.ACR1 {
		t.Fatalf("acr after the reset = %q, want aal1", cl.ACR)
	}
}

// ---------------------------------------------------------------------------
// 11. Required roles.

// A user whose role requires 2FA and who has no factor gets only an
// enrolment challenge; enrolling with it finishes the sign-in at aal2.
// The enrolment token is good for nothing else, and single-use.
func TestMFARequiredRoles(t *testing.T) {
	h := newHarness(t, func(c *auth.Config) { c.MFA.RequiredRoles = []string{"admin"} })
	ctx := context.Background()
	boss := h.insertUser(t, "boss@example.com", h.hash(t, goodPass), false, "admin")
	signedIn := h.clock.Now()
	ch := h.mfaGrant(t, "boss@example.com", goodPass, "")
	if !ch.Enrol || ch.Methods == nil || len(ch.Methods) != 0 || ch.Reason() != auth.ReasonMFAEnrollmentRequired {
		t.Fatalf("challenge = %+v (reason %s), want an enrolment with methods []", ch, ch.Reason())
	}
	p, err := h.svc.EnrolmentPrincipal(ctx, ch.Token)
	if err != nil || !p.Enrolment || p.Kind != auth.KindMFAEnrolment || p.UserID != boss.ID {
		t.Fatalf("EnrolmentPrincipal = %+v, %v", p, err)
	}
	// The enrolment token manages nothing and steps up nothing.
	if _, err := h.svc.RegenerateRecoveryCodes(ctx, p, meta); err == nil {
		t.Fatal("an enrolment token regenerated recovery codes")
	}
	if _, err := h.svc.StepUp(ctx, p, auth.StepUpInput{Password: goodPass}, meta); err == nil {
		t.Fatal("an enrolment token stepped up")
	}
	e, err := h.svc.BeginTOTP(ctx, p, meta)
	if err != nil {
		t.Fatalf("BeginTOTP(enrolment): %v", err)
	}
	// A wrong confirmation code finishes nothing.
	if conf, err := h.svc.ConfirmTOTP(ctx, p, e.ID, mfaOther(mfaCodeAt(t, e.Secret, h.clock.Now())), meta); err == nil || conf != nil {
		t.Fatalf("ConfirmTOTP with a wrong code = %+v, %v", conf, err)
	}
	conf, err := h.svc.ConfirmTOTP(ctx, p, e.ID, mfaCodeAt(t, e.Secret, h.clock.Now()), meta)
	if err != nil {
		t.Fatalf("ConfirmTOTP(enrolment): %v", err)
	}
	if len(conf.RecoveryCodes) == 0 || conf.Completion == nil || conf.Completion.Tokens == nil {
		t.Fatalf("the enrolment did not finish the sign-in: %+v", conf)
	}
	cl := h.claimsOf(t, conf.Completion.Tokens.AccessToken)
	wantAssurance(t, "enrolment sign-in", cl.ACR, cl.AMR, cl.AuthTime, auth.ACR2, []string{"pwd", "otp", "mfa"}, signedIn)
	if cl.Subject != boss.ID || !slices.Contains(cl.Scopes, "admin") {
		t.Fatalf("enrolment sign-in token: sub %s scopes %v", cl.Subject, cl.Scopes)
	}
	// Single use.
	if q, err := h.svc.EnrolmentPrincipal(ctx, ch.Token); err == nil || q != nil {
		t.Fatalf("the used enrolment token still resolves: %+v", q)
	}
	// The next sign-in is a normal challenge.
	h.mfaNext()
	next := h.mfaGrant(t, "boss@example.com", goodPass, "")
	if next.Enrol || !slices.Contains(next.Methods, auth.MFAMethodTOTP) {
		t.Fatalf("the next challenge = %+v, want a TOTP challenge", next)
	}
	h.mfaVerify(t, next.Token, auth.SecondFactor{Code: mfaCodeAt(t, e.Secret, h.clock.Now())})

	// The cookie flavour: enrolling finishes with a session at aal2.
	boss2 := h.insertUser(t, "boss2@example.com", h.hash(t, goodPass), false, "user", "admin")
	sch := h.mfaSession(t, "boss2@example.com")
	if !sch.Enrol {
		t.Fatalf("session challenge = %+v, want an enrolment", sch)
	}
	p2, err := h.svc.EnrolmentPrincipal(ctx, sch.Token)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := h.svc.BeginTOTP(ctx, p2, meta)
	if err != nil {
		t.Fatal(err)
	}
	conf2, err := h.svc.ConfirmTOTP(ctx, p2, e2.ID, mfaCodeAt(t, e2.Secret, h.clock.Now()), meta)
	if err != nil || conf2.Completion == nil || conf2.Completion.SessionToken == "" {
		t.Fatalf("ConfirmTOTP(enrolment, session) = %+v, %v", conf2, err)
	}
	s2, u2, err := h.svc.AuthenticateSession(ctx, conf2.Completion.SessionToken)
	if err != nil || u2.ID != boss2.ID || s2.ACR != auth.ACR2 {
		t.Fatalf("enrolment session: %+v, %v", s2, err)
	}

	// A user without the role is not challenged.
	h.register(t, "plain@example.com", goodPass)
	r, err := h.svc.PasswordGrant(ctx, "plain@example.com", goodPass, "", "client-web", meta)
	if err != nil {
		t.Fatalf("a user without a required role was challenged: %v", err)
	}
	if cl := h.claimsOf(t, r.AccessToken); cl.ACR != auth.ACR1 {
		t.Fatalf("plain user's acr = %q, want aal1", cl.ACR)
	}
}
