package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/danielgtaylor/huma/v2"
	"golang.org/x/oauth2"

	"gatehouse/internal/auth"
	"gatehouse/internal/oidc"
)

// oidcFlow is the server-side state of one social login, stored as a
// single-use challenge under the hash of its state parameter.
type oidcFlow struct {
	Provider string `json:"p"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	LinkUser string `json:"l,omitempty"`
	// LinkSession is the session that started a link flow: the callback
	// must come with that same live session, or a flow held across a
	// reclaim, password reset or sign-out could still attach an identity.
	LinkSession string `json:"s,omitempty"`
	Binding     string `json:"b"` // hash of the browser-binding cookie
}

const (
	oidcFlowTTL   = 10 * time.Minute
	bindingCookie = "gatehouse_oidc"
)

func random256() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// safeReturnTo accepts a relative path or a URL on an allowed origin (the
// public URL's or a configured CORS origin) and anything else becomes the
// default: no open redirect through odd encodings (//host, /\host,
// backslashes, control characters, userinfo, other schemes).
func (s *Server) safeReturnTo(raw string) string {
	const def = "/account"
	if raw == "" || len(raw) > 2048 {
		return def
	}
	for _, r := range raw {
		if r == '\\' || unicode.IsControl(r) || unicode.IsSpace(r) {
			return def
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return def
	}
	if strings.HasPrefix(raw, "/") {
		if strings.HasPrefix(raw, "//") || u.Scheme != "" || u.Host != "" {
			return def
		}
		return raw
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return def
	}
	o := strings.ToLower(u.Scheme + "://" + u.Host)
	if o == strings.ToLower(origin(s.cfg.PublicURL)) || s.cors[o] {
		return u.String()
	}
	return def
}

// oidcFail shows one generic error page: a failed callback creates no
// session and tells an attacker nothing about why.
func (s *Server) oidcFail(w http.ResponseWriter, r *http.Request, provider, reason string, err error, msg string) {
	s.log.WarnContext(r.Context(), "social login failed", "provider", provider, "reason", reason, "err", err, "request_id", requestID(r.Context()))
	s.metrics.OIDC(provider, "failed")
	if msg == "" {
		msg = "Signing in with this provider did not work. Please try again."
	}
	s.renderPage(w, http.StatusBadRequest, "error", pageData{Title: "Sign-in failed", Error: msg})
}

func (s *Server) handleOIDCLogin(w http.ResponseWriter, r *http.Request) { s.startOIDC(w, r, false) }
func (s *Server) handleOIDCLink(w http.ResponseWriter, r *http.Request)  { s.startOIDC(w, r, true) }

// startOIDC redirects the browser to the provider with state, nonce and a
// PKCE S256 challenge, all new per login, bound to this browser by a
// cookie and kept server-side (single use, ten minutes).
func (s *Server) startOIDC(w http.ResponseWriter, r *http.Request, link bool) {
	id := r.PathValue("provider")
	ctx := r.Context()
	p, err := s.oidc.Get(id)
	switch {
	case errors.Is(err, oidc.ErrUnknown):
		writeProblem(w, http.StatusNotFound, "no such identity provider")
		return
	case err != nil:
		w.Header().Set("Retry-After", "10")
		writeProblem(w, http.StatusServiceUnavailable, "the identity provider is not reachable yet; try again shortly")
		return
	}
	if err := s.auth.LimitIP(ctx, "oidc_login", meta(ctx)); err != nil {
		s.writeDomainProblem(w, ctx, err)
		return
	}
	prompt := r.URL.Query().Get("prompt")
	switch prompt {
	case "", "login", "select_account":
	default:
		writeProblem(w, http.StatusBadRequest, "prompt may be login or select_account")
		return
	}
	f := oidcFlow{Provider: id, Nonce: random256(), Verifier: oauth2.GenerateVerifier(), ReturnTo: s.safeReturnTo(r.URL.Query().Get("return_to"))}
	if link {
		// Linking attaches the result to the signed-in account: it needs
		// a session, started from our own pages.
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			writeProblem(w, http.StatusForbidden, "cross-origin request refused (CSRF protection)")
			return
		}
		cs := currentSession(ctx)
		p, _ := require(ctx)
		if cs == nil || p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			writeProblem(w, http.StatusUnauthorized, "sign in first: linking needs a session")
			return
		}
		if err := s.auth.CanAddSignInMethod(ctx, p); err != nil {
			s.writeDomainProblem(w, ctx, err)
			return
		}
		f.LinkUser, f.LinkSession = cs.UserID, cs.ID
	}
	state, binding := random256(), random256()
	f.Binding = auth.HashToken(binding)
	b, _ := json.Marshal(f)
	if err := s.auth.PutChallenge(ctx, "oidc:"+auth.HashToken(state), b, oidcFlowTTL); err != nil {
		s.writeDomainProblem(w, ctx, err)
		return
	}
	http.SetCookie(w, s.flowCookie(bindingCookie, "/v1/oidc/", binding, int(oidcFlowTTL/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.AuthCodeURL(state, f.Nonce, f.Verifier, prompt), http.StatusFound)
}

// handleOIDCCallback finishes a social login: the state must name a live
// flow of this provider started by this browser; the code is exchanged
// with the PKCE verifier; the ID token is verified (signature, issuer,
// audience, expiry, nonce); then the domain decides the account.
func (s *Server) handleOIDCCallback(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("provider")
	ctx := r.Context()
	q := r.URL.Query()
	if err := s.auth.LimitIP(ctx, "oidc_callback", meta(ctx)); err != nil {
		s.oidcFail(w, r, id, "rate_limited", err, "Too many attempts. Wait a minute and try again.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.oidcFail(w, r, id, "provider_error", errors.New(e), "")
		return
	}
	state, code := q.Get("state"), q.Get("code")
	if state == "" || code == "" || len(state) > 512 || len(code) > 4096 {
		s.oidcFail(w, r, id, "missing_parameters", nil, "")
		return
	}
	raw, err := s.auth.TakeChallenge(ctx, "oidc:"+auth.HashToken(state))
	if err != nil {
		s.oidcFail(w, r, id, "unknown_state", err, "")
		return
	}
	var f oidcFlow
	if err := json.Unmarshal(raw, &f); err != nil {
		s.oidcFail(w, r, id, "bad_state", err, "")
		return
	}
	ck, err := r.Cookie(s.flowCookieName(bindingCookie))
	if err != nil || subtle.ConstantTimeCompare([]byte(auth.HashToken(ck.Value)), []byte(f.Binding)) != 1 {
		s.oidcFail(w, r, id, "browser_mismatch", err, "")
		return
	}
	// The flow must come back through the provider it went to (mix-up).
	if f.Provider != id {
		s.oidcFail(w, r, id, "provider_mismatch", nil, "")
		return
	}
	// A link flow attaches the identity to the account of the session that
	// started it: that session must still be live and presented here.
	if f.LinkUser != "" {
		if cs := currentSession(ctx); cs == nil || cs.ID != f.LinkSession || cs.UserID != f.LinkUser {
			s.oidcFail(w, r, id, "link_session_gone", nil, "")
			return
		}
	}
	p, err := s.oidc.Get(id)
	if err != nil {
		s.oidcFail(w, r, id, "provider_unavailable", err, "")
		return
	}
	xctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	ident, err := p.Exchange(xctx, code, f.Verifier, f.Nonce)
	cancel()
	if err != nil {
		s.oidcFail(w, r, id, "exchange", err, "")
		return
	}
	ext := auth.ExternalIdentity{Provider: id, Subject: ident.Subject, Email: ident.Email, EmailVerified: ident.EmailVerified, Name: ident.Name}
	var done *auth.Completion
	if f.LinkUser != "" {
		_, err = s.auth.ExternalSignIn(ctx, ext, f.LinkUser, meta(ctx))
	} else {
		var a *auth.Authentication
		if a, err = s.auth.ExternalAuthentication(ctx, ext, auth.FinishSession, meta(ctx)); err == nil {
			done, err = s.auth.Complete(ctx, a)
		}
	}
	if err != nil && s.toSecondStep(w, r, err, f.ReturnTo) {
		http.SetCookie(w, s.flowCookie(bindingCookie, "/v1/oidc/", "", -1))
		s.metrics.OIDC(id, "second_factor")
		return
	}
	if err != nil {
		msg := ""
		var de *auth.Error
		if errors.As(err, &de) && (de.Code == auth.ECONFLICT || de == auth.ErrNoEmail || de.Code == auth.EFORBIDDEN) {
			msg = de.Message
		}
		s.oidcFail(w, r, id, "account", err, msg)
		return
	}
	http.SetCookie(w, s.flowCookie(bindingCookie, "/v1/oidc/", "", -1))
	if done != nil {
		c := s.sessionCookie(done.SessionToken, done.Session.ExpiresAt)
		http.SetCookie(w, &c)
	}
	s.metrics.OIDC(id, "succeeded")
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, f.ReturnTo, http.StatusSeeOther)
}

// IdentityBody is a linked provider account.
type IdentityBody struct {
	ID        string    `json:"id"`
	Provider  string    `json:"provider"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

type identitiesOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Identities []IdentityBody `json:"identities"`
	}
}

type identityIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

func (s *Server) registerIdentityRoutes(api huma.API) {
	register(s, api, huma.Operation{
		OperationID: "list-identities", Method: http.MethodGet, Path: "/v1/me/identities", Tags: []string{"social login"},
		Summary: "Your linked identity providers", Security: secRead, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*identitiesOutput, error) {
		p, err := require(ctx, "read")
		if err != nil {
			return nil, err
		}
		ids, err := s.auth.ListIdentities(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		out := &identitiesOutput{CacheControl: "no-store"}
		out.Body.Identities = make([]IdentityBody, 0, len(ids))
		for _, x := range ids {
			out.Body.Identities = append(out.Body.Identities, IdentityBody{ID: x.ID, Provider: x.Provider, Email: x.Email, CreatedAt: x.CreatedAt})
		}
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "unlink-identity", Method: http.MethodDelete, Path: "/v1/me/identities/{id}", Tags: []string{"social login"},
		Summary: "Unlink an identity provider", Description: "409 when it is the account's last way to sign in.",
		Security: secWrite, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *identityIDInput) (*struct{}, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		if err := s.auth.UnlinkIdentity(ctx, p.UserID, in.ID, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})
}
