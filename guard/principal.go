package guard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Principal is the authenticated caller of a request.
//
// Roles say what the user may do; Scopes say what the presented credential
// may do (Gatehouse's model). For API keys and sessions the roles are the
// user's current ones, as introspection reported them; for access tokens
// they are those at issue time (a role change reaches JWTs at their expiry,
// or within a second with Config.RevocationFeed: the token is refused and
// the client refreshes it).
//
// ACR, AMR and AuthTime say how and when the user last signed in fully
// (RFC 9068 §2.2.1, the acr, amr and auth_time claims; the same members of
// an introspection answer). Access tokens and sessions carry them; API keys
// do not (empty ACR, nil AMR, zero AuthTime), so RequireAAL2 and
// RequireFreshAuth refuse API keys.
type Principal struct {
	Subject   string    // the Gatehouse user id (sub)
	Kind      string    // KindAccessToken, KindAPIKey or KindSession
	Scopes    []string  // what the credential may do
	Roles     []string  // the user's roles
	Email     string    // when Gatehouse said it (email claim, username)
	ClientID  string    // the OAuth2 client the token was issued to, if any
	ExpiresAt time.Time // zero for an API key without expiry
	ACR       string    // the sign-in's assurance level: AAL1 or AAL2; empty when unknown
	AMR       []string  // how the user signed in (RFC 8176: "pwd", "otp", "hwk", "mfa", "fed", …)
	AuthTime  time.Time // when the user last signed in fully; zero when unknown
}

// Authentication assurance levels (NIST SP 800-63B), the values of
// Principal.ACR.
const (
	AAL1 = "aal1" // one factor: a password, a social login, a passkey without user verification
	AAL2 = "aal2" // two factors: a first factor plus TOTP, a recovery code or a passkey
)

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
	c.AMR = slices.Clip(c.AMR)
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
	switch v := ctx.Value(ctxKey{}).(type) {
	case *Principal:
		return v, v != nil
	case *checked:
		return v.p, v.p != nil
	}
	return nil, false
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

// StepUpError is a refusal that a new or stronger sign-in would lift (RFC
// 9470 step-up authentication): 401 with
//
//	WWW-Authenticate: Bearer realm="gatehouse", error="insufficient_user_authentication",
//	    error_description="<Detail>", acr_values="<ACRValues>", max_age=<MaxAge in seconds>
//
// and a problem body with "code": "step_up_required" (plus "acr_values" and
// "max_age"), as Gatehouse itself answers. RequireAAL2 and RequireFreshAuth
// return it, and an Authorize rule can too. RFC 9470 answers 401, not 403:
// the client is to authenticate the user again (Gatehouse's
// POST /v1/mfa/step-up) and retry.
type StepUpError struct {
	Detail    string        // shown to the caller
	ACRValues string        // the level the sign-in must reach, e.g. AAL2; empty: any
	MaxAge    time.Duration // how recent the sign-in must be; 0: no limit
}

func (e *StepUpError) Error() string { return "guard: step-up required: " + e.Detail }

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

