package httptest_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/revfeed"
	"gatehouse/internal/testserver"
)

// Gatehouse's own endpoints apply the revocation feed to access tokens
// (SPEC §15): a revoked token is refused by the next request, on /v1, on
// userinfo and by introspection — without waiting for it to expire.
func TestOwnEndpointsRefuseRevokedAccessTokens(t *testing.T) {
	g := start(t, nil)

	t.Run("RoleChange", func(t *testing.T) {
		a := g.user(t, "revroles")
		old := a.Access
		if r := g.get(t, "/v1/me", bearer(old)); r.Status != http.StatusOK {
			t.Fatalf("GET /v1/me before the role change: %s", r)
		}
		g.setRoles(t, a.ID, "editor")
		r := g.get(t, "/v1/me", bearer(old))
		wantProblem(t, "a token minted before a role change", r, http.StatusUnauthorized)
		wantChallenge(t, "a token minted before a role change", r, true)
		// A token minted right after (in the same second, most likely) is
		// not born dead.
		g.grant(t, a, "")
		if r := g.get(t, "/v1/me", bearer(a.Access)); r.Status != http.StatusOK {
			t.Fatalf("GET /v1/me with a token minted just after the role change: %s", r)
		}
		// Another role change at once (within the same second, most
		// likely): the token minted between the two dies too, though its
		// iat is the first change's not_before.
		between := a.Access
		g.setRoles(t, a.ID, "user")
		wantProblem(t, "a token minted between two role changes", g.get(t, "/v1/me", bearer(between)), http.StatusUnauthorized)
		g.grant(t, a, "")
		if r := g.get(t, "/v1/me", bearer(a.Access)); r.Status != http.StatusOK {
			t.Fatalf("GET /v1/me with a token minted after the second role change: %s", r)
		}
	})

	t.Run("PasswordChange", func(t *testing.T) {
		a := g.user(t, "revpw")
		old := a.Access
		if r := g.get(t, "/v1/me", bearer(old)); r.Status != http.StatusOK {
			t.Fatalf("GET /v1/me before the password change: %s", r)
		}
		r := g.send(t, http.MethodPost, "/v1/password/change", map[string]string{"current_password": password, "new_password": password + " 2"}, bearer(old))
		if r.Status != http.StatusNoContent {
			t.Fatalf("password change: %s", r)
		}
		wantProblem(t, "a token minted before a password change", g.get(t, "/v1/me", bearer(old)), http.StatusUnauthorized)

	})

	t.Run("RefreshTokenRevoked", func(t *testing.T) {
		a := g.user(t, "revrt")
		if r := g.get(t, "/v1/me", bearer(a.Access)); r.Status != http.StatusOK {
			t.Fatalf("GET /v1/me before the revoke: %s", r)
		}
		other := &account{ID: a.ID, Email: a.Email}
		g.grant(t, other, "") // a second family: its tokens stay valid
		r := g.send(t, http.MethodPost, "/oauth2/revoke", url.Values{"token": {a.Refresh}})
		if r.Status != http.StatusOK {
			t.Fatalf("revoke: %s", r)
		}
		wantProblem(t, "the access token of a revoked refresh family", g.get(t, "/v1/me", bearer(a.Access)), http.StatusUnauthorized)
		if r := g.get(t, "/v1/me", bearer(other.Access)); r.Status != http.StatusOK {
			t.Fatalf("another family's access token after one family was revoked: %s", r)
		}
	})

	t.Run("AdminRevoke", func(t *testing.T) {
		a := g.user(t, "revadm")
		if r := g.get(t, "/v1/me", bearer(a.Access)); r.Status != http.StatusOK {
			t.Fatalf("GET /v1/me before the revoke: %s", r)
		}
		r := g.send(t, http.MethodPost, "/v1/admin/users/"+a.ID+"/revoke", nil, bearer(g.root.Access))
		if r.Status/100 != 2 {
			t.Fatalf("admin revoke: %s", r)
		}
		wantProblem(t, "a token of a user an admin revoked", g.get(t, "/v1/me", bearer(a.Access)), http.StatusUnauthorized)
	})
}

// With GATEHOUSE_REVOCATION_FEED=false nothing is recorded, the feed's
// endpoints are 404, and a revoked family's access token lives on until it
// expires (the behaviour before the feed).
func TestRevocationFeedOff(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_REVOCATION_FEED": "false"})
	_, key := g.createKey(t, g.root, "introspect")
	for _, path := range []string{"/v1/revocations/stream", "/v1/revocations"} {
		wantProblem(t, "GET "+path+" with the feed off", g.get(t, path, apiKey(key)), http.StatusNotFound)
	}
	a := g.user(t, "feedoff")
	if r := g.send(t, http.MethodPost, "/oauth2/revoke", url.Values{"token": {a.Refresh}}); r.Status != http.StatusOK {
		t.Fatalf("revoke: %s", r)
	}
	if r := g.get(t, "/v1/me", bearer(a.Access)); r.Status != http.StatusOK {
		t.Fatalf("with the feed off, the access token of a revoked family: %s, want 200 until it expires", r)
	}
}

