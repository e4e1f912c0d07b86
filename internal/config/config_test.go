package config

import (
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// load runs Load with the given flag arguments and environment. When
// yamlText is not empty it is written to a temporary file named by
// GATEHOUSE_CONFIG (unless env already names one).
func load(t *testing.T, args []string, env map[string]string, yamlText string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("gatehouse", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse flags %q: %v", args, err)
	}
	envCopy := map[string]string{}
	for k, v := range env {
		envCopy[k] = v
	}
	if yamlText != "" {
		if _, ok := envCopy[ConfigEnv]; !ok {
			envCopy[ConfigEnv] = writeYAML(t, yamlText)
		}
	}
	return Load(fs, func(k string) string { return envCopy[k] })
}

func writeYAML(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, args []string, env map[string]string, yamlText string) *Config {
	t.Helper()
	c, err := load(t, args, env, yamlText)
	if err != nil {
		t.Fatalf("Load: unexpected error:\n%v", err)
	}
	return c
}

// problemsOf returns the problems of a *ValidationError, failing when err
// is nil or of another type.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T: %v", err, err)
	}
	return ve.Problems
}

// keysOf returns the keys of the problems, for comparing with want lists.
func keysOf(ps []Problem) []string {
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.Key
	}
	return keys
}

func TestDefaults(t *testing.T) {
	c := Default()
	want := Config{
		Addr:              "127.0.0.1:8080",
		PublicURL:         "http://localhost:8080",
		DataDir:           "./gatehouse-data",
		DatabaseURL:       "sqlite:./gatehouse-data/gatehouse.db",
		SigningAlg:        "EdDSA",
		AccessTokenTTL:    15 * time.Minute,
		RefreshTokenTTL:   720 * time.Hour,
		SessionTTL:        720 * time.Hour,
		SessionIdleTTL:    168 * time.Hour,
		MailFrom:          "Gatehouse <no-reply@localhost>",
		ProductName:       "Gatehouse",
		BrandColor:        "#1f4fd1",
		LockoutThreshold:  10,
		LockoutDuration:   15 * time.Minute,
		PasswordGrant:     true,
		RefreshReuseGrace: 10 * time.Second,
		LogLevel:          "info",
		Audience:          "http://localhost:8080",
		HashConcurrency:   runtime.NumCPU(),
		HashMaxWait:       10 * time.Second,
		MFA: MFAConfig{ChallengeTTL: 5 * time.Minute, MaxAttempts: 5, TOTPIssuer: "Gatehouse", TOTPSkew: 1,
			RecoveryCodeCount: 10, StepUpMaxAge: 10 * time.Minute, PasskeyIsMFA: true},
		IDTokenAlg:  "RS256",
		IDTokenTTL:  15 * time.Minute,
		AuthCodeTTL: 60 * time.Second,
		ConsentTTL:  0, // until revoked

		AdminConsole: true, AdminRequireMFA: true,
		RevocationFeed: true, RevocationHeartbeat: 15 * time.Second,
		HookTimeout:    2 * time.Second,
		WebhookTimeout: 10 * time.Second, WebhookMaxAttempts: 10, WebhookRetention: 720 * time.Hour,
		Roles: map[string][]string{
			"user":   {"read", "write"},
			"editor": {"read", "write"},
			"admin":  {"read", "write", "admin"},
		},
		Scopes: map[string]string{
			"read":       "Read your own data",
			"write":      "Change your own data",
			"admin":      "Administer users and settings",
			"introspect": "Introspect tokens (RFC 7662)",
		},
		DefaultRoles: []string{"user"},
		Password:     PasswordConfig{MinLength: 8},
		Argon2:       Argon2Config{Memory: 19456, Iterations: 2, Parallelism: 1},
		RateLimits:   RateLimitConfig{LoginPerAccountIP: 5, LoginPerIP: 20, Window: time.Minute},
	}
	// Where each value came from is checked in TestSources.
	got := *c
	got.Sources, got.shown = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, want)
	}
	if c.IsHTTPS() {
		t.Error("default IsHTTPS() = true")
	}
}

