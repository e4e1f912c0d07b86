package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// effective returns c.Effective() by setting name.
func effective(t *testing.T, c *Config) map[string]EffectiveSetting {
	t.Helper()
	out := map[string]EffectiveSetting{}
	for _, e := range c.Effective() {
		out[e.Name] = e
	}
	return out
}

// Load records where every value came from, and Effective pairs it with
// the value in effect.
func TestSources(t *testing.T) {
	const yamlText = "signing_alg: RS256\naccess_token_ttl: 1h\nlog_level: warn\ncors_origins: [https://a.example, https://b.example]\nroles:\n  user: [read]\n  admin: [read, admin]\n"
	c := mustLoad(t, []string{"--log-level", "debug"},
		map[string]string{"GATEHOUSE_SIGNING_ALG": "ES256", "GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7"}, yamlText)
	eff := effective(t, c)
	tests := []struct {
		name, value, source string
	}{
		{"log_level", "debug", SourceFlag},                                   // flag beats the file
		{"signing_alg", "ES256", SourceEnv},                                  // env beats the file
		{"trusted_proxies", "10.0.0.0/8, 192.0.2.7", SourceEnv},              // a list from env
		{"access_token_ttl", "1h", SourceYAML},                               // from the file
		{"cors_origins", "https://a.example, https://b.example", SourceYAML}, // a YAML list
		{"refresh_token_ttl", "720h", SourceDefault},                         // a built-in default
		{"public_url", "http://localhost:8080", SourceDefault},               // a derived default
		{"redis_url", "", SourceDefault},                                     // unset, no default
		{"admin_allowed_cidrs", "", SourceDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := eff[tt.name]
			if !ok {
				t.Fatalf("Effective() lacks %s", tt.name)
			}
			if e.Value != tt.value || e.Source != tt.source {
				t.Errorf("%s = %q from %q, want %q from %q", tt.name, e.Value, e.Source, tt.value, tt.source)
			}
			if c.Sources[tt.name] != tt.source {
				t.Errorf("Sources[%s] = %q, want %q", tt.name, c.Sources[tt.name], tt.source)
			}
		})
	}
	// Every setting is listed once, in the order of Settings, with a source.
	all := c.Effective()
	if len(all) != len(Settings()) {
		t.Fatalf("Effective() has %d settings, Settings() %d", len(all), len(Settings()))
	}
	for i, s := range Settings() {
		if all[i].Setting != s {
			t.Errorf("Effective()[%d] = %+v, want %+v", i, all[i].Setting, s)
		}
		if all[i].Source == "" {
			t.Errorf("%s has no source", s.Name)
		}
	}
	// Sections: from the file when it has them.
	for name, want := range map[string]string{"roles": SourceYAML, "scopes": SourceDefault, "providers": SourceDefault} {
		if got := c.Sources[name]; got != want {
			t.Errorf("Sources[%s] = %q, want %q", name, got, want)
		}
	}
	for _, name := range SectionNames() {
		if c.Sources[name] == "" {
			t.Errorf("section %s has no source", name)
		}
	}
	if got := c.Sources[ConfigFlag]; got != SourceEnv {
		t.Errorf("Sources[config] = %q, want env (the file was named by %s)", got, ConfigEnv)
	}
	// The redacted copy keeps them, in maps of its own.
	r := c.Redacted()
	if !reflect.DeepEqual(r.Effective(), c.Effective()) || !reflect.DeepEqual(r.Sources, c.Sources) {
		t.Errorf("Redacted() lost the sources or values")
	}
	r.Sources["log_level"] = "changed"
	if c.Sources["log_level"] != SourceFlag {
		t.Errorf("Redacted() shares Sources with the original")
	}

	t.Run("ConfigFileFromFlag", func(t *testing.T) {
		c := mustLoad(t, []string{"--config", writeYAML(t, "log_level: warn\n")}, nil, "")
		if c.Sources[ConfigFlag] != SourceFlag || c.Sources["log_level"] != SourceYAML {
			t.Errorf("Sources = %v, want config from flag and log_level from yaml", c.Sources)
		}
	})
	t.Run("NoFile", func(t *testing.T) {
		c := Default()
		if _, ok := c.Sources[ConfigFlag]; ok {
			t.Errorf("Sources names a config file that was not given: %q", c.Sources[ConfigFlag])
		}
		for name, src := range c.Sources {
			if src != SourceDefault {
				t.Errorf("Default(): Sources[%s] = %q, want default", name, src)
			}
		}
		if eff := effective(t, c); eff["signing_alg"].Value != "EdDSA" || eff["addr"].Value != "127.0.0.1:8080" {
			t.Errorf("Default() values: signing_alg %q, addr %q", eff["signing_alg"].Value, eff["addr"].Value)
		}
	})
}

