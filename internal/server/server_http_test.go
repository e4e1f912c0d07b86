package server_test

// HTTP-level tests of the server: a real `gatehouse serve` in this process
// (internal/testserver), reached over its listener.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gatehouse/internal/testserver"
)

// wantProblem checks a problem+json answer with the given status and no
// cookie set.
func wantProblem(t *testing.T, what string, r *testserver.Response, status int, detail string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %s, want %d", what, r, status)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var p struct {
		Status int `json:"status"`
	}
	// The reason is the detail, or one of huma's errors[].message.
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != status || !strings.Contains(string(r.Body), detail) {
		t.Fatalf("%s: problem %s (%v), want status %d and a reason naming %q", what, r.Body, err, status, detail)
	}
	if c := r.Header.Values("Set-Cookie"); len(c) > 0 {
		t.Fatalf("%s: a refused request set cookies %q", what, c)
	}
}

// TestCaseRepeatedMembersRefused performs the attack of SPEC §18 H9: a JSON
// body that names a member twice under different letter case. encoding/json
// fills the email field from both "email" and "Email" (the last wins), so
// a component that reads the first (a proxy, a rate limiter, a log) sees
// another account than the one the handler signs in to. Each body below
// would sign in or register with the member that comes last; each must be
// refused with 400 problem+json, as an exact repeat is.
func TestCaseRepeatedMembersRefused(t *testing.T) {
	// High login limits: a request that got through would then answer
	// for itself, not be hidden behind a 429.
	s := testserver.Start(t, testserver.Options{Env: testserver.Env(t, "rate_limits: {login_per_ip: 100000, login_per_account_ip: 100000}\n", nil)})
	const email, password = "victim@example.com", "correct horse battery staple"
	s.Register(t, email, password)
	sameOrigin := []string{"Sec-Fetch-Site", "same-origin"}
	post := func(path, body string) *testserver.Response {
		return testserver.Do(t, http.MethodPost, s.Direct+path, "application/json", []byte(body), sameOrigin...)
	}

	// The controls: without a repeat, the same requests succeed.
	if r := post("/v1/sessions", `{"email":"`+email+`","password":"`+password+`"}`); r.Status != http.StatusCreated {
		t.Fatalf("control login: %s", r)
	}
	if r := post("/v1/register", `{"email":"control@example.com","password":"`+password+`"}`); r.Status != http.StatusCreated {
		t.Fatalf("control registration: %s", r)
	}

	for _, tc := range []struct{ name, path, body string }{
		{"sessions, email then Email", "/v1/sessions", `{"email":"a@x.example","Email":"` + email + `","password":"` + password + `"}`},
		{"sessions, Email then email", "/v1/sessions", `{"Email":"a@x.example","email":"` + email + `","password":"` + password + `"}`},
		{"sessions, EMAIL through an escape", "/v1/sessions", `{"email":"a@x.example","\u0045MAIL":"` + email + `","password":"` + password + `"}`},
		{"sessions, password and Password", "/v1/sessions", `{"email":"` + email + `","password":"wrong","Password":"` + password + `"}`},
		{"sessions, password with a long s (U+017F)", "/v1/sessions", "{\"email\":\"" + email + "\",\"password\":\"x\",\"pas\u017fword\":\"" + password + "\"}"},
		{"sessions, exact repeat", "/v1/sessions", `{"email":"a@x.example","email":"` + email + `","password":"` + password + `"}`},
		{"register, email then Email", "/v1/register", `{"email":"a@x.example","Email":"b@x.example","password":"` + password + `"}`},
		{"register, Email then email", "/v1/register", `{"Email":"a@x.example","email":"b@x.example","password":"` + password + `"}`},
		{"register, name and NAME", "/v1/register", `{"email":"c@x.example","password":"` + password + `","name":"A","NAME":"B"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, "POST "+tc.path+" "+tc.body, post(tc.path, tc.body), http.StatusBadRequest, "same member")
		})
	}

	// The same requests as HTML forms: each field becomes a JSON member,
	// decoded by encoding/json too.
	postForm := func(path, body string) *testserver.Response {
		return testserver.Do(t, http.MethodPost, s.Direct+path, "application/x-www-form-urlencoded", []byte(body), sameOrigin...)
	}
	form := url.Values{"email": {email}, "password": {password}}.Encode()
	if r := postForm("/v1/sessions", form); r.Status != http.StatusCreated {
		t.Fatalf("control form login: %s", r)
	}
	for _, tc := range []struct{ name, path, body string }{
		{"form sessions, email and Email", "/v1/sessions", "Email=a%40x.example&" + form},
		{"form sessions, password and PASSWORD", "/v1/sessions", "PASSWORD=wrong&" + form},
		{"form sessions, exact repeat", "/v1/sessions", "email=a%40x.example&" + form},
		{"form register, email and eMail", "/v1/register", "eMail=a%40x.example&email=d%40x.example&password=" + url.QueryEscape(password)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, "POST "+tc.path+" "+tc.body, postForm(tc.path, tc.body), http.StatusBadRequest, "is repeated")
		})
	}
}
