package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// ClientBody is a registered OAuth client as the admin API and `gatehouse
// client create` show it: its settings, never a secret or a secret's hash.
type ClientBody struct {
	ClientID                string     `json:"client_id"`
	Name                    string     `json:"name"`
	Type                    string     `json:"type" enum:"confidential,public"`
	RedirectURIs            []string   `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string   `json:"post_logout_redirect_uris"`
	GrantTypes              []string   `json:"grant_types"`
	Scopes                  []string   `json:"scopes"`
	FirstParty              bool       `json:"first_party" doc:"No consent page; roles in access tokens"`
	RequirePKCE             bool       `json:"require_pkce"`
	TokenEndpointAuthMethod string     `json:"token_endpoint_auth_method"`
	IDTokenAlg              string     `json:"id_token_signed_response_alg,omitempty" doc:"Absent: the server's GATEHOUSE_ID_TOKEN_ALG"`
	IDTokenClaims           bool       `json:"id_token_claims" doc:"Profile and email claims in the ID token too"`
	LogoURL                 string     `json:"logo_url,omitempty"`
	FromConfig              bool       `json:"from_config" doc:"Declared in the configuration file (clients:): read-only here"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty" doc:"After a rotation: when the previous secret stops (or stopped) working"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// NewClientBody describes c (without its secrets).
func NewClientBody(c *auth.Client) ClientBody {
	b := ClientBody{ClientID: c.ID, Name: c.Name, Type: c.Type, RedirectURIs: nonNil(c.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs), GrantTypes: nonNil(c.GrantTypes), Scopes: nonNil(c.Scopes),
		FirstParty: c.FirstParty, RequirePKCE: c.RequirePKCE, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		IDTokenAlg: c.IDTokenAlg, IDTokenClaims: c.IDTokenClaims, LogoURL: c.LogoURL, FromConfig: c.FromConfig,
		PreviousSecretExpiresAt: c.PreviousSecretExpiresAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	return b
}

// CreatedClientBody is the answer to a registration: the client and, for
// a confidential client, its secret, shown this once.
type CreatedClientBody struct {
	ClientBody
	ClientSecret string `json:"client_secret,omitempty" doc:"Confidential clients: the secret (ghcs_…). It is shown only once: store it now."`
}

type createClientInput struct {
	Body struct {
		Name                    string   `json:"name" minLength:"1" maxLength:"200"`
		Type                    string   `json:"type" enum:"confidential,public" doc:"confidential: a server that keeps a secret; public: a browser or native app (no secret, PKCE always)"`
		RedirectURIs            []string `json:"redirect_uris,omitempty" maxItems:"32" doc:"Exact strings; https, http only on 127.0.0.1, [::1] or localhost (any port), or a private-use scheme with a dot (com.example.app:/cb); no fragment, user info or wildcard. Required with authorization_code."`
		PostLogoutRedirectURIs  []string `json:"post_logout_redirect_uris,omitempty" maxItems:"32" doc:"Same rules as redirect_uris"`
		GrantTypes              []string `json:"grant_types,omitempty" maxItems:"3" doc:"authorization_code, refresh_token, client_credentials (confidential only). Default: authorization_code and refresh_token"`
		Scopes                  []string `json:"scopes,omitempty" maxItems:"64" doc:"What the client may ask for: configured scopes and openid, profile, email, offline_access. Default: openid profile email (+ offline_access with refresh_token)"`
		FirstParty              bool     `json:"first_party,omitempty" doc:"No consent page; roles in access tokens"`
		RequirePKCE             *bool    `json:"require_pkce,omitempty" doc:"Default true; false only for confidential clients"`
		TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty" maxLength:"64" doc:"client_secret_basic or client_secret_post (confidential; default client_secret_basic), none (public)"`
		IDTokenAlg              string   `json:"id_token_signed_response_alg,omitempty" maxLength:"16" doc:"RS256, ES256 or EdDSA; default: the server's GATEHOUSE_ID_TOKEN_ALG"`
		IDTokenClaims           bool     `json:"id_token_claims,omitempty" doc:"Profile and email claims in the ID token too"`
		LogoURL                 string   `json:"logo_url,omitempty" maxLength:"2000" doc:"An https URL, shown on the consent page"`
	}
}

type createClientOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         CreatedClientBody
}

type clientOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         ClientBody
}

type listClientsOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Clients []ClientBody `json:"clients"`
	}
}

type clientIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

type patchClientInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Name                    *string   `json:"name,omitempty" minLength:"1" maxLength:"200"`
		RedirectURIs            *[]string `json:"redirect_uris,omitempty" maxItems:"32"`
		PostLogoutRedirectURIs  *[]string `json:"post_logout_redirect_uris,omitempty" maxItems:"32"`
		GrantTypes              *[]string `json:"grant_types,omitempty" maxItems:"3"`
		Scopes                  *[]string `json:"scopes,omitempty" maxItems:"64"`
		FirstParty              *bool     `json:"first_party,omitempty"`
		RequirePKCE             *bool     `json:"require_pkce,omitempty"`
		TokenEndpointAuthMethod *string   `json:"token_endpoint_auth_method,omitempty" maxLength:"64" doc:"client_secret_basic or client_secret_post (confidential), none (public)"`
		IDTokenAlg              *string   `json:"id_token_signed_response_alg,omitempty" maxLength:"16" doc:"RS256, ES256, EdDSA, or empty for the server's default"`
		IDTokenClaims           *bool     `json:"id_token_claims,omitempty"`
		LogoURL                 *string   `json:"logo_url,omitempty" maxLength:"2000" doc:"An https URL; empty removes the logo"`
	}
}

type rotateSecretOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		ClientID                string    `json:"client_id"`
		ClientSecret            string    `json:"client_secret" doc:"The new secret. It is shown only once: store it now."`
		PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at" doc:"The previous secret works until then (24 hours)"`
	}
}

func (s *Server) registerClientRoutes(api huma.API) {
	tags := []string{"admin"}
	register(s, api, huma.Operation{
		OperationID: "admin-create-client", Method: http.MethodPost, Path: "/v1/admin/clients", Tags: tags,
		Summary:     "Register an OAuth client (scope admin)",
		Description: "Registers a relying party of the OpenID provider. A confidential client's secret (`ghcs_` + 256 random bits + a checksum) is in this answer only; only its hash is stored.",
		Security:    secAdmin, DefaultStatus: http.StatusCreated, Errors: []int{401, 403, 422},
	}, func(ctx context.Context, in *createClientInput) (*createClientOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		b := in.Body
		c, secret, err := s.auth.CreateClient(ctx, auth.ClientInput{Name: b.Name, Type: b.Type, RedirectURIs: b.RedirectURIs,
			PostLogoutRedirectURIs: b.PostLogoutRedirectURIs, GrantTypes: b.GrantTypes, Scopes: b.Scopes, FirstParty: b.FirstParty,
			RequirePKCE: b.RequirePKCE, TokenEndpointAuthMethod: b.TokenEndpointAuthMethod, IDTokenAlg: b.IDTokenAlg,
			IDTokenClaims: b.IDTokenClaims, LogoURL: b.LogoURL}, meta(ctx), false)
		if err != nil {
			return nil, err
		}
		return &createClientOutput{CacheControl: "no-store", Body: CreatedClientBody{ClientBody: NewClientBody(c), ClientSecret: secret}}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-list-clients", Method: http.MethodGet, Path: "/v1/admin/clients", Tags: tags,
		Summary: "List OAuth clients (scope admin)", Security: secAdmin, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*listClientsOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		cs, err := s.auth.ListClients(ctx)
		if err != nil {
			return nil, err
		}
		out := &listClientsOutput{CacheControl: "no-store"}
		out.Body.Clients = make([]ClientBody, 0, len(cs))
		for _, c := range cs {
			out.Body.Clients = append(out.Body.Clients, NewClientBody(c))
		}
		return out, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-get-client", Method: http.MethodGet, Path: "/v1/admin/clients/{id}", Tags: tags,
		Summary: "Get an OAuth client (scope admin)", Security: secAdmin, Errors: []int{401, 403, 404},
	}, func(ctx context.Context, in *clientIDInput) (*clientOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		c, err := s.auth.Client(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &clientOutput{CacheControl: "no-store", Body: NewClientBody(c)}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-patch-client", Method: http.MethodPatch, Path: "/v1/admin/clients/{id}", Tags: tags,
		Summary:     "Change an OAuth client's settings (scope admin)",
		Description: "Members left out stay as they are; the result passes the same checks as a new client. The type cannot change. Clients from the configuration file are read-only (409).",
		Security:    secAdmin, Errors: []int{401, 403, 404, 409, 422},
	}, func(ctx context.Context, in *patchClientInput) (*clientOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		b := in.Body
		c, err := s.auth.UpdateClient(ctx, in.ID, auth.ClientPatch{Name: b.Name, RedirectURIs: b.RedirectURIs,
			PostLogoutRedirectURIs: b.PostLogoutRedirectURIs, GrantTypes: b.GrantTypes, Scopes: b.Scopes, FirstParty: b.FirstParty,
			RequirePKCE: b.RequirePKCE, TokenEndpointAuthMethod: b.TokenEndpointAuthMethod, IDTokenAlg: b.IDTokenAlg,
			IDTokenClaims: b.IDTokenClaims, LogoURL: b.LogoURL}, meta(ctx))
		if err != nil {
			return nil, err
		}
		return &clientOutput{CacheControl: "no-store", Body: NewClientBody(c)}, nil
	})

	register(s, api, huma.Operation{
		OperationID: "admin-delete-client", Method: http.MethodDelete, Path: "/v1/admin/clients/{id}", Tags: tags,
		Summary:     "Delete an OAuth client (scope admin)",
		Description: "Also removes its consents and authorization codes and revokes its refresh tokens. Clients from the configuration file are read-only (409).",
		Security:    secAdmin, DefaultStatus: http.StatusNoContent, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *clientIDInput) (*struct{}, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		return nil, s.auth.DeleteClient(ctx, in.ID, meta(ctx))
	})

	register(s, api, huma.Operation{
		OperationID: "admin-rotate-client-secret", Method: http.MethodPost, Path: "/v1/admin/clients/{id}/secret", Tags: tags,
		Summary:     "Rotate a confidential client's secret (scope admin)",
		Description: "Returns the new secret once; the previous one keeps working for 24 hours. Public clients have no secret (409), and clients from the configuration file are read-only (409).",
		Security:    secAdmin, Errors: []int{401, 403, 404, 409},
	}, func(ctx context.Context, in *clientIDInput) (*rotateSecretOutput, error) {
		if _, err := s.requireAdmin(ctx); err != nil {
			return nil, err
		}
		secret, until, err := s.auth.RotateClientSecret(ctx, in.ID, meta(ctx))
		if err != nil {
			return nil, err
		}
		out := &rotateSecretOutput{CacheControl: "no-store"}
		out.Body.ClientID, out.Body.ClientSecret, out.Body.PreviousSecretExpiresAt = in.ID, secret, until
		return out, nil
	})
}