// Effective never holds a secret in the clear, whichever source gave it.
func TestEffectiveRedactsSecrets(t *testing.T) {
	const (
		secret = "0123456789abcdef0123456789abcdef-SECRET"
		dbPass = "db-pass-XYZ"
		smtpPW = "smtp-pass-XYZ"
		redis  = "redis-pass-XYZ"
	)
	c := mustLoad(t, []string{"--smtp-url", "smtp://mailer:" + smtpPW + "@mail.example.com:587"},
		map[string]string{"GATEHOUSE_SECRET": secret, "GATEHOUSE_DATABASE_URL": "postgres://gh:" + dbPass + "@db.example.com/gh?sslmode=require&password=" + dbPass},
		"redis_url: rediss://:"+redis+"@cache.example.com:6380/0\n")
	eff := effective(t, c)
	for _, e := range c.Effective() {
		for _, s := range []string{secret, dbPass, smtpPW, redis} {
			if strings.Contains(e.Value, s) {
				t.Errorf("%s = %q shows a secret", e.Name, e.Value)
			}
		}
	}
	for name, want := range map[string]string{
		"secret":       "REDACTED",
		"smtp_url":     "smtp://mailer:REDACTED@mail.example.com:587",
		"redis_url":    "rediss://:REDACTED@cache.example.com:6380/0",
		"database_url": "postgres://gh:REDACTED@db.example.com/gh?password=REDACTED&sslmode=require",
	} {
		if got := eff[name].Value; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if eff["secret"].Source != SourceEnv || eff["smtp_url"].Source != SourceFlag || eff["redis_url"].Source != SourceYAML {
		t.Errorf("sources: secret %q, smtp_url %q, redis_url %q", eff["secret"].Source, eff["smtp_url"].Source, eff["redis_url"].Source)
	}
	// The values themselves are untouched.
	if c.Secret != secret || !strings.Contains(c.SMTPURL, smtpPW) {
		t.Errorf("Load changed the secret values themselves")
	}
}

func TestAdminAllowedCIDRs(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		yaml string
		want []netip.Prefix
	}{
		{name: "none"},
		{name: "env", env: map[string]string{"GATEHOUSE_ADMIN_ALLOWED_CIDRS": "10.0.0.0/8, 192.0.2.7,2001:db8::/32"},
			want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}},
		{name: "yaml list", yaml: "admin_allowed_cidrs: [172.16.5.0/24, \"::1\"]\n",
			want: []netip.Prefix{netip.MustParsePrefix("172.16.5.0/24"), netip.MustParsePrefix("::1/128")}},
		{name: "host bits masked", yaml: "admin_allowed_cidrs: 10.1.2.3/16\n",
			want: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, nil, tt.env, tt.yaml)
			if !reflect.DeepEqual(c.AdminAllowedCIDRs, tt.want) {
				t.Errorf("AdminAllowedCIDRs = %v, want %v", c.AdminAllowedCIDRs, tt.want)
			}
		})
	}

	// Every bad entry is named, under the key of the source that gave it.
	_, err := load(t, nil, map[string]string{"GATEHOUSE_ADMIN_ALLOWED_CIDRS": "10.0.0.0/8, 10.0.0.0/33, office, 192.0.2.300"}, "")
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Key != "GATEHOUSE_ADMIN_ALLOWED_CIDRS" {
		t.Fatalf("problems %v, want one for GATEHOUSE_ADMIN_ALLOWED_CIDRS", ps)
	}
	for _, bad := range []string{`"10.0.0.0/33" is not a CIDR`, `"office" is not a CIDR`, `"192.0.2.300" is not a CIDR`} {
		if !strings.Contains(ps[0].Message, bad) {
			t.Errorf("message %q does not say %s", ps[0].Message, bad)
		}
	}
	if strings.Contains(ps[0].Message, `"10.0.0.0/8"`) {
		t.Errorf("message %q blames the good entry", ps[0].Message)
	}
	_, err = load(t, nil, nil, "admin_allowed_cidrs: [10.0.0.0/8, nope]\n")
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Key != "admin_allowed_cidrs" || ps[0].File == "" {
		t.Errorf("problems %v, want one for admin_allowed_cidrs in the file", ps)
	}
}
