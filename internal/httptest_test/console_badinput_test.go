package httptest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Bad input to the admin console gets a page that says what is wrong (a
// 4xx), or the page without the bad part — never a 5xx, and never a
// change: every console route with unknown ids, junk filters and cursors,
// oversized values, control characters and bodies that are not forms.
func TestConsoleBadInput(t *testing.T) {
	g := startConsole(t, nil)
	u := g.user(t, "junk")
	long := strings.Repeat("x", 5000)
	nul := "%00"
	gets := []string{
		"/admin/users?q=" + long,
		"/admin/users?q=" + nul + "&role=" + nul,
		"/admin/users?role=emperor&disabled=maybe&verified=2&mfa=%FF",
		"/admin/users?cursor=!!!",
		"/admin/users?cursor=" + long,
		"/admin/users/nonexistent",
		"/admin/users/" + nul,
		"/admin/users/" + strings.Repeat("a", 300),
		"/admin/users/nonexistent/disable",
		"/admin/users/nonexistent/reset-mfa",
		"/admin/users/nonexistent/revoke-all",
		"/admin/audit?from=garbage&to=2026-99-99T99:99",
		"/admin/audit?from=2026-01-01T00:00&to=2025-01-01T00:00",
		"/admin/audit?type=" + long + "&user=" + long,
		"/admin/audit?cursor=xyz",
		"/admin/audit?user=" + nul,
		"/admin/audit/export?format=xml",
		"/admin/audit/export?format=jsonl&from=bad",
		"/admin/clients/nonexistent",
		"/admin/clients/nonexistent/delete",
		"/admin/webhooks/nonexistent",
		"/admin/webhooks/nonexistent/delete",
		"/admin/webhooks/nonexistent?status=weird&cursor=zz",
		"/admin/settings?x=" + long,
		"/admin/step-up?return_to=" + long,
		"/admin/?notice=" + long,
	}
	root := g.cookie(g.root)
	before := g.adminUserState(t, u.ID)
	check := func(method, path string, r interface{ String() string }, status int) {
		t.Helper()
		if status >= 500 {
			t.Errorf("%s %.120s: %d, want a 4xx or the page (%.300s)", method, path, status, r.String())
		}
	}
	for _, p := range gets {
		r := g.get(t, p, root)
		check(http.MethodGet, p, r, r.Status)
	}
	posts := []struct {
		path string
		form url.Values
	}{
		{"/admin/users/nonexistent/disable", nil},
		{"/admin/users/nonexistent/enable", nil},
		{"/admin/users/nonexistent/verify", nil},
		{"/admin/users/nonexistent/reset-link", nil},
		{"/admin/users/nonexistent/unlock", nil},
		{"/admin/users/nonexistent/reset-mfa", nil},
		{"/admin/users/nonexistent/revoke-all", nil},
		{"/admin/users/nonexistent/roles", url.Values{"role": {"user"}}},
		{"/admin/users/" + u.ID + "/roles", url.Values{"role": {long, "\x00", ""}}},
		{"/admin/users/" + u.ID + "/sessions/nope/revoke", nil},
		{"/admin/users/" + u.ID + "/api-keys/nope/revoke", nil},
		{"/admin/users/nonexistent/sessions/nope/revoke", nil},
		{"/admin/clients", url.Values{"name": {long}, "type": {"weird"}, "redirect_uri": {"javascript:alert(1)", "\x00"}, "grant": {"password"}}},
		{"/admin/clients", url.Values{}},
		{"/admin/clients/nonexistent/secret", nil},
		{"/admin/clients/nonexistent/delete", nil},
		{"/admin/webhooks", url.Values{"url": {"ftp://example.com/x"}, "events": {"no.such.event"}}},
		{"/admin/webhooks", url.Values{"url": {long}}},
		{"/admin/webhooks/nonexistent/enable", nil},
		{"/admin/webhooks/nonexistent/disable", nil},
		{"/admin/webhooks/nonexistent/secret", nil},
		{"/admin/webhooks/nonexistent/test", nil},
		{"/admin/webhooks/nonexistent/delete", nil},
		{"/admin/webhooks/nonexistent/deliveries/msg_x/retry", nil},
		{"/admin/webhooks/nonexistent/edit", url.Values{"url": {"https://example.com/"}, "all": {"1"}}},
		{"/admin/clients/nonexistent/edit", url.Values{"name": {"x"}}},
		{"/admin/settings/test-mail", url.Values{"to": {"not an address\r\nBcc: x@example.com"}}},
		{"/admin/settings/test-mail", url.Values{"to": {long + "@example.com"}}},
		{"/admin/step-up", url.Values{"password": {long}, "code": {long}, "return_to": {"javascript:alert(1)"}}},
	}
	for _, p := range posts {
		r := g.send(t, http.MethodPost, p.path, p.form, root, g.sameOrigin())
		check(http.MethodPost, p.path, r, r.Status)
	}
	// Bodies that are not forms, to a form that takes fields: no roles are
	// read from them.
	for ct, want := range map[string]int{"application/json": 415, "multipart/form-data; boundary=x": 415, "text/plain": 415,
		"": 415, "application/x-www-form-urlencoded": 400} {
		r := g.do(t, http.MethodPost, "/admin/users/"+u.ID+"/roles", ct, []byte(`{"role":["admin"]}%%%`), root, g.sameOrigin())
		if r.Status != want {
			t.Errorf("roles with Content-Type %q and a body that is not a form: %s, want %d", ct, r, want)
		}
	}
	after := g.adminUserState(t, u.ID)
	for _, k := range []string{"disabled", "email_verified"} {
		if after[k] != before[k] {
			t.Errorf("the junk changed %s: %v, was %v", k, after[k], before[k])
		}
	}
	if roles, _ := after["roles"].([]any); len(roles) != 1 || roles[0] != "user" {
		t.Errorf("the junk changed the roles: %v", after["roles"])
	}
}
