// Package config owns Gatehouse's typed configuration: the built-in
// defaults, loading, and validation.
//
// Every simple setting has three spellings: a flag (--public-url), an
// environment variable (GATEHOUSE_PUBLIC_URL) and a YAML key (public_url).
// Load takes each setting from the first source that gives it a non-empty
// value, in the order flags > environment > YAML file > built-in default.
// The YAML-only sections (roles, scopes, default_roles, password, argon2,
// rate_limits, registration, providers, clients, hooks, webhooks) come from
// the file or the defaults.
//
// Load validates everything and reports every problem at once in a
// *ValidationError, each problem naming its key as spelled in its source.
// The environment is read only through the getenv function given to Load;
// nothing in this package reads it afterwards.
package config

import (
	"flag"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

// Config is Gatehouse's complete, validated configuration.
type Config struct {
	Addr        string // listen address, host:port
	PublicURL   string // external base URL, no trailing slash
	DataDir     string // directory for local data
	DatabaseURL string // sqlite:PATH or postgres://...
	RedisURL    string // redis:// or rediss://; "" when unused
	Secret      string // server secret, ≥ 32 bytes; "" means the server generates one
	SigningAlg  string // EdDSA, ES256, RS256 or HS256

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	SessionTTL      time.Duration // absolute session lifetime
	SessionIdleTTL  time.Duration // session ends after this long unused

	SMTPURL  string // smtp:// or smtps://; "" when unused
	MailFrom string // From address of outgoing mail
	// ProductName is shown in mail and on the hosted pages.
	ProductName string
	// BrandColor is the accent colour of the hosted pages, #rrggbb in
	// lower case.
	BrandColor string
	// LogoURL is an image shown above the hosted pages' heading: an https
	// URL or a path on this server; "" shows the product name instead.
	LogoURL string

	CORSOrigins    []string       // exact origins, lower case
	TrustedProxies []netip.Prefix // proxies whose X-Forwarded-For is trusted

	RequireVerifiedEmail bool
	LockoutThreshold     int // failed logins before lockout
	LockoutDuration      time.Duration
	PasswordGrant        bool          // allow the OAuth password grant
	RefreshReuseGrace    time.Duration // 0 disables

	LogFormat string // "text", "json", or "" to let the server decide
	LogLevel  string // debug, info, warn or error
	Audience  string // aud claim of access tokens

	HashConcurrency int           // max password hashes at once
	HashMaxWait     time.Duration // wait for a hashing slot before 503

	MFA MFAConfig

	// OAuth2 / OpenID Connect provider (SPEC §14).
	IDTokenAlg  string        // RS256, ES256 or EdDSA: ID tokens of clients that registered no algorithm
	IDTokenTTL  time.Duration // ID-token lifetime
	AuthCodeTTL time.Duration // authorization-code lifetime, at most 10 minutes
	ConsentTTL  time.Duration // remembered consent expires after this; 0 means until revoked

	// Admin console (SPEC §17).
	AdminConsole    bool // serve /admin
	AdminRequireMFA bool // the console needs an aal2 session
	// AdminAllowedCIDRs, when not empty, are the only networks from which
	// /admin and /v1/admin/* exist; elsewhere they answer 404.
	AdminAllowedCIDRs []netip.Prefix

	// Revocation feed (SPEC §15).
	RevocationFeed      bool          // record revocation events and serve the feed
	RevocationHeartbeat time.Duration // SSE comment interval

	// Webhooks and blocking hooks (SPEC §16).
	WebhookAllowPrivate bool          // http and non-public addresses allowed (development)
	WebhookTimeout      time.Duration // bound of one delivery attempt
	WebhookMaxAttempts  int           // attempts of one message before it fails
	WebhookRetention    time.Duration // finished deliveries are kept this long
	HookTimeout         time.Duration // bound of one blocking-hook call

	// ConfigFile is the YAML file that was loaded, or "".
	ConfigFile string

	// Sources says where Load took each setting from: SourceFlag,
	// SourceEnv, SourceYAML or SourceDefault, by YAML key — every simple
	// setting (unset ones are SourceDefault), every YAML-only section
	// (SourceYAML when the file has it) and, for the file itself, "config"
	// (SourceFlag or SourceEnv; absent without a file). Effective pairs
	// them with the values.
	Sources map[string]string
	// shown is the text of each simple setting Load applied, lists joined
	// with ", ", secrets already redacted: never a secret in the clear.
	shown map[string]string

	// Roles maps a role name to the scopes it allows.
	Roles map[string][]string
	// Scopes maps a scope name to its description.
	Scopes map[string]string
	// DefaultRoles are given to new registrations.
	DefaultRoles []string

	Password     PasswordConfig
	Argon2       Argon2Config
	RateLimits   RateLimitConfig
	Registration RegistrationConfig
	Providers    []Provider
	// Clients are the OAuth clients of the OpenID provider declared in the
	// file (SPEC §14); they are synced into the store at start-up and are
	// read-only over the API.
	Clients []ClientConfig
	// Hooks are the blocking hooks (SPEC §16).
	Hooks HooksConfig
	// Webhooks are the webhook endpoints declared in the file (SPEC §16);
	// they are synced into the store at start-up and are read-only over
	// the API.
	Webhooks []WebhookConfig
}

// MFAConfig holds the two-factor settings (SPEC §13).
type MFAConfig struct {
	RequiredRoles     []string
	ChallengeTTL      time.Duration
	MaxAttempts       int
	TOTPIssuer        string
	TOTPSkew          int // 0..2
	RecoveryCodeCount int // 5..20
	StepUpMaxAge      time.Duration
	PasskeyIsMFA      bool
}

// PasswordConfig is the password policy (YAML section password).
type PasswordConfig struct {
	MinLength int // 1..256
}

// Argon2Config holds the Argon2id parameters (YAML section argon2).
type Argon2Config struct {
	Memory      uint32 // KiB, ≥ 8
	Iterations  uint32 // ≥ 1
	Parallelism uint8  // 1..255
}

// RateLimitConfig holds the login rate limits (YAML section rate_limits):
// at most LoginPerAccountIP attempts per account and client IP, and
// LoginPerIP attempts per client IP, in each Window.
type RateLimitConfig struct {
	LoginPerAccountIP int
	LoginPerIP        int
	Window            time.Duration
}

// RegistrationConfig controls registration (YAML section registration).
type RegistrationConfig struct {
	// RevealExisting makes registration say when an email address is
	// already registered, instead of answering as for a new address.
	RevealExisting bool
}

// ProviderTypes returns the accepted values of Provider.Type.
func ProviderTypes() []string {
	return []string{"oidc", "google", "microsoft", "auth0", "github"}
}

// Provider is an external identity provider (YAML list providers).
type Provider struct {
	ID           string   // [a-z0-9_-]+, unique
	Type         string   // one of ProviderTypes()
	Name         string   // display name
	Issuer       string   // OIDC issuer URL
	ClientID     string   // required
	ClientSecret string   // env GATEHOUSE_PROVIDER_<ID>_CLIENT_SECRET wins
	Scopes       []string // scopes requested from the provider
	Tenant       string   // microsoft tenant
	Domain       string   // auth0 domain
	// TrustedAudiences are the audiences besides ClientID that an ID token
	// of this provider may also name (SPEC §18 H8); any other is refused.
	TrustedAudiences []string
}

// ProviderSecretEnv returns the environment variable that overrides the
// client secret of the provider with the given id.
func ProviderSecretEnv(id string) string {
	return EnvPrefix + "PROVIDER_" + strings.ToUpper(strings.ReplaceAll(id, "-", "_")) + "_CLIENT_SECRET"
}

// ClientConfig is an OAuth client of the OpenID provider (YAML list
// clients:): the settings of POST /v1/admin/clients plus its id and
// secret. Load checks it with the same rules as the API
// (auth.ValidateConfigClient).
type ClientConfig struct {
	ID string // the client_id: 1–64 of A-Z a-z 0-9 . _ ~ -, unique
	// Secret is a confidential client's secret, at least 32 characters;
	// the environment variable ClientSecretEnv(ID) wins.
	Secret                  string
	Name                    string
	Type                    string // confidential or public
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	GrantTypes              []string
	Scopes                  []string
	FirstParty              bool
	RequirePKCE             *bool // nil: true
	TokenEndpointAuthMethod string
	IDTokenAlg              string // id_token_signed_response_alg
	IDTokenClaims           bool
	LogoURL                 string
}

// Input returns cl as the client registry takes it.
func (cl ClientConfig) Input() auth.ClientInput {
	return auth.ClientInput{ID: cl.ID, Secret: cl.Secret, Name: cl.Name, Type: cl.Type,
		RedirectURIs: cl.RedirectURIs, PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs, GrantTypes: cl.GrantTypes,
		Scopes: cl.Scopes, FirstParty: cl.FirstParty, RequirePKCE: cl.RequirePKCE,
		TokenEndpointAuthMethod: cl.TokenEndpointAuthMethod, IDTokenAlg: cl.IDTokenAlg, IDTokenClaims: cl.IDTokenClaims,
		LogoURL: cl.LogoURL}
}

// ClientSecretEnv returns the environment variable that sets the secret
// of the client with the given id: the id in upper case, every character
// other than a letter or digit replaced by "_".
func ClientSecretEnv(id string) string {
	return EnvPrefix + "CLIENT_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, id) + "_SECRET"
}

func defaultRoles() map[string][]string {
	return map[string][]string{
		"user":   {"read", "write"},
		"editor": {"read", "write"},
		"admin":  {"read", "write", "admin"},
	}
}

func defaultScopes() map[string]string {
	return map[string]string{
		"read":       "Read your own data",
		"write":      "Change your own data",
		"admin":      "Administer users and settings",
		"introspect": "Introspect tokens (RFC 7662)",
	}
}

// sectionDefaults returns a Config with the defaults of the YAML-only
// sections filled in.
func sectionDefaults() *Config {
	return &Config{
		Roles:        defaultRoles(),
		Scopes:       defaultScopes(),
		DefaultRoles: []string{"user"},
		Password:     PasswordConfig{MinLength: 8},
		Argon2:       Argon2Config{Memory: 19456, Iterations: 2, Parallelism: 1},
		RateLimits:   RateLimitConfig{LoginPerAccountIP: 5, LoginPerIP: 20, Window: time.Minute},
	}
}

// Default returns the built-in configuration, as Load would with no flags,
// environment or file.
func Default() *Config {
	c, err := Load(nil, nil)
	if err != nil {
		panic("config: built-in defaults are invalid: " + err.Error())
	}
	return c
}

// Sources of a setting's value (Config.Sources, EffectiveSetting.Source).
const (
	SourceFlag    = "flag"
	SourceEnv     = "env"
	SourceYAML    = "yaml"
	SourceDefault = "default"
)

// Load builds the Config from the flags set on fs (only flags actually
// given count; fs must have been set up with AddFlags and parsed), getenv
// (e.g. os.Getenv), the YAML file named by --config or GATEHOUSE_CONFIG,
// and the built-in defaults, then validates it. fs and getenv may be nil.
//
// When anything is wrong, Load returns a nil Config and a *ValidationError
// listing every problem.
func Load(fs *flag.FlagSet, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	flags := map[string]string{}
	if fs != nil {
		fs.Visit(func(f *flag.Flag) { flags[f.Name] = f.Value.String() })
	}
	var problems []Problem
	c := sectionDefaults()
	c.Sources, c.shown = map[string]string{}, map[string]string{}

	// The configuration file.
	var file *yamlFile
	path, key, src := strings.TrimSpace(flags[ConfigFlag]), "--"+ConfigFlag, SourceFlag
	if path == "" {
		path, key, src = strings.TrimSpace(getenv(ConfigEnv)), ConfigEnv, SourceEnv
	}
	if path != "" {
		c.ConfigFile = path
		c.Sources[ConfigFlag] = src
		file = readYAML(path, key)
		problems = append(problems, file.problems...)
	}

	// Simple settings: flag > env > file > default.
	for i := range settings {
		s := &settings[i]
		var in input
		var p Problem
		c.Sources[s.name] = SourceDefault
		if v := strings.TrimSpace(flags[s.flagName()]); v != "" {
			in, p.Key, c.Sources[s.name] = input{text: v}, "--"+s.flagName(), SourceFlag
		} else if v := strings.TrimSpace(getenv(s.envName())); v != "" {
			in, p.Key, c.Sources[s.name] = input{text: v}, s.envName(), SourceEnv
		} else if v, ok := file.value(s.name); ok {
			in, p.Key, p.File, c.Sources[s.name] = v, s.name, file.path, SourceYAML
		} else if s.derive != nil {
			v, ok := s.derive(c)
			if !ok {
				continue
			}
			in, p.Key = input{text: v}, s.name
		} else if s.def != "" {
			in, p.Key = input{text: s.def}, s.name
		} else {
			continue
		}
		if err := s.apply(c, in); err != nil {
			p.Message = err.Error()
			problems = append(problems, p)
			continue
		}
		c.shown[s.name] = s.show(in)
	}

	// YAML-only sections: from the file when it has them.
	for _, name := range sectionNames() {
		c.Sources[name] = SourceDefault
		if _, ok := file.section(name); ok {
			c.Sources[name] = SourceYAML
		}
	}

	// YAML-only sections.
	if file != nil {
		d := &sectionDecoder{reporter{file: file.path}}
		d.decode(c, file, getenv)
		problems = append(problems, d.problems...)
	}

	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return c, nil
}

// IsHTTPS reports whether the public URL uses https.
func (c *Config) IsHTTPS() bool {
	return strings.HasPrefix(strings.ToLower(c.PublicURL), "https://")
}

// redactedText replaces secrets in a copy made by Redacted.
const redactedText = "REDACTED"

// Redacted returns a deep copy that is safe to log: the secret, passwords
// in URLs, provider client secrets, client secrets and webhook secrets are
// replaced by "REDACTED".
func (c *Config) Redacted() Config {
	r := *c
	if r.Secret != "" {
		r.Secret = redactedText
	}
	r.DatabaseURL = redactURL(r.DatabaseURL)
	r.RedisURL = redactURL(r.RedisURL)
	r.SMTPURL = redactURL(r.SMTPURL)
	r.CORSOrigins = slices.Clone(c.CORSOrigins)
	r.TrustedProxies = slices.Clone(c.TrustedProxies)
	r.AdminAllowedCIDRs = slices.Clone(c.AdminAllowedCIDRs)
	r.Sources = maps.Clone(c.Sources)
	r.shown = maps.Clone(c.shown)
	r.DefaultRoles = slices.Clone(c.DefaultRoles)
	r.Scopes = maps.Clone(c.Scopes)
	if c.Roles != nil {
		r.Roles = make(map[string][]string, len(c.Roles))
		for k, v := range c.Roles {
			r.Roles[k] = slices.Clone(v)
		}
	}
	if c.Providers != nil {
		r.Providers = make([]Provider, len(c.Providers))
		for i, p := range c.Providers {
			p.Scopes = slices.Clone(p.Scopes)
			p.TrustedAudiences = slices.Clone(p.TrustedAudiences)
			if p.ClientSecret != "" {
				p.ClientSecret = redactedText
			}
			r.Providers[i] = p
		}
	}
	if c.Clients != nil {
		r.Clients = make([]ClientConfig, len(c.Clients))
		for i, cl := range c.Clients {
			cl.RedirectURIs = slices.Clone(cl.RedirectURIs)
			cl.PostLogoutRedirectURIs = slices.Clone(cl.PostLogoutRedirectURIs)
			cl.GrantTypes = slices.Clone(cl.GrantTypes)
			cl.Scopes = slices.Clone(cl.Scopes)
			if cl.RequirePKCE != nil {
				v := *cl.RequirePKCE
				cl.RequirePKCE = &v
			}
			if cl.Secret != "" {
				cl.Secret = redactedText
			}
			r.Clients[i] = cl
		}
	}
	r.Hooks = HooksConfig{BeforeRegister: c.Hooks.BeforeRegister.redacted(), BeforeLogin: c.Hooks.BeforeLogin.redacted()}
	r.Webhooks = redactedWebhooks(c.Webhooks)
	return r
}

// EffectiveSetting is one simple setting as Load left it.
type EffectiveSetting struct {
	Setting
	// Value is the value in effect as text (a list comma-separated), with
	// secrets redacted as in Redacted; "" when the setting is unset (or
	// when c was not made by Load).
	Value string
	// Source is where the value came from: SourceFlag, SourceEnv,
	// SourceYAML or SourceDefault (also for an unset setting).
	Source string
}

// Effective returns every simple setting, in the order of Settings, with
// its value and source: the effective configuration, safe to show to an
// administrator (secrets are redacted).
func (c *Config) Effective() []EffectiveSetting {
	all := Settings()
	out := make([]EffectiveSetting, len(all))
	for i, s := range all {
		out[i] = EffectiveSetting{Setting: s, Value: c.shown[s.Name], Source: c.Sources[s.Name]}
	}
	return out
}

// redactURL hides the password of a URL's user info and password-like
// query parameters. A URL that cannot be parsed is hidden entirely.
func redactURL(s string) string {
	if s == "" || strings.HasPrefix(s, "sqlite:") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return redactedText
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redactedText)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			lk := strings.ToLower(k)
			if strings.Contains(lk, "password") || strings.Contains(lk, "secret") {
				q[k] = []string{redactedText}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}
