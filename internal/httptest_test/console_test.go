package httptest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Who opens the admin console (SPEC §17): an administrator's browser
// session — at aal2 unless GATEHOUSE_ADMIN_REQUIRE_MFA=false — and nothing
// else: no token, no API key, no other user.
func TestConsoleAccess(t *testing.T) {
	g := start(t, nil)
	g.login(t, g.root)
	user := g.user(t, "console")
	_, key := g.createKey(t, g.root, "admin")

	r := g.get(t, "/admin")
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login?return_to=/admin") {
		t.Fatalf("GET /admin without credentials: %s (Location %q), want 303 to the login page", r, r.Header.Get("Location"))
	}
	for name, h := range map[string][]string{
		"a user's session":         g.cookie(user),
		"the admin's access token": bearer(g.root.Access),
		"the admin's API key":      apiKey(key),
	} {
		if r := g.get(t, "/admin", h); r.Status != http.StatusForbidden {
			t.Errorf("GET /admin with %s: %s, want 403", name, r)
		}
	}
	// The admin has no second factor: sent to set one up.
	r = g.get(t, "/admin", g.cookie(g.root))
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/account?done=admin-needs-2fa") {
		t.Fatalf("GET /admin as an admin without a second factor: %s (Location %q), want 303 to set one up", r, r.Header.Get("Location"))
	}

	// The account page links administrators to the console, and only them.
	if p, _ := g.htmlPage(t, http.MethodGet, "/account", nil, g.cookie(g.root)); p.Status != http.StatusOK || !strings.Contains(string(p.Body), `<a href="/admin">Admin console</a>`) {
		t.Errorf("the admin's account page: %d, want a link to the console", p.Status)
	}
	if p, _ := g.htmlPage(t, http.MethodGet, "/account", nil, g.cookie(user)); p.Status != http.StatusOK || strings.Contains(string(p.Body), `href="/admin"`) {
		t.Errorf("a user's account page: %d, want no link to the console", p.Status)
	}

	t.Run("PasskeysNotAFactor", func(t *testing.T) {
		// Passkeys do not count as a second factor here: the admin is
		// told to set up an authenticator app, not "an app or a passkey".
		g := start(t, map[string]string{"GATEHOUSE_PASSKEY_IS_MFA": "false"})
		g.login(t, g.root)
		r := g.get(t, "/admin", g.cookie(g.root))
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/account?done=admin-needs-totp") {
			t.Fatalf("GET /admin as an admin without TOTP, passkeys not a factor: %s (Location %q)", r, r.Header.Get("Location"))
		}
		if p, _ := g.htmlPage(t, http.MethodGet, r.Header.Get("Location"), nil, g.cookie(g.root)); p.Status != http.StatusOK || !strings.Contains(string(p.Body), "passkeys do not count as one") {
			t.Fatalf("the account page after that redirect: %s", p)
		}
	})

	t.Run("WithoutMFARequirement", func(t *testing.T) {
		g := start(t, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false"})
		g.login(t, g.root)
		r := g.get(t, "/admin", g.cookie(g.root))
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Overview") {
			t.Fatalf("GET /admin as an admin (MFA not required): %s", r)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Fatalf("the console's CSP %q: want the hosted pages' policy, without script", csp)
		}
		user := g.user(t, "console2")
		if r := g.get(t, "/admin", g.cookie(user)); r.Status != http.StatusForbidden {
			t.Fatalf("GET /admin with a user's session: %s, want 403", r)
		}
		// The role is read fresh: an admin demoted a moment ago is out.
		other := g.user(t, "demoted", "admin")
		if r := g.get(t, "/admin", g.cookie(other)); r.Status != http.StatusOK {
			t.Fatalf("GET /admin as a second admin: %s", r)
		}
		g.setRoles(t, other.ID, "user")
		if r := g.get(t, "/admin", g.cookie(other)); r.Status != http.StatusForbidden {
			t.Fatalf("GET /admin as an admin demoted since the session began: %s, want 403", r)
		}
	})

	t.Run("Off", func(t *testing.T) {
		g := start(t, map[string]string{"GATEHOUSE_ADMIN_CONSOLE": "false", "GATEHOUSE_ADMIN_REQUIRE_MFA": "false"})
		g.login(t, g.root)
		if r := g.get(t, "/admin", g.cookie(g.root)); r.Status != http.StatusNotFound {
			t.Fatalf("GET /admin with the console off: %s, want 404", r)
		}
	})
}

// The console's step-up page: the password (and the second factor, when
// there is one) again, then back to a console path — never elsewhere.
func TestConsoleStepUp(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false"})
	g.login(t, g.root)
	if r := g.get(t, "/admin/step-up?return_to=/admin/users", g.cookie(g.root)); r.Status != http.StatusOK {
		t.Fatalf("GET /admin/step-up: %s", r)
	}
	post := func(form url.Values) *http.Response {
		t.Helper()
		r := g.send(t, http.MethodPost, "/admin/step-up", form, g.cookie(g.root), g.sameOrigin())
		return &http.Response{StatusCode: r.Status, Header: r.Header}
	}
	if r := post(url.Values{"password": {"wrong password"}, "return_to": {"/admin/users"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("step-up with a wrong password: %d, want 400", r.StatusCode)
	}
	for _, tc := range []struct{ returnTo, want string }{
		{"/admin/users?q=a", "/admin/users?q=a"},
		{"https://evil.example/admin", "/admin"},
		{"//evil.example/admin", "/admin"},
		{"/account", "/admin"},
	} {
		r := post(url.Values{"password": {password}, "return_to": {tc.returnTo}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != tc.want {
			t.Fatalf("step-up with return_to %q: %d to %q, want 303 to %q", tc.returnTo, r.StatusCode, r.Header.Get("Location"), tc.want)
		}
	}
	// A cross-site post carrying the cookie never gets there.
	r := g.send(t, http.MethodPost, "/admin/step-up", url.Values{"password": {password}}, g.cookie(g.root), crossSite)
	if r.Status != http.StatusForbidden {
		t.Fatalf("a cross-site step-up post: %s, want 403", r)
	}
}
