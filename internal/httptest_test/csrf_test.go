package httptest_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"gatehouse/internal/testserver"
)

// victim is an administrator signed in with a cookie session (so that a
// forged request would be allowed everything if the CSRF check did not
// stop it), with what the routes act on: an API key, a refresh token, and
// — made when first asked for, as each costs a password hash — a second
// session and another account (the bystander).
type victim struct {
	*account
	domain    string // the domain of every account made for this victim
	keyID     string
	g         *gh
	other     string   // id of the second session
	bystander *account // another account
	client    string   // id of an OAuth client (clientID)
}

var victims atomic.Int64

func (g *gh) victim(t *testing.T) *victim {
	t.Helper()
	v := &victim{domain: fmt.Sprintf("victim%d", victims.Add(1)), g: g}
	v.account = g.user(t, v.domain, "admin")
	v.keyID, _ = g.createKey(t, v.account, "read")
	return v
}

// otherSession is the id of a second session of the victim.
func (v *victim) otherSession(t *testing.T) string {
	t.Helper()
	if v.other == "" {
		_, v.other = v.g.session(t, v.account)
	}
	return v.other
}

// bystanderID is the id of another account in the victim's domain.
func (v *victim) bystanderID(t *testing.T) string {
	t.Helper()
	if v.bystander == nil {
		v.bystander = v.g.register(t, newEmail(v.domain))
	}
	return v.bystander.ID
}

// clientID is the id of a confidential OAuth client registered by root
// for the victim, named after its domain (see snapshot). The victim that is
// no one of TestProblemDocumentsEveryOperation, without a server, gets
// "unknown".
func (v *victim) clientID(t *testing.T) string {
	t.Helper()
	if v.client == "" && v.g == nil {
		return "unknown"
	}
	if v.client == "" {
		r := v.g.send(t, http.MethodPost, "/v1/admin/clients", map[string]any{"name": "app " + victimTag(v),
			"type": "confidential", "redirect_uris": []string{"https://app.example/cb"}}, bearer(v.g.root.Access))
		if r.Status != http.StatusCreated {
			t.Fatalf("register a client for %s: %s", v.domain, r)
		}
		v.client = str(t, r.JSON(t), "client_id")
	}
	return v.client
}

// victimTag marks the names of the OAuth clients made for v: "(domain)".
func victimTag(v *victim) string { return "(" + v.domain + ")" }

// snapshot is what a forged request could change, read with other
// credentials than the victim's cookie: the accounts of the victim's
// domain (roles, disabled, email_verified, name, updated_at), the newest
// audit events of the victim and the bystander, the victim's sessions, API
// keys, passkeys and linked identities, and whether its refresh token is
// active. It reads nothing of other victims, so that victims can be used
// in parallel.
func (g *gh) snapshot(t *testing.T, v *victim) string {
	t.Helper()
	var b strings.Builder
	add := func(what string, r *testserver.Response) {
		// A session's last use changes whenever the victim's cookie is
		// accepted, whatever the request does.
		fmt.Fprintf(&b, "%s: %d %s\n", what, r.Status, lastSeen.ReplaceAll(r.Body, nil))
	}
	root := bearer(g.root.Access)
	add("accounts", g.get(t, "/v1/admin/users?limit=200&q="+url.QueryEscape("@"+v.domain+"."), root))
	ids := []string{v.ID}
	if v.bystander != nil {
		ids = append(ids, v.bystander.ID)
	}
	for _, id := range ids {
		add("audit of "+id, g.get(t, "/v1/admin/audit?limit=20&user_id="+id, root))
	}
	for _, p := range []string{"/v1/me", "/v1/sessions", "/v1/api-keys", "/v1/passkeys", "/v1/me/identities"} {
		add(p, g.get(t, p, bearer(v.Access)))
	}
	add("refresh token", g.send(t, http.MethodPost, "/oauth2/introspect", url.Values{"token": {v.Refresh}}, root))
	// The OAuth clients named after the victim (clientID, and those a
	// forged POST /v1/admin/clients would make).
	r := g.get(t, "/v1/admin/clients", root)
	var clients struct {
		Clients []map[string]any `json:"clients"`
	}
	if err := json.Unmarshal(r.Body, &clients); err != nil {
		t.Fatalf("GET /v1/admin/clients: %v: %s", err, r.Body)
	}
	for _, c := range clients.Clients {
		if name, _ := c["name"].(string); strings.HasSuffix(name, " "+victimTag(v)) {
			j, _ := json.Marshal(c)
			fmt.Fprintf(&b, "client: %s\n", j)
		}
	}
	return b.String()
}

