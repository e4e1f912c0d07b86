package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// AdminUserBody is a user as an administrator sees it.
type AdminUserBody struct {
	UserBody
	Disabled  bool      `json:"disabled"`
	UpdatedAt time.Time `json:"updated_at"`
}

func adminView(u *auth.User, mfa bool) AdminUserBody {
	b := AdminUserBody{UserBody: userView(u).Body, Disabled: u.Disabled, UpdatedAt: u.UpdatedAt}
	b.MFAEnabled = &mfa
	return b
}

// adminViewOf is adminView with the user's mfa_enabled read.
func (s *Server) adminViewOf(ctx context.Context, u *auth.User) (AdminUserBody, error) {
	mfa, err := s.auth.MFAEnabled(ctx, u.ID)
	return adminView(u, mfa), err
}

type adminUserOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         AdminUserBody
}

type adminListInput struct {
	Query  string `query:"q" maxLength:"320" doc:"Part of the email to search for"`
	Cursor string `query:"cursor" maxLength:"512" doc:"Opaque cursor from next_cursor"`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
}

type adminListOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Users      []AdminUserBody `json:"users"`
		NextCursor string          `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page"`
	}
}

type adminIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

type adminPatchInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Roles         *[]string `json:"roles,omitempty" maxItems:"32"`
		Disabled      *bool     `json:"disabled,omitempty"`
		EmailVerified *bool     `json:"email_verified,omitempty"`
	}
}

type auditInput struct {
	UserID string `query:"user_id" maxLength:"64"`
	Type   string `query:"type" maxLength:"64"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

// AuditEventBody is one audit event.
type AuditEventBody struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	At      time.Time      `json:"at"`
	UserID  string         `json:"user_id,omitempty"`
	IP      string         `json:"ip"`
	Details map[string]any `json:"details"`
}

type auditOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Events []AuditEventBody `json:"events"`
	}
}

var secAdmin = security("admin")

// requireAdmin needs both halves of the model: the credential carries scope
// admin and the account's current roles, read fresh, allow it
// (auth.Service.AuthorizeAdmin).
func (s *Server) requireAdmin(ctx context.Context) (*auth.User, error) {
	p, err := require(ctx, "admin")
	if err != nil {
		return nil, err
	}
	u, err := s.auth.AuthorizeAdmin(ctx, p)
	if auth.ErrorCode(err) == auth.EUNAUTHORIZED {
		return nil, unauthorized("the credential's account no longer exists or is disabled", true)
	}
	return u, err
}

func (s *Server) registerAdminRoutes(api huma.API) {
	tags := []string{"admin"}
	register(s, api, huma.Operation{
		OperationID: "admin-list-users", Method: http.MethodGet, Path: "/v1/admin/users", Tags: tags,
		Summary: "Search users (scope admin)", Security: secAdmin, Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *adminListInput) (*adminListOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		users, next, err := s.auth.SearchUsers(ctx, in.Query, in.Cursor, in.Limit)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(users))
		for i, u := range users {
			ids[i] = u.ID
		}
		mfa, err := s.auth.MFAEnabledMany(ctx, ids)
		if err != nil {
			return nil, err
		}
		out := &adminListOutput{CacheControl: "no-store"}
		out.Body.Users = make([]AdminUserBody, 0, len(users))
		for _, u := range users {
			out.Body.Users = append(out.Body.Users, adminView(u, mfa[u.ID]))
		}
		out.Body.NextCursor = next
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-get-user", Method: http.MethodGet, Path: "/v1/admin/users/{id}", Tags: tags,
		Summary: "Get a user (scope admin)", Security: secAdmin, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *adminIDInput) (*adminUserOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		u, err := s.auth.User(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		b, err := s.adminViewOf(ctx, u)
		if err != nil {
			return nil, err
		}
		return &adminUserOutput{CacheControl: "no-store", Body: b}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-patch-user", Method: http.MethodPatch, Path: "/v1/admin/users/{id}", Tags: tags,
		Summary:     "Change roles, disabled or email_verified (scope admin)",
		Description: "Role changes apply to sessions and API keys on their next request and to access tokens at their next refresh. Disabling ends every session and refresh token at once.",
		Security:    secAdmin, Errors: []int{401, 403, 404, 422},
	}, func(ctx context.Context, in *adminPatchInput) (*adminUserOutput, error) {
		actor, err := s.requireAdmin(ctx)
		if err != nil {
			return nil, err
		}
		u, err := s.auth.AdminUpdateUser(ctx, actor.ID, in.ID, auth.UserPatch{Roles: in.Body.Roles, Disabled: in.Body.Disabled, EmailVerified: in.Body.EmailVerified}, meta(ctx))
		if err != nil {
			return nil, err
		}
		b, err := s.adminViewOf(ctx, u)
		if err != nil {
			return nil, err
		}
		return &adminUserOutput{CacheControl: "no-store", Body: b}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-delete-user", Method: http.MethodDelete, Path: "/v1/admin/users/{id}", Tags: tags,
		Summary: "Delete a user (scope admin)", Security: secAdmin, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *adminIDInput) (*struct{}, error) {
		actor, err := s.requireAdmin(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.auth.AdminDeleteUser(ctx, actor.ID, in.ID, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-revoke-user", Method: http.MethodPost, Path: "/v1/admin/users/{id}/revoke", Tags: tags,
		Summary: "End every session, refresh token and API key of a user (scope admin)", Security: secAdmin,
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *adminIDInput) (*struct{}, error) {
		actor, err := s.requireAdmin(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.auth.AdminRevokeUser(ctx, actor.ID, in.ID, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-audit", Method: http.MethodGet, Path: "/v1/admin/audit", Tags: tags,
		Summary: "Read the audit log, newest first (scope admin)", Security: secAdmin, Errors: []int{401, 403},
	}, func(ctx context.Context, in *auditInput) (*auditOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		events, err := s.auth.AuditLog(ctx, auth.AuditFilter{UserID: in.UserID, Type: in.Type, Limit: in.Limit})
		if err != nil {
			return nil, err
		}
		out := &auditOutput{CacheControl: "no-store"}
		out.Body.Events = make([]AuditEventBody, 0, len(events))
		for _, e := range events {
			d := e.Details
			if d == nil {
				d = map[string]any{}
			}
			out.Body.Events = append(out.Body.Events, AuditEventBody{ID: e.ID, Type: e.Type, At: e.At, UserID: e.UserID, IP: e.IP, Details: d})
		}
		return out, nil
	})
}
