package server

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

// accountView is everything the account page shows.
type accountView struct {
	Email, Name   string
	EmailVerified bool
	HasPassword   bool

	Sessions []sessionRow

	PasskeysEnabled bool
	Passkeys        []*auth.Passkey

	APIKeys    []*auth.APIKey
	Scopes     []scopeOption // scopes a new key may carry
	Expiries   []expiryOption
	NewKey     string // the key just created, shown this once
	NewKeyName string
	KeyName    string // echoed back when creating a key failed

	Providers []providerRow

	// Applications the user granted access (SPEC §14).
	Consents []consentRow

	// Two-factor (SPEC §13).
	TOTP             *auth.TOTPAuthenticator
	Recovery         *auth.RecoveryCodeSet
	Enrol            *totpEnrolView // a pending enrolment to confirm, shown with its QR
	NewRecoveryCodes []string       // shown this once
	StepUp           bool           // an action needs the step-up form

	// AdminConsole: the account is an administrator's and /admin is
	// served to this client (SPEC §17): the page links to it.
	AdminConsole bool
}

type consentRow struct {
	ClientID, Name string
	Scopes         []string
	CreatedAt      time.Time
}

type totpEnrolView struct {
	ID, Secret string
	QR         template.HTML // inline SVG we generated (qrSVG)
}

type sessionRow struct {
	*auth.Session
	Current bool
}

type scopeOption struct {
	Name, Description string
	Checked           bool
}

type expiryOption struct {
	Value, Label string
	Selected     bool
}

// providerRow is a configured provider (or one no longer configured that
// an identity still names) with the account's identities there.
type providerRow struct {
	ID, Name   string
	LinkURL    string // empty when the provider is no longer configured
	Identities []*auth.Identity
}

// pageSession returns the browser's session and account. Without one it
// redirects to the login page, which comes back here afterwards. Only a
// session cookie counts: the pages are for browsers.
func (s *Server) pageSession(w http.ResponseWriter, r *http.Request) (*auth.Session, *auth.User, bool) {
	res, _ := r.Context().Value(keyPrincipal).(*authResult)
	if res == nil || res.session == nil || res.user == nil {
		seeOther(w, r, loginURL("/account"))
		return nil, nil, false
	}
	return res.session, res.user, true
}

func (s *Server) handleAccountPage(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.pageSession(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	d := pageData{Notice: doneMessages[q.Get("done")]}
	if q.Get("method") == "passkey" {
		d.Error, d.Section = msgNoPasskeyJ, "passkeys"
	}
	var edit func(*accountView)
	if q.Get("step-up") != "" {
		// The passkey button met a step-up answer: show the form.
		edit = func(v *accountView) { v.StepUp = true }
	}
	s.renderAccount(w, r, http.StatusOK, sess, u, d, edit)
}

// renderAccount shows the account page with d's message; edit adjusts the
// view (a new key to show, a form value to echo).
func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, sess *auth.Session, u *auth.User, d pageData, edit func(*accountView)) {
	ctx := r.Context()
	v, err := s.accountView(ctx, sess, u)
	if err != nil {
		st := s.failure(ctx, "account page", err, w.Header())
		s.renderPage(w, st, "error", pageData{Title: "Your account", Error: msgTryAgain})
		return
	}
	if edit != nil {
		edit(v)
	}
	d.Title, d.Wide, d.SignedIn, d.Account = "Your account", true, u.Email, v
	d.Script = v.PasskeysEnabled
	s.renderPage(w, status, "account", d)
}