var lastSeen = regexp.MustCompile(`"last_seen_at":"[^"]*",?`)

// csrfCase is how to send one unsafe route as a victim would mean it: the
// path with its parameters, the body, and what the request does when it
// comes from the server's own origin.
type csrfCase struct {
	req func(t *testing.T, v *victim) (path string, body any)
	// same is the status of the same-origin request.
	same int
	// changes says the same-origin request changes the snapshot, so that
	// the cross-site one, refused, is shown to have had an effect to stop.
	changes bool
}

func fixed(path string, body any) func(*testing.T, *victim) (string, any) {
	return func(*testing.T, *victim) (string, any) { return path, body }
}

// csrfCases are the unsafe routes this test knows how to make effective.
// A route of the server missing here is still tested, with its path
// parameters set to "unknown" and an empty JSON object as the body.
var csrfCases = map[string]csrfCase{
	// JSON API.
	"POST /v1/register": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/register", map[string]string{"email": newEmail(v.domain), "password": password}
	}, 201, true},
	"DELETE /v1/me":            {fixed("/v1/me", nil), 204, true},
	"PATCH /v1/me":             {fixed("/v1/me", `{"name":"Mallory was here"}`), 200, true},
	"POST /v1/password/change": {fixed("/v1/password/change", map[string]string{"current_password": password, "new_password": "a whole new pass phrase"}), 204, true},
	"POST /v1/password/forgot": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/password/forgot", map[string]string{"email": v.Email}
	}, 202, false},
	"POST /v1/password/reset":      {fixed("/v1/password/reset", map[string]string{"token": "not-a-token", "new_password": "a whole new pass phrase"}), 400, false},
	"POST /v1/email/verify":        {fixed("/v1/email/verify", map[string]string{"token": "not-a-token"}), 400, false},
	"POST /v1/email/verify/resend": {fixed("/v1/email/verify/resend", nil), 202, false},
	"POST /v1/api-keys":            {fixed("/v1/api-keys", map[string]any{"name": "forged", "scopes": []string{"admin"}}), 201, true},
	"DELETE /v1/api-keys/{id}":     {func(t *testing.T, v *victim) (string, any) { return "/v1/api-keys/" + v.keyID, nil }, 204, true},
	"POST /v1/sessions": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/sessions", map[string]string{"email": v.Email, "password": password}
	}, 201, true},
	"DELETE /v1/sessions":           {fixed("/v1/sessions", nil), 204, true},
	"DELETE /v1/sessions/current":   {fixed("/v1/sessions/current", nil), 204, true},
	"DELETE /v1/sessions/{id}":      {func(t *testing.T, v *victim) (string, any) { return "/v1/sessions/" + v.otherSession(t), nil }, 204, true},
	"DELETE /v1/me/identities/{id}": {fixed("/v1/me/identities/unknown", nil), 404, false},
	"PATCH /v1/admin/users/{id}": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/admin/users/" + v.bystanderID(t), `{"roles":["admin"],"disabled":true}`
	}, 200, true},
	"DELETE /v1/admin/users/{id}":       {func(t *testing.T, v *victim) (string, any) { return "/v1/admin/users/" + v.bystanderID(t), nil }, 204, true},
	"POST /v1/admin/users/{id}/revoke":  {func(t *testing.T, v *victim) (string, any) { return "/v1/admin/users/" + v.ID + "/revoke", nil }, 204, true},
	"POST /v1/passkeys/register/begin":  {fixed("/v1/passkeys/register/begin", nil), 200, false},
	"POST /v1/passkeys/register/finish": {fixed("/v1/passkeys/register/finish", `{"id":"x","rawId":"x","type":"public-key","response":{}}`), 422, false},
	"POST /v1/passkeys/login/begin":     {fixed("/v1/passkeys/login/begin", nil), 200, false},
	"POST /v1/passkeys/login/finish":    {fixed("/v1/passkeys/login/finish", `{"id":"x","rawId":"x","type":"public-key","response":{}}`), 401, false},
	"PATCH /v1/passkeys/{id}":           {fixed("/v1/passkeys/unknown", `{"name":"forged"}`), 404, false},
	"DELETE /v1/passkeys/{id}":          {fixed("/v1/passkeys/unknown", nil), 404, false},
	// Two-factor (SPEC §13).
	"POST /v1/mfa/totp":           {fixed("/v1/mfa/totp", nil), 201, false},
	"POST /v1/mfa/totp/confirm":   {fixed("/v1/mfa/totp/confirm", map[string]string{"enrollment_id": "unknown", "code": "123456"}), 404, false},
	"DELETE /v1/mfa/totp":         {fixed("/v1/mfa/totp", nil), 404, false},
	"POST /v1/mfa/recovery-codes": {fixed("/v1/mfa/recovery-codes", nil), 409, false},
	"POST /v1/mfa/verify":         {fixed("/v1/mfa/verify", map[string]string{"mfa_token": "ghm_unknown", "code": "123456"}), 400, false},
	"POST /v1/mfa/passkey/begin":  {fixed("/v1/mfa/passkey/begin", nil), 422, false},
	"POST /v1/mfa/passkey/finish": {fixed("/v1/mfa/passkey/finish", `{"id":"x","rawId":"x","type":"public-key","response":{}}`), 401, false},
	"POST /v1/mfa/step-up":        {fixed("/v1/mfa/step-up", map[string]string{"password": password}), 204, true},
	"DELETE /v1/admin/users/{id}/mfa": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/admin/users/" + v.bystanderID(t) + "/mfa", nil
	}, 204, true},
	// OAuth clients (SPEC §14).
	"POST /v1/admin/clients": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/admin/clients", map[string]any{"name": "forged " + victimTag(v), "type": "confidential",
			"redirect_uris": []string{"https://evil.example/cb"}, "first_party": true}
	}, 201, true},
	"PATCH /v1/admin/clients/{id}": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/admin/clients/" + v.clientID(t), `{"redirect_uris":["https://evil.example/cb"],"first_party":true}`
	}, 200, true},
	"DELETE /v1/admin/clients/{id}": {func(t *testing.T, v *victim) (string, any) { return "/v1/admin/clients/" + v.clientID(t), nil }, 204, true},
	"POST /v1/admin/clients/{id}/secret": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/admin/clients/" + v.clientID(t) + "/secret", nil
	}, 200, true},
	// Webhooks (SPEC §16): the endpoint's creation is audited as the
	// victim's.
	"POST /v1/admin/webhooks": {func(t *testing.T, v *victim) (string, any) {
		return "/v1/admin/webhooks", map[string]any{"url": "https://evil.example/" + v.domain, "events": []string{"*"}}
	}, 201, true},
	"PATCH /v1/admin/webhooks/{id}": {fixed("/v1/admin/webhooks/unknown", `{"url":"https://evil.example/x"}`), 404, false},

	// OAuth2.
	"POST /oauth2/token": {func(t *testing.T, v *victim) (string, any) {
		return "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {v.Email}, "password": {password}}
	}, 200, true},
	"POST /oauth2/revoke": {func(t *testing.T, v *victim) (string, any) { return "/oauth2/revoke", url.Values{"token": {v.Refresh}} }, 200, true},
	"POST /oauth2/introspect": {func(t *testing.T, v *victim) (string, any) {
		return "/oauth2/introspect", url.Values{"token": {v.Access}}
	}, 200, false},

	// Hosted pages.
	"POST /login": {func(t *testing.T, v *victim) (string, any) {
		return "/login", url.Values{"email": {v.Email}, "password": {password}}
	}, 303, true},
	"POST /register": {func(t *testing.T, v *victim) (string, any) {
		return "/register", url.Values{"email": {newEmail(v.domain)}, "password": {password}}
	}, 200, true},
	"POST /logout":               {fixed("/logout", url.Values{}), 303, true},
	"POST /account/profile":      {fixed("/account/profile", url.Values{"name": {"Mallory was here"}}), 303, true},
	"POST /account/password":     {fixed("/account/password", url.Values{"current_password": {password}, "new_password": {"a whole new pass phrase"}}), 303, true},
	"POST /account/email/resend": {fixed("/account/email/resend", url.Values{}), 303, false},
	"POST /account/sessions/{id}/revoke": {func(t *testing.T, v *victim) (string, any) {
		return "/account/sessions/" + v.otherSession(t) + "/revoke", url.Values{}
	}, 303, true},
	"POST /account/sessions/revoke-others": {fixed("/account/sessions/revoke-others", url.Values{}), 303, true},
	"POST /account/api-keys":               {fixed("/account/api-keys", url.Values{"name": {"forged"}, "scope": {"admin"}, "expires": {"30"}}), 200, true},
	"POST /account/api-keys/{id}/revoke": {func(t *testing.T, v *victim) (string, any) {
		return "/account/api-keys/" + v.keyID + "/revoke", url.Values{}
	}, 303, true},
	"POST /account/identities/{id}/unlink": {fixed("/account/identities/unknown/unlink", url.Values{}), 404, false},
	"POST /account/passkeys/{id}/rename":   {fixed("/account/passkeys/unknown/rename", url.Values{"name": {"forged"}}), 404, false},
	"POST /account/passkeys/{id}/delete":   {fixed("/account/passkeys/unknown/delete", url.Values{}), 404, false},
	"POST /reset-password":                 {fixed("/reset-password", url.Values{"token": {"not-a-token"}, "new_password": {"a whole new pass phrase"}}), 400, false},
	"POST /verify-email":                   {fixed("/verify-email", url.Values{"token": {"not-a-token"}}), 400, false},
	"POST /forgot-password": {func(t *testing.T, v *victim) (string, any) {
		return "/forgot-password", url.Values{"email": {v.Email}}
	}, 200, false},
}

func unsafeMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch || m == http.MethodDelete
}

// unsafeRoutes lists every state-changing route of the server as "METHOD
// /path": the operations of its OpenAPI document, and the patterns
// registered on the mux directly (hosted pages, OAuth2), read from the
// source of internal/server so that a new one is tested without being
// added anywhere.
func unsafeRoutes(t *testing.T, g *gh) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, op := range operations(t, g) {
		if unsafeMethod(op.method) {
			seen[op.method+" "+op.path] = true
		}
	}
	for _, p := range muxPatterns(t) {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			// A pattern without a method takes every method. The only
			// one is the catch-all that answers 404 for anything else.
			if p != "/" {
				t.Errorf("mux pattern %q takes every method: add its unsafe methods to this test", p)
			}
			continue
		}
		if unsafeMethod(method) {
			seen[method+" "+strings.TrimSpace(path)] = true
		} else if method != http.MethodGet && method != http.MethodHead {
			t.Errorf("mux pattern %q: a method this test does not know", p)
		}
	}
	out := slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	})
	for k := range csrfCases {
		if !seen[k] {
			t.Errorf("csrfCases names %q, which the server does not have", k)
		}
	}
	return out
}

// muxPatterns reads the literal patterns passed to Handle and HandleFunc
// in internal/server's (non-test) source.
func muxPatterns(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "server", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no source of internal/server: %v", err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route registered with a pattern that is not a literal: this test cannot see it", fset.Position(call.Pos()))
				return true
			}
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
			return true
		})
	}
	if !slices.Contains(out, "POST /login") || !slices.Contains(out, "POST /oauth2/token") {
		t.Fatalf("the mux patterns read from internal/server miss POST /login or POST /oauth2/token: %q", out)
	}
	return out
}

