package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/config"
	"gatehouse/internal/mail"
	"gatehouse/internal/password"
	"gatehouse/internal/redisstore"
	"gatehouse/internal/revfeed"
	"gatehouse/internal/server"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/token"
	"gatehouse/internal/webhook"
)

// app holds everything wired from one configuration.
type app struct {
	redis   *redisstore.Store // nil without GATEHOUSE_REDIS_URL
	cfg     *config.Config
	log     *slog.Logger
	db      *sqlstore.DB
	keys    *token.Keyring
	auth    *auth.Service
	metrics *server.Metrics
	mailer  *mail.Worker
	// webhooks delivers webhook messages (SPEC §16).
	webhooks *webhook.Worker
	// The revocation feed (SPEC §15); nil when GATEHOUSE_REVOCATION_FEED
	// is off.
	hub     *revfeed.Hub
	revoked *revfeed.Set
}

// revocationRetention is how long revocation events are kept and served:
// the access-token lifetime plus five minutes (SPEC §15).
func revocationRetention(cfg *config.Config) time.Duration {
	return cfg.AccessTokenTTL + 5*time.Minute
}

// openFeed sets up the revocation feed: the database records events, the
// hub tails them (announced over Redis pub/sub when there is Redis, else
// polled every 250 ms) and keeps the set every endpoint checks.
func (a *app) openFeed(ctx context.Context) error {
	if !a.cfg.RevocationFeed {
		a.db.SetRevocationFeed(false, nil)
		return nil
	}
	retain := revocationRetention(a.cfg)
	a.revoked = revfeed.NewSet(retain)
	o := revfeed.HubOptions{Source: a.db, Set: a.revoked, Retain: retain, Poll: 250 * time.Millisecond, Log: a.log,
		Applied: func(evs []revfeed.Event) {
			// A revoked signing key must stop signing here now, not at
			// the next periodic reload.
			for _, ev := range evs {
				if ev.Type == revfeed.TypeKeyRevoked {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					if err := a.keys.Reload(ctx); err != nil {
						a.log.Warn("reloading signing keys after key.revoked", "err", err)
					}
					cancel()
					return
				}
			}
		}}
	if a.redis != nil {
		// Pub/sub carries the news; the poll is only a safety net for
		// announcements lost while a subscription reconnects.
		o.Poll, o.Announce = 2*time.Second, a.redis.PublishRevocations
		a.redis.SetRevocationSink(a.db.AppendRevocations)
	}
	a.hub = revfeed.NewHub(o)
	a.db.SetRevocationFeed(true, a.hub.Committed)
	a.db.SetSubjectNotBefore(a.revoked.SubjectNotBefore)
	return a.hub.Load(ctx)
}

// runFeed tails the revocation events until ctx ends.
func (a *app) runFeed(ctx context.Context) {
	if a.hub == nil {
		return
	}
	if a.redis != nil {
		go a.redis.SubscribeRevocations(ctx, a.hub.Wake)
	}
	a.hub.Run(ctx)
}

func (a *app) Close() error {
	var err error
	if a.redis != nil {
		err = a.redis.Close()
	}
	if a.db != nil {
		err = errors.Join(err, a.db.Close())
	}
	return err
}

// ready lists what /readyz checks.
func (a *app) ready() []server.Pinger {
	p := []server.Pinger{a.db}
	if a.redis != nil {
		p = append(p, a.redis)
	}
	return p
}

