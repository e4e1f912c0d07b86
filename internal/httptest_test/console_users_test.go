package httptest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/testserver"
	"gatehouse/internal/testserver/smtptest"
)

// The console's Users section (SPEC §17): the list with its search,
// filters and signed keyset pages; one account's page; every action on it,
// each a form post that needs step-up, calls the admin API's domain code
// and is audited with via=console and the administrator's id.

// startConsole starts a server whose console opens to an administrator's
// password session (GATEHOUSE_ADMIN_REQUIRE_MFA=false; a fresh password
// sign-in is a recent enough one for writes), with root signed in.
func startConsole(t *testing.T, env map[string]string) *gh {
	t.Helper()
	e := map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false"}
	maps.Copy(e, env)
	g := start(t, e)
	g.login(t, g.root)
	return g
}

// consoleGet reads a console page as root, whole.
func (g *gh) consoleGet(t *testing.T, path string) *testserver.Response {
	t.Helper()
	r, _ := g.htmlPage(t, http.MethodGet, path, nil, g.cookie(g.root))
	return r
}

// consolePost posts a console form as root from the server's own pages.
func (g *gh) consolePost(t *testing.T, path string, form url.Values) *testserver.Response {
	t.Helper()
	r, _ := g.htmlPage(t, http.MethodPost, path, form, g.cookie(g.root), g.sameOrigin())
	return r
}

// wantDone checks the answer to a console action: 303 back to the
// account's page with a notice.
func wantDone(t *testing.T, what string, r *testserver.Response, id string) {
	t.Helper()
	loc := r.Header.Get("Location")
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/users/"+id+"?notice=") {
		t.Fatalf("%s: %d to %q, want 303 back to the account's page with a notice (body %.300s)", what, r.Status, loc, r.Body)
	}
}

var (
	rowRE  = regexp.MustCompile(`<tr data-user="([a-z2-7]{26})">\s*<td data-label="Email"><a href="/admin/users/[a-z2-7]{26}">([^<]*)</a>`)
	nextRE = regexp.MustCompile(`href="([^"]*)" rel="next"`)
	prevRE = regexp.MustCompile(`href="([^"]*)" rel="prev"`)
)

// listPage is what a page of the list shows.
type listPage struct {
	ids, emails []string
	next, prev  string // links, "" when absent
}

func (g *gh) listUsers(t *testing.T, path string) listPage {
	t.Helper()
	r := g.consoleGet(t, path)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %.500s", path, r.Status, r.Body)
	}
	var p listPage
	for _, m := range rowRE.FindAllStringSubmatch(string(r.Body), -1) {
		p.ids = append(p.ids, m[1])
		p.emails = append(p.emails, html.UnescapeString(m[2]))
	}
	if m := nextRE.FindStringSubmatch(string(r.Body)); m != nil {
		p.next = html.UnescapeString(m[1])
	}
	if m := prevRE.FindStringSubmatch(string(r.Body)); m != nil {
		p.prev = html.UnescapeString(m[1])
	}
	return p
}

// registerNamed registers an account with a display name.
func (g *gh) registerNamed(t *testing.T, email, name string) *account {
	t.Helper()
	r := g.send(t, http.MethodPost, "/v1/register", map[string]string{"email": email, "password": password, "name": name})
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: %s", email, r)
	}
	return &account{ID: str(t, r.JSON(t), "id"), Email: email}
}

// patchUser changes an account through the admin API (as root).
func (g *gh) patchUser(t *testing.T, id string, patch map[string]any) {
	t.Helper()
	if r := g.send(t, http.MethodPatch, "/v1/admin/users/"+id, patch, bearer(g.root.Access)); r.Status != http.StatusOK {
		t.Fatalf("PATCH user %s %v: %s", id, patch, r)
	}
}

// adminUserState reads an account through the admin API.
func (g *gh) adminUserState(t *testing.T, id string) map[string]any {
	t.Helper()
	r := g.get(t, "/v1/admin/users/"+id, bearer(g.root.Access))
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/admin/users/%s: %s", id, r)
	}
	return r.JSON(t)
}

