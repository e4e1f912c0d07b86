package server

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

// The console's Users section (SPEC §17): the account list (search box,
// filters, keyset pages under a signed cursor) and one account's page with
// what is attached to it and the administrator's actions. Every action is
// a form post through consoleWrite (step-up) calling the auth.Service
// method the admin API calls, with consoleMeta (audit via=console, actor);
// the ones that end access or remove factors ask first on a page of their
// own (GET shows the question, POST to the same path acts).

func (s *Server) registerConsoleUsers(mux *http.ServeMux) {
	// Literal patterns, one per action (the CSRF test reads them from
	// this source); each action's handler reads it from the path's last
	// segment (acctActions).
	mux.HandleFunc("GET /admin/users", s.handleConsoleUsers)
	mux.HandleFunc("GET /admin/users/{id}", s.handleConsoleUser)
	mux.HandleFunc("POST /admin/users/{id}/roles", s.handleConsoleUserAction)
	mux.HandleFunc("GET /admin/users/{id}/disable", s.handleConsoleUserConfirm)
	mux.HandleFunc("POST /admin/users/{id}/disable", s.handleConsoleUserAction)
	mux.HandleFunc("POST /admin/users/{id}/enable", s.handleConsoleUserAction)
	mux.HandleFunc("POST /admin/users/{id}/verify", s.handleConsoleUserAction)
	mux.HandleFunc("POST /admin/users/{id}/reset-link", s.handleConsoleUserAction)
	mux.HandleFunc("POST /admin/users/{id}/unlock", s.handleConsoleUserAction)
	mux.HandleFunc("GET /admin/users/{id}/reset-mfa", s.handleConsoleUserConfirm)
	mux.HandleFunc("POST /admin/users/{id}/reset-mfa", s.handleConsoleUserAction)
	mux.HandleFunc("GET /admin/users/{id}/revoke-all", s.handleConsoleUserConfirm)
	mux.HandleFunc("POST /admin/users/{id}/revoke-all", s.handleConsoleUserAction)
	mux.HandleFunc("POST /admin/users/{id}/sessions/{sid}/revoke", s.handleConsoleUserSessionRevoke)
	mux.HandleFunc("POST /admin/users/{id}/api-keys/{kid}/revoke", s.handleConsoleUserKeyRevoke)
}

// acctPageSize is how many accounts a page of the list shows.
const acctPageSize = 50

// acctListView is the list page.
type acctListView struct {
	// The form's values, shown again.
	Q, Role, Disabled, Verified, MFA string
	Roles                            []string
	Rows                             []acctRow
	// Next and Prev are the pager's links ("" when there is no such page).
	Next, Prev string
	// Filtered says a search or a filter is on (the empty list says so).
	Filtered bool
}

type acctRow struct {
	ID, Email, Name, Roles, Created string
	Verified, MFA, Disabled         bool
}

// acctTriState reads a yes/no/either filter: "" (either), "yes" or "no".
func acctTriState(v string) (*bool, bool) {
	switch v {
	case "":
		return nil, true
	case "yes":
		t := true
		return &t, true
	case "no":
		f := false
		return &f, true
	}
	return nil, false
}

func (s *Server) handleConsoleUsers(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	v := acctListView{Q: q.Get("q"), Role: q.Get("role"), Disabled: q.Get("disabled"), Verified: q.Get("verified"),
		MFA: q.Get("mfa"), Roles: s.auth.Roles().RoleNames()}
	v.Filtered = strings.TrimSpace(v.Q) != "" || v.Role != "" || v.Disabled != "" || v.Verified != "" || v.MFA != ""
	render := func(status int, msg string) {
		s.renderConsole(w, status, "users", c, consoleData{Title: "Users", Nav: "users", Notice: s.consoleNotice(r), Error: msg, Data: v})
	}
	in := auth.UserSearch{Query: v.Q, Role: v.Role}
	var okD, okV, okM bool
	in.Disabled, okD = acctTriState(v.Disabled)
	in.Verified, okV = acctTriState(v.Verified)
	in.MFA, okM = acctTriState(v.MFA)
	if !okD || !okV || !okM {
		render(http.StatusBadRequest, "Choose each filter from its list.")
		return
	}
	cursor := q.Get("cursor")
	if len(cursor) > 512 {
		render(http.StatusBadRequest, "This page link is not valid. Start again from the first page.")
		return
	}
	page, err := s.auth.FindUsers(r.Context(), in, cursor, acctPageSize)
	if err != nil {
		if errors.Is(err, auth.ErrBadCursor) {
			render(http.StatusBadRequest, "This page link is not valid. Start again from the first page.")
			return
		}
		st, msg := s.pageError(w, r, "console users", err)
		render(st, msg)
		return
	}
	for _, u := range page.Users {
		v.Rows = append(v.Rows, acctRow{ID: u.ID, Email: u.Email, Name: u.Name, Roles: strings.Join(u.Roles, ", "),
			Created: u.CreatedAt.UTC().Format("2006-01-02"), Verified: u.EmailVerified, MFA: page.MFA[u.ID], Disabled: u.Disabled})
	}
	link := func(cur string) string {
		if cur == "" {
			return ""
		}
		l := url.Values{}
		for k, x := range map[string]string{"q": v.Q, "role": v.Role, "disabled": v.Disabled, "verified": v.Verified, "mfa": v.MFA} {
			if x != "" {
				l.Set(k, x)
			}
		}
		l.Set("cursor", cur)
		return "/admin/users?" + l.Encode()
	}
	v.Next, v.Prev = link(page.Next), link(page.Prev)
	render(http.StatusOK, "")
}