// request builds what case c sends for route ("METHOD /path") as v.
func request(t *testing.T, v *victim, route string) (method, path string, body any, c csrfCase, known bool) {
	method, tmpl, _ := strings.Cut(route, " ")
	c, known = csrfCases[route]
	if !known {
		path = tmpl
		for strings.Contains(path, "{") {
			i := strings.Index(path, "{")
			j := strings.Index(path[i:], "}")
			path = path[:i] + "unknown" + path[i+j+1:]
		}
		return method, path, "{}", c, false
	}
	path, body = c.req(t, v)
	return method, path, body, c, true
}

// TestCSRFEveryUnsafeRoute sends every state-changing route of the server
// twice, as an administrator signed in with a cookie: cross-site (Origin
// https://evil.example, Sec-Fetch-Site cross-site) it must be refused with
// 403 and change nothing (SPEC §4: every state-changing request
// authenticated by cookie, the hosted forms and logging in); from the
// server's own origin the same request, as a fresh administrator, must not
// be refused (and, where the route does something, does it). The
// cross-site requests share one victim: as none may change anything, each
// finds the victim as the first found it.
func TestCSRFEveryUnsafeRoute(t *testing.T) {
	g := start(t, nil)
	routes := unsafeRoutes(t, g)
	if len(routes) < 40 {
		t.Fatalf("only %d unsafe routes found: %q", len(routes), routes)
	}
	shared := g.victim(t)
	shared.otherSession(t)
	shared.bystanderID(t)
	t.Run("cross-site", func(t *testing.T) {
		for _, route := range routes {
			t.Run(route, func(t *testing.T) {
				v := shared
				method, path, body, _, _ := request(t, v, route)
				before := g.snapshot(t, v)
				r := g.send(t, method, path, body, g.cookie(v.account), crossSite)
				if after := g.snapshot(t, v); after != before {
					t.Errorf("cross-site %s changed state:\nbefore:\n%s\nafter:\n%s", route, before, after)
				}
				if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 {
					t.Errorf("cross-site %s set cookies %q", route, sc)
				}
				if r.Status != http.StatusForbidden {
					t.Fatalf("cross-site %s %s with a session cookie: %s, want 403", method, path, r)
				}
				if strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/oauth2/") {
					wantProblem(t, "cross-site "+route, r, http.StatusForbidden)
				}
			})
		}
	})
	// Each same-origin request acts on its own victim: they run in
	// parallel.
	t.Run("same-origin", func(t *testing.T) {
		for _, route := range routes {
			t.Run(route, func(t *testing.T) {
				t.Parallel()
				v := g.victim(t)
				method, path, body, c, known := request(t, v, route)
				before := g.snapshot(t, v)
				r := g.send(t, method, path, body, g.cookie(v.account), g.sameOrigin())
				switch {
				case r.Status == http.StatusForbidden || r.Status >= 500:
					t.Fatalf("same-origin %s %s: %s", method, path, r)
				case known && r.Status != c.same:
					t.Fatalf("same-origin %s %s: %s, want %d", method, path, r, c.same)
				case known && c.changes && g.snapshot(t, v) == before:
					t.Fatalf("same-origin %s %s (%d) changed nothing: the request this test forges would not do anything", method, path, r.Status)
				}
			})
		}
	})
}

