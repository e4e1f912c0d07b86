package httptest_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// keyRowRE reads a row of the keys page: the kid, what it signs and its
// state.
var keyRowRE = regexp.MustCompile(`(?s)<td data-label="Key ID"><code>([^<]+)</code></td>.*?<td data-label="Signs">([^<]+)</td>.*?<td data-label="State"><span class="badge[^"]*">([^<]+)</span>`)

// consoleKeys reads the keys page: kid → "Signs/State".
func consoleKeys(t *testing.T, g *gh) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range keyRowRE.FindAllStringSubmatch(g.opsPage(t, "/admin/keys"), -1) {
		out[m[1]] = m[2] + "/" + m[3]
	}
	return out
}

func TestConsoleKeys(t *testing.T) {
	g := startConsoleOps(t, baseYAML, nil)
	user := g.user(t, "consolekeys")

	page := g.opsPage(t, "/admin/keys")
	for _, want := range []string{"<h1>Signing keys</h1>", "Rotate signing keys", "gatehouse keys revoke", `class="data stack-sm"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the keys page lacks %q", want)
		}
	}
	before := consoleKeys(t, g)
	var oldAccess string
	for kid, v := range before {
		if v == "Access tokens/Current" {
			oldAccess = kid
		}
	}
	if oldAccess == "" {
		t.Fatalf("no current access-token key on the keys page: %v", before)
	}

	t.Run("Refused", func(t *testing.T) {
		if r := g.send(t, http.MethodPost, "/admin/keys/rotate", url.Values{}, g.cookie(g.root), crossSite); r.Status != http.StatusForbidden {
			t.Errorf("a cross-site rotation: %s, want 403", r)
		}
		if r := g.consoleSubmit(t, user, "/admin/keys/rotate", url.Values{}); r.Status != http.StatusForbidden {
			t.Errorf("a rotation by a user: %s, want 403", r)
		}
		if r := g.get(t, "/admin/keys", g.cookie(user)); r.Status != http.StatusForbidden {
			t.Errorf("the keys page for a user: %s, want 403", r)
		}
		if n := len(consoleKeys(t, g)); n != len(before) {
			t.Fatalf("refused rotations made keys: %d, want %d", n, len(before))
		}
	})

	r := g.consoleSubmit(t, g.root, "/admin/keys/rotate", url.Values{})
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/admin/keys?notice=") {
		t.Fatalf("rotate: %s (Location %q)", r, r.Header.Get("Location"))
	}
	after := consoleKeys(t, g)
	if after[oldAccess] != "Access tokens/Verifying" {
		t.Fatalf("the previous access-token key is %q after the rotation, want verifying", after[oldAccess])
	}
	var newAccess string
	for kid, v := range after {
		if _, old := before[kid]; !old && v == "Access tokens/Current" {
			newAccess = kid
		}
	}
	if newAccess == "" || len(after) <= len(before) {
		t.Fatalf("no new current access-token key after the rotation: %v (before %v)", after, before)
	}
	// Audited per new key, as by the command line, with via console.
	e := g.wantConsoleAudit(t, "key.rotated", func(d map[string]any) bool { return d["kid"] == newAccess })
	if e.Details["id_token"] != false || e.UserID != g.root.ID {
		t.Fatalf("key.rotated %+v", e)
	}
	// New tokens are signed with it and published in the JWKS.
	if jwks := g.get(t, "/.well-known/jwks.json"); !strings.Contains(string(jwks.Body), newAccess) {
		t.Fatalf("the JWKS lacks the new key %s", newAccess)
	}
}

// Every write of these sections needs a recent sign-in: an older one is
// sent to the step-up page, which comes back to the section, and nothing
// is done.
func TestConsoleOpsNeedStepUp(t *testing.T) {
	g := startConsoleOps(t, webhooksYAML, map[string]string{"GATEHOUSE_STEP_UP_MAX_AGE": "2s"})
	keys := len(consoleKeys(t, g))
	time.Sleep(2100 * time.Millisecond)
	for _, c := range []struct {
		path string
		form url.Values
		back string
	}{
		{"/admin/keys/rotate", url.Values{}, "/admin/keys"},
		{"/admin/clients", url.Values{"name": {"Late"}, "type": {"confidential"}, "grant_client_credentials": {"1"}}, "/admin/clients"},
		{"/admin/clients/from-config/secret", url.Values{}, "/admin/clients/from-config"},
		{"/admin/clients/from-config/delete", url.Values{}, "/admin/clients/from-config/delete"},
		{"/admin/webhooks", url.Values{"url": {"https://late.example.com/"}, "all": {"1"}}, "/admin/webhooks"},
		{"/admin/webhooks/x1/disable", url.Values{}, "/admin/webhooks/x1"},
		{"/admin/webhooks/x1/deliveries/msg_1/retry", url.Values{}, "/admin/webhooks/x1"},
		{"/admin/webhooks/x1/edit", url.Values{"url": {"https://late.example.com/"}, "all": {"1"}}, "/admin/webhooks/x1"},
		{"/admin/clients/from-config/edit", url.Values{"name": {"Late"}}, "/admin/clients/from-config"},
	} {
		r := g.consoleSubmit(t, g.root, c.path, c.form)
		if want := "/admin/step-up?return_to=" + c.back; r.Status != http.StatusSeeOther || r.Header.Get("Location") != want {
			t.Errorf("POST %s with an old sign-in: %s (Location %q), want 303 to %s", c.path, r, r.Header.Get("Location"), want)
		}
	}
	if n := len(consoleKeys(t, g)); n != keys {
		t.Fatalf("%d keys after a rotation without step-up, want %d", n, keys)
	}
	for _, typ := range []string{"oauth.client.created", "webhook.endpoint.created", "key.rotated"} {
		for _, e := range g.auditLog(t, url.Values{"type": {typ}}) {
			if e.Details["via"] == "console" {
				t.Fatalf("%s via the console without step-up: %+v", typ, e)
			}
		}
	}
}