// acctAction is an administrator's action on an account.
type acctAction struct {
	// Path is the action's path under /admin/users/{id}/.
	Path string
	// Confirm, when set, is the question its confirmation page asks
	// (%s: the email); Explain and Button go with it.
	Confirm, Explain, Button string
}

// acctActions are the posts of the user page.
var acctActions = []acctAction{
	{Path: "roles"},
	{Path: "disable", Confirm: "Disable %s?", Button: "Disable account",
		Explain: "The account can no longer sign in. Its sessions and refresh tokens end now, and its API keys stop working until it is enabled again."},
	{Path: "enable"},
	{Path: "verify"},
	{Path: "reset-link"},
	{Path: "unlock"},
	{Path: "reset-mfa", Confirm: "Reset two-factor authentication of %s?", Button: "Reset two-factor authentication",
		Explain: "This removes the account's authenticator app and recovery codes, signs it out everywhere and emails the user. Their next sign-in is with the password alone, and they can set up a second factor again."},
	{Path: "revoke-all", Confirm: "Sign %s out everywhere?", Button: "Revoke every session and key",
		Explain: "Every session, refresh token and API key of the account ends now. The password and second factors stay: the user can sign in again."},
}

func findAcctAction(path string) (acctAction, bool) {
	i := slices.IndexFunc(acctActions, func(a acctAction) bool { return a.Path == path })
	if i < 0 {
		return acctAction{}, false
	}
	return acctActions[i], true
}

