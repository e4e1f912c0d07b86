package cli

import (
	"fmt"
	"log/slog"

	"gatehouse/internal/auth"
	"gatehouse/internal/config"
	"gatehouse/internal/webhook"
)

// newHooks builds the blocking hooks of the configuration (SPEC §16): each
// an HTTP caller on the SSRF-safe webhook client, bounded by
// GATEHOUSE_HOOK_TIMEOUT, signing with its secret when it has one.
func newHooks(cfg *config.Config, log *slog.Logger) (auth.Hooks, error) {
	var hooks auth.Hooks
	if cfg.Hooks.BeforeRegister == nil && cfg.Hooks.BeforeLogin == nil {
		return hooks, nil
	}
	client := webhook.NewClient(webhook.ClientOptions{AllowPrivate: cfg.WebhookAllowPrivate, Timeout: cfg.HookTimeout})
	build := func(name string, hc *config.HookConfig) (*auth.Hook, error) {
		if hc == nil {
			return nil, nil
		}
		h := &webhook.Hook{URL: hc.URL, Client: client, Timeout: cfg.HookTimeout, UserAgent: "Gatehouse/" + Version}
		if hc.Secret != "" {
			key, err := webhook.ParseSecret(hc.Secret)
			if err != nil {
				return nil, fmt.Errorf("hooks.%s.secret: %w", name, err)
			}
			h.Secret = key
		} else {
			log.Warn("a blocking hook has no secret: its requests are not signed", "hook", name,
				"set", "hooks."+name+".secret or "+config.HookSecretEnv(name))
		}
		return &auth.Hook{Caller: h, AllowOnError: hc.OnError == "allow"}, nil
	}
	var err error
	if hooks.BeforeRegister, err = build(config.HookBeforeRegister, cfg.Hooks.BeforeRegister); err != nil {
		return hooks, err
	}
	hooks.BeforeLogin, err = build(config.HookBeforeLogin, cfg.Hooks.BeforeLogin)
	return hooks, err
}
