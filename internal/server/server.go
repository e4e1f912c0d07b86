// Package server is Gatehouse's HTTP layer: the routes (routes.go lists
// them all), the middleware every request passes through, the JSON API
// (huma, which also generates the OpenAPI 3.1 document), the OAuth2
// endpoints, and the operations endpoints. Handlers return errors; one table
// (errors.go) turns domain errors into statuses and problem documents.
package server

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"

	"gatehouse/internal/auth"
	"gatehouse/internal/config"
	"gatehouse/internal/oidc"
	"gatehouse/internal/passkey"
	"gatehouse/internal/revfeed"
	"gatehouse/internal/token"
)

// Pinger checks a dependency for /readyz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are what the server needs; cmd wires them.
type Deps struct {
	Config   *config.Config
	Auth     *auth.Service
	Keys     *token.Keyring
	OIDC     *oidc.Registry // configured identity providers (may be empty)
	Passkeys *passkey.Service
	Ready    []Pinger
	Metrics  *Metrics
	Log      *slog.Logger
	Version  string
	// The revocation feed (SPEC §15); both nil when it is off.
	Feed    *revfeed.Hub
	Revoked *revfeed.Set
}

// Server is the HTTP handler of Gatehouse.
type Server struct {
	cfg      *config.Config
	auth     *auth.Service
	keys     *token.Keyring
	oidc     *oidc.Registry
	passkeys *passkey.Service
	ready    []Pinger
	metrics  *Metrics
	log      *slog.Logger
	version  string
	https    bool
	handler  http.Handler
	feed     *revfeed.Hub
	revoked  *revfeed.Set

	pages      map[string]*template.Template
	console    map[string]*template.Template // the admin console (console.go)
	publicAPI  *publicOpenAPI                // /openapi.* outside the admin networks (openapi_public.go)
	cookieName string
	csrf       *http.CrossOriginProtection
	cors       map[string]bool
}

// New builds the handler.
func New(d Deps) *Server {
	s := &Server{cfg: d.Config, auth: d.Auth, keys: d.Keys, oidc: d.OIDC, passkeys: d.Passkeys, ready: d.Ready, metrics: d.Metrics,
		log: d.Log, version: d.Version, https: d.Config.IsHTTPS(), feed: d.Feed, revoked: d.Revoked}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// On https the cookie takes the __Host- prefix: the browser then
	// insists on Secure, Path=/ and no Domain, so no subdomain can set it.
	s.cookieName = "gatehouse_session"
	if s.https {
		s.cookieName = "__Host-gatehouse_session"
	}
	s.csrf = http.NewCrossOriginProtection()
	s.cors = map[string]bool{}
	if o := origin(d.Config.PublicURL); o != "" {
		_ = s.csrf.AddTrustedOrigin(o)
	}
	for _, o := range d.Config.CORSOrigins {
		s.cors[o] = true
		_ = s.csrf.AddTrustedOrigin(o)
	}
	s.pages = s.parsePages()
	s.console = s.parseConsole()
	s.handler = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// origin returns scheme://host[:port] of a URL.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