// acctActionOf is the action a request's path names (its last segment).
func acctActionOf(r *http.Request) (acctAction, bool) {
	return findAcctAction(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
}

// acctPath is an account's page.
func acctPath(id string) string { return "/admin/users/" + url.PathEscape(id) }

// acctView is one account's page (or, with Confirm, the question before a
// destructive action).
type acctView struct {
	U *auth.User
	// Self: the administrator is looking at their own account.
	Self                             bool
	Created, Updated                 string
	Roles                            []acctRole
	RoleList                         string
	TOTP                             bool
	TOTPSince                        string
	RecoveryRemaining, RecoveryTotal int
	PasskeyCount                     int
	MFARequired                      bool
	Sessions                         []acctSession
	Passkeys                         []acctItem
	Identities                       []acctItem
	APIKeys                          []acctItem
	Consents                         []acctItem
	Audit                            []acctEvent
	Failures, Threshold              int
	Locked                           bool
	LockedUntil                      string
	// Confirm is set on a confirmation page.
	Confirm *acctConfirm
}

type acctRole struct {
	Name    string
	Checked bool
}

type acctSession struct {
	ID, Device, IP, Level, Started, Active string
}

// acctItem is a line of one of the page's lists.
type acctItem struct {
	ID, Title, Meta string
}

type acctEvent struct {
	Type, At, IP, Details string
}

type acctConfirm struct {
	Action, Question, Explain, Button string
	// Passkeys offers removing passkeys too (reset-mfa).
	Passkeys bool
}

func (s *Server) handleConsoleUser(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	s.renderConsoleUser(w, r, c, http.StatusOK, s.consoleNotice(r), "", nil)
}

func (s *Server) handleConsoleUserConfirm(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	a, _ := acctActionOf(r)
	s.renderConsoleUser(w, r, c, http.StatusOK, "", "", &a)
}

// renderConsoleUser shows the account of the request's path: its page with
// a notice or an error, or the confirmation of action a.
func (s *Server) renderConsoleUser(w http.ResponseWriter, r *http.Request, c *consoleCaller, status int, notice, msg string, a *acctAction) {
	id := r.PathValue("id")
	d, err := s.auth.AdminUserDetail(r.Context(), id)
	if err != nil {
		if auth.ErrorCode(err) == auth.ENOTFOUND {
			s.renderConsole(w, http.StatusNotFound, "message", c, consoleData{Title: "Users", Nav: "users",
				Error: "No account has this id. It may have been deleted."})
			return
		}
		st, m := s.pageError(w, r, "console user", err)
		s.renderConsole(w, st, "message", c, consoleData{Title: "Users", Nav: "users", Error: m})
		return
	}
	u := d.User
	v := acctView{U: u, Self: u.ID == c.User.ID, Created: acctTime(u.CreatedAt), Updated: acctTime(u.UpdatedAt),
		RoleList: strings.Join(u.Roles, ", "), PasskeyCount: d.MFA.Passkeys, MFARequired: d.MFA.Required,
		Failures: d.Lockout.Failures, Threshold: d.Threshold, Locked: d.Locked}
	for _, name := range s.auth.Roles().RoleNames() {
		v.Roles = append(v.Roles, acctRole{Name: name, Checked: u.HasRole(name)})
	}
	if t := d.MFA.TOTP; t != nil {
		v.TOTP = true
		if t.ConfirmedAt != nil {
			v.TOTPSince = acctTime(*t.ConfirmedAt)
		}
	}
	if rc := d.MFA.Recovery; rc != nil {
		v.RecoveryRemaining, v.RecoveryTotal = rc.Remaining, rc.Total
	}
	if d.Locked {
		v.LockedUntil = acctTime(d.Lockout.LockedUntil)
	}
	for _, x := range d.Sessions {
		v.Sessions = append(v.Sessions, acctSession{ID: x.ID, Device: describeDevice(x.UserAgent), IP: x.IP,
			Level: acctLevel(x.ACR), Started: acctTime(x.CreatedAt), Active: ago(x.LastSeenAt)})
	}
	for _, p := range d.Passkeys {
		used := "never used"
		if p.LastUsedAt != nil {
			used = "last used " + acctTime(*p.LastUsedAt)
		}
		v.Passkeys = append(v.Passkeys, acctItem{ID: p.ID, Title: p.Name, Meta: "added " + acctTime(p.CreatedAt) + " · " + used})
	}
	for _, i := range d.Identities {
		meta := "linked " + acctTime(i.CreatedAt)
		if i.Email != "" {
			meta = i.Email + " · " + meta
		}
		v.Identities = append(v.Identities, acctItem{ID: i.ID, Title: i.Provider + " (" + i.Subject + ")", Meta: meta})
	}
	for _, k := range d.APIKeys {
		meta := strings.Join(k.Scopes, ", ") + " · created " + acctTime(k.CreatedAt)
		if k.ExpiresAt != nil {
			meta += " · expires " + acctTime(*k.ExpiresAt)
		}
		if k.LastUsedAt != nil {
			meta += " · used " + acctTime(*k.LastUsedAt)
		} else {
			meta += " · never used"
		}
		v.APIKeys = append(v.APIKeys, acctItem{ID: k.ID, Title: k.Name + " (" + k.Prefix + "…)", Meta: meta})
	}
	for _, g := range d.Consents {
		v.Consents = append(v.Consents, acctItem{ID: g.ClientID, Title: g.ClientName,
			Meta: strings.Join(g.Scopes, ", ") + " · allowed " + acctTime(g.CreatedAt)})
	}
	for _, e := range d.Audit {
		v.Audit = append(v.Audit, acctEvent{Type: e.Type, At: acctTime(e.At), IP: e.IP, Details: compactDetails(e.Details)})
	}
	title := u.Email
	if a != nil {
		v.Confirm = &acctConfirm{Action: a.Path, Question: strings.Replace(a.Confirm, "%s", u.Email, 1), Explain: a.Explain,
			Button: a.Button, Passkeys: a.Path == "reset-mfa" && d.MFA.Passkeys > 0}
		title = v.Confirm.Question
	}
	s.renderConsole(w, status, "user", c, consoleData{Title: title, Nav: "users", Notice: notice, Error: msg, Data: v})
}

// acctTime shows a time to the minute, in UTC.
func acctTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") + " UTC" }

// acctLevel names a sign-in's assurance level.
func acctLevel(acr string) string {
	if acr == auth.ACR2 {
		return "two factors"
	}
	return "one factor"
}

// handleConsoleUserAction runs one of acctActions on the account of the
// path and comes back to its page with a notice.
func (s *Server) handleConsoleUserAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a, _ := acctActionOf(r)
	back := acctPath(id)
	if a.Confirm != "" {
		back += "/" + a.Path // step-up returns to the question
	}
	c, ok := s.consoleWrite(w, r, back)
	if !ok {
		return
	}
	ctx := r.Context()
	m := consoleMeta(ctx, c)
	yes, no := true, false
	var (
		err    error
		notice string
	)
	switch a.Path {
	case "roles":
		roles := []string{}
		for _, x := range r.PostForm["role"] {
			if x != "" && !slices.Contains(roles, x) {
				roles = append(roles, x)
			}
		}
		_, err = s.auth.AdminUpdateUser(ctx, c.User.ID, id, auth.UserPatch{Roles: &roles}, m)
		notice = "Roles saved: " + strings.Join(roles, ", ") + "."
		if len(roles) == 0 {
			notice = "Roles saved: the account has no role now."
		}
	case "disable":
		_, err = s.auth.AdminUpdateUser(ctx, c.User.ID, id, auth.UserPatch{Disabled: &yes}, m)
		notice = "Account disabled. Its sessions and refresh tokens have ended."
	case "enable":
		_, err = s.auth.AdminUpdateUser(ctx, c.User.ID, id, auth.UserPatch{Disabled: &no}, m)
		notice = "Account enabled."
	case "verify":
		_, err = s.auth.AdminUpdateUser(ctx, c.User.ID, id, auth.UserPatch{EmailVerified: &yes}, m)
		notice = "Email address marked as verified."
	case "reset-link":
		err = s.auth.AdminSendPasswordReset(ctx, c.User.ID, id, m)
		notice = "A password reset link is on its way to the account's email address."
	case "unlock":
		err = s.auth.AdminClearLockout(ctx, c.User.ID, id, m)
		notice = "Lockout cleared: the account can sign in again."
	case "reset-mfa":
		err = s.auth.AdminResetMFA(ctx, c.P, id, r.PostForm.Get("passkeys") == "yes", m)
		notice = "Two-factor authentication reset. The user is signed out everywhere and was emailed."
	case "revoke-all":
		err = s.auth.AdminRevokeUser(ctx, c.User.ID, id, m)
		notice = "Every session, refresh token and API key of the account was revoked."
	default:
		s.renderConsole(w, http.StatusNotFound, "message", c, consoleData{Title: "Users", Nav: "users", Error: "There is no such action."})
		return
	}
	if err != nil {
		s.consoleUserActionError(w, r, c, "console user "+a.Path, err)
		return
	}
	s.consoleDone(w, r, acctPath(id), notice)
}

