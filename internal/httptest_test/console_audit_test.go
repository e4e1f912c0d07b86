package httptest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/testserver"
)

// The admin console's audit log, clients, webhooks and keys (SPEC §17):
// pages for an administrator (GATEHOUSE_ADMIN_REQUIRE_MFA=false, so that
// a password session opens them), every write through a same-origin form
// post with a recent sign-in, audited with via "console" and the admin's
// id.

// startConsoleOps starts a server whose console opens to root's password
// session.
func startConsoleOps(t *testing.T, yaml string, env map[string]string) *gh {
	t.Helper()
	e := map[string]string{"GATEHOUSE_ADMIN_REQUIRE_MFA": "false"}
	for k, v := range env {
		e[k] = v
	}
	g := startYAML(t, yaml, e)
	g.login(t, g.root)
	return g
}

// consoleSubmit posts a console form as who, from the server's own page.
func (g *gh) consoleSubmit(t *testing.T, who *account, path string, form url.Values) *testserver.Response {
	t.Helper()
	return g.send(t, http.MethodPost, path, form, g.cookie(who), g.sameOrigin())
}

// opsPage gets a console page as root and wants 200 and no-store; it
// returns the whole HTML (do shortens HTML bodies to their messages).
func (g *gh) opsPage(t *testing.T, path string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.Direct+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", g.cookieName+"="+g.root.Cookie)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, htmlMessage.FindAll(b, -1))
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("GET %s: Cache-Control %q, want no-store", path, cc)
	}
	return string(b)
}

// apiAuditEvent is an event as GET /v1/admin/audit shows it.
type apiAuditEvent struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	At      time.Time      `json:"at"`
	UserID  string         `json:"user_id"`
	IP      string         `json:"ip"`
	Details map[string]any `json:"details"`
}

