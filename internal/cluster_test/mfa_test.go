package clustertest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// totp is an authenticator app: the RFC 6238 code of a base32 secret.
func totp(t *testing.T, secret string, step int64) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	return fmt.Sprintf("%06d", v%1_000_000)
}

// TestTwoFactorAcrossNodes: two-factor with sessions in Redis and the
// database shared (SPEC §13): a TOTP enrolled on node A challenges a
// sign-in on node B, which node A finishes; a step-up on node A renews the
// session for node B at once (the session's level and time live in Redis).
func TestTwoFactorAcrossNodes(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, map[string]string{"GATEHOUSE_STEP_UP_MAX_AGE": "2s"})
	u := newUser(t, cl.A)
	onA, _ := cl.A.login(t, u)
	begin := cl.A.do(t, "POST", "/v1/mfa/totp", map[string]any{}, withCookie(onA), fromIP(u.IP), sameOrigin)
	if begin.Status != http.StatusCreated {
		t.Fatalf("POST /v1/mfa/totp on A: %s", begin)
	}
	secret := begin.Str(t, "secret")
	step := time.Now().Unix() / 30
	confirm := cl.B.do(t, "POST", "/v1/mfa/totp/confirm", map[string]any{"enrollment_id": begin.Str(t, "enrollment_id"), "code": totp(t, secret, step)},
		withCookie(onA), fromIP(u.IP), sameOrigin)
	if confirm.Status != http.StatusOK {
		t.Fatalf("POST /v1/mfa/totp/confirm on B with the session made on A: %s", confirm)
	}
	codes, _ := confirm.JSON(t)["recovery_codes"].([]any)
	if len(codes) < 2 {
		t.Fatalf("recovery codes: %s", confirm)
	}

	// A sign-in on B is challenged; A finishes it with the next step.
	ch := cl.B.sessionLogin(t, u, u.Password, u.IP)
	if ch.Status != http.StatusUnauthorized || ch.Str(t, "code") != "mfa_required" {
		t.Fatalf("POST /v1/sessions on B: %s, want 401 mfa_required", ch)
	}
	done := cl.A.do(t, "POST", "/v1/mfa/verify", map[string]any{"mfa_token": ch.Str(t, "mfa_token"), "code": totp(t, secret, step+1)},
		fromIP(u.IP), sameOrigin)
	if done.Status != http.StatusCreated {
		t.Fatalf("POST /v1/mfa/verify on A for B's challenge: %s", done)
	}
	var fresh *http.Cookie
	for _, c := range (&http.Response{Header: done.Header}).Cookies() {
		if c.HttpOnly && c.Value != "" {
			fresh = c
		}
	}
	if fresh == nil || cl.B.me(t, u, withCookie(fresh)).Status != http.StatusOK {
		t.Fatalf("the session of the second step does not work on B")
	}

	// Stale after 2 s: a change needs step-up; a step-up on A is seen by B.
	time.Sleep(2500 * time.Millisecond)
	if r := cl.B.do(t, "POST", "/v1/mfa/recovery-codes", map[string]any{}, withCookie(fresh), fromIP(u.IP), sameOrigin); r.Status != http.StatusUnauthorized || r.Str(t, "code") != "step_up_required" {
		t.Fatalf("a stale session on B: %s, want 401 step_up_required", r)
	}
	if r := cl.A.do(t, "POST", "/v1/mfa/step-up", map[string]any{"recovery_code": codes[0]}, withCookie(fresh), fromIP(u.IP), sameOrigin); r.Status != http.StatusNoContent {
		t.Fatalf("POST /v1/mfa/step-up on A: %s", r)
	}
	if r := cl.B.do(t, "POST", "/v1/mfa/recovery-codes", map[string]any{}, withCookie(fresh), fromIP(u.IP), sameOrigin); r.Status != http.StatusOK {
		t.Fatalf("the session stepped up on A, a change on B: %s, want 200", r)
	}
}