func TestPrecedence(t *testing.T) {
	const yamlText = "signing_alg: RS256\naccess_token_ttl: 1h\naddr: 127.0.0.1:7000\n"
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		yaml  string
		check func(*Config) any
		want  any
	}{
		{name: "default", check: func(c *Config) any { return c.SigningAlg }, want: "EdDSA"},
		{name: "yaml beats default", yaml: yamlText,
			check: func(c *Config) any { return c.SigningAlg }, want: "RS256"},
		{name: "env beats yaml", yaml: yamlText, env: map[string]string{"GATEHOUSE_SIGNING_ALG": "ES256"},
			check: func(c *Config) any { return c.SigningAlg }, want: "ES256"},
		{name: "flag beats env", yaml: yamlText, env: map[string]string{"GATEHOUSE_SIGNING_ALG": "ES256"},
			args: []string{"--signing-alg", "HS256"}, check: func(c *Config) any { return c.SigningAlg }, want: "HS256"},
		{name: "duration from yaml", yaml: yamlText,
			check: func(c *Config) any { return c.AccessTokenTTL }, want: time.Hour},
		{name: "duration env beats yaml", yaml: yamlText, env: map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "5m"},
			check: func(c *Config) any { return c.AccessTokenTTL }, want: 5 * time.Minute},
		{name: "duration flag beats env", yaml: yamlText, env: map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "5m"},
			args: []string{"-access-token-ttl=2s"}, check: func(c *Config) any { return c.AccessTokenTTL }, want: 2 * time.Second},
		{name: "addr from yaml", yaml: yamlText,
			check: func(c *Config) any { return c.Addr }, want: "127.0.0.1:7000"},
		{name: "addr flag beats yaml", yaml: yamlText, args: []string{"--addr=:9999"},
			check: func(c *Config) any { return c.Addr }, want: ":9999"},
		{name: "bool flag without value", args: []string{"--require-verified-email", "--password-grant=false"},
			check: func(c *Config) any { return [2]bool{c.RequireVerifiedEmail, c.PasswordGrant} }, want: [2]bool{true, false}},
		{name: "bool env beats yaml", yaml: "password_grant: false\n", env: map[string]string{"GATEHOUSE_PASSWORD_GRANT": "1"},
			check: func(c *Config) any { return c.PasswordGrant }, want: true},
		{name: "config flag beats config env", args: []string{"--config", writeYAML(t, "log_level: debug\n")},
			env:   map[string]string{ConfigEnv: filepath.Join(t.TempDir(), "missing.yaml")},
			check: func(c *Config) any { return c.LogLevel }, want: "debug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.args, tt.env, tt.yaml)
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEmptyValueIsUnset(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want string
	}{
		{name: "empty flag falls through to env", args: []string{"--signing-alg="},
			env: map[string]string{"GATEHOUSE_SIGNING_ALG": "ES256"}, want: "ES256"},
		{name: "empty env falls through to yaml", env: map[string]string{"GATEHOUSE_SIGNING_ALG": ""},
			yaml: "signing_alg: RS256\n", want: "RS256"},
		{name: "blank env falls through to yaml", env: map[string]string{"GATEHOUSE_SIGNING_ALG": "  "},
			yaml: "signing_alg: RS256\n", want: "RS256"},
		{name: "empty yaml string falls through to default", yaml: "signing_alg: \"\"\n", want: "EdDSA"},
		{name: "null yaml falls through to default", yaml: "signing_alg:\n", want: "EdDSA"},
		{name: "empty everywhere is default", args: []string{"--signing-alg", ""},
			env: map[string]string{"GATEHOUSE_SIGNING_ALG": ""}, yaml: "signing_alg: ''\n", want: "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := mustLoad(t, tt.args, tt.env, tt.yaml); c.SigningAlg != tt.want {
				t.Errorf("SigningAlg = %q, want %q", c.SigningAlg, tt.want)
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	path := writeYAML(t, "argon2:\n  memroy: 100\n")
	_, err := load(t,
		[]string{"--signing-alg=RS512"},
		map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "abc", ConfigEnv: path},
		"")
	ps := problemsOf(t, err)
	want := []Problem{
		{Key: "--signing-alg", Message: `must be one of EdDSA, ES256, RS256, HS256, got "RS512"`},
		{Key: "GATEHOUSE_ACCESS_TOKEN_TTL", Message: `"abc" is not a duration (use e.g. 30s, 15m, 720h)`},
		{File: path, Key: "argon2.memroy", Message: "unknown key (known keys: iterations, memory, parallelism)"},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, p := range ps {
			found = found || p == w
		}
		if !found {
			t.Errorf("missing problem %q in:\n%v", w.String(), err)
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Errorf("Error() has %d lines, want 3:\n%v", len(lines), err)
	}
	for _, want := range []string{
		`GATEHOUSE_ACCESS_TOKEN_TTL: "abc" is not a duration`,
		`--signing-alg: must be one of EdDSA, ES256, RS256, HS256`,
		path + `: argon2.memroy: unknown key`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Error() lacks %q:\n%v", want, err)
		}
	}
}

func TestUnknownYAMLKeys(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantKeys []string
	}{
		{name: "top level", yaml: "addr: :80\nlisten: :80\n", wantKeys: []string{"listen"}},
		{name: "flag spelling", yaml: "public-url: https://x.example\n", wantKeys: []string{"public-url"}},
		{name: "nested argon2", yaml: "argon2:\n  memroy: 1\n", wantKeys: []string{"argon2.memroy"}},
		{name: "nested rate_limits", yaml: "rate_limits:\n  per_ip: 1\n", wantKeys: []string{"rate_limits.per_ip"}},
		{name: "nested password and registration", yaml: "password:\n  min: 3\nregistration:\n  reveal: true\n",
			wantKeys: []string{"password.min", "registration.reveal"}},
		{name: "inside provider", yaml: "providers:\n  - id: gh\n    type: github\n    client_id: x\n    secret: y\n",
			wantKeys: []string{"providers[0].secret"}},
		{name: "config is not a yaml key", yaml: "config: other.yaml\n", wantKeys: []string{"config"}},
		{name: "duplicate key", yaml: "addr: :80\naddr: :81\n", wantKeys: []string{"addr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, nil, nil, tt.yaml)
			ps := problemsOf(t, err)
			if got := keysOf(ps); !reflect.DeepEqual(got, tt.wantKeys) {
				t.Errorf("problem keys = %q, want %q\n%v", got, tt.wantKeys, err)
			}
			for _, p := range ps {
				if p.File == "" {
					t.Errorf("problem %q has no file", p.String())
				}
			}
		})
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		value   string
		want    time.Duration
		wantErr string
	}{
		{name: "positive", env: "GATEHOUSE_SESSION_TTL", value: "2s", want: 2 * time.Second},
		{name: "hours", env: "GATEHOUSE_REFRESH_TOKEN_TTL", value: "720h", want: 720 * time.Hour},
		{name: "zero refused", env: "GATEHOUSE_ACCESS_TOKEN_TTL", value: "0", wantErr: "must be a positive duration"},
		{name: "zero seconds refused", env: "GATEHOUSE_LOCKOUT_DURATION", value: "0s", wantErr: "must be a positive duration"},
		{name: "negative refused", env: "GATEHOUSE_SESSION_IDLE_TTL", value: "-1m", wantErr: "must be a positive duration"},
		{name: "hash wait zero refused", env: "GATEHOUSE_HASH_MAX_WAIT", value: "0", wantErr: "must be a positive duration"},
		{name: "no unit refused", env: "GATEHOUSE_ACCESS_TOKEN_TTL", value: "15", wantErr: `"15" is not a duration`},
		{name: "grace zero allowed", env: "GATEHOUSE_REFRESH_REUSE_GRACE", value: "0", want: 0},
		{name: "grace positive", env: "GATEHOUSE_REFRESH_REUSE_GRACE", value: "30s", want: 30 * time.Second},
		{name: "grace negative refused", env: "GATEHOUSE_REFRESH_REUSE_GRACE", value: "-1s", wantErr: "must be zero or a positive duration"},
		{name: "id token ttl", env: "GATEHOUSE_ID_TOKEN_TTL", value: "5m", want: 5 * time.Minute},
		{name: "id token ttl zero refused", env: "GATEHOUSE_ID_TOKEN_TTL", value: "0", wantErr: "must be a positive duration"},
		{name: "auth code ttl", env: "GATEHOUSE_AUTH_CODE_TTL", value: "30s", want: 30 * time.Second},
		{name: "auth code ttl 10m", env: "GATEHOUSE_AUTH_CODE_TTL", value: "10m", want: 10 * time.Minute},
		{name: "auth code ttl over 10m refused", env: "GATEHOUSE_AUTH_CODE_TTL", value: "10m1s", wantErr: "must be at most 10m"},
		{name: "auth code ttl zero refused", env: "GATEHOUSE_AUTH_CODE_TTL", value: "0s", wantErr: "must be a positive duration"},
		{name: "consent zero allowed", env: "GATEHOUSE_CONSENT_TTL", value: "0", want: 0},
		{name: "consent positive", env: "GATEHOUSE_CONSENT_TTL", value: "2160h", want: 2160 * time.Hour},
		{name: "consent negative refused", env: "GATEHOUSE_CONSENT_TTL", value: "-1h", wantErr: "must be zero or a positive duration"},
	}
	field := map[string]func(*Config) time.Duration{
		"GATEHOUSE_ACCESS_TOKEN_TTL":     func(c *Config) time.Duration { return c.AccessTokenTTL },
		"GATEHOUSE_REFRESH_TOKEN_TTL":    func(c *Config) time.Duration { return c.RefreshTokenTTL },
		"GATEHOUSE_SESSION_TTL":          func(c *Config) time.Duration { return c.SessionTTL },
		"GATEHOUSE_SESSION_IDLE_TTL":     func(c *Config) time.Duration { return c.SessionIdleTTL },
		"GATEHOUSE_LOCKOUT_DURATION":     func(c *Config) time.Duration { return c.LockoutDuration },
		"GATEHOUSE_HASH_MAX_WAIT":        func(c *Config) time.Duration { return c.HashMaxWait },
		"GATEHOUSE_REFRESH_REUSE_GRACE":  func(c *Config) time.Duration { return c.RefreshReuseGrace },
		"GATEHOUSE_ID_TOKEN_TTL":         func(c *Config) time.Duration { return c.IDTokenTTL },
		"GATEHOUSE_AUTH_CODE_TTL":        func(c *Config) time.Duration { return c.AuthCodeTTL },
		"GATEHOUSE_CONSENT_TTL":          func(c *Config) time.Duration { return c.ConsentTTL },
		"GATEHOUSE_REVOCATION_HEARTBEAT": func(c *Config) time.Duration { return c.RevocationHeartbeat },
		"GATEHOUSE_WEBHOOK_TIMEOUT":      func(c *Config) time.Duration { return c.WebhookTimeout },
		"GATEHOUSE_WEBHOOK_RETENTION":    func(c *Config) time.Duration { return c.WebhookRetention },
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, nil, map[string]string{tt.env: tt.value}, "")
			if tt.wantErr != "" {
				ps := problemsOf(t, err)
				if len(ps) != 1 || ps[0].Key != tt.env || !strings.Contains(ps[0].Message, tt.wantErr) {
					t.Fatalf("want one problem for %s containing %q, got:\n%v", tt.env, tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := field[tt.env](c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDerivedDefaults(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantPublic   string
		wantAudience string
		wantDB       string
	}{
		{name: "defaults", wantPublic: "http://localhost:8080", wantAudience: "http://localhost:8080",
			wantDB: "sqlite:./gatehouse-data/gatehouse.db"},
		{name: "public url from addr port", env: map[string]string{"GATEHOUSE_ADDR": "0.0.0.0:9000"},
			wantPublic: "http://localhost:9000", wantAudience: "http://localhost:9000", wantDB: "sqlite:./gatehouse-data/gatehouse.db"},
		{name: "explicit public url trims slash and sets audience", env: map[string]string{"GATEHOUSE_PUBLIC_URL": "https://auth.example.com/base/"},
			wantPublic: "https://auth.example.com/base", wantAudience: "https://auth.example.com/base", wantDB: "sqlite:./gatehouse-data/gatehouse.db"},
		{name: "explicit audience", env: map[string]string{"GATEHOUSE_AUDIENCE": "api://gatehouse"},
			wantPublic: "http://localhost:8080", wantAudience: "api://gatehouse", wantDB: "sqlite:./gatehouse-data/gatehouse.db"},
		{name: "database in data dir", env: map[string]string{"GATEHOUSE_DATA_DIR": "/var/lib/gatehouse/"},
			wantPublic: "http://localhost:8080", wantAudience: "http://localhost:8080", wantDB: "sqlite:/var/lib/gatehouse/gatehouse.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, nil, tt.env, "")
			if c.PublicURL != tt.wantPublic || c.Audience != tt.wantAudience || c.DatabaseURL != tt.wantDB {
				t.Errorf("got public_url %q audience %q database_url %q, want %q %q %q",
					c.PublicURL, c.Audience, c.DatabaseURL, tt.wantPublic, tt.wantAudience, tt.wantDB)
			}
		})
	}

	t.Run("bad addr reports only addr", func(t *testing.T) {
		_, err := load(t, nil, map[string]string{"GATEHOUSE_ADDR": "localhost"}, "")
		if got := keysOf(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"GATEHOUSE_ADDR"}) {
			t.Errorf("problem keys = %q, want only GATEHOUSE_ADDR", got)
		}
	})
}

func TestInvalidValues(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		value   string
		wantErr string
	}{
		{name: "addr without port", env: "GATEHOUSE_ADDR", value: "localhost", wantErr: "not host:port"},
		{name: "addr port too big", env: "GATEHOUSE_ADDR", value: "127.0.0.1:70000", wantErr: "port must be a number"},
		{name: "addr named port", env: "GATEHOUSE_ADDR", value: "127.0.0.1:http", wantErr: "port must be a number"},
		{name: "public url relative", env: "GATEHOUSE_PUBLIC_URL", value: "/auth", wantErr: "absolute http or https"},
		{name: "public url ftp", env: "GATEHOUSE_PUBLIC_URL", value: "ftp://x.example", wantErr: "absolute http or https"},
		{name: "public url query", env: "GATEHOUSE_PUBLIC_URL", value: "https://x.example/?a=b", wantErr: "query"},
		{name: "public url fragment", env: "GATEHOUSE_PUBLIC_URL", value: "https://x.example/#top", wantErr: "fragment"},
		{name: "public url no host", env: "GATEHOUSE_PUBLIC_URL", value: "https:///path", wantErr: "no host"},
		{name: "database mysql", env: "GATEHOUSE_DATABASE_URL", value: "mysql://x", wantErr: "sqlite:PATH or a postgres"},
		{name: "database sqlite without path", env: "GATEHOUSE_DATABASE_URL", value: "sqlite:", wantErr: "needs a path"},
		{name: "redis http", env: "GATEHOUSE_REDIS_URL", value: "http://redis:6379", wantErr: "redis:// or rediss://"},
		{name: "secret short", env: "GATEHOUSE_SECRET", value: "short", wantErr: "at least 32 bytes"},
		{name: "signing alg wrong case", env: "GATEHOUSE_SIGNING_ALG", value: "eddsa", wantErr: "must be one of"},
		{name: "id token alg HS256", env: "GATEHOUSE_ID_TOKEN_ALG", value: "HS256", wantErr: `must be one of RS256, ES256, EdDSA, got "HS256"`},
		{name: "id token alg none", env: "GATEHOUSE_ID_TOKEN_ALG", value: "none", wantErr: "must be one of RS256, ES256, EdDSA"},
		{name: "id token alg wrong case", env: "GATEHOUSE_ID_TOKEN_ALG", value: "rs256", wantErr: "must be one of"},
		{name: "smtp http", env: "GATEHOUSE_SMTP_URL", value: "http://mail", wantErr: "smtp:// or smtps://"},
		{name: "mail from", env: "GATEHOUSE_MAIL_FROM", value: "not an address", wantErr: "not a mail address"},
		{name: "cors with path", env: "GATEHOUSE_CORS_ORIGINS", value: "https://a.example,https://b.example/app", wantErr: `"https://b.example/app" is not an origin`},
		{name: "cors wildcard", env: "GATEHOUSE_CORS_ORIGINS", value: "*", wantErr: "not an origin"},
		{name: "trusted proxy junk", env: "GATEHOUSE_TRUSTED_PROXIES", value: "10.0.0.0/8,proxy.local", wantErr: `"proxy.local" is not a CIDR`},
		{name: "bool junk", env: "GATEHOUSE_REQUIRE_VERIFIED_EMAIL", value: "yes", wantErr: `"yes" is not a boolean`},
		{name: "lockout zero", env: "GATEHOUSE_LOCKOUT_THRESHOLD", value: "0", wantErr: "must be at least 1"},
		{name: "totp skew 3", env: "GATEHOUSE_TOTP_SKEW", value: "3", wantErr: "between 0 and 2"},
		{name: "recovery codes 4", env: "GATEHOUSE_RECOVERY_CODE_COUNT", value: "4", wantErr: "between 5 and 20"},
		{name: "totp issuer colon", env: "GATEHOUSE_TOTP_ISSUER", value: "Acme:Corp", wantErr: "without a colon"},
		{name: "mfa attempts zero", env: "GATEHOUSE_MFA_MAX_ATTEMPTS", value: "0", wantErr: "must be at least 1"},
		{name: "lockout not int", env: "GATEHOUSE_LOCKOUT_THRESHOLD", value: "ten", wantErr: `"ten" is not an integer`},
		{name: "log format", env: "GATEHOUSE_LOG_FORMAT", value: "xml", wantErr: "must be one of text, json"},
		{name: "log level", env: "GATEHOUSE_LOG_LEVEL", value: "trace", wantErr: "must be one of debug, info, warn, error"},
		{name: "hash concurrency zero", env: "GATEHOUSE_HASH_CONCURRENCY", value: "0", wantErr: "must be at least 1"},
		{name: "brand colour name", env: "GATEHOUSE_BRAND_COLOR", value: "red", wantErr: "#rrggbb"},
		{name: "brand colour short", env: "GATEHOUSE_BRAND_COLOR", value: "#abc", wantErr: "#rrggbb"},
		{name: "brand colour css injection", env: "GATEHOUSE_BRAND_COLOR", value: "#000;}", wantErr: "#rrggbb"},
		{name: "logo http", env: "GATEHOUSE_LOGO_URL", value: "http://cdn.example/logo.svg", wantErr: "https URL or a path"},
		{name: "logo javascript", env: "GATEHOUSE_LOGO_URL", value: "javascript:alert(1)", wantErr: "https URL or a path"},
		{name: "logo scheme-relative", env: "GATEHOUSE_LOGO_URL", value: "//cdn.example/logo.svg", wantErr: "https URL or a path"},
		{name: "logo relative without slash", env: "GATEHOUSE_LOGO_URL", value: "logo.svg", wantErr: "https URL or a path"},
		{name: "logo quote", env: "GATEHOUSE_LOGO_URL", value: "/logo.svg\"onerror", wantErr: "without spaces or quotes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, nil, map[string]string{tt.env: tt.value}, "")
			if c != nil {
				t.Error("Load returned a Config along with an error")
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 || ps[0].Key != tt.env || !strings.Contains(ps[0].Message, tt.wantErr) {
				t.Errorf("want one problem for %s containing %q, got:\n%v", tt.env, tt.wantErr, err)
			}
		})
	}
}

func TestValidValues(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(*Config) bool
	}{
		{name: "postgres url", env: map[string]string{"GATEHOUSE_DATABASE_URL": "postgres://u:p@db:5432/gh?sslmode=disable"},
			check: func(c *Config) bool { return c.DatabaseURL == "postgres://u:p@db:5432/gh?sslmode=disable" }},
		{name: "postgresql url", env: map[string]string{"GATEHOUSE_DATABASE_URL": "postgresql://db/gh"},
			check: func(c *Config) bool { return c.DatabaseURL == "postgresql://db/gh" }},
		{name: "redis tls", env: map[string]string{"GATEHOUSE_REDIS_URL": "rediss://:pw@cache:6380/0"},
			check: func(c *Config) bool { return c.RedisURL == "rediss://:pw@cache:6380/0" }},
		{name: "https public url", env: map[string]string{"GATEHOUSE_PUBLIC_URL": "https://auth.example.com"},
			check: func(c *Config) bool { return c.IsHTTPS() }},
		{name: "log format json", env: map[string]string{"GATEHOUSE_LOG_FORMAT": "json"},
			check: func(c *Config) bool { return c.LogFormat == "json" }},
		{name: "secret 32 bytes", env: map[string]string{"GATEHOUSE_SECRET": strings.Repeat("x", 32)},
			check: func(c *Config) bool { return len(c.Secret) == 32 }},
		{name: "brand colour lower-cased", env: map[string]string{"GATEHOUSE_BRAND_COLOR": "#0A7F5C"},
			check: func(c *Config) bool { return c.BrandColor == "#0a7f5c" }},
		{name: "logo https", env: map[string]string{"GATEHOUSE_LOGO_URL": "https://cdn.example.com/acme.svg"},
			check: func(c *Config) bool { return c.LogoURL == "https://cdn.example.com/acme.svg" }},
		{name: "logo path", env: map[string]string{"GATEHOUSE_LOGO_URL": "/static/logo.png"},
			check: func(c *Config) bool { return c.LogoURL == "/static/logo.png" }},
		{name: "lockout threshold", env: map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "3"},
			check: func(c *Config) bool { return c.LockoutThreshold == 3 }},
		{name: "bool forms", env: map[string]string{"GATEHOUSE_REQUIRE_VERIFIED_EMAIL": "T", "GATEHOUSE_PASSWORD_GRANT": "0"},
			check: func(c *Config) bool { return c.RequireVerifiedEmail && !c.PasswordGrant }},
		{name: "id token alg ES256 with EdDSA access tokens", env: map[string]string{"GATEHOUSE_ID_TOKEN_ALG": "ES256", "GATEHOUSE_SIGNING_ALG": "EdDSA"},
			check: func(c *Config) bool { return c.IDTokenAlg == "ES256" && c.SigningAlg == "EdDSA" }},
		{name: "id token alg EdDSA", env: map[string]string{"GATEHOUSE_ID_TOKEN_ALG": "EdDSA"},
			check: func(c *Config) bool { return c.IDTokenAlg == "EdDSA" }},
		{name: "unknown gatehouse env ignored", env: map[string]string{"GATEHOUSE_NOPE": "x", "GATEHOUSE_TEST_DB": "y"},
			check: func(c *Config) bool { return c.Addr == "127.0.0.1:8080" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := mustLoad(t, nil, tt.env, ""); !tt.check(c) {
				t.Errorf("unexpected config: %+v", c.Redacted())
			}
		})
	}
}

