package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/internal/revfeed"
)

// Limits and intervals. They are not configurable: each is a security
// trade-off made once here.
const (
	// MaxLeeway is the largest clock skew tolerated on exp, nbf and iat.
	MaxLeeway = 5 * time.Second
	// MaxCacheTTL bounds Config.CacheTTL: a revoked API key or session
	// must stop working here soon.
	MaxCacheTTL = 5 * time.Minute

	defaultCacheTTL  = 30 * time.Second
	negativeCacheTTL = 5 * time.Second            // refused opaque credentials
	jwksMinInterval  = 10 * time.Second           // between JWKS fetches caused by unknown kids
	jwksRetry        = time.Second                // after a failed JWKS fetch
	jwksMaxAge       = 5 * time.Minute            // re-read the JWKS this often (keys are removed too)
	fetchTimeout     = 10 * time.Second           // one JWKS or introspection call
	maxCached        = 10_000                     // entries per cache
	maxTokenLen      = 8 << 10                    // longer credentials are refused unparsed
	maxBody          = 1 << 20                    // of a JWKS or introspection answer
	realm            = `Bearer realm="gatehouse"` // the RFC 6750 challenge

	defaultFeedStaleAfter = 10 * time.Second
	defaultFeedRetain     = time.Hour
	staleIntrospectTTL    = time.Second // a JWT's introspection answer while the feed is stale
)

// StalePolicy is what a Guard does with access tokens while its revocation
// feed is stale (Config.OnStale).
type StalePolicy int

const (
	// StaleIntrospect asks Gatehouse about each access token (RFC 7662),
	// caching each answer for one second. The default.
	StaleIntrospect StalePolicy = iota
	// StaleReject refuses every access token with ErrUnavailable (503):
	// fail closed.
	StaleReject
)

// Kinds of credential, the values of Principal.Kind.
const (
	KindAccessToken = "access_token" // a JWT verified locally
	KindAPIKey      = "api_key"      // checked by introspection
	KindSession     = "session"      // a session cookie, checked by introspection
)

// Errors returned by Check (wrapped, with the reason, for logs). WriteError
// turns them into responses.
var (
	// ErrNoCredentials: the request carries no credential (401).
	ErrNoCredentials = errors.New("guard: no credentials")
	// ErrInvalidToken: a credential was sent but is invalid, expired or
	// revoked (401, error="invalid_token").
	ErrInvalidToken = errors.New("guard: invalid credentials")
	// ErrUnavailable: Gatehouse could not be asked (503). The guard fails
	// closed.
	ErrUnavailable = errors.New("guard: gatehouse unavailable")
	// ErrCrossOrigin: a state-changing request authenticated by a cookie
	// came from another origin (403).
	ErrCrossOrigin = errors.New("guard: cross-origin request refused")
)

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, reason) }

// Config configures a Guard. Only Issuer is required.
type Config struct {
	// Issuer is Gatehouse's public URL (GATEHOUSE_PUBLIC_URL), the iss of
	// its tokens, e.g. "https://auth.example.com".
	Issuer string
	// Audience is the aud access tokens must carry. Default: Issuer (what
	// Gatehouse issues unless configured otherwise).
	Audience string
	// JWKSURL defaults to Issuer + "/.well-known/jwks.json".
	JWKSURL string
	// IntrospectURL defaults to Issuer + "/oauth2/introspect".
	IntrospectURL string
	// IntrospectionKey is a Gatehouse API key with scope introspect, sent
	// as X-API-Key to IntrospectURL. Without it, API keys are refused and
	// session cookies are ignored.
	IntrospectionKey string
	// CookieName is Gatehouse's session cookie. Default "gatehouse_session",
	// or "__Host-gatehouse_session" when Issuer is https.
	CookieName string
	// TrustedOrigins are other origins (e.g. "https://app.example.com")
	// allowed to make state-changing requests authenticated by cookie.
	TrustedOrigins []string
	// HTTPClient talks to Gatehouse. Default: a client with a 10 s timeout.
	// Redirects are never followed, whatever the client says.
	HTTPClient *http.Client
	// Algorithms accepted on access tokens. Default EdDSA, ES256, RS256.
	// HS* and none are never accepted: they have no public key.
	Algorithms []string
	// CacheTTL is how long an introspection answer is reused. Default 30 s,
	// at most MaxCacheTTL; negative disables the cache.
	CacheTTL time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default and
	// maximum MaxLeeway (5 s).
	Leeway time.Duration
	// AllowInsecureHTTP permits http:// URLs to hosts other than loopback
	// (e.g. inside a private network). The introspection key and the
	// credentials then travel in clear.
	AllowInsecureHTTP bool
	// Logger receives why Gatehouse could not be reached (the causes of
	// 503s). Default slog.Default().
	Logger *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time

	// RevocationFeed makes the Guard follow Gatehouse's revocation feed
	// (SPEC §15) and refuse access tokens revoked since they were issued
	// (logout, a revoked session or refresh family, a password or role
	// change, a revoked client or signing key) within about a second,
	// with no call to Gatehouse per request. It needs IntrospectionKey.
	// New starts a goroutine that holds one streaming connection to
	// Gatehouse; Close stops it.
	RevocationFeed bool
	// FeedURL defaults to Issuer + "/v1/revocations/stream".
	FeedURL string
	// FeedStaleAfter is how long the feed may be down before the Guard
	// stops trusting what it has and applies OnStale. Default 10 s.
	FeedStaleAfter time.Duration
	// OnStale is what happens to access tokens while the feed is stale:
	// StaleIntrospect (default) or StaleReject.
	OnStale StalePolicy
	// FeedRetain is how long a revocation is kept after it happened: at
	// least Gatehouse's access-token lifetime (GATEHOUSE_ACCESS_TOKEN_TTL,
	// 15 minutes by default). Default 1 hour.
	FeedRetain time.Duration
}

