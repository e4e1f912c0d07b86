package auth

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Stores is the persistence the service needs. Every field is required:
// New refuses to build a service with a nil store, so no check can be
// skipped because a store was forgotten.
type Stores struct {
	Users      UserStore
	Refresh    RefreshStore
	Sessions   SessionStore
	Audit      AuditStore
	Tokens     TokenStore
	APIKeys    APIKeyStore
	Identities IdentityStore
	Passkeys   PasskeyStore
	Challenges ChallengeStore
	Mail       MailQueue
	MFA        MFAStore
	// OAuth2 / OpenID Connect provider (SPEC §14).
	Clients   ClientStore
	Consents  ConsentStore
	AuthCodes AuthCodeStore
	// Webhook endpoints and their outbox (SPEC §16).
	Webhooks WebhookStore
	// Stats counts the admin console's overview (SPEC §17).
	Stats AdminStatsStore
	// Limiter and Lockout count rate limits and failed logins. They are
	// required unless Options.Limits.Off says, explicitly, that this
	// service runs without rate limits and lockout.
	Limiter RateLimiter
	Lockout LockoutStore
}

// Options configures New.
type Options struct {
	Stores Stores
	Hasher PasswordHasher
	Policy PasswordPolicy
	Issuer AccessTokenIssuer
	// IDTokens signs ID tokens (the OpenID provider); without it, a grant
	// with the scope openid fails.
	IDTokens IDTokenSigner
	// Revocations is the revocation feed's in-memory set (SPEC §15); nil
	// when the feed is off.
	Revocations Revocations
	Roles       *RoleModel
	// RootSecret is the server's root secret (at least 32 bytes). Every key
	// the service uses is derived from it for one purpose (HKDF-SHA256, one
	// info string per purpose); no key is ever used for two purposes.
	RootSecret []byte
	Config     Config
	Limits     Limits
	Metrics    Metrics
	// Hooks are the blocking hooks (SPEC §16); none by default.
	Hooks Hooks
	// WebhookNotify, when set, wakes this node's webhook delivery worker
	// after messages were queued (other nodes' workers poll).
	WebhookNotify func()
	Log           *slog.Logger // nil: discard
	Now           func() time.Time
}

// MinRootSecret is the shortest root secret New accepts.
const MinRootSecret = 32

// Key purposes: the HKDF info strings. Changing one changes every value
// keyed with it (cursors, fake passkey ids, successor tokens).
const (
	keyInfoRefresh = "gatehouse/v1/refresh-successor"
	keyInfoCursor  = "gatehouse/v1/admin-cursor"
	keyInfoPasskey = "gatehouse/v1/passkey-decoy"
	keyInfoTOTP    = "gatehouse/v1/totp-seal"
	keyInfoRecover = "gatehouse/v1/recovery-code"
	keyInfoWebhook = "gatehouse/v1/webhook-seal"
	keyInfoNotice  = "gatehouse/v1/console-notice"
)

// derivedKeys are the service's keys, one per purpose.
type derivedKeys struct {
	refresh []byte // successor refresh tokens (successorToken)
	cursor  []byte // admin pagination cursors (sealCursor)
	passkey []byte // decoy credential ids for unknown accounts (DecoyCredentialIDs)
	totp    []byte // AES-256-GCM key sealing TOTP secrets at rest
	recover []byte // HMAC-SHA256 key of stored recovery codes
	webhook []byte // AES-256-GCM key sealing webhook endpoint secrets at rest
	notice  []byte // HMAC-SHA256 key of the admin console's notices (SealNotice)
}

// DeriveKey derives the 32-byte key for one purpose from the root secret
// (HKDF-SHA256 with the purpose as info).
func DeriveKey(root []byte, purpose string) ([]byte, error) {
	return hkdf.Key(sha256.New, root, nil, purpose, 32)
}