func TestLists(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		yaml        string
		wantOrigins []string
		wantProxies []netip.Prefix
	}{
		{name: "none"},
		{name: "comma strings from env",
			env: map[string]string{
				"GATEHOUSE_CORS_ORIGINS":    "https://app.example.com, http://localhost:3000,",
				"GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7, ::1",
			},
			wantOrigins: []string{"https://app.example.com", "http://localhost:3000"},
			wantProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}},
		{name: "yaml lists",
			yaml:        "cors_origins:\n  - https://App.Example.com\n  - capacitor://localhost\ntrusted_proxies: [172.16.0.0/12, 2001:db8::/32]\n",
			wantOrigins: []string{"https://app.example.com", "capacitor://localhost"},
			wantProxies: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("2001:db8::/32")}},
		{name: "yaml comma string",
			yaml:        "cors_origins: https://a.example, https://b.example:8443\ntrusted_proxies: 10.1.2.3/8\n",
			wantOrigins: []string{"https://a.example", "https://b.example:8443"},
			wantProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{name: "env string beats yaml list",
			env:         map[string]string{"GATEHOUSE_CORS_ORIGINS": "https://env.example"},
			yaml:        "cors_origins: [https://yaml.example]\n",
			wantOrigins: []string{"https://env.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, nil, tt.env, tt.yaml)
			if !reflect.DeepEqual(c.CORSOrigins, tt.wantOrigins) {
				t.Errorf("CORSOrigins = %q, want %q", c.CORSOrigins, tt.wantOrigins)
			}
			if !reflect.DeepEqual(c.TrustedProxies, tt.wantProxies) {
				t.Errorf("TrustedProxies = %v, want %v", c.TrustedProxies, tt.wantProxies)
			}
		})
	}
}

