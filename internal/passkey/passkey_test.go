package passkey_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/passkey"
)

func TestRegisterThenDiscoverableLogin(t *testing.T) {
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin)
	p, cred := h.register(t, alice, a)
	if p.UserID != alice.ID || !bytes.Equal(p.CredentialID, cred.ID) {
		t.Fatalf("stored passkey %+v; want user %s, credential id %x", p, alice.ID, cred.ID)
	}
	if ev := h.audits(t, alice.ID, auth.EventPasskeyAdded); len(ev) != 1 {
		t.Fatalf("%d passkey.added events, want 1", len(ev))
	}
	// No email: the options name no credential, the authenticator picks
	// its discoverable one and the user handle says whose it is.
	opts, _ := h.beginLogin(t, "")
	if list, _ := opts["allowCredentials"].([]any); len(list) != 0 {
		t.Fatalf("discoverable options list credentials: %v", list)
	}
	h.mustLogin(t, "", a, nil, nil, alice)
	h.mustLogin(t, "", a, nil, nil, alice)
	if n := h.storedCount(t, alice.ID, p.ID); n != 2 {
		t.Fatalf("stored sign count %d after two logins, want 2", n)
	}
	if ev := h.audits(t, alice.ID, auth.EventLoginSucceeded); len(ev) != 2 {
		t.Fatalf("%d login.succeeded events, want 2", len(ev))
	}
}

func TestLoginWithEmail(t *testing.T) {
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin)
	_, c1 := h.register(t, alice, a)
	_, c2 := h.register(t, alice, a)

	// An email of an account with passkeys: allowCredentials lists them.
	for _, email := range []string{"alice@example.com", "  Alice@Example.COM "} {
		opts, _ := h.beginLogin(t, email)
		list, _ := opts["allowCredentials"].([]any)
		var ids [][]byte
		for _, e := range list {
			m, _ := e.(map[string]any)
			id, _ := m["id"].(string)
			ids = append(ids, b64(t, id))
		}
		if len(ids) != 2 || !bytes.Equal(ids[0], c1.ID) || !bytes.Equal(ids[1], c2.ID) {
			t.Fatalf("BeginLogin(%q) allowCredentials = %x, want %x and %x", email, ids, c1.ID, c2.ID)
		}
	}
	h.mustLogin(t, "alice@example.com", a, c1, nil, alice)
	h.mustLogin(t, "alice@example.com", a, c2, nil, alice)
	// A user handle is optional with allowCredentials.
	h.mustLogin(t, "alice@example.com", a, c1, &forge{NoUserHandle: true}, alice)

	// SPEC §18 H6: an unknown email, or one without passkeys, gets options
	// of the same shape — 1 or 2 decoy credentials, the same on every call —
	// so the answer says nothing about the account.
	h.user(t, "nopasskey@example.com")
	real := map[string]bool{string(c1.ID): true, string(c2.ID): true}
	if got := allowedIDs(t, h, "alice@example.com"); len(got) != 2 {
		t.Fatalf("alice's options list %d credentials, want 2", len(got))
	}
	for _, email := range []string{"nobody@example.com", "nopasskey@example.com", "not an email"} {
		first := allowedIDs(t, h, email)
		if len(first) < 1 || len(first) > 2 {
			t.Fatalf("BeginLogin(%q) lists %d credentials, want 1 or 2 decoys", email, len(first))
		}
		for _, id := range first {
			if real[string(id)] || len(id) < 16 {
				t.Fatalf("BeginLogin(%q) lists %x, want a decoy id of at least 16 bytes", email, id)
			}
		}
		if again := allowedIDs(t, h, email); fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("BeginLogin(%q) decoys changed between calls: %x then %x", email, first, again)
		}
	}
	if fmt.Sprint(allowedIDs(t, h, "nobody@example.com")) == fmt.Sprint(allowedIDs(t, h, "nopasskey@example.com")) {
		t.Fatal("two emails got the same decoy ids")
	}
	// A decoy ceremony never finishes, whatever credential answers it.
	u, err := h.login(t, "nobody@example.com", a, c1, nil)
	refused(t, u, err)
}