// consoleEvent returns the newest audit event of typ about the account id
// and checks that the console made it: details.via "console" and
// details.actor the administrator.
func (g *gh) consoleEvent(t *testing.T, id, typ string) map[string]any {
	t.Helper()
	r := g.get(t, "/v1/admin/audit?limit=5&user_id="+id+"&type="+typ, bearer(g.root.Access))
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/admin/audit: %s", r)
	}
	events, _ := r.JSON(t)["events"].([]any)
	if len(events) == 0 {
		t.Fatalf("no %s event about %s", typ, id)
	}
	e, _ := events[0].(map[string]any)
	d, _ := e["details"].(map[string]any)
	if d["via"] != "console" || d["actor"] != g.root.ID {
		t.Fatalf("%s event about %s: details %v, want via=console and actor=%s", typ, id, d, g.root.ID)
	}
	return d
}

// TestConsoleUsersList: the search box (email prefix, name prefix in any
// case, an exact id, an email fragment after "@"), the filters, and pages
// of 50 that go forward and back under a signed cursor; a changed cursor,
// one of the admin API and a filter value not in the list are a 400 page.
func TestConsoleUsersList(t *testing.T) {
	g := startConsole(t, nil)
	var want []string
	for i := range 57 {
		want = append(want, fmt.Sprintf("page%02d@list.example.test", i))
	}
	// Registered out of order: the list is in email order.
	ids := map[string]string{}
	for _, i := range []int{3, 56, 0, 41} {
		ids[want[i]] = g.register(t, want[i]).ID
	}
	for _, e := range want {
		if ids[e] == "" {
			ids[e] = g.register(t, e).ID
		}
	}
	named := g.registerNamed(t, "zz-named@other.example.test", "Quentin Blake")

	t.Run("Pages", func(t *testing.T) {
		p1 := g.listUsers(t, "/admin/users?q=page")
		if !slices.Equal(p1.emails, want[:50]) || p1.next == "" || p1.prev != "" {
			t.Fatalf("page 1 of q=page: %d accounts %q, next %q, prev %q; want the first 50 in email order, a next link and no previous", len(p1.emails), p1.emails, p1.next, p1.prev)
		}
		for i, id := range p1.ids {
			if ids[p1.emails[i]] != id {
				t.Fatalf("page 1 lists %s with id %s, want %s", p1.emails[i], id, ids[p1.emails[i]])
			}
		}
		if !strings.Contains(p1.next, "q=page") {
			t.Fatalf("next link %q does not keep the search", p1.next)
		}
		p2 := g.listUsers(t, p1.next)
		if !slices.Equal(p2.emails, want[50:]) || p2.next != "" || p2.prev == "" {
			t.Fatalf("page 2: %q, next %q, prev %q; want the last 7, no next link and a previous one", p2.emails, p2.next, p2.prev)
		}
		back := g.listUsers(t, p2.prev)
		if !slices.Equal(back.emails, want[:50]) || back.prev != "" || back.next == "" {
			t.Fatalf("back from page 2: %d accounts, prev %q, next %q; want page 1 again", len(back.emails), back.prev, back.next)
		}
		if again := g.listUsers(t, back.next); !slices.Equal(again.emails, want[50:]) {
			t.Fatalf("forward again: %q", again.emails)
		}
	})

	t.Run("Search", func(t *testing.T) {
		for _, tc := range []struct {
			name, q string
			want    []string
		}{
			{"EmailPrefix", "page4", want[40:50]},
			{"EmailPrefixAnyCase", "PAGE0", want[:10]},
			{"WholeEmail", want[7], want[7:8]},
			{"NamePrefix", "quen", []string{named.Email}},
			{"NameAnyCase", "QUENTIN B", []string{named.Email}},
			{"ID", ids[want[12]], want[12:13]},
			{"Domain", "@other.example.test", []string{named.Email}},
			{"NoMatch", "nobody-has-this", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := g.listUsers(t, "/admin/users?q="+url.QueryEscape(tc.q))
				if !slices.Equal(p.emails, tc.want) || p.next != "" {
					t.Fatalf("q=%q: %q (next %q), want %q", tc.q, p.emails, p.next, tc.want)
				}
			})
		}
	})

	t.Run("Filters", func(t *testing.T) {
		g.patchUser(t, ids[want[5]], map[string]any{"disabled": true})
		g.patchUser(t, ids[want[6]], map[string]any{"email_verified": true})
		g.setRoles(t, ids[want[8]], "user", "admin")
		mfa := g.mfaUser(t, "listmfa")
		for _, tc := range []struct {
			name, query string
			want        []string
		}{
			{"Disabled", "q=page&disabled=yes", want[5:6]},
			{"Active", "q=page0&disabled=no", slices.Delete(slices.Clone(want[:10]), 5, 6)},
			{"Verified", "q=page&verified=yes", want[6:7]},
			{"Unverified", "q=page0&verified=no", slices.Delete(slices.Clone(want[:10]), 6, 7)},
			{"Role", "role=admin", []string{want[8], g.root.Email}},
			{"MFA", "mfa=yes", []string{mfa.Email}},
			{"NoMFA", "q=page0&mfa=no", want[:10]},
			{"Together", "q=page&role=admin&disabled=no", want[8:9]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := g.listUsers(t, "/admin/users?"+tc.query)
				w := slices.Sorted(slices.Values(tc.want))
				if !slices.Equal(p.emails, w) {
					t.Fatalf("%s: %q, want %q", tc.query, p.emails, w)
				}
			})
		}
		// Status is never shown by colour alone: each row says it.
		r := g.consoleGet(t, "/admin/users?q="+url.QueryEscape(want[5]))
		for _, words := range []string{"Disabled", "Unverified", "Off", `data-label="Status"`} {
			if !strings.Contains(string(r.Body), words) {
				t.Errorf("the row of a disabled, unverified account without MFA lacks %q", words)
			}
		}
	})

	t.Run("BadCursor", func(t *testing.T) {
		p1 := g.listUsers(t, "/admin/users?q=page")
		u, err := url.Parse(p1.next)
		if err != nil {
			t.Fatal(err)
		}
		real := u.Query().Get("cursor")
		// The admin API's own cursor, signed with the same key but for
		// another list.
		api := g.get(t, "/v1/admin/users?limit=2&q=page", bearer(g.root.Access))
		apiCursor, _ := api.JSON(t)["next_cursor"].(string)
		if apiCursor == "" {
			t.Fatalf("GET /v1/admin/users?limit=2: no next_cursor: %s", api)
		}
		flip := []byte(real)
		flip[len(flip)/2] ^= 1
		// A cursor of this list's shape MACed with the root secret itself
		// instead of the key derived from it for cursors (SPEC §18 H3).
		payload := "users\x00n" + want[49]
		mac := hmac.New(sha256.New, []byte(rootSecret))
		mac.Write([]byte(payload))
		rootKeyed := base64.RawURLEncoding.EncodeToString(append(mac.Sum(nil)[:16], payload...))
		for name, c := range map[string]string{
			"changed byte":      string(flip),
			"cut short":         real[:len(real)-4],
			"not base64":        "!!!",
			"the API's":         apiCursor,
			"changed near end":  tamper(real),
			"keyed by the root": rootKeyed,
		} {
			r := g.consoleGet(t, "/admin/users?q=page&cursor="+url.QueryEscape(c))
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "This page link is not valid") || !strings.Contains(string(r.Body), `name="q"`) {
				t.Errorf("cursor %s: %d %.300s; want the 400 page with the search form", name, r.Status, htmlMessage.Find(r.Body))
			}
		}
		if r := g.consoleGet(t, "/admin/users?disabled=maybe"); r.Status != http.StatusBadRequest {
			t.Errorf("disabled=maybe: %d, want 400", r.Status)
		}
		if r := g.consoleGet(t, "/admin/users?role=no-such-role"); r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "Unknown role") {
			t.Errorf("role=no-such-role: %d %s, want 422 saying the role is unknown", r.Status, htmlMessage.Find(r.Body))
		}
	})
}

