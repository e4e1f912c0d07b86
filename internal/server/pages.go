package server

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"gatehouse/internal/auth"
)

//go:embed web/*.html web/assets
var webFS embed.FS

// pageData is what every hosted page's template sees.
type pageData struct {
	Product, Title, Error, Notice, Token string
	Done                                 bool

	// Logo is the configured logo URL; empty shows Product as text.
	Logo string
	// Script loads /assets/passkey.js; only then does the page's CSP allow
	// script (from this origin alone, never inline).
	Script bool
	// Wide is the account page's layout; SignedIn shows its header.
	Wide     bool
	SignedIn string
	// Section is the id of the account section Error belongs to, so that
	// the message shows next to the form that failed.
	Section string

	// Form values echoed back and options of the login and register pages.
	Email, Name, ReturnTo string
	MinPassword           int
	Providers             []providerLink
	Passkeys              bool // passkey sign-in is available
	Recovery              bool // /login/2fa shows the recovery-code form
	// More of /login/2fa: the methods the account lacks, an enrolment to
	// confirm, the recovery codes to show once and where to go next.
	NoRecovery, NoCode bool
	// The OpenID provider's consent page, and origins its form may
	// redirect to (CSP form-action).
	Consent    *consentView
	FormTarget string
	Enrol      *totpEnrolView
	Codes      []string
	Next       string
	Account    *accountView
}

// providerLink is one configured identity provider on the login page.
type providerLink struct {
	ID, Name, URL string
}

func (s *Server) parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	funcs := template.FuncMap{"when": when, "ago": ago, "device": describeDevice, "dict": dict}
	for _, name := range []string{"reset", "verify", "forgot", "error", "login", "register", "registered", "logout", "account", "login2fa", "consent", "rplogout"} {
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(webFS, "web/layout.html", "web/"+name+".html"))
	}
	return out
}

// dict builds a map from key, value pairs, to pass several values to a
// nested template.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		m[k] = kv[i+1]
	}
	return m
}

func (s *Server) renderPage(w http.ResponseWriter, status int, name string, d pageData) {
	d.Product = s.cfg.ProductName
	d.Logo = s.cfg.LogoURL
	if d.MinPassword == 0 {
		d.MinPassword = s.minPassword()
	}
	var b bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&b, "layout", d); err != nil {
		s.log.Error("rendering page", "page", name, "err", err)
		writeProblem(w, http.StatusInternalServerError, "internal error")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	csp := s.pageCSP(d.Script)
	if d.FormTarget != "" {
		// The form's answer redirects there (a client's redirect_uri):
		// Chrome applies form-action to that redirect too.
		csp = strings.Replace(csp, "form-action ", "form-action "+d.FormTarget+" ", 1)
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func assetsHandler() http.Handler {
	sub, _ := fs.Sub(webFS, "web/assets")
	fsrv := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// formPost checks a hosted form submission: same origin only (CSRF), then
// parses the form.
func (s *Server) formPost(w http.ResponseWriter, r *http.Request, page string, d pageData) bool {
	if err := s.csrf.Check(r); err != nil {
		d.Error = "This form must be sent from this site. Reload the page and try again."
		s.renderPage(w, http.StatusForbidden, page, d)
		return false
	}
	if err := r.ParseForm(); err != nil {
		d.Error = "The form could not be read. Reload the page and try again."
		s.renderPage(w, http.StatusBadRequest, page, d)
		return false
	}
	return true
}

// Opening a mailed link only shows a form: mail scanners that fetch links
// must not burn the token. The token is used when the form is submitted.
func (s *Server) handleResetPage(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Choose a new password", Token: r.URL.Query().Get("token")}
	if d.Token == "" {
		d.Error = "This link is incomplete."
	}
	s.renderPage(w, http.StatusOK, "reset", d)
}

func (s *Server) handleResetSubmit(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Choose a new password"}
	if !s.formPost(w, r, "reset", d) {
		return
	}
	d.Token = r.PostForm.Get("token")
	err := s.auth.ResetPassword(r.Context(), d.Token, r.PostForm.Get("new_password"), meta(r.Context()))
	switch {
	case err == nil:
		d.Title, d.Notice, d.Done, d.Token = "Password changed", "Your password was changed and every other sign-in was ended.", true, ""
		s.renderPage(w, http.StatusOK, "reset", d)
	case err == auth.ErrInvalidOneTimeToken:
		d.Token, d.Error = "", "This link is invalid, used or expired."
		s.renderPage(w, http.StatusBadRequest, "reset", d)
	default:
		status, msg := s.pageError(w, r, "reset page", err)
		d.Error = msg
		s.renderPage(w, status, "reset", d)
	}
}

func (s *Server) handleVerifyPage(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Verify your email address", Token: r.URL.Query().Get("token")}
	if d.Token == "" {
		d.Error = "This link is incomplete."
	}
	s.renderPage(w, http.StatusOK, "verify", d)
}

func (s *Server) handleVerifySubmit(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Verify your email address"}
	if !s.formPost(w, r, "verify", d) {
		return
	}
	err := s.auth.VerifyEmail(r.Context(), r.PostForm.Get("token"), credentialOwner(r.Context()), meta(r.Context()))
	switch {
	case err == nil:
		d.Title, d.Notice, d.Done = "Email address verified", "Thank you: your email address is verified.", true
		s.renderPage(w, http.StatusOK, "verify", d)
	case err == auth.ErrInvalidOneTimeToken:
		d.Error = "This link is invalid, used or expired."
		s.renderPage(w, http.StatusBadRequest, "verify", d)
	default:
		status, msg := s.pageError(w, r, "verify page", err)
		d.Error = msg
		s.renderPage(w, status, "verify", d)
	}
}

func (s *Server) handleForgotPage(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, http.StatusOK, "forgot", pageData{Title: "Reset your password"})
}

func (s *Server) handleForgotSubmit(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Reset your password"}
	if !s.formPost(w, r, "forgot", d) {
		return
	}
	err := s.auth.RequestPasswordReset(r.Context(), r.PostForm.Get("email"), meta(r.Context()))
	switch {
	case err == nil:
		d.Notice, d.Done = "If an account uses this address, a reset link is on its way. Check your mail.", true
		s.renderPage(w, http.StatusOK, "forgot", d)
	default:
		status, msg := s.pageError(w, r, "forgot page", err)
		d.Error = msg
		s.renderPage(w, status, "forgot", d)
	}
}
