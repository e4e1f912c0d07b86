package server

import "net/http"

// hostPrefix is the cookie-name prefix that makes a browser accept the
// cookie only when it is Secure, has Path=/ and no Domain, and was set by
// an https origin (RFC 6265bis §4.1.3.2).
const hostPrefix = "__Host-"

// flowCookieName is the name of a flow's browser-binding cookie: with the
// __Host- prefix when the public URL is https (SPEC §18 H10), as given on
// http (development, where browsers refuse the prefix).
func (s *Server) flowCookieName(name string) string {
	if s.https {
		return hostPrefix + name
	}
	return name
}

// flowCookie is a browser-binding cookie of a flow (social login's binding
// of state to the browser, and any other): HttpOnly, SameSite=Lax so that a
// provider's top-level redirect back carries it. On https it is
// __Host-<name>, Secure, Path=/ and without Domain, so neither a sibling
// subdomain nor a plain-http response can set or overwrite it (cookie
// tossing: planting the attacker's binding to finish the attacker's flow in
// the victim's browser). On http it keeps its name and the narrower devPath.
// maxAge < 0 deletes the cookie; a deletion must carry the same name and
// path as the cookie it deletes, which building both here ensures.
func (s *Server) flowCookie(name, devPath, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: s.flowCookieName(name), Value: value, Path: devPath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if s.https {
		c.Path, c.Secure = "/", true
	}
	return c
}