// TestConsoleUserPage: one account's page lists its profile, sessions,
// API keys, second factors, lockout state and recent events, with a form
// per action; the destructive ones ask first on a page of their own.
func TestConsoleUserPage(t *testing.T) {
	g := startConsole(t, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "5"})
	u := g.user(t, "page")
	keyID, _ := g.createKey(t, u, "read")
	// Two failed sign-ins: the lockout counter shows them.
	for range 2 {
		r := g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": u.Email, "password": "wrong password"}, g.sameOrigin())
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %s", r)
		}
	}
	r := g.consoleGet(t, "/admin/users/"+u.ID)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /admin/users/%s: %d %s", u.ID, r.Status, htmlMessage.Find(r.Body))
	}
	body := string(r.Body)
	for what, s := range map[string]string{
		"the email":                    u.Email,
		"the id":                       u.ID,
		"the roles":                    `<th scope="row">Roles</th><td>user</td>`,
		"unverified, in words":         `<span class="badge warn">Unverified</span>`,
		"active, in words":             `<span class="badge ok">Active</span>`,
		"the session":                  `data-session="` + u.SessionID + `"`,
		"the session's revoke form":    `action="/admin/users/` + u.ID + `/sessions/` + u.SessionID + `/revoke"`,
		"the API key":                  `data-api-key="` + keyID + `"`,
		"the API key's revoke form":    `action="/admin/users/` + u.ID + `/api-keys/` + keyID + `/revoke"`,
		"no passkeys":                  "No passkeys.",
		"no linked identities":         "No linked sign-in providers.",
		"no consents":                  "No application has access to this account.",
		"the registration event":       "<code>user.registered</code>",
		"the API key event":            "<code>apikey.created</code>",
		"the failed sign-ins":          "2 failed sign-ins",
		"the clear-lockout form":       `action="/admin/users/` + u.ID + `/unlock"`,
		"the second factor, off":       `<th scope="row">Authenticator app</th><td>Off</td>`,
		"the roles form":               `<input type="checkbox" name="role" value="admin">`,
		"the checked role":             `<input type="checkbox" name="role" value="user" checked>`,
		"the link to disable":          `href="/admin/users/` + u.ID + `/disable"`,
		"the link to revoke":           `href="/admin/users/` + u.ID + `/revoke-all"`,
		"the verify form":              `action="/admin/users/` + u.ID + `/verify"`,
		"the reset-link form":          `action="/admin/users/` + u.ID + `/reset-link"`,
		"the table that stacks":        `<table class="data stack-sm">`,
		"the menu marking Users":       `<a href="/admin/users" aria-current="page">`,
		"the link to all its events":   `href="/admin/audit?user=` + u.ID + `"`,
		"the device of the session":    "signed in ",
		"the level of the session":     "with one factor",
		"the API key's scopes":         "read · created ",
		"the page's title (the email)": "<h1>" + u.Email + "</h1>",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("the user page lacks %s (%q)", what, s)
		}
	}
	if strings.Contains(body, "<script") {
		t.Errorf("the user page has a script")
	}
	// No reset-MFA link without a second factor to reset.
	if strings.Contains(body, "/reset-mfa") {
		t.Errorf("the user page offers to reset second factors the account does not have")
	}

	for _, tc := range []struct{ action, button string }{
		{"disable", "Disable account"},
		{"revoke-all", "Revoke every session and key"},
		{"reset-mfa", "Reset two-factor authentication"},
	} {
		r := g.consoleGet(t, "/admin/users/"+u.ID+"/"+tc.action)
		b := string(r.Body)
		if r.Status != http.StatusOK || !strings.Contains(b, `<form method="post" action="/admin/users/`+u.ID+`/`+tc.action+`"`) ||
			!strings.Contains(b, `<button type="submit" class="danger">`+tc.button+`</button>`) || !strings.Contains(b, "Cancel, back to the account") {
			t.Errorf("GET the %s confirmation: %d, want a page with one post form, the button %q and a way back", tc.action, r.Status, tc.button)
		}
	}
	if r := g.consoleGet(t, "/admin/users/aaaaaaaaaaaaaaaaaaaaaaaaaa"); r.Status != http.StatusNotFound {
		t.Errorf("GET an unknown account: %d, want 404", r.Status)
	}
	// Root's own page says it is theirs.
	if r := g.consoleGet(t, "/admin/users/"+g.root.ID); !strings.Contains(string(r.Body), "This is your own account") {
		t.Errorf("the administrator's own page does not say so")
	}
}

