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

// The console's OAuth clients (SPEC §14, §17): list, view, register (the
// secret shown once), edit, rotate a secret (shown once), delete. Clients
// of the configuration file are read-only here, as over the API.

func (s *Server) registerConsoleClients(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/clients", s.handleConsoleClients)
	mux.HandleFunc("POST /admin/clients", s.handleConsoleClientCreate)
	mux.HandleFunc("GET /admin/clients/{id}", s.handleConsoleClient)
	mux.HandleFunc("POST /admin/clients/{id}/edit", s.handleConsoleClientEdit)
	mux.HandleFunc("POST /admin/clients/{id}/secret", s.handleConsoleClientRotate)
	mux.HandleFunc("GET /admin/clients/{id}/delete", s.handleConsoleClientDeletePage)
	mux.HandleFunc("POST /admin/clients/{id}/delete", s.handleConsoleClientDelete)
}

// clientListView is the clients page: the list and the registration form.
type clientListView struct {
	Clients []clientListRow
	Form    clientRegForm
	// Open shows the registration form unfolded (after a refused post).
	Open bool
}

type clientListRow struct {
	ID, Name, Type, Created string
	FromConfig              bool
}

// clientRegForm is the registration form's values, and the edit form's
// (whose Type is the client's: it cannot change).
type clientRegForm struct {
	Name, Type, RedirectURIs, PostLogoutRedirectURIs, Scopes string
	AuthMethod, IDTokenAlg, LogoURL                          string
	GrantCode, GrantRefresh, GrantClientCredentials          bool
	FirstParty, RequirePKCE, IDTokenClaims                   bool
}

// newClientRegForm is the form as it first shows: a confidential client of
// the code flow with refresh tokens and PKCE.
func newClientRegForm() clientRegForm {
	return clientRegForm{Type: auth.ClientConfidential, GrantCode: true, GrantRefresh: true, RequirePKCE: true}
}

// clientPageView is one client's page, with its secret when it was just made.
type clientPageView struct {
	C                       ClientBody
	Created, Updated        string
	PreviousSecretExpiresAt string
	// Secret is a secret just made (registration or rotation), shown this
	// once; SecretNote says what happened.
	Secret, SecretNote string
	// Confirm asks whether to delete the client.
	Confirm bool
	// Form is the edit form's values: the client's settings, or what the
	// operator sent when the change was refused (then Open unfolds the
	// form and Invalid names the field at fault, when the domain said).
	Form    clientRegForm
	Open    bool
	Invalid string
}

func (s *Server) handleConsoleClients(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	s.renderConsoleClients(w, r, c, http.StatusOK, "", newClientRegForm(), false)
}

func (s *Server) renderConsoleClients(w http.ResponseWriter, r *http.Request, c *consoleCaller, status int, msg string, f clientRegForm, open bool) {
	cs, err := s.auth.ListClients(r.Context())
	if err != nil {
		s.consoleFailure(w, r, "console clients", err)
		return
	}
	v := clientListView{Form: f, Open: open}
	for _, cl := range cs {
		v.Clients = append(v.Clients, clientListRow{ID: cl.ID, Name: cl.Name, Type: cl.Type, Created: consoleTime(cl.CreatedAt), FromConfig: cl.FromConfig})
	}
	s.renderConsole(w, status, "clients", c, consoleData{Title: "OAuth clients", Nav: "clients", Notice: s.consoleNotice(r), Error: msg, Data: v})
}

// splitFormList splits a textarea or a text field into its entries: one per
// line, or separated by spaces or commas.
func splitFormList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' || r == ' ' || r == '\t' || r == ',' })
}

// clientFormOf reads a posted registration or edit form: a checkbox that
// is absent is off.
func clientFormOf(p url.Values) clientRegForm {
	return clientRegForm{Name: strings.TrimSpace(p.Get("name")), Type: p.Get("type"), RedirectURIs: p.Get("redirect_uris"),
		PostLogoutRedirectURIs: p.Get("post_logout_redirect_uris"), Scopes: p.Get("scopes"), AuthMethod: p.Get("token_endpoint_auth_method"),
		IDTokenAlg: p.Get("id_token_alg"), LogoURL: strings.TrimSpace(p.Get("logo_url")),
		GrantCode: p.Has("grant_authorization_code"), GrantRefresh: p.Has("grant_refresh_token"),
		GrantClientCredentials: p.Has("grant_client_credentials"), FirstParty: p.Has("first_party"),
		RequirePKCE: p.Has("require_pkce"), IDTokenClaims: p.Has("id_token_claims")}
}

// grantTypes are the grant types the form's checkboxes choose.
func (f clientRegForm) grantTypes() []string {
	var out []string
	for _, g := range []struct {
		on   bool
		name string
	}{{f.GrantCode, auth.GrantAuthorizationCode}, {f.GrantRefresh, auth.GrantRefreshToken}, {f.GrantClientCredentials, auth.GrantClientCredentials}} {
		if g.on {
			out = append(out, g.name)
		}
	}
	return out
}

