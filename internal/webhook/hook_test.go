package webhook

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseHookAnswer(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		refused bool
		message string
		bad     bool
	}{
		{name: "204", status: 204, body: ""},
		{name: "204 ignores its body", status: 204, body: `{"decision":"reject"}`},
		{name: "200 {}", status: 200, body: "{}"},
		{name: "200 empty", status: 200, body: " \n"},
		{name: "201 {}", status: 201, body: "{}"},
		{name: "allow", status: 200, body: `{"decision":"allow"}`},
		{name: "unknown fields ignored", status: 200, body: `{"ok":true,"decision":"allow","extra":[1,2]}`},
		{name: "reject", status: 200, body: `{"decision":"reject","message":"Sign-ups are closed"}`, refused: true, message: "Sign-ups are closed"},
		{name: "reject without message", status: 200, body: `{"decision":"reject"}`, refused: true},
		{name: "supabase", status: 200, body: `{"error":{"http_code":403,"message":"Invitation only"}}`, refused: true, message: "Invitation only"},
		{name: "error object wins over allow", status: 200, body: `{"decision":"allow","error":{"message":"no"}}`, refused: true, message: "no"},
		{name: "null error allows", status: 200, body: `{"error":null}`},
		{name: "unknown decision", status: 200, body: `{"decision":"deny"}`, bad: true},
		{name: "a list", status: 200, body: `[]`, bad: true},
		{name: "null", status: 200, body: `null`, bad: true},
		{name: "a string", status: 200, body: `"reject"`, bad: true},
		{name: "broken JSON", status: 200, body: `{"decision":`, bad: true},
		{name: "trailing data", status: 200, body: `{} {}`, bad: true},
		{name: "message of the wrong type", status: 200, body: `{"decision":"reject","message":5}`, bad: true},
		{name: "500", status: 500, body: `{}`, bad: true},
		{name: "403 is not a decision", status: 403, body: `{"decision":"reject","message":"x"}`, bad: true},
		{name: "302", status: 302, body: "", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused, msg, err := ParseHookAnswer(tt.status, []byte(tt.body))
			if tt.bad {
				if !errors.Is(err, ErrBadHookAnswer) {
					t.Fatalf("ParseHookAnswer(%d, %s) = %v, %q, %v; want ErrBadHookAnswer", tt.status, tt.body, refused, msg, err)
				}
				return
			}
			if err != nil || refused != tt.refused || msg != tt.message {
				t.Fatalf("ParseHookAnswer(%d, %s) = %v, %q, %v; want %v, %q", tt.status, tt.body, refused, msg, err, tt.refused, tt.message)
			}
		})
	}
}

// hookServer records the last request and answers with answer.
func hookServer(t *testing.T, answer http.HandlerFunc) (*httptest.Server, chan *http.Request, chan []byte) {
	t.Helper()
	reqs, bodies := make(chan *http.Request, 1), make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- r
		bodies <- b
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, reqs, bodies
}

func TestHookCallSigned(t *testing.T) {
	srv, reqs, bodies := hookServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"decision":"reject","message":"no <b>way</b>"}`)
	})
	secret, _ := ParseSecret(NewSecret())
	h := &Hook{URL: srv.URL, Secret: secret, Client: NewClient(ClientOptions{AllowPrivate: true}), UserAgent: "Gatehouse/test"}
	body := []byte(`{"type":"hook.before_register","timestamp":"2026-12-02T14:05:38Z","data":{"email":"a@example.com"}}`)
	refused, msg, err := h.CallHook(t.Context(), "msg_01TEST", body)
	if err != nil || !refused || msg != "no <b>way</b>" {
		t.Fatalf("CallHook = %v, %q, %v; want the refusal as sent", refused, msg, err)
	}
	r, got := <-reqs, <-bodies
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != "Gatehouse/test" {
		t.Fatalf("request %s content-type %q user-agent %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"))
	}
	if string(got) != string(body) || r.Header.Get(HeaderID) != "msg_01TEST" {
		t.Fatalf("body %s id %q; want the body and id given", got, r.Header.Get(HeaderID))
	}
	if err := Verify(secret, r.Header, got, 0, time.Now()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	other, _ := ParseSecret(NewSecret())
	if err := Verify(other, r.Header, got, 0, time.Now()); !errors.Is(err, ErrNoMatchingSignature) {
		t.Fatalf("Verify with another secret = %v, want ErrNoMatchingSignature", err)
	}
}

func TestHookCallUnsigned(t *testing.T) {
	srv, reqs, _ := hookServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	at := time.Unix(1_800_000_000, 0)
	h := &Hook{URL: srv.URL, Client: NewClient(ClientOptions{AllowPrivate: true}), Now: func() time.Time { return at }}
	refused, _, err := h.CallHook(t.Context(), "msg_01TEST", []byte(`{}`))
	if err != nil || refused {
		t.Fatalf("CallHook answered 204 = %v, %v; want allowed", refused, err)
	}
	r := <-reqs
	if r.Header.Get(HeaderSignature) != "" || r.Header.Get(HeaderID) != "msg_01TEST" || r.Header.Get(HeaderTimestamp) != "1800000000" {
		t.Fatalf("headers %v: want id and timestamp without a signature", r.Header)
	}
}

func TestHookCallFailures(t *testing.T) {
	tests := []struct {
		name   string
		answer http.HandlerFunc
	}{
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
		{"answer over 64 KiB", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"decision":"allow","pad":"`+strings.Repeat("x", MaxHookAnswer)+`"}`)
		}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }},
		{"503", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, _ := hookServer(t, tt.answer)
			h := &Hook{URL: srv.URL + "/hook?token=s3cr3t", Client: NewClient(ClientOptions{AllowPrivate: true, Timeout: 200 * time.Millisecond}),
				Timeout: 200 * time.Millisecond}
			start := time.Now()
			refused, _, err := h.CallHook(t.Context(), "msg_01TEST", []byte(`{}`))
			if err == nil || refused {
				t.Fatalf("CallHook = %v, %v; want an error", refused, err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("the error quotes the URL's query: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("CallHook took %s with a 200ms timeout", d)
			}
		})
	}
}

func TestNewMessageID(t *testing.T) {
	at := time.UnixMilli(1_764_684_338_123)
	a, b := NewMessageID(at), NewMessageID(at.Add(time.Millisecond))
	for _, id := range []string{a, b} {
		ulid, ok := strings.CutPrefix(id, "msg_")
		if !ok || len(ulid) != 26 || strings.Trim(ulid, crockford) != "" || ulid[0] > '7' {
			t.Fatalf("NewMessageID = %q: want msg_ and 26 characters of Crockford's base32, the first at most 7", id)
		}
	}
	if a >= b || a == NewMessageID(at) {
		t.Fatalf("ids %q, %q: want them sorted by time and random within a millisecond", a, b)
	}
	// The first ten characters are the milliseconds.
	var ms uint64
	for _, c := range a[4:14] {
		ms = ms<<5 | uint64(strings.IndexRune(crockford, c))
	}
	if ms != uint64(at.UnixMilli()) {
		t.Fatalf("the id's time is %d, want %d", ms, at.UnixMilli())
	}
}
