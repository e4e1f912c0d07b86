package httptest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Blocking hooks over HTTP (SPEC §16): how refusals and failures of
// before_register and before_login reach the API, /oauth2/token and the
// hosted pages.

// hookAnswers is a hook receiver that answers per email address: a JSON
// body, "hang" (no answer until the caller gives up), or 204 when the
// address has no entry.
type hookAnswers struct {
	*httptest.Server
	mu sync.Mutex
	by map[string]string
	n  map[string]int // requests per hook type
}

func newHookAnswers(t *testing.T) *hookAnswers {
	t.Helper()
	h := &hookAnswers{by: map[string]string{}, n: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Type string `json:"type"`
			Data struct {
				Email string `json:"email"`
				User  struct {
					Email string `json:"email"`
				} `json:"user"`
			} `json:"data"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("hook request %s: %v", b, err)
		}
		email := m.Data.Email + m.Data.User.Email
		h.mu.Lock()
		h.n[m.Type]++
		answer := h.by[email]
		h.mu.Unlock()
		switch answer {
		case "":
			w.WriteHeader(http.StatusNoContent)
		case "hang":
			<-r.Context().Done()
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, answer)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookAnswers) set(email, answer string) {
	h.mu.Lock()
	h.by[email] = answer
	h.mu.Unlock()
}

func (h *hookAnswers) count(typ string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[typ]
}

func startWithHooks(t *testing.T, hooks *hookAnswers) *gh {
	t.Helper()
	yaml := baseYAML + "hooks:\n  before_register:\n    url: " + hooks.URL + "/register\n  before_login:\n    url: " + hooks.URL + "/login\n"
	return startYAML(t, yaml, map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true", "GATEHOUSE_HOOK_TIMEOUT": "300ms"})
}

func TestBlockingHooksHTTP(t *testing.T) {
	hooks := newHookAnswers(t)
	g := startWithHooks(t, hooks)
	reject := func(msg string) string {
		b, _ := json.Marshal(map[string]string{"decision": "reject", "message": msg})
		return string(b)
	}

	t.Run("registration refused", func(t *testing.T) {
		email := newEmail("hooks")
		hooks.set(email, reject("Sign-ups are closed for this domain"))
		r := g.send(t, http.MethodPost, "/v1/register", map[string]string{"email": email, "password": password})
		p := wantProblem(t, "POST /v1/register refused by the hook", r, http.StatusForbidden)
		if p.Code != "registration_denied" || p.Detail != "Sign-ups are closed for this domain" {
			t.Fatalf("problem %+v, want code registration_denied and the hook's message", p)
		}
		// Supabase's shape, on the hosted form: the page shows the message.
		email = newEmail("hooks")
		hooks.set(email, `{"error":{"http_code":403,"message":"Invitation only"}}`)
		r = g.send(t, http.MethodPost, "/register", url.Values{"email": {email}, "password": {password}}, g.sameOrigin())
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "Invitation only.") {
			t.Fatalf("hosted registration refused by the hook: %s, want 403 showing the message", r)
		}
		// Neither made an account.
		form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}}
		wantOAuthError(t, "password grant of a refused registration", g.send(t, http.MethodPost, "/oauth2/token", form), http.StatusBadRequest, "invalid_grant")
	})

	t.Run("registration while the hook hangs", func(t *testing.T) {
		email := newEmail("hooks")
		hooks.set(email, "hang")
		r := g.send(t, http.MethodPost, "/v1/register", map[string]string{"email": email, "password": password})
		wantProblem(t, "POST /v1/register while the hook hangs", r, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		r = g.send(t, http.MethodPost, "/register", url.Values{"email": {email}, "password": {password}}, g.sameOrigin())
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("hosted registration while the hook hangs: %s (Retry-After %q), want a 503 page with Retry-After", r, r.Header.Get("Retry-After"))
		}
	})

	t.Run("taken email", func(t *testing.T) {
		a := g.register(t, newEmail("hooks"))
		hooks.set(a.Email, reject("no"))
		before := hooks.count("hook.before_register")
		r := g.send(t, http.MethodPost, "/v1/register", map[string]string{"email": a.Email, "password": password})
		if r.Status != http.StatusCreated || hooks.count("hook.before_register") != before {
			t.Fatalf("registering a taken email: %s after %d hook requests; want 201 as without a hook, and none",
				r, hooks.count("hook.before_register")-before)
		}
	})

	t.Run("sign-in refused", func(t *testing.T) {
		a := g.register(t, newEmail("hooks"))
		hooks.set(a.Email, reject("Your account is under review"))
		form := url.Values{"grant_type": {"password"}, "username": {a.Email}, "password": {password}}
		r := g.send(t, http.MethodPost, "/oauth2/token", form)
		wantOAuthError(t, "password grant refused by before_login", r, http.StatusBadRequest, "invalid_grant")
		if !strings.Contains(string(r.Body), "Your account is under review") {
			t.Fatalf("invalid_grant without the hook's message: %s", r)
		}
		r = g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": a.Email, "password": password}, g.sameOrigin())
		if p := wantProblem(t, "POST /v1/sessions refused by before_login", r, http.StatusForbidden); p.Code != "login_denied" {
			t.Fatalf("problem %+v, want code login_denied", p)
		}
		if len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("a refused sign-in set cookies: %v", r.Header.Values("Set-Cookie"))
		}
		r = g.send(t, http.MethodPost, "/login", url.Values{"email": {a.Email}, "password": {password}}, g.sameOrigin())
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "Your account is under review.") {
			t.Fatalf("hosted login refused by before_login: %s, want 403 showing the message", r)
		}

		hooks.set(a.Email, "hang")
		start := time.Now()
		r = g.send(t, http.MethodPost, "/oauth2/token", form)
		wantOAuthError(t, "password grant while before_login hangs", r, http.StatusServiceUnavailable, "temporarily_unavailable")
		if r.Header.Get("Retry-After") == "" || time.Since(start) > 5*time.Second {
			t.Fatalf("503 after %s, Retry-After %q", time.Since(start), r.Header.Get("Retry-After"))
		}
	})
}
