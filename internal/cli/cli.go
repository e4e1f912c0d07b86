// Package cli is the gatehouse command: it parses the command line, loads
// the configuration and wires every component by hand (no registry, no
// globals). cmd/gatehouse's main only calls Run.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/config"
	"gatehouse/internal/oidc"
	"gatehouse/internal/passkey"
	"gatehouse/internal/server"
)

// Version is set at build time with -ldflags "-X gatehouse/internal/cli.Version=…".
var Version = "dev"

// Env is what a command may use of its process.
type Env struct {
	Args   []string // without the program name
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Listening, when set, is called with the address serve listens on.
	Listening func(addr string)
}

const topUsage = `gatehouse — authentication and authorization server

Usage:
  gatehouse serve                  start the server (runs migrations first)
  gatehouse migrate                apply database migrations and exit
  gatehouse user create --email E [--role R]... [--name N] [--password-stdin]
  gatehouse user set-role --email E --role R [--role R]...
  gatehouse client create --name N --type confidential|public --redirect-uri U [--redirect-uri U]...
        [--grant G]... [--scope S]... [--first-party] [--no-require-pkce] [--post-logout-redirect-uri U]...
                                   register an OAuth client and print it as JSON (its secret only this once)
  gatehouse keys rotate            add new signing keys, for access and ID tokens (the previous ones keep verifying)
  gatehouse keys list              list signing keys
  gatehouse keys revoke --kid K    withdraw a compromised signing key now (rotate first if it is current)
  gatehouse version                print the version

Every command reads the same configuration: flags, GATEHOUSE_* environment
variables, a YAML file (--config / GATEHOUSE_CONFIG), then defaults.
Run "gatehouse <command> --help" for the settings.
`

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

// Run runs the gatehouse command; it returns when the command is done or,
// for serve, when ctx is cancelled (graceful shutdown).
func Run(ctx context.Context, e Env) error {
	if len(e.Args) == 0 {
		fmt.Fprint(e.Stderr, topUsage)
		return errUsage
	}
	cmd, rest := e.Args[0], e.Args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, e, rest)
	case "migrate":
		return cmdMigrate(ctx, e, rest)
	case "user":
		if len(rest) > 0 && rest[0] == "create" {
			return cmdUserCreate(ctx, e, rest[1:])
		}
		if len(rest) > 0 && rest[0] == "set-role" {
			return cmdUserSetRole(ctx, e, rest[1:])
		}
	case "client":
		if len(rest) > 0 && rest[0] == "create" {
			return cmdClientCreate(ctx, e, rest[1:])
		}
	case "keys":
		if len(rest) > 0 && rest[0] == "rotate" {
			return cmdKeys(ctx, e, "rotate", rest[1:])
		}
		if len(rest) > 0 && rest[0] == "list" {
			return cmdKeys(ctx, e, "list", rest[1:])
		}
		if len(rest) > 0 && rest[0] == "revoke" {
			return cmdKeysRevoke(ctx, e, rest[1:])
		}
	case "version", "--version", "-version":
		fmt.Fprintln(e.Stdout, "gatehouse", Version)
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(e.Stdout, topUsage)
		return nil
	}
	fmt.Fprintf(e.Stderr, "gatehouse: unknown command %q\n\n%s", strings.Join(e.Args[:min(2, len(e.Args))], " "), topUsage)
	return errUsage
}

// IsUsage reports whether err is a command-line mistake.
func IsUsage(err error) bool { return errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) }

// IsHelp reports that err is Run's answer to -h or --help: the help was
// printed (to Stdout) and the command should exit successfully.
func IsHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }

// askedForHelp reports -h or --help among the flags of args (before a "--").
func askedForHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--h", "--help":
			return true
		}
	}
	return false
}

// parse sets up a command's flags (its own plus every setting), parses
// args and loads the configuration.
func parse(e Env, name, summary string, args []string, own func(fs *flag.FlagSet)) (*flag.FlagSet, *config.Config, error) {
	fs := flag.NewFlagSet("gatehouse "+name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	if askedForHelp(args) {
		fs.SetOutput(e.Stdout) // asked-for help is output, not an error
	}
	if own != nil {
		own(fs)
	}
	config.AddFlags(fs)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: gatehouse %s [flags]\n\n%s\n\nFlags (each setting also as GATEHOUSE_<NAME> and as a YAML key):\n", name, summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		// The flag package has printed the mistake and the usage.
		return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.Stderr, "gatehouse %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, nil, errUsage
	}
	cfg, err := config.Load(fs, e.Getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration:\n%w", err)
	}
	return fs, cfg, nil
}