func (s *Server) accountView(ctx context.Context, sess *auth.Session, u *auth.User) (*accountView, error) {
	v := &accountView{Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerified, HasPassword: u.PasswordHash != ""}
	v.AdminConsole = s.cfg.AdminConsole && u.HasRole("admin") && s.adminReachable(ctx)
	// The middleware reads the account without its hash on some stores;
	// ask again when it is not there.
	if !v.HasPassword {
		if full, err := s.auth.User(ctx, u.ID); err == nil {
			v.HasPassword = full.PasswordHash != ""
		}
	}
	list, err := s.auth.ListSessions(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, x := range list {
		row := sessionRow{Session: x, Current: x.ID == sess.ID}
		if row.Current {
			v.Sessions = append([]sessionRow{row}, v.Sessions...)
		} else {
			v.Sessions = append(v.Sessions, row)
		}
	}
	if v.PasskeysEnabled = s.passkeysEnabled(); v.PasskeysEnabled {
		if v.Passkeys, err = s.auth.ListPasskeys(ctx, u.ID); err != nil {
			return nil, err
		}
	}
	grants, err := s.auth.Consents(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range grants {
		v.Consents = append(v.Consents, consentRow{ClientID: c.ClientID, Name: c.ClientName, Scopes: c.Scopes, CreatedAt: c.CreatedAt})
	}
	st, err := s.auth.MFAStatus(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	v.TOTP, v.Recovery = st.TOTP, st.Recovery
	if v.TOTP != nil && v.TOTP.ConfirmedAt != nil {
		v.TOTP.CreatedAt = *v.TOTP.ConfirmedAt
	}
	if v.APIKeys, err = s.auth.ListAPIKeys(ctx, u.ID); err != nil {
		return nil, err
	}
	for _, sc := range s.auth.KeyScopes(u) {
		v.Scopes = append(v.Scopes, scopeOption{Name: sc, Description: s.cfg.Scopes[sc], Checked: sc == "read"})
	}
	v.Expiries = []expiryOption{{"30", "In 30 days", false}, {"90", "In 90 days", true}, {"365", "In a year", false}, {"", "Never", false}}
	ids, err := s.auth.ListIdentities(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, p := range s.oidc.List() {
		row := providerRow{ID: p.ID, Name: p.Name, LinkURL: "/v1/oidc/" + url.PathEscape(p.ID) + "/link?return_to=/account"}
		for _, x := range ids {
			if x.Provider == p.ID {
				row.Identities = append(row.Identities, x)
			}
		}
		seen[p.ID] = true
		v.Providers = append(v.Providers, row)
	}
	for _, x := range ids {
		if !seen[x.Provider] {
			v.Providers = append(v.Providers, providerRow{ID: x.Provider, Name: x.Provider, Identities: []*auth.Identity{x}})
		}
	}
	return v, nil
}

// accountPost starts every account form handler: the browser must be
// signed in, the form must come from this origin (CSRF), and it must parse.
func (s *Server) accountPost(w http.ResponseWriter, r *http.Request) (*auth.Session, *auth.User, bool) {
	if err := s.csrf.Check(r); err != nil {
		s.renderPage(w, http.StatusForbidden, "error", pageData{Title: "Your account", Error: msgCrossSite})
		return nil, nil, false
	}
	sess, u, ok := s.pageSession(w, r)
	if !ok {
		return nil, nil, false
	}
	if err := r.ParseForm(); err != nil {
		s.renderAccount(w, r, http.StatusBadRequest, sess, u, pageData{Error: msgBadForm}, nil)
		return nil, nil, false
	}
	return sess, u, true
}

// accountDone redirects back to the account page with a message.
func accountDone(w http.ResponseWriter, r *http.Request, code, section string) {
	seeOther(w, r, "/account?done="+code+"#"+section)
}

// accountFail shows the account page again with the error next to the
// form (section) that failed.
func (s *Server) accountFail(w http.ResponseWriter, r *http.Request, sess *auth.Session, u *auth.User, section string, err error, edit func(*accountView)) {
	if auth.IsStepUpRequired(err) {
		// Ask to confirm it is you, next to the two-factor section's form.
		prev := edit
		edit = func(v *accountView) {
			if prev != nil {
				prev(v)
			}
			v.StepUp = true
		}
		s.renderAccount(w, r, http.StatusUnauthorized, sess, u, pageData{Error: msgStepUp, Section: "two-factor"}, edit)
		return
	}
	status, msg := s.pageError(w, r, "account page: "+section, err)
	s.renderAccount(w, r, status, sess, u, pageData{Error: msg, Section: section}, edit)
}

func (s *Server) handleAccountRevokeSession(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if id == sess.ID {
		// Ending this very session is signing out.
		s.endSession(w, r)
		seeOther(w, r, "/login?done=signed-out")
		return
	}
	if err := s.auth.RevokeSession(r.Context(), u.ID, id, meta(r.Context())); err != nil {
		s.accountFail(w, r, sess, u, "sessions", err, nil)
		return
	}
	accountDone(w, r, "session-revoked", "sessions")
}

// handleAccountCreateKey creates an API key and shows it on the page it
// answers with (not after a redirect): the secret is shown this once and
// never stored, and the page is sent with Cache-Control: no-store.
func (s *Server) handleAccountCreateKey(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	in := auth.CreateAPIKeyInput{Name: f.Get("name"), Scopes: f["scope"]}
	echo := func(v *accountView) {
		v.KeyName = f.Get("name")
		if len(v.KeyName) > 200 {
			v.KeyName = ""
		}
		for i := range v.Scopes {
			v.Scopes[i].Checked = slices.Contains(in.Scopes, v.Scopes[i].Name)
		}
		for i := range v.Expiries {
			v.Expiries[i].Selected = v.Expiries[i].Value == f.Get("expires")
		}
	}
	switch days := f.Get("expires"); days {
	case "":
	case "30", "90", "365":
		n, _ := strconv.Atoi(days)
		t := time.Now().Add(time.Duration(n) * 24 * time.Hour).UTC().Truncate(time.Second)
		in.ExpiresAt = &t
	default:
		s.accountFail(w, r, sess, u, "api-keys", &auth.Error{Code: auth.EINVALID, Message: "choose when the key expires"}, echo)
		return
	}
	if len(in.Scopes) == 0 {
		s.accountFail(w, r, sess, u, "api-keys", &auth.Error{Code: auth.EINVALID, Message: "choose at least one scope"}, echo)
		return
	}
	k, secret, err := s.auth.CreateAPIKey(ctx, s.auth.SessionPrincipal(sess, u), u, in, meta(ctx))
	if err != nil {
		s.accountFail(w, r, sess, u, "api-keys", err, echo)
		return
	}
	s.renderAccount(w, r, http.StatusOK, sess, u, pageData{Notice: "API key “" + k.Name + "” created. Copy it now: it is shown only once."},
		func(v *accountView) { v.NewKey, v.NewKeyName = secret, k.Name })
}

// when formats a time for the pages ("3 Mar 2026"), in UTC.
func when(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return ""
	}
	return t.UTC().Format("2 Jan 2006")
}

// ago says how long ago a time was, in words ("5 minutes ago").
func ago(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < 2*time.Minute:
		return "a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d/time.Minute))
	case d < 2*time.Hour:
		return "an hour ago"
	case d < 24*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d/time.Hour))
	case d < 48*time.Hour:
		return "yesterday"
	case d < 30*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
	}
	return "on " + when(t)
}

