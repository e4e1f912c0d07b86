package passkey_test

import (
	"context"
	"errors"
	"testing"

	"gatehouse/internal/auth"
	"gatehouse/internal/passkey"
)

// FuzzFinishLogin feeds arbitrary bodies to FinishLogin on live ceremonies
// (discoverable and with an email). It must never panic and never sign in:
// every ceremony has a fresh random challenge that no input can sign.
func FuzzFinishLogin(f *testing.F) {
	h := newHarness(f)
	alice := h.user(f, "alice@example.com")
	a := newTestAuthenticator(origin)
	_, cred := h.register(f, alice, a)
	for _, email := range []string{"", alice.Email} {
		body, _ := h.assertion(f, email, a, cred, nil)
		f.Add(body, email != "")
		bad, _ := h.assertion(f, email, a, cred, &forge{ClearFlags: waFlagUP, UserHandle: []byte("x")})
		f.Add(bad, email != "")
	}
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`), false)
	f.Add([]byte("null"), true)
	f.Fuzz(func(t *testing.T, body []byte, withEmail bool) {
		email := ""
		if withEmail {
			email = alice.Email
		}
		_, id := h.beginLogin(t, email)
		u, err := h.finishLogin(context.Background(), id, body, meta)
		if err == nil {
			t.Fatalf("fuzzed body signed in %+v: %q", u, body)
		}
		if !errors.Is(err, auth.ErrPasskeyLogin) {
			t.Fatalf("FinishLogin error %v, want ErrPasskeyLogin", err)
		}
	})
}

// FuzzFinishRegistration does the same for registration responses.
func FuzzFinishRegistration(f *testing.F) {
	h := newHarness(f)
	alice := h.user(f, "alice@example.com")
	opts, _ := h.beginReg(f, alice)
	resp, _, err := newTestAuthenticator(origin).Register(opts, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustJSON(f, resp))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, id := h.beginReg(t, alice)
		p, err := h.pk.FinishRegistration(context.Background(), owner(alice), alice, id, body, meta)
		if err == nil {
			t.Fatalf("fuzzed body stored passkey %+v: %q", p, body)
		}
		if !errors.Is(err, passkey.ErrBadRegistration) {
			t.Fatalf("FinishRegistration error %v, want ErrBadRegistration", err)
		}
	})
}
