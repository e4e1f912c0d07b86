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
	p   *auth.Principal
	err error // credentials were presented but are invalid
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
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		res := &authResult{}
		c, err := s.keys.Verify(tok)
		if err != nil {
			res.err = err
		} else {
			res.p = &auth.Principal{UserID: c.Subject, Kind: "access_token", Scopes: c.Scopes, Roles: c.Roles, ClientID: c.ClientID, ExpiresAt: c.ExpiresAt}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyPrincipal, res)))
	})
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
			err := huma.Error403Forbidden("the credential lacks the scope " + sc + " (missing scope: " + sc + ")")
			return nil, huma.ErrorWithHeaders(err, http.Header{"WWW-Authenticate": {`Bearer realm="gatehouse", error="insufficient_scope", scope="` + sc + `"`}})
		}
	}
	return res.p, nil
}
