package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/internal/auth"
)

// registerPageRoutes adds the hosted pages for signing in, registering,
// signing out and managing an account. Every page works without
// JavaScript except the passkey buttons; every POST is checked against
// cross-origin submission (s.csrf) and answers with a 303 redirect (or the
// form again with a message). Nothing here is needed to use Gatehouse
// headless: the JSON API does all of it.
func (s *Server) registerPageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /assets/brand.css", s.handleBrandCSS)
	mux.HandleFunc("GET /login", s.handleLoginPage)
	mux.HandleFunc("POST /login", s.handleLoginSubmit)
	mux.HandleFunc("GET /login/2fa", s.handleSecondStepPage)
	mux.HandleFunc("POST /login/2fa", s.handleSecondStepSubmit)
	mux.HandleFunc("POST /login/2fa/enrol", s.handleSecondStepEnrol)
	mux.HandleFunc("GET /register", s.handleRegisterPage)
	mux.HandleFunc("POST /register", s.handleRegisterSubmit)
	mux.HandleFunc("GET /logout", s.handleLogoutPage)
	mux.HandleFunc("POST /logout", s.handleLogoutSubmit)
	mux.HandleFunc("GET /account", s.handleAccountPage)
	mux.HandleFunc("POST /account/profile", s.handleAccountProfile())
	mux.HandleFunc("POST /account/password", s.handleAccountPassword())
	mux.HandleFunc("POST /account/email/resend", s.handleAccountResend())
	mux.HandleFunc("POST /account/sessions/{id}/revoke", s.handleAccountRevokeSession)
	mux.HandleFunc("POST /account/sessions/revoke-others", s.handleAccountRevokeOthers())
	mux.HandleFunc("POST /account/api-keys", s.handleAccountCreateKey)
	mux.HandleFunc("POST /account/api-keys/{id}/revoke", s.handleAccountRevokeKey())
	mux.HandleFunc("POST /account/identities/{id}/unlink", s.handleAccountUnlink())
	mux.HandleFunc("POST /account/passkeys/{id}/rename", s.handleAccountRenamePasskey())
	mux.HandleFunc("POST /account/passkeys/{id}/delete", s.handleAccountDeletePasskey())
	s.registerAccountMFARoutes(mux)
	mux.HandleFunc("POST /account/consents/{client_id}/revoke", s.handleAccountRevokeConsent())
}

// Messages shown after a redirect, chosen by a fixed code in the query
// string (?done=…): the URL can only pick one of these, never inject text.
var doneMessages = map[string]string{
	"signed-out":        "You are signed out.",
	"admin-needs-2fa":   "The admin console needs a second factor: set up an authenticator app or a passkey below, then open the console again.",
	"admin-needs-totp":  "The admin console needs a second factor, and on this server passkeys do not count as one: set up an authenticator app below, then open the console again.",
	"profile":           "Your name was saved.",
	"password":          "Your password was changed. Every other session was signed out.",
	"verify-sent":       "A new verification link is on its way. Check your mail.",
	"session-revoked":   "That session was signed out.",
	"sessions-revoked":  "Every other session was signed out.",
	"passkey-added":     "Your passkey was added. Next time, you can sign in with it.",
	"passkey-renamed":   "The passkey was renamed.",
	"passkey-removed":   "The passkey was removed.",
	"key-revoked":       "The API key was revoked. It stops working at once.",
	"identity-unlinked": "The linked account was removed.",
	"totp-removed":      "Two-factor authentication with an authenticator app is off.",
	"stepped-up":        "Thanks, you are confirmed. Try the change again.",
	"consent-revoked":   "The application's access was removed. It is signed out of your account.",
}

// Generic messages of the login form. One message for every failed
// password check, whatever the reason (unknown email, wrong password,
// disabled account), so that the page does not reveal which emails exist.
const (
	msgBadLogin   = "Email or password is incorrect."
	msgCrossSite  = "This form must be sent from this site. Reload the page and try again."
	msgBadForm    = "The form could not be read. Reload the page and try again."
	msgTryAgain   = "Something went wrong. Try again in a moment."
	msgNoPasskeyJ = "Passkeys need JavaScript and a browser that supports them. Turn JavaScript on, or use your password."
)

