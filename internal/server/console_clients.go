package server

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

// The console's OAuth clients (SPEC §14, §17): list, view, register (the
// secret shown once), rotate a secret (shown once), delete. Clients of the
// configuration file are read-only here, as over the API.

func (s *Server) registerConsoleClients(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/clients", s.handleConsoleClients)
	mux.HandleFunc("POST /admin/clients", s.handleConsoleClientCreate)
	mux.HandleFunc("GET /admin/clients/{id}", s.handleConsoleClient)
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

// clientRegForm is the registration form's values.
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

func (s *Server) handleConsoleClientCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleWrite(w, r, "/admin/clients")
	if !ok {
		return
	}
	p := r.PostForm
	f := clientRegForm{Name: strings.TrimSpace(p.Get("name")), Type: p.Get("type"), RedirectURIs: p.Get("redirect_uris"),
		PostLogoutRedirectURIs: p.Get("post_logout_redirect_uris"), Scopes: p.Get("scopes"), AuthMethod: p.Get("token_endpoint_auth_method"),
		IDTokenAlg: p.Get("id_token_alg"), LogoURL: strings.TrimSpace(p.Get("logo_url")),
		GrantCode: p.Has("grant_authorization_code"), GrantRefresh: p.Has("grant_refresh_token"),
		GrantClientCredentials: p.Has("grant_client_credentials"), FirstParty: p.Has("first_party"),
		RequirePKCE: p.Has("require_pkce"), IDTokenClaims: p.Has("id_token_claims")}
	in := auth.ClientInput{Name: f.Name, Type: f.Type, RedirectURIs: splitFormList(f.RedirectURIs),
		PostLogoutRedirectURIs: splitFormList(f.PostLogoutRedirectURIs), Scopes: splitFormList(f.Scopes), FirstParty: f.FirstParty,
		TokenEndpointAuthMethod: f.AuthMethod, IDTokenAlg: f.IDTokenAlg, IDTokenClaims: f.IDTokenClaims, LogoURL: f.LogoURL}
	for _, g := range []struct {
		on   bool
		name string
	}{{f.GrantCode, auth.GrantAuthorizationCode}, {f.GrantRefresh, auth.GrantRefreshToken}, {f.GrantClientCredentials, auth.GrantClientCredentials}} {
		if g.on {
			in.GrantTypes = append(in.GrantTypes, g.name)
		}
	}
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
	v := clientPageView{C: NewClientBody(cl), Created: consoleTime(cl.CreatedAt), Updated: consoleTime(cl.UpdatedAt),
		Secret: secret, SecretNote: note, Confirm: confirm}
	if t := cl.PreviousSecretExpiresAt; t != nil && t.After(time.Now()) {
		v.PreviousSecretExpiresAt = consoleTime(*t)
	}
	title := cl.Name
	if confirm {
		title = "Delete " + cl.Name + "?"
	}
	s.renderConsole(w, status, "client", c, consoleData{Title: title, Nav: "clients", Notice: notice, Data: v})
}

// consoleSectionError answers a console request whose domain call failed:
// the page the translator chooses, with the section's menu entry.
func (s *Server) consoleSectionError(w http.ResponseWriter, r *http.Request, c *consoleCaller, nav, where string, err error) {
	st, msg := s.pageError(w, r, where, err)
	s.renderConsole(w, st, "message", c, consoleData{Title: "Admin console", Nav: nav, Error: msg})
}

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

func (s *Server) handleConsoleClientRotate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.consoleWrite(w, r, "/admin/clients/"+url.PathEscape(id))
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
	c, ok := s.consoleWrite(w, r, "/admin/clients/"+url.PathEscape(id)+"/delete")
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