// Guard checks Gatehouse credentials. Make one with New and share it; it is
// safe for concurrent use. Close it when done if it follows the revocation
// feed.
type Guard struct {
	cfg    Config
	algs   []string
	client *http.Client
	csrf   *http.CrossOriginProtection
	log    *slog.Logger
	now    func() time.Time
	parser *jwt.Parser // immutable once made: safe to share

	customClock bool // Config.Now was set: RequireFreshAuth must use it too

	// JWKS: keys is read without locks; fetchMu serialises fetches.
	keys        atomic.Pointer[keySet]
	fetchMu     sync.Mutex
	lastFetch   time.Time // guarded by fetchMu
	lastFetchOK bool      // guarded by fetchMu
	lastErr     error     // guarded by fetchMu

	tokens *ttlCache[string, tokenEntry]   // verified access tokens
	intro  *ttlCache[introKey, *Principal] // introspection answers; nil Principal = refused
	flight flightGroup                     // concurrent introspections of one credential
	// introGen counts credential.revoked events: an introspection that
	// was under way when one arrived is not cached (its answer may
	// predate the revocation).
	introGen atomic.Uint64

	// The revocation feed; all nil without Config.RevocationFeed.
	revoked  *revfeed.Set
	feed     *revfeed.Client
	stopFeed context.CancelFunc
	feedDone chan struct{}
	lag      *feedCollector
}

