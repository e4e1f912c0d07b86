package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/internal/password"
)

// PasswordHasher hashes and verifies passwords under admission control.
type PasswordHasher interface {
	Hash(ctx context.Context, plain string) (string, error)
	Verify(ctx context.Context, encoded, plain string) (ok, rehash bool, err error)
	VerifyDummy(ctx context.Context, plain string) error
}

// PasswordPolicy decides whether a new password is acceptable.
type PasswordPolicy interface {
	Check(plain, email string) error
}

// AccessClaims are the claims of an access token (RFC 9068).
type AccessClaims struct {
	ID        string // jti
	Subject   string // user id
	Email     string
	ClientID  string
	Scopes    []string
	Roles     []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// KID is the key that signed the token (set by verification only).
	KID string
	// NotBefore is nbf when it differs from IssuedAt (zero: IssuedAt): a
	// token minted in the second a revocation of its subject committed
	// carries the next second as iat (SPEC §15) and is valid now.
	NotBefore time.Time
	// SID is the refresh family's id, or the cookie session's for tokens
	// minted without a family (SPEC §15): what a revocation names.
	SID string
	// NoRoles leaves the roles claim out: tokens of third-party clients
	// and of client_credentials carry none (SPEC §14).
	NoRoles bool
	// RFC 9068 §2.2.1 (SPEC §13).
	ACR      string
	AMR      []string
	AuthTime time.Time
}

// AccessTokenIssuer signs access tokens.
type AccessTokenIssuer interface {
	Issue(ctx context.Context, c *AccessClaims) (string, error)
}

// Config holds the settings the services use.
type Config struct {
	AccessTokenTTL    time.Duration
	RefreshTokenTTL   time.Duration
	SessionTTL        time.Duration
	SessionIdleTTL    time.Duration
	RefreshReuseGrace time.Duration
	DefaultRoles      []string
	RevealExisting    bool
	// RequireVerifiedEmail refuses password login until the email is verified.
	RequireVerifiedEmail bool
	MFA                  MFAConfig
	// OpenID provider (SPEC §14); New fills zero TTLs with the defaults.
	IDTokenTTL  time.Duration // 15m
	AuthCodeTTL time.Duration // 60s
	ConsentTTL  time.Duration // 0: until revoked
	// Webhooks (SPEC §16); New fills a zero MaxAttempts with 10.
	Webhooks WebhookConfig
}

// MFAConfig holds the settings of SPEC §13. New fills zero durations and
// counts with the defaults (TOTPSkew 0 is a valid setting and stays).
type MFAConfig struct {
	RequiredRoles     []string
	ChallengeTTL      time.Duration // 5m
	MaxAttempts       int           // 5
	TOTPIssuer        string
	TOTPSkew          int           // 0–2
	RecoveryCodeCount int           // 10 (5–20)
	StepUpMaxAge      time.Duration // 10m
	PasskeyIsMFA      bool          // a passkey sign-in with UV is aal2
}

// Metrics receives domain counters; nil fields are skipped.
type Metrics struct {
	Login func(result string)
	// MFAChallenge counts second-factor checks by method and result
	// (gatehouse_mfa_challenges_total).
	MFAChallenge func(method, result string)
	RateLimited  func(endpoint string)
}

// Service implements accounts, sign-in, sessions, tokens, API keys and the
// authorization policy. Build it with New: every field is unexported, so no
// protection can be switched off by leaving a field nil.
type Service struct {
	st       Stores
	hasher   PasswordHasher
	policy   PasswordPolicy
	issuer   AccessTokenIssuer
	idTokens IDTokenSigner
	// revocations: see Options.Revocations.
	revocations Revocations
	roles       *RoleModel
	cfg         Config
	limits      Limits
	metrics     Metrics
	log         *slog.Logger
	clock       func() time.Time
	keys        derivedKeys

	users  userCache    // see TokenUser
	keyUse keyUsage     // see FlushAPIKeyUse
	hooks  serviceHooks // blocking hooks (hooks.go)

	webhooks webhookState // endpoint snapshot (webhooks.go)
}