// TestConsoleUserActions: each action does what the admin API's domain
// code does and is audited with via=console and the administrator's id.
func TestConsoleUserActions(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	g := startConsole(t, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "3",
		"GATEHOUSE_SMTP_URL": smtp.URL(), "GATEHOUSE_MAIL_FROM": "Gatehouse <no-reply@gatehouse.test>"})
	me := func(a *account) int { return g.get(t, "/v1/me", g.cookie(a)).Status }

	t.Run("Roles", func(t *testing.T) {
		u := g.user(t, "roles")
		wantDone(t, "roles", g.consolePost(t, "/admin/users/"+u.ID+"/roles", url.Values{"role": {"user", "admin"}}), u.ID)
		roles, _ := g.adminUserState(t, u.ID)["roles"].([]any)
		if fmt.Sprint(roles) != "[user admin]" {
			t.Fatalf("roles after the form: %v, want [user admin]", roles)
		}
		if d := g.consoleEvent(t, u.ID, "role.changed"); fmt.Sprint(d["to"]) != "[user admin]" {
			t.Errorf("role.changed details %v", d)
		}
		// An unknown role is refused, and nothing changes.
		r := g.consolePost(t, "/admin/users/"+u.ID+"/roles", url.Values{"role": {"emperor"}})
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "Unknown role emperor") || !strings.Contains(string(r.Body), `<h2 id="profile-h">`) {
			t.Fatalf("roles [emperor]: %d %s, want 422 on the account's page", r.Status, htmlMessage.Find(r.Body))
		}
		roles, _ = g.adminUserState(t, u.ID)["roles"].([]any)
		if fmt.Sprint(roles) != "[user admin]" {
			t.Fatalf("roles after a refused form: %v", roles)
		}
	})

	t.Run("DisableEnable", func(t *testing.T) {
		u := g.user(t, "disable")
		wantDone(t, "disable", g.consolePost(t, "/admin/users/"+u.ID+"/disable", url.Values{}), u.ID)
		if g.adminUserState(t, u.ID)["disabled"] != true {
			t.Fatal("not disabled")
		}
		if st := me(u); st != http.StatusUnauthorized {
			t.Fatalf("the disabled account's session: %d, want 401", st)
		}
		g.consoleEvent(t, u.ID, "user.disabled")
		wantDone(t, "enable", g.consolePost(t, "/admin/users/"+u.ID+"/enable", url.Values{}), u.ID)
		if g.adminUserState(t, u.ID)["disabled"] != false {
			t.Fatal("not enabled")
		}
		g.consoleEvent(t, u.ID, "user.enabled")
	})

	t.Run("Verify", func(t *testing.T) {
		u := g.user(t, "verify")
		wantDone(t, "verify", g.consolePost(t, "/admin/users/"+u.ID+"/verify", url.Values{}), u.ID)
		if g.adminUserState(t, u.ID)["email_verified"] != true {
			t.Fatal("not verified")
		}
		if d := g.consoleEvent(t, u.ID, "user.updated"); d["email_verified"] != true {
			t.Errorf("user.updated details %v", d)
		}
	})

	t.Run("ResetLink", func(t *testing.T) {
		u := g.user(t, "resetlink")
		wantDone(t, "reset-link", g.consolePost(t, "/admin/users/"+u.ID+"/reset-link", url.Values{}), u.ID)
		g.consoleEvent(t, u.ID, "password.reset_link.sent")
		// Registration mailed a verification link first; the reset link
		// follows.
		deadline := time.Now().Add(15 * time.Second)
		for {
			found := false
			for _, m := range smtp.Messages() {
				data := strings.ReplaceAll(string(m.Data), "=\r\n", "")
				if slices.Contains(m.To, u.Email) && strings.Contains(data, "/reset-password?token=") {
					found = true
				}
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no mail with a reset link reached %s", u.Email)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("Unlock", func(t *testing.T) {
		u := g.user(t, "unlock")
		for range 4 {
			g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": u.Email, "password": "wrong password"}, g.sameOrigin())
		}
		login := func() int {
			return g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": u.Email, "password": password}, g.sameOrigin()).Status
		}
		if st := login(); st != http.StatusTooManyRequests {
			t.Fatalf("sign-in after 4 wrong passwords (threshold 3): %d, want 429", st)
		}
		if !strings.Contains(string(g.consoleGet(t, "/admin/users/"+u.ID).Body), `<span class="badge warn">Locked</span>`) {
			t.Fatalf("the page of a locked account does not say it is locked")
		}
		wantDone(t, "unlock", g.consolePost(t, "/admin/users/"+u.ID+"/unlock", url.Values{}), u.ID)
		if st := login(); st != http.StatusCreated {
			t.Fatalf("sign-in after the lockout was cleared: %d, want 201", st)
		}
		if d := g.consoleEvent(t, u.ID, "account.unlocked"); d["was_locked"] != true {
			t.Errorf("account.unlocked details %v, want was_locked=true", d)
		}
	})

	t.Run("ResetMFA", func(t *testing.T) {
		u := g.mfaUser(t, "resetmfa")
		page := string(g.consoleGet(t, "/admin/users/"+u.ID).Body)
		if !strings.Contains(page, `href="/admin/users/`+u.ID+`/reset-mfa"`) || !strings.Contains(page, `<span class="badge ok">On</span>`) {
			t.Fatalf("the page of an account with TOTP shows no reset link or no On")
		}
		wantDone(t, "reset-mfa", g.consolePost(t, "/admin/users/"+u.ID+"/reset-mfa", url.Values{}), u.ID)
		if g.adminUserState(t, u.ID)["mfa_enabled"] != false {
			t.Fatal("TOTP is still on")
		}
		if d := g.consoleEvent(t, u.ID, "mfa.reset"); d["admin_id"] != g.root.ID {
			t.Errorf("mfa.reset details %v", d)
		}
	})

	t.Run("RevokeAll", func(t *testing.T) {
		u := g.user(t, "revokeall")
		_, key := g.createKey(t, u, "read")
		wantDone(t, "revoke-all", g.consolePost(t, "/admin/users/"+u.ID+"/revoke-all", url.Values{}), u.ID)
		if st := me(u); st != http.StatusUnauthorized {
			t.Errorf("the session after revoke-all: %d, want 401", st)
		}
		if st := g.get(t, "/v1/me", apiKey(key)).Status; st != http.StatusUnauthorized {
			t.Errorf("the API key after revoke-all: %d, want 401", st)
		}
		if r := g.send(t, http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {u.Refresh}}); r.Status != http.StatusBadRequest {
			t.Errorf("the refresh token after revoke-all: %s, want 400", r)
		}
		g.consoleEvent(t, u.ID, "user.revoked")
	})

	t.Run("RevokeSession", func(t *testing.T) {
		u := g.user(t, "revokesession")
		other := &account{ID: u.ID, Email: u.Email}
		g.login(t, other)
		wantDone(t, "revoke session", g.consolePost(t, "/admin/users/"+u.ID+"/sessions/"+u.SessionID+"/revoke", url.Values{}), u.ID)
		if st := me(u); st != http.StatusUnauthorized {
			t.Errorf("the revoked session: %d, want 401", st)
		}
		if st := me(other); st != http.StatusOK {
			t.Errorf("the other session: %d, want 200", st)
		}
		if d := g.consoleEvent(t, u.ID, "session.revoked"); d["session_id"] != u.SessionID {
			t.Errorf("session.revoked details %v", d)
		}
		// Another account's session id under this account is not found.
		v := g.user(t, "revokesession")
		r := g.consolePost(t, "/admin/users/"+u.ID+"/sessions/"+v.SessionID+"/revoke", url.Values{})
		if r.Status != http.StatusNotFound || me(v) != http.StatusOK {
			t.Errorf("revoking another account's session through this one: %d, want 404 and the session alive", r.Status)
		}
	})

	t.Run("RevokeKey", func(t *testing.T) {
		u := g.user(t, "revokekey")
		id, key := g.createKey(t, u, "read")
		_, keep := g.createKey(t, u, "read")
		wantDone(t, "revoke key", g.consolePost(t, "/admin/users/"+u.ID+"/api-keys/"+id+"/revoke", url.Values{}), u.ID)
		if st := g.get(t, "/v1/me", apiKey(key)).Status; st != http.StatusUnauthorized {
			t.Errorf("the revoked key: %d, want 401", st)
		}
		if st := g.get(t, "/v1/me", apiKey(keep)).Status; st != http.StatusOK {
			t.Errorf("the other key: %d, want 200", st)
		}
		if d := g.consoleEvent(t, u.ID, "apikey.revoked"); d["key_id"] != id {
			t.Errorf("apikey.revoked details %v", d)
		}
	})
}