// seeOther redirects after a form post (or to the login page).
func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// queryValue escapes a query value but keeps "/" readable: return_to
// paths stay legible in links (RFC 3986 allows "/" in a query).
func queryValue(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "%2F", "/")
}

// loginURL is the login page that returns to returnTo afterwards.
func loginURL(returnTo string) string {
	if returnTo == "" || returnTo == "/account" {
		return "/login?return_to=/account"
	}
	return "/login?return_to=" + queryValue(returnTo)
}

// authPageData is what the login and register pages share: the checked
// return_to (empty for the default) and a link per configured provider.
func (s *Server) authPageData(title, returnTo string) pageData {
	d := pageData{Title: title, MinPassword: s.minPassword(), Passkeys: s.passkeysEnabled()}
	rt := s.safeReturnTo(returnTo)
	if rt != "/account" {
		d.ReturnTo = rt
	}
	for _, p := range s.oidc.List() {
		d.Providers = append(d.Providers, providerLink{ID: p.ID, Name: p.Name,
			URL: "/v1/oidc/" + url.PathEscape(p.ID) + "/login?return_to=" + queryValue(rt)})
	}
	d.Script = d.Passkeys
	return d
}

func (s *Server) minPassword() int {
	if n := s.cfg.Password.MinLength; n > 0 {
		return n
	}
	return 8
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if currentSession(r.Context()) != nil && q.Get("method") == "" && q.Get("prompt") != "login" {
		// Signed in already: go where the login would have gone (unless
		// an application asked for a new sign-in: prompt=login).
		seeOther(w, r, s.safeReturnTo(q.Get("return_to")))
		return
	}
	d := s.authPageData("Sign in", q.Get("return_to"))
	if h := strings.TrimSpace(q.Get("login_hint")); h != "" && len(h) <= 320 && strings.Contains(h, "@") {
		d.Email = h // an application's hint (OIDC login_hint) prefills the address
	}
	if q.Get("method") == "passkey" {
		d.Error = msgNoPasskeyJ
	}
	d.Notice = doneMessages[q.Get("done")]
	s.renderPage(w, http.StatusOK, "login", d)
}

func (s *Server) handleLoginSubmit(w http.ResponseWriter, r *http.Request) {
	// Logging in is refused cross-origin too: otherwise another site could
	// sign this browser into the attacker's account (login CSRF).
	if !s.formPost(w, r, "login", s.authPageData("Sign in", "")) {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	d := s.authPageData("Sign in", f.Get("return_to"))
	d.Email = strings.TrimSpace(f.Get("email"))
	if len(d.Email) > 320 {
		d.Email = ""
	}
	done, err := s.auth.SessionLogin(ctx, f.Get("email"), f.Get("password"), meta(ctx))
	if err != nil && s.toSecondStep(w, r, err, f.Get("return_to")) {
		return
	}
	if err != nil {
		status, msg := s.loginFailure(w, r, err)
		d.Error = msg
		s.renderPage(w, status, "login", d)
		return
	}
	// The browser's previous session, if any, ends: its cookie is
	// replaced now, and it must not stay usable by whoever holds it.
	if old := currentSession(ctx); old != nil {
		if err := s.auth.RevokeSession(ctx, old.UserID, old.ID, meta(ctx)); err != nil && auth.ErrorCode(err) != auth.ENOTFOUND {
			s.log.WarnContext(ctx, "revoking the replaced session", "err", err)
		}
	}
	c := s.sessionCookie(done.SessionToken, done.Session.ExpiresAt)
	http.SetCookie(w, &c)
	seeOther(w, r, s.safeReturnTo(f.Get("return_to")))
}

// loginFailure maps a failed login to a status and the one message the
// page shows; rate limits and lockouts say when to try again.
func (s *Server) loginFailure(w http.ResponseWriter, r *http.Request, err error) (int, string) {
	var de *auth.Error
	errors.As(err, &de)
	switch {
	case auth.ErrorCode(err) == auth.EUNAUTHORIZED || auth.ErrorCode(err) == auth.EINVALID:
		return http.StatusBadRequest, msgBadLogin
	case de != nil && de.Reason == auth.ReasonEmailNotVerified:
		// Only someone who knew the password gets here.
		return http.StatusForbidden, "Verify your email address first: follow the link in the mail we sent you."
	}
	return s.pageError(w, r, "hosted login", err)
}

// waitText says a wait in words: "a minute", "15 minutes", "30 seconds".
func waitText(d time.Duration) string {
	switch {
	case d <= time.Second:
		return "a second"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int((d+time.Second-1)/time.Second))
	case d <= time.Minute:
		return "a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
	default:
		return fmt.Sprintf("%d hours", int((d+time.Hour-1)/time.Hour))
	}
}