func (s *Service) now() time.Time {
	return s.clock().UTC().Truncate(time.Microsecond)
}

// Roles returns the role model (role → scopes).
func (s *Service) Roles() *RoleModel { return s.roles }

// Meta describes where a request came from, for the audit log.
type Meta struct {
	IP        string
	UserAgent string
	// SessionID is the caller's own cookie session, when it has one.
	SessionID string
	// Actor is the authenticated caller's user id, for events about
	// something else than the caller's account (an administrator's
	// changes to a client).
	Actor string
	// Via names the interface an administrator acted through ("console"
	// for the admin console, SPEC §17); audit events carry it, with Actor,
	// in their details.
	Via string
}

// NewID returns an opaque, random identifier (26 lower-case base32 characters).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// HashToken returns the hex SHA-256 of an opaque token. Tokens carry 256 bits
// of randomness, so an unkeyed hash is enough: it cannot be brute-forced.
func HashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// refreshPrefix marks Gatehouse refresh tokens for secret scanners.
const refreshPrefix = "ghr_"

func newRefreshToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// successorToken derives the refresh token that replaces tok. Deriving it
// (HMAC keyed with a secret derived from the root secret) instead of drawing
// it at random lets a repeat presentation inside the grace window return the
// same successor although only hashes are stored, and makes concurrent
// rotations of one token agree on one successor.
func (s *Service) successorToken(tok string) string {
	m := hmac.New(sha256.New, s.keys.refresh)
	m.Write([]byte("gatehouse refresh successor v1\x00"))
	m.Write([]byte(tok))
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// NormalizeEmail trims and lower-cases an email and checks its shape.
func NormalizeEmail(raw string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	bad := func(msg string) (string, error) {
		return "", &Error{Code: EINVALID, Field: "email", Message: msg}
	}
	switch {
	case e == "":
		return bad("email is required")
	case len(e) > 254:
		return bad("email is too long (at most 254 characters)")
	case !utf8.ValidString(e):
		return bad("email is not valid UTF-8")
	}
	for _, r := range e {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == utf8.RuneError {
			return bad("email contains a control or space character")
		}
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || at == len(e)-1 || strings.Count(e, "@") != 1 {
		return bad("email must look like name@example.com")
	}
	if len(e[:at]) > 64 {
		return bad("email local part is too long (at most 64 characters)")
	}
	return e, nil
}

func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", &Error{Code: EINVALID, Field: "name", Message: "name must be valid UTF-8 text"}
	}
	if utf8.RuneCountInString(name) > 200 {
		return "", &Error{Code: EINVALID, Field: "name", Message: "name is too long (at most 200 characters)"}
	}
	return name, nil
}

// policyError turns a password policy or hashing error into a domain error.
func policyError(err error) error {
	var pe *password.PolicyError
	if errors.As(err, &pe) {
		return &Error{Code: EINVALID, Field: "password", Message: pe.Message}
	}
	return hashError(err)
}

// hashError maps admission-control refusals to EUNAVAILABLE with a retry hint.
func hashError(err error) error {
	var be *password.BusyError
	if errors.As(err, &be) {
		return &Error{Code: EUNAVAILABLE, Message: "the server is busy, try again shortly", RetryAfter: be.RetryAfter, Cause: err}
	}
	return err
}

func (s *Service) audit(ctx context.Context, typ, userID string, m Meta, details map[string]any) {
	s.appendAudit(ctx, s.auditEvent(typ, userID, m, details))
}

// auditEvent makes an event for a store to append with its own writes.
func (s *Service) auditEvent(typ, userID string, m Meta, details map[string]any) *AuditEvent {
	if m.Via != "" {
		d := make(map[string]any, len(details)+2)
		for k, v := range details {
			d[k] = v
		}
		d["via"] = m.Via
		if m.Actor != "" {
			if _, set := d["actor"]; !set {
				d["actor"] = m.Actor
			}
		}
		details = d
	}
	return &AuditEvent{ID: NewID(), Type: typ, At: s.now(), UserID: userID, IP: m.IP, Details: details}
}