// auditLog reads the audit log through the admin API as root, newest
// first.
func (g *gh) auditLog(t *testing.T, q url.Values) []apiAuditEvent {
	t.Helper()
	q.Set("limit", "1000")
	r := g.get(t, "/v1/admin/audit?"+q.Encode(), bearer(g.root.Access))
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/admin/audit?%s: %s", q.Encode(), r)
	}
	var body struct {
		Events []apiAuditEvent `json:"events"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Events
}

// wantConsoleAudit finds the newest event of typ, which must carry via
// "console" and root as actor, and match.
func (g *gh) wantConsoleAudit(t *testing.T, typ string, match func(d map[string]any) bool) apiAuditEvent {
	t.Helper()
	evs := g.auditLog(t, url.Values{"type": {typ}})
	for _, e := range evs {
		if match == nil || match(e.Details) {
			if e.Details["via"] != "console" || e.Details["actor"] != g.root.ID {
				t.Fatalf("%s audited with details %v: want via console and actor %s", typ, e.Details, g.root.ID)
			}
			return e
		}
	}
	t.Fatalf("no matching %s event in the audit log: %+v", typ, evs)
	return apiAuditEvent{}
}

// seededEvent is an audit row written straight into the server's SQLite
// database.
type seededEvent struct {
	ID, Type, UserID, IP, Details string
	At                            time.Time
}

// seedAuditRows writes events into the server's database in one
// transaction (the console reads what the store holds, however it got
// there).
func seedAuditRows(t *testing.T, g *gh, events []seededEvent) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(g.DataDir, "gatehouse.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.Prepare(`INSERT INTO audit_events (id, type, at, user_id, ip, details) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Details == "" {
			e.Details = "{}"
		}
		if _, err := st.Exec(e.ID, e.Type, e.At.UnixMicro(), e.UserID, e.IP, e.Details); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

var (
	eventRowRE = regexp.MustCompile(`<tr id="event-([^"]+)">`)
	olderRE    = regexp.MustCompile(`<a class="button secondary small" href="([^"]+)" rel="next">Older events</a>`)
)

// auditPage reads one console page of the audit log: the events' ids in
// order, and the link to the older ones.
func auditPage(t *testing.T, g *gh, path string) (ids []string, older string) {
	t.Helper()
	body := g.opsPage(t, path)
	for _, m := range eventRowRE.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	if m := olderRE.FindStringSubmatch(body); m != nil {
		older = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return ids, older
}

func eventIDs(evs []apiAuditEvent) []string {
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

func TestConsoleAuditLog(t *testing.T) {
	g := startConsoleOps(t, baseYAML, nil)
	user := g.user(t, "auditlog")
	// A failed sign-in of the user: login.failed with its id.
	if r := g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": user.Email, "password": "not the password"}, g.sameOrigin()); r.Status != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %s", r)
	}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var seeded []seededEvent
	for i := range 10 {
		seeded = append(seeded, seededEvent{ID: fmt.Sprintf("seed%02d", i), Type: "seed.range", At: base.Add(time.Duration(i) * time.Minute),
			UserID: "u-seeded", IP: "192.0.2.9", Details: fmt.Sprintf(`{"n":%d,"note":"two words"}`, i)})
	}
	seeded = append(seeded, seededEvent{ID: "seedactor", Type: "seed.actor", At: base.Add(-time.Hour),
		UserID: "u-target", IP: "192.0.2.9", Details: `{"actor":"u-admin","via":"console"}`})
	seedAuditRows(t, g, seeded)

	t.Run("Links", func(t *testing.T) {
		// The row links to the account it is about and, when another
		// account acted, to the actor's.
		body := g.opsPage(t, "/admin/audit?type=seed.actor")
		for _, want := range []string{`href="/admin/users/u-target"`, `href="/admin/users/u-admin"`} {
			if !strings.Contains(body, want) {
				t.Errorf("the audit log row lacks the link %s", want)
			}
		}
		body = g.opsPage(t, "/admin/audit?type=seed.range")
		if strings.Contains(body, "administrator u-") {
			t.Error("a row without an actor names one")
		}
	})

	t.Run("Page", func(t *testing.T) {
		body := g.opsPage(t, "/admin/audit")
		for _, want := range []string{"<h1>Audit log</h1>", `aria-current="page"`, `class="data stack-sm"`, `data-label="Type"`,
			`<label for="audit-from">`, `type="datetime-local"`, "Export as JSON Lines", "Export as CSV"} {
			if !strings.Contains(body, want) {
				t.Errorf("the audit log page lacks %q", want)
			}
		}
		// Details as compact key=value text.
		if !strings.Contains(body, `n=9 note=&#34;two words&#34;`) {
			t.Errorf("the newest seeded event's details are not shown as key=value text")
		}
	})

	t.Run("Filters", func(t *testing.T) {
		failed := eventIDs(g.auditLog(t, url.Values{"type": {"login.failed"}}))
		mine := eventIDs(g.auditLog(t, url.Values{"user_id": {user.ID}}))
		if len(failed) == 0 || len(mine) < 2 {
			t.Fatalf("the API shows %d login.failed events and %d of the user: the setup made none", len(failed), len(mine))
		}
		for _, tc := range []struct {
			name, query string
			want        []string
		}{
			{"Type", "type=login.failed", failed},
			{"UserByID", "user=" + user.ID, mine},
			{"UserByEmail", "user=" + url.QueryEscape(user.Email), mine},
			{"UserByEmailInCapitals", "user=" + url.QueryEscape(strings.ToUpper(user.Email)), mine},
			{"TypeAndUser", "type=login.failed&user=" + user.ID, eventIDs(g.auditLog(t, url.Values{"type": {"login.failed"}, "user_id": {user.ID}}))},
			{"FromInclusiveToExclusive", "type=seed.range&from=2020-01-01T00:03&to=2020-01-01T00:06", []string{"seed05", "seed04", "seed03"}},
			{"FromWithSeconds", "type=seed.range&from=2020-01-01T00:08:00", []string{"seed09", "seed08"}},
			{"Until", "user=u-seeded&to=2020-01-01T00:02", []string{"seed01", "seed00"}},
			{"NothingInTheFuture", "from=" + time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04"), nil},
			{"UnknownType", "type=no.such.type", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, older := auditPage(t, g, "/admin/audit?"+tc.query)
				if older != "" {
					t.Fatalf("an older page for %s", tc.query)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("GET /admin/audit?%s = %q, want %q", tc.query, got, tc.want)
				}
			})
		}
		for _, tc := range []struct {
			name, query string
			status      int
			msg         string
		}{
			{"BadFrom", "from=yesterday", http.StatusBadRequest, "From is not a date and time"},
			{"BadTo", "to=2020-13-01T00:00", http.StatusBadRequest, "To is not a date and time"},
			{"EmptyRange", "from=2020-01-02T00:00&to=2020-01-01T00:00", http.StatusBadRequest, "end of the time range must be after its start"},
			{"UnknownEmail", "user=nobody%40example.test", http.StatusNotFound, "No account has that email"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := g.get(t, "/admin/audit?"+tc.query, g.cookie(g.root))
				if r.Status != tc.status || !strings.Contains(string(r.Body), tc.msg) {
					t.Fatalf("GET /admin/audit?%s: %s, want %d saying %q", tc.query, r, tc.status, tc.msg)
				}
			})
		}
	})

	t.Run("Pages", func(t *testing.T) {
		// Pages of 3, following "Older events": every event once, newest
		// first, as the API lists them.
		want := eventIDs(g.auditLog(t, url.Values{}))
		var got []string
		next := "/admin/audit?limit=3"
		pages := 0
		for next != "" {
			if pages++; pages > 100 {
				t.Fatalf("more than 100 pages of 3 for %d events", len(want))
			}
			ids, older := auditPage(t, g, next)
			if len(ids) == 0 || len(ids) > 3 {
				t.Fatalf("page %d has %d events", pages, len(ids))
			}
			got = append(got, ids...)
			next = older
		}
		// Events appended while paging (none should be) would be newer.
		if !slices.Equal(got, want) {
			t.Fatalf("the pages hold %q, want %q", got, want)
		}
		// The filters stay on the links.
		ids, older := auditPage(t, g, "/admin/audit?type=seed.range&limit=4")
		if !slices.Equal(ids, []string{"seed09", "seed08", "seed07", "seed06"}) || !strings.Contains(older, "type=seed.range") {
			t.Fatalf("first page of seed.range by 4: %q, older %q", ids, older)
		}
		ids, older = auditPage(t, g, older)
		if !slices.Equal(ids, []string{"seed05", "seed04", "seed03", "seed02"}) {
			t.Fatalf("second page of seed.range by 4: %q", ids)
		}
		ids, older = auditPage(t, g, older)
		if !slices.Equal(ids, []string{"seed01", "seed00"}) || older != "" {
			t.Fatalf("last page of seed.range by 4: %q, older %q", ids, older)
		}
	})

	t.Run("BadCursors", func(t *testing.T) {
		_, older := auditPage(t, g, "/admin/audit?type=seed.range&limit=4")
		u, err := url.Parse(older)
		if err != nil {
			t.Fatal(err)
		}
		real := u.Query().Get("cursor")
		raw, err := base64.RawURLEncoding.DecodeString(real)
		if err != nil || len(raw) < 17 {
			t.Fatalf("the cursor %q is not base64url of a MAC and a position", real)
		}
		flipped := slices.Clone(raw)
		flipped[len(flipped)-1] ^= 1
		// The same position MACed with the root secret itself, not with
		// the key derived from it for cursors (SPEC §18 H3).
		mac := hmac.New(sha256.New, []byte(rootSecret))
		mac.Write(raw[16:])
		// A users-list cursor of the admin API: MACed with the right key,
		// but not a position in the audit log.
		users := g.get(t, "/v1/admin/users?limit=1", bearer(g.root.Access))
		var up struct {
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(users.Body, &up); err != nil || up.NextCursor == "" {
			t.Fatalf("GET /v1/admin/users?limit=1: %s", users)
		}
		for name, c := range map[string]string{
			"changed byte":               base64.RawURLEncoding.EncodeToString(flipped),
			"truncated":                  real[:len(real)-2],
			"not base64url":              "!!" + real,
			"MACed with the root secret": base64.RawURLEncoding.EncodeToString(append(mac.Sum(nil)[:16], raw[16:]...)),
			"a users-list cursor":        up.NextCursor,
		} {
			r := g.get(t, "/admin/audit?type=seed.range&limit=4&cursor="+url.QueryEscape(c), g.cookie(g.root))
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "page link is not valid") {
				t.Errorf("a cursor (%s): %s, want 400 saying the link is not valid", name, r)
			}
		}
	})

	t.Run("Refused", func(t *testing.T) {
		for _, p := range []string{"/admin/audit", "/admin/audit/export?format=csv"} {
			if r := g.get(t, p, g.cookie(user)); r.Status != http.StatusForbidden {
				t.Errorf("GET %s as a user: %s, want 403", p, r)
			}
			if r := g.get(t, p, bearer(g.root.Access)); r.Status != http.StatusForbidden {
				t.Errorf("GET %s with the admin's access token: %s, want 403", p, r)
			}
			if r := g.get(t, p); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login?") {
				t.Errorf("GET %s signed out: %s (Location %q), want 303 to sign in", p, r, r.Header.Get("Location"))
			}
		}
		if n := len(g.auditLog(t, url.Values{"type": {"admin.audit.exported"}})); n != 0 {
			t.Fatalf("%d exports audited after refused requests, want 0", n)
		}
	})
}