// clientEditFormOf is the edit form as it first shows: the client's
// settings (redirect URIs one per line, scopes separated by spaces).
func clientEditFormOf(cl *auth.Client) clientRegForm {
	return clientRegForm{Name: cl.Name, Type: cl.Type, RedirectURIs: strings.Join(cl.RedirectURIs, "\n"),
		PostLogoutRedirectURIs: strings.Join(cl.PostLogoutRedirectURIs, "\n"), Scopes: strings.Join(cl.Scopes, " "),
		AuthMethod: cl.TokenEndpointAuthMethod, IDTokenAlg: cl.IDTokenAlg, LogoURL: cl.LogoURL,
		GrantCode:              slices.Contains(cl.GrantTypes, auth.GrantAuthorizationCode),
		GrantRefresh:           slices.Contains(cl.GrantTypes, auth.GrantRefreshToken),
		GrantClientCredentials: slices.Contains(cl.GrantTypes, auth.GrantClientCredentials),
		FirstParty:             cl.FirstParty, RequirePKCE: cl.RequirePKCE, IDTokenClaims: cl.IDTokenClaims}
}

func (s *Server) handleConsoleClientCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleWrite(w, r, "/admin/clients")
	if !ok {
		return
	}
	f := clientFormOf(r.PostForm)
	in := auth.ClientInput{Name: f.Name, Type: f.Type, RedirectURIs: splitFormList(f.RedirectURIs),
		PostLogoutRedirectURIs: splitFormList(f.PostLogoutRedirectURIs), Scopes: splitFormList(f.Scopes), FirstParty: f.FirstParty,
		TokenEndpointAuthMethod: f.AuthMethod, IDTokenAlg: f.IDTokenAlg, IDTokenClaims: f.IDTokenClaims, LogoURL: f.LogoURL,
		GrantTypes: f.grantTypes()}
	pkce := f.RequirePKCE
	in.RequirePKCE = &pkce
	ctx := r.Context()
	cl, secret, err := s.auth.CreateClient(ctx, in, consoleMeta(ctx, c), false)
	if err != nil {
		st, msg := s.pageError(w, r, "console create client", err)
		s.renderConsoleClients(w, r, c, st, msg, f, true)
		return
	}
	note := "The client is registered."
	if secret != "" {
		note = "The client is registered. Copy its secret now: it is shown only this once."
	}
	s.renderConsoleClient(w, c, http.StatusOK, cl, secret, note, false, "")
}

// renderConsoleClient shows one client (never a stored secret: only one
// just made, on the answer to the post that made it — no-store, like every
// console page).
func (s *Server) renderConsoleClient(w http.ResponseWriter, c *consoleCaller, status int, cl *auth.Client, secret, note string, confirm bool, notice string) {
	v := clientPageView{Secret: secret, SecretNote: note, Confirm: confirm, Form: clientEditFormOf(cl)}
	s.renderConsoleClientView(w, c, status, cl, v, notice, "")
}

// renderConsoleClientView shows one client with v's own parts (the secret
// just made, the question, the edit form) and a notice or an error.
func (s *Server) renderConsoleClientView(w http.ResponseWriter, c *consoleCaller, status int, cl *auth.Client, v clientPageView, notice, msg string) {
	v.C, v.Created, v.Updated = NewClientBody(cl), consoleTime(cl.CreatedAt), consoleTime(cl.UpdatedAt)
	if t := cl.PreviousSecretExpiresAt; t != nil && t.After(time.Now()) {
		v.PreviousSecretExpiresAt = consoleTime(*t)
	}
	title := cl.Name
	if v.Confirm {
		title = "Delete " + cl.Name + "?"
	}
	s.renderConsole(w, status, "client", c, consoleData{Title: title, Nav: "clients", Notice: notice, Error: msg, Data: v})
}

// consoleSectionError answers a console request whose domain call failed:
// the page the translator chooses, with the section's menu entry.
func (s *Server) consoleSectionError(w http.ResponseWriter, r *http.Request, c *consoleCaller, nav, where string, err error) {
	st, msg := s.pageError(w, r, where, err)
	s.renderConsole(w, st, "message", c, consoleData{Title: "Admin console", Nav: nav, Error: msg})
}

// clientPage is the console page of the client with this id.
func clientPage(id string) string { return "/admin/clients/" + url.PathEscape(id) }

func (s *Server) handleConsoleClient(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	cl, err := s.auth.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		s.consoleSectionError(w, r, c, "clients", "console client", err)
		return
	}
	s.renderConsoleClient(w, c, http.StatusOK, cl, "", "", false, s.consoleNotice(r))
}