// TestCSRFLoginAndFormsWithoutCookie: logging in is refused cross-origin
// even without a session cookie (login CSRF: no site may sign a browser
// into the attacker's account), and so is every hosted form; the refusal
// sets no cookie and opens no session. The same requests from the
// server's own origin pass.
func TestCSRFLoginAndFormsWithoutCookie(t *testing.T) {
	g := start(t, nil)
	a := g.user(t, "login")
	sessions := func() string {
		t.Helper()
		return g.get(t, "/v1/sessions", bearer(a.Access)).String()
	}
	creds := map[string]string{"email": a.Email, "password": password}
	form := url.Values{"email": {a.Email}, "password": {password}}
	for _, c := range []struct {
		path string
		body any
		same int // from the server's own origin
	}{
		{"/v1/sessions", creds, http.StatusCreated},
		{"/login", form, http.StatusSeeOther},
		{"/v1/passkeys/login/begin", map[string]string{"email": a.Email}, http.StatusOK},
		{"/v1/passkeys/login/finish", `{"id":"x","rawId":"x","type":"public-key","response":{}}`, http.StatusUnauthorized},
		{"/register", url.Values{"email": {newEmail("login")}, "password": {password}}, http.StatusOK},
		{"/forgot-password", url.Values{"email": {a.Email}}, http.StatusOK},
		{"/reset-password", url.Values{"token": {"not-a-token"}, "new_password": {"a whole new pass phrase"}}, http.StatusBadRequest},
		{"/verify-email", url.Values{"token": {"not-a-token"}}, http.StatusBadRequest},
		{"/logout", url.Values{}, http.StatusSeeOther},
	} {
		t.Run(c.path, func(t *testing.T) {
			before := sessions()
			r := g.send(t, http.MethodPost, c.path, c.body, crossSite)
			if r.Status != http.StatusForbidden {
				t.Errorf("cross-site POST %s without a cookie: %s, want 403", c.path, r)
			}
			if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("cross-site POST %s set cookies %q", c.path, sc)
			}
			if after := sessions(); after != before {
				t.Errorf("cross-site POST %s changed the sessions:\n%s\n%s", c.path, before, after)
			}
			if r := g.send(t, http.MethodPost, c.path, c.body, g.sameOrigin()); r.Status != c.same {
				t.Errorf("same-origin POST %s: %s, want %d", c.path, r, c.same)
			}
		})
	}
}