// TestConsoleUserRefusals: a user who is not an administrator, a
// cross-site post and a bearer token change nothing; a sign-in older than
// GATEHOUSE_STEP_UP_MAX_AGE is sent to the step-up page first, which comes
// back to the question.
func TestConsoleUserRefusals(t *testing.T) {
	g := startConsole(t, map[string]string{"GATEHOUSE_STEP_UP_MAX_AGE": "2s"})
	target := g.user(t, "target")
	plain := g.user(t, "plain")
	disable := "/admin/users/" + target.ID + "/disable"
	stillEnabled := func(what string) {
		t.Helper()
		if g.adminUserState(t, target.ID)["disabled"] != false {
			t.Fatalf("%s disabled the account", what)
		}
	}
	if r := g.send(t, http.MethodPost, disable, url.Values{}, g.cookie(plain), g.sameOrigin()); r.Status != http.StatusForbidden {
		t.Errorf("a user's post: %s, want 403", r)
	}
	stillEnabled("a user's post")
	for _, p := range []string{"/admin/users", "/admin/users/" + target.ID, disable} {
		if r := g.get(t, p, g.cookie(plain)); r.Status != http.StatusForbidden {
			t.Errorf("GET %s as a user: %s, want 403", p, r)
		}
	}
	if r := g.send(t, http.MethodPost, disable, url.Values{}, g.cookie(g.root), crossSite); r.Status != http.StatusForbidden {
		t.Errorf("a cross-site post with the admin's cookie: %s, want 403", r)
	}
	stillEnabled("a cross-site post")
	if r := g.send(t, http.MethodPost, disable, url.Values{}, bearer(g.root.Access)); r.Status != http.StatusForbidden {
		t.Errorf("a post with the admin's access token: %s, want 403", r)
	}
	stillEnabled("a bearer post")

	// Past the step-up age: the post is not done, the browser goes to
	// step up and comes back to the question.
	time.Sleep(2100 * time.Millisecond)
	r := g.consolePost(t, disable, url.Values{})
	if loc := r.Header.Get("Location"); r.Status != http.StatusSeeOther || loc != "/admin/step-up?return_to="+disable {
		t.Fatalf("a post with an old sign-in: %d to %q, want 303 to the step-up page returning to %s", r.Status, loc, disable)
	}
	stillEnabled("a post with an old sign-in")
	// Reading needs no step-up.
	if r := g.consoleGet(t, "/admin/users/"+target.ID); r.Status != http.StatusOK {
		t.Fatalf("GET the account with an old sign-in: %d", r.Status)
	}
	s := g.send(t, http.MethodPost, "/admin/step-up", url.Values{"password": {password}, "return_to": {disable}}, g.cookie(g.root), g.sameOrigin())
	if s.Status != http.StatusSeeOther || s.Header.Get("Location") != disable {
		t.Fatalf("step-up: %s to %q", s, s.Header.Get("Location"))
	}
	wantDone(t, "disable after step-up", g.consolePost(t, disable, url.Values{}), target.ID)
	if g.adminUserState(t, target.ID)["disabled"] != true {
		t.Fatal("not disabled after step-up")
	}
	g.consoleEvent(t, target.ID, "user.disabled")
}