// appendAudit appends e with the webhook messages it queues (SPEC §16).
func (s *Service) appendAudit(ctx context.Context, e *AuditEvent) {
	s.attachWebhooks(ctx, e, nil)
	if err := s.st.Audit.AppendAudit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit append failed", "type", e.Type, "err", err)
		return
	}
	s.webhooksQueued(e)
}

func (s *Service) loginMetric(result string) {
	if s.metrics.Login != nil {
		s.metrics.Login(result)
	}
}

// RegisterInput is a registration request.
type RegisterInput struct {
	Email    string
	Password string
	Name     string
}

// Register creates an account. A taken email answers like a new one (a
// fresh-looking user that is not stored) unless RevealExisting is set, so
// registration does not reveal which emails exist. With a before_register
// hook, a new email is put to the hook before the account is made; a taken
// one never is (SPEC §16).
func (s *Service) Register(ctx context.Context, in RegisterInput, m Meta) (*User, error) {
	if err := s.limitIP(ctx, "register", m); err != nil {
		return nil, err
	}
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	name, err := validName(in.Name)
	if err != nil {
		return nil, err
	}
	// The policy caps the length before any hashing happens.
	if err := s.policy.Check(in.Password, email); err != nil {
		return nil, policyError(err)
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, hashError(err)
	}
	now := s.now()
	u := &User{ID: NewID(), Email: email, Name: name, PasswordHash: hash,
		Roles: append([]string(nil), s.cfg.DefaultRoles...), CreatedAt: now, UpdatedAt: now}
	if s.hooks.beforeRegister != nil {
		// The hook is asked about new addresses only: a taken one is
		// answered below exactly as without a hook.
		switch _, err := s.st.Users.UserByEmail(ctx, email); {
		case err == nil:
			return s.registerDuplicate(ctx, u, m, true)
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		if err := s.beforeRegister(ctx, registerHookData{Email: email, Name: name, Source: SourceRegister}, m); err != nil {
			return nil, err
		}
	}
	if err := s.st.Users.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			// Taken since the check above (or no hook): the hook, if any,
			// was asked already, so no waiting.
			return s.registerDuplicate(ctx, u, m, false)
		}
		return nil, err
	}
	s.auditAbout(ctx, EventUserRegistered, u, m, map[string]any{"source": SourceRegister})
	if err := s.enqueue(ctx, MailVerify, u.Email, u.ID); err != nil {
		return nil, err
	}
	u.PasswordHash = ""
	return u, nil
}

// registerDuplicate answers a registration of a taken email: ECONFLICT
// with RevealExisting, else the same status and shape as a new account
// while nothing is stored and the owner of the address is told by mail.
// pace makes it take as long as asking the before_register hook would
// have (paceDuplicate).
func (s *Service) registerDuplicate(ctx context.Context, u *User, m Meta, pace bool) (*User, error) {
	if s.cfg.RevealExisting {
		return nil, &Error{Code: ECONFLICT, Field: "email", Message: "email already registered"}
	}
	if pace {
		s.paceDuplicate(ctx)
	}
	s.audit(ctx, "register.duplicate", "", m, nil)
	if err := s.enqueue(ctx, MailNotice, u.Email, ""); err != nil {
		return nil, err
	}
	u.PasswordHash = ""
	return u, nil
}

// User returns the account with the given id.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	return s.st.Users.UserByID(ctx, id)
}

// UpdateName changes the caller's display name.
func (s *Service) UpdateName(ctx context.Context, userID, name string, m Meta) (*User, error) {
	name, err := validName(name)
	if err != nil {
		return nil, err
	}
	before, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if before.Name == name {
		return before, nil
	}
	defer s.users.forget(userID)
	if err := s.st.Users.UpdateUserName(ctx, userID, name, s.now()); err != nil {
		return nil, err
	}
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	// user.updated (and its webhook, whose payload carries the account
	// with its new name): which fields changed, not their values.
	s.auditAbout(ctx, EventUserUpdated, u, m, map[string]any{"fields": []string{"name"}})
	return u, nil
}

