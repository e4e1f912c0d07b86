package server

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"gatehouse/internal/auth"
	"gatehouse/internal/config"
)

// The console's Settings page (SPEC §17): the effective configuration,
// read-only, each value with its source and every secret redacted
// (config.Effective and config.Redacted do the redacting), and "send a
// test mail".

func (s *Server) registerConsoleSettings(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/settings", s.handleConsoleSettings)
	mux.HandleFunc("POST /admin/settings/test-mail", s.handleConsoleTestMail)
}

// settingsView is the Settings page.
type settingsView struct {
	ConfigFile   string // "" when no file was read
	ConfigSource string // how the file was named
	Settings     []cfgSettingRow
	Sections     []cfgSectionRow
	// The YAML-only sections, summarised from config.Redacted.
	Roles        []cfgPair
	DefaultRoles string
	Scopes       []cfgPair
	Policy       []cfgPair // password, argon2, rate_limits, registration
	Providers    []cfgProviderRow
	Clients      []cfgClientRow
	Webhooks     []cfgWebhookRow
	Hooks        []cfgHookRow
	// The test-mail form: the address (the administrator's own unless
	// another was typed) and how mail leaves this server, in a sentence.
	MailTo        string
	MailTransport string
}

// cfgSettingRow is one simple setting.
type cfgSettingRow struct {
	Name, Help, Value, Default string
	Source                     string // in words
	Spelling                   string // the flag or variable that gave it
}

// cfgSectionRow says where a YAML-only section came from.
type cfgSectionRow struct{ Name, Source string }

type cfgPair struct{ Name, Value string }

type cfgProviderRow struct {
	ID, Type, Name, Where, ClientID, Scopes string
	SecretSet                               bool
}

type cfgClientRow struct {
	ID, Name, Type, RedirectURIs, GrantTypes, Scopes string
	FirstParty, SecretSet                            bool
}

type cfgWebhookRow struct {
	URL, Events, Description string
	Enabled, SecretSet       bool
}

type cfgHookRow struct {
	Name, URL, OnError string
	Signed             bool
}

// sourceWords names a source the way the page does.
func sourceWords(src string) string {
	switch src {
	case config.SourceFlag:
		return "flag"
	case config.SourceEnv:
		return "env"
	case config.SourceYAML:
		return "YAML file"
	}
	return "default"
}

