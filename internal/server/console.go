package server

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"gatehouse/internal/auth"
)

// The admin console (SPEC §17): server-rendered pages under /admin, with
// the hosted pages' stylesheet, CSP and CSRF rules and no JavaScript. Every
// action calls the same auth.Service methods as the admin API.
//
// Each section registers its routes from its own file
// (console_<section>.go) and has its templates in web/admin/<name>.html,
// each defining "content" for web/admin/layout.html.

//go:embed web/admin/*.html
var adminFS embed.FS

// consoleData is what every console template sees.
type consoleData struct {
	Product, Logo string
	Title         string
	// Nav is the section the page belongs to (the menu marks it):
	// overview, users, audit, clients, webhooks, keys, settings.
	Nav string
	// Admin is the signed-in administrator's email.
	Admin         string
	Notice, Error string
	// Data is the page's own view.
	Data any
}

// consoleSections are the menu's entries, in order.
var consoleSections = []struct{ ID, Label, Path string }{
	{"overview", "Overview", "/admin"},
	{"users", "Users", "/admin/users"},
	{"audit", "Audit log", "/admin/audit"},
	{"clients", "Clients", "/admin/clients"},
	{"webhooks", "Webhooks", "/admin/webhooks"},
	{"keys", "Keys", "/admin/keys"},
	{"settings", "Settings", "/admin/settings"},
}

// parseConsole parses every web/admin page with the console layout.
func (s *Server) parseConsole() map[string]*template.Template {
	out := map[string]*template.Template{}
	funcs := template.FuncMap{"when": when, "ago": ago, "device": describeDevice, "dict": dict,
		"sections": func() any { return consoleSections }}
	files, err := fs.Glob(adminFS, "web/admin/*.html")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(adminFS, "web/admin/layout.html", f))
	}
	return out
}

// consoleCaller is the administrator behind a console request.
type consoleCaller struct {
	Session *auth.Session
	User    *auth.User
	P       *auth.Principal
}

// consoleAccess admits an administrator's browser session (SPEC §17): a
// session cookie (bearer tokens and API keys never open pages), the role
// admin as the store has it now, and — with GATEHOUSE_ADMIN_REQUIRE_MFA —
// a session signed in with two factors. Otherwise it answers (a redirect to
// sign in, set up or prove a second factor, or a refusal) and returns
// false.
func (s *Server) consoleAccess(w http.ResponseWriter, r *http.Request) (*consoleCaller, bool) {
	c, ok := s.consoleAdmin(w, r)
	if !ok {
		return nil, false
	}
	if s.cfg.AdminRequireMFA && c.Session.ACR != auth.ACR2 {
		st, err := s.auth.MFAStatus(r.Context(), c.User.ID)
		if err != nil {
			s.consoleFailure(w, r, "console access", err)
			return nil, false
		}
		if st.TOTP == nil && !s.passkeyFactor(st) {
			// No second factor to prove: set one up first.
			done := "admin-needs-2fa"
			if !s.passkeysEnabled() || !s.cfg.MFA.PasskeyIsMFA {
				done = "admin-needs-totp"
			}
			seeOther(w, r, "/account?done="+done+"#two-factor")
			return nil, false
		}
		seeOther(w, r, "/admin/step-up?return_to="+queryValue(r.URL.RequestURI()))
		return nil, false
	}
	return c, true
}

// consoleAdmin is consoleAccess without the aal2 requirement: a session
// cookie (bearer tokens and API keys never open pages) of an account with
// the role admin as the store has it now. The step-up page uses it alone
// (it is how an aal1 session reaches aal2).
func (s *Server) consoleAdmin(w http.ResponseWriter, r *http.Request) (*consoleCaller, bool) {
	res, _ := r.Context().Value(keyPrincipal).(*authResult)
	if res != nil && res.p != nil && res.p.Kind != auth.KindSession {
		s.renderConsoleRefusal(w, http.StatusForbidden, "The admin console opens in a browser signed in with a session, not with a token or an API key.")
		return nil, false
	}
	if res == nil || res.session == nil || res.user == nil {
		seeOther(w, r, loginURL(r.URL.RequestURI()))
		return nil, false
	}
	// The session middleware read the account from the store for this
	// request: its roles are current.
	if !res.user.HasRole("admin") {
		s.renderConsoleRefusal(w, http.StatusForbidden, "The admin console is for administrators. Your account does not have the admin role.")
		return nil, false
	}
	return &consoleCaller{Session: res.session, User: res.user, P: res.p}, true
}