// The notice a console page shows after an action comes sealed in the
// redirect: a link made elsewhere cannot put its own words on a console
// page, and a changed byte shows nothing.
func TestConsoleNoticeSealed(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false"})
	g.login(t, g.root)
	u := g.user(t, "notice")
	r := g.consolePost(t, "/admin/users/"+u.ID+"/verify", url.Values{})
	wantDone(t, "verify", r, u.ID)
	loc := r.Header.Get("Location")
	if strings.Contains(loc, "marked") {
		t.Fatalf("the notice travels in clear: %s", loc)
	}
	if p := g.consoleGet(t, loc); p.Status != http.StatusOK || !strings.Contains(string(p.Body), "Email address marked as verified.") {
		t.Fatalf("GET %s: %d, want the page with the notice (%.300s)", loc, p.Status, p.Body)
	}
	sealed := strings.TrimPrefix(loc, "/admin/users/"+u.ID+"?notice=")
	flipped := []byte(sealed)
	flipped[len(flipped)/2] ^= 1
	for name, notice := range map[string]string{
		"plain text":   url.QueryEscape("Your account is compromised: call +1 555 0100 now."),
		"a byte off":   string(flipped),
		"not base64":   "%%%",
		"empty mac":    "",
		"a long value": strings.Repeat("A", 5000),
	} {
		p := g.consoleGet(t, "/admin/users/"+u.ID+"?notice="+notice)
		body := string(p.Body)
		if p.Status != http.StatusOK || strings.Contains(body, "compromised") || strings.Contains(body, "marked as verified") || strings.Contains(body, `class="msg notice" role="status"`) {
			t.Errorf("a notice from elsewhere (%s): %d, want the page without any notice", name, p.Status)
		}
	}
}