// allowedIDs begins a sign-in for email and returns the allowCredentials
// ids; each entry must have a shape a real one has (type, id, and
// transports when the authenticator reported them).
func allowedIDs(t *testing.T, h *harness, email string) [][]byte {
	t.Helper()
	opts, _ := h.beginLogin(t, email)
	list, _ := opts["allowCredentials"].([]any)
	var ids [][]byte
	for _, e := range list {
		m, _ := e.(map[string]any)
		id, _ := m["id"].(string)
		_, hasTransports := m["transports"]
		if m["type"] != "public-key" || id == "" || (hasTransports && len(m) != 3) || (!hasTransports && len(m) != 2) {
			t.Fatalf("BeginLogin(%q) credential entry %v, want type, id and maybe transports", email, m)
		}
		ids = append(ids, b64(t, id))
	}
	return ids
}

func TestBeginRegistrationOptions(t *testing.T) {
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin)

	seen := map[string]bool{}
	challenge := func(opts map[string]any) {
		t.Helper()
		s, _ := opts["challenge"].(string)
		c := b64(t, s)
		if len(c) < 16 {
			t.Fatalf("challenge of %d bytes, want at least 16", len(c))
		}
		if seen[string(c)] {
			t.Fatalf("challenge %q handed out twice", s)
		}
		seen[string(c)] = true
	}

	var creds [][]byte
	for i := range 3 {
		opts, id := h.beginReg(t, alice)
		challenge(opts)
		if id == "" || len(id) > 128 {
			t.Fatalf("ceremony id %q", id)
		}
		rp, _ := opts["rp"].(map[string]any)
		if rp["id"] != "localhost" || rp["name"] != "Gatehouse" {
			t.Fatalf("rp = %v, want id localhost, name Gatehouse", rp)
		}
		user, _ := opts["user"].(map[string]any)
		uid, _ := user["id"].(string)
		handle := b64(t, uid)
		if len(handle) < 1 || len(handle) > 64 || string(handle) != alice.ID {
			t.Fatalf("user.id = %q (%d bytes), want the user id %s (1..64 bytes)", handle, len(handle), alice.ID)
		}
		if user["name"] != alice.Email {
			t.Fatalf("user.name = %v, want %s", user["name"], alice.Email)
		}
		es256 := false
		params, _ := opts["pubKeyCredParams"].([]any)
		for _, p := range params {
			m, _ := p.(map[string]any)
			if m["type"] == "public-key" && m["alg"] == float64(-7) {
				es256 = true
			}
		}
		if !es256 {
			t.Fatalf("pubKeyCredParams %v lack ES256", params)
		}
		sel, _ := opts["authenticatorSelection"].(map[string]any)
		if sel["residentKey"] != "required" || sel["requireResidentKey"] != true {
			t.Fatalf("authenticatorSelection = %v, want residentKey required", sel)
		}
		var excluded [][]byte
		list, _ := opts["excludeCredentials"].([]any)
		for _, e := range list {
			m, _ := e.(map[string]any)
			id, _ := m["id"].(string)
			excluded = append(excluded, b64(t, id))
		}
		if len(excluded) != len(creds) {
			t.Fatalf("registration %d: excludeCredentials %x, want %x", i, excluded, creds)
		}
		for j := range creds {
			if !bytes.Equal(excluded[j], creds[j]) {
				t.Fatalf("registration %d: excludeCredentials %x, want %x", i, excluded, creds)
			}
		}
		resp, cred, err := a.Register(opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.pk.FinishRegistration(context.Background(), owner(alice), alice, id, mustJSON(t, resp), meta); err != nil {
			t.Fatalf("FinishRegistration %d: %v", i, err)
		}
		creds = append(creds, cred.ID)
	}
	for range 3 {
		opts, _ := h.beginLogin(t, "")
		challenge(opts)
		if opts["rpId"] != "localhost" {
			t.Fatalf("rpId = %v, want localhost", opts["rpId"])
		}
		opts, _ = h.beginLogin(t, alice.Email)
		challenge(opts)
	}
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin)
	_, cred := h.register(t, alice, a)

	t.Run("assertion twice on its ceremony", func(t *testing.T) {
		body, id := h.assertion(t, "", a, cred, nil)
		if u, err := h.finishLogin(ctx, id, body, meta); err != nil || u.ID != alice.ID {
			t.Fatalf("first use: %v, %v", u, err)
		}
		u, err := h.finishLogin(ctx, id, body, meta)
		refused(t, u, err)
	})
	t.Run("assertion replayed on a new ceremony", func(t *testing.T) {
		body, id := h.assertion(t, alice.Email, a, cred, nil)
		if _, err := h.finishLogin(ctx, id, body, meta); err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{"", alice.Email} {
			_, fresh := h.beginLogin(t, email)
			u, err := h.finishLogin(ctx, fresh, body, meta)
			refused(t, u, err)
		}
	})
	t.Run("refused assertion burns the ceremony", func(t *testing.T) {
		opts, id := h.beginLogin(t, "")
		bad, err := a.Assert(opts, cred, &forge{Origin: "http://evil.example"})
		if err != nil {
			t.Fatal(err)
		}
		u, err := h.finishLogin(ctx, id, mustJSON(t, bad), meta)
		refused(t, u, err)
		good, err := a.Assert(opts, cred, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err = h.finishLogin(ctx, id, mustJSON(t, good), meta)
		refused(t, u, err)
	})
	t.Run("concurrent use of one assertion", func(t *testing.T) {
		body, id := h.assertion(t, "", a, cred, nil)
		const n = 8
		var (
			wg sync.WaitGroup
			mu sync.Mutex
			ok int
		)
		for range n {
			wg.Go(func() {
				u, err := h.finishLogin(ctx, id, body, meta)
				if err == nil && u.ID == alice.ID {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if !errors.Is(err, auth.ErrPasskeyLogin) {
					t.Errorf("concurrent FinishLogin: %v", err)
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("%d of %d concurrent uses succeeded, want exactly 1", ok, n)
		}
	})
	t.Run("registration response twice", func(t *testing.T) {
		opts, id := h.beginReg(t, alice)
		resp, _, err := a.Register(opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := mustJSON(t, resp)
		if _, err := h.pk.FinishRegistration(ctx, owner(alice), alice, id, body, meta); err != nil {
			t.Fatal(err)
		}
		if p, err := h.pk.FinishRegistration(ctx, owner(alice), alice, id, body, meta); err == nil {
			t.Fatalf("second FinishRegistration stored %+v", p)
		}
		_, fresh := h.beginReg(t, alice)
		if p, err := h.pk.FinishRegistration(ctx, owner(alice), alice, fresh, body, meta); err == nil {
			t.Fatalf("registration replayed on a new ceremony stored %+v", p)
		}
	})
	t.Run("login ceremony is no registration ceremony", func(t *testing.T) {
		opts, id := h.beginLogin(t, "")
		resp, _, err := a.Register(map[string]any{"challenge": opts["challenge"], "rp": map[string]any{"id": "localhost"},
			"user": map[string]any{"id": b64enc([]byte(alice.ID)), "name": alice.Email}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := h.pk.FinishRegistration(ctx, owner(alice), alice, id, mustJSON(t, resp), meta); err == nil {
			t.Fatalf("registration on a login ceremony stored %+v", p)
		}
	})
	t.Run("registration ceremony is no login ceremony", func(t *testing.T) {
		opts, id := h.beginReg(t, alice)
		resp, err := a.Assert(map[string]any{"challenge": opts["challenge"], "rpId": "localhost"}, cred, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := h.finishLogin(ctx, id, mustJSON(t, resp), meta)
		refused(t, u, err)
	})
	// Only the honest logins above changed anything.
	if n := len(h.audits(t, alice.ID, auth.EventPasskeyAdded)); n != 2 {
		t.Fatalf("%d passkeys added, want 2", n)
	}
}

func b64enc(b []byte) string { return waB64(b) }

// TestLoginForgeries answers login options as an attacker or a broken
// client would; every answer must be refused, and the honest answer that
// follows must still work (so the refusal came from the forgery).
func TestLoginForgeries(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin) // BE and BS set, as synced passkeys
	_, cred := h.register(t, alice, a)
	local := newTestAuthenticator(origin) // a device-bound passkey: BE and BS clear
	local.BackupEligible, local.BackupState = false, false
	_, lcred := h.register(t, alice, local)
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongHash := bytes.Repeat([]byte{0xab}, 32)

	cases := []struct {
		name string
		a    *testAuthenticator
		cred *testCredential
		f    *forge
		// other: answer with the challenge of another ceremony
		other bool
	}{
		{name: "origin evil.example", f: &forge{Origin: "http://evil.example"}},
		{name: "origin wrong port", f: &forge{Origin: "http://localhost:8081"}},
		{name: "origin https", f: &forge{Origin: "https://localhost:8080"}},
		{name: "origin subdomain", f: &forge{Origin: "http://evil.localhost:8080"}},
		{name: "cross-origin iframe", f: &forge{CrossOrigin: true}},
		{name: "rp id evil.example", f: &forge{RPID: "evil.example"}},
		{name: "rp id hash garbage", f: &forge{RPIDHash: wrongHash}},
		{name: "type webauthn.create", f: &forge{Type: "webauthn.create"}},
		{name: "type empty-ish", f: &forge{Type: "webauthn.get "}},
		{name: "challenge of another ceremony", other: true},
		{name: "challenge made up", f: &forge{Challenge: b64enc(bytes.Repeat([]byte{1}, 32))}},
		{name: "user not present", f: &forge{ClearFlags: waFlagUP}},
		{name: "user not present nor verified", f: &forge{ClearFlags: waFlagUP | waFlagUV}},
		{name: "BE cleared since registration", f: &forge{ClearFlags: waFlagBE | waFlagBS}},
		{name: "BS without BE", f: &forge{ClearFlags: waFlagBE}},
		{name: "BE set since registration", a: local, cred: lcred, f: &forge{Flags: flags(waFlagUP | waFlagUV | waFlagBE)}},
		{name: "BS without BE (device-bound)", a: local, cred: lcred, f: &forge{Flags: flags(waFlagUP | waFlagUV | waFlagBS)}},
		{name: "signed by another key", f: &forge{Signer: otherKey}},
		{name: "signature garbage", f: &forge{Signature: []byte("not a signature")}},
		{name: "signature empty", f: &forge{Signature: []byte{}}},
		{name: "signature of another credential", f: &forge{Signer: lcred.Key}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			auth8r, c := tc.a, tc.cred
			if auth8r == nil {
				auth8r, c = a, cred
			}
			for _, email := range []string{"", alice.Email} {
				opts, id := h.beginLogin(t, email)
				if tc.other {
					other, _ := h.beginLogin(t, email)
					opts = other
				}
				resp, err := auth8r.Assert(opts, c, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				u, err := h.finishLogin(ctx, id, mustJSON(t, resp), meta)
				refused(t, u, err)
			}
			h.mustLogin(t, "", auth8r, c, nil, alice)
		})
	}
	if ev := h.audits(t, alice.ID, auth.EventPasskeyRegressed); len(ev) != 0 {
		t.Fatalf("forgeries raised %d counter regressions", len(ev))
	}
}

// TestRegistrationForgeries answers creation options with responses that
// must not add a passkey.
func TestRegistrationForgeries(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	bob := h.user(t, "bob@example.com")
	wrongHash := bytes.Repeat([]byte{0xab}, 32)

	cases := []struct {
		name  string
		f     *forge
		be    *bool // BackupEligible, BackupState of the authenticator
		other bool  // challenge of another ceremony
		as    *auth.User
	}{
		{name: "origin evil.example", f: &forge{Origin: "http://evil.example"}},
		{name: "origin wrong port", f: &forge{Origin: "http://localhost:8081"}},
		{name: "rp id evil.example", f: &forge{RPID: "evil.example"}},
		{name: "rp id hash garbage", f: &forge{RPIDHash: wrongHash}},
		{name: "type webauthn.get", f: &forge{Type: "webauthn.get"}},
		{name: "challenge of another ceremony", other: true},
		{name: "user not present", f: &forge{ClearFlags: waFlagUP}},
		{name: "BS without BE", f: &forge{ClearFlags: waFlagBE}},
		{name: "no attested credential data", f: &forge{ClearFlags: waFlagAT}},
		{name: "finished by another user", as: bob},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAuthenticator(origin)
			opts, id := h.beginReg(t, alice)
			if tc.other {
				opts, _ = h.beginReg(t, alice)
			}
			resp, _, err := a.Register(opts, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			as := alice
			if tc.as != nil {
				as = tc.as
			}
			if p, err := h.pk.FinishRegistration(ctx, owner(as), as, id, mustJSON(t, resp), meta); err == nil {
				t.Fatalf("forged registration stored %+v", p)
			}
		})
	}
	for _, u := range []*auth.User{alice, bob} {
		if keys, _ := h.db.ListPasskeys(ctx, u.ID); len(keys) != 0 {
			t.Fatalf("%s has %d passkeys after forged registrations", u.Email, len(keys))
		}
	}

	// A credential id already registered (to anyone) cannot be registered
	// again, so nobody can take over or shadow a victim's credential id.
	a := newTestAuthenticator(origin)
	_, cred := h.register(t, alice, a)
	for _, u := range []*auth.User{alice, bob} {
		opts, id := h.beginReg(t, u)
		resp, _, err := newTestAuthenticator(origin).Register(opts, &forge{CredentialID: cred.ID})
		if err != nil {
			t.Fatal(err)
		}
		if p, err := h.pk.FinishRegistration(ctx, owner(u), u, id, mustJSON(t, resp), meta); err == nil {
			t.Fatalf("%s registered alice's credential id again: %+v", u.Email, p)
		}
	}
	h.mustLogin(t, "", a, cred, nil, alice)
}

func TestSignCounterRegression(t *testing.T) {
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin)
	p, cred := h.register(t, alice, a)

	h.mustLogin(t, "", a, cred, &forge{SignCount: u32(5)}, alice)
	if n := h.storedCount(t, alice.ID, p.ID); n != 5 {
		t.Fatalf("stored counter %d, want 5", n)
	}
	for i, tc := range []struct {
		email string
		count uint32
	}{{"", 3}, {"", 5}, {alice.Email, 0}, {alice.Email, 4}} {
		u, err := h.login(t, tc.email, a, cred, &forge{SignCount: u32(tc.count)})
		refused(t, u, err)
		ev := h.audits(t, alice.ID, auth.EventPasskeyRegressed)
		if len(ev) != i+1 {
			t.Fatalf("counter %d: %d passkey.counter_regressed events, want %d", tc.count, len(ev), i+1)
		}
		if ev[0].Details["passkey_id"] != p.ID {
			t.Fatalf("event details %v, want passkey_id %s", ev[0].Details, p.ID)
		}
		if n := h.storedCount(t, alice.ID, p.ID); n != 5 {
			t.Fatalf("stored counter %d after a refused login, want 5", n)
		}
	}
	if ev := h.audits(t, alice.ID, auth.EventLoginSucceeded); len(ev) != 1 {
		t.Fatalf("%d successful logins, want 1", len(ev))
	}
}

func TestZeroCounterKeepsWorking(t *testing.T) {
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin)
	a.ZeroCounter = true
	p, cred := h.register(t, alice, a)
	for range 3 {
		h.mustLogin(t, "", a, cred, nil, alice)
		h.mustLogin(t, alice.Email, a, cred, nil, alice)
	}
	if n := h.storedCount(t, alice.ID, p.ID); n != 0 {
		t.Fatalf("stored counter %d, want 0", n)
	}
	if ev := h.audits(t, alice.ID, auth.EventPasskeyRegressed); len(ev) != 0 {
		t.Fatalf("%d counter regressions for a zero counter", len(ev))
	}
	// Once a counter is seen, falling back to 0 is a regression.
	h.mustLogin(t, "", a, cred, &forge{SignCount: u32(7)}, alice)
	u, err := h.login(t, "", a, cred, nil)
	refused(t, u, err)
	if ev := h.audits(t, alice.ID, auth.EventPasskeyRegressed); len(ev) != 1 {
		t.Fatalf("%d counter regressions, want 1", len(ev))
	}
}

func TestCrossUserHandles(t *testing.T) {
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	bob := h.user(t, "bob@example.com")
	a := newTestAuthenticator(origin)
	_, ca := h.register(t, alice, a)
	b := newTestAuthenticator(origin)
	_, cb := h.register(t, bob, b)

	cases := []struct {
		name  string
		email string
		f     *forge
	}{
		{name: "alice's credential with bob's handle", f: &forge{UserHandle: []byte(bob.ID)}},
		{name: "alice's credential with bob's handle, bob's email", email: bob.Email, f: &forge{UserHandle: []byte(bob.ID)}},
		{name: "alice's credential on bob's email ceremony", email: bob.Email},
		{name: "alice's credential on bob's email ceremony, no handle", email: bob.Email, f: &forge{NoUserHandle: true}},
		{name: "alice's credential without a handle", f: &forge{NoUserHandle: true}},
		{name: "unknown handle", f: &forge{UserHandle: []byte("no-such-user")}},
		{name: "huge handle", f: &forge{UserHandle: bytes.Repeat([]byte("x"), 4096)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := h.login(t, tc.email, a, ca, tc.f)
			refused(t, u, err)
		})
	}
	// Bob's credential signed with alice's key and alice's handle is no
	// credential of alice's.
	u, err := h.login(t, "", b, cb, &forge{Signer: ca.Key, UserHandle: []byte(alice.ID)})
	refused(t, u, err)
	// A credential with id of bob's one but alice's key.
	u, err = h.login(t, "", a, &testCredential{ID: cb.ID, Key: ca.Key, RPID: "localhost", UserHandle: []byte(bob.ID), BE: true, BS: true}, nil)
	refused(t, u, err)

	h.mustLogin(t, "", a, ca, nil, alice)
	h.mustLogin(t, bob.Email, b, cb, nil, bob)
}

func TestDeletedPasskeyAndDisabledUser(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)

	t.Run("deleted passkey", func(t *testing.T) {
		alice := h.user(t, "alice@example.com")
		a := newTestAuthenticator(origin)
		p, cred := h.register(t, alice, a)
		_, keep := h.register(t, alice, a)
		h.mustLogin(t, "", a, cred, nil, alice)
		// Begun before the deletion, finished after.
		pending, pendingID := h.assertion(t, "", a, cred, nil)
		if err := h.svc.RemovePasskey(ctx, &auth.Principal{UserID: alice.ID, Kind: auth.KindSession, ACR: auth.ACR1, AuthTime: time.Now()}, p.ID, meta); err != nil {
			t.Fatalf("RemovePasskey: %v", err)
		}
		u, err := h.finishLogin(ctx, pendingID, pending, meta)
		refused(t, u, err)
		for _, email := range []string{"", alice.Email} {
			u, err := h.login(t, email, a, cred, nil)
			refused(t, u, err)
		}
		h.mustLogin(t, alice.Email, a, keep, nil, alice)
	})

	t.Run("disabled user", func(t *testing.T) {
		carol := h.user(t, "carol@example.com")
		a := newTestAuthenticator(origin)
		_, cred := h.register(t, carol, a)
		h.mustLogin(t, carol.Email, a, cred, nil, carol)
		pendingD, pendingDID := h.assertion(t, "", a, cred, nil)
		pendingE, pendingEID := h.assertion(t, carol.Email, a, cred, nil)
		if err := h.db.SetDisabled(ctx, carol.ID, true, time.Now()); err != nil {
			t.Fatalf("SetDisabled: %v", err)
		}
		u, err := h.finishLogin(ctx, pendingDID, pendingD, meta)
		refused(t, u, err)
		u, err = h.finishLogin(ctx, pendingEID, pendingE, meta)
		refused(t, u, err)
		for _, email := range []string{"", carol.Email} {
			if email != "" {
				for _, id := range allowedIDs(t, h, email) {
					if bytes.Equal(id, cred.ID) {
						t.Fatalf("a disabled account's options list its credential %x", id)
					}
				}
			}
			u, err := h.login(t, email, a, cred, nil)
			refused(t, u, err)
		}
		if err := h.db.SetDisabled(ctx, carol.ID, false, time.Now()); err != nil {
			t.Fatal(err)
		}
		h.mustLogin(t, "", a, cred, nil, carol)
	})

	t.Run("deleted user", func(t *testing.T) {
		dave := h.user(t, "dave@example.com")
		a := newTestAuthenticator(origin)
		_, cred := h.register(t, dave, a)
		if err := h.db.DeleteUser(ctx, dave.ID); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		u, err := h.login(t, "", a, cred, nil)
		refused(t, u, err)
	})
}

// TestExpiredCeremony ages a stored ceremony: the Service uses the wall
// clock (no injectable clock), so the test rewrites the challenge store's
// row instead of waiting five minutes. Both the store's expiry and the
// session's own expiry are checked.
func TestExpiredCeremony(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin)
	_, cred := h.register(t, alice, a)

	// age takes the ceremony out of the store and puts it back expiring at
	// storeExp, its session expiring at sessExp (zero: unchanged).
	age := func(t *testing.T, id string, storeExp, sessExp time.Time) {
		t.Helper()
		key := "pk:" + auth.HashToken(id)
		raw, err := h.db.TakeChallenge(ctx, key, time.Now())
		if err != nil {
			t.Fatalf("TakeChallenge: %v", err)
		}
		var c map[string]any
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("ceremony %s: %v", raw, err)
		}
		s, _ := c["s"].(map[string]any)
		exp, err := time.Parse(time.RFC3339Nano, s["expires"].(string))
		if err != nil {
			t.Fatalf("session expiry: %v", err)
		}
		if d := time.Until(exp); d < passkey.ChallengeTTL-time.Minute || d > passkey.ChallengeTTL {
			t.Fatalf("session expires in %v, want about %v", d, passkey.ChallengeTTL)
		}
		if !sessExp.IsZero() {
			s["expires"] = sessExp.Format(time.RFC3339Nano)
		}
		if err := h.db.PutChallenge(ctx, key, mustJSON(t, c), storeExp); err != nil {
			t.Fatalf("PutChallenge: %v", err)
		}
	}
	past := time.Now().Add(-passkey.ChallengeTTL - time.Second)
	future := time.Now().Add(time.Minute)
	cases := []struct {
		name              string
		storeExp, sessExp time.Time
	}{
		{"store row expired", past, time.Time{}},
		{"session expired", future, past},
		{"both expired", past, past},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, email := range []string{"", alice.Email} {
				body, id := h.assertion(t, email, a, cred, nil)
				age(t, id, tc.storeExp, tc.sessExp)
				u, err := h.finishLogin(ctx, id, body, meta)
				refused(t, u, err)
			}
			opts, id := h.beginReg(t, alice)
			resp, _, err := newTestAuthenticator(origin).Register(opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			age(t, id, tc.storeExp, tc.sessExp)
			if p, err := h.pk.FinishRegistration(ctx, owner(alice), alice, id, mustJSON(t, resp), meta); err == nil {
				t.Fatalf("registration on an expired ceremony stored %+v", p)
			}
		})
	}
	// Control: the same rewriting with nothing expired still works.
	body, id := h.assertion(t, "", a, cred, nil)
	age(t, id, future, time.Time{})
	if u, err := h.finishLogin(ctx, id, body, meta); err != nil || u.ID != alice.ID {
		t.Fatalf("FinishLogin after a harmless rewrite: %v, %v", u, err)
	}
}