func cmdMigrate(ctx context.Context, e Env, args []string) error {
	_, cfg, err := parse(e, "migrate", "Apply every pending database migration and exit (serve also does this).", args, nil)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.Stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintln(e.Stdout, "migrations applied")
	return nil
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func cmdUserCreate(ctx context.Context, e Env, args []string) error {
	var (
		email, name string
		roles       multi
		stdin       bool
	)
	_, cfg, err := parse(e, "user create", "Create an account (email verified). Without --password-stdin the account has no password.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "email of the new user (required)")
		fs.StringVar(&name, "name", "", "display name")
		fs.Var(&roles, "role", "role to give (repeatable; default: the default roles)")
		fs.BoolVar(&stdin, "password-stdin", false, "read the password from standard input (one line; the trailing newline is removed)")
	})
	if err != nil {
		return err
	}
	if email == "" {
		fmt.Fprintln(e.Stderr, "gatehouse user create: --email is required")
		return errUsage
	}
	var pw string
	if stdin {
		line, err := bufio.NewReader(e.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the password: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
		if pw == "" {
			return errors.New("gatehouse user create: empty password on standard input")
		}
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.Stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.auth.CreateUser(ctx, email, pw, roles)
	if err != nil {
		return fmt.Errorf("gatehouse user create: %s", auth.ErrorMessage(err))
	}
	if name != "" {
		if _, err := a.auth.UpdateName(ctx, u.ID, name, auth.Meta{IP: "cli"}); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.Stdout, "created user %s <%s> roles=%s\n", u.ID, u.Email, strings.Join(u.Roles, ","))
	return nil
}

func cmdUserSetRole(ctx context.Context, e Env, args []string) error {
	var (
		email string
		roles multi
	)
	_, cfg, err := parse(e, "user set-role", "Replace a user's roles.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "email of the user (required)")
		fs.Var(&roles, "role", "role (repeatable; the user gets exactly these)")
	})
	if err != nil {
		return err
	}
	if email == "" || len(roles) == 0 {
		fmt.Fprintln(e.Stderr, "gatehouse user set-role: --email and at least one --role are required")
		return errUsage
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.Stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	norm, err := auth.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("gatehouse user set-role: %s", auth.ErrorMessage(err))
	}
	u, err := a.db.UserByEmail(ctx, norm)
	if err != nil {
		return fmt.Errorf("gatehouse user set-role: no user with email %s", norm)
	}
	if err := a.auth.SetRoles(ctx, u.ID, roles, auth.Meta{IP: "cli"}); err != nil {
		return fmt.Errorf("gatehouse user set-role: %s", auth.ErrorMessage(err))
	}
	fmt.Fprintf(e.Stdout, "user %s <%s> roles=%s\n", u.ID, u.Email, strings.Join(roles, ","))
	return nil
}

func cmdClientCreate(ctx context.Context, e Env, args []string) error {
	var (
		in                                 auth.ClientInput
		redirects, postLogout, grants, scp multi
		noPKCE                             bool
	)
	_, cfg, err := parse(e, "client create", "Register an OAuth client of the OpenID provider (docs/oidc-provider.md) and print it as JSON. A confidential client's\nsecret (client_secret) is printed this once; only its hash is stored. Defaults: grants authorization_code and\nrefresh_token; scopes openid, profile and email (and offline_access with refresh_token); PKCE required.", args, func(fs *flag.FlagSet) {
		fs.StringVar(&in.Name, "name", "", "name shown on the consent page (required)")
		fs.StringVar(&in.Type, "type", "", "confidential (a server that keeps a secret) or public (a browser or native app) (required)")
		fs.Var(&redirects, "redirect-uri", "redirect URI, compared as an exact string (repeatable; required with the authorization_code grant):\nhttps, http only on 127.0.0.1, [::1] or localhost (any port), or a private-use scheme with a dot (com.example.app:/cb)")
		fs.Var(&postLogout, "post-logout-redirect-uri", "where RP-initiated logout may return to (repeatable; same rules as --redirect-uri)")
		fs.Var(&grants, "grant", "grant type: authorization_code, refresh_token, client_credentials (confidential only) (repeatable;\ndefault authorization_code and refresh_token)")
		fs.Var(&scp, "scope", "a scope the client may ask for: a configured scope, or openid, profile, email, offline_access (repeatable)")
		fs.BoolVar(&in.FirstParty, "first-party", false, "no consent page, and roles in access tokens")
		fs.BoolVar(&noPKCE, "no-require-pkce", false, "do not require PKCE (confidential clients only: legacy relying parties, the conformance suite)")
		fs.StringVar(&in.TokenEndpointAuthMethod, "token-endpoint-auth-method", "", "client_secret_basic (the default for confidential clients) or client_secret_post; none for public clients")
		fs.StringVar(&in.IDTokenAlg, "id-token-signed-response-alg", "", "algorithm of the client's ID tokens: RS256, ES256 or EdDSA (default: the server's --id-token-alg)")
		fs.BoolVar(&in.IDTokenClaims, "id-token-claims", false, "put the profile and email claims in the ID token too")
		fs.StringVar(&in.LogoURL, "client-logo-url", "", "https URL of the client's logo, for the consent page (--logo-url is the server's own)")
	})
	if err != nil {
		return err
	}
	if in.Name == "" || in.Type == "" {
		fmt.Fprintln(e.Stderr, "gatehouse client create: --name and --type are required")
		return errUsage
	}
	in.RedirectURIs, in.PostLogoutRedirectURIs, in.GrantTypes, in.Scopes = redirects, postLogout, grants, scp
	if noPKCE {
		f := false
		in.RequirePKCE = &f
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.Stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	c, secret, err := a.auth.CreateClient(ctx, in, auth.Meta{IP: "cli"}, false)
	if err != nil {
		var de *auth.Error
		if !errors.As(err, &de) {
			return fmt.Errorf("gatehouse client create: %w", err)
		}
		if de.Field != "" {
			return fmt.Errorf("gatehouse client create: %s: %s", de.Field, de.Message)
		}
		return fmt.Errorf("gatehouse client create: %s", de.Message)
	}
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(server.CreatedClientBody{ClientBody: server.NewClientBody(c), ClientSecret: secret})
}

func cmdKeys(ctx context.Context, e Env, sub string, args []string) error {
	summary := "List the signing keys: the current one signs, published ones verify."
	if sub == "rotate" {
		summary = "Add a new signing key for access tokens (the configured algorithm) and one for ID tokens (each ID-token algorithm in use). They sign every token issued after them (running servers pick them up within a minute); tokens signed by the previous keys stay valid until they expire."
	}
	_, cfg, err := parse(e, "keys "+sub, summary, args, nil)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.Stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	if sub == "rotate" {
		keys, err := a.keys.RotateAll(ctx)
		if err != nil {
			return err
		}
		rotated := make([]auth.RotatedKey, 0, len(keys))
		for _, k := range keys {
			use := "access tokens"
			if k.IDToken {
				use = "ID tokens"
			}
			rotated = append(rotated, auth.RotatedKey{KID: k.KID, Alg: k.Alg, IDToken: k.IDToken})
			fmt.Fprintf(e.Stdout, "new signing key %s (%s, %s)\n", k.KID, k.Alg, use)
		}
		a.auth.RecordKeyRotation(ctx, rotated, auth.Meta{IP: "cli"})
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSIGNS\tCREATED\tSTATE")
	for _, k := range a.keys.Keys() {
		signs := "access tokens"
		if k.IDToken {
			signs = "ID tokens"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, signs, k.CreatedAt.Format(time.RFC3339), k.State())
	}
	return tw.Flush()
}

// cmdKeysRevoke withdraws a signing key before its time: a key that may be
// compromised. Tokens it signed are refused at once wherever the
// revocation feed reaches (SPEC §15), and the key leaves the JWKS of every
// node at its next reload.
func cmdKeysRevoke(ctx context.Context, e Env, args []string) error {
	var kid string
	_, cfg, err := parse(e, "keys revoke", "Withdraw a signing key now (a key that may be compromised): it is deleted, leaves the JWKS of every node within a minute, and every token it signed is refused at once by Gatehouse and by each guard that follows the revocation feed (key.revoked). A current key cannot be revoked: run gatehouse keys rotate first. Tokens it signed must be obtained again.", args,
		func(fs *flag.FlagSet) { fs.StringVar(&kid, "kid", "", "the key id (see gatehouse keys list)") })
	if err != nil {
		return err
	}
	if kid == "" {
		fmt.Fprintln(e.Stderr, "gatehouse keys revoke: --kid is required (see gatehouse keys list)")
		return errUsage
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.Stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	found := false
	for _, k := range a.keys.Keys() {
		if k.KID != kid {
			continue
		}
		found = true
		if k.Current {
			return fmt.Errorf("gatehouse keys revoke: %s is a current signing key: run gatehouse keys rotate first, then revoke it", kid)
		}
	}
	if !found {
		return fmt.Errorf("gatehouse keys revoke: no signing key %q (see gatehouse keys list)", kid)
	}
	if err := a.db.RevokeSigningKey(ctx, kid, time.Now().UTC()); err != nil {
		return fmt.Errorf("gatehouse keys revoke: %w", err)
	}
	_ = a.db.AppendAudit(ctx, &auth.AuditEvent{ID: auth.NewID(), Type: auth.EventKeyRevoked, At: time.Now().UTC(), IP: "cli",
		Details: map[string]any{"kid": kid}})
	fmt.Fprintf(e.Stdout, "revoked signing key %s\n", kid)
	return nil
}

func cmdServe(ctx context.Context, e Env, args []string) error {
	_, cfg, err := parse(e, "serve", "Start the server. With no configuration at all it uses SQLite, a generated secret and keys in ./gatehouse-data/, and writes mail to ./gatehouse-data/mail/.\nUnless set in the environment, GOMEMLIMIT becomes hash_concurrency x argon2 memory + 96 MiB, and GOGC is set after every collection to hold the heap goal argon2 memory + 11 MiB below that limit (see docs/DECISIONS.md).", args, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.Stderr)
	defer tuneRuntime(cfg, e.Getenv)()
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	providers := oidc.New(ctx, cfg.Providers, cfg.PublicURL, nil, log)
	// WebAuthn needs a domain name as relying-party ID: with a public URL
	// on a bare IP address passkeys are off (and say so), the rest works.
	passkeys, err := passkey.New(cfg.PublicURL, cfg.ProductName, a.auth)
	if err != nil {
		log.Warn("passkeys are disabled", "reason", err.Error())
		passkeys = nil
	}
	srv := server.New(server.Deps{Config: cfg, Auth: a.auth, Keys: a.keys, OIDC: providers, Passkeys: passkeys, Ready: a.ready(),
		Metrics: a.metrics, Log: log, Version: Version, Feed: a.hub, Revoked: a.revoked})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bg, stop := context.WithCancel(ctx)
	defer stop()
	go a.keys.Run(bg, 30*time.Second)
	go purgeCounters(bg, a, log)
	go a.runFeed(bg)
	mailDone := make(chan struct{})
	go func() { a.mailer.Run(bg); close(mailDone) }()
	defer func() { stop(); <-mailDone }() // the worker finishes before the database closes
	webhooksDone := make(chan struct{})
	go func() { a.webhooks.Run(bg); close(webhooksDone) }()
	defer func() { stop(); <-webhooksDone }() // attempts in flight are recorded before the database closes
	go a.auth.RunWebhookSnapshot(bg)
	go flushKeyUse(bg, a, log)

	log.Info("gatehouse listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL,
		"database", a.db.Dialect(), "version", Version)
	if e.Listening != nil {
		e.Listening(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := a.auth.FlushAPIKeyUse(sctx); err != nil {
		log.Warn("recording API key use", "err", err)
	}
	return nil
}

// mailJobRetention is how long finished mail jobs (sent or given up) are
// kept, for operators looking into a delivery, before they are deleted.
const mailJobRetention = 7 * 24 * time.Hour

// purgeCounters deletes ended rate-limit windows and stale lockout rows,
// mail jobs finished longer than mailJobRetention ago, and finished webhook
// deliveries older than GATEHOUSE_WEBHOOK_RETENTION, every ten minutes.
func purgeCounters(ctx context.Context, a *app, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.db.PurgeCounters(ctx, time.Now().Add(-time.Hour)); err != nil && ctx.Err() == nil {
				log.Warn("purging rate-limit counters", "err", err)
			}
			if err := a.db.PurgeMailJobs(ctx, time.Now().Add(-mailJobRetention)); err != nil && ctx.Err() == nil {
				log.Warn("purging finished mail jobs", "err", err)
			}
			if err := a.db.PurgeWebhookDeliveries(ctx, time.Now().Add(-a.cfg.WebhookRetention)); err != nil && ctx.Err() == nil {
				log.Warn("purging the webhook delivery log", "err", err)
			}
			if err := a.db.PurgeRevocations(ctx, time.Now().Add(-revocationRetention(a.cfg))); err != nil && ctx.Err() == nil {
				log.Warn("purging revocation events", "err", err)
			}
		}
	}
}

// flushKeyUse writes API keys' last-used times every 30 seconds: using a
// key costs no database write.
func flushKeyUse(ctx context.Context, a *app, log *slog.Logger) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.auth.FlushAPIKeyUse(ctx); err != nil && ctx.Err() == nil {
				log.Warn("recording API key use", "err", err)
			}
		}
	}
}

// tuneRuntime sets the Go garbage collector for password hashing, unless
// GOGC or GOMEMLIMIT say otherwise. GOMAXPROCS stays the Go default (the
// CPUs the process may use): one P per CPU. A spare P (CPUs + 1) was once
// set so that a thread blocked in a SQLite fsync would not idle a CPU; login
// bookkeeping no longer waits for fsync (sqlstore txNoSync), and measured in
// alternation on 2 CPUs the spare P cost 11–13 points of the password-grant
// rate: three runnable threads on two CPUs interrupt the hashes with
// reschedules and evict their 19 MiB working sets (docs/BENCHMARKS.md).
//
// Every argon2id hash (golang.org/x/crypto/argon2.IDKey) allocates its
// whole memory cost, 19 MiB by default, and drops it. Under login load the
// heap climbs in such steps from the buffers of the running hashes to the
// collector's goal, and the next hashes reuse the freed buffers (the runtime
// zeroes them) — unless the runtime has returned them to the kernel, which
// then faults them in again at 3–6 µs a 4 KiB page on this VM. It returns
// what sits above 95 % of the memory limit, and what a lower goal than the
// last one no longer needs. So the goal is held at one size below that line
// (gcPacer): the memory limit minus one more buffer (a hash may allocate
// while the collector runs) minus goalMargin, 104 MiB by default; the
// limit, hash concurrency × argon2 memory + limitHeadroom, still bounds the
// heap under any flood of logins (admission control bounds the live hash
// memory). Pacing by the limit alone (GOGC 400, the goal at 97 % of the
// limit) kept the peak astride that 95 % line: 150–900 page faults a login
// and the grant rate 6–7 points lower. More headroom would not fit the
// peak-RSS budget: the peak is the limit plus about 30 MiB of binary and
// SQLite pages plus what the runtime has not yet returned, and with one P
// per CPU its background scavenger waits for a P behind the hashes. With
// 112 MiB of headroom 500 concurrent logins peaked at 171–192 MiB, over
// the 188 MiB budget now and then; with 96 MiB at 167–171 MiB, at the same
// grant rate (docs/BENCHMARKS.md).
// docs/DECISIONS.md, Garbage collection under password hashing.
//
// The returned func stops the pacer.
func tuneRuntime(cfg *config.Config, getenv func(string) string) (stop func()) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	limit := memoryLimit(cfg)
	debug.SetGCPercent(maxGCPercent)
	debug.SetMemoryLimit(limit)
	return startGCPacer(limit - int64(cfg.Argon2.Memory)*1024 - goalMargin)
}

// limitHeadroom is the memory limit beyond the hashes that may run at once:
// room for the buffers of finished hashes until the next collection, one
// more buffer and the runtime's own memory.
const limitHeadroom = 96 << 20

// goalMargin is what the heap goal leaves below the memory limit besides
// one argon2 buffer. The heap's peak (goal + one buffer) plus the runtime's
// own memory (stacks, heap metadata: about 14 MB under login load) has to
// stay under 95 % of the limit, so the margin must exceed that memory less
// 5 % of the limit (6.7 MiB by default); 11 MiB leaves room for it to grow.
const goalMargin = 11 << 20

// memoryLimit is serve's soft memory limit for cfg.
func memoryLimit(cfg *config.Config) int64 {
	return int64(cfg.HashConcurrency)*int64(cfg.Argon2.Memory)*1024 + limitHeadroom
}