// New checks cfg, fills in the defaults and returns a Guard. The JWKS is
// fetched on first use. With Config.RevocationFeed, New starts a goroutine
// that follows the feed in the background (it does not wait for it to
// connect); Close stops it.
func New(cfg Config) (*Guard, error) {
	var problems []error
	cfg.Issuer = strings.TrimRight(strings.TrimSpace(cfg.Issuer), "/")
	if cfg.Issuer == "" {
		problems = append(problems, errors.New("the Issuer is required"))
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.Issuer
	}
	if cfg.JWKSURL == "" && cfg.Issuer != "" {
		cfg.JWKSURL = cfg.Issuer + "/.well-known/jwks.json"
	}
	if cfg.IntrospectURL == "" && cfg.Issuer != "" {
		cfg.IntrospectURL = cfg.Issuer + "/oauth2/introspect"
	}
	for _, u := range []struct{ name, v string }{{"Issuer", cfg.Issuer}, {"JWKSURL", cfg.JWKSURL}, {"IntrospectURL", cfg.IntrospectURL}} {
		if u.v == "" {
			continue
		}
		if err := checkURL(u.v, cfg.AllowInsecureHTTP); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "gatehouse_session"
		if strings.HasPrefix(strings.ToLower(cfg.Issuer), "https://") {
			cfg.CookieName = "__Host-gatehouse_session"
		}
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = []string{"EdDSA", "ES256", "RS256"}
	}
	for _, a := range algs {
		if _, ok := algKeyType[a]; !ok {
			problems = append(problems, fmt.Errorf("the Algorithms entry %q is not accepted (use EdDSA, ES256 or RS256)", a))
		}
	}
	switch {
	case cfg.CacheTTL == 0:
		cfg.CacheTTL = defaultCacheTTL
	case cfg.CacheTTL > MaxCacheTTL:
		problems = append(problems, fmt.Errorf("CacheTTL: %v is longer than %v", cfg.CacheTTL, MaxCacheTTL))
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = MaxLeeway
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		problems = append(problems, fmt.Errorf("the Leeway %v is outside (0, %v]", cfg.Leeway, MaxLeeway))
	}
	csrf := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := csrf.AddTrustedOrigin(o); err != nil {
			problems = append(problems, fmt.Errorf("TrustedOrigins: %w", err))
		}
	}
	if cfg.RevocationFeed {
		if cfg.IntrospectionKey == "" {
			problems = append(problems, errors.New("RevocationFeed needs an IntrospectionKey (the feed asks for scope introspect)"))
		}
		if cfg.FeedURL == "" && cfg.Issuer != "" {
			cfg.FeedURL = cfg.Issuer + "/v1/revocations/stream"
		}
		if cfg.FeedURL != "" {
			if err := checkURL(cfg.FeedURL, cfg.AllowInsecureHTTP); err != nil {
				problems = append(problems, fmt.Errorf("FeedURL: %w", err))
			}
		}
	}
	switch {
	case cfg.FeedStaleAfter == 0:
		cfg.FeedStaleAfter = defaultFeedStaleAfter
	case cfg.FeedStaleAfter < 0:
		problems = append(problems, fmt.Errorf("FeedStaleAfter: %v is negative", cfg.FeedStaleAfter))
	}
	switch {
	case cfg.FeedRetain == 0:
		cfg.FeedRetain = defaultFeedRetain
	case cfg.FeedRetain < 0:
		problems = append(problems, fmt.Errorf("FeedRetain: %v is negative", cfg.FeedRetain))
	}
	if cfg.OnStale != StaleIntrospect && cfg.OnStale != StaleReject {
		problems = append(problems, fmt.Errorf("OnStale: %d is neither StaleIntrospect nor StaleReject", cfg.OnStale))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("guard: invalid Config: %w", errors.Join(problems...))
	}

	client := &http.Client{Timeout: fetchTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		client = &c
	}
	// A redirect would carry the introspection key and the credential to
	// wherever it points (custom headers survive cross-host redirects).
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	customClock := cfg.Now != nil
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{
		cfg: cfg, algs: slices.Clone(algs), client: client, csrf: csrf, log: cfg.Logger, now: cfg.Now, customClock: customClock,
		tokens: newTTLCache[string, tokenEntry](maxCached),
		intro:  newTTLCache[introKey, *Principal](maxCached),
	}
	g.parser = newParser(g)
	g.lag = &feedCollector{g: g, desc: prometheus.NewDesc("guard_revocation_feed_lag_seconds",
		"Seconds since the revocation feed was last known up to date; 0 while it is.", nil, nil)}
	if cfg.RevocationFeed {
		if err := g.startFeed(); err != nil {
			return nil, fmt.Errorf("guard: %w", err)
		}
	}
	return g, nil
}

// checkURL refuses what would send secrets in clear to another machine.
func checkURL(s string, allowHTTP bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http:// to a non-loopback host sends credentials in clear (set AllowInsecureHTTP to permit it)", s)
	}
	return fmt.Errorf("%q must be an http or https URL", s)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Check authenticates r. It returns the caller, or an error wrapping
// ErrNoCredentials, ErrInvalidToken, ErrUnavailable or ErrCrossOrigin with
// the reason (for logs; WriteError keeps it out of the response).
//
// Credentials are looked for in this order, and the first one found is the
// only one considered: X-API-Key, Authorization: Bearer (an API key when it
// starts with gth_, else an access token), the session cookie (only when an
// IntrospectionKey is configured).
func (g *Guard) Check(r *http.Request) (*Principal, error) {
	p, _, err := g.check(r)
	return p, err
}

