package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gatehouse/internal/auth"
	"gatehouse/internal/authtest"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/storetest"
	"gatehouse/internal/testserver"
)

// BenchmarkConsoleUsersSearch is the admin console's user list (SPEC §17)
// on 100 000 accounts: an email-prefix search ("user0", which every
// account matches) at page 1 and at page 50 (50 a page), through the store
// (FindUsers), the service (FindUsers with its signed cursor) and the HTTP
// handler (GET /admin/users as an administrator's session, the whole
// middleware stack of `gatehouse serve` on loopback). Keyset pagination:
// page 50 costs what page 1 costs. The target is at most 50 ms a page.
//
//	go test ./internal/sqlstore -run '^$' -bench ConsoleUsersSearch -benchtime 200x
func BenchmarkConsoleUsersSearch(b *testing.B) {
	const (
		users    = 100_000
		pageSize = 50
		query    = "user0"
	)
	// emailOf is account i's email: zero-padded, so email order is i's.
	emailOf := func(i int) string { return fmt.Sprintf("user%06d@example.com", i) }

	run := func(b *testing.B, dbURL string, db *sqlstore.DB, raw *sql.DB, series string) {
		ctx := context.Background()
		// One statement: 100 000 rows in one transaction. Names do not
		// match the search (so the name half of the prefix search finds
		// nothing, as for most email searches); one in ten is verified,
		// one in fifty disabled.
		load := `INSERT INTO users (id, email, email_verified, name, password_hash, roles, disabled, created_at, updated_at)
			SELECT 'id' || i, 'user' || substr('00000' || i, -6, 6) || '@example.com', i % 10 = 0, 'Person ' || i,
				'', 'user', i % 50 = 0, 1700000000000000 + i, 1700000000000000 + i FROM ` + series
		if db.Dialect() == "postgres" {
			load = strings.Replace(load, "substr('00000' || i, -6, 6)", "lpad(i::text, 6, '0')", 1)
		}
		if _, err := raw.ExecContext(ctx, load); err != nil {
			b.Fatalf("loading users: %v", err)
		}
		analyze := "ANALYZE"
		if db.Dialect() == "postgres" {
			analyze = "VACUUM ANALYZE"
		}
		if _, err := raw.ExecContext(ctx, analyze); err != nil {
			b.Fatal(err)
		}
		// Page 50 starts after the 49×50th match.
		firstOf50 := emailOf(49 * pageSize)

		b.Run("Store", func(b *testing.B) {
			for _, p := range []struct {
				name, after, first string
			}{{"Page1", "", emailOf(0)}, {"Page50", emailOf(49*pageSize - 1), firstOf50}} {
				b.Run(p.name, func(b *testing.B) {
					q := auth.UserQuery{Match: auth.MatchPrefix, Text: query, After: p.after, Limit: pageSize + 1}
					for b.Loop() {
						got, err := db.FindUsers(ctx, q)
						if err != nil {
							b.Fatal(err)
						}
						if len(got) != pageSize+1 || got[0].Email != p.first {
							b.Fatalf("FindUsers: %d accounts from %s, want %d from %s", len(got), got[0].Email, pageSize+1, p.first)
						}
					}
				})
			}
		})

		// The searches that are not an email prefix, for the record (not
		// the target): a fragment matching every email (the scan stops at
		// a page) and one matching none (the whole table), a name prefix
		// of 11 111 accounts (sorted by email), a role nobody has (the
		// whole table) and the disabled filter (its partial index).
		yes := true
		for _, o := range []struct {
			name string
			q    auth.UserQuery
		}{
			{"ContainsCommon", auth.UserQuery{Match: auth.MatchEmailContains, Text: "@example.com"}},
			{"ContainsNone", auth.UserQuery{Match: auth.MatchEmailContains, Text: "@nowhere.test"}},
			{"NamePrefix", auth.UserQuery{Match: auth.MatchPrefix, Text: "person 1"}},
			{"RoleNobodyHas", auth.UserQuery{Role: "admin"}},
			{"Disabled", auth.UserQuery{Disabled: &yes}},
		} {
			b.Run("Store/"+o.name, func(b *testing.B) {
				o.q.Limit = pageSize + 1
				for b.Loop() {
					if _, err := db.FindUsers(ctx, o.q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}

		b.Run("Service", func(b *testing.B) {
			svc := authtest.New(b, db)
			in := auth.UserSearch{Query: query}
			cursor := ""
			for range 49 {
				page, err := svc.FindUsers(ctx, in, cursor, pageSize)
				if err != nil {
					b.Fatal(err)
				}
				cursor = page.Next
			}
			for _, p := range []struct{ name, cursor, first string }{{"Page1", "", emailOf(0)}, {"Page50", cursor, firstOf50}} {
				b.Run(p.name, func(b *testing.B) {
					for b.Loop() {
						page, err := svc.FindUsers(ctx, in, p.cursor, pageSize)
						if err != nil {
							b.Fatal(err)
						}
						if len(page.Users) != pageSize || page.Users[0].Email != p.first || page.Next == "" {
							b.Fatalf("FindUsers: %d accounts from %s, want %d from %s", len(page.Users), page.Users[0].Email, pageSize, p.first)
						}
					}
				})
			}
		})

		b.Run("HTTP", func(b *testing.B) {
			// The secret the Service benchmark's signing keys are sealed with.
			env := testserver.Env(b, "", map[string]string{"GATEHOUSE_DATABASE_URL": dbURL, "GATEHOUSE_LOG_LEVEL": "warn",
				"GATEHOUSE_SECRET": authtest.RootSecret, "GATEHOUSE_ADMIN_REQUIRE_MFA": "false"})
			const admin, pw = "root@admin.test", "correct horse battery staple"
			s := testserver.Start(b, testserver.Options{Env: env, Before: func(s *testserver.Server) {
				s.Command(b, pw+"\n", "user", "create", "--email", admin, "--role", "admin", "--password-stdin")
			}})
			r := testserver.Send(b, http.MethodPost, s.Direct+"/v1/sessions", map[string]string{"email": admin, "password": pw},
				"Origin", s.URL, "Sec-Fetch-Site", "same-origin")
			var cookie string
			for _, c := range (&http.Response{Header: r.Header}).Cookies() {
				if strings.Contains(c.Name, "session") && c.Value != "" {
					cookie = c.Name + "=" + c.Value
				}
			}
			if r.Status != http.StatusCreated || cookie == "" {
				b.Fatalf("admin sign-in: %s", r)
			}
			get := func(b *testing.B, path string) string {
				req, err := http.NewRequest(http.MethodGet, s.Direct+path, nil)
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Cookie", cookie)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
				}
				return string(body)
			}
			next := regexp.MustCompile(`href="([^"]*)" rel="next"`)
			page50 := "/admin/users?q=" + url.QueryEscape(query)
			for range 49 {
				m := next.FindStringSubmatch(get(b, page50))
				if m == nil {
					b.Fatalf("no next link on %s", page50)
				}
				page50 = html.UnescapeString(m[1])
			}
			for _, p := range []struct{ name, path, first string }{
				{"Page1", "/admin/users?q=" + url.QueryEscape(query), emailOf(0)}, {"Page50", page50, firstOf50},
			} {
				b.Run(p.name, func(b *testing.B) {
					for b.Loop() {
						body := get(b, p.path)
						if i := strings.Index(body, `">`+p.first+`</a>`); i < 0 || strings.Count(body, "<tr data-user=") != pageSize {
							b.Fatalf("GET %s does not list %d accounts from %s", p.path, pageSize, p.first)
						}
					}
				})
			}
		})
	}

	b.Run("SQLite", func(b *testing.B) {
		ctx := context.Background()
		path := filepath.Join(b.TempDir(), "bench.db")
		db, err := sqlstore.OpenSQLite(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		run(b, "sqlite:"+path, db, raw, fmt.Sprintf("(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d) SELECT i FROM s) AS s", users-1))
	})
	b.Run("Postgres", func(b *testing.B) {
		pg := storetest.PostgresServer(b) // skips, with how to reach one, when there is none
		dsn := pg.NewDatabase(b, "gh_bench_")
		ctx := context.Background()
		db, err := sqlstore.OpenPostgres(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		raw, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		run(b, dsn, db, raw, fmt.Sprintf("generate_series(0, %d) AS s(i)", users-1))
	})
}
