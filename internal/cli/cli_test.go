package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"gatehouse/internal/cli"
	"gatehouse/internal/testserver"
)

// The tests in this package (cli_test) drive gatehouse through cli.Run
// only, with the in-process server of internal/testserver; bench_test.go
// and email_bench_test.go are in package cli, for the app's internals.

// pub is the public URL of the servers these tests start (baseEnv): their
// tokens' issuer and the origin of every link they mail; requests go to
// the listener, testServer.Direct.
const pub = "http://gatehouse.test"

// testServer is a gatehouse serve running in-process on a free port.
type testServer struct{ *testserver.Server }

type resp = testserver.Response

// baseEnv is a configuration in a fresh data dir with fast hashing.
func baseEnv(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	return yamlEnv(t, "", extra)
}

// yamlEnv is baseEnv with yaml added to the configuration file.
func yamlEnv(t *testing.T, yaml string, extra map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{"GATEHOUSE_ADDR": "127.0.0.1:0", "GATEHOUSE_PUBLIC_URL": pub}
	maps.Copy(env, extra)
	return testserver.Env(t, yaml, env)
}

// runCLI runs one gatehouse command to completion.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return testserver.Run(t, env, stdin, args...)
}

// start runs gatehouse serve and waits until /healthz answers.
func start(t *testing.T, env map[string]string) *testServer {
	t.Helper()
	return &testServer{testserver.Start(t, testserver.Options{Env: env})}
}

func (s *testServer) do(t *testing.T, method, path, contentType string, body []byte, hdr ...string) *resp {
	t.Helper()
	return testserver.Do(t, method, s.Direct+path, contentType, body, hdr...)
}

func (s *testServer) postJSON(t *testing.T, path string, v any, hdr ...string) *resp {
	t.Helper()
	b, _ := json.Marshal(v)
	return s.do(t, "POST", path, "application/json", b, hdr...)
}

func (s *testServer) postForm(t *testing.T, path string, v url.Values) *resp {
	t.Helper()
	return s.do(t, "POST", path, "application/x-www-form-urlencoded", []byte(v.Encode()))
}

func TestZeroConfigServeCreatesDataDir(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "gatehouse-data")
	s := start(t, map[string]string{"GATEHOUSE_DATA_DIR": data, "GATEHOUSE_ADDR": "127.0.0.1:0"})
	if r := s.do(t, "GET", "/readyz", "", nil); r.Status != 200 {
		t.Fatalf("/readyz: %d %s", r.Status, r.Body)
	}
	st, err := os.Stat(filepath.Join(data, "secret"))
	if err != nil {
		t.Fatalf("no generated secret: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(data, "gatehouse.db")); err != nil {
		t.Errorf("no SQLite database: %v", err)
	}
	jwks := s.do(t, "GET", "/.well-known/jwks.json", "", nil).JSON(t)
	// The access-token key and the ID-token key (RS256 by default).
	if keys, _ := jwks["keys"].([]any); len(keys) != 2 {
		t.Errorf("want two generated signing keys (access and ID tokens), got %v", jwks)
	}
}

// TestOAuth2Client drives the server with golang.org/x/oauth2 as a real
// client: the password grant, then automatic refresh through TokenSource.
func TestOAuth2Client(t *testing.T) {
	// A 2 s access token is always inside x/oauth2's 10 s expiry margin, so
	// every Token() call refreshes.
	s := start(t, baseEnv(t, map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "2s"}))
	s.Register(t, "ada@example.com", "correct horse battery staple")
	conf := &oauth2.Config{ClientID: "e2e", Endpoint: oauth2.Endpoint{TokenURL: s.Direct + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}, Scopes: []string{"read", "write"}}
	ctx := context.Background()
	tok, err := conf.PasswordCredentialsToken(ctx, "ada@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatalf("password grant: %v", err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
		t.Fatalf("incomplete token: %+v", tok)
	}
	src := conf.TokenSource(ctx, tok)
	t2, err := src.Token()
	if err != nil {
		t.Fatalf("refresh through TokenSource: %v", err)
	}
	if t2.AccessToken == tok.AccessToken || t2.RefreshToken == tok.RefreshToken {
		t.Fatalf("TokenSource did not rotate the tokens")
	}
	client := oauth2.NewClient(ctx, src)
	res, err := client.Get(s.Direct + "/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var me map[string]any
	_ = json.NewDecoder(res.Body).Decode(&me)
	if res.StatusCode != 200 || me["email"] != "ada@example.com" {
		t.Fatalf("GET /v1/me through the oauth2 client: %d %v", res.StatusCode, me)
	}
	// The first refresh token was rotated: past the grace window it is reuse.
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		// Inside the 10 s grace window the same successor comes back instead.
		if err != nil {
			t.Fatalf("repeat refresh: %v", err)
		}
	}
}

