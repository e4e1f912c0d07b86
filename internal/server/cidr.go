package server

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
)

// adminNetworks hides the admin console and the admin API from clients
// outside GATEHOUSE_ADMIN_ALLOWED_CIDRS (SPEC §17): for them /admin… and
// /v1/admin/* answer exactly what a path that does not exist answers, so
// that a scan from elsewhere learns nothing, not even that the paths
// exist: notFound, or — for a path not in its clean form — the redirect to
// the clean form that http.ServeMux gives every unclean path (the clean
// path then gets notFound). The client address is the one outer chose
// (clientAddr: the peer, or what a trusted proxy reports).
//
// It wraps the mux, inside every other middleware, so that everything
// before it treats these requests as it treats any unknown path. With no
// networks configured it is not in the chain at all.
//
// Outside the networks, /openapi.json and its variants leave out the admin
// API too (openapi_public.go).
func (s *Server) adminNetworks(next http.Handler) http.Handler {
	nets := s.cfg.AdminAllowedCIDRs
	if len(nets) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The decoded path, cleaned, is what the mux routes by (it
		// unescapes segment by segment: /%61dmin is /admin). The client's
		// address is looked at only for the paths this concerns.
		_, doc := openAPIVariants[r.URL.Path]
		if (!doc && !isAdminPath(cleanPath(r.URL.Path))) || s.adminReachable(r.Context()) {
			next.ServeHTTP(w, r)
			return
		}
		if doc {
			// The OpenAPI document without the admin API.
			if !s.publicAPI.serve(s, w, r, r.URL.Path) {
				next.ServeHTTP(w, r)
			}
			return
		}
		if esc := r.URL.EscapedPath(); r.Method != http.MethodConnect && cleanPath(esc) != esc {
			// What http.ServeMux answers for any unclean path.
			u := &url.URL{Path: cleanPath(esc), RawQuery: r.URL.RawQuery}
			http.RedirectHandler(u.String(), http.StatusTemporaryRedirect).ServeHTTP(w, r)
			return
		}
		notFound(w, r)
	})
}

// adminReachable reports whether the request's client may reach /admin and
// /v1/admin/* (GATEHOUSE_ADMIN_ALLOWED_CIDRS; every client when none are
// set).
func (s *Server) adminReachable(ctx context.Context) bool {
	nets := s.cfg.AdminAllowedCIDRs
	return len(nets) == 0 || inNetworks(clientIP(ctx), nets)
}

// isAdminPath reports whether the clean path p is /admin, under /admin/ or
// under /v1/admin/.
func isAdminPath(p string) bool {
	return p == "/admin" || p == "/v1/admin" || strings.HasPrefix(p, "/admin/") || strings.HasPrefix(p, "/v1/admin/")
}

// cleanPath is http.ServeMux's canonical form of a path: rooted, without
// . and .. elements or repeated slashes, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		if len(p) == len(np)+1 && strings.HasPrefix(p, np) {
			np = p
		} else {
			np += "/"
		}
	}
	return np
}

// inNetworks reports whether the address ip is in one of nets; an address
// that cannot be parsed is in none.
func inNetworks(ip string, nets []netip.Prefix) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// notFound is the answer for a path that does not exist: the mux's
// catch-all, and adminNetworks for admin paths outside the allowed
// networks.
func notFound(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, http.StatusNotFound, "no such endpoint")
}