// The feed's request checking: who may read it, and which cursors and
// waits are refused.
func TestRevocationFeedRequests(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_REVOCATION_HEARTBEAT": "200ms"})
	_, key := g.createKey(t, g.root, "introspect")
	_, readKey := g.createKey(t, g.root, "read")

	t.Run("Authorization", func(t *testing.T) {
		r := g.get(t, "/v1/revocations")
		wantProblem(t, "the long-poll without credentials", r, http.StatusUnauthorized)
		wantChallenge(t, "the long-poll without credentials", r, false)
		wantProblem(t, "the long-poll with an invalid key", g.get(t, "/v1/revocations", apiKey("gth_"+strings.Repeat("A", 49))), http.StatusUnauthorized)
		wantProblem(t, "the long-poll with a key without introspect", g.get(t, "/v1/revocations", apiKey(readKey)), http.StatusForbidden)
		wantProblem(t, "the long-poll with the admin's access token (not an API key)", g.get(t, "/v1/revocations", bearer(g.root.Access)), http.StatusForbidden)
		wantProblem(t, "the stream with a key without introspect", g.get(t, "/v1/revocations/stream", apiKey(readKey)), http.StatusForbidden)
	})

	t.Run("Cursors", func(t *testing.T) {
		for _, bad := range []string{"x", "1", "-1", "1-", "-5-3", "1-2-3", "99999999999999999999-1", "+1-1", "1-+1"} {
			wantProblem(t, "after="+bad, g.get(t, "/v1/revocations?after="+url.QueryEscape(bad), apiKey(key)), http.StatusBadRequest)
			wantProblem(t, "Last-Event-ID "+bad, g.get(t, "/v1/revocations/stream", apiKey(key), []string{"Last-Event-ID", bad}), http.StatusBadRequest)
		}
		for _, bad := range []string{"forever", "-1s", "61s", "1e9"} {
			wantProblem(t, "wait="+bad, g.get(t, "/v1/revocations?wait="+url.QueryEscape(bad), apiKey(key)), http.StatusBadRequest)
		}
		// Something is revoked; a cursor from before it and older than the
		// retention (15m + 5m) may have missed events: 410.
		a := g.user(t, "cursors")
		if r := g.send(t, http.MethodPost, "/oauth2/revoke", url.Values{"token": {a.Refresh}}); r.Status != http.StatusOK {
			t.Fatalf("revoke: %s", r)
		}
		old := revfeed.Cursor{Seq: 0, At: time.Now().Add(-21 * time.Minute)}.String()
		wantProblem(t, "a cursor older than retention", g.get(t, "/v1/revocations?after="+old, apiKey(key)), http.StatusGone)
		wantProblem(t, "Last-Event-ID older than retention", g.get(t, "/v1/revocations/stream", apiKey(key), []string{"Last-Event-ID", old}), http.StatusGone)
		// A recent cursor at seq 0 gets everything.
		fresh := revfeed.Cursor{Seq: 0, At: time.Now()}.String()
		r := g.get(t, "/v1/revocations?after="+fresh, apiKey(key))
		if r.Status != http.StatusOK {
			t.Fatalf("a fresh cursor: %s", r)
		}
		evs, _ := r.JSON(t)["events"].([]any)
		if len(evs) == 0 {
			t.Fatalf("after a revocation, a cursor at the start got no events: %s", r)
		}
		for _, e := range evs {
			m, _ := e.(map[string]any)
			for _, k := range []string{"password", "token", "hash", "secret"} {
				for field := range m {
					if strings.Contains(field, k) {
						t.Fatalf("an event carries a %q field: %v", field, m)
					}
				}
			}
		}
	})

	t.Run("Heartbeat", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/v1/revocations/stream", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(resp.Body)
		ready, beats := false, 0
		start := time.Now()
		for sc.Scan() && beats < 2 {
			line := sc.Text()
			switch {
			case line == "event: ready":
				ready = true
			case line == ": heartbeat":
				if !ready {
					t.Fatalf("a heartbeat before the snapshot's ready event")
				}
				beats++
			}
		}
		if beats < 2 {
			t.Fatalf("got %d heartbeats in %s with GATEHOUSE_REVOCATION_HEARTBEAT=200ms (scan: %v)", beats, time.Since(start), sc.Err())
		}
	})
}