func TestBadInput(t *testing.T) {
	s := start(t, baseEnv(t, nil))
	big := append([]byte(`{"email":"x@example.com","password":"long enough pw",`), bytes.Repeat([]byte(" "), 70<<10)...)
	big = append(big, '}')
	for _, tc := range []struct {
		name        string
		method      string
		path, ctype string
		body        []byte
		want        int
		problem     bool
	}{
		{"invalid JSON", "POST", "/v1/register", "application/json", []byte(`{"email": `), 400, true},
		{"oversized body", "POST", "/v1/register", "application/json", big, 413, true},
		{"wrong content type", "POST", "/v1/register", "text/plain", []byte(`{}`), 415, true},
		{"invalid UTF-8", "POST", "/v1/register", "application/json", []byte("{\"email\":\"a\xff@example.com\",\"password\":\"long enough pw\"}"), 400, true},
		{"NUL in email", "POST", "/v1/register", "application/json", []byte(`{"email":"a\u0000@example.com","password":"long enough pw"}`), 422, true},
		{"wrong field type", "POST", "/v1/register", "application/json", []byte(`{"email":5,"password":true}`), 422, true},
		{"unknown route", "GET", "/v1/nope", "", nil, 404, true},
		{"token with JSON body", "POST", "/oauth2/token", "application/json", []byte(`{"grant_type":"password"}`), 415, false},
		{"token oversized", "POST", "/oauth2/token", "application/x-www-form-urlencoded", bytes.Repeat([]byte("a"), 70<<10), 413, false},
		{"token credentials in query", "POST", "/oauth2/token?password=x", "application/x-www-form-urlencoded", []byte("grant_type=password&username=a@b.c"), 400, false},
		{"token repeated parameter", "POST", "/oauth2/token", "application/x-www-form-urlencoded", []byte("grant_type=password&grant_type=refresh_token"), 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, tc.ctype, tc.body)
			if r.Status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.want, r.Body)
			}
			ct := r.Header.Get("Content-Type")
			if tc.problem && !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			if !tc.problem && r.JSON(t)["error"] == nil {
				t.Errorf("no RFC 6749 error member: %s", r.Body)
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("security headers missing on an error response: %v", r.Header)
			}
		})
	}
}

func TestPasswordStdinTrimsNewline(t *testing.T) {
	env := baseEnv(t, nil)
	out, stderr, err := runCLI(t, env, "an admin pass phrase\n", "user", "create", "--email", "Root@Example.com", "--role", "admin", "--password-stdin")
	if err != nil {
		t.Fatalf("user create: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "root@example.com") {
		t.Errorf("output %q does not name the user", out)
	}
	s := start(t, env)
	r := s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"root@example.com"}, "password": {"an admin pass phrase"}})
	if r.Status != 200 {
		t.Fatalf("login with the password without its newline: %d %s", r.Status, r.Body)
	}
	if scope := r.JSON(t)["scope"]; !strings.Contains(scope.(string), "admin") {
		t.Errorf("admin token scope %q lacks admin", scope)
	}
	if _, _, err := runCLI(t, env, "another pass phrase\n", "user", "create", "--email", "root@example.com", "--password-stdin"); err == nil {
		t.Errorf("creating a second user with the same email succeeded")
	}
}

func TestConfigErrorsAllReported(t *testing.T) {
	env := baseEnv(t, map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "soon", "GATEHOUSE_SIGNING_ALG": "none"})
	_, _, err := runCLI(t, env, "", "serve", "--lockout-threshold", "-3")
	if err == nil {
		t.Fatal("serve started with bad settings")
	}
	for _, key := range []string{"GATEHOUSE_ACCESS_TOKEN_TTL", "GATEHOUSE_SIGNING_ALG", "--lockout-threshold"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"serve", "--help"}, {"user", "create", "--help"}, {"keys", "rotate", "--help"}, {"migrate", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, err := runCLI(t, map[string]string{}, "", args...)
			if !cli.IsHelp(err) {
				t.Fatalf("--help: err %v", err)
			}
			// Asked-for help goes to stdout (and exits 0 in main).
			if stderr != "" {
				t.Errorf("--help wrote to stderr: %q", stderr)
			}
			for _, want := range []string{"Usage: gatehouse", "-public-url", "GATEHOUSE_PUBLIC_URL", "-signing-alg"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("help lacks %q", want)
				}
			}
		})
	}
	out, _, err := runCLI(t, map[string]string{}, "", "help")
	if err != nil || !strings.Contains(out, "keys rotate") {
		t.Errorf("top-level help: %v %q", err, out)
	}
	if _, _, err := runCLI(t, map[string]string{}, "", "frobnicate"); !cli.IsUsage(err) || cli.IsHelp(err) {
		t.Errorf("unknown command: %v", err)
	}
	// A bad flag is an error: usage on stderr, not help.
	_, stderr, err := runCLI(t, map[string]string{}, "", "serve", "--no-such-flag")
	if !cli.IsUsage(err) || cli.IsHelp(err) || !strings.Contains(stderr, "no-such-flag") {
		t.Errorf("bad flag: err %v, stderr %q", err, stderr)
	}
}