// New builds the service after checking its inputs: every store, the
// hasher, the password policy, the token issuer, the role model and a root
// secret of at least MinRootSecret bytes are required; the rate limiter and
// the lockout store may be left out only with Limits.Off.
func New(o Options) (*Service, error) {
	var missing []string
	need := func(ok bool, name string) {
		if !ok {
			missing = append(missing, name)
		}
	}
	st := o.Stores
	need(st.Users != nil, "Stores.Users")
	need(st.Refresh != nil, "Stores.Refresh")
	need(st.Sessions != nil, "Stores.Sessions")
	need(st.Audit != nil, "Stores.Audit")
	need(st.Tokens != nil, "Stores.Tokens")
	need(st.APIKeys != nil, "Stores.APIKeys")
	need(st.Identities != nil, "Stores.Identities")
	need(st.Passkeys != nil, "Stores.Passkeys")
	need(st.Challenges != nil, "Stores.Challenges")
	need(st.Mail != nil, "Stores.Mail")
	need(st.MFA != nil, "Stores.MFA")
	need(st.Clients != nil, "Stores.Clients")
	need(st.Consents != nil, "Stores.Consents")
	need(st.AuthCodes != nil, "Stores.AuthCodes")
	need(st.Webhooks != nil, "Stores.Webhooks")
	need(st.Stats != nil, "Stores.Stats")
	if !o.Limits.Off {
		need(st.Limiter != nil, "Stores.Limiter (or Limits.Off)")
		need(st.Lockout != nil, "Stores.Lockout (or Limits.Off)")
	}
	need(o.Hasher != nil, "Hasher")
	need(o.Policy != nil, "Policy")
	need(o.Issuer != nil, "Issuer")
	need(o.Roles != nil, "Roles")
	if len(missing) > 0 {
		return nil, fmt.Errorf("auth.New: missing %v", missing)
	}
	if len(o.RootSecret) < MinRootSecret {
		return nil, fmt.Errorf("auth.New: the root secret must be at least %d bytes", MinRootSecret)
	}
	c := o.Config
	if c.AccessTokenTTL <= 0 || c.RefreshTokenTTL <= 0 || c.SessionTTL <= 0 || c.SessionIdleTTL <= 0 {
		return nil, errors.New("auth.New: the access-token, refresh-token, session and idle lifetimes must be positive")
	}
	m := &c.MFA
	if m.ChallengeTTL <= 0 {
		m.ChallengeTTL = 5 * time.Minute
	}
	if m.MaxAttempts <= 0 {
		m.MaxAttempts = 5
	}
	if m.RecoveryCodeCount <= 0 {
		m.RecoveryCodeCount = 10
	}
	if m.StepUpMaxAge <= 0 {
		m.StepUpMaxAge = 10 * time.Minute
	}
	if m.TOTPIssuer == "" {
		m.TOTPIssuer = "Gatehouse"
	}
	m.TOTPSkew = min(max(m.TOTPSkew, 0), 2)
	if c.IDTokenTTL <= 0 {
		c.IDTokenTTL = 15 * time.Minute
	}
	if c.Webhooks.MaxAttempts <= 0 {
		c.Webhooks.MaxAttempts = 10
	}
	if c.AuthCodeTTL <= 0 {
		c.AuthCodeTTL = time.Minute
	}
	if o.Limits.Off {
		st.Limiter, st.Lockout = noLimits{}, noLimits{}
		o.Limits = Limits{Off: true}
	}
	s := &Service{st: st, hasher: o.Hasher, policy: o.Policy, issuer: o.Issuer, idTokens: o.IDTokens, revocations: o.Revocations, roles: o.Roles,
		cfg: c, limits: o.Limits, metrics: o.Metrics, log: o.Log, clock: o.Now}
	s.webhooks.notify = o.WebhookNotify
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	var err error
	if s.hooks.beforeRegister, err = newHookRunner(o.Hooks.BeforeRegister, HookBeforeRegister, "BeforeRegister"); err != nil {
		return nil, err
	}
	if s.hooks.beforeLogin, err = newHookRunner(o.Hooks.BeforeLogin, HookBeforeLogin, "BeforeLogin"); err != nil {
		return nil, err
	}
	for _, k := range []struct {
		dst  *[]byte
		info string
	}{{&s.keys.refresh, keyInfoRefresh}, {&s.keys.cursor, keyInfoCursor}, {&s.keys.passkey, keyInfoPasskey},
		{&s.keys.totp, keyInfoTOTP}, {&s.keys.recover, keyInfoRecover}, {&s.keys.webhook, keyInfoWebhook}, {&s.keys.notice, keyInfoNotice}} {
		key, err := DeriveKey(o.RootSecret, k.info)
		if err != nil {
			return nil, fmt.Errorf("auth.New: %w", err)
		}
		*k.dst = key
	}
	return s, nil
}

// noLimits is the rate limiter and lockout store of a service built with
// Limits.Off: every attempt is allowed.
type noLimits struct{}

func (noLimits) Allow(context.Context, string, int, time.Duration, time.Time) (Decision, error) {
	return Decision{Allowed: true}, nil
}

func (noLimits) BeginAttempt(context.Context, string, int, time.Duration, time.Time) (time.Duration, bool, error) {
	return 0, false, nil
}

func (noLimits) ClearFailures(context.Context, string) error { return nil }
