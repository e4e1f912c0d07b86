package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gatehouse/internal/auth"
	"gatehouse/internal/webhook"
)

// hookServer is a blocking hook's receiver: it records every request and
// answers with the current answer (204 when none is set).
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	answer http.HandlerFunc
	reqs   []hookCall
}

type hookCall struct {
	header http.Header
	body   []byte
	msg    struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
}

func newHookServer(t *testing.T) *hookServer {
	t.Helper()
	hs := &hookServer{}
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := hookCall{header: r.Header.Clone()}
		c.body, _ = io.ReadAll(r.Body)
		if err := json.Unmarshal(c.body, &c.msg); err != nil {
			t.Errorf("hook request body %s: %v", c.body, err)
		}
		hs.mu.Lock()
		hs.reqs = append(hs.reqs, c)
		answer := hs.answer
		hs.mu.Unlock()
		if answer == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		answer(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func (hs *hookServer) setAnswer(a http.HandlerFunc) {
	hs.mu.Lock()
	hs.answer = a
	hs.mu.Unlock()
}

// answerJSON answers 200 with body.
func (hs *hookServer) answerJSON(body string) {
	hs.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	})
}

func (hs *hookServer) calls() []hookCall {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return append([]hookCall(nil), hs.reqs...)
}

func (hs *hookServer) last(t *testing.T) hookCall {
	t.Helper()
	c := hs.calls()
	if len(c) == 0 {
		t.Fatal("the hook got no request")
	}
	return c[len(c)-1]
}

// hook is an auth.Hook calling hs through the webhook client (private
// addresses allowed: hs listens on 127.0.0.1).
func (hs *hookServer) hook(secret []byte, allowOnError bool, timeout time.Duration) *auth.Hook {
	c := webhook.NewClient(webhook.ClientOptions{AllowPrivate: true, Timeout: timeout})
	return &auth.Hook{Caller: &webhook.Hook{URL: hs.URL, Secret: secret, Client: c, Timeout: timeout}, AllowOnError: allowOnError}
}

func newHookHarness(t *testing.T, hooks auth.Hooks, configure ...func(*auth.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, func(_ *harness, o *auth.Options) { o.Hooks = hooks }, configure...)
}

// hookErr checks that err is an *auth.Error with the code and reason,
// and returns it.
func hookErr(t *testing.T, err error, code, reason string) *auth.Error {
	t.Helper()
	var e *auth.Error
	if !errors.As(err, &e) || e.Code != code || e.Reason != reason {
		t.Fatalf("error = %v (%#v), want %s with reason %q", err, e, code, reason)
	}
	return e
}

// hookAudit returns the audit events of type typ, newest first.
func (h *harness) hookAudit(t *testing.T, typ string) []*auth.AuditEvent {
	t.Helper()
	return h.audit(t, auth.AuditFilter{Type: typ})
}

func register(h *harness, email string) (*auth.User, error) {
	return h.svc.Register(context.Background(), auth.RegisterInput{Email: email, Password: goodPass, Name: "Ada Lovelace"}, meta)
}

