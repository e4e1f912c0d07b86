package server

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"
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
		Description: "grant_type=password (first-party clients) or refresh_token. Parameters only in the body.",
		RequestBody: form([]string{"grant_type"}, map[string]*huma.Schema{
			"grant_type":    {Type: "string", Enum: []any{"password", "refresh_token"}},
			"username":      str("the email (password grant)"),
			"password":      str("the password (password grant)"),
			"refresh_token": str("the refresh token (refresh_token grant)"),
			"scope":         str("space-separated scopes; default: all the user's roles allow"),
			"client_id":     str("optional client id"),
		}),
		Responses: map[string]*huma.Response{
			"200": {Description: "tokens", Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: "object", Properties: map[string]*huma.Schema{
				"access_token": str("RFC 9068 JWT"), "token_type": str("Bearer"), "expires_in": {Type: "integer"},
				"refresh_token": str("opaque, rotated on each use"), "scope": str("granted scopes"),
			}}}}},
			"400": oauthErr, "429": oauthErr, "503": oauthErr,
		},
	})
	doc.AddOperation(&huma.Operation{
		OperationID: "revoke", Method: http.MethodPost, Path: "/oauth2/revoke", Tags: []string{"oauth2"},
		Summary:     "Revoke a refresh token and its family (RFC 7009)",
		RequestBody: form([]string{"token"}, map[string]*huma.Schema{"token": str("the token"), "token_type_hint": str("refresh_token or access_token")}),
		Responses:   map[string]*huma.Response{"200": {Description: "revoked, or unknown"}, "400": oauthErr},
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
			"400": oauthErr, "401": oauthErr, "403": oauthErr,
		},
	})
}
