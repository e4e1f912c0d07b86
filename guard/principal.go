package guard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Principal is the authenticated caller of a request.
//
// Roles say what the user may do; Scopes say what the presented credential
// may do (Gatehouse's model). For API keys and sessions the roles are the
// user's current ones, as introspection reported them; for access tokens
// they are those at issue time (a role change reaches JWTs at their expiry).
type Principal struct {
	Subject   string    // the Gatehouse user id (sub)
	Kind      string    // KindAccessToken, KindAPIKey or KindSession
	Scopes    []string  // what the credential may do
	Roles     []string  // the user's roles
	Email     string    // when Gatehouse said it (email claim, username)
	ClientID  string    // the OAuth2 client the token was issued to, if any
	ExpiresAt time.Time // zero for an API key without expiry
}

// HasScope reports whether the credential carries scope s.
func (p *Principal) HasScope(s string) bool { return p != nil && slices.Contains(p.Scopes, s) }

// HasRole reports whether the user has role r.
func (p *Principal) HasRole(r string) bool { return p != nil && slices.Contains(p.Roles, r) }

// clone returns a copy whose slices cannot grow into the original's, so a
// handler that appends to its Principal does not change the cached one.
func (p *Principal) clone() *Principal {
	c := *p
	c.Scopes = slices.Clip(c.Scopes)
	c.Roles = slices.Clip(c.Roles)
	return &c
}

type ctxKey struct{}

// WithPrincipal returns a copy of ctx carrying p; Middleware uses it, and
// tests of handlers can too.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// PrincipalFrom returns the caller that Middleware (or Optional) put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p, p != nil
}

// ForbiddenError is a refusal of an authenticated caller: 403, with Detail
// in the response body. RequireScopes, RequireRoles and OwnerOr return it,
// and an Authorize rule can too.
type ForbiddenError struct {
	Detail       string   // shown to the caller
	MissingScope string   // the first required scope the credential lacks
	Scopes       []string // every scope the route requires (RFC 6750 scope attribute)
	Roles        []string // the roles, any of which would have been enough
}

func (e *ForbiddenError) Error() string { return "guard: forbidden: " + e.Detail }

// RequireScopes returns middleware that lets a request through only when
// its Principal's credential carries every one of scopes; otherwise 403
// with error="insufficient_scope" naming the first missing scope. It goes
// inside Guard.Middleware; without a Principal in the context it answers
// 401.
func RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	scopes = slices.Clone(scopes)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				WriteError(w, r, ErrNoCredentials)
				return
			}
			for _, s := range scopes {
				if !p.HasScope(s) {
					WriteError(w, r, &ForbiddenError{
						Detail:       "the credential lacks the scope " + s + " (missing scope: " + s + ")",
						MissingScope: s, Scopes: scopes,
					})
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireRoles returns middleware that lets a request through only when
// its Principal has at least one of roles; otherwise 403 naming them. It
// goes inside Guard.Middleware; without a Principal in the context it
// answers 401.
func RequireRoles(roles ...string) func(http.Handler) http.Handler {
	roles = slices.Clone(roles)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				WriteError(w, r, ErrNoCredentials)
				return
			}
			if slices.ContainsFunc(roles, p.HasRole) {
				next.ServeHTTP(w, r)
				return
			}
			WriteError(w, r, &ForbiddenError{Detail: "requires the role " + orList(roles), Roles: roles})
		})
	}
}

// OwnerOr allows p when it is the owner (p.Subject == owner) or has any of
// roles: "the author or an admin" is OwnerOr(p, post.Author, "admin"). It
// returns nil to allow, ErrNoCredentials for an anonymous caller (p nil),
// and a *ForbiddenError otherwise.
func OwnerOr(p *Principal, owner string, roles ...string) error {
	if p == nil {
		return ErrNoCredentials
	}
	if owner != "" && p.Subject == owner {
		return nil
	}
	if slices.ContainsFunc(roles, p.HasRole) {
		return nil
	}
	detail := "only the owner of this resource may do this"
	if len(roles) > 0 {
		detail = "only the owner of this resource or a user with the role " + orList(roles) + " may do this"
	}
	return &ForbiddenError{Detail: detail, Roles: slices.Clone(roles)}
}

