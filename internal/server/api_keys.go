package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// APIKeyBody describes a key; the secret appears only in the create answer.
type APIKeyBody struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix" doc:"The first characters of the key, to recognise it"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

type createKeyInput struct {
	Body struct {
		Name      string     `json:"name" minLength:"1" maxLength:"200"`
		Scopes    []string   `json:"scopes" minItems:"1" maxItems:"32"`
		ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"RFC 3339; any future time"`
	}
}

type createKeyOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		APIKeyBody
		Key string `json:"key" doc:"The API key. It is shown only once: store it now."`
	}
}

type listKeysOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		APIKeys []APIKeyBody `json:"api_keys"`
	}
}

type keyIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

func keyView(k *auth.APIKey) APIKeyBody {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return APIKeyBody{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: scopes, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt}
}

var secAny = []map[string][]string{{"oauth2": {"write"}}, {"cookie": {}}}

func (s *Server) registerAPIKeyRoutes(api huma.API) {
	register(s, api, huma.Operation{
		OperationID: "create-api-key", Method: http.MethodPost, Path: "/v1/api-keys", Tags: []string{"api-keys"},
		Summary:     "Create an API key (shown once)",
		Description: "Scopes must be within what your roles allow. The key is `gth_` + 256 random bits + a checksum; only its hash is stored. Send it as `X-API-Key` or `Authorization: Bearer gth_…`.",
		Security:    secAny, DefaultStatus: http.StatusCreated, Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *createKeyInput) (*createKeyOutput, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		u, err := s.currentUser(ctx, "write")
		if err != nil {
			return nil, err
		}
		k, secret, err := s.auth.CreateAPIKey(ctx, p, u, auth.CreateAPIKeyInput{Name: in.Body.Name, Scopes: in.Body.Scopes, ExpiresAt: in.Body.ExpiresAt}, meta(ctx))
		if err != nil {
			return nil, err
		}
		out := &createKeyOutput{CacheControl: "no-store"}
		out.Body.APIKeyBody = keyView(k)
		out.Body.Key = secret
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "list-api-keys", Method: http.MethodGet, Path: "/v1/api-keys", Tags: []string{"api-keys"},
		Summary: "List your API keys (never the secrets)", Security: secAny, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*listKeysOutput, error) {
		p, err := require(ctx, "read")
		if err != nil {
			return nil, err
		}
		if err := auth.CanManageAPIKeys(p); err != nil {
			return nil, err
		}
		keys, err := s.auth.ListAPIKeys(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		out := &listKeysOutput{CacheControl: "no-store"}
		out.Body.APIKeys = make([]APIKeyBody, 0, len(keys))
		for _, k := range keys {
			out.Body.APIKeys = append(out.Body.APIKeys, keyView(k))
		}
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "delete-api-key", Method: http.MethodDelete, Path: "/v1/api-keys/{id}", Tags: []string{"api-keys"},
		Summary: "Revoke one of your API keys", Security: secAny, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *keyIDInput) (*struct{}, error) {
		p, err := require(ctx, "write")
		if err != nil {
			return nil, err
		}
		if err := s.auth.RevokeAPIKey(ctx, p, in.ID, meta(ctx)); err != nil {
			return nil, err
		}
		return nil, nil
	})
}
