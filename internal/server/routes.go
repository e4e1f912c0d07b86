package server

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	swaggerfiles "github.com/swaggo/files/v2"
)

//go:embed docsui
var docsUI embed.FS

// routes lists every route of Gatehouse and the middleware around them.
//
// Every request passes, outermost first: outer (request id, client IP,
// security headers, recovery, access log, metrics) → limitBody (64 KiB,
// UTF-8) → authenticate (bearer token → principal) → adminNetworks (admin
// paths only from GATEHOUSE_ADMIN_ALLOWED_CIDRS) → the mux.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	// Operations.
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))

	// Discovery.
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleMetadata)

	// OAuth2 (RFC 6749, 7009, 7662): plain handlers, RFC 6749 errors.
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("POST /oauth2/revoke", s.handleRevoke)
	mux.HandleFunc("POST /oauth2/introspect", s.handleIntrospect)
	s.registerProviderRoutes(mux)

	// Revocation feed (SPEC §15): a stream and a long-poll, not JSON ops.
	mux.HandleFunc("GET /v1/revocations/stream", s.revocationStream)
	mux.HandleFunc("GET /v1/revocations", s.revocationPoll)

	// JSON API (/v1) through huma, which also writes /openapi.json.
	api := humago.New(mux, s.humaConfig())
	s.registerAccountRoutes(api)
	s.registerSessionRoutes(api)
	s.registerEmailRoutes(api)
	s.registerAPIKeyRoutes(api)
	s.registerAdminRoutes(api)
	s.registerClientRoutes(api)
	s.registerWebhookRoutes(api)
	s.registerIdentityRoutes(api)
	s.registerPasskeyRoutes(api)
	s.registerMFARoutes(api)
	s.registerConsentRoutes(api)
	documentOAuth2(api.OpenAPI())
	documentOIDC(api.OpenAPI())
	documentRevocations(api.OpenAPI())
	s.publicAPI = &publicOpenAPI{doc: api.OpenAPI()}

	// API docs: Swagger UI from embedded files (no CDN).
	mux.Handle("GET /docs", http.RedirectHandler("/docs/", http.StatusMovedPermanently))
	mux.Handle("GET /docs/", s.docsHandler())

	// Social login (OIDC): browser redirects, not JSON.
	mux.HandleFunc("GET /v1/oidc/{provider}/login", s.handleOIDCLogin)
	mux.HandleFunc("GET /v1/oidc/{provider}/link", s.handleOIDCLink)
	mux.HandleFunc("GET /v1/oidc/{provider}/callback", s.handleOIDCCallback)

	// Hosted pages (server-rendered; forms work without script) and their
	// assets; the rest of the pages are in registerPageRoutes.
	mux.HandleFunc("GET /reset-password", s.handleResetPage)
	mux.HandleFunc("POST /reset-password", s.handleResetSubmit)
	mux.HandleFunc("GET /verify-email", s.handleVerifyPage)
	mux.HandleFunc("POST /verify-email", s.handleVerifySubmit)
	mux.HandleFunc("GET /forgot-password", s.handleForgotPage)
	mux.HandleFunc("POST /forgot-password", s.handleForgotSubmit)
	mux.Handle("GET /assets/", assetsHandler())
	s.registerPageRoutes(mux)
	s.registerConsoleRoutes(mux)

	// Anything else: a problem document.
	mux.HandleFunc("/", notFound)

	// adminNetworks, innermost: outside GATEHOUSE_ADMIN_ALLOWED_CIDRS the
	// admin paths are answered as unknown ones (cidr.go).
	return s.outer(s.withCORS(limitBody(s.loginCSRF(s.authenticate(s.adminNetworks(route(mux)))))))
}

func (s *Server) humaConfig() huma.Config {
	cfg := huma.DefaultConfig("Gatehouse", s.version)
	cfg.CreateHooks = nil // no $schema links in bodies
	cfg.DocsPath = ""     // Swagger UI is served from embedded assets below
	cfg.SchemasPath = ""
	cfg.OpenAPIPath = "/openapi"
	cfg.Info.Description = "Gatehouse: authentication and authorization server. Roles say what a user may do; scopes say what a token may do."
	// A relative server keeps "Try it out" and the token URL on the origin
	// the docs page was opened from.
	cfg.Servers = []*huma.Server{{URL: "/"}}
	cfg.Formats["application/x-www-form-urlencoded"] = formFormat
	scopes := map[string]string{}
	for name, desc := range s.cfg.Scopes {
		scopes[name] = desc
	}
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"oauth2": {
			Type:        "oauth2",
			Description: "OAuth2 password grant for first-party clients; access tokens are RFC 9068 JWTs.",
			Flows: &huma.OAuthFlows{Password: &huma.OAuthFlow{
				TokenURL: "/oauth2/token", RefreshURL: "/oauth2/token", Scopes: scopes,
			}},
		},
		"apiKey": {
			Type: "apiKey", In: "header", Name: "X-API-Key",
			Description: "An API key (gth_…) from POST /v1/api-keys; also accepted as Authorization: Bearer gth_….",
		},
		"cookie": {
			Type: "apiKey", In: "cookie", Name: s.cookieName,
			Description: "The session cookie set by POST /v1/sessions. State-changing requests must come from this origin (CSRF protection).",
		},
	}
	return cfg
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	for _, p := range s.ready {
		if err := p.Ping(ctx); err != nil {
			s.log.WarnContext(ctx, "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// docsHandler serves Swagger UI: our index and initializer, the rest from
// swagger-ui-dist embedded by swaggo/files.
func (s *Server) docsHandler() http.Handler {
	ours, _ := fs.Sub(docsUI, "docsui")
	dist := http.FileServerFS(swaggerfiles.FS)
	own := http.FileServerFS(ours)
	return http.StripPrefix("/docs", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Swagger UI needs inline styles; scripts only from this origin.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		switch r.URL.Path {
		case "/", "/index.html", "/swagger-initializer.js":
			own.ServeHTTP(w, r)
		default:
			dist.ServeHTTP(w, r)
		}
	}))
}