// TestMalformed sends bodies and ceremony ids no client should: each is an
// error, never a panic, never a sign-in.
func TestMalformed(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	alice := h.user(t, "alice@example.com")
	a := newTestAuthenticator(origin)
	_, cred := h.register(t, alice, a)

	huge := strings.Repeat("A", 1<<20)
	loginOK, _ := h.assertion(t, "", a, cred, nil)
	var login map[string]any
	if err := json.Unmarshal(loginOK, &login); err != nil {
		t.Fatal(err)
	}
	opts, _ := h.beginReg(t, alice)
	regResp, _, err := newTestAuthenticator(origin).Register(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	regOK := mustJSON(t, regResp)

	// with returns the JSON of v with response[field] (or v[field] when
	// field has no "response." prefix) set to val; val nil deletes it.
	with := func(v []byte, field string, val any) []byte {
		var m map[string]any
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatal(err)
		}
		target := m
		if f, ok := strings.CutPrefix(field, "response."); ok {
			target, field = m["response"].(map[string]any), f
		}
		if val == nil {
			delete(target, field)
		} else {
			target[field] = val
		}
		return mustJSON(t, m)
	}
	resp := regResp["response"].(map[string]any)
	att := resp["attestationObject"].(string)
	cdj := resp["clientDataJSON"].(string)
	lresp := login["response"].(map[string]any)
	ad := lresp["authenticatorData"].(string)

	common := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"whitespace", []byte("  \n")},
		{"null", []byte("null")},
		{"garbage", []byte("\x00\xff{{{not json")},
		{"array", []byte("[1,2,3]")},
		{"string", []byte(`"public-key"`)},
		{"empty object", []byte("{}")},
		{"truncated JSON", loginOK[:len(loginOK)/2]},
		{"deep nesting", []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000))},
		{"huge id", []byte(`{"id":"` + huge + `","rawId":"` + huge + `","type":"public-key","response":{}}`)},
	}
	regCases := append(common[:len(common):len(common)], []struct {
		name string
		body []byte
	}{
		{"attestationObject truncated", with(regOK, "response.attestationObject", att[:len(att)/2])},
		{"attestationObject one byte", with(regOK, "response.attestationObject", "oA")},
		{"attestationObject not base64", with(regOK, "response.attestationObject", "***")},
		{"attestationObject huge", with(regOK, "response.attestationObject", huge)},
		{"attestationObject missing", with(regOK, "response.attestationObject", nil)},
		{"attestationObject a number", with(regOK, "response.attestationObject", 12345)},
		{"clientDataJSON truncated", with(regOK, "response.clientDataJSON", cdj[:len(cdj)/2])},
		{"clientDataJSON huge", with(regOK, "response.clientDataJSON", huge)},
		{"clientDataJSON missing", with(regOK, "response.clientDataJSON", nil)},
		{"response missing", with(regOK, "response", nil)},
		{"type wrong", with(regOK, "type", "password")},
		{"rawId differs from id", with(regOK, "rawId", b64enc([]byte("other")))},
		{"id empty", with(regOK, "id", "")},
		{"transports huge", with(regOK, "response.transports", strings.Split(strings.Repeat("usb,", 10000), ","))},
	}...)
	for _, tc := range regCases {
		t.Run("register/"+tc.name, func(t *testing.T) {
			_, id := h.beginReg(t, alice)
			p, err := h.pk.FinishRegistration(ctx, owner(alice), alice, id, tc.body, meta)
			if err == nil {
				t.Fatalf("stored %+v", p)
			}
			if !errors.Is(err, passkey.ErrBadRegistration) {
				t.Fatalf("error %v, want ErrBadRegistration", err)
			}
		})
	}

	loginCases := append(common[:len(common):len(common)], []struct {
		name string
		body []byte
	}{
		{"authenticatorData truncated", with(loginOK, "response.authenticatorData", ad[:20])},
		{"authenticatorData empty", with(loginOK, "response.authenticatorData", "")},
		{"authenticatorData huge", with(loginOK, "response.authenticatorData", huge)},
		{"authenticatorData trailing bytes", with(loginOK, "response.authenticatorData", ad+"AAAA")},
		{"signature huge", with(loginOK, "response.signature", huge)},
		{"signature missing", with(loginOK, "response.signature", nil)},
		{"clientDataJSON not JSON", with(loginOK, "response.clientDataJSON", b64enc([]byte("{oops")))},
		{"clientDataJSON huge", with(loginOK, "response.clientDataJSON", huge)},
		{"userHandle huge", with(loginOK, "response.userHandle", huge)},
		{"userHandle a number", with(loginOK, "response.userHandle", 7)},
		{"response missing", with(loginOK, "response", nil)},
		{"response null", []byte(`{"id":"AA","rawId":"AA","type":"public-key","response":null}`)},
		{"type wrong", with(loginOK, "type", "password")},
		{"rawId differs from id", with(loginOK, "rawId", b64enc([]byte("other")))},
		{"registration response", regOK},
	}...)
	for _, tc := range loginCases {
		t.Run("login/"+tc.name, func(t *testing.T) {
			for _, email := range []string{"", alice.Email} {
				_, id := h.beginLogin(t, email)
				u, err := h.finishLogin(ctx, id, tc.body, meta)
				refused(t, u, err)
			}
		})
	}

	// Ceremony ids that were never handed out.
	for _, id := range []string{"", "x", strings.Repeat("a", 129), strings.Repeat("a", 1<<16), "pk:../../etc", "\x00"} {
		u, err := h.finishLogin(ctx, id, loginOK, meta)
		refused(t, u, err)
		if p, err := h.pk.FinishRegistration(ctx, owner(alice), alice, id, regOK, meta); !errors.Is(err, passkey.ErrBadRegistration) {
			t.Fatalf("FinishRegistration(ceremony %.20q) = %+v, %v; want ErrBadRegistration", id, p, err)
		}
	}
	// Email inputs of every shape begin a ceremony without an error.
	for _, email := range []string{huge, "\x00@x", "a@b@c", strings.Repeat("a", 300) + "@example.com"} {
		if _, _, err := h.pk.BeginLogin(ctx, email); err != nil {
			t.Fatalf("BeginLogin(%.20q): %v", email, err)
		}
	}
	h.mustLogin(t, "", a, cred, nil, alice)
}

func TestNewRejectsBadPublicURL(t *testing.T) {
	for _, u := range []string{"", "::not a url", "http://", "/relative"} {
		if _, err := passkey.New(u, "Gatehouse", &auth.Service{}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}
