package httptest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/testserver"
)

// adminUser is a user as GET /v1/admin/users shows it.
type adminUser struct {
	ID            string   `json:"id"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Roles         []string `json:"roles"`
	Disabled      bool     `json:"disabled"`
	CreatedAt     string   `json:"created_at"`
	UpdatedAt     string   `json:"updated_at"`
}

type userPage struct {
	Users      []adminUser `json:"users"`
	NextCursor *string     `json:"next_cursor"`
}

// page reads one page of GET /v1/admin/users as root.
func (g *gh) page(t *testing.T, q, cursor string, limit string) userPage {
	t.Helper()
	v := url.Values{"q": {q}}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if limit != "" {
		v.Set("limit", limit)
	}
	r := g.get(t, "/v1/admin/users?"+v.Encode(), bearer(g.root.Access))
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/admin/users?%s: %s", v.Encode(), r)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET /v1/admin/users: Cache-Control %q, want no-store", cc)
	}
	var p userPage
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("GET /v1/admin/users: %v: %s", err, r.Body)
	}
	if p.NextCursor != nil && *p.NextCursor == "" {
		t.Fatalf("GET /v1/admin/users: an empty next_cursor: %s", r.Body)
	}
	return p
}

// adminGet reads one user as root.
func (g *gh) adminGet(t *testing.T, id string) adminUser {
	t.Helper()
	r := g.get(t, "/v1/admin/users/"+id, bearer(g.root.Access))
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/admin/users/%s: %s", id, r)
	}
	var u adminUser
	if err := json.Unmarshal(r.Body, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func emailsOf(users []adminUser) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.Email)
	}
	return out
}

// TestAdminListUsers walks GET /v1/admin/users a page at a time with the
// keyset cursor: every matching account comes exactly once, in email
// order, the last page has no next_cursor, the search matches part of the
// email, and a limit out of range is a 422 problem.
func TestAdminListUsers(t *testing.T) {
	g := start(t, nil)
	var want []string
	for range 7 {
		want = append(want, g.register(t, newEmail("list")).Email)
	}
	g.register(t, newEmail("other")) // not matched by the search below
	slices.Sort(want)

	var got []string
	var sizes []int
	cursor := ""
	for i := 0; ; i++ {
		p := g.page(t, "@list.example.test", cursor, "3")
		sizes = append(sizes, len(p.Users))
		for _, u := range p.Users {
			if u.ID == "" || u.CreatedAt == "" || u.UpdatedAt == "" || u.Disabled || !slices.Equal(u.Roles, []string{"user"}) {
				t.Errorf("user %+v: want an id, times, not disabled and roles [user]", u)
			}
		}
		got = append(got, emailsOf(p.Users)...)
		if p.NextCursor == nil {
			break
		}
		if i > 5 {
			t.Fatalf("the cursor never ends: pages %v", sizes)
		}
		cursor = *p.NextCursor
	}
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Fatalf("pages of 3 (%v) list %v, want %v in pages [3 3 1]", sizes, got, want)
	}

	// A page that ends exactly at the last match has no next_cursor.
	if p := g.page(t, "@list.example.test", "", "7"); len(p.Users) != 7 || p.NextCursor != nil {
		t.Errorf("limit 7 of 7 matches: %d users, next_cursor %v; want 7 and none", len(p.Users), p.NextCursor)
	}
	// Search: part of one email finds that account alone; the default
	// limit lists everyone here (root, 8 registered).
	if p := g.page(t, want[4], "", ""); !slices.Equal(emailsOf(p.Users), want[4:5]) || p.NextCursor != nil {
		t.Errorf("q=%s: %v, want only it", want[4], emailsOf(p.Users))
	}
	if p := g.page(t, "nobody-has-this", "", ""); len(p.Users) != 0 || p.NextCursor != nil {
		t.Errorf("q with no match: %+v", p)
	}
	if p := g.page(t, "", "", ""); len(p.Users) != 9 || !slices.Contains(emailsOf(p.Users), "root@example.test") {
		t.Errorf("no q: %v, want all 9 accounts", emailsOf(p.Users))
	}
	for _, limit := range []string{"0", "201", "-1", "many"} {
		r := g.get(t, "/v1/admin/users?limit="+limit, bearer(g.root.Access))
		wantProblem(t, "limit="+limit, r, http.StatusUnprocessableEntity)
	}
}

// TestAdminCursorRefused: a cursor is the server's own (SPEC §18 H3), so
// a tampered one, one of another server (another root secret) and one
// MACed with the root secret itself instead of a key derived for cursors
// are each refused with a 422 or 400 problem — never a page.
func TestAdminCursorRefused(t *testing.T) {
	g := start(t, nil)
	for range 4 {
		g.register(t, newEmail("cur"))
	}
	const q = "@cur.example.test"
	first := g.page(t, q, "", "2")
	if first.NextCursor == nil {
		t.Fatalf("no next_cursor after 2 of 4 users")
	}
	real := *first.NextCursor
	// The control: the real cursor gives the second page.
	second := g.page(t, q, real, "2")
	if len(second.Users) != 2 || second.Users[0].Email <= first.Users[1].Email {
		t.Fatalf("the real cursor: %v after %v", emailsOf(second.Users), emailsOf(first.Users))
	}

	// Another server, another root secret: its cursors mean nothing here.
	other := start(t, map[string]string{"GATEHOUSE_SECRET": strings.Repeat("another secret, ", 4)})
	for range 3 {
		other.register(t, newEmail("cur"))
	}
	op := other.page(t, q, "", "1")
	if op.NextCursor == nil {
		t.Fatal("the other server gave no cursor")
	}

	raw, err := base64.RawURLEncoding.DecodeString(real)
	if err != nil {
		t.Fatalf("the cursor %q is not base64url: %v", real, err)
	}
	flip := func(i int) string {
		b := slices.Clone(raw)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	cases := map[string]string{
		"first byte flipped":     flip(0),
		"last byte flipped":      flip(len(raw) - 1),
		"truncated":              base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]),
		"extended":               real + "QQ",
		"not base64url":          "!!!" + real,
		"empty after decoding":   "AA",
		"another server's":       *op.NextCursor,
		"longer than 512 bytes":  strings.Repeat("A", 600),
		"the first page's email": base64.RawURLEncoding.EncodeToString(append(slices.Clone(raw[:len(raw)-len(first.Users[1].Email)]), first.Users[0].Email...)),
	}
	// The cursor is an HMAC followed by the page's last email: the same
	// email MACed with the root secret itself, not with the key derived
	// from it for cursors, must not be accepted either.
	last := first.Users[1].Email
	if !strings.HasSuffix(string(raw), last) {
		t.Fatalf("the cursor %q does not end with the page's last email %q: this test's idea of the format is stale", raw, last)
	}
	mac := hmac.New(sha256.New, []byte(rootSecret))
	mac.Write([]byte(last))
	n := len(raw) - len(last)
	if n > sha256.Size {
		t.Fatalf("the cursor's MAC is %d bytes, longer than HMAC-SHA256", n)
	}
	cases["MACed with the root secret"] = base64.RawURLEncoding.EncodeToString(append(mac.Sum(nil)[:n], last...))

	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c == real {
				t.Fatalf("the forged cursor equals the real one")
			}
			r := g.get(t, "/v1/admin/users?"+url.Values{"q": {q}, "limit": {"2"}, "cursor": {c}}.Encode(), bearer(g.root.Access))
			if r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("cursor %q: %s, want 422 or 400", c, r)
			}
			wantProblem(t, "cursor "+c, r, r.Status)
		})
	}
}

// TestAdminManageUser goes through an account's life under the admin API:
// get, PATCH roles (the user's session sees them on its next request and
// the audit log records role.changed), PATCH email_verified, PATCH
// disabled (every credential stops; enabling brings password and API key
// back), POST …/revoke (sessions, refresh tokens and API keys end), DELETE.
func TestAdminManageUser(t *testing.T) {
	g := start(t, nil)
	target := g.user(t, "manage")
	_, key := g.createKey(t, target, "read", "write")
	admin := bearer(g.root.Access)
	path := "/v1/admin/users/" + target.ID
	me := func(hdr ...[]string) *testserver.Response {
		t.Helper()
		return g.get(t, "/v1/me", hdr...)
	}

	u := g.adminGet(t, target.ID)
	if u.ID != target.ID || u.Email != target.Email || u.Disabled || u.EmailVerified || !slices.Equal(u.Roles, []string{"user"}) || u.UpdatedAt == "" {
		t.Fatalf("GET %s: %+v", path, u)
	}
	if r := g.get(t, path, admin); r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET %s: Cache-Control %q, want no-store", path, r.Header.Get("Cache-Control"))
	}

	patch := func(body string) adminUser {
		t.Helper()
		r := g.send(t, http.MethodPatch, path, body, admin)
		if r.Status != http.StatusOK {
			t.Fatalf("PATCH %s %s: %s", path, body, r)
		}
		var u adminUser
		if err := json.Unmarshal(r.Body, &u); err != nil {
			t.Fatal(err)
		}
		if got := g.adminGet(t, target.ID); got.UpdatedAt != u.UpdatedAt || !slices.Equal(got.Roles, u.Roles) || got.Disabled != u.Disabled || got.EmailVerified != u.EmailVerified {
			t.Fatalf("PATCH answered %+v, but GET reads %+v", u, got)
		}
		return u
	}

	// Roles.
	if u := patch(`{"roles":["editor"]}`); !slices.Equal(u.Roles, []string{"editor"}) {
		t.Fatalf("roles after PATCH: %v", u.Roles)
	}
	if r := me(g.cookie(target)); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"roles":["editor"]`) {
		t.Fatalf("the user's session after the role change: %s", r)
	}
	r := g.get(t, "/v1/admin/audit?"+url.Values{"user_id": {target.ID}, "type": {"role.changed"}}.Encode(), admin)
	var audit struct {
		Events []struct {
			ID, Type, UserID, At string
			Details              map[string]any
		} `json:"events"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &audit) != nil || len(audit.Events) != 1 ||
		audit.Events[0].Type != "role.changed" || audit.Events[0].ID == "" || audit.Events[0].At == "" {
		t.Fatalf("audit of role.changed for the user: %s", r)
	}
	if r := wantProblem(t, "an unknown role", g.send(t, http.MethodPatch, path, `{"roles":["emperor"]}`, admin), http.StatusUnprocessableEntity); !strings.Contains(r.Detail+errText(r), "emperor") {
		t.Errorf("the refusal of an unknown role does not name it: %+v", r)
	}
	if u := g.adminGet(t, target.ID); !slices.Equal(u.Roles, []string{"editor"}) {
		t.Fatalf("a refused PATCH changed the roles to %v", u.Roles)
	}

	// email_verified.
	if u := patch(`{"email_verified":true}`); !u.EmailVerified || !slices.Equal(u.Roles, []string{"editor"}) {
		t.Fatalf("after PATCH email_verified: %+v", u)
	}
	if r := me(g.cookie(target)); !strings.Contains(string(r.Body), `"email_verified":true`) {
		t.Fatalf("the user's view after email_verified: %s", r)
	}

	// disabled: every way in stops; enabled again, password and key work.
	if u := patch(`{"disabled":true}`); !u.Disabled {
		t.Fatalf("after PATCH disabled: %+v", u)
	}
	if r := me(g.cookie(target)); r.Status != http.StatusUnauthorized {
		t.Fatalf("the session of a disabled user: %s", r)
	}
	if r := me(apiKey(key)); r.Status != http.StatusUnauthorized {
		t.Fatalf("the API key of a disabled user: %s", r)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {target.Refresh}}
	wantOAuthError(t, "refresh of a disabled user", g.send(t, http.MethodPost, "/oauth2/token", refresh), http.StatusBadRequest, "invalid_grant")
	login := url.Values{"grant_type": {"password"}, "username": {target.Email}, "password": {password}}
	wantOAuthError(t, "password grant of a disabled user", g.send(t, http.MethodPost, "/oauth2/token", login), http.StatusBadRequest, "invalid_grant")
	if u := patch(`{"disabled":false}`); u.Disabled {
		t.Fatalf("after PATCH disabled false: %+v", u)
	}
	g.grant(t, target, "")
	g.login(t, target)
	if r := me(apiKey(key)); r.Status != http.StatusOK {
		t.Fatalf("the API key once the user is enabled again: %s", r)
	}

	// Revoke: sessions, refresh tokens and API keys end; the account stays.
	if r := g.send(t, http.MethodPost, path+"/revoke", nil, admin); r.Status != http.StatusNoContent {
		t.Fatalf("POST %s/revoke: %s", path, r)
	}
	if r := me(g.cookie(target)); r.Status != http.StatusUnauthorized {
		t.Fatalf("a session after revoke: %s", r)
	}
	if r := me(apiKey(key)); r.Status != http.StatusUnauthorized {
		t.Fatalf("an API key after revoke: %s", r)
	}
	refresh.Set("refresh_token", target.Refresh)
	wantOAuthError(t, "refresh after revoke", g.send(t, http.MethodPost, "/oauth2/token", refresh), http.StatusBadRequest, "invalid_grant")
	g.grant(t, target, "") // the account itself still signs in

	// Delete.
	if r := g.send(t, http.MethodDelete, path, nil, admin); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE %s: %s", path, r)
	}
	wantProblem(t, "GET of a deleted user", g.get(t, path, admin), http.StatusNotFound)
	wantProblem(t, "DELETE of a deleted user", g.send(t, http.MethodDelete, path, nil, admin), http.StatusNotFound)
	if p := g.page(t, target.Email, "", ""); len(p.Users) != 0 {
		t.Fatalf("the deleted user is still listed: %v", emailsOf(p.Users))
	}
	wantOAuthError(t, "password grant of a deleted user", g.send(t, http.MethodPost, "/oauth2/token", login), http.StatusBadRequest, "invalid_grant")
	if r := g.get(t, "/v1/admin/audit?"+url.Values{"user_id": {target.ID}, "type": {"user.deleted"}}.Encode(), admin); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"user.deleted"`) {
		t.Fatalf("audit of the deletion: %s", r)
	}
}