// TestCSRFOriginHeaders: what counts as cross-origin, on PATCH /v1/me with
// a session cookie. A browser's cross-site or same-site (another origin of
// the same site) request, or an Origin of another site without Fetch
// metadata (older browsers), is refused; same-origin, a navigation the user
// started (Sec-Fetch-Site: none), the public URL's origin, and a request
// without either header (not a browser: no ambient cookie to abuse) pass.
func TestCSRFOriginHeaders(t *testing.T) {
	g := start(t, nil)
	a := g.user(t, "origin")
	for _, c := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"Sec-Fetch-Site cross-site", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"Sec-Fetch-Site same-site", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost"}, http.StatusForbidden},
		{"Origin of another site", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"Origin null", []string{"Origin", "null"}, http.StatusForbidden},
		{"same-origin", g.sameOrigin(), http.StatusOK},
		{"Sec-Fetch-Site none", []string{"Sec-Fetch-Site", "none"}, http.StatusOK},
		{"Origin the public URL", []string{"Origin", g.URL}, http.StatusOK},
		{"no Origin, no Sec-Fetch-Site", nil, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "name by " + c.name
			r := g.send(t, http.MethodPatch, "/v1/me", map[string]string{"name": name}, g.cookie(a), c.hdr)
			if r.Status != c.want {
				t.Fatalf("%s: %s, want %d", c.name, r, c.want)
			}
			got := g.get(t, "/v1/me", bearer(a.Access)).JSON(t)["name"]
			if (got == name) != (c.want == http.StatusOK) {
				t.Fatalf("%s: answered %d, and the name is now %q", c.name, r.Status, got)
			}
		})
	}
}

// TestCSRFExemptCredentials: requests authenticated by a bearer token or an
// API key are not subject to the cross-origin check (SPEC §4): a browser
// never attaches them on its own. Cross-site, with the browser's headers,
// they do what they ask.
func TestCSRFExemptCredentials(t *testing.T) {
	g := start(t, nil)
	a := g.user(t, "exempt")
	_, key := g.createKey(t, a, "read", "write")
	name := func() any { return g.get(t, "/v1/me", bearer(a.Access)).JSON(t)["name"] }
	for _, c := range []struct {
		name string
		hdr  []string
	}{
		{"bearer access token", bearer(a.Access)},
		{"X-API-Key", apiKey(key)},
		{"API key as bearer", bearer(key)},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := "set cross-site by " + c.name
			r := g.send(t, http.MethodPatch, "/v1/me", map[string]string{"name": want}, c.hdr, crossSite)
			if r.Status != http.StatusOK || name() != want {
				t.Fatalf("cross-site PATCH /v1/me with a %s: %s, name %v", c.name, r, name())
			}
		})
	}
	// Unsafe methods other than PATCH, with a bearer token: a new API key
	// and ending a session.
	r := g.send(t, http.MethodPost, "/v1/api-keys", map[string]any{"name": "cross-site", "scopes": []string{"read"}}, bearer(a.Access), crossSite)
	if r.Status != http.StatusCreated {
		t.Fatalf("cross-site POST /v1/api-keys with a bearer token: %s", r)
	}
	if r := g.send(t, http.MethodDelete, "/v1/sessions/"+a.SessionID, nil, bearer(a.Access), crossSite); r.Status != http.StatusNoContent {
		t.Fatalf("cross-site DELETE /v1/sessions/{id} with a bearer token: %s", r)
	}
	if r := g.get(t, "/v1/me", g.cookie(a)); r.Status != http.StatusUnauthorized {
		t.Fatalf("the session ended cross-site by bearer still works: %s", r)
	}
}
