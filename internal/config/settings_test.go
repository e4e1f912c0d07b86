package config

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

func TestSettingsSpellings(t *testing.T) {
	tests := []struct {
		name, flag, env string
	}{
		{"public_url", "public-url", "GATEHOUSE_PUBLIC_URL"},
		{"access_token_ttl", "access-token-ttl", "GATEHOUSE_ACCESS_TOKEN_TTL"},
		{"hash_max_wait", "hash-max-wait", "GATEHOUSE_HASH_MAX_WAIT"},
		{"id_token_alg", "id-token-alg", "GATEHOUSE_ID_TOKEN_ALG"},
		{"id_token_ttl", "id-token-ttl", "GATEHOUSE_ID_TOKEN_TTL"},
		{"auth_code_ttl", "auth-code-ttl", "GATEHOUSE_AUTH_CODE_TTL"},
		{"consent_ttl", "consent-ttl", "GATEHOUSE_CONSENT_TTL"},
		{"webhook_timeout", "webhook-timeout", "GATEHOUSE_WEBHOOK_TIMEOUT"},
		{"webhook_max_attempts", "webhook-max-attempts", "GATEHOUSE_WEBHOOK_MAX_ATTEMPTS"},
		{"webhook_retention", "webhook-retention", "GATEHOUSE_WEBHOOK_RETENTION"},
	}
	byName := map[string]Setting{}
	for _, s := range Settings() {
		if _, dup := byName[s.Name]; dup {
			t.Errorf("setting %q listed twice", s.Name)
		}
		byName[s.Name] = s
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := byName[tt.name]
			if !ok {
				t.Fatalf("no setting %q", tt.name)
			}
			if s.Flag != tt.flag || s.Env != tt.env {
				t.Errorf("got flag %q env %q, want %q %q", s.Flag, s.Env, tt.flag, tt.env)
			}
		})
	}
	if len(byName) != 50 {
		t.Errorf("got %d settings, want 50", len(byName))
	}
}

func TestAddFlags(t *testing.T) {
	fs := flag.NewFlagSet("gatehouse", flag.ContinueOnError)
	AddFlags(fs)
	settings := Settings()
	for _, s := range settings {
		t.Run(s.Name, func(t *testing.T) {
			f := fs.Lookup(s.Flag)
			if f == nil {
				t.Fatalf("flag --%s not registered", s.Flag)
			}
			if !strings.Contains(f.Usage, s.Env) {
				t.Errorf("usage %q does not name %s", f.Usage, s.Env)
			}
			def := s.Default
			if def == "" {
				def = "none"
			}
			if !strings.Contains(f.Usage, "default "+def) {
				t.Errorf("usage %q does not give default %q", f.Usage, def)
			}
		})
	}
	if fs.Lookup(ConfigFlag) == nil {
		t.Error("--config not registered")
	}
}

func TestUsage(t *testing.T) {
	var buf bytes.Buffer
	Usage(&buf)
	out := buf.String()
	for _, s := range Settings() {
		if !strings.Contains(out, "--"+s.Flag) || !strings.Contains(out, s.Env) {
			t.Errorf("usage lacks --%s or %s", s.Flag, s.Env)
		}
	}
	if !strings.Contains(out, "--config") || !strings.Contains(out, ConfigEnv) {
		t.Error("usage lacks --config")
	}
}

// TestDocsCoverEverySetting keeps docs/configuration.md in step with the
// settings table.
func TestDocsCoverEverySetting(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	doc := string(data)
	for _, s := range Settings() {
		for _, want := range []string{"`" + s.Name + "`", "`--" + s.Flag + "`", "`" + s.Env + "`"} {
			if !strings.Contains(doc, want) {
				t.Errorf("docs/configuration.md lacks %s", want)
			}
		}
	}
	for _, section := range sectionNames() {
		if !strings.Contains(doc, section+":") {
			t.Errorf("docs/configuration.md lacks section %s", section)
		}
	}
}

// TestDocsExampleLoads checks that the example file in
// docs/configuration.md is valid.
func TestDocsExampleLoads(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	_, rest, ok := strings.Cut(string(data), "## Example file")
	if ok {
		_, rest, ok = strings.Cut(rest, "```yaml\n")
	}
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml example under \"## Example file\"")
	}
	c := mustLoad(t, nil, nil, example)
	if c.PublicURL != "https://auth.example.com" || len(c.Providers) != 2 || c.Roles["accountant"] == nil {
		t.Errorf("example loaded unexpectedly: %+v", c.Redacted())
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		name string
		p    Problem
		want string
	}{
		{"flag", Problem{Key: "--signing-alg", Message: "bad"}, "--signing-alg: bad"},
		{"file key", Problem{File: "config.yaml", Key: "argon2.memroy", Message: "unknown key"}, "config.yaml: argon2.memroy: unknown key"},
		{"whole file", Problem{File: "config.yaml", Message: "yaml: line 1: oops"}, "config.yaml: yaml: line 1: oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	err := &ValidationError{Problems: []Problem{tests[0].p, tests[1].p}}
	if got, want := err.Error(), "--signing-alg: bad\nconfig.yaml: argon2.memroy: unknown key"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