// consoleWrite admits a console form post: consoleAccess, then a recent
// sign-in (step-up, SPEC §13) — otherwise it sends the browser to the
// step-up page, which comes back to back. CSRF: the session middleware
// refuses a cross-origin post that carries the cookie before it gets here.
func (s *Server) consoleWrite(w http.ResponseWriter, r *http.Request, back string) (*consoleCaller, bool) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return nil, false
	}
	if !s.consoleForm(w, r) {
		return nil, false
	}
	if !s.consoleRecent(w, r, c, back) {
		return nil, false
	}
	return c, true
}

// consoleRecent checks that c signed in recently enough for a write or a
// sensitive read (step-up, SPEC §13); otherwise it sends the browser to
// the step-up page, which comes back to back, and returns false.
func (s *Server) consoleRecent(w http.ResponseWriter, r *http.Request, c *consoleCaller, back string) bool {
	if err := s.auth.RequireStepUp(r.Context(), c.P, false); err != nil {
		if auth.IsStepUpRequired(err) {
			seeOther(w, r, "/admin/step-up?return_to="+queryValue(back))
			return false
		}
		s.consoleFailure(w, r, "console step-up check", err)
		return false
	}
	return true
}

// consoleForm reads a console form post: a form body (what a browser
// sends; an empty body needs no type), else 415 — so that a body of
// another kind is never read as a form without its fields.
func (s *Server) consoleForm(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength != 0 {
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || ct != "application/x-www-form-urlencoded" {
			s.renderConsoleRefusal(w, http.StatusUnsupportedMediaType, "The console takes forms only (application/x-www-form-urlencoded).")
			return false
		}
	}
	if err := r.ParseForm(); err != nil {
		s.renderConsoleRefusal(w, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	return true
}

// consoleMeta is the request's audit metadata, marked as a console action
// (SPEC §17: details.via "console" and the admin's id).
func consoleMeta(ctx context.Context, c *consoleCaller) auth.Meta {
	m := meta(ctx)
	m.Via = "console"
	if c != nil {
		m.Actor = c.User.ID
	}
	return m
}

// renderConsole writes a console page.
func (s *Server) renderConsole(w http.ResponseWriter, status int, name string, c *consoleCaller, d consoleData) {
	d.Product, d.Logo = s.cfg.ProductName, s.cfg.LogoURL
	if c != nil {
		d.Admin = c.User.Email
	}
	t := s.console[name]
	var b bytes.Buffer
	if t == nil {
		s.log.Error("rendering console page: no such template", "page", name)
		writeProblem(w, http.StatusInternalServerError, "internal error")
		return
	}
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		s.log.Error("rendering console page", "page", name, "err", err)
		writeProblem(w, http.StatusInternalServerError, "internal error")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", s.pageCSP(false))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// renderConsoleRefusal is a console page that only says why not.
func (s *Server) renderConsoleRefusal(w http.ResponseWriter, status int, msg string) {
	s.renderConsole(w, status, "message", nil, consoleData{Title: "Admin console", Error: msg})
}

// consoleFailure answers an unexpected error (logged, never shown).
func (s *Server) consoleFailure(w http.ResponseWriter, r *http.Request, where string, err error) {
	st := s.failure(r.Context(), where, err, w.Header())
	s.renderConsole(w, st, "message", nil, consoleData{Title: "Admin console", Error: "Something went wrong. Try again in a moment."})
}

// consoleDone redirects after a successful post, with a notice to show. The
// notice travels sealed (auth.SealNotice): a console page shows only what
// the console itself said.
func (s *Server) consoleDone(w http.ResponseWriter, r *http.Request, to, notice string) {
	u, err := url.Parse(to)
	if err != nil || !strings.HasPrefix(u.Path, "/admin") {
		u = &url.URL{Path: "/admin"}
	}
	q := u.Query()
	q.Set("notice", s.auth.SealNotice(notice))
	u.RawQuery = q.Encode()
	seeOther(w, r, u.String())
}

// consoleNotice is the notice a redirect carried, when the console sealed
// it (plain text, escaped by the template).
func (s *Server) consoleNotice(r *http.Request) string {
	n := r.URL.Query().Get("notice")
	if n == "" || len(n) > 1024 {
		return ""
	}
	text, ok := s.auth.OpenNotice(n)
	if !ok {
		return ""
	}
	return text
}

// safeAdminPath is return_to when it is a path of the console, else /admin.
func safeAdminPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/admin") || strings.HasPrefix(p, "//") {
		return "/admin"
	}
	return u.RequestURI()
}

// registerConsoleRoutes adds /admin (when GATEHOUSE_ADMIN_CONSOLE is on).
func (s *Server) registerConsoleRoutes(mux *http.ServeMux) {
	if !s.cfg.AdminConsole {
		return
	}
	mux.HandleFunc("GET /admin/step-up", s.handleConsoleStepUpPage)
	mux.HandleFunc("POST /admin/step-up", s.handleConsoleStepUp)
	s.registerConsoleOverview(mux)
	s.registerConsoleUsers(mux)
	s.registerConsoleSettings(mux)
	s.registerConsoleAudit(mux)
	s.registerConsoleClients(mux)
	s.registerConsoleWebhooks(mux)
	s.registerConsoleKeys(mux)
}

// stepUpView is the step-up form's view.
type stepUpView struct {
	ReturnTo string
	HasTOTP  bool
	// PasswordForm: the password form can reach what the console needs
	// (without an authenticator app it proves one factor only, which is
	// not enough when the console requires two).
	PasswordForm bool
	// PasskeyURL, when set, signs in again with a passkey on the hosted
	// login page (prompt=login), which comes back to ReturnTo: the console
	// itself runs no script, and a passkey with user verification is the
	// second factor of an admin who has no authenticator app.
	PasskeyURL string
}

// handleConsoleStepUpPage asks the administrator to prove it is them
// again: the password and, with a TOTP authenticator, a code (or a
// recovery code). Its own access check: a session of an admin, at any
// level (this is how an aal1 session reaches aal2).
func (s *Server) handleConsoleStepUpPage(w http.ResponseWriter, r *http.Request) {
	c, st, ok := s.consoleStepUpCaller(w, r)
	if !ok {
		return
	}
	s.renderStepUp(w, r, http.StatusOK, c, st, "")
}

func (s *Server) renderStepUp(w http.ResponseWriter, r *http.Request, status int, c *consoleCaller, st *auth.MFAStatus, msg string) {
	v := stepUpView{ReturnTo: safeAdminPath(r.FormValue("return_to")), HasTOTP: st.TOTP != nil, PasswordForm: true}
	if st.Passkeys > 0 && s.passkeysEnabled() {
		v.PasskeyURL = "/login?" + url.Values{"prompt": {"login"}, "login_hint": {c.User.Email}, "return_to": {v.ReturnTo}}.Encode()
		v.PasswordForm = st.TOTP != nil || !s.cfg.AdminRequireMFA || !s.passkeyFactor(st)
	}
	s.renderConsole(w, status, "stepup", c, consoleData{Title: "Confirm it is you", Error: msg, Data: v})
}

func (s *Server) handleConsoleStepUp(w http.ResponseWriter, r *http.Request) {
	c, st, ok := s.consoleStepUpCaller(w, r)
	if !ok {
		return
	}
	if !s.consoleForm(w, r) {
		return
	}
	f := r.PostForm
	// A password alone proves one factor: for an admin whose second
	// factor is a passkey it would leave the session below what the
	// console requires (and replace a two-factor sign-in's level with
	// one-factor). The page offers the passkey instead.
	if s.cfg.AdminRequireMFA && st.TOTP == nil && s.passkeyFactor(st) {
		s.renderStepUp(w, r, http.StatusBadRequest, c, st, "Your second factor is a passkey: sign in again with it.")
		return
	}
	in := auth.StepUpInput{Password: f.Get("password"),
		Factor: auth.SecondFactor{Code: strings.ReplaceAll(f.Get("code"), " ", ""), RecoveryCode: f.Get("recovery_code")}}
	if _, err := s.auth.StepUp(r.Context(), c.P, in, consoleMeta(r.Context(), c)); err != nil {
		msg := "That didn't work. Check your password and code, and try again."
		if auth.ErrorCode(err) != auth.EINVALID && auth.ErrorCode(err) != auth.EUNAUTHORIZED {
			_, msg = s.pageError(w, r, "console step-up", err)
		}
		s.renderStepUp(w, r, http.StatusBadRequest, c, st, msg)
		return
	}
	seeOther(w, r, safeAdminPath(f.Get("return_to")))
}

// passkeyFactor reports whether the account's passkeys can be its second
// factor here: auth counts them as one (GATEHOUSE_PASSKEY_IS_MFA) and this
// server offers passkey sign-in.
func (s *Server) passkeyFactor(st *auth.MFAStatus) bool {
	return st.PasskeyFactor && s.passkeysEnabled()
}

// consoleStepUpCaller admits the step-up page (consoleAdmin) and reads the
// administrator's second factors, which the page offers.
func (s *Server) consoleStepUpCaller(w http.ResponseWriter, r *http.Request) (*consoleCaller, *auth.MFAStatus, bool) {
	c, ok := s.consoleAdmin(w, r)
	if !ok {
		return nil, nil, false
	}
	st, err := s.auth.MFAStatus(r.Context(), c.User.ID)
	if err != nil {
		s.consoleFailure(w, r, "console step-up", err)
		return nil, nil, false
	}
	return c, st, true
}