// Authorize returns a handler for resource-level checks: it loads the
// resource the request names, asks allow whether the caller may act on it,
// and only then calls serve with the resource.
//
//   - load finds the resource (typically from r.PathValue). When it returns
//     false it has written the response itself: 404 for a missing resource
//     is the caller's choice, as is hiding its existence with 403.
//   - allow gets the Principal (nil for an anonymous caller of an Optional
//     route) and the resource, and returns nil to allow. Errors from this
//     package (OwnerOr, *ForbiddenError, ErrNoCredentials) are answered by
//     WriteError; any other error is a refusal too, answered 403 with a
//     generic message: anything but an explicit yes is no.
//
// Put it inside Guard.Middleware (or Optional), after any RequireScopes.
func Authorize[T any](
	load func(w http.ResponseWriter, r *http.Request) (T, bool),
	allow func(p *Principal, res T) error,
	serve func(w http.ResponseWriter, r *http.Request, res T),
) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		res, ok := load(w, r)
		if !ok {
			return
		}
		if err := allow(p, res); err != nil {
			var fe *ForbiddenError
			if !errors.As(err, &fe) && !errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrInvalidToken) {
				err = &ForbiddenError{Detail: "you may not do this to this resource"}
			}
			WriteError(w, r, err)
			return
		}
		serve(w, r, res)
	})
}

// WriteError writes the response for an error from Check, OwnerOr or the
// other functions of this package, as RFC 9457 problem JSON:
//
//   - ErrNoCredentials: 401, WWW-Authenticate: Bearer realm="gatehouse"
//   - ErrInvalidToken: 401, the same with error="invalid_token" (RFC 6750 §3)
//   - *ForbiddenError: 403 with its Detail (and error="insufficient_scope"
//     when a scope is missing); ErrCrossOrigin: 403
//   - ErrUnavailable: 503 with Retry-After
//   - anything else: 500 with a generic message.
//
// The reason wrapped in the error is never written: it is for logs.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	var fe *ForbiddenError
	switch {
	case errors.As(err, &fe):
		extra := map[string]any{}
		if fe.MissingScope != "" {
			scopes := fe.Scopes
			if len(scopes) == 0 {
				scopes = []string{fe.MissingScope}
			}
			h.Set("WWW-Authenticate", realm+`, error="insufficient_scope", scope="`+quotable(strings.Join(scopes, " "))+`"`)
			extra["missing_scope"] = fe.MissingScope
		}
		if len(fe.Roles) > 0 {
			extra["required_roles"] = fe.Roles
		}
		writeProblem(w, http.StatusForbidden, fe.Detail, extra)
	case errors.Is(err, ErrNoCredentials):
		h.Set("WWW-Authenticate", realm)
		writeProblem(w, http.StatusUnauthorized, "authentication required", nil)
	case errors.Is(err, ErrInvalidToken):
		h.Set("WWW-Authenticate", realm+`, error="invalid_token", error_description="the credential is invalid, expired or revoked"`)
		writeProblem(w, http.StatusUnauthorized, "the credential is invalid, expired or revoked", nil)
	case errors.Is(err, ErrCrossOrigin):
		writeProblem(w, http.StatusForbidden, "cross-origin request refused (CSRF protection)", nil)
	case errors.Is(err, ErrUnavailable):
		h.Set("Retry-After", "5")
		writeProblem(w, http.StatusServiceUnavailable, "the authorization server is unreachable; try again shortly", nil)
	default:
		writeProblem(w, http.StatusInternalServerError, "internal error", nil)
	}
}

func writeProblem(w http.ResponseWriter, status int, detail string, extra map[string]any) {
	body := map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail}
	for k, v := range extra {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// quotable drops what cannot appear in a quoted-string header parameter.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// orList writes "a", "a or b", "a, b or c".
func orList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