// RequireAAL2 returns middleware that lets a request through only when the
// user signed in with two factors (Principal.ACR is AAL2); otherwise it
// answers 401 with a *StepUpError asking for acr_values="aal2" (RFC 9470).
// API keys carry no level and are always refused. It goes inside
// Guard.Middleware; without a Principal in the context it answers 401 as
// RequireScopes does.
//
//	mux.Handle("POST /payouts", g.Middleware(guard.RequireAAL2()(payout)))
func RequireAAL2() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				WriteError(w, r, ErrNoCredentials)
				return
			}
			if p.ACR != AAL2 {
				WriteError(w, r, &StepUpError{
					Detail:    "this action requires a sign-in with two factors (aal2)",
					ACRValues: AAL2,
				})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireFreshAuth returns middleware that lets a request through only when
// the user's last full sign-in (Principal.AuthTime) is at most maxAge old;
// otherwise (or when AuthTime is unknown, as for API keys) it answers 401
// with a *StepUpError carrying max_age (RFC 9470). An AuthTime more than
// MaxLeeway in the future is not trusted to be fresh. It goes inside
// Guard.Middleware; without a Principal in the context it answers 401 as
// RequireScopes does. It panics when maxAge is not positive.
//
// Time is read from the Guard's clock (Config.Now) behind Guard.Middleware,
// else from time.Now. Combine it with RequireAAL2 for "two factors, and
// recently", which is what Gatehouse asks for its own sensitive actions:
//
//	twoFactors, recent := guard.RequireAAL2(), guard.RequireFreshAuth(10*time.Minute)
//	mux.Handle("DELETE /account", g.Middleware(twoFactors(recent(deleteAccount))))
func RequireFreshAuth(maxAge time.Duration) func(http.Handler) http.Handler {
	if maxAge <= 0 {
		panic("guard: RequireFreshAuth: maxAge must be positive, got " + maxAge.String())
	}
	detail := "this action requires a sign-in within the last " + humanDuration(maxAge)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				WriteError(w, r, ErrNoCredentials)
				return
			}
			if !freshAuth(p.AuthTime, maxAge, clockFrom(r.Context())()) {
				WriteError(w, r, &StepUpError{Detail: detail, MaxAge: maxAge})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// freshAuth reports whether a sign-in at authTime is at most maxAge old at
// now. Unknown is not fresh, nor is a time beyond the clock-skew leeway in
// the future: the check must not be lifted by a wrong clock.
func freshAuth(authTime time.Time, maxAge time.Duration, now time.Time) bool {
	return !authTime.IsZero() && now.Sub(authTime) <= maxAge && !authTime.After(now.Add(MaxLeeway))
}

// humanDuration writes d as "10 minutes", "1 hour", "90 seconds".
func humanDuration(d time.Duration) string {
	n, unit := int64(d/time.Second), "second"
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	case d >= time.Minute && d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	case d < time.Second:
		return d.String()
	}
	if n != 1 {
		unit += "s"
	}
	return strconv.FormatInt(n, 10) + " " + unit
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
//     package (OwnerOr, *ForbiddenError, *StepUpError, ErrNoCredentials) are
//     answered by WriteError; any other error is a refusal too, answered 403
//     with a generic message: anything but an explicit yes is no.
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
			var (
				fe *ForbiddenError
				se *StepUpError
			)
			if !errors.As(err, &fe) && !errors.As(err, &se) && !errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrInvalidToken) {
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
//   - *StepUpError: 401 with error="insufficient_user_authentication",
//     acr_values and max_age (RFC 9470), and "code": "step_up_required";
//     behind Guard.Middleware, the cached introspection answer for the
//     request's session cookie is dropped, so the retry after a step-up
//     sees the session's new level at once
//   - ErrUnavailable: 503 with Retry-After
//   - anything else: 500 with a generic message.
//
// The reason wrapped in the error is never written: it is for logs.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	var (
		fe *ForbiddenError
		se *StepUpError
	)
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
	case errors.As(err, &se):
		detail := se.Detail
		if detail == "" {
			detail = "a new or stronger sign-in is required"
		}
		challenge := realm + `, error="insufficient_user_authentication", error_description="` + headerText(detail) + `"`
		extra := map[string]any{"code": "step_up_required"}
		if se.ACRValues != "" {
			challenge += `, acr_values="` + headerText(se.ACRValues) + `"`
			extra["acr_values"] = se.ACRValues
		}
		if se.MaxAge > 0 {
			secs := int64(se.MaxAge / time.Second)
			challenge += ", max_age=" + strconv.FormatInt(secs, 10)
			extra["max_age"] = secs
		}
		h.Set("WWW-Authenticate", challenge)
		if r != nil {
			// The client is about to step up and retry: the retry must see
			// the session's new level and auth_time, not a cached answer.
			forgetIntrospection(r.Context())
		}
		writeProblem(w, http.StatusUnauthorized, detail, extra)
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

// headerText keeps what RFC 6750 §3 allows in error_description: printable
// ASCII except the double quote and the backslash.
func headerText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
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
