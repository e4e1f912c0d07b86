package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// A 32-byte and a 16-byte secret, base64.
const (
	hookSecret      = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	shortHookSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="
)

func TestHooksSection(t *testing.T) {
	yaml := `hooks:
  before_register:
    url: https://hooks.example.com/register
    secret: ` + hookSecret + `
  before_login:
    url: "https://user:pw@hooks.example.com/login?token=abc"
    on_error: allow
`
	c := mustLoad(t, nil, nil, yaml)
	want := HooksConfig{
		BeforeRegister: &HookConfig{URL: "https://hooks.example.com/register", Secret: hookSecret, OnError: "deny"},
		BeforeLogin:    &HookConfig{URL: "https://user:pw@hooks.example.com/login?token=abc", OnError: "allow"},
	}
	if !reflect.DeepEqual(c.Hooks, want) {
		t.Fatalf("hooks = %+v / %+v\nwant %+v / %+v", c.Hooks.BeforeRegister, c.Hooks.BeforeLogin, want.BeforeRegister, want.BeforeLogin)
	}
	if c.HookTimeout.String() != "2s" || c.WebhookAllowPrivate {
		t.Fatalf("hook_timeout %s, webhook_allow_private %v; want the defaults 2s and false", c.HookTimeout, c.WebhookAllowPrivate)
	}

	// Redacted hides the secret and the URL's password, not in the original.
	r := c.Redacted()
	if r.Hooks.BeforeRegister.Secret != redactedText || c.Hooks.BeforeRegister.Secret != hookSecret {
		t.Fatalf("Redacted secret %q (original %q)", r.Hooks.BeforeRegister.Secret, c.Hooks.BeforeRegister.Secret)
	}
	if u := r.Hooks.BeforeLogin.URL; strings.Contains(u, "pw@") || c.Hooks.BeforeLogin.URL != want.BeforeLogin.URL {
		t.Fatalf("Redacted URL %q (original %q)", u, c.Hooks.BeforeLogin.URL)
	}

	// The environment's secret wins.
	other := "whsec_YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXphYmNkZWY="
	c = mustLoad(t, nil, map[string]string{"GATEHOUSE_HOOK_BEFORE_LOGIN_SECRET": other}, yaml)
	if HookSecretEnv(HookBeforeLogin) != "GATEHOUSE_HOOK_BEFORE_LOGIN_SECRET" || c.Hooks.BeforeLogin.Secret != other {
		t.Fatalf("before_login secret %q from %s", c.Hooks.BeforeLogin.Secret, HookSecretEnv(HookBeforeLogin))
	}

	// A URL alone is enough; no hooks section means no hooks.
	c = mustLoad(t, nil, nil, "hooks:\n  before_register:\n    url: https://h.example/x\n")
	if c.Hooks.BeforeLogin != nil || c.Hooks.BeforeRegister == nil || c.Hooks.BeforeRegister.Secret != "" || c.Hooks.BeforeRegister.OnError != "deny" {
		t.Fatalf("url-only hooks = %+v / %+v", c.Hooks.BeforeRegister, c.Hooks.BeforeLogin)
	}
	if c = mustLoad(t, nil, nil, "addr: 127.0.0.1:9000\n"); c.Hooks != (HooksConfig{}) {
		t.Fatalf("no hooks section: %+v", c.Hooks)
	}

	// http and private addresses with webhook_allow_private, which comes
	// from any source (here the environment) before the section is read.
	local := "hooks:\n  before_register:\n    url: http://127.0.0.1:8181/hook\n"
	c = mustLoad(t, nil, map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true"}, local)
	if !c.WebhookAllowPrivate || c.Hooks.BeforeRegister.URL != "http://127.0.0.1:8181/hook" {
		t.Fatalf("allow_private: %v %+v", c.WebhookAllowPrivate, c.Hooks.BeforeRegister)
	}
	c = mustLoad(t, []string{"--hook-timeout", "750ms"}, nil, "")
	if c.HookTimeout.String() != "750ms" {
		t.Fatalf("--hook-timeout 750ms gave %s", c.HookTimeout)
	}
}

func TestHooksSectionProblems(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		env      map[string]string
		wantKeys []string
	}{
		{name: "not a mapping", yaml: "hooks: [before_register]\n", wantKeys: []string{"hooks"}},
		{name: "unknown hook name", yaml: "hooks:\n  before_signup:\n    url: https://h.example/x\n",
			wantKeys: []string{"hooks.before_signup"}},
		{name: "unknown key in a hook", yaml: "hooks:\n  before_login:\n    url: https://h.example/x\n    timeout: 5s\n",
			wantKeys: []string{"hooks.before_login.timeout"}},
		{name: "no url", yaml: "hooks:\n  before_login:\n    on_error: allow\n", wantKeys: []string{"hooks.before_login.url"}},
		{name: "unknown on_error", yaml: "hooks:\n  before_register:\n    url: https://h.example/x\n    on_error: retry\n",
			wantKeys: []string{"hooks.before_register.on_error"}},
		{name: "plain http", yaml: "hooks:\n  before_register:\n    url: http://h.example/x\n",
			wantKeys: []string{"hooks.before_register.url"}},
		{name: "not a URL", yaml: "hooks:\n  before_register:\n    url: \"https://h.example:99999/x\"\n",
			wantKeys: []string{"hooks.before_register.url"}},
		{name: "relative", yaml: "hooks:\n  before_register:\n    url: /hook\n", wantKeys: []string{"hooks.before_register.url"}},
		{name: "another scheme", yaml: "hooks:\n  before_register:\n    url: ftp://h.example/x\n",
			wantKeys: []string{"hooks.before_register.url"}},
		{name: "fragment", yaml: "hooks:\n  before_register:\n    url: \"https://h.example/x#y\"\n",
			wantKeys: []string{"hooks.before_register.url"}},
		{name: "loopback and metadata addresses", yaml: "hooks:\n  before_register:\n    url: https://127.0.0.1/x\n" +
			"  before_login:\n    url: https://169.254.169.254/latest\n",
			wantKeys: []string{"hooks.before_register.url", "hooks.before_login.url"}},
		{name: "secret without the prefix", yaml: "hooks:\n  before_login:\n    url: https://h.example/x\n    secret: " +
			strings.TrimPrefix(hookSecret, "whsec_") + "\n", wantKeys: []string{"hooks.before_login.secret"}},
		{name: "short secret", yaml: "hooks:\n  before_login:\n    url: https://h.example/x\n    secret: " + shortHookSecret + "\n",
			wantKeys: []string{"hooks.before_login.secret"}},
		{name: "bad secret from the environment", yaml: "hooks:\n  before_login:\n    url: https://h.example/x\n",
			env: map[string]string{"GATEHOUSE_HOOK_BEFORE_LOGIN_SECRET": "whsec_???"}, wantKeys: []string{"GATEHOUSE_HOOK_BEFORE_LOGIN_SECRET"}},
		{name: "every problem at once", yaml: "hooks:\n  before_register:\n    url: http://h.example/x\n    on_error: maybe\n" +
			"  before_login:\n    secret: nope\n",
			env: map[string]string{"GATEHOUSE_HOOK_TIMEOUT": "soon"},
			wantKeys: []string{"GATEHOUSE_HOOK_TIMEOUT", "hooks.before_register.on_error", "hooks.before_register.url",
				"hooks.before_login.url", "hooks.before_login.secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, nil, tt.env, tt.yaml)
			ps := problemsOf(t, err)
			got := keysOf(ps)
			if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tt.wantKeys))) {
				t.Fatalf("problem keys = %q, want %q\n%v", got, tt.wantKeys, err)
			}
			for _, p := range ps {
				if p.Message == "" || strings.Contains(p.Message, "MDEyMzQ1") {
					t.Errorf("problem %+v: empty or shows the secret", p)
				}
			}
		})
	}
}