// handleConsoleClientEdit saves the edit form: every setting the form
// shows, a checkbox that is absent being off. Only what differs from the
// client's settings goes into the patch, so that the audit event's
// "changed" names what the operator changed. A change the domain refuses
// shows the page again with the reason and what was sent; a client of the
// configuration file is read-only (409).
func (s *Server) handleConsoleClientEdit(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, clientPage(id))
	if !ok {
		return
	}
	ctx := r.Context()
	cl, err := s.auth.Client(ctx, id)
	if err != nil {
		s.consoleSectionError(w, r, c, "clients", "console client", err)
		return
	}
	if cl.FromConfig {
		s.consoleSectionError(w, r, c, "clients", "console edit client", auth.ErrClientFromConfig)
		return
	}
	f := clientFormOf(r.PostForm)
	f.Type = cl.Type
	refuse := func(err error) {
		st, msg := s.pageError(w, r, "console edit client", err)
		v := clientPageView{Form: f, Open: true}
		var de *auth.Error
		if errors.As(err, &de) {
			v.Invalid, _, _ = strings.Cut(de.Field, "[")
		}
		s.renderConsoleClientView(w, c, st, cl, v, "", msg)
	}
	grants := f.grantTypes()
	if len(grants) == 0 {
		// The domain would take none as its defaults: say so instead of
		// saving grant types the operator did not choose.
		refuse(&auth.Error{Code: auth.EINVALID, Field: "grant_types", Message: "choose at least one grant type"})
		return
	}
	var p auth.ClientPatch
	changed := false
	setStr := func(dst **string, v, old string) {
		if v != old {
			*dst, changed = &v, true
		}
	}
	setList := func(dst **[]string, v, old []string) {
		if !slices.Equal(v, old) {
			*dst, changed = &v, true
		}
	}
	setBool := func(dst **bool, v, old bool) {
		if v != old {
			*dst, changed = &v, true
		}
	}
	setStr(&p.Name, f.Name, cl.Name)
	setList(&p.RedirectURIs, splitFormList(f.RedirectURIs), cl.RedirectURIs)
	setList(&p.PostLogoutRedirectURIs, splitFormList(f.PostLogoutRedirectURIs), cl.PostLogoutRedirectURIs)
	setList(&p.GrantTypes, grants, cl.GrantTypes)
	setList(&p.Scopes, splitFormList(f.Scopes), cl.Scopes)
	setBool(&p.FirstParty, f.FirstParty, cl.FirstParty)
	setBool(&p.RequirePKCE, f.RequirePKCE, cl.RequirePKCE)
	setStr(&p.TokenEndpointAuthMethod, f.AuthMethod, cl.TokenEndpointAuthMethod)
	setStr(&p.IDTokenAlg, f.IDTokenAlg, cl.IDTokenAlg)
	setBool(&p.IDTokenClaims, f.IDTokenClaims, cl.IDTokenClaims)
	setStr(&p.LogoURL, f.LogoURL, cl.LogoURL)
	back := clientPage(id)
	if !changed {
		s.consoleDone(w, r, back, "Nothing to save: the settings are as they were.")
		return
	}
	if _, err := s.auth.UpdateClient(ctx, id, p, consoleMeta(ctx, c)); err != nil {
		if auth.ErrorCode(err) == auth.EINVALID {
			refuse(err)
			return
		}
		s.consoleSectionError(w, r, c, "clients", "console edit client", err)
		return
	}
	s.consoleDone(w, r, back, "Client saved.")
}

func (s *Server) handleConsoleClientRotate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, clientPage(id))
	if !ok {
		return
	}
	ctx := r.Context()
	secret, until, err := s.auth.RotateClientSecret(ctx, id, consoleMeta(ctx, c))
	if err != nil {
		s.consoleSectionError(w, r, c, "clients", "console rotate client secret", err)
		return
	}
	cl, err := s.auth.Client(ctx, id)
	if err != nil {
		s.consoleSectionError(w, r, c, "clients", "console client", err)
		return
	}
	s.renderConsoleClient(w, c, http.StatusOK, cl, secret,
		"The client has a new secret. Copy it now: it is shown only this once. The previous secret keeps working until "+consoleTime(until)+".", false, "")
}

func (s *Server) handleConsoleClientDeletePage(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	cl, err := s.auth.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		s.consoleSectionError(w, r, c, "clients", "console client", err)
		return
	}
	if cl.FromConfig {
		s.consoleSectionError(w, r, c, "clients", "console delete client", auth.ErrClientFromConfig)
		return
	}
	s.renderConsoleClient(w, c, http.StatusOK, cl, "", "", true, "")
}

func (s *Server) handleConsoleClientDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, clientPage(id)+"/delete")
	if !ok {
		return
	}
	ctx := r.Context()
	if err := s.auth.DeleteClient(ctx, id, consoleMeta(ctx, c)); err != nil {
		s.consoleSectionError(w, r, c, "clients", "console delete client", err)
		return
	}
	s.consoleDone(w, r, "/admin/clients", "The client is deleted; its consents and codes are gone and its refresh tokens revoked.")
}
