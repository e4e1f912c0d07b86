package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSections(t *testing.T) {
	c := mustLoad(t, nil, nil, `
scopes:
  read: Read your own data
  write: Change your own data
  billing:read: See invoices
roles:
  member: [read]
  accountant: [read, "billing:read"]
  nobody:
default_roles: [member]
password:
  min_length: 12
argon2:
  memory: 65536
  parallelism: 4
rate_limits:
  login_per_ip: 50
  window: 5m
registration:
  reveal_existing: true
`)
	wantRoles := map[string][]string{"member": {"read"}, "accountant": {"read", "billing:read"}, "nobody": {}}
	if !reflect.DeepEqual(c.Roles, wantRoles) {
		t.Errorf("Roles = %v, want %v", c.Roles, wantRoles)
	}
	if len(c.Scopes) != 3 || c.Scopes["billing:read"] != "See invoices" {
		t.Errorf("Scopes = %v", c.Scopes)
	}
	if !reflect.DeepEqual(c.DefaultRoles, []string{"member"}) {
		t.Errorf("DefaultRoles = %v", c.DefaultRoles)
	}
	if c.Password.MinLength != 12 {
		t.Errorf("Password = %+v", c.Password)
	}
	if want := (Argon2Config{Memory: 65536, Iterations: 2, Parallelism: 4}); c.Argon2 != want {
		t.Errorf("Argon2 = %+v, want %+v", c.Argon2, want)
	}
	if want := (RateLimitConfig{LoginPerAccountIP: 5, LoginPerIP: 50, Window: 5 * time.Minute}); c.RateLimits != want {
		t.Errorf("RateLimits = %+v, want %+v", c.RateLimits, want)
	}
	if !c.Registration.RevealExisting {
		t.Error("Registration.RevealExisting = false")
	}
}

func TestSectionProblems(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantKeys []string
		wantMsg  string
	}{
		{name: "role with unknown scope", yaml: "roles:\n  user: [read, write]\n  auditor: [read, audit]\n",
			wantKeys: []string{"roles.auditor"}, wantMsg: `scope "audit" is not defined in scopes`},
		{name: "default roles use removed scope", yaml: "scopes:\n  read: r\n  write: w\n",
			wantKeys: []string{"roles.admin"}, wantMsg: `scope "admin" is not defined in scopes`},
		{name: "default role unknown", yaml: "default_roles: [user, guest]\n",
			wantKeys: []string{"default_roles"}, wantMsg: `role "guest" is not defined in roles`},
		{name: "roles replace defaults", yaml: "roles:\n  member: [read]\n",
			wantKeys: []string{"default_roles"}, wantMsg: `role "user" is not defined in roles`},
		{name: "bad scope name", yaml: "scopes:\n  Read: r\n",
			wantKeys: []string{"scopes.Read"}, wantMsg: "invalid scope name"},
		{name: "role scopes not a list", yaml: "roles:\n  user: read\n",
			wantKeys: []string{"roles.user"}, wantMsg: "must be a list of scopes"},
		{name: "password min length too big", yaml: "password:\n  min_length: 1000\n",
			wantKeys: []string{"password.min_length"}, wantMsg: "between 1 and 256"},
		{name: "argon2 bounds", yaml: "argon2:\n  memory: 4\n  iterations: 0\n  parallelism: 256\n",
			wantKeys: []string{"argon2.memory", "argon2.iterations", "argon2.parallelism"}},
		{name: "rate limits", yaml: "rate_limits:\n  login_per_account_ip: 0\n  window: 0s\n",
			wantKeys: []string{"rate_limits.login_per_account_ip", "rate_limits.window"}},
		{name: "registration bool", yaml: "registration:\n  reveal_existing: maybe\n",
			wantKeys: []string{"registration.reveal_existing"}, wantMsg: "not a boolean"},
		{name: "section not a mapping", yaml: "argon2: 5\n",
			wantKeys: []string{"argon2"}, wantMsg: "must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, nil, nil, tt.yaml)
			ps := problemsOf(t, err)
			if got := keysOf(ps); !reflect.DeepEqual(got, tt.wantKeys) {
				t.Fatalf("problem keys = %q, want %q\n%v", got, tt.wantKeys, err)
			}
			if tt.wantMsg != "" && !strings.Contains(ps[0].Message, tt.wantMsg) {
				t.Errorf("message %q lacks %q", ps[0].Message, tt.wantMsg)
			}
		})
	}
}

