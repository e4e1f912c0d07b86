package auth

import (
	"context"
	"net/netip"
	"time"
)

// Decision is a rate limiter's answer for one hit.
type Decision struct {
	Allowed    bool
	RetryAfter time.Duration
	// FirstDenial is true for the first refused hit of a window, so a flood
	// is audited once, not once per request.
	FirstDenial bool
}

// RateLimiter counts hits per key (the database, or Redis when configured,
// so limits hold across every node).
type RateLimiter interface {
	Allow(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (Decision, error)
}

// LockoutStore counts consecutive failed logins per account.
type LockoutStore interface {
	// BeginAttempt counts a login attempt before its password is checked,
	// atomically, so that parallel attempts cannot slip past the threshold:
	// once more than threshold attempts are pending or failed, the account
	// is locked for lockFor. It returns how long the account stays locked
	// (0 when the attempt may proceed) and whether this call locked it.
	BeginAttempt(ctx context.Context, key string, threshold int, lockFor time.Duration, now time.Time) (locked time.Duration, newly bool, err error)
	// ClearFailures resets the count (a successful login) and lifts a lock
	// (a password reset).
	ClearFailures(ctx context.Context, key string) error
	LockoutInspector // the admin console's user page (console_users.go)
}

// LoginCount is one login attempt's hits on the counters.
type LoginCount struct {
	IPKey        string
	IPLimit      int
	AccountKey   string
	AccountLimit int
	Window       time.Duration
	LockKey      string
	Threshold    int
	LockFor      time.Duration
	Now          time.Time
}

// LoginCountResult is what CountLogin decided; counting stops at the first
// refusal.
type LoginCountResult struct {
	IP, Account Decision
	Locked      time.Duration
	NewlyLocked bool
}

// LoginCounter is an optional extension of a store that is both the
// RateLimiter and the LockoutStore: it counts a login's per-IP, per-account
// and lockout hits in one transaction.
type LoginCounter interface {
	CountLogin(ctx context.Context, c LoginCount) (LoginCountResult, error)
}

// Limits configures rate limits and lockout (SPEC §11).
type Limits struct {
	// Off runs the service without rate limits and lockout, on purpose
	// (tests, a deployment behind its own limiter). It is the only way to
	// leave them out: New refuses a nil limiter or lockout store otherwise.
	Off               bool
	LoginPerAccountIP int
	PerIP             int
	Window            time.Duration
	LockoutThreshold  int
	LockoutDuration   time.Duration
}

// ipBucket is the rate-limit identity of a client address: IPv6 clients
// are counted per /64, since one host usually holds a whole /64.
func ipBucket(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func (s *Service) tooMany(ctx context.Context, endpoint, kind string, d Decision, m Meta, userID string) error {
	if s.metrics.RateLimited != nil {
		s.metrics.RateLimited(endpoint)
	}
	if d.FirstDenial {
		s.audit(ctx, EventRateLimited, userID, m, map[string]any{"endpoint": endpoint, "limit": kind})
	}
	return &Error{Code: ETOOMANY, Reason: ReasonRateLimited, Message: "too many attempts; try again later", RetryAfter: max(d.RetryAfter, time.Second)}
}

// limitIP counts one hit of the client's address against the per-IP limit
// shared by every login-like endpoint.
func (s *Service) limitIP(ctx context.Context, endpoint string, m Meta) error {
	if m.IP == "" || s.limits.PerIP <= 0 {
		return nil
	}
	d, err := s.st.Limiter.Allow(ctx, "ip:"+ipBucket(m.IP), s.limits.PerIP, s.limits.Window, s.now())
	if err != nil {
		return err
	}
	if !d.Allowed {
		return s.tooMany(ctx, endpoint, "ip", d, m, "")
	}
	return nil
}

// limitAccount counts one login attempt for an account from the client's
// address.
func (s *Service) limitAccount(ctx context.Context, endpoint, email string, m Meta) error {
	if m.IP == "" || s.limits.LoginPerAccountIP <= 0 {
		return nil
	}
	d, err := s.st.Limiter.Allow(ctx, accountKey(email, m.IP), s.limits.LoginPerAccountIP, s.limits.Window, s.now())
	if err != nil {
		return err
	}
	if !d.Allowed {
		return s.tooMany(ctx, endpoint, "account_ip", d, m, "")
	}
	return nil
}

// lockoutKey identifies an account for the lockout by its email, whether
// or not the account exists: unknown emails are locked out exactly like
// real ones, so neither the lockout nor its timing reveals which exist.
func lockoutKey(email string) string { return HashToken("lockout\x00" + email) }

// beginAttempt applies the lockout to a login attempt for email (userID is
// empty for an unknown email).
func (s *Service) beginAttempt(ctx context.Context, email, userID string, m Meta) error {
	if s.limits.LockoutThreshold <= 0 {
		return nil
	}
	locked, newly, err := s.st.Lockout.BeginAttempt(ctx, lockoutKey(email), s.limits.LockoutThreshold, s.limits.LockoutDuration, s.now())
	if err != nil {
		return err
	}
	if locked <= 0 {
		return nil
	}
	return s.locked(ctx, userID, locked, newly, m)
}

func (s *Service) locked(ctx context.Context, userID string, locked time.Duration, newly bool, m Meta) error {
	if newly {
		s.audit(ctx, EventAccountLocked, userID, m, map[string]any{"for_seconds": int(s.limits.LockoutDuration.Seconds())})
	}
	if s.metrics.RateLimited != nil {
		s.metrics.RateLimited("lockout")
	}
	s.loginMetric("locked")
	return &Error{Code: ETOOMANY, Reason: ReasonAccountLocked, Message: "too many failed logins: the account is locked for a while", RetryAfter: max(locked, time.Second)}
}

// Unlock lifts a lockout and clears the failure count (password reset).
func (s *Service) Unlock(ctx context.Context, email string) error {
	return s.st.Lockout.ClearFailures(ctx, lockoutKey(email))
}

// LimitIP counts one hit of the client's address against the shared
// per-IP limit of login-like endpoints (for endpoints outside this package,
// such as social login).
func (s *Service) LimitIP(ctx context.Context, endpoint string, m Meta) error {
	return s.limitIP(ctx, endpoint, m)
}

// countLogin applies the per-IP limit, the per-account limit and the
// lockout to a login attempt for a well-formed email, in one round trip
// when the store can, else one by one.
func (s *Service) countLogin(ctx context.Context, endpoint, email, userID string, m Meta) error {
	lc, ok := s.st.Limiter.(LoginCounter)
	if !ok || m.IP == "" || any(s.st.Lockout) != any(s.st.Limiter) {
		if err := s.limitIP(ctx, endpoint, m); err != nil {
			return err
		}
		if err := s.limitAccount(ctx, endpoint, email, m); err != nil {
			return err
		}
		return s.beginAttempt(ctx, email, userID, m)
	}
	c := LoginCount{IPKey: "ip:" + ipBucket(m.IP), IPLimit: s.limits.PerIP, AccountKey: accountKey(email, m.IP),
		AccountLimit: s.limits.LoginPerAccountIP, Window: s.limits.Window, LockKey: lockoutKey(email),
		Threshold: s.limits.LockoutThreshold, LockFor: s.limits.LockoutDuration, Now: s.now()}
	r, err := lc.CountLogin(ctx, c)
	if err != nil {
		return err
	}
	switch {
	case !r.IP.Allowed:
		return s.tooMany(ctx, endpoint, "ip", r.IP, m, "")
	case !r.Account.Allowed:
		return s.tooMany(ctx, endpoint, "account_ip", r.Account, m, "")
	case r.Locked > 0:
		return s.locked(ctx, userID, r.Locked, r.NewlyLocked, m)
	}
	return nil
}

func accountKey(email, ip string) string { return "acct:" + HashToken(email)[:32] + ":" + ipBucket(ip) }