func TestBeforeRegisterAllows(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(hs *hookServer)
	}{
		{"204", func(hs *hookServer) { hs.setAnswer(nil) }},
		{"200 {}", func(hs *hookServer) { hs.answerJSON(`{}`) }},
		{"200 decision allow", func(hs *hookServer) { hs.answerJSON(`{"decision":"allow"}`) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHookServer(t)
			tt.answer(hs)
			h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, false, time.Second)})
			u, err := register(h, " Ada@Example.com")
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			if n := h.countUsers(t, "ada@example.com"); n != 1 || h.user(t, u.ID).Email != "ada@example.com" {
				t.Fatalf("%d accounts made, want 1", n)
			}
			c := hs.last(t)
			if c.msg.Type != "hook.before_register" || c.msg.Timestamp != t0.Format(time.RFC3339) {
				t.Fatalf("request type %q timestamp %q", c.msg.Type, c.msg.Timestamp)
			}
			want := map[string]any{"email": "ada@example.com", "name": "Ada Lovelace", "source": "register", "ip": meta.IP}
			if !equalJSON(c.msg.Data, want) {
				t.Fatalf("data = %v, want %v", c.msg.Data, want)
			}
			if !strings.HasPrefix(c.header.Get("webhook-id"), "msg_") || c.header.Get("webhook-timestamp") == "" || c.header.Get("webhook-signature") != "" {
				t.Fatalf("headers %v: want webhook-id and webhook-timestamp, and no signature without a secret", c.header)
			}
			if len(h.hookAudit(t, auth.EventHookDenied))+len(h.hookAudit(t, auth.EventHookError)) != 0 {
				t.Fatal("an allowed registration audited a hook refusal or error")
			}
			h.assertAuditClean(t, goodPass)
		})
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestBeforeRegisterRejects(t *testing.T) {
	for _, tt := range []struct{ name, answer, message string }{
		{"decision reject", `{"decision":"reject","message":"Sign-ups are closed (ref 42)"}`, "Sign-ups are closed (ref 42)"},
		{"supabase error", `{"error":{"http_code":403,"message":"Invitation only"}}`, "Invitation only"},
		{"reject without a message", `{"decision":"reject"}`, "registration is not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHookServer(t)
			hs.answerJSON(tt.answer)
			h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, false, time.Second)})
			u, err := register(h, "ada@example.com")
			if u != nil {
				t.Fatalf("Register returned %+v", u)
			}
			if e := hookErr(t, err, auth.EFORBIDDEN, auth.ReasonRegistrationDenied); e.Message != tt.message {
				t.Fatalf("message %q, want %q", e.Message, tt.message)
			}
			if n := h.countUsers(t, "ada@example.com"); n != 0 {
				t.Fatalf("a refused registration made %d accounts", n)
			}
			ev := h.hookAudit(t, auth.EventHookDenied)
			if len(ev) != 1 || ev[0].Details["hook"] != "before_register" || ev[0].Details["email"] != "ada@example.com" ||
				ev[0].Details["message"] != tt.message || ev[0].IP != meta.IP {
				t.Fatalf("hook.denied events %+v", ev)
			}
			if len(h.hookAudit(t, auth.EventUserRegistered)) != 0 {
				t.Fatal("a refused registration audited user.registered")
			}
		})
	}
}

func TestHookMessageCleaned(t *testing.T) {
	long := strings.Repeat("é", 250)
	tests := []struct{ name, raw, want string }{
		{"markup", `<p>Ask <a href="https://x.example">an admin</a> &amp; retry</p><script>alert(1)</script>`, "Ask an admin &amp; retry alert(1)"},
		{"tags between words", "Sign-ups<br/>are<!-- x -->closed", "Sign-ups are closed"},
		{"a less-than sign stays", "a < b and 3<4", "a < b and 3<4"},
		{"control characters and line breaks", "line one\r\n\tline\x00 two\x1b[31m\x7f", "line one line two[31m"},
		{"bidi override and zero-width", "abc\u202Edef\u200Bghi", "abcdefghi"},
		{"only markup", "<b></b>", "registration is not allowed"},
		{"invalid UTF-8", "ok\xff\xfe!", "ok!"},
		{"cut to 200 characters", long, strings.Repeat("é", 199) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHookServer(t)
			b, _ := json.Marshal(map[string]string{"decision": "reject", "message": tt.raw})
			hs.answerJSON(string(b))
			if !utf8.ValidString(tt.raw) {
				// JSON cannot carry invalid UTF-8 (it becomes U+FFFD):
				// send the raw bytes.
				hs.setAnswer(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, `{"decision":"reject","message":"`+tt.raw+`"}`)
				})
			}
			h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, false, time.Second)})
			_, err := register(h, "ada@example.com")
			e := hookErr(t, err, auth.EFORBIDDEN, auth.ReasonRegistrationDenied)
			if e.Message != tt.want {
				t.Fatalf("message %q, want %q", e.Message, tt.want)
			}
			if n := utf8.RuneCountInString(e.Message); n > auth.MaxHookMessage {
				t.Fatalf("message of %d characters", n)
			}
		})
	}
}