func TestProviders(t *testing.T) {
	const yamlText = `
providers:
  - id: corp-sso
    type: oidc
    name: Corp SSO
    issuer: https://sso.example.com
    client_id: gatehouse
    client_secret: from-yaml
    scopes: [openid, email]
    trusted_audiences: [api.example.com, "https://other.example.com"]
  - id: gh
    type: github
    client_id: abc
    scopes: "read:user user:email"
`
	tests := []struct {
		name        string
		env         map[string]string
		wantSecrets []string
	}{
		{name: "secret from yaml", wantSecrets: []string{"from-yaml", ""}},
		{name: "env secret wins", env: map[string]string{
			"GATEHOUSE_PROVIDER_CORP_SSO_CLIENT_SECRET": "from-env",
			"GATEHOUSE_PROVIDER_GH_CLIENT_SECRET":       "gh-env",
		}, wantSecrets: []string{"from-env", "gh-env"}},
		{name: "empty env secret is unset", env: map[string]string{"GATEHOUSE_PROVIDER_CORP_SSO_CLIENT_SECRET": ""},
			wantSecrets: []string{"from-yaml", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, nil, tt.env, yamlText)
			if len(c.Providers) != 2 {
				t.Fatalf("got %d providers", len(c.Providers))
			}
			for i, want := range tt.wantSecrets {
				if got := c.Providers[i].ClientSecret; got != want {
					t.Errorf("providers[%d].ClientSecret = %q, want %q", i, got, want)
				}
			}
			want0 := Provider{ID: "corp-sso", Type: "oidc", Name: "Corp SSO", Issuer: "https://sso.example.com",
				ClientID: "gatehouse", ClientSecret: c.Providers[0].ClientSecret, Scopes: []string{"openid", "email"},
				TrustedAudiences: []string{"api.example.com", "https://other.example.com"}}
			if !reflect.DeepEqual(c.Providers[0], want0) {
				t.Errorf("providers[0] = %+v, want %+v", c.Providers[0], want0)
			}
			if !reflect.DeepEqual(c.Providers[1].Scopes, []string{"read:user", "user:email"}) {
				t.Errorf("providers[1].Scopes = %q", c.Providers[1].Scopes)
			}
			if c.Providers[1].TrustedAudiences != nil {
				t.Errorf("providers[1].TrustedAudiences = %q, want none", c.Providers[1].TrustedAudiences)
			}
		})
	}

	problems := []struct {
		name     string
		yaml     string
		wantKeys []string
	}{
		{name: "missing fields", yaml: "providers:\n  - name: x\n",
			wantKeys: []string{"providers[0].id", "providers[0].type", "providers[0].client_id"}},
		{name: "bad id and type", yaml: "providers:\n  - id: Corp SSO\n    type: saml\n    client_id: x\n",
			wantKeys: []string{"providers[0].id", "providers[0].type"}},
		{name: "duplicate id", yaml: "providers:\n  - {id: gh, type: github, client_id: a}\n  - {id: gh, type: github, client_id: b}\n",
			wantKeys: []string{"providers[1].id"}},
		{name: "not a list", yaml: "providers:\n  gh: {}\n", wantKeys: []string{"providers"}},
		{name: "trusted audiences for github", yaml: "providers:\n  - {id: gh, type: github, client_id: a, trusted_audiences: [x]}\n",
			wantKeys: []string{"providers[0].trusted_audiences"}},
		{name: "empty trusted audience", yaml: "providers:\n  - {id: c, type: oidc, issuer: https://i.example, client_id: a, trusted_audiences: [x, \"\"]}\n",
			wantKeys: []string{"providers[0].trusted_audiences[1]"}},
		{name: "trusted audiences not a list", yaml: "providers:\n  - {id: c, type: oidc, issuer: https://i.example, client_id: a, trusted_audiences: {x: y}}\n",
			wantKeys: []string{"providers[0].trusted_audiences"}},
	}
	for _, tt := range problems {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, nil, nil, tt.yaml)
			if got := keysOf(problemsOf(t, err)); !reflect.DeepEqual(got, tt.wantKeys) {
				t.Errorf("problem keys = %q, want %q\n%v", got, tt.wantKeys, err)
			}
		})
	}
}