// tamper changes one character of a token's signature (its last part)
// but not the last, whose low bits may not count in base64url.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func errText(p *problem) string {
	var b strings.Builder
	for _, e := range p.Errors {
		b.WriteString(e.Message + " " + e.Location + "\n")
	}
	return b.String()
}

// TestAdminAudit reads GET /v1/admin/audit: newest first, filtered by
// user_id and type, limited, never a secret.
func TestAdminAudit(t *testing.T) {
	g := start(t, nil)
	a := g.user(t, "audit")
	g.grant(t, a, "")
	admin := bearer(g.root.Access)
	read := func(q url.Values) []map[string]any {
		t.Helper()
		r := g.get(t, "/v1/admin/audit?"+q.Encode(), admin)
		if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET /v1/admin/audit?%s: %s (Cache-Control %q)", q.Encode(), r, r.Header.Get("Cache-Control"))
		}
		if strings.Contains(string(r.Body), password) || strings.Contains(string(r.Body), a.Refresh) || strings.Contains(string(r.Body), a.Cookie) {
			t.Fatalf("the audit log holds a secret: %s", r.Body)
		}
		var out struct {
			Events []map[string]any `json:"events"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		return out.Events
	}
	logins := read(url.Values{"user_id": {a.ID}, "type": {"login.succeeded"}})
	if len(logins) != 3 { // two password grants, one session
		t.Fatalf("login.succeeded events of the user: %v, want 3", logins)
	}
	var prev time.Time
	for i, e := range logins {
		if e["user_id"] != a.ID || e["type"] != "login.succeeded" || e["id"] == "" || e["ip"] == "" {
			t.Errorf("event %v does not match the filter or lacks id/ip", e)
		}
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e["at"]))
		if err != nil {
			t.Fatalf("event %v: at: %v", e, err)
		}
		if i > 0 && at.After(prev) {
			t.Errorf("events not newest first: %v", logins)
		}
		prev = at
	}
	if got := read(url.Values{"user_id": {a.ID}, "type": {"login.succeeded"}, "limit": {"2"}}); len(got) != 2 || got[0]["id"] != logins[0]["id"] {
		t.Errorf("limit 2: %v, want the newest 2 of %v", got, logins)
	}
	for _, e := range read(url.Values{"user_id": {a.ID}}) {
		if e["user_id"] != a.ID {
			t.Errorf("user_id filter let %v through", e)
		}
	}
	if got := read(url.Values{"type": {"no.such.type"}}); len(got) != 0 {
		t.Errorf("an unknown type matched %v", got)
	}
	wantProblem(t, "limit=0", g.get(t, "/v1/admin/audit?limit=0", admin), http.StatusUnprocessableEntity)
}

// TestAdminUnknownID: every admin operation on an id that is no account's
// is a 404 problem.
func TestAdminUnknownID(t *testing.T) {
	g := start(t, nil)
	admin := bearer(g.root.Access)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/admin/users/no-such-user", nil},
		{http.MethodPatch, "/v1/admin/users/no-such-user", `{"disabled":true}`},
		{http.MethodPatch, "/v1/admin/users/no-such-user", `{"roles":["admin"]}`},
		{http.MethodDelete, "/v1/admin/users/no-such-user", nil},
		{http.MethodPost, "/v1/admin/users/no-such-user/revoke", nil},
	} {
		wantProblem(t, c.method+" "+c.path, g.send(t, c.method, c.path, c.body, admin), http.StatusNotFound)
	}
}

// TestAdminRefusals sends every admin operation of the OpenAPI document
// with credentials that must not pass: none (401 with a Bearer challenge),
// invalid ones (401, error="invalid_token"), and valid ones without the
// admin power (403): a user's token, session and API key; an admin's API
// key without scope admin and token narrowed to read write; and an admin
// whose role was taken away after the token, session and admin API key
// were issued (SPEC §18 H5: the check reads the current roles). The
// account the unsafe operations name is unchanged at the end, and the
// same credentials of a real admin pass (the control).
func TestAdminRefusals(t *testing.T) {
	g := start(t, nil)
	bystander := g.user(t, "refusal")
	before := g.adminGet(t, bystander.ID)

	user := g.user(t, "refusal")
	_, userKey := g.createKey(t, user, "read", "write")

	admin := g.user(t, "refusal", "admin")
	_, adminKey := g.createKey(t, admin, "admin")
	_, adminRWKey := g.createKey(t, admin, "read", "write")
	narrowed := &account{Email: admin.Email}
	if sc := g.grant(t, narrowed, "read write"); sc != "read write" {
		t.Fatalf("narrowed grant: scope %q", sc)
	}

	demoted := g.user(t, "refusal", "admin")
	_, demotedKey := g.createKey(t, demoted, "admin")
	// The control: before the role goes, all three work.
	for name, h := range map[string][]string{"token": bearer(demoted.Access), "session": g.cookie(demoted), "API key": apiKey(demotedKey)} {
		if r := g.get(t, "/v1/admin/users?limit=1", h); r.Status != http.StatusOK {
			t.Fatalf("the admin's %s before the demotion: %s", name, r)
		}
	}
	g.setRoles(t, demoted.ID, "user")

	// The OAuth client the client operations name (SPEC §14).
	client := g.createClient(t, map[string]any{"name": "refusal", "type": "confidential", "redirect_uris": []string{"https://refusal.example/cb"}})
	clientBefore := g.get(t, "/v1/admin/clients/"+client.ClientID, bearer(g.root.Access)).String()
	// The webhook endpoint the webhook operations name (SPEC §16).
	hook := g.send(t, http.MethodPost, "/v1/admin/webhooks", map[string]any{"url": "https://refusal.example/hook", "events": []string{"*"}}, bearer(g.root.Access))
	if hook.Status != http.StatusCreated {
		t.Fatalf("create a webhook endpoint: %s", hook)
	}
	hookID := str(t, hook.JSON(t), "id")
	hookBefore := g.get(t, "/v1/admin/webhooks/"+hookID, bearer(g.root.Access)).String()
	fill := func(path string) string {
		if strings.HasPrefix(path, "/v1/admin/clients/") {
			return strings.ReplaceAll(path, "{id}", client.ClientID)
		}
		if strings.HasPrefix(path, "/v1/admin/webhooks/") {
			return strings.ReplaceAll(strings.ReplaceAll(path, "{id}", hookID), "{msg_id}", "msg_unknown")
		}
		return strings.ReplaceAll(path, "{id}", bystander.ID)
	}

	ops := adminOperations(t, g)
	type cred struct {
		name   string
		hdr    []string
		status int
	}
	creds := []cred{
		{"no credential", nil, http.StatusUnauthorized},
		{"a malformed token", bearer("not-a-token"), http.StatusUnauthorized},
		{"a tampered token", bearer(tamper(admin.Access)), http.StatusUnauthorized},
		{"an unknown API key", apiKey("gth_" + strings.Repeat("A", 50)), http.StatusUnauthorized},
		{"an unknown session", []string{"Cookie", g.cookieName + "=no-such-session"}, http.StatusUnauthorized},
		{"a user's token", bearer(user.Access), http.StatusForbidden},
		{"a user's session", g.cookie(user), http.StatusForbidden},
		{"a user's API key", apiKey(userKey), http.StatusForbidden},
		{"an admin's API key without admin", apiKey(adminRWKey), http.StatusForbidden},
		{"an admin's token narrowed to read write", bearer(narrowed.Access), http.StatusForbidden},
		// The role change revoked the token outright (SPEC §15
		// subject.revoked): 401, not H5's 403 for stale roles, which the
		// session and the key below still get.
		{"a demoted admin's token", bearer(demoted.Access), http.StatusUnauthorized},
		{"a demoted admin's session", g.cookie(demoted), http.StatusForbidden},
		{"a demoted admin's API key with admin", apiKey(demotedKey), http.StatusForbidden},
	}
	for _, op := range ops {
		path := fill(op.path)
		var body any
		switch {
		case op.method == http.MethodPatch && strings.HasPrefix(op.path, "/v1/admin/clients/"):
			body = `{"redirect_uris":["https://evil.example/cb"],"first_party":true}`
		case op.method == http.MethodPatch && strings.HasPrefix(op.path, "/v1/admin/webhooks/"):
			body = `{"url":"https://evil.example/hook","events":["*","login.failed"]}`
		case op.method == http.MethodPost && op.body && op.path == "/v1/admin/webhooks":
			body = `{"url":"https://evil.example/forged","events":["*"]}`
		case op.method == http.MethodPatch:
			body = `{"disabled":true,"roles":["admin"],"email_verified":true}`
		case op.method == http.MethodPost && op.body:
			body = `{"name":"forged","type":"confidential","redirect_uris":["https://evil.example/cb"],"first_party":true}`
		}
		for _, c := range creds {
			t.Run(op.method+" "+op.path+"/"+c.name, func(t *testing.T) {
				r := g.send(t, op.method, path, body, c.hdr, g.sameOrigin())
				p := wantProblem(t, c.name, r, c.status)
				if c.status == http.StatusUnauthorized {
					wantChallenge(t, c.name, r, c.hdr != nil)
				} else if !strings.Contains(p.Detail, "admin") {
					t.Errorf("%s: the 403 does not name the scope admin: %s", c.name, r.Body)
				}
			})
		}
	}
	if after := g.adminGet(t, bystander.ID); after.UpdatedAt != before.UpdatedAt || after.Disabled || !slices.Equal(after.Roles, before.Roles) {
		t.Fatalf("refused requests changed the account: %+v, was %+v", after, before)
	}
	if r := g.get(t, "/v1/me", g.cookie(bystander)); r.Status != http.StatusOK {
		t.Fatalf("refused requests ended the account's session: %s", r)
	}
	if after := g.get(t, "/v1/admin/clients/"+client.ClientID, bearer(g.root.Access)).String(); after != clientBefore {
		t.Fatalf("refused requests changed the client: %s, was %s", after, clientBefore)
	}
	if r := g.get(t, "/v1/admin/clients", bearer(g.root.Access)); strings.Contains(string(r.Body), "forged") {
		t.Fatalf("a refused request registered a client: %s", r.Body)
	}
	if after := g.get(t, "/v1/admin/webhooks/"+hookID, bearer(g.root.Access)).String(); after != hookBefore {
		t.Fatalf("refused requests changed the webhook endpoint: %s, was %s", after, hookBefore)
	}
	if r := g.get(t, "/v1/admin/webhooks", bearer(g.root.Access)); strings.Contains(string(r.Body), "evil.example") {
		t.Fatalf("a refused request registered or changed a webhook endpoint: %s", r.Body)
	}

	// The control: a real admin's token, session and admin API key pass
	// on every safe operation.
	for _, op := range ops {
		if op.method != http.MethodGet {
			continue
		}
		path := fill(op.path)
		for name, h := range map[string][]string{"token": bearer(admin.Access), "session": g.cookie(admin), "API key": apiKey(adminKey)} {
			if r := g.get(t, path, h); r.Status != http.StatusOK {
				t.Errorf("GET %s with an admin's %s: %s", path, name, r)
			}
		}
	}
	// Given the role back, the demoted admin's old token stays dead: the
	// role change revoked every token minted before it (SPEC §15,
	// subject.revoked). A new sign-in gets admin again.
	g.setRoles(t, demoted.ID, "admin")
	if r := g.get(t, "/v1/admin/users?limit=1", bearer(demoted.Access)); r.Status != http.StatusUnauthorized {
		t.Fatalf("the re-promoted admin's token minted before the demotion: %s, want 401", r)
	}
	g.grant(t, demoted, "")
	if r := g.get(t, "/v1/admin/users?limit=1", bearer(demoted.Access)); r.Status != http.StatusOK {
		t.Fatalf("the re-promoted admin's new token: %s", r)
	}
}

type operation struct {
	method, path string
	security     bool // the document names a security requirement
	body         bool // the operation takes a request body
}

// operations lists the operations of the server's OpenAPI document.
func operations(t *testing.T, g *gh) []operation {
	t.Helper()
	r := g.get(t, "/openapi.json")
	if r.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %s", r)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Security    []map[string][]string `json:"security"`
			RequestBody json.RawMessage       `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("/openapi.json: %v", err)
	}
	var ops []operation
	for path, item := range doc.Paths {
		for m, op := range item {
			m = strings.ToUpper(m)
			switch m {
			case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace:
			default:
				continue // parameters, summary …
			}
			ops = append(ops, operation{method: m, path: path, security: len(op.Security) > 0, body: len(op.RequestBody) > 0})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.path+" "+a.method, b.path+" "+b.method) })
	if len(ops) < 20 {
		t.Fatalf("/openapi.json lists only %d operations", len(ops))
	}
	return ops
}

// adminOperations are the operations under /v1/admin/.
func adminOperations(t *testing.T, g *gh) []operation {
	t.Helper()
	var out []operation
	for _, op := range operations(t, g) {
		if strings.HasPrefix(op.path, "/v1/admin/") {
			out = append(out, op)
		}
	}
	if len(out) < 6 {
		t.Fatalf("only %d admin operations in /openapi.json: %v", len(out), out)
	}
	return out
}