// The stream delivers a revocation to a connected reader, and the
// long-poll returns it, as they commit.
func TestRevocationFeedDelivers(t *testing.T) {
	g := start(t, nil)
	_, key := g.createKey(t, g.root, "introspect")
	r := g.get(t, "/v1/revocations?wait=0s", apiKey(key))
	if r.Status != http.StatusOK {
		t.Fatalf("snapshot: %s", r)
	}
	cursor := str(t, r.JSON(t), "cursor")
	a := g.user(t, "deliver")
	done := make(chan *struct {
		status int
		body   string
	}, 1)
	go func() {
		resp := g.get(t, "/v1/revocations?wait=10s&after="+url.QueryEscape(cursor), apiKey(key))
		done <- &struct {
			status int
			body   string
		}{resp.Status, string(resp.Body)}
	}()
	time.Sleep(300 * time.Millisecond)
	if r := g.send(t, http.MethodDelete, "/v1/sessions/current", nil, g.cookie(a), g.sameOrigin()); r.Status/100 != 2 {
		t.Fatalf("logout: %s", r)
	}
	at := time.Now()
	select {
	case got := <-done:
		if got.status != http.StatusOK || !strings.Contains(got.body, strconv.Quote(a.SessionID)) {
			t.Fatalf("the waiting poll answered %d %s, want the session.revoked event of %s", got.status, got.body, a.SessionID)
		}
		if d := time.Since(at); d > time.Second {
			t.Fatalf("the waiting poll answered %s after the logout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting poll did not answer within 5 s of a logout")
	}
}

// gatehouse keys revoke withdraws a signing key: the tokens it signed are
// refused as soon as the running server reads key.revoked from the feed,
// and a current key cannot be revoked.
func TestKeysRevoke(t *testing.T) {
	g := start(t, nil)
	a := g.user(t, "keyrevoke")
	old := a.Access
	kid := jwtKID(t, old)
	if _, _, err := testserver.Run(t, g.Env, "", "keys", "revoke", "--kid", kid); err == nil {
		t.Fatal("gatehouse keys revoke of the current signing key succeeded")
	}
	if _, _, err := testserver.Run(t, g.Env, "", "keys", "revoke"); err == nil {
		t.Fatal("gatehouse keys revoke without --kid succeeded")
	}
	if _, _, err := testserver.Run(t, g.Env, "", "keys", "revoke", "--kid", "no-such-kid"); err == nil {
		t.Fatal("gatehouse keys revoke of an unknown key succeeded")
	}
	g.Command(t, "", "keys", "rotate")
	if r := g.get(t, "/v1/me", bearer(old)); r.Status != http.StatusOK {
		t.Fatalf("a token of the previous key after a rotation: %s, want 200 (it keeps verifying)", r)
	}
	out := g.Command(t, "", "keys", "revoke", "--kid", kid)
	if !strings.Contains(out, kid) {
		t.Fatalf("keys revoke printed %q", out)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := g.get(t, "/v1/me", bearer(old))
		if r.Status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token of a revoked key 3 s after gatehouse keys revoke: %s, want 401", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.grant(t, a, "")
	if r := g.get(t, "/v1/me", bearer(a.Access)); r.Status != http.StatusOK || jwtKID(t, a.Access) == kid {
		t.Fatalf("a new token after the revoke: %s (kid %s)", r, jwtKID(t, a.Access))
	}
}

// jwtKID reads the kid of a JWT's header.
func jwtKID(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.KID == "" {
		t.Fatalf("JWT header %s: no kid (%v)", b, err)
	}
	return h.KID
}

// An open stream ends when its own API key is revoked, or when its owner
// may no longer introspect (demoted): the feed is not a credential that
// outlives its revocation.
func TestRevocationStreamEndsWithItsCredential(t *testing.T) {
	g := start(t, nil)
	open := func(key string) (<-chan error, func()) {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/v1/revocations/stream", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %d", resp.StatusCode)
		}
		done := make(chan error, 1)
		go func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
			}
			done <- sc.Err()
		}()
		return done, cancel
	}
	wantEnd := func(done <-chan error, what string) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("the stream is still open 3 s after %s", what)
		}
	}

	admin := g.user(t, "streamowner", "admin")
	id, key := g.createKey(t, admin, "introspect")
	done, cancel := open(key)
	defer cancel()
	// Another revocation does not end it.
	other := g.user(t, "streamother")
	if r := g.send(t, http.MethodPost, "/oauth2/revoke", url.Values{"token": {other.Refresh}}); r.Status != http.StatusOK {
		t.Fatalf("revoke: %s", r)
	}
	select {
	case <-done:
		t.Fatal("the stream ended after an unrelated revocation")
	case <-time.After(500 * time.Millisecond):
	}
	if r := g.send(t, http.MethodDelete, "/v1/api-keys/"+id, nil, bearer(admin.Access)); r.Status/100 != 2 {
		t.Fatalf("revoking the key: %s", r)
	}
	wantEnd(done, "its API key was revoked")

	_, key2 := g.createKey(t, admin, "introspect")
	done2, cancel2 := open(key2)
	defer cancel2()
	g.setRoles(t, admin.ID, "user")
	wantEnd(done2, "its owner lost the admin role")
	if r := g.get(t, "/v1/revocations", apiKey(key2)); r.Status != http.StatusForbidden {
		t.Fatalf("the long-poll with the demoted owner's key: %s, want 403", r)
	}
}