// settingsData builds the page from the configuration. It reads only
// Effective (values already redacted) and Redacted (secrets replaced):
// nothing here can show a secret.
func (s *Server) settingsData(mailTo string) *settingsView {
	c := s.cfg.Redacted()
	v := &settingsView{ConfigFile: c.ConfigFile, MailTo: mailTo}
	switch c.Sources[config.ConfigFlag] {
	case config.SourceFlag:
		v.ConfigSource = "--" + config.ConfigFlag
	case config.SourceEnv:
		v.ConfigSource = config.ConfigEnv
	}
	for _, e := range c.Effective() {
		r := cfgSettingRow{Name: e.Name, Help: e.Help, Value: e.Value, Default: e.Default, Source: sourceWords(e.Source)}
		switch e.Source {
		case config.SourceFlag:
			r.Spelling = "--" + e.Flag
		case config.SourceEnv:
			r.Spelling = e.Env
		}
		v.Settings = append(v.Settings, r)
	}
	for _, name := range config.SectionNames() {
		v.Sections = append(v.Sections, cfgSectionRow{Name: name, Source: sourceWords(c.Sources[name])})
	}
	for _, name := range slices.Sorted(maps.Keys(c.Roles)) {
		v.Roles = append(v.Roles, cfgPair{name, strings.Join(c.Roles[name], ", ")})
	}
	v.DefaultRoles = strings.Join(c.DefaultRoles, ", ")
	for _, name := range slices.Sorted(maps.Keys(c.Scopes)) {
		v.Scopes = append(v.Scopes, cfgPair{name, c.Scopes[name]})
	}
	v.Policy = []cfgPair{
		{"password.min_length", fmt.Sprint(c.Password.MinLength)},
		{"argon2", fmt.Sprintf("memory %d KiB, iterations %d, parallelism %d", c.Argon2.Memory, c.Argon2.Iterations, c.Argon2.Parallelism)},
		{"rate_limits", fmt.Sprintf("%d sign-ins per account and IP, %d per IP, per %s", c.RateLimits.LoginPerAccountIP, c.RateLimits.LoginPerIP, c.RateLimits.Window)},
		{"registration.reveal_existing", fmt.Sprint(c.Registration.RevealExisting)},
	}
	for _, p := range c.Providers {
		where := p.Issuer
		switch {
		case p.Tenant != "":
			where = "tenant " + p.Tenant
		case p.Domain != "":
			where = p.Domain
		}
		v.Providers = append(v.Providers, cfgProviderRow{ID: p.ID, Type: p.Type, Name: p.Name, Where: where, ClientID: p.ClientID,
			Scopes: strings.Join(p.Scopes, " "), SecretSet: p.ClientSecret != ""})
	}
	for _, cl := range c.Clients {
		v.Clients = append(v.Clients, cfgClientRow{ID: cl.ID, Name: cl.Name, Type: cl.Type, RedirectURIs: strings.Join(cl.RedirectURIs, " "),
			GrantTypes: strings.Join(cl.GrantTypes, ", "), Scopes: strings.Join(cl.Scopes, " "), FirstParty: cl.FirstParty, SecretSet: cl.Secret != ""})
	}
	for _, w := range c.Webhooks {
		v.Webhooks = append(v.Webhooks, cfgWebhookRow{URL: w.URL, Events: strings.Join(w.Events, ", "), Description: w.Description,
			Enabled: w.Enabled == nil || *w.Enabled, SecretSet: w.Secret != ""})
	}
	for _, h := range []struct {
		name string
		h    *config.HookConfig
	}{{config.HookBeforeRegister, c.Hooks.BeforeRegister}, {config.HookBeforeLogin, c.Hooks.BeforeLogin}} {
		if h.h != nil {
			v.Hooks = append(v.Hooks, cfgHookRow{Name: h.name, URL: h.h.URL, OnError: h.h.OnError, Signed: h.h.Secret != ""})
		}
	}
	if c.SMTPURL != "" {
		v.MailTransport = "Mail goes out through the SMTP server " + c.SMTPURL + "."
	} else {
		v.MailTransport = "No SMTP server is configured: mail is written as .eml files to " + strings.TrimSuffix(c.DataDir, "/") + "/mail on this server."
	}
	return v
}

func (s *Server) handleConsoleSettings(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	s.renderConsole(w, http.StatusOK, "settings", c, consoleData{Title: "Settings", Nav: "settings", Notice: s.consoleNotice(r),
		Data: s.settingsData(c.User.Email)})
}

// handleConsoleTestMail queues a test mail to the address typed (the
// administrator's own by default) through the mail queue, like every other
// mail, and audits it (admin.mail_test.sent, via console). A write: it
// needs a recent sign-in.
func (s *Server) handleConsoleTestMail(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleWrite(w, r, "/admin/settings")
	if !ok {
		return
	}
	to := strings.TrimSpace(r.PostForm.Get("to"))
	if to == "" {
		to = c.User.Email
	}
	sent, err := s.auth.SendTestMail(r.Context(), to, consoleMeta(r.Context(), c))
	if auth.ErrorCode(err) == auth.EINVALID {
		s.renderConsole(w, http.StatusBadRequest, "settings", c, consoleData{Title: "Settings", Nav: "settings",
			Error: "That is not an email address Gatehouse can send to. Check it and try again.", Data: s.settingsData(to)})
		return
	}
	if err != nil {
		s.consoleFailure(w, r, "console test mail", err)
		return
	}
	// The notice travels (sealed) in the URL: a very long address is
	// left out of it.
	notice := "Test mail queued for " + sent + "."
	if len(sent) > 100 {
		notice = "Test mail queued."
	}
	s.consoleDone(w, r, "/admin/settings#test-mail", notice+" If it does not arrive, the server log and mail.failed in the audit log say why.")
}