// exportFile downloads an export as root and checks the headers of a file
// download.
func exportFile(t *testing.T, g *gh, query, ext string) string {
	t.Helper()
	r := g.get(t, "/admin/audit/export?"+query, g.cookie(g.root))
	if r.Status != http.StatusOK {
		t.Fatalf("GET /admin/audit/export?%s: %s", query, r)
	}
	cd := r.Header.Get("Content-Disposition")
	if !strings.HasPrefix(cd, `attachment; filename="gatehouse-audit-`) || !strings.HasSuffix(cd, "."+ext+`"`) {
		t.Fatalf("export Content-Disposition %q, want an attachment named gatehouse-audit-….%s", cd, ext)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("export Cache-Control %q, want no-store", cc)
	}
	return string(r.Body)
}

func TestConsoleAuditExport(t *testing.T) {
	g := startConsoleOps(t, baseYAML, map[string]string{"GATEHOUSE_STEP_UP_MAX_AGE": "3s"})
	at := time.Date(2021, 6, 1, 12, 0, 0, 0, time.UTC)
	// Cells a spreadsheet would run as formulas: a type, a user, an IP
	// and an id (a store holds what it is given).
	seedAuditRows(t, g, []seededEvent{
		{ID: "x1", Type: "=HYPERLINK(\"https://evil.example\",\"x\")", At: at, UserID: "+SUM(1,1)", IP: "-1+1", Details: `{"note":"a, \"quoted\"\nline"}`},
		{ID: "@x2", Type: "seed.export", At: at.Add(time.Second), UserID: "u-2", IP: "198.51.100.7", Details: `{"n":2}`},
		{ID: "x3", Type: "seed.export", At: at.Add(2 * time.Second), UserID: "u-3", IP: "198.51.100.8"},
	})
	window := "from=2021-06-01T00:00&to=2021-06-02T00:00"

	t.Run("JSONLines", func(t *testing.T) {
		g.login(t, g.root) // a recent sign-in
		body := exportFile(t, g, "format=jsonl&"+window, "jsonl")
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("JSON Lines export: %d lines, want 3:\n%s", len(lines), body)
		}
		var ids []string
		for _, l := range lines {
			var e apiAuditEvent
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("a line of the export is not JSON: %v: %s", err, l)
			}
			ids = append(ids, e.ID)
		}
		if !slices.Equal(ids, []string{"x3", "@x2", "x1"}) {
			t.Fatalf("export order %q, want newest first", ids)
		}
		var first apiAuditEvent
		_ = json.Unmarshal([]byte(lines[2]), &first)
		if first.Type != `=HYPERLINK("https://evil.example","x")` || first.UserID != "+SUM(1,1)" || !first.At.Equal(at) ||
			first.Details["note"] != "a, \"quoted\"\nline" {
			t.Fatalf("export line %+v: want the event as stored (JSON needs no formula guard)", first)
		}
		// Filters apply to the export as to the page.
		body = exportFile(t, g, "format=jsonl&type=seed.export&"+window, "jsonl")
		if n := strings.Count(body, "\n"); n != 2 || !strings.Contains(body, `"id":"x3"`) || strings.Contains(body, `"id":"x1"`) {
			t.Fatalf("export of seed.export: %d lines:\n%s", n, body)
		}
		e := g.wantConsoleAudit(t, "admin.audit.exported", func(d map[string]any) bool { return d["format"] == "jsonl" })
		f, _ := e.Details["filters"].(map[string]any)
		if e.UserID != g.root.ID || f["type"] != "seed.export" || f["from"] != "2021-06-01T00:00:00Z" || f["to"] != "2021-06-02T00:00:00Z" {
			t.Fatalf("admin.audit.exported: user %q, details %v: want root and the filters", e.UserID, e.Details)
		}
	})

	t.Run("CSV", func(t *testing.T) {
		g.login(t, g.root)
		body := exportFile(t, g, "format=csv&"+window, "csv")
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("the CSV export does not parse: %v\n%s", err, body)
		}
		want := [][]string{
			{"id", "at", "type", "user_id", "ip", "details"},
			{"x3", "2021-06-01T12:00:02Z", "seed.export", "u-3", "198.51.100.8", "{}"},
			{"'@x2", "2021-06-01T12:00:01Z", "seed.export", "u-2", "198.51.100.7", `{"n":2}`},
			{"x1", "2021-06-01T12:00:00Z", `'=HYPERLINK("https://evil.example","x")`, "'+SUM(1,1)", "'-1+1", `{"note":"a, \"quoted\"\nline"}`},
		}
		if fmt.Sprintf("%q", rows) != fmt.Sprintf("%q", want) {
			t.Fatalf("CSV export\n%q\nwant\n%q", rows, want)
		}
		if ct := g.get(t, "/admin/audit/export?format=csv&"+window, g.cookie(g.root)).Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("CSV export Content-Type %q", ct)
		}
		g.wantConsoleAudit(t, "admin.audit.exported", func(d map[string]any) bool { return d["format"] == "csv" })
	})

	t.Run("BadFormat", func(t *testing.T) {
		g.login(t, g.root)
		before := len(g.auditLog(t, url.Values{"type": {"admin.audit.exported"}}))
		r := g.get(t, "/admin/audit/export?format=xlsx", g.cookie(g.root))
		if r.Status != http.StatusBadRequest || r.Header.Get("Content-Disposition") != "" {
			t.Fatalf("export as xlsx: %s, want a 400 page", r)
		}
		if after := len(g.auditLog(t, url.Values{"type": {"admin.audit.exported"}})); after != before {
			t.Fatalf("a refused export was audited")
		}
		// HEAD: the download's headers, and no export to audit.
		if r := g.do(t, http.MethodHead, "/admin/audit/export?format=csv", "", nil, g.cookie(g.root)); r.Status != http.StatusOK ||
			!strings.HasPrefix(r.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("HEAD export: %s (Content-Disposition %q)", r, r.Header.Get("Content-Disposition"))
		}
		if after := len(g.auditLog(t, url.Values{"type": {"admin.audit.exported"}})); after != before {
			t.Fatalf("a HEAD request was audited as an export")
		}
	})

	t.Run("NeedsStepUp", func(t *testing.T) {
		g.login(t, g.root)
		time.Sleep(3100 * time.Millisecond) // older than GATEHOUSE_STEP_UP_MAX_AGE
		path := "/admin/audit/export?format=jsonl&type=seed.export"
		before := len(g.auditLog(t, url.Values{"type": {"admin.audit.exported"}}))
		r := g.get(t, path, g.cookie(g.root))
		loc := r.Header.Get("Location")
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/step-up?return_to=") {
			t.Fatalf("export without a recent sign-in: %s (Location %q), want 303 to the step-up page", r, loc)
		}
		if after := len(g.auditLog(t, url.Values{"type": {"admin.audit.exported"}})); after != before {
			t.Fatalf("an export refused for step-up was audited")
		}
		u, _ := url.Parse(loc)
		back := u.Query().Get("return_to")
		s := g.send(t, http.MethodPost, "/admin/step-up", url.Values{"password": {password}, "return_to": {back}}, g.cookie(g.root), g.sameOrigin())
		if s.Status != http.StatusSeeOther || s.Header.Get("Location") != path {
			t.Fatalf("step-up: %s to %q, want 303 back to %q", s, s.Header.Get("Location"), path)
		}
		if body := exportFile(t, g, strings.TrimPrefix(path, "/admin/audit/export?"), "jsonl"); strings.Count(body, "\n") != 2 {
			t.Fatalf("export after step-up:\n%s", body)
		}
	})

	t.Run("Large", func(t *testing.T) {
		// 20 000 events stream out whole and in order.
		const n = 20000
		big := make([]seededEvent, n)
		start := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range big {
			big[i] = seededEvent{ID: fmt.Sprintf("big%05d", i), Type: "seed.large", At: start.Add(time.Duration(i) * time.Second),
				UserID: "u-big", IP: "203.0.113.5", Details: fmt.Sprintf(`{"n":%d}`, i)}
		}
		seedAuditRows(t, g, big)
		g.login(t, g.root)
		req, _ := http.NewRequest(http.MethodGet, g.Direct+"/admin/audit/export?format=csv&type=seed.large", nil)
		req.Header.Set("Cookie", g.cookieName+"="+g.root.Cookie)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK || res.ContentLength != -1 {
			t.Fatalf("large export: %d, Content-Length %d: want 200 streamed (no length known in advance)", res.StatusCode, res.ContentLength)
		}
		cr := csv.NewReader(res.Body)
		if _, err := cr.Read(); err != nil {
			t.Fatal(err)
		}
		for i := n - 1; i >= 0; i-- {
			rec, err := cr.Read()
			if err != nil {
				t.Fatalf("row %d of %d: %v", n-i, n, err)
			}
			if want := fmt.Sprintf("big%05d", i); rec[0] != want {
				t.Fatalf("row %d is %s, want %s (newest first)", n-i, rec[0], want)
			}
		}
		if rec, err := cr.Read(); err == nil {
			t.Fatalf("a row after the last: %q", rec)
		}
	})
}