func TestKeysRotateWhileRunning(t *testing.T) {
	env := baseEnv(t, nil)
	s := start(t, env)
	s.Register(t, "kim@example.com", "correct horse battery staple")
	login := func() string {
		r := s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"kim@example.com"}, "password": {"correct horse battery staple"}})
		if r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		return r.JSON(t)["access_token"].(string)
	}
	old := login()
	out, stderr, err := runCLI(t, env, "", "keys", "rotate")
	if err != nil {
		t.Fatalf("keys rotate: %v %s", err, stderr)
	}
	// It names every new key: the access-token key and the ID-token key.
	if !strings.Contains(out, "EdDSA, access tokens") || !strings.Contains(out, "RS256, ID tokens") {
		t.Fatalf("keys rotate said %q, want the new access-token and ID-token keys", out)
	}
	// Each new key is audited (key.rotated, from the command line).
	db, err := sql.Open("sqlite", "file:"+filepath.Join(env["GATEHOUSE_DATA_DIR"], "gatehouse.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	made := regexp.MustCompile(`new signing key (\S+) `).FindAllStringSubmatch(out, -1)
	if len(made) != 2 {
		t.Fatalf("keys rotate named %d keys: %q", len(made), out)
	}
	for _, m := range made {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM audit_events WHERE type = 'key.rotated' AND ip = 'cli' AND user_id = '' AND details LIKE ?`, `%"kid":"`+m[1]+`"%`).Scan(&n); err != nil || n != 1 {
			t.Errorf("key.rotated events for %s from the command line: %d (%v), want 1", m[1], n, err)
		}
	}
	// The running server picks the new key up on its next reload; until
	// then the old one still signs. Either way the old token must verify.
	if r := s.do(t, "GET", "/v1/me", "", nil, "Authorization", "Bearer "+old); r.Status != 200 {
		t.Fatalf("token from before the rotation: %d %s", r.Status, r.Body)
	}
	list, _, err := runCLI(t, env, "", "keys", "list")
	if err != nil || strings.Count(list, "EdDSA") != 2 || !strings.Contains(list, "current") {
		t.Fatalf("keys list after rotate: %v\n%s\n(rotate said %s)", err, list, out)
	}
	s.Stop(t)
	s2 := start(t, env)
	if r := s2.do(t, "GET", "/v1/me", "", nil, "Authorization", "Bearer "+old); r.Status != 200 {
		t.Fatalf("old token after restart: %d %s", r.Status, r.Body)
	}
}

func TestMetricsAndDocs(t *testing.T) {
	s := start(t, baseEnv(t, nil))
	s.Register(t, "mo@example.com", "correct horse battery staple")
	s.postForm(t, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"mo@example.com"}, "password": {"wrong password here"}})
	m := string(s.do(t, "GET", "/metrics", "", nil).Body)
	for _, want := range []string{`gatehouse_http_requests_total{method="POST",route="POST /v1/register",status="201"}`, `gatehouse_logins_total{result="failed"} 1`, "gatehouse_password_hash_wait_seconds_bucket"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, "wrong password here") || strings.Contains(m, "mo@example.com") {
		t.Errorf("/metrics leaks request data")
	}
	if strings.Contains(s.Log(), "wrong password here") || strings.Contains(s.Log(), "correct horse") {
		t.Errorf("the log contains a password")
	}
	doc := s.do(t, "GET", "/openapi.json", "", nil).JSON(t)
	if !strings.HasPrefix(doc["openapi"].(string), "3.1") {
		t.Errorf("openapi version %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/v1/register", "/v1/me", "/oauth2/token", "/oauth2/revoke"} {
		if paths[p] == nil {
			t.Errorf("OpenAPI lacks %s", p)
		}
	}
	d := s.do(t, "GET", "/docs/", "", nil)
	if d.Status != 200 || !strings.Contains(d.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("/docs/: %d CSP %q", d.Status, d.Header.Get("Content-Security-Policy"))
	}
	if js := s.do(t, "GET", "/docs/swagger-ui-bundle.js", "", nil); js.Status != 200 || len(js.Body) < 100_000 {
		t.Errorf("embedded Swagger UI bundle: %d, %d bytes", js.Status, len(js.Body))
	}
}