func TestProviderSecretEnv(t *testing.T) {
	tests := []struct{ id, want string }{
		{"google", "GATEHOUSE_PROVIDER_GOOGLE_CLIENT_SECRET"},
		{"corp-sso", "GATEHOUSE_PROVIDER_CORP_SSO_CLIENT_SECRET"},
		{"a_b", "GATEHOUSE_PROVIDER_A_B_CLIENT_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := ProviderSecretEnv(tt.id); got != tt.want {
				t.Errorf("ProviderSecretEnv(%q) = %q, want %q", tt.id, got, tt.want)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	secret := strings.Repeat("s3cr3t", 6)
	c := mustLoad(t, nil, map[string]string{
		"GATEHOUSE_SECRET":       secret,
		"GATEHOUSE_DATABASE_URL": "postgres://gate:dbpass@db:5432/gatehouse?sslmode=require",
		"GATEHOUSE_REDIS_URL":    "redis://:redispass@cache:6379/0",
		"GATEHOUSE_SMTP_URL":     "smtps://mailer:smtppass@mail.example.com:465",
	}, "providers:\n  - {id: gh, type: github, client_id: abc, client_secret: ghsecret}\n")

	r := c.Redacted()
	tests := []struct {
		name, got, want string
	}{
		{"secret", r.Secret, "REDACTED"},
		{"database url", r.DatabaseURL, "postgres://gate:REDACTED@db:5432/gatehouse?sslmode=require"},
		{"redis url", r.RedisURL, "redis://:REDACTED@cache:6379/0"},
		{"smtp url", r.SMTPURL, "smtps://mailer:REDACTED@mail.example.com:465"},
		{"provider secret", r.Providers[0].ClientSecret, "REDACTED"},
		{"provider id kept", r.Providers[0].ID, "gh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}

	t.Run("nothing secret left", func(t *testing.T) {
		dump := strings.ToLower(strings.Join([]string{r.Secret, r.DatabaseURL, r.RedisURL, r.SMTPURL, r.Providers[0].ClientSecret}, " "))
		for _, s := range []string{"s3cr3t", "dbpass", "redispass", "smtppass", "ghsecret"} {
			if strings.Contains(dump, s) {
				t.Errorf("redacted config still contains %q", s)
			}
		}
	})
	t.Run("original untouched", func(t *testing.T) {
		if c.Secret != secret || c.Providers[0].ClientSecret != "ghsecret" || !strings.Contains(c.DatabaseURL, "dbpass") {
			t.Error("Redacted modified the original")
		}
		r.Roles["user"][0] = "changed"
		if c.Roles["user"][0] != "read" {
			t.Error("Redacted copy shares role slices with the original")
		}
	})

	urls := []struct{ name, in, want string }{
		{"empty stays empty", "", ""},
		{"sqlite untouched", "sqlite:./data/gatehouse.db", "sqlite:./data/gatehouse.db"},
		{"no password untouched", "postgres://db/gatehouse", "postgres://db/gatehouse"},
		{"password query param", "postgres://db/gh?password=qp&sslmode=disable", "postgres://db/gh?password=REDACTED&sslmode=disable"},
	}
	for _, tt := range urls {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactURL(tt.in); got != tt.want {
				t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