// consoleUserActionError shows the account's page again with why the
// action failed (or a page saying the account is gone).
func (s *Server) consoleUserActionError(w http.ResponseWriter, r *http.Request, c *consoleCaller, where string, err error) {
	st, msg := s.pageError(w, r, where, err)
	if st >= http.StatusInternalServerError {
		s.renderConsole(w, st, "message", c, consoleData{Title: "Users", Nav: "users", Error: msg})
		return
	}
	s.renderConsoleUser(w, r, c, st, "", msg, nil)
}

func (s *Server) handleConsoleUserSessionRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, acctPath(id))
	if !ok {
		return
	}
	ctx := r.Context()
	if err := s.auth.AdminRevokeSession(ctx, c.User.ID, id, r.PathValue("sid"), consoleMeta(ctx, c)); err != nil {
		s.consoleUserActionError(w, r, c, "console revoke session", err)
		return
	}
	s.consoleDone(w, r, acctPath(id), "Session signed out.")
}

func (s *Server) handleConsoleUserKeyRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, acctPath(id))
	if !ok {
		return
	}
	ctx := r.Context()
	if err := s.auth.AdminRevokeAPIKey(ctx, c.User.ID, id, r.PathValue("kid"), consoleMeta(ctx, c)); err != nil {
		s.consoleUserActionError(w, r, c, "console revoke API key", err)
		return
	}
	s.consoleDone(w, r, acctPath(id), "API key revoked.")
}