// check is Check, and also returns the introspection cache key of an
// opaque credential (nil for an access token).
func (g *Guard) check(r *http.Request) (*Principal, *introKey, error) {
	ctx := r.Context()
	if key := r.Header.Get("X-API-Key"); key != "" || len(r.Header.Values("X-API-Key")) > 0 {
		if len(r.Header.Values("X-API-Key")) > 1 {
			return nil, nil, invalid("more than one X-API-Key header")
		}
		if !strings.HasPrefix(key, "gth_") {
			return nil, nil, invalid("X-API-Key does not hold a Gatehouse API key")
		}
		return g.checkOpaque(ctx, KindAPIKey, key)
	}
	if authz := r.Header.Values("Authorization"); len(authz) > 0 {
		if len(authz) > 1 {
			return nil, nil, invalid("more than one Authorization header")
		}
		scheme, tok, _ := strings.Cut(authz[0], " ")
		if strings.EqualFold(scheme, "Bearer") {
			tok = strings.TrimSpace(tok)
			if tok == "" {
				return nil, nil, invalid("empty bearer token")
			}
			if strings.HasPrefix(tok, "gth_") {
				return g.checkOpaque(ctx, KindAPIKey, tok)
			}
			p, err := g.verifyJWT(ctx, tok)
			return p, nil, err
		}
		// Another scheme (Basic, …) is not ours: look further.
	}
	if g.cfg.IntrospectionKey != "" {
		if c, err := r.Cookie(g.cfg.CookieName); err == nil && c.Value != "" {
			// Browsers attach cookies to cross-site requests: a
			// state-changing one must come from our own origin (CSRF).
			// Checked before Gatehouse is asked, so it costs nothing.
			if err := g.csrf.Check(r); err != nil {
				return nil, nil, fmt.Errorf("%w: %v", ErrCrossOrigin, err)
			}
			return g.checkOpaque(ctx, KindSession, c.Value)
		}
	}
	return nil, nil, ErrNoCredentials
}

// Middleware requires a valid credential: the request reaches next with the
// Principal in its context (see PrincipalFrom), or gets the answer
// WriteError gives (401, 403 cross-origin, 503).
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, key, err := g.check(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(g.withPrincipal(r.Context(), p, key)))
	})
}

// Optional is Middleware for routes open to anonymous callers: a request
// without credentials reaches next with no Principal in its context; one
// with credentials is checked exactly as by Middleware (an invalid token is
// still 401, not anonymous).
func (g *Guard) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, key, err := g.check(r)
		switch {
		case errors.Is(err, ErrNoCredentials):
			next.ServeHTTP(w, r)
		case err != nil:
			WriteError(w, r, err)
		default:
			next.ServeHTTP(w, r.WithContext(g.withPrincipal(r.Context(), p, key)))
		}
	})
}

// checked is a Principal as Middleware (or Optional) stores it when the
// step-up checks need more than the Principal: the Guard's clock when
// Config.Now was set, and for a session its introspection cache key.
// It sits under the same context key as WithPrincipal's *Principal, so
// that it costs one allocation, and a later WithPrincipal hides it.
type checked struct {
	p   *Principal
	g   *Guard
	key *introKey // the session's introspection cache entry; nil for other credentials
}

// withPrincipal is WithPrincipal, plus what the step-up checks need. An
// access token checked with the real clock, the common case, costs nothing
// more.
func (g *Guard) withPrincipal(ctx context.Context, p *Principal, key *introKey) context.Context {
	if g.cfg.CacheTTL <= 0 || p.Kind != KindSession {
		key = nil // only a session can step up: an API key never has a level
	}
	if key == nil && !g.customClock {
		return WithPrincipal(ctx, p)
	}
	return context.WithValue(ctx, ctxKey{}, &checked{p: p, g: g, key: key})
}

// clockFrom returns the clock of the Guard that checked the request, else
// time.Now.
func clockFrom(ctx context.Context) func() time.Time {
	if c, ok := ctx.Value(ctxKey{}).(*checked); ok {
		return c.g.now
	}
	return time.Now
}

// forgetIntrospection drops the cached introspection answer for the
// session of the request ctx belongs to, if there is one. Another
// introspection per step-up refusal costs no more than a request with a
// made-up credential does.
func forgetIntrospection(ctx context.Context) {
	if c, ok := ctx.Value(ctxKey{}).(*checked); ok && c.key != nil {
		c.g.intro.delete(*c.key)
	}
}

// unavailable wraps the cause of a 503 and logs it: it is what an operator
// needs to see (Gatehouse down, the introspection key revoked, …).
func (g *Guard) unavailable(ctx context.Context, what string, cause error) error {
	g.log.ErrorContext(ctx, "guard: cannot reach gatehouse", "op", what, "err", cause)
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, cause)
}