// checkPassword verifies the password of a known user, re-hashing it when
// it was stored with a legacy algorithm or old parameters.
func (s *Service) checkPassword(ctx context.Context, u *User, plain string) (bool, error) {
	if u.PasswordHash == "" {
		return false, hashError(s.hasher.VerifyDummy(ctx, plain))
	}
	ok, rehash, err := s.hasher.Verify(ctx, u.PasswordHash, plain)
	if err != nil {
		return false, hashError(err)
	}
	if ok && rehash {
		// Compare-and-set on the hash just verified (SPEC §18 H7): a
		// password changed or reset while this one was hashing stays.
		if h, err := s.hasher.Hash(ctx, plain); err == nil {
			if err := s.st.Users.SetPasswordHash(ctx, u.ID, u.PasswordHash, h, s.now()); err == nil {
				u.PasswordHash = h
			}
		}
	}
	return ok, nil
}

// tooLong reports a password over the policy's hard cap: refused before any
// hashing so that huge inputs cost nothing.
func tooLong(plain string) bool { return len(plain) > 4*256 || utf8.RuneCountInString(plain) > 256 }

// Login checks an email and password. Every failure is
// ErrInvalidCredentials; an unknown email costs the same hashing work as a
// wrong password so that timing does not reveal which emails exist.
func (s *Service) Login(ctx context.Context, rawEmail, plain string, m Meta) (*User, error) {
	return s.login(ctx, rawEmail, plain, m, nil)
}

// loginSuccess holds the writes a successful login owes (clearing the
// lockout count, the audit event) when the caller makes them together with
// its own in one transaction.
type loginSuccess struct {
	lockKey string
	event   *AuditEvent
}

// login is Login; with deferred set, the success writes are left to the
// caller (see loginSuccess).
func (s *Service) login(ctx context.Context, rawEmail, plain string, m Meta, deferred *loginSuccess) (*User, error) {
	email, err := NormalizeEmail(rawEmail)
	if err != nil || plain == "" || tooLong(plain) {
		if err := s.limitIP(ctx, "login", m); err != nil {
			return nil, err
		}
		s.loginMetric("failed")
		s.audit(ctx, EventLoginFailed, "", m, map[string]any{"reason": "malformed"})
		return nil, ErrInvalidCredentials
	}
	u, err := s.st.Users.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	uid := ""
	if u != nil {
		uid = u.ID
	}
	// Rate limits and the lockout count the attempt before any hashing.
	if err := s.countLogin(ctx, "login", email, uid, m); err != nil {
		return nil, err
	}
	if u == nil {
		if err := s.hasher.VerifyDummy(ctx, plain); err != nil {
			return nil, hashError(err)
		}
		s.loginMetric("failed")
		s.audit(ctx, EventLoginFailed, "", m, map[string]any{"reason": "unknown_user"})
		return nil, ErrInvalidCredentials
	}
	ok, err := s.checkPassword(ctx, u, plain)
	if err != nil {
		return nil, err
	}
	if ok && deferred == nil {
		if err := s.Unlock(ctx, email); err != nil {
			return nil, err
		}
	}
	if !ok || u.Disabled {
		reason := "wrong_password"
		if ok {
			reason = "disabled"
		}
		s.loginMetric("failed")
		s.audit(ctx, EventLoginFailed, u.ID, m, map[string]any{"reason": reason})
		return nil, ErrInvalidCredentials
	}
	if s.cfg.RequireVerifiedEmail && !u.EmailVerified {
		s.loginMetric("unverified")
		s.audit(ctx, EventLoginFailed, u.ID, m, map[string]any{"reason": "email_not_verified"})
		return nil, ErrEmailNotVerified
	}
	s.loginMetric("succeeded")
	if deferred != nil {
		deferred.lockKey = lockoutKey(email)
		deferred.event = &AuditEvent{ID: NewID(), Type: EventLoginSucceeded, At: s.now(), UserID: u.ID, IP: m.IP}
		s.attachWebhooks(ctx, deferred.event, u)
		return u, nil
	}
	s.auditAbout(ctx, EventLoginSucceeded, u, m, nil)
	return u, nil
}