// newLogger returns the JSON or text logger the configuration asks for
// (text on a terminal when unset).
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// rootSecret returns the configured secret, or the one generated on first
// start and kept (mode 0600) in the data dir.
func rootSecret(cfg *config.Config, log *slog.Logger) ([]byte, error) {
	if cfg.Secret != "" {
		return []byte(cfg.Secret), nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "secret")
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("%s: secret shorter than 32 bytes", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading the secret: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	s := hex.EncodeToString(raw[:])
	// O_EXCL: two processes starting at once must not both write a secret.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return rootSecret(cfg, log)
	}
	if err != nil {
		return nil, fmt.Errorf("writing the secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing the secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	log.Info("generated a root secret", "path", path)
	return []byte(s), nil
}

// openApp opens the database, applies migrations, loads the signing keys
// and builds the services.
func openApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	secret, err := rootSecret(cfg, log)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(cfg.DatabaseURL, "sqlite:") {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, db: db, metrics: server.NewMetrics()}
	if err := db.Migrate(ctx); err != nil {
		a.Close()
		return nil, err
	}
	a.keys, err = token.New(ctx, token.Options{
		Issuer: cfg.PublicURL, Audience: cfg.Audience, Alg: cfg.SigningAlg, IDTokenAlg: cfg.IDTokenAlg, Secret: secret,
		Store: db, AccessTTL: cfg.AccessTokenTTL, Log: log,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	// Sessions, rate-limit counters and lockouts: Redis when configured
	// (shared by every node), else the database.
	var (
		sessions   auth.SessionStore   = db
		limiter    auth.RateLimiter    = db
		lockout    auth.LockoutStore   = db
		tokens     auth.TokenStore     = db
		challenges auth.ChallengeStore = db
	)
	if cfg.RedisURL != "" {
		a.redis, err = redisstore.Open(ctx, cfg.RedisURL, redisstore.Options{})
		if err != nil {
			a.Close()
			return nil, err
		}
		sessions, limiter, lockout, tokens, challenges = a.redis, a.redis, a.redis, a.redis, a.redis
	}
	if err := a.openFeed(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("revocation feed: %w", err)
	}
	a.mailer, err = newMailWorker(cfg, db, log)
	if err != nil {
		a.Close()
		return nil, err
	}
	params := password.DefaultParams()
	params.Memory, params.Iterations, params.Parallelism = cfg.Argon2.Memory, cfg.Argon2.Iterations, cfg.Argon2.Parallelism
	hashLimiter := password.NewLimiter(password.LimiterOptions{
		Concurrency: cfg.HashConcurrency, MaxWait: cfg.HashMaxWait, MaxQueue: 1024, Observe: a.metrics.HashWait,
	})
	policy := password.DefaultPolicy()
	policy.MinLength = cfg.Password.MinLength
	scopes := make([]string, 0, len(cfg.Scopes))
	for s := range cfg.Scopes {
		scopes = append(scopes, s)
	}
	slices.Sort(scopes)
	hooks, err := newHooks(cfg, log)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.webhooks = newWebhookWorker(cfg, log, a.metrics)
	a.auth, err = auth.New(auth.Options{
		Stores: auth.Stores{
			Users: db, Refresh: db, Audit: db, Sessions: sessions, Limiter: limiter, Lockout: lockout,
			Tokens: tokens, APIKeys: db, Identities: db, Passkeys: db, Challenges: challenges,
			Mail:    &notifyingQueue{MailQueue: db, worker: a.mailer},
			MFA:     db,
			Clients: db, Consents: db, AuthCodes: db,
			Webhooks: db, Stats: db,
		},
		WebhookNotify: a.webhooks.Notify,
		Limits: auth.Limits{
			LoginPerAccountIP: cfg.RateLimits.LoginPerAccountIP, PerIP: cfg.RateLimits.LoginPerIP, Window: cfg.RateLimits.Window,
			LockoutThreshold: cfg.LockoutThreshold, LockoutDuration: cfg.LockoutDuration,
		},
		Hasher:   password.NewHasher(params, hashLimiter),
		Policy:   policy,
		Issuer:   a.keys,
		IDTokens: a.keys,
		Revocations: func() auth.Revocations {
			if a.revoked == nil {
				return nil // not a typed nil
			}
			return a.revoked
		}(),
		Roles:      auth.NewRoleModel(cfg.Roles, scopes),
		RootSecret: secret,
		Config: auth.Config{
			AccessTokenTTL: cfg.AccessTokenTTL, RefreshTokenTTL: cfg.RefreshTokenTTL, RefreshReuseGrace: cfg.RefreshReuseGrace,
			SessionTTL: cfg.SessionTTL, SessionIdleTTL: cfg.SessionIdleTTL,
			DefaultRoles: cfg.DefaultRoles, RevealExisting: cfg.Registration.RevealExisting,
			RequireVerifiedEmail: cfg.RequireVerifiedEmail,
			IDTokenTTL:           cfg.IDTokenTTL, AuthCodeTTL: cfg.AuthCodeTTL, ConsentTTL: cfg.ConsentTTL,
			MFA: auth.MFAConfig{RequiredRoles: cfg.MFA.RequiredRoles, ChallengeTTL: cfg.MFA.ChallengeTTL, MaxAttempts: cfg.MFA.MaxAttempts,
				TOTPIssuer: cfg.MFA.TOTPIssuer, TOTPSkew: cfg.MFA.TOTPSkew, RecoveryCodeCount: cfg.MFA.RecoveryCodeCount,
				StepUpMaxAge: cfg.MFA.StepUpMaxAge, PasskeyIsMFA: cfg.MFA.PasskeyIsMFA},
			Webhooks: auth.WebhookConfig{AllowPrivate: cfg.WebhookAllowPrivate, MaxAttempts: cfg.WebhookMaxAttempts},
		},
		Metrics: auth.Metrics{Login: a.metrics.Login, RateLimited: a.metrics.RateLimited, MFAChallenge: a.metrics.MFAChallenge},
		Hooks:   hooks,
		Log:     log,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.mailer.Accounts = mailAccounts{DB: db, svc: a.auth}
	a.webhooks.Queue = a.auth
	// The OAuth clients of the configuration file (clients:) replace the
	// ones of the last start; removed ones are deleted.
	clients := make([]auth.ClientInput, len(cfg.Clients))
	for i, c := range cfg.Clients {
		clients[i] = c.Input()
	}
	if err := a.auth.SyncConfigClients(ctx, clients); err != nil {
		a.Close()
		return nil, fmt.Errorf("clients from the configuration file: %w", err)
	}
	// Likewise the webhook endpoints of the file (webhooks:); this also
	// loads the endpoint snapshot the audit log consults.
	if err := a.auth.SyncConfigWebhooks(ctx, configWebhooks(cfg)); err != nil {
		a.Close()
		return nil, fmt.Errorf("webhooks from the configuration file: %w", err)
	}
	return a, nil
}

// newMailWorker builds the mail worker: SMTP when configured, else the
// outbox folder in the data dir.
func newMailWorker(cfg *config.Config, db *sqlstore.DB, log *slog.Logger) (*mail.Worker, error) {
	tpl, err := mail.LoadTemplates()
	if err != nil {
		return nil, err
	}
	var sender mail.Sender
	if cfg.SMTPURL != "" {
		if sender, err = mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom); err != nil {
			return nil, err
		}
	} else {
		sender = &mail.Outbox{Dir: filepath.Join(cfg.DataDir, "mail"), From: cfg.MailFrom, Log: log}
	}
	w := &mail.Worker{Jobs: db, Sender: sender, Templates: tpl, PublicURL: cfg.PublicURL, Product: cfg.ProductName, Log: log, Poll: 500 * time.Millisecond}
	w.Init()
	return w, nil
}

// mailAccounts gives the mail worker the accounts it needs.
type mailAccounts struct {
	*sqlstore.DB
	svc *auth.Service
}

func (m mailAccounts) IssueToken(ctx context.Context, u *auth.User, purpose string) (string, error) {
	return m.svc.IssueToken(ctx, u, purpose)
}

// notifyingQueue wakes this node's worker when a job is queued, so the
// first delivery attempt starts at once (other nodes poll).
type notifyingQueue struct {
	auth.MailQueue
	worker *mail.Worker
}

func (q *notifyingQueue) Enqueue(ctx context.Context, j *auth.MailJob) error {
	if err := q.MailQueue.Enqueue(ctx, j); err != nil {
		return err
	}
	q.worker.Notify()
	return nil
}
