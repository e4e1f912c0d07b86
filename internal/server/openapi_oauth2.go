package server

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// documentOAuth2 adds the form-encoded OAuth2 endpoints, which are plain
// handlers, to the OpenAPI document.
func documentOAuth2(doc *huma.OpenAPI) {
	str := func(desc string) *huma.Schema { return &huma.Schema{Type: "string", Description: desc} }
	form := func(required []string, props map[string]*huma.Schema) *huma.RequestBody {
		return &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"application/x-www-form-urlencoded": {Schema: &huma.Schema{Type: "object", Properties: props, Required: required}},
		}}
	}
	oauthErr := &huma.Response{Description: "RFC 6749 §5.2 error", Content: map[string]*huma.MediaType{
		"application/json": {Schema: &huma.Schema{Type: "object", Properties: map[string]*huma.Schema{
			"error": str("error code"), "error_description": str("human-readable description"),
		}}},
	}}
	doc.AddOperation(&huma.Operation{
		OperationID: "token", Method: http.MethodPost, Path: "/oauth2/token", Tags: []string{"oauth2"},
		Summary:     "Token endpoint (RFC 6749)",
		Description: "grant_type=password (first-party clients), refresh_token, or urn:gatehouse:grant-type:mfa (the second step of a sign-in that answered 403 mfa_required: mfa_token with otp or recovery_code; docs/two-factor.md). Parameters only in the body.",
		RequestBody: form([]string{"grant_type"}, map[string]*huma.Schema{
			"grant_type":    {Type: "string", Enum: []any{"password", "refresh_token", auth.GrantTypeMFA}},
			"username":      str("the email (password grant)"),
			"password":      str("the password (password grant)"),
			"refresh_token": str("the refresh token (refresh_token grant)"),
			"mfa_token":     str("the challenge of a 403 mfa_required answer (mfa grant)"),
			"otp":           str("the 6-digit TOTP code (mfa grant)"),
			"recovery_code": str("a recovery code instead of otp (mfa grant)"),
			"scope":         str("space-separated scopes; default: all the user's roles allow"),
			"client_id":     str("optional client id"),
		}),
		Responses: map[string]*huma.Response{
			"200": {Description: "tokens", Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: "object", Properties: map[string]*huma.Schema{
				"access_token": str("RFC 9068 JWT"), "token_type": str("Bearer"), "expires_in": {Type: "integer"},
				"refresh_token": str("opaque, rotated on each use"), "scope": str("granted scopes"),
			}}}}},
			"400": oauthErr, "415": oauthErr, "429": oauthErr, "503": oauthErr,
			"403": {Description: "the password was right and a second factor is needed (SPEC §13)", Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: "object", Properties: map[string]*huma.Schema{
				"error": str("mfa_required"), "error_description": str("second factor required"),
				"code":        str("mfa_required, or mfa_enrollment_required when the account must set up a factor first"),
				"mfa_token":   str("ghm_…: finish with grant_type=urn:gatehouse:grant-type:mfa or POST /v1/mfa/verify"),
				"mfa_methods": {Type: "array", Items: &huma.Schema{Type: "string", Enum: []any{"totp", "recovery_code", "passkey"}}},
				"expires_in":  {Type: "integer"},
			}}}}},
		},
	})
	doc.AddOperation(&huma.Operation{
		OperationID: "revoke", Method: http.MethodPost, Path: "/oauth2/revoke", Tags: []string{"oauth2"},
		Summary:     "Revoke a refresh token and its family (RFC 7009)",
		RequestBody: form([]string{"token"}, map[string]*huma.Schema{"token": str("the token"), "token_type_hint": str("refresh_token or access_token")}),
		Responses:   map[string]*huma.Response{"200": {Description: "revoked, or unknown"}, "400": oauthErr, "415": oauthErr},
	})
	doc.AddOperation(&huma.Operation{
		OperationID: "introspect", Method: http.MethodPost, Path: "/oauth2/introspect", Tags: []string{"oauth2"},
		Summary:     "Introspect a token (RFC 7662); admins or API keys with scope introspect",
		Security:    []map[string][]string{{"oauth2": {"admin"}}},
		RequestBody: form([]string{"token"}, map[string]*huma.Schema{"token": str("the token"), "token_type_hint": str("optional hint")}),
		Responses: map[string]*huma.Response{
			"200": {Description: "RFC 7662 response", Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: "object", Properties: map[string]*huma.Schema{
				"active": {Type: "boolean"}, "sub": str("user id"), "scope": str("scopes"), "exp": {Type: "integer"}, "token_type": str("access_token, refresh_token, …"),
			}}}}},
			"400": oauthErr, "401": oauthErr, "415": oauthErr, "403": oauthErr,
		},
	})
}

// documentOIDC adds the social-login redirects, which are plain handlers,
// to the OpenAPI document.
func documentOIDC(doc *huma.OpenAPI) {
	str := func(desc string) *huma.Schema { return &huma.Schema{Type: "string", Description: desc} }
	provider := &huma.Param{Name: "provider", In: "path", Required: true, Schema: str("the provider id from the configuration")}
	returnTo := &huma.Param{Name: "return_to", In: "query", Schema: str("a relative path or a URL on an allowed origin; default /account")}
	redirect := map[string]*huma.Response{
		"302": {Description: "to the provider's authorization endpoint", Headers: map[string]*huma.Param{"Location": {Schema: str("")}}},
		"404": {Description: "no such provider"},
		"503": {Description: "the provider is not reachable yet"},
	}
	doc.AddOperation(&huma.Operation{
		OperationID: "oidc-login", Method: http.MethodGet, Path: "/v1/oidc/{provider}/login", Tags: []string{"social login"},
		Summary:     "Sign in with an identity provider (browser redirect)",
		Description: "Redirects with state, nonce and PKCE S256, all bound to this browser and single-use.",
		Parameters:  []*huma.Param{provider, returnTo}, Responses: redirect,
	})
	doc.AddOperation(&huma.Operation{
		OperationID: "oidc-link", Method: http.MethodGet, Path: "/v1/oidc/{provider}/link", Tags: []string{"social login"},
		Summary:    "Link an identity provider to the signed-in account (browser redirect)",
		Security:   []map[string][]string{{"cookie": {}}},
		Parameters: []*huma.Param{provider, returnTo}, Responses: redirect,
	})
	doc.AddOperation(&huma.Operation{
		OperationID: "oidc-callback", Method: http.MethodGet, Path: "/v1/oidc/{provider}/callback", Tags: []string{"social login"},
		Summary: "Where the provider sends the browser back",
		Parameters: []*huma.Param{provider,
			{Name: "code", In: "query", Schema: str("authorization code")},
			{Name: "state", In: "query", Schema: str("the state of the flow")}},
		Responses: map[string]*huma.Response{
			"303": {Description: "signed in: to return_to, with the session cookie"},
			"400": {Description: "the sign-in failed (a generic HTML page)"},
		},
	})
}