func TestYAMLValueTypes(t *testing.T) {
	c := mustLoad(t, nil, nil, `
addr: "0.0.0.0:8443"
public_url: https://auth.example.com/
lockout_threshold: 3
password_grant: false
require_verified_email: true
access_token_ttl: 15m
refresh_reuse_grace: 0
hash_concurrency: 2
`)
	if c.Addr != "0.0.0.0:8443" || c.PublicURL != "https://auth.example.com" || c.LockoutThreshold != 3 ||
		c.PasswordGrant || !c.RequireVerifiedEmail || c.AccessTokenTTL != 15*time.Minute ||
		c.RefreshReuseGrace != 0 || c.HashConcurrency != 2 {
		t.Errorf("unexpected config: %+v", c.Redacted())
	}

	tests := []struct {
		name     string
		yaml     string
		wantKeys []string
	}{
		{name: "mapping for simple setting", yaml: "addr:\n  host: x\n", wantKeys: []string{"addr"}},
		{name: "list for non-list setting", yaml: "addr: [a, b]\n", wantKeys: []string{"addr"}},
		{name: "float for int", yaml: "lockout_threshold: 2.5\n", wantKeys: []string{"lockout_threshold"}},
		{name: "yaml yes is not a boolean", yaml: "password_grant: yes\n", wantKeys: []string{"password_grant"}},
		{name: "not a mapping", yaml: "- a\n- b\n", wantKeys: []string{""}},
		{name: "syntax error", yaml: "addr: [\n", wantKeys: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, nil, nil, tt.yaml)
			if got := keysOf(problemsOf(t, err)); !reflect.DeepEqual(got, tt.wantKeys) {
				t.Errorf("problem keys = %q, want %q\n%v", got, tt.wantKeys, err)
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantKey string
	}{
		{name: "missing file from flag", args: []string{"--config", missing}, wantKey: "--config"},
		{name: "missing file from env", env: map[string]string{ConfigEnv: missing}, wantKey: ConfigEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.args, tt.env, "")
			ps := problemsOf(t, err)
			if len(ps) != 1 || ps[0].Key != tt.wantKey || !strings.Contains(ps[0].Message, "nope.yaml") {
				t.Errorf("want one problem for %s naming the file, got:\n%v", tt.wantKey, err)
			}
		})
	}

	t.Run("empty file", func(t *testing.T) {
		path := writeYAML(t, "# nothing here\n")
		c := mustLoad(t, []string{"--config=" + path}, nil, "")
		if c.ConfigFile != path || c.Addr != "127.0.0.1:8080" {
			t.Errorf("ConfigFile %q Addr %q", c.ConfigFile, c.Addr)
		}
	})

	t.Run("missing file still reports other problems", func(t *testing.T) {
		_, err := load(t, []string{"--config", missing, "--log-level=loud"}, nil, "")
		if got := keysOf(problemsOf(t, err)); !reflect.DeepEqual(got, []string{"--config", "--log-level"}) {
			t.Errorf("problem keys = %q", got)
		}
	})
}

func TestLoadWithoutFlagSet(t *testing.T) {
	c, err := Load(nil, func(k string) string {
		if k == "GATEHOUSE_ADDR" {
			return ":9090"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "http://localhost:9090" {
		t.Errorf("PublicURL = %q", c.PublicURL)
	}
}
