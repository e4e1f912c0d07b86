package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// UserBody is the public view of an account. It never carries the password
// hash or any secret.
type UserBody struct {
	ID            string    `json:"id" doc:"Opaque user id"`
	Email         string    `json:"email" format:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name"`
	Roles         []string  `json:"roles"`
	CreatedAt     time.Time `json:"created_at"`
	MFAEnabled    *bool     `json:"mfa_enabled,omitempty" doc:"a TOTP authenticator is confirmed (GET /v1/me and admin views)"`
}

type userOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         UserBody
}

func userView(u *auth.User) *userOutput {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return &userOutput{CacheControl: "no-store", Body: UserBody{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name, Roles: roles, CreatedAt: u.CreatedAt}}
}

type registerInput struct {
	Body struct {
		Email    string `json:"email" maxLength:"320" doc:"Email address; trimmed and lower-cased"`
		Password string `json:"password" maxLength:"1024" doc:"8 to 256 characters, not a common breached password"`
		Name     string `json:"name,omitempty" maxLength:"200"`
	}
}

type patchMeInput struct {
	Body struct {
		Name *string `json:"name,omitempty" maxLength:"200" doc:"Display name; the only field a user may change"`
	}
}

type deleteMeInput struct {
	Body *struct {
		Password string `json:"password,omitempty" maxLength:"1024" doc:"The current password, to confirm"`
	}
}

type changePasswordInput struct {
	Body struct {
		CurrentPassword string `json:"current_password" maxLength:"1024"`
		NewPassword     string `json:"new_password" maxLength:"1024"`
	}
}

// meta describes the request for the audit log and session records.
func meta(ctx context.Context) auth.Meta {
	m := auth.Meta{IP: clientIP(ctx), UserAgent: userAgent(ctx)}
	if res, _ := ctx.Value(keyPrincipal).(*authResult); res != nil {
		if res.session != nil {
			m.SessionID = res.session.ID
		}
		if res.p != nil && !res.p.Enrolment {
			m.Actor = res.p.UserID
		}
	}
	return m
}

// Security requirements for the OpenAPI document: an OAuth2 token with the
// scope, an API key, or the session cookie.
func security(scope string) []map[string][]string {
	return []map[string][]string{{"oauth2": {scope}}, {"apiKey": {}}, {"cookie": {}}}
}

var (
	secRead  = security("read")
	secWrite = security("write")
)

func (s *Server) registerAccountRoutes(api huma.API) {
	register(s, api, huma.Operation{
		OperationID: "register", Method: http.MethodPost, Path: "/v1/register", Tags: []string{"accounts"},
		Summary:       "Create an account",
		Description:   "Creates an account and sends a verification mail. A taken email gets the same answer as a new one (no enumeration).",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{400, 413, 415, 422, 503},
	}, func(ctx context.Context, in *registerInput) (*userOutput, error) {
		u, err := s.auth.Register(ctx, auth.RegisterInput{Email: in.Body.Email, Password: in.Body.Password, Name: in.Body.Name}, meta(ctx))
		if err != nil {
			return nil, err
		}
		return userView(u), nil
	})

	register(s, api, huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: "/v1/me", Tags: []string{"accounts"},
		Summary: "The current user", Security: secRead, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*userOutput, error) {
		u, err := s.currentUser(ctx, "read")
		if err != nil {
			return nil, err
		}
		mfa, err := s.auth.MFAEnabled(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		out := userView(u)
		out.Body.MFAEnabled = &mfa
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "patch-me", Method: http.MethodPatch, Path: "/v1/me", Tags: []string{"accounts"},
		Summary: "Change the current user's name", Description: "Only `name` can be changed; roles, email_verified and disabled are never set by the user.",
		Security: secWrite, Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *patchMeInput) (*userOutput, error) {
		u, err := s.currentUser(ctx, "write")
		if err != nil {
			return nil, err
		}
		if in.Body.Name != nil {
			if u, err = s.auth.UpdateName(ctx, u.ID, *in.Body.Name, meta(ctx)); err != nil {
				return nil, err
			}
		}
		return userView(u), nil
	})

	register(s, api, huma.Operation{
		OperationID: "delete-me", Method: http.MethodDelete, Path: "/v1/me", Tags: []string{"accounts"},
		Summary: "Delete the current account", Description: "Requires the current password, or a session signed in less than ten minutes ago.",
		DefaultStatus: http.StatusNoContent, Security: secWrite, Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *deleteMeInput) (*struct{}, error) {
		u, err := s.currentUser(ctx, "write")
		if err != nil {
			return nil, err
		}
		pw := ""
		if in.Body != nil {
			pw = in.Body.Password
		}
		p, err := require(ctx)
		if err != nil {
			return nil, err
		}
		if p.UserID != u.ID {
			return nil, auth.ErrInvalidCredentials
		}
		if err := s.auth.DeleteAccount(ctx, p, pw, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})

	register(s, api, huma.Operation{
		OperationID: "change-password", Method: http.MethodPost, Path: "/v1/password/change", Tags: []string{"accounts"},
		Summary: "Change the password", Description: "Revokes every refresh token of the user.",
		DefaultStatus: http.StatusNoContent, Security: secWrite, Errors: []int{401, 403, 422, 503},
	}, func(ctx context.Context, in *changePasswordInput) (*struct{}, error) {
		u, err := s.currentUser(ctx, "write")
		if err != nil {
			return nil, err
		}
		p, err := require(ctx)
		if err != nil {
			return nil, err
		}
		if p.UserID != u.ID {
			return nil, auth.ErrInvalidCredentials
		}
		if err := s.auth.ChangePassword(ctx, p, in.Body.CurrentPassword, in.Body.NewPassword, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})
}

// currentUser returns the caller's account; a deleted or disabled account
// makes its credentials invalid at once.
func (s *Server) currentUser(ctx context.Context, scopes ...string) (*auth.User, error) {
	p, err := require(ctx, scopes...)
	if err != nil {
		return nil, err
	}
	if res, _ := ctx.Value(keyPrincipal).(*authResult); res != nil && res.user != nil {
		return res.user, nil // a session: read fresh by the middleware
	}
	var u *auth.User
	if p.Kind == auth.KindAccessToken {
		u, err = s.auth.TokenUser(ctx, p.UserID)
	} else {
		u, err = s.auth.User(ctx, p.UserID)
	}
	if auth.ErrorCode(err) == auth.ENOTFOUND || (err == nil && u.Disabled) {
		return nil, unauthorized("the credential's account no longer exists or is disabled", true)
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}
