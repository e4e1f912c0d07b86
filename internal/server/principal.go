package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// authResult is what the authenticate middleware found on a request.
type authResult struct {
	p       *auth.Principal
	user    *auth.User    // read fresh when the credential is a session
	session *auth.Session // the cookie session, when that is the credential
	err     error         // credentials were presented but are invalid
}

// unsafeMethod reports a state-changing method (RFC 9110 §9.2.1).
func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// bearerToken extracts an RFC 6750 bearer token from the Authorization
// header. Tokens in the query string are never accepted.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(h[7:]), true
}

// authenticate resolves the credentials of a request, when it carries any,
// into a principal in the context. Handlers decide whether one is required.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r)
		if key := r.Header.Get("X-API-Key"); key != "" || (ok && auth.IsAPIKey(tok)) {
			if key == "" {
				key = tok
			}
			s.serveWithAPIKey(w, r, next, key)
			return
		}
		if ok && strings.HasPrefix(tok, auth.MFATokenPrefix) {
			// An enrolment-only mfa_token (SPEC §13) is a credential on the
			// enrolment routes and nowhere else.
			res := &authResult{err: auth.ErrInvalidCredentials}
			if enrolmentRoute(r) {
				p, err := s.auth.EnrolmentPrincipal(r.Context(), tok)
				if err != nil && auth.ErrorCode(err) != auth.EUNAUTHORIZED {
					s.writeFailure(w, r.Context(), "mfa token lookup", err)
					return
				}
				if err == nil {
					res = &authResult{p: p}
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyPrincipal, res)))
			return
		}
		if ok {
			// Bearer credentials are not sent by browsers on their own, so
			// they are exempt from the cross-origin check.
			res := &authResult{}
			c, err := s.verifyAccess(tok)
			if err != nil {
				res.err = err
			} else {
				res.p = &auth.Principal{UserID: c.Subject, Kind: auth.KindAccessToken, Scopes: c.Scopes, Roles: c.Roles, ClientID: c.ClientID, ExpiresAt: c.ExpiresAt,
					ACR: c.ACR, AMR: c.AMR, AuthTime: c.AuthTime, SID: c.SID}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyPrincipal, res)))
			return
		}
		ck, err := r.Cookie(s.cookieName)
		if err != nil || ck.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		// A browser attaches the cookie to cross-site requests too: every
		// state-changing request that carries it must come from our own
		// origin (Fetch metadata / Origin, as http.CrossOriginProtection
		// checks), or it could be a forged request (CSRF).
		if unsafeMethod(r.Method) {
			if err := s.csrf.Check(r); err != nil {
				writeProblem(w, http.StatusForbidden, "cross-origin request refused (CSRF protection)")
				return
			}
		}
		res := &authResult{}
		sess, u, err := s.auth.AuthenticateSession(r.Context(), ck.Value)
		if err != nil {
			res.err = err
			if auth.ErrorCode(err) != auth.EUNAUTHORIZED {
				// The store failed: not the caller's fault.
				s.writeFailure(w, r.Context(), "session lookup", err)
				return
			}
		} else {
			res.user, res.session = u, sess
			res.p = s.auth.SessionPrincipal(sess, u)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyPrincipal, res)))
	})
}

// enrolmentRoute reports the routes an enrolment-only mfa_token may call:
// setting up TOTP or a passkey.
func enrolmentRoute(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	switch r.URL.Path {
	case "/v1/mfa/totp", "/v1/mfa/totp/confirm", "/v1/passkeys/register/begin", "/v1/passkeys/register/finish":
		return true
	}
	return false
}

// credentialOwner is the account whose own credential — its cookie session
// or one of its access tokens — the request came with; empty otherwise (no
// credential, an invalid one, or an API key).
func credentialOwner(ctx context.Context) string {
	res, _ := ctx.Value(keyPrincipal).(*authResult)
	if res == nil || res.p == nil || (res.p.Kind != auth.KindSession && res.p.Kind != auth.KindAccessToken) {
		return ""
	}
	return res.p.UserID
}

func unauthorized(msg string, invalid bool) error {
	challenge := `Bearer realm="gatehouse"`
	if invalid {
		challenge = `Bearer realm="gatehouse", error="invalid_token", error_description="` + msg + `"`
	}
	return huma.ErrorWithHeaders(huma.Error401Unauthorized(msg), http.Header{"WWW-Authenticate": {challenge}})
}

// require returns the caller, or the RFC 6750 answer: 401 when credentials
// are missing or invalid, 403 naming the scope the credential lacks.
func require(ctx context.Context, scopes ...string) (*auth.Principal, error) {
	res, _ := ctx.Value(keyPrincipal).(*authResult)
	switch {
	case res == nil:
		return nil, unauthorized("authentication required", false)
	case res.p == nil:
		return nil, unauthorized("the access token is invalid or expired", true)
	}
	for _, sc := range scopes {
		if !res.p.HasScope(sc) {
			msg := "the credential lacks the scope " + sc + " (missing scope: " + sc + ")"
			err := &Problem{ErrorModel: huma.ErrorModel{Title: http.StatusText(http.StatusForbidden), Status: http.StatusForbidden, Detail: msg},
				Code: auth.ReasonInsufficientScope}
			return nil, huma.ErrorWithHeaders(err, http.Header{"WWW-Authenticate": {`Bearer realm="gatehouse", error="insufficient_scope", scope="` + sc + `"`}})
		}
	}
	return res.p, nil
}

// loginCSRF refuses cross-origin logins — POST /v1/sessions, the passkey
// sign-in and the second step that can set the session cookie
// (/v1/mfa/verify, /v1/mfa/passkey/*) — with or without a cookie:
// otherwise any site could sign a browser into an account of the
// attacker's (login CSRF).
func (s *Server) loginCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.URL.Path == "/v1/sessions" || strings.HasPrefix(r.URL.Path, "/v1/passkeys/login/") ||
			r.URL.Path == "/v1/mfa/verify" || strings.HasPrefix(r.URL.Path, "/v1/mfa/passkey/")) {
			if err := s.csrf.Check(r); err != nil {
				writeProblem(w, http.StatusForbidden, "cross-origin login refused (CSRF protection)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serveWithAPIKey authenticates an API key (X-API-Key or Bearer gth_…).
// Like bearer tokens, keys are not sent by browsers on their own, so there
// is no cross-origin check.
func (s *Server) serveWithAPIKey(w http.ResponseWriter, r *http.Request, next http.Handler, key string) {
	res := &authResult{}
	k, u, scopes, err := s.auth.AuthenticateAPIKey(r.Context(), key)
	switch {
	case err == nil:
		res.user = u
		res.p = &auth.Principal{UserID: u.ID, Kind: auth.KindAPIKey, Scopes: scopes, Roles: u.Roles, KeyID: k.ID}
		if k.ExpiresAt != nil {
			res.p.ExpiresAt = *k.ExpiresAt
		}
	case auth.ErrorCode(err) == auth.EUNAUTHORIZED:
		res.err = err
	default:
		s.writeFailure(w, r.Context(), "API key lookup", err)
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyPrincipal, res)))
}
