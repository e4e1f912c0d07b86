package config

import (
	"net/netip"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"gatehouse/internal/webhook"
)

// HooksConfig holds the blocking hooks (YAML section hooks, SPEC §16); a
// nil field is a hook that is not configured.
type HooksConfig struct {
	BeforeRegister *HookConfig
	BeforeLogin    *HookConfig
}

// HookConfig is one blocking hook (hooks.before_register,
// hooks.before_login).
type HookConfig struct {
	// URL receives the hook's POSTs: https, or http with
	// webhook_allow_private.
	URL string
	// Secret ("whsec_<base64>", at least 24 bytes) signs the requests like
	// webhook deliveries; the environment variable HookSecretEnv(name)
	// wins. Without one, requests are sent unsigned.
	Secret string
	// OnError is what a timeout, a failure or an unusable answer does:
	// "deny" (the default: 503 with Retry-After) or "allow".
	OnError string
}

// Hook names: the keys of the hooks section.
const (
	HookBeforeRegister = "before_register"
	HookBeforeLogin    = "before_login"
)

// minHookSecret is the shortest hook secret accepted, in bytes: the
// Standard Webhooks minimum (Svix makes 24-byte secrets).
const minHookSecret = 24

// HookSecretEnv returns the environment variable that sets the secret of
// the hook with the given name: GATEHOUSE_HOOK_BEFORE_REGISTER_SECRET.
func HookSecretEnv(name string) string {
	return EnvPrefix + "HOOK_" + strings.ToUpper(name) + "_SECRET"
}

// hooks decodes the hooks section. URLs are checked against
// webhook_allow_private, which is read before the sections.
func (d *sectionDecoder) hooks(c *Config, n *yaml.Node, getenv func(string) string) {
	one := func(dst **HookConfig) func(*yaml.Node, string) {
		return func(n *yaml.Node, path string) {
			h := &HookConfig{OnError: "deny"}
			str := func(dst *string) func(*yaml.Node, string) {
				return func(n *yaml.Node, key string) {
					if s, ok := d.scalar(n, key); ok {
						*dst = s
					}
				}
			}
			d.fields(n, path, map[string]func(*yaml.Node, string){
				"url":    str(&h.URL),
				"secret": str(&h.Secret),
				"on_error": func(n *yaml.Node, key string) {
					s, ok := d.scalar(n, key)
					if !ok {
						return
					}
					var err error
					if h.OnError, err = oneOf(s, h.OnError, "deny", "allow"); err != nil {
						d.add(key, "%v", err)
					}
				},
			})
			name := strings.TrimPrefix(path, "hooks.")
			if msg := checkHookURL(h.URL, c.WebhookAllowPrivate); msg != "" {
				d.add(path+".url", "%s", msg)
			}
			key := path + ".secret"
			if s := strings.TrimSpace(getenv(HookSecretEnv(name))); s != "" {
				h.Secret, key = s, HookSecretEnv(name)
			}
			if h.Secret != "" {
				if k, err := webhook.ParseSecret(h.Secret); err != nil {
					d.add(key, "must be whsec_ followed by base64 (%v)", err)
				} else if len(k) < minHookSecret {
					d.add(key, "must hold at least %d bytes, got %d", minHookSecret, len(k))
				}
			}
			*dst = h
		}
	}
	d.fields(n, "hooks", map[string]func(*yaml.Node, string){
		HookBeforeRegister: one(&c.Hooks.BeforeRegister),
		HookBeforeLogin:    one(&c.Hooks.BeforeLogin),
	})
}

// checkHookURL says what is wrong with a hook URL ("" when nothing is):
// https (http only with webhook_allow_private), a host, no fragment, and,
// unless private addresses are allowed, no literal loopback, private or
// link-local address (host names are checked again at connect time).
func checkHookURL(s string, allowPrivate bool) string {
	if s == "" {
		return "is required"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a valid URL"
	}
	if err := webhook.CheckScheme(u, allowPrivate); err != nil {
		if u.Scheme == "http" {
			return "must be an https URL (http only with webhook_allow_private, for development)"
		}
		if u.Host == "" {
			return "must be an absolute https URL with a host"
		}
		return "must be an https URL"
	}
	if u.Fragment != "" {
		return "must not have a #fragment"
	}
	if err := checkPort(u); err != nil {
		return err.Error()
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate {
		if webhook.CheckAddr(ip) != nil {
			return "points at a loopback, private or link-local address (allowed only with webhook_allow_private, for development)"
		}
	}
	return ""
}

// redacted returns a copy of h that is safe to log; nil stays nil.
func (h *HookConfig) redacted() *HookConfig {
	if h == nil {
		return nil
	}
	r := *h
	r.URL = redactURL(r.URL)
	if r.Secret != "" {
		r.Secret = redactedText
	}
	return &r
}
