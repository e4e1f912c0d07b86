package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// SessionBody describes a session; the token itself is only ever in the
// cookie.
type SessionBody struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

type sessionLoginInput struct {
	Body struct {
		Email    string `json:"email" maxLength:"320"`
		Password string `json:"password" maxLength:"1024"`
	}
}

type sessionLoginOutput struct {
	SetCookie    http.Cookie `header:"Set-Cookie"`
	CacheControl string      `header:"Cache-Control"`
	Body         struct {
		Session SessionBody `json:"session"`
		User    UserBody    `json:"user"`
	}
}

type sessionListOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Sessions []SessionBody `json:"sessions"`
	}
}

type sessionIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

type logoutOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie"`
}

var secSession = security("read")

func sessionView(x *auth.Session, current string) SessionBody {
	return SessionBody{ID: x.ID, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt,
		IP: x.IP, UserAgent: x.UserAgent, Current: x.ID == current}
}

// sessionCookie is the session cookie exactly as SPEC §4 has it.
func (s *Server) sessionCookie(tok string, expires time.Time) http.Cookie {
	return http.Cookie{Name: s.cookieName, Value: tok, Path: "/", Expires: expires, HttpOnly: true,
		Secure: s.https, SameSite: http.SameSiteLaxMode}
}

// clearedSessionCookie deletes the session cookie (same name and path).
func (s *Server) clearedSessionCookie() http.Cookie {
	c := s.sessionCookie("", time.Time{})
	c.MaxAge = -1
	return c
}

func currentSession(ctx context.Context) *auth.Session {
	if res, _ := ctx.Value(keyPrincipal).(*authResult); res != nil {
		return res.session
	}
	return nil
}

func (s *Server) registerSessionRoutes(api huma.API) {
	register(s, api, huma.Operation{
		OperationID: "create-session", Method: http.MethodPost, Path: "/v1/sessions", Tags: []string{"sessions"},
		Summary:       "Log in with a cookie session",
		Description:   "JSON or form `{email, password}`. Sets the session cookie (HttpOnly, SameSite=Lax, Secure and `__Host-` on https). Refused cross-origin.",
		DefaultStatus: http.StatusCreated, Errors: []int{400, 403, 422, 429, 503},
	}, func(ctx context.Context, in *sessionLoginInput) (*sessionLoginOutput, error) {
		c, err := s.auth.SessionLogin(ctx, in.Body.Email, in.Body.Password, meta(ctx))
		if err != nil {
			return nil, err
		}
		out := &sessionLoginOutput{SetCookie: s.sessionCookie(c.SessionToken, c.Session.ExpiresAt), CacheControl: "no-store"}
		out.Body.Session = sessionView(c.Session, c.Session.ID)
		out.Body.User = userView(c.User).Body
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "list-sessions", Method: http.MethodGet, Path: "/v1/sessions", Tags: []string{"sessions"},
		Summary: "List your sessions", Security: secSession, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*sessionListOutput, error) {
		p, err := require(ctx, "read")
		if err != nil {
			return nil, err
		}
		list, err := s.auth.ListSessions(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		cur := ""
		if cs := currentSession(ctx); cs != nil {
			cur = cs.ID
		}
		out := &sessionListOutput{CacheControl: "no-store"}
		out.Body.Sessions = make([]SessionBody, 0, len(list))
		for _, x := range list {
			out.Body.Sessions = append(out.Body.Sessions, sessionView(x, cur))
		}
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "logout", Method: http.MethodDelete, Path: "/v1/sessions/current", Tags: []string{"sessions"},
		Summary: "Log out (end the current session and clear the cookie)", Security: secSession,
		DefaultStatus: http.StatusNoContent, Errors: []int{400, 401, 403},
	}, func(ctx context.Context, _ *struct{}) (*logoutOutput, error) {
		p, err := require(ctx)
		if err != nil {
			return nil, err
		}
		cs := currentSession(ctx)
		if cs == nil {
			return nil, huma.Error400BadRequest("this request is not authenticated by a session cookie")
		}
		if err := s.auth.RevokeSession(ctx, p.UserID, cs.ID, meta(ctx)); err != nil && auth.ErrorCode(err) != auth.ENOTFOUND {
			return nil, err
		}
		return &logoutOutput{SetCookie: s.clearedSessionCookie()}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "delete-session", Method: http.MethodDelete, Path: "/v1/sessions/{id}", Tags: []string{"sessions"},
		Summary: "End one of your sessions", Security: secSession,
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *sessionIDInput) (*struct{}, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		if err := s.auth.RevokeSession(ctx, p.UserID, in.ID, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})

	register(s, api, huma.Operation{
		OperationID: "delete-other-sessions", Method: http.MethodDelete, Path: "/v1/sessions", Tags: []string{"sessions"},
		Summary: "End every session but the current one", Security: secSession,
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*struct{}, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		keep := ""
		if cs := currentSession(ctx); cs != nil {
			keep = cs.ID
		}
		if err := s.auth.RevokeOtherSessions(ctx, p.UserID, keep, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})
}