// ChangePassword replaces the caller's password after checking the current
// one, and revokes every refresh token of the user. For a user with a
// second factor the caller's sign-in must also be recent and aal2
// (step-up, SPEC §13); for one without, the current password is the proof.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next string, m Meta) error {
	if err := s.RequireStepUp(ctx, p, true); err != nil {
		return err
	}
	u, err := s.st.Users.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	if tooLong(current) {
		return &Error{Code: EINVALID, Field: "current_password", Message: "current password is incorrect"}
	}
	ok, err := s.checkPassword(ctx, u, current)
	if err != nil {
		return err
	}
	if !ok {
		s.audit(ctx, "password.change_failed", u.ID, m, nil)
		return &Error{Code: EINVALID, Field: "current_password", Message: "current password is incorrect"}
	}
	if err := s.policy.Check(next, u.Email); err != nil {
		return policyError(err)
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return hashError(err)
	}
	defer s.users.forget(u.ID)
	if err := s.st.Users.ChangePassword(ctx, u.ID, hash, s.now()); err != nil {
		return err
	}
	// Every other session ends too; the caller's own stays signed in.
	if err := s.st.Sessions.DeleteUserSessions(ctx, u.ID, m.SessionID); err != nil {
		return err
	}
	s.audit(ctx, EventPasswordChanged, u.ID, m, nil)
	return nil
}

// DeleteAccount deletes the caller's account. It needs step-up (SPEC §13):
// for a user with a second factor a recent aal2 sign-in; for one without,
// the password or a sign-in younger than GATEHOUSE_STEP_UP_MAX_AGE (so
// passkey-only and provider-only accounts can leave too).
func (s *Service) DeleteAccount(ctx context.Context, p *Principal, plain string, m Meta) error {
	if p == nil {
		return ErrInvalidCredentials
	}
	u, err := s.st.Users.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	mfa, err := s.MFAEnabled(ctx, u.ID)
	if err != nil {
		return err
	}
	fresh := !p.AuthTime.IsZero() && s.now().Sub(p.AuthTime) < s.cfg.MFA.StepUpMaxAge
	if mfa || (plain == "" && fresh) {
		if err := s.RequireStepUp(ctx, p, false); err != nil {
			return err
		}
	}
	if plain != "" || (!fresh && !mfa) {
		if plain == "" || tooLong(plain) {
			return &Error{Code: EINVALID, Field: "password", Message: "the current password is required (or sign in again and retry at once)"}
		}
		ok, err := s.checkPassword(ctx, u, plain)
		if err != nil {
			return err
		}
		if !ok {
			return &Error{Code: EINVALID, Field: "password", Message: "password is incorrect"}
		}
	}
	defer s.users.forget(u.ID)
	if err := s.st.Users.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	s.auditAbout(ctx, EventUserDeleted, u, m, nil)
	return nil
}

// SetRoles replaces a user's roles (operator command and admin API).
func (s *Service) SetRoles(ctx context.Context, userID string, roles []string, m Meta) error {
	for _, r := range roles {
		if !s.roles.KnownRole(r) {
			return &Error{Code: EINVALID, Field: "roles", Message: "unknown role " + r}
		}
	}
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	defer s.users.forget(userID)
	if err := s.st.Users.SetRoles(ctx, userID, roles, s.now()); err != nil {
		return err
	}
	s.audit(ctx, EventRoleChanged, userID, m, map[string]any{"from": u.Roles, "to": roles})
	return nil
}