func (s *Server) handleRegisterPage(w http.ResponseWriter, r *http.Request) {
	d := s.authPageData("Create your account", r.URL.Query().Get("return_to"))
	d.Script = false // no passkey button here
	s.renderPage(w, http.StatusOK, "register", d)
}

func (s *Server) handleRegisterSubmit(w http.ResponseWriter, r *http.Request) {
	d := s.authPageData("Create your account", "")
	d.Script = false
	if !s.formPost(w, r, "register", d) {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	d = s.authPageData("Create your account", f.Get("return_to"))
	d.Script = false
	d.Email, d.Name = strings.TrimSpace(f.Get("email")), strings.TrimSpace(f.Get("name"))
	if len(d.Email) > 320 || len(d.Name) > 200 {
		d.Email, d.Name = "", ""
	}
	u, err := s.auth.Register(ctx, auth.RegisterInput{Email: f.Get("email"), Password: f.Get("password"), Name: f.Get("name")}, meta(ctx))
	if err != nil {
		status, msg := s.pageError(w, r, "hosted registration", err)
		d.Error = msg
		s.renderPage(w, status, "register", d)
		return
	}
	// A taken address answers exactly like a new one (the owner is told by
	// mail instead), so the page cannot be used to find accounts.
	d.Title, d.Email, d.Name = "Check your email", u.Email, ""
	s.renderPage(w, http.StatusOK, "registered", d)
}

// sentence capitalises a domain message and ends it with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return msgTryAgain
	}
	// By rune: a message may start with a letter outside ASCII (a blocking
	// hook's refusal, SPEC §16), and may end with its own punctuation.
	first, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(first)) + msg[n:]
	if !strings.ContainsAny(msg[len(msg)-1:], ".!?") && !strings.HasSuffix(msg, "…") {
		msg += "."
	}
	return msg
}

func (s *Server) handleLogoutPage(w http.ResponseWriter, r *http.Request) {
	_, u, ok := s.pageSession(w, r)
	if !ok {
		return
	}
	s.renderPage(w, http.StatusOK, "logout", pageData{Title: "Sign out", Email: u.Email})
}

// handleLogoutSubmit ends the browser's session and clears its cookie. It
// is a POST checked for cross-origin submission, so no other site can
// sign the user out.
func (s *Server) handleLogoutSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.formPost(w, r, "logout", pageData{Title: "Sign out"}) {
		return
	}
	s.endSession(w, r)
	seeOther(w, r, "/login?done=signed-out")
}

// endSession revokes the current session (when there is one) and clears
// the cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if cs := currentSession(ctx); cs != nil {
		if err := s.auth.RevokeSession(ctx, cs.UserID, cs.ID, meta(ctx)); err != nil && auth.ErrorCode(err) != auth.ENOTFOUND {
			s.log.ErrorContext(ctx, "hosted logout", "err", err, "request_id", requestID(ctx))
		}
	}
	c := s.clearedSessionCookie()
	http.SetCookie(w, &c)
}