func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil || t.IsZero() {
			return time.Time{}, false
		}
		return *t, true
	}
	return time.Time{}, false
}

// describeDevice names the browser and system of a User-Agent for the
// sessions list ("Chrome on macOS"); good enough to recognise one's own
// devices, not a fingerprint.
func describeDevice(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	has := func(s string) bool { return strings.Contains(ua, s) }
	browser := ""
	switch {
	case has("Edg/") || has("EdgA/") || has("EdgiOS/"):
		browser = "Edge"
	case has("OPR/"):
		browser = "Opera"
	case has("Firefox/") || has("FxiOS/"):
		browser = "Firefox"
	case has("HeadlessChrome/"):
		browser = "Headless Chrome"
	case has("Chrome/") || has("CriOS/") || has("Chromium/"):
		browser = "Chrome"
	case has("Safari/") && has("Version/"):
		browser = "Safari"
	case strings.HasPrefix(ua, "curl/"):
		return "curl"
	case strings.HasPrefix(ua, "Go-http-client/"):
		return "Go HTTP client"
	}
	system := ""
	switch {
	case has("iPhone"):
		system = "iPhone"
	case has("iPad"):
		system = "iPad"
	case has("Android"):
		system = "Android"
	case has("Windows"):
		system = "Windows"
	case has("CrOS"):
		system = "ChromeOS"
	case has("Macintosh") || has("Mac OS X"):
		system = "macOS"
	case has("Linux"):
		system = "Linux"
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "A browser on " + system
	}
	if len(ua) > 40 {
		ua = ua[:40] + "…"
	}
	return ua
}