func TestBeforeRegisterFailure(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		w.WriteHeader(http.StatusNoContent)
	}
	failures := []struct {
		name   string
		answer http.HandlerFunc
	}{
		{"timeout", slow},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }},
		{"bad JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"decision": reject}`) }},
		{"unknown decision", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"decision":"maybe"}`) }},
	}
	for _, f := range failures {
		t.Run(f.name+", on_error deny", func(t *testing.T) {
			hs := newHookServer(t)
			hs.setAnswer(f.answer)
			h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, false, 300*time.Millisecond)})
			start := time.Now()
			u, err := register(h, "ada@example.com")
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Register took %s with a 300ms hook timeout", d)
			}
			e := hookErr(t, err, auth.EUNAVAILABLE, "")
			if u != nil || e.RetryAfter <= 0 {
				t.Fatalf("Register = %+v, RetryAfter %s; want no account and a Retry-After", u, e.RetryAfter)
			}
			if n := h.countUsers(t, "ada@example.com"); n != 0 {
				t.Fatalf("a failed hook with on_error deny let %d accounts be made", n)
			}
			ev := h.hookAudit(t, auth.EventHookError)
			if len(ev) != 1 || ev[0].Details["outcome"] != "denied" || ev[0].Details["hook"] != "before_register" || ev[0].Details["error"] == "" {
				t.Fatalf("hook.error events %+v", ev)
			}
		})
		t.Run(f.name+", on_error allow", func(t *testing.T) {
			hs := newHookServer(t)
			hs.setAnswer(f.answer)
			h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, true, 300*time.Millisecond)})
			if _, err := register(h, "ada@example.com"); err != nil {
				t.Fatalf("Register with on_error allow: %v", err)
			}
			if n := h.countUsers(t, "ada@example.com"); n != 1 {
				t.Fatalf("%d accounts, want 1", n)
			}
			ev := h.hookAudit(t, auth.EventHookError)
			if len(ev) != 1 || ev[0].Details["outcome"] != "allowed" {
				t.Fatalf("hook.error events %+v", ev)
			}
		})
	}
}

func TestBeforeRegisterSigned(t *testing.T) {
	hs := newHookServer(t)
	secret, err := webhook.ParseSecret(webhook.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(secret, false, time.Second)})
	if _, err := register(h, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	c := hs.last(t)
	if err := webhook.Verify(secret, c.header, c.body, 0, time.Now()); err != nil {
		t.Fatalf("webhook.Verify of the hook request: %v (headers %v)", err, c.header)
	}
	tampered := append([]byte(nil), c.body...)
	tampered[len(tampered)-2] ^= 1
	if err := webhook.Verify(secret, c.header, tampered, 0, time.Now()); err == nil {
		t.Fatal("webhook.Verify accepted a changed body")
	}
}

// TestTakenEmailNeverReachesHook: a registration of a taken address is
// answered as without a hook, and the hook never hears of it.
func TestTakenEmailNeverReachesHook(t *testing.T) {
	t.Run("not revealed", func(t *testing.T) {
		hs := newHookServer(t)
		h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, false, time.Second)})
		first, err := register(h, "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		// A hook that refuses everything: a taken email must not reach
		// it, or its answer would tell the two apart.
		hs.answerJSON(`{"decision":"reject","message":"no"}`)
		before := len(hs.calls())
		second, err := register(h, " ADA@example.com")
		if err != nil {
			t.Fatalf("duplicate Register = %v, want the answer of a new account", err)
		}
		if got, want := shapeOf(second), shapeOf(first); got != want {
			t.Errorf("duplicate answer shape %+v, want %+v", got, want)
		}
		if n := len(hs.calls()); n != before {
			t.Fatalf("the hook got %d requests about a taken email", n-before)
		}
		if len(h.hookAudit(t, "register.duplicate")) != 1 || len(h.hookAudit(t, auth.EventHookDenied)) != 0 {
			t.Fatal("want one register.duplicate and no hook.denied")
		}
		if n := h.countUsers(t, "ada@example.com"); n != 1 {
			t.Fatalf("%d accounts", n)
		}
	})
	t.Run("as slow as asking the hook", func(t *testing.T) {
		const latency = 300 * time.Millisecond
		hs := newHookServer(t)
		hs.setAnswer(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(latency)
			w.WriteHeader(http.StatusNoContent)
		})
		h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, false, 5*time.Second)})
		if _, err := register(h, "ada@example.com"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := register(h, "ada@example.com"); err != nil {
			t.Fatal(err)
		}
		// The hook's answer time is what a new address costs on top of a
		// taken one: the taken one waits for it (a lower bound, which
		// does not depend on how fast the machine is).
		if d := time.Since(start); d < latency*3/4 {
			t.Fatalf("a taken email was answered in %s, the hook takes %s: the difference tells them apart", d, latency)
		}
		if len(hs.calls()) != 1 {
			t.Fatalf("the hook got %d requests, want 1", len(hs.calls()))
		}
	})
	t.Run("revealed", func(t *testing.T) {
		hs := newHookServer(t)
		h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, false, time.Second)},
			func(c *auth.Config) { c.RevealExisting = true })
		if _, err := register(h, "ada@example.com"); err != nil {
			t.Fatal(err)
		}
		hs.answerJSON(`{"decision":"reject","message":"no"}`)
		before := len(hs.calls())
		_, err := register(h, "ada@example.com")
		wantCode(t, err, auth.ECONFLICT, "email")
		if n := len(hs.calls()); n != before {
			t.Fatalf("the hook got %d requests about a taken email", n-before)
		}
	})
}

func TestBeforeRegisterSocial(t *testing.T) {
	hs := newHookServer(t)
	h := newHookHarness(t, auth.Hooks{BeforeRegister: hs.hook(nil, false, time.Second)})
	ctx := context.Background()
	ext := auth.ExternalIdentity{Provider: "corp", Subject: "s-1", Email: "grace@example.com", EmailVerified: true, Name: "Grace"}

	hs.answerJSON(`{"decision":"reject","message":"Not on the guest list"}`)
	_, err := h.svc.ExternalSignIn(ctx, ext, "", meta)
	if e := hookErr(t, err, auth.EFORBIDDEN, auth.ReasonRegistrationDenied); e.Message != "Not on the guest list" {
		t.Fatalf("message %q", e.Message)
	}
	if n := h.countUsers(t, "grace@example.com"); n != 0 || h.countIdentities(t, "corp", "s-1") != 0 {
		t.Fatalf("a refused social sign-up made %d accounts", n)
	}
	want := map[string]any{"email": "grace@example.com", "name": "Grace", "source": "social", "provider": "corp", "ip": meta.IP}
	if c := hs.last(t); c.msg.Type != "hook.before_register" || !equalJSON(c.msg.Data, want) {
		t.Fatalf("request %s %v, want data %v", c.msg.Type, c.msg.Data, want)
	}

	hs.setAnswer(nil)
	u := h.signIn(t, ext, "")
	// Signing in again, and linking another provider to the same
	// (verified) address, are not sign-ups: the hook is not asked.
	before := len(hs.calls())
	if again := h.signIn(t, ext, ""); again.ID != u.ID {
		t.Fatal("the second sign-in found another account")
	}
	h.signIn(t, auth.ExternalIdentity{Provider: "other", Subject: "s-2", Email: "grace@example.com", EmailVerified: true}, "")
	if n := len(hs.calls()) - before; n != 0 {
		t.Fatalf("the hook got %d requests about sign-ins to an existing account", n)
	}
}

func TestBeforeLogin(t *testing.T) {
	hs := newHookServer(t)
	h := newHookHarness(t, auth.Hooks{BeforeLogin: hs.hook(nil, false, time.Second)})
	ctx := context.Background()
	u := h.register(t, "ada@example.com", goodPass)
	if len(hs.calls()) != 0 {
		t.Fatal("a registration asked the before_login hook")
	}

	// Allowed: the hook saw the account, the method and the address.
	if _, err := h.svc.SessionLogin(ctx, "ada@example.com", goodPass, meta); err != nil {
		t.Fatalf("SessionLogin with the hook answering 204: %v", err)
	}
	c := hs.last(t)
	want := map[string]any{"user": map[string]any{"id": u.ID, "email": "ada@example.com", "email_verified": false, "name": "Test User", "roles": []string{"user"}},
		"method": "password", "ip": meta.IP}
	if c.msg.Type != "hook.before_login" || !equalJSON(c.msg.Data, want) {
		t.Fatalf("request %s %v, want data %v", c.msg.Type, c.msg.Data, want)
	}
	if strings.Contains(string(c.body), "argon2") || strings.Contains(string(c.body), goodPass) {
		t.Fatalf("the hook request carries the password or its hash: %s", c.body)
	}

	// Refused: no session, no tokens, login_denied with the message.
	hs.answerJSON(`{"decision":"reject","message":"Your account is under review"}`)
	signInsBefore := h.signIns(t, u.ID)
	done, err := h.svc.SessionLogin(ctx, "ada@example.com", goodPass, meta)
	if e := hookErr(t, err, auth.EFORBIDDEN, auth.ReasonLoginDenied); done != nil || e.Message != "Your account is under review" {
		t.Fatalf("SessionLogin = %+v, %v", done, err)
	}
	tr, err := h.svc.PasswordGrant(ctx, "ada@example.com", goodPass, "", "client-web", meta)
	hookErr(t, err, auth.EFORBIDDEN, auth.ReasonLoginDenied)
	if tr != nil || h.signIns(t, u.ID) != signInsBefore {
		t.Fatal("a refused sign-in issued something")
	}
	ev := h.hookAudit(t, auth.EventHookDenied)
	if len(ev) != 2 || ev[0].UserID != u.ID || ev[0].Details["hook"] != "before_login" || ev[0].Details["method"] != "password" {
		t.Fatalf("hook.denied events %+v", ev)
	}

	// A wrong password never reaches the hook.
	before := len(hs.calls())
	if _, err := h.svc.SessionLogin(ctx, "ada@example.com", "not the password", meta); err != auth.ErrInvalidCredentials {
		t.Fatalf("wrong password: %v", err)
	}
	if len(hs.calls()) != before {
		t.Fatal("a failed first factor reached the before_login hook")
	}

	// Timeout with on_error deny: 503 with Retry-After.
	hs.setAnswer(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	h2 := newHookHarness(t, auth.Hooks{BeforeLogin: hs.hook(nil, false, 200*time.Millisecond)})
	h2.register(t, "ada@example.com", goodPass)
	_, err = h2.svc.PasswordGrant(ctx, "ada@example.com", goodPass, "", "client-web", meta)
	if e := hookErr(t, err, auth.EUNAVAILABLE, ""); e.RetryAfter <= 0 {
		t.Fatalf("RetryAfter %s", e.RetryAfter)
	}
}

// TestBeforeLoginBeforeSecondFactor: the hook is asked once per sign-in,
// before the second factor; a refused user never gets a challenge.
func TestBeforeLoginBeforeSecondFactor(t *testing.T) {
	hs := newHookServer(t)
	h := newHookHarness(t, auth.Hooks{BeforeLogin: hs.hook(nil, false, time.Second)})
	ada := h.mfaEnrol(t, "ada@example.com")

	before := len(hs.calls())
	ch := h.mfaSession(t, "ada@example.com")
	if n := len(hs.calls()) - before; n != 1 {
		t.Fatalf("the first factor asked the hook %d times, want 1", n)
	}
	hs.answerJSON(`{"decision":"reject","message":"stop"}`) // too late for this sign-in
	h.mfaNext()
	h.mfaVerify(t, ch.Token, auth.SecondFactor{Code: h.mfaCode(t, ada)})
	if n := len(hs.calls()) - before; n != 1 {
		t.Fatalf("the second factor asked the hook again (%d requests in all)", n)
	}

	_, err := h.svc.SessionLogin(context.Background(), "ada@example.com", goodPass, meta)
	var mr *auth.MFARequired
	if errors.As(err, &mr) {
		t.Fatal("a sign-in refused by the hook was offered a second factor")
	}
	hookErr(t, err, auth.EFORBIDDEN, auth.ReasonLoginDenied)
}

func TestBeforeLoginSocialAndPasskey(t *testing.T) {
	hs := newHookServer(t)
	h := newHookHarness(t, auth.Hooks{BeforeLogin: hs.hook(nil, false, time.Second)})
	ctx := context.Background()
	ext := auth.ExternalIdentity{Provider: "corp", Subject: "s-1", Email: "grace@example.com", EmailVerified: true}
	hs.answerJSON(`{"decision":"reject","message":"no"}`)
	a, err := h.svc.ExternalAuthentication(ctx, ext, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.Complete(ctx, a)
	hookErr(t, err, auth.EFORBIDDEN, auth.ReasonLoginDenied)
	if d := hs.last(t).msg.Data; d["method"] != "social" || d["provider"] != "corp" {
		t.Fatalf("social sign-in data %v", d)
	}

	hs.setAnswer(nil)
	a, err = h.svc.PasskeyAuthentication(ctx, a.User.ID, true, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Complete(ctx, a); err != nil {
		t.Fatalf("passkey sign-in with the hook answering 204: %v", err)
	}
	if d := hs.last(t).msg.Data; d["method"] != "passkey" {
		t.Fatalf("passkey sign-in data %v", d)
	}
}

func TestHooksNeedACaller(t *testing.T) {
	var opts auth.Options // the harness's options, which New accepts
	newHarnessWith(t, func(_ *harness, o *auth.Options) { opts = *o })
	for name, hooks := range map[string]auth.Hooks{
		"BeforeRegister": {BeforeRegister: &auth.Hook{}},
		"BeforeLogin":    {BeforeLogin: &auth.Hook{AllowOnError: true}},
	} {
		o := opts
		o.Hooks = hooks
		if _, err := auth.New(o); err == nil || !strings.Contains(err.Error(), "Hooks."+name) {
			t.Fatalf("auth.New with a %s hook without a Caller = %v, want an error naming it", name, err)
		}
	}
}

// signIns counts the sessions and refresh families of a user.
func (h *harness) signIns(t *testing.T, userID string) int {
	t.Helper()
	var n int
	err := h.rawDB(t).QueryRow(`SELECT (SELECT COUNT(*) FROM sessions WHERE user_id = ?) + (SELECT COUNT(*) FROM refresh_families WHERE user_id = ?)`,
		userID, userID).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