// accountAction is the shape of most account forms: check the session and
// the origin, do one thing, then redirect back to the section with a
// notice (or re-render it with the error).
func (s *Server) accountAction(section, done string, act func(r *http.Request, sess *auth.Session, u *auth.User) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, u, ok := s.accountPost(w, r)
		if !ok {
			return
		}
		if err := act(r, sess, u); err != nil {
			s.accountFail(w, r, sess, u, section, err, nil)
			return
		}
		accountDone(w, r, done, section)
	}
}

func (s *Server) handleAccountProfile() http.HandlerFunc {
	return s.accountAction("profile", "profile", func(r *http.Request, _ *auth.Session, u *auth.User) error {
		_, err := s.auth.UpdateName(r.Context(), u.ID, r.PostForm.Get("name"), meta(r.Context()))
		return err
	})
}

// handleAccountPassword changes the password; meta carries this session's
// id, so it stays signed in while every other session of the account ends.
func (s *Server) handleAccountPassword() http.HandlerFunc {
	return s.accountAction("password", "password", func(r *http.Request, sess *auth.Session, u *auth.User) error {
		f := r.PostForm
		return s.auth.ChangePassword(r.Context(), s.auth.SessionPrincipal(sess, u), f.Get("current_password"), f.Get("new_password"), meta(r.Context()))
	})
}

func (s *Server) handleAccountResend() http.HandlerFunc {
	return s.accountAction("profile", "verify-sent", func(r *http.Request, _ *auth.Session, u *auth.User) error {
		return s.auth.ResendVerification(r.Context(), u.ID, meta(r.Context()))
	})
}

func (s *Server) handleAccountRevokeOthers() http.HandlerFunc {
	return s.accountAction("sessions", "sessions-revoked", func(r *http.Request, sess *auth.Session, u *auth.User) error {
		return s.auth.RevokeOtherSessions(r.Context(), u.ID, sess.ID, meta(r.Context()))
	})
}

func (s *Server) handleAccountRevokeKey() http.HandlerFunc {
	return s.accountAction("api-keys", "key-revoked", func(r *http.Request, sess *auth.Session, u *auth.User) error {
		return s.auth.RevokeAPIKey(r.Context(), s.auth.SessionPrincipal(sess, u), r.PathValue("id"), meta(r.Context()))
	})
}

func (s *Server) handleAccountUnlink() http.HandlerFunc {
	return s.accountAction("linked", "identity-unlinked", func(r *http.Request, _ *auth.Session, u *auth.User) error {
		return s.auth.UnlinkIdentity(r.Context(), u.ID, r.PathValue("id"), meta(r.Context()))
	})
}

func (s *Server) handleAccountRevokeConsent() http.HandlerFunc {
	return s.accountAction("consents", "consent-revoked", func(r *http.Request, _ *auth.Session, u *auth.User) error {
		return s.auth.RevokeConsent(r.Context(), u.ID, r.PathValue("client_id"), meta(r.Context()))
	})
}
