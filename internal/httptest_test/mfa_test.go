package httptest_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/testserver"
)

// Attacks on two-factor authentication (SPEC §13) over HTTP, beyond what the
// acceptance suite checks: token confusion (an mfa_token where another
// credential belongs and the other way round), brute force and replay of
// codes, the RFC 9470 step-up challenge, secrets in logs and views,
// enumeration through the second step, the OpenAPI document and the hosted
// /login/2fa page without JavaScript.

// mfaGrantType finishes a challenged sign-in at the token endpoint.
const mfaGrantType = "urn:gatehouse:grant-type:mfa"

// mfaAccount is an account with a confirmed TOTP authenticator: its secret,
// its recovery codes and the last TOTP step it used.
type mfaAccount struct {
	*account
	secret    []byte
	secretB32 string
	recovery  []string
	used      int   // recovery codes handed out
	lastStep  int64 // the last TOTP step used (confirmation or sign-in)
	skew      int64 // GATEHOUSE_TOTP_SKEW of the server
}

// totpCode is the RFC 6238 code (HMAC-SHA1, 6 digits) of a 30-second step.
func totpCode(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	h := hmac.New(sha1.New, secret)
	h.Write(msg[:])
	sum := h.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	return fmt.Sprintf("%06d", v%1000000)
}

func stepNow() int64 { return time.Now().Unix() / 30 }

// wrongCode is six digits that are no code of the secret within three steps
// of now.
func wrongCode(secret []byte) string {
	now := stepNow()
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", (now*7919+int64(n)*104729)%1000000)
		ok := true
		for s := now - 3; s <= now+3; s++ {
			if totpCode(secret, s) == c {
				ok = false
			}
		}
		if ok {
			return c
		}
	}
}

// code returns a TOTP code u has not used: of the current step or the one
// after the last used, waiting only when that is beyond the server's skew.
func (u *mfaAccount) code(t *testing.T) string {
	t.Helper()
	now := stepNow()
	s := max(u.lastStep+1, now)
	if s > now+u.skew {
		wait := time.Until(time.Unix((s-u.skew)*30, 0)) + 300*time.Millisecond
		t.Logf("waiting %s for the next TOTP step", wait.Round(time.Millisecond))
		time.Sleep(wait)
	}
	u.lastStep = s
	return totpCode(u.secret, s)
}

// recoveryCode hands out the next unused recovery code.
func (u *mfaAccount) recoveryCode(t *testing.T) string {
	t.Helper()
	if u.used >= len(u.recovery) {
		t.Fatalf("all %d recovery codes are used", len(u.recovery))
	}
	c := u.recovery[u.used]
	u.used++
	return c
}

// reason is the "code" member of a JSON answer, "" when there is none.
func reason(r *testserver.Response) string {
	var m struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.Body, &m)
	return m.Code
}

// jsonOf decodes a JSON object answer without failing the test.
func jsonOf(r *testserver.Response) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// stepUpRetry sends f; when it answers 401 step_up_required (a short
// GATEHOUSE_STEP_UP_MAX_AGE), a steps up with the password on its access
// token, keeps the fresh token and sends f again.
func (g *gh) stepUpRetry(t *testing.T, a *account, what string, f func() *testserver.Response) *testserver.Response {
	t.Helper()
	r := f()
	for i := 0; i < 3 && r.Status == http.StatusUnauthorized && reason(r) == "step_up_required"; i++ {
		s := g.send(t, http.MethodPost, "/v1/mfa/step-up", map[string]string{"password": password}, bearer(a.Access))
		if s.Status != http.StatusOK {
			t.Fatalf("%s asked for step-up; POST /v1/mfa/step-up {password} (bearer, no MFA yet): %s", what, s)
		}
		a.Access = str(t, s.JSON(t), "access_token")
		r = f()
	}
	return r
}

// enrol sets up TOTP for a with its access token and returns the secret and
// recovery codes. The confirmation ends a's aal1 sessions and refresh
// families (SPEC §13): sign in again through a challenge afterwards.
func (g *gh) enrol(t *testing.T, a *account) *mfaAccount {
	t.Helper()
	b := g.stepUpRetry(t, a, "POST /v1/mfa/totp", func() *testserver.Response {
		return g.send(t, http.MethodPost, "/v1/mfa/totp", nil, bearer(a.Access))
	})
	if b.Status != http.StatusCreated {
		t.Fatalf("POST /v1/mfa/totp for %s: %s", a.Email, b)
	}
	m := b.JSON(t)
	secretB32, id := str(t, m, "secret"), str(t, m, "enrollment_id")
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(strings.ToUpper(secretB32), "="))
	if err != nil || len(secret) < 20 {
		t.Fatalf("POST /v1/mfa/totp: secret %q is not 20 bytes of base32: %v", secretB32, err)
	}
	var step int64
	c := g.stepUpRetry(t, a, "POST /v1/mfa/totp/confirm", func() *testserver.Response {
		step = stepNow()
		return g.send(t, http.MethodPost, "/v1/mfa/totp/confirm", map[string]string{"enrollment_id": id, "code": totpCode(secret, step)}, bearer(a.Access))
	})
	if c.Status != http.StatusOK {
		t.Fatalf("POST /v1/mfa/totp/confirm for %s: %s", a.Email, c)
	}
	var out struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if err := json.Unmarshal(c.Body, &out); err != nil || len(out.RecoveryCodes) == 0 {
		t.Fatalf("POST /v1/mfa/totp/confirm: no recovery_codes: %s", c)
	}
	return &mfaAccount{account: a, secret: secret, secretB32: secretB32, recovery: out.RecoveryCodes, lastStep: step, skew: 1}
}

// mfaUser registers an account in domain, signs it in with a token and
// sets up TOTP.
func (g *gh) mfaUser(t *testing.T, domain string) *mfaAccount {
	t.Helper()
	a := g.register(t, newEmail(domain))
	g.grant(t, a, "")
	return g.enrol(t, a)
}

// grantChallenge starts a password-grant sign-in of email and requires the
// 403 mfa_required challenge; it returns the mfa_token.
func (g *gh) grantChallenge(t *testing.T, email string, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := g.send(t, http.MethodPost, "/oauth2/token", form)
	if r.Status != http.StatusForbidden || jsonOf(r)["error"] != "mfa_required" {
		t.Fatalf("password grant of %s (TOTP on): %s, want 403 mfa_required", email, r)
	}
	tok := str(t, r.JSON(t), "mfa_token")
	if !strings.HasPrefix(tok, "ghm_") {
		t.Fatalf("mfa_token %q does not start with ghm_", tok)
	}
	return tok
}

// sessionChallenge starts a cookie sign-in of email (POST /v1/sessions,
// same-origin) and requires the 401 mfa_required problem; it returns the
// mfa_token.
func (g *gh) sessionChallenge(t *testing.T, email string) string {
	t.Helper()
	r := g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": email, "password": password}, g.sameOrigin())
	if r.Status != http.StatusUnauthorized || reason(r) != "mfa_required" {
		t.Fatalf("POST /v1/sessions of %s (TOTP on): %s, want 401 mfa_required", email, r)
	}
	tok := str(t, r.JSON(t), "mfa_token")
	if !strings.HasPrefix(tok, "ghm_") {
		t.Fatalf("mfa_token %q does not start with ghm_", tok)
	}
	return tok
}

// mfaGrant posts the mfa grant with the mfa_token and the name, value
// pairs kv (otp, recovery_code …).
func (g *gh) mfaGrant(t *testing.T, tok string, kv ...string) *testserver.Response {
	t.Helper()
	form := url.Values{"grant_type": {mfaGrantType}, "mfa_token": {tok}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Set(kv[i], kv[i+1])
	}
	return g.send(t, http.MethodPost, "/oauth2/token", form)
}

// verify posts POST /v1/mfa/verify {mfa_token, field: value} same-origin.
func (g *gh) verify(t *testing.T, tok, field, value string, hdr ...[]string) *testserver.Response {
	t.Helper()
	return g.send(t, http.MethodPost, "/v1/mfa/verify", map[string]string{"mfa_token": tok, field: value}, append([][]string{g.sameOrigin()}, hdr...)...)
}

// claims decodes the payload of a JWT (not checking its signature: the
// server's own resource routes do that).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

// wantMFAProblem requires a 400 problem with code and, when left >= 0,
// attempts_remaining left.
func wantMFAProblem(t *testing.T, what string, r *testserver.Response, code string, left int) {
	t.Helper()
	wantProblem(t, what, r, http.StatusBadRequest)
	m := r.JSON(t)
	if m["code"] != code {
		t.Fatalf("%s: code %v, want %q: %s", what, m["code"], code, r.Body)
	}
	if left >= 0 {
		if n, ok := m["attempts_remaining"].(float64); !ok || int(n) != left {
			t.Fatalf("%s: attempts_remaining %v, want %d: %s", what, m["attempts_remaining"], left, r.Body)
		}
	}
	if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 {
		t.Fatalf("%s: a refused code set cookies %q", what, sc)
	}
}

// wantDeadChallenge requires the one answer of an unknown, used or
// exhausted challenge on /v1/mfa/verify: 400 "invalid or expired MFA
// challenge", no cookie, no token.
func wantDeadChallenge(t *testing.T, what string, r *testserver.Response) {
	t.Helper()
	p := wantProblem(t, what, r, http.StatusBadRequest)
	if p.Detail != "invalid or expired MFA challenge" {
		t.Fatalf("%s: detail %q, want \"invalid or expired MFA challenge\": %s", what, p.Detail, r.Body)
	}
	if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 || strings.Contains(string(r.Body), "access_token") {
		t.Fatalf("%s: refused, yet signed in: %q %s", what, sc, r.Body)
	}
}

// wantInvalidGrant requires the RFC 6749 §5.2 invalid_grant answer of the
// token endpoint: error and error_description, never cached, no tokens.
func wantInvalidGrant(t *testing.T, what string, r *testserver.Response) map[string]any {
	t.Helper()
	wantOAuthError(t, what, r, http.StatusBadRequest, "invalid_grant")
	m := r.JSON(t)
	if d, _ := m["error_description"].(string); d == "" {
		t.Fatalf("%s: no error_description: %s", what, r.Body)
	}
	if _, ok := m["access_token"]; ok {
		t.Fatalf("%s: an error with an access token: %s", what, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Fatalf("%s: Cache-Control %q, want no-store", what, cc)
	}
	return m
}

// wantTokens requires a 200 token response and returns the access and
// refresh tokens.
func wantTokens(t *testing.T, what string, r *testserver.Response) (access, refresh string) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: %s, want 200 with tokens", what, r)
	}
	m := r.JSON(t)
	access = str(t, m, "access_token")
	refresh, _ = m["refresh_token"].(string)
	return access, refresh
}

// wantRefused401 requires a 401 problem with a Bearer challenge naming
// the credential invalid.
func wantRefused401(t *testing.T, what string, r *testserver.Response) {
	t.Helper()
	wantProblem(t, what, r, http.StatusUnauthorized)
	wantChallenge(t, what, r, true)
	if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 {
		t.Fatalf("%s: set cookies %q", what, sc)
	}
}

// TestMFATokenConfusion: an mfa_token is no credential (SPEC §13): as a
// Bearer token on the API, even on the enrolment routes, or as an API key,
// it is refused with 401 — and the refusals neither use up nor count
// against the challenge. The other way round, an access token, refresh
// token or API key as mfa_token, or a token where the code goes, is
// invalid_grant; a challenge is bound to its user (another user's recovery
// code or TOTP code does not finish it) and to the scope asked for at the
// password step.
func TestMFATokenConfusion(t *testing.T) {
	g := start(t, nil)
	u := g.mfaUser(t, "confuse")
	tok := g.grantChallenge(t, u.Email, "")

	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/me", nil},
		{http.MethodPatch, "/v1/me", map[string]string{"name": "mallory"}},
		{http.MethodDelete, "/v1/me", nil},
		{http.MethodPost, "/v1/api-keys", map[string]any{"name": "k", "scopes": []string{"read"}}},
		{http.MethodGet, "/v1/api-keys", nil},
		{http.MethodGet, "/v1/sessions", nil},
		{http.MethodGet, "/v1/mfa", nil},
		{http.MethodPost, "/v1/mfa/step-up", map[string]string{"password": password}},
		{http.MethodPost, "/v1/mfa/recovery-codes", nil},
		{http.MethodDelete, "/v1/mfa/totp", nil},
		// The enrolment routes take an enrolment-only mfa_token, not this one.
		{http.MethodPost, "/v1/mfa/totp", nil},
		{http.MethodPost, "/v1/mfa/totp/confirm", map[string]string{"enrollment_id": "x", "code": "123456"}},
		{http.MethodPost, "/v1/passkeys/register/begin", nil},
	} {
		wantRefused401(t, "Bearer <mfa_token> on "+c.method+" "+c.path, g.send(t, c.method, c.path, c.body, bearer(tok)))
	}
	wantRefused401(t, "X-API-Key: <mfa_token> on GET /v1/me", g.get(t, "/v1/me", apiKey(tok)))
	wantInvalidGrant(t, "the mfa_token as a refresh token", g.send(t, http.MethodPost, "/oauth2/token",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}))
	if r := g.send(t, http.MethodPost, "/oauth2/introspect", url.Values{"token": {tok}}, bearer(g.root.Access)); r.Status != http.StatusOK || jsonOf(r)["active"] != false {
		t.Fatalf("introspection of an mfa_token: %s, want 200 {\"active\": false}", r)
	}

	// None of that counted against the challenge: the first wrong code
	// leaves 4 of 5, and the right one finishes it.
	w := wantInvalidGrant(t, "mfa grant with a wrong code", g.mfaGrant(t, tok, "otp", wrongCode(u.secret)))
	if n, _ := w["attempts_remaining"].(float64); n != 4 {
		t.Fatalf("the first wrong code after the bearer misuse: attempts_remaining %v, want 4 (a refused bearer must not count): %v", w["attempts_remaining"], w)
	}
	access, refresh := wantTokens(t, "mfa grant with the right code", g.mfaGrant(t, tok, "otp", u.code(t)))
	if acr := claims(t, access)["acr"]; acr != "aal2" {
		t.Fatalf("access token of the mfa grant: acr %v, want aal2", acr)
	}
	if refresh == "" {
		t.Fatal("mfa grant: no refresh token")
	}
	wantInvalidGrant(t, "the used mfa_token again, with a recovery code", g.mfaGrant(t, tok, "recovery_code", u.recovery[len(u.recovery)-1]))
	_, key := g.createKey(t, &account{Email: u.Email, Access: access}, "read")

	// Other credentials as the mfa_token.
	for name, v := range map[string]string{
		"an access token":            access,
		"a refresh token":            refresh,
		"an API key":                 key,
		"ghm_ + an access token":     "ghm_" + access,
		"ghm_ + a refresh token":     "ghm_" + refresh,
		"an unknown ghm_ token":      "ghm_" + strings.Repeat("A", 43),
		"the mfa_token without ghm_": strings.TrimPrefix(tok, "ghm_"),
	} {
		m := wantInvalidGrant(t, name+" as mfa_token", g.mfaGrant(t, v, "otp", totpCode(u.secret, stepNow())))
		if m["error_description"] != "invalid or expired MFA challenge" {
			t.Errorf("%s as mfa_token: error_description %v, want \"invalid or expired MFA challenge\"", name, m["error_description"])
		}
		r := g.verify(t, v, "code", totpCode(u.secret, stepNow()))
		if len(v) > 128 { // longer than any mfa_token: refused by the schema
			wantProblem(t, name+" as mfa_token on /v1/mfa/verify", r, http.StatusUnprocessableEntity)
			continue
		}
		wantDeadChallenge(t, name+" as mfa_token on /v1/mfa/verify", r)
	}

	// Tokens where the code goes: wrong codes, counted.
	tok2 := g.grantChallenge(t, u.Email, "")
	for i, c := range [][]string{{"otp", refresh}, {"otp", access[:6]}, {"recovery_code", refresh}} {
		m := wantInvalidGrant(t, fmt.Sprintf("a token as %s", c[0]), g.mfaGrant(t, tok2, c...))
		if n, _ := m["attempts_remaining"].(float64); int(n) != 4-i {
			t.Fatalf("a token as %s: attempts_remaining %v, want %d", c[0], m["attempts_remaining"], 4-i)
		}
	}
	// Another user's factors do not finish this user's challenge, and are
	// not used up by the attempt.
	other := g.mfaUser(t, "confuse")
	otherCode := other.recoveryCode(t)
	wantInvalidGrant(t, "another user's recovery code", g.mfaGrant(t, tok2, "recovery_code", otherCode))
	if !slices.Contains(u.recovery, otherCode) { // (codes are random: a clash would make this meaningless)
		wantTokens(t, "the other user's recovery code for its own challenge", g.mfaGrant(t, g.grantChallenge(t, other.Email, ""), "recovery_code", otherCode))
	}
	wantInvalidGrant(t, "another user's TOTP code", g.mfaGrant(t, tok2, "otp", other.code(t)))
	wantDeadChallenge(t, "the challenge after five wrong codes", g.verify(t, tok2, "recovery_code", u.recoveryCode(t)))

	// The challenge keeps the scope of the password step: a scope sent
	// with the mfa grant does not widen it.
	tok3 := g.grantChallenge(t, u.Email, "read")
	r3 := g.mfaGrant(t, tok3, "recovery_code", u.recoveryCode(t), "scope", "read write")
	a3, _ := wantTokens(t, "mfa grant of a challenge for scope read", r3)
	if sc, csc := jsonOf(r3)["scope"], fmt.Sprint(claims(t, a3)["scope"]); sc != "read" || csc != "read" {
		t.Fatalf("mfa grant with scope=\"read write\" of a challenge for read: scope %v, token's scope claim %q, want read", sc, csc)
	}
}

// startRequired runs a server whose role admin requires a second factor,
// with an administrator made by `gatehouse user create` and no factor (so
// not signed in: its sign-in can only enrol).
func startRequired(t *testing.T) (*gh, string) {
	t.Helper()
	email := newEmail("required")
	s := testserver.Start(t, testserver.Options{Localhost: true,
		Env: testserver.Env(t, baseYAML, map[string]string{"GATEHOUSE_SECRET": rootSecret, "GATEHOUSE_MFA_REQUIRED_ROLES": "admin"}),
		Before: func(s *testserver.Server) {
			s.Command(t, password+"\n", "user", "create", "--email", email, "--role", "admin", "--password-stdin")
		}})
	return &gh{Server: s}, email
}

// TestMFAEnrolmentTokenOnlyEnrols: the mfa_token of an admin who must have
// a second factor and has none works as Bearer on POST /v1/mfa/totp and
// /v1/mfa/totp/confirm only — not on the account, its API keys, sessions,
// step-up or factor management — cannot be finished as a challenge, and
// stops working once the enrolment finished the sign-in.
func TestMFAEnrolmentTokenOnlyEnrols(t *testing.T) {
	g, admin := startRequired(t)
	plain := g.register(t, newEmail("required"))
	g.grant(t, plain, "") // the control: a user without the role is not challenged

	r := g.send(t, http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {admin}, "password": {password}})
	if r.Status != http.StatusForbidden || reason(r) != "mfa_enrollment_required" {
		t.Fatalf("password grant of an admin without a factor: %s, want 403 code mfa_enrollment_required", r)
	}
	tok := str(t, r.JSON(t), "mfa_token")
	if m, ok := r.JSON(t)["mfa_methods"].([]any); !ok || len(m) != 0 {
		t.Fatalf("enrolment challenge: mfa_methods %v, want []", r.JSON(t)["mfa_methods"])
	}

	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/me", nil},
		{http.MethodPatch, "/v1/me", map[string]string{"name": "mallory"}},
		{http.MethodDelete, "/v1/me", map[string]string{"password": password}},
		{http.MethodDelete, "/v1/me", nil},
		{http.MethodPost, "/v1/password/change", map[string]string{"current_password": password, "new_password": "another pass phrase 123"}},
		{http.MethodPost, "/v1/api-keys", map[string]any{"name": "k", "scopes": []string{"admin"}}},
		{http.MethodGet, "/v1/api-keys", nil},
		{http.MethodGet, "/v1/sessions", nil},
		{http.MethodGet, "/v1/mfa", nil},
		{http.MethodPost, "/v1/mfa/step-up", map[string]string{"password": password}},
		{http.MethodPost, "/v1/mfa/recovery-codes", nil},
		{http.MethodDelete, "/v1/mfa/totp", nil},
		{http.MethodGet, "/v1/admin/users", nil},
		{http.MethodGet, "/v1/mfa/totp", nil}, // the enrolment route by another method
	} {
		r := g.send(t, c.method, c.path, c.body, bearer(tok))
		if c.method == http.MethodGet && c.path == "/v1/mfa/totp" {
			if r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed {
				wantRefused401(t, "Bearer <enrolment mfa_token> on GET /v1/mfa/totp (no such operation)", r)
			}
			continue
		}
		wantRefused401(t, "Bearer <enrolment mfa_token> on "+c.method+" "+c.path, r)
	}
	wantRefused401(t, "X-API-Key: <enrolment mfa_token>", g.get(t, "/v1/me", apiKey(tok)))
	// It is no challenge to finish with a code.
	wantInvalidGrant(t, "the enrolment token in the mfa grant", g.mfaGrant(t, tok, "otp", "123456"))
	wantDeadChallenge(t, "the enrolment token on /v1/mfa/verify", g.verify(t, tok, "code", "123456"))
	wantMFAProblemOrDead := g.send(t, http.MethodPost, "/v1/mfa/passkey/begin", map[string]string{"mfa_token": tok})
	if wantMFAProblemOrDead.Status < 400 || wantMFAProblemOrDead.Status >= 500 {
		t.Fatalf("POST /v1/mfa/passkey/begin with the enrolment token: %s, want a 4xx", wantMFAProblemOrDead)
	}

	// Where it does work: enrolment, which finishes the sign-in.
	b := g.send(t, http.MethodPost, "/v1/mfa/totp", nil, bearer(tok))
	if b.Status != http.StatusCreated {
		t.Fatalf("POST /v1/mfa/totp with the enrolment token: %s", b)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(str(t, b.JSON(t), "secret"), "="))
	if err != nil {
		t.Fatal(err)
	}
	c := g.send(t, http.MethodPost, "/v1/mfa/totp/confirm", map[string]string{"enrollment_id": str(t, b.JSON(t), "enrollment_id"), "code": totpCode(secret, stepNow())}, bearer(tok))
	access, _ := wantTokens(t, "POST /v1/mfa/totp/confirm with the enrolment token", c)
	if acr := claims(t, access)["acr"]; acr != "aal2" {
		t.Fatalf("token of the enrolment sign-in: acr %v, want aal2", acr)
	}
	if me := g.get(t, "/v1/me", bearer(access)); me.Status != http.StatusOK || jsonOf(me)["email"] != admin {
		t.Fatalf("GET /v1/me with the token of the enrolment: %s (the refused DELETE /v1/me must not have deleted it)", me)
	}
	// Used: the token is dead everywhere.
	wantRefused401(t, "Bearer <used enrolment mfa_token> on POST /v1/mfa/totp", g.send(t, http.MethodPost, "/v1/mfa/totp", nil, bearer(tok)))
	wantInvalidGrant(t, "the used enrolment token in the mfa grant", g.mfaGrant(t, tok, "otp", totpCode(secret, stepNow())))
}

// TestMFABruteForce: every wrong code counts, atomically, and the fifth
// destroys the challenge; malformed codes count too; replayed steps are
// refused as such; the token endpoint answers RFC 6749 errors.
func TestMFABruteForce(t *testing.T) {
	g := start(t, nil)

	t.Run("five wrong codes end the challenge", func(t *testing.T) {
		t.Parallel()
		u := g.mfaUser(t, "brute")
		tok := g.sessionChallenge(t, u.Email)
		for left := 4; left >= 0; left-- {
			wantMFAProblem(t, fmt.Sprintf("wrong code with %d left", left+1), g.verify(t, tok, "code", wrongCode(u.secret)), "mfa_invalid_code", left)
		}
		right := u.code(t)
		wantDeadChallenge(t, "the right code after five wrong ones", g.verify(t, tok, "code", right))
		wantDeadChallenge(t, "a recovery code after five wrong ones", g.verify(t, tok, "recovery_code", u.recovery[0]))
		wantInvalidGrant(t, "the exhausted challenge at the token endpoint", g.mfaGrant(t, tok, "otp", right))
		// The refused right codes were not used up: a new challenge takes
		// the first recovery code.
		r := g.verify(t, g.sessionChallenge(t, u.Email), "recovery_code", u.recoveryCode(t))
		if r.Status != http.StatusCreated {
			t.Fatalf("a new challenge with a recovery code: %s, want 201", r)
		}
	})

	t.Run("malformed codes count", func(t *testing.T) {
		t.Parallel()
		u := g.mfaUser(t, "brute")
		tok := g.sessionChallenge(t, u.Email)
		for i, c := range [][2]string{
			{"code", "12a456"},
			{"code", "1234567"},
			{"code", "12345"},
			{"recovery_code", "not a recovery code!"},
		} {
			wantMFAProblem(t, fmt.Sprintf("%s %q", c[0], c[1]), g.verify(t, tok, c[0], c[1]), "mfa_invalid_code", 4-i)
		}
		r := g.verify(t, tok, "code", u.code(t))
		if r.Status != http.StatusCreated || len(r.Header.Values("Set-Cookie")) == 0 {
			t.Fatalf("the right code with one attempt left: %s, want 201 and the cookie", r)
		}
	})

	t.Run("token endpoint", func(t *testing.T) {
		t.Parallel()
		u := g.mfaUser(t, "brute")
		tok := g.grantChallenge(t, u.Email, "")
		for left := 4; left >= 3; left-- {
			m := wantInvalidGrant(t, "mfa grant with a wrong code", g.mfaGrant(t, tok, "otp", wrongCode(u.secret)))
			if m["error_description"] != "invalid code" || m["attempts_remaining"] != float64(left) {
				t.Fatalf("mfa grant with a wrong code: %v, want error_description \"invalid code\" and attempts_remaining %d", m, left)
			}
		}
		wantInvalidGrant(t, "mfa grant with a malformed code", g.mfaGrant(t, tok, "otp", "12a456"))
		wantInvalidGrant(t, "mfa grant with a malformed recovery code", g.mfaGrant(t, tok, "recovery_code", "x"))
		m := wantInvalidGrant(t, "mfa grant with the fifth wrong code", g.mfaGrant(t, tok, "otp", wrongCode(u.secret)))
		if m["attempts_remaining"] != float64(0) {
			t.Fatalf("the fifth wrong code: %v, want attempts_remaining 0", m)
		}
		m = wantInvalidGrant(t, "the right code after five wrong ones", g.mfaGrant(t, tok, "otp", u.code(t)))
		if m["error_description"] != "invalid or expired MFA challenge" {
			t.Fatalf("the right code after five wrong ones: %v", m)
		}
		// Missing pieces are invalid_request, not a guess.
		wantOAuthError(t, "mfa grant without a code", g.mfaGrant(t, g.grantChallenge(t, u.Email, "")), http.StatusBadRequest, "invalid_request")
		wantOAuthError(t, "mfa grant without mfa_token", g.send(t, http.MethodPost, "/oauth2/token", url.Values{"grant_type": {mfaGrantType}, "otp": {"123456"}}), http.StatusBadRequest, "invalid_request")
	})

	t.Run("replayed code", func(t *testing.T) {
		t.Parallel()
		u := g.mfaUser(t, "replay")
		// The confirmation used its step: it cannot sign in.
		confirmed := totpCode(u.secret, u.lastStep)
		tok := g.sessionChallenge(t, u.Email)
		wantMFAProblem(t, "the code that confirmed the enrolment", g.verify(t, tok, "code", confirmed), "mfa_code_reused", 4)
		code := u.code(t)
		if r := g.verify(t, tok, "code", code); r.Status != http.StatusCreated {
			t.Fatalf("the next code: %s, want 201", r)
		}
		// The same step on a second challenge: refused as a replay, on both
		// ways of finishing it, and counted.
		tok2 := g.grantChallenge(t, u.Email, "")
		wantMFAProblem(t, "a used code on a second challenge", g.verify(t, tok2, "code", code), "mfa_code_reused", 4)
		m := wantInvalidGrant(t, "a used code in the mfa grant", g.mfaGrant(t, tok2, "otp", code))
		if m["code"] != "mfa_code_reused" || m["attempts_remaining"] != float64(3) {
			t.Fatalf("a used code in the mfa grant: %v, want code mfa_code_reused and attempts_remaining 3", m)
		}
		// The step-up takes no used step either.
		a, _ := wantTokens(t, "the challenge with a recovery code", g.mfaGrant(t, tok2, "recovery_code", u.recoveryCode(t)))
		wantMFAProblem(t, "a used code on step-up", g.send(t, http.MethodPost, "/v1/mfa/step-up", map[string]string{"code": code}, bearer(a)), "mfa_code_reused", -1)
		// A used recovery code is refused as a wrong one.
		wantMFAProblem(t, "a used recovery code", g.verify(t, g.sessionChallenge(t, u.Email), "recovery_code", u.recovery[0]), "mfa_invalid_code", 4)
		events := g.get(t, "/v1/admin/audit?"+url.Values{"user_id": {u.ID}, "type": {"mfa.code.replayed"}}.Encode(), bearer(g.root.Access))
		var out struct {
			Events []map[string]any `json:"events"`
		}
		if events.Status != http.StatusOK || json.Unmarshal(events.Body, &out) != nil || len(out.Events) < 3 {
			t.Fatalf("audit mfa.code.replayed of the user: %s, want at least 3 events", events)
		}
	})

	t.Run("concurrent wrong codes", func(t *testing.T) {
		t.Parallel()
		u := g.mfaUser(t, "race")
		tok := g.sessionChallenge(t, u.Email)
		const n = 8 // under the account lockout (10)
		res := make([]*testserver.Response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = g.verify(t, tok, "code", fmt.Sprintf("%06d", (int64(i)*111111+7)%1000000))
			}()
		}
		wg.Wait()
		var left []int
		for i, r := range res {
			if r.Status == http.StatusCreated {
				if totpCode(u.secret, stepNow()) == fmt.Sprintf("%06d", (int64(i)*111111+7)%1000000) {
					t.Skip("a guess happened to be the code")
				}
				t.Fatalf("a wrong code signed in: %s", r)
			}
			p := wantProblem(t, "concurrent wrong code", r, http.StatusBadRequest)
			switch {
			case p.Code == "mfa_invalid_code":
				left = append(left, int(jsonOf(r)["attempts_remaining"].(float64)))
			case p.Detail != "invalid or expired MFA challenge":
				t.Fatalf("concurrent wrong code: %s", r.Body)
			}
		}
		slices.Sort(left)
		// Each of the first five attempts took its own count.
		counted := slices.Compact(slices.Clone(left))
		if len(left) < 5 || !slices.Equal(counted, []int{0, 1, 2, 3, 4}) {
			t.Fatalf("attempts_remaining of %d concurrent wrong codes: %v, want each of 4 3 2 1 once and 0", n, left)
		}
		for _, v := range []int{1, 2, 3, 4} {
			if c := len(slices.DeleteFunc(slices.Clone(left), func(x int) bool { return x != v })); c != 1 {
				t.Fatalf("attempts_remaining %d given %d times (%v): two wrong codes took the same count", v, c, left)
			}
		}
		wantDeadChallenge(t, "the right code after the concurrent wrong ones", g.verify(t, tok, "code", u.code(t)))
	})
}

// TestMFAStepUp: with GATEHOUSE_STEP_UP_MAX_AGE=2s, sensitive actions of a
// token signed in 2.2 s ago answer the RFC 9470 challenge; POST
// /v1/mfa/step-up with a second factor (TOTP user) or the password (user
// without one) gives a fresh token with which they pass; wrong proofs are
// 4xx and give nothing. (2 s, not 1: auth_time is whole seconds, so a
// token stepped up at 12.9 s is already 1 s old at 13.0.)
func TestMFAStepUp(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_STEP_UP_MAX_AGE": "2s", "GATEHOUSE_TOTP_SKEW": "2"})
	u := g.mfaUser(t, "stepup")
	u.skew = 2
	access, _ := wantTokens(t, "the mfa grant", g.mfaGrant(t, g.grantChallenge(t, u.Email, ""), "otp", u.code(t)))
	plain := g.user(t, "stepup") // token and cookie, no MFA
	time.Sleep(2200 * time.Millisecond)

	wantStepUp := func(what string, r *testserver.Response) {
		t.Helper()
		p := wantProblem(t, what, r, http.StatusUnauthorized)
		if p.Code != "step_up_required" {
			t.Fatalf("%s: code %q, want step_up_required: %s", what, p.Code, r.Body)
		}
		h := r.Header.Get("WWW-Authenticate")
		for _, want := range []string{"Bearer", `error="insufficient_user_authentication"`, `acr_values="aal2"`, "max_age=2"} {
			if !strings.Contains(h, want) {
				t.Fatalf("%s: WWW-Authenticate %q lacks %s (RFC 9470)", what, h, want)
			}
		}
		if regexp.MustCompile(`max_age=2\d`).MatchString(h) {
			t.Fatalf("%s: WWW-Authenticate %q: max_age is not 2", what, h)
		}
	}
	newKey := func(tok string) *testserver.Response {
		return g.send(t, http.MethodPost, "/v1/api-keys", map[string]any{"name": "after step-up", "scopes": []string{"read"}}, bearer(tok))
	}

	// The TOTP user.
	wantStepUp("POST /v1/api-keys with an aal2 token 2.2 s old", newKey(access))
	wantStepUp("DELETE /v1/me with an aal2 token 2.2 s old", g.send(t, http.MethodDelete, "/v1/me", nil, bearer(access)))
	wantStepUp("DELETE /v1/me with the password, 2.2 s old", g.send(t, http.MethodDelete, "/v1/me", map[string]string{"password": password}, bearer(access)))
	if r := g.get(t, "/v1/me", bearer(access)); r.Status != http.StatusOK {
		t.Fatalf("GET /v1/me after refused deletions: %s", r)
	}
	stepUp := func(tok string, body any) *testserver.Response {
		return g.send(t, http.MethodPost, "/v1/mfa/step-up", body, bearer(tok))
	}
	for name, body := range map[string]any{
		"only the password":  map[string]string{"password": password},
		"nothing":            map[string]string{},
		"a wrong code":       map[string]string{"code": wrongCode(u.secret)},
		"a malformed code":   map[string]string{"code": "12a456"},
		"a wrong password":   map[string]string{"password": "not the password", "code": wrongCode(u.secret)},
		"a fake recovery":    map[string]string{"recovery_code": "aaaa-bbbb-cccc-dddd"},
		"the confirmed code": map[string]string{"code": totpCode(u.secret, u.lastStep)},
	} {
		r := stepUp(access, body)
		if r.Status < 400 || r.Status >= 500 || strings.Contains(string(r.Body), "access_token") {
			t.Fatalf("step-up of a TOTP user with %s: %s, want a 4xx without a token", name, r)
		}
	}
	before := time.Now().Unix()
	code := u.code(t)
	r := stepUp(access, map[string]string{"code": code})
	fresh, _ := wantTokens(t, "POST /v1/mfa/step-up {code} (bearer)", r)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("step-up token response: Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
	}
	c := claims(t, fresh)
	if at, _ := c["auth_time"].(float64); c["acr"] != "aal2" || int64(at) < before-1 {
		t.Fatalf("the stepped-up token: acr %v auth_time %v, want aal2 and at least %d", c["acr"], c["auth_time"], before-1)
	}
	if r := newKey(fresh); r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/api-keys right after the step-up: %s", r)
	}
	wantMFAProblem(t, "the step-up code again", stepUp(access, map[string]string{"code": code}), "mfa_code_reused", -1)
	fresh2, _ := wantTokens(t, "POST /v1/mfa/step-up {recovery_code}", stepUp(access, map[string]string{"recovery_code": u.recoveryCode(t)}))
	if r := g.send(t, http.MethodDelete, "/v1/me", nil, bearer(fresh2)); r.Status != http.StatusNoContent {
		t.Fatalf("DELETE /v1/me right after the step-up: %s", r)
	}
	if r := g.get(t, "/v1/me", bearer(fresh2)); r.Status != http.StatusUnauthorized {
		t.Fatalf("GET /v1/me of the deleted account: %s", r)
	}

	// The user without MFA: the password is the step-up.
	wantStepUp("POST /v1/api-keys (no MFA, token 2.2 s old)", newKey(plain.Access))
	wantStepUp("POST /v1/api-keys (no MFA, cookie 2.2 s old)", g.send(t, http.MethodPost, "/v1/api-keys",
		map[string]any{"name": "k", "scopes": []string{"read"}}, g.cookie(plain), g.sameOrigin()))
	for name, body := range map[string]any{
		"a wrong password": map[string]string{"password": "not the password"},
		"nothing":          map[string]string{},
		"a code (no TOTP)": map[string]string{"code": "123456"},
		"a long password":  map[string]string{"password": strings.Repeat("x", 1000)},
	} {
		r := stepUp(plain.Access, body)
		if r.Status < 400 || r.Status >= 500 || strings.Contains(string(r.Body), "access_token") {
			t.Fatalf("step-up without MFA with %s: %s, want a 4xx without a token", name, r)
		}
	}
	before = time.Now().Unix()
	pf, _ := wantTokens(t, "POST /v1/mfa/step-up {password} (bearer, no MFA)", stepUp(plain.Access, map[string]string{"password": password}))
	if at, _ := claims(t, pf)["auth_time"].(float64); int64(at) < before-1 {
		t.Fatalf("the password step-up token: auth_time %v, want at least %d", at, before-1)
	}
	if r := newKey(pf); r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/api-keys right after the password step-up: %s", r)
	}
	if r := g.send(t, http.MethodPost, "/v1/mfa/step-up", map[string]string{"password": password}, g.cookie(plain), g.sameOrigin()); r.Status != http.StatusNoContent {
		t.Fatalf("POST /v1/mfa/step-up {password} with the cookie: %s, want 204", r)
	}
	if r := g.send(t, http.MethodPost, "/v1/api-keys", map[string]any{"name": "k", "scopes": []string{"read"}}, g.cookie(plain), g.sameOrigin()); r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/api-keys with the stepped-up cookie: %s", r)
	}
}

// metric reads one sample of the Prometheus text at /metrics.
func metric(body, name string, labels map[string]string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, k+`="`+v+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		return f, err == nil
	}
	return 0, false
}

// TestMFASecretsNeverLeak: the TOTP secret, the recovery codes and the
// mfa_tokens appear in no server log, and not in GET /v1/mfa, the audit log
// or /metrics, which count challenges by method and result.
func TestMFASecretsNeverLeak(t *testing.T) {
	g := start(t, nil)
	u := g.mfaUser(t, "leak")
	tok := g.grantChallenge(t, u.Email, "")
	wantRefused401(t, "Bearer <mfa_token>", g.get(t, "/v1/me", bearer(tok))) // a misuse that might be logged
	wantInvalidGrant(t, "a wrong code", g.mfaGrant(t, tok, "otp", wrongCode(u.secret)))
	access, _ := wantTokens(t, "the right code", g.mfaGrant(t, tok, "otp", u.code(t)))
	tok2 := g.sessionChallenge(t, u.Email)
	wantMFAProblem(t, "a wrong recovery code", g.verify(t, tok2, "recovery_code", "zzzz-zzzz-zzzz-zzzz"), "mfa_invalid_code", 4)
	if r := g.verify(t, tok2, "recovery_code", u.recoveryCode(t)); r.Status != http.StatusCreated {
		t.Fatalf("a recovery code: %s", r)
	}

	secrets := map[string]string{"the mfa_token": tok, "the second mfa_token": tok2,
		"the TOTP secret": u.secretB32, "the TOTP secret (lower case)": strings.ToLower(u.secretB32),
		"the TOTP secret (hex)": fmt.Sprintf("%x", u.secret), "the TOTP secret (base64)": base64.StdEncoding.EncodeToString(u.secret)}
	for i, c := range u.recovery {
		secrets[fmt.Sprintf("recovery code %d", i)] = c
		secrets[fmt.Sprintf("recovery code %d without hyphens", i)] = strings.NewReplacer("-", "", " ", "").Replace(c)
	}
	check := func(where, text string) {
		t.Helper()
		for name, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds %s (%q)", where, name, s)
			}
		}
	}

	st := g.get(t, "/v1/mfa", bearer(access))
	if st.Status != http.StatusOK {
		t.Fatalf("GET /v1/mfa: %s", st)
	}
	var status struct {
		TOTP *struct {
			CreatedAt string `json:"created_at"`
		} `json:"totp"`
		RecoveryCodes *struct{ Total, Remaining int } `json:"recovery_codes"`
	}
	if err := json.Unmarshal(st.Body, &status); err != nil || status.TOTP == nil || status.RecoveryCodes == nil ||
		status.RecoveryCodes.Total != len(u.recovery) || status.RecoveryCodes.Remaining != len(u.recovery)-1 {
		t.Fatalf("GET /v1/mfa: %s, want totp and recovery_codes {total %d, remaining %d}", st.Body, len(u.recovery), len(u.recovery)-1)
	}
	check("GET /v1/mfa", string(st.Body))

	audit := g.get(t, "/v1/admin/audit?limit=200&user_id="+u.ID, bearer(g.root.Access))
	for _, want := range []string{"mfa.totp.enrolled", "mfa.recovery_codes.generated", "mfa.challenge.failed", "mfa.challenge.succeeded", "mfa.recovery_code.used"} {
		if !strings.Contains(string(audit.Body), `"`+want+`"`) {
			t.Errorf("audit of the user lacks %s: %s", want, audit)
		}
	}
	check("GET /v1/admin/audit", string(audit.Body))

	m := g.get(t, "/metrics")
	if m.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %s", m)
	}
	check("/metrics", string(m.Body))
	for _, c := range [][2]string{{"totp", "failed"}, {"totp", "succeeded"}, {"recovery_code", "failed"}, {"recovery_code", "succeeded"}} {
		if v, ok := metric(string(m.Body), "gatehouse_mfa_challenges_total", map[string]string{"method": c[0], "result": c[1]}); !ok || v < 1 {
			t.Errorf("/metrics: gatehouse_mfa_challenges_total{method=%q,result=%q} = %v (found %v), want at least 1", c[0], c[1], v, ok)
		}
	}

	log := g.Log()
	if !strings.Contains(log, "/v1/mfa/totp/confirm") || !strings.Contains(log, "/v1/mfa/verify") {
		t.Fatalf("the server log does not show the requests: this test reads the wrong log\n%s", log)
	}
	check("the server log", log)
}

// TestMFAWrongPasswordNotEnumerable: a wrong password for an account with
// TOTP is answered exactly like one for an account that does not exist
// (and one without TOTP): never mfa_required, no mfa_token.
func TestMFAWrongPasswordNotEnumerable(t *testing.T) {
	g := start(t, nil)
	u := g.mfaUser(t, "enum")
	plain := g.register(t, newEmail("enum"))
	type answer struct {
		status      int
		ct, cc, www string
		body        string
	}
	ask := func(email string) (grant, session answer) {
		r := g.send(t, http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {"wrong " + password}})
		grant = answer{r.Status, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"), r.Header.Get("WWW-Authenticate"), string(r.Body)}
		r = g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": email, "password": "wrong " + password}, g.sameOrigin())
		session = answer{r.Status, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"), r.Header.Get("WWW-Authenticate"), string(r.Body)}
		return grant, session
	}
	gu, su := ask(u.Email)
	gn, sn := ask(newEmail("nobody"))
	gp, sp := ask(plain.Email)
	if gu.status != http.StatusBadRequest || !strings.Contains(gu.body, `"invalid_grant"`) {
		t.Fatalf("password grant, TOTP user, wrong password: %+v, want 400 invalid_grant", gu)
	}
	for _, a := range []answer{gu, su} {
		if strings.Contains(a.body, "mfa") || strings.Contains(a.body, "ghm_") {
			t.Fatalf("a wrong password for a TOTP user mentions the second factor: %+v", a)
		}
	}
	if gu != gn || gu != gp {
		t.Fatalf("password grant with a wrong password:\nTOTP user: %+v\nno user:   %+v\nno TOTP:   %+v\nwant the same answer", gu, gn, gp)
	}
	if su != sn || su != sp {
		t.Fatalf("POST /v1/sessions with a wrong password:\nTOTP user: %+v\nno user:   %+v\nno TOTP:   %+v\nwant the same answer", su, sn, sp)
	}
}

// TestMFAOpenAPI: /openapi.json lists every route of SPEC §13.
func TestMFAOpenAPI(t *testing.T) {
	g := start(t, nil)
	have := map[string]operation{}
	for _, op := range operations(t, g) {
		have[op.method+" "+op.path] = op
	}
	for _, c := range []struct {
		route    string
		security bool
	}{
		{"GET /v1/mfa", true},
		{"POST /v1/mfa/totp", true},
		{"DELETE /v1/mfa/totp", true},
		{"POST /v1/mfa/totp/confirm", true},
		{"POST /v1/mfa/recovery-codes", true},
		{"POST /v1/mfa/verify", false},
		{"POST /v1/mfa/passkey/begin", false},
		{"POST /v1/mfa/passkey/finish", false},
		{"POST /v1/mfa/step-up", true},
		{"DELETE /v1/admin/users/{id}/mfa", true},
	} {
		op, ok := have[c.route]
		if !ok {
			t.Errorf("/openapi.json lacks %s", c.route)
			continue
		}
		if c.security && !op.security {
			t.Errorf("/openapi.json: %s names no security requirement", c.route)
		}
	}
	for _, route := range []string{"POST /v1/mfa/totp/confirm", "POST /v1/mfa/verify", "POST /v1/mfa/step-up"} {
		if op, ok := have[route]; ok && !op.body {
			t.Errorf("/openapi.json: %s documents no request body", route)
		}
	}
	md := g.get(t, "/.well-known/oauth-authorization-server")
	if !strings.Contains(string(md.Body), mfaGrantType) {
		t.Errorf("grant_types_supported of the metadata lacks %s: %s", mfaGrantType, md.Body)
	}
}

// htmlPage sends a request like do, but keeps a whole HTML page.
func (g *gh) htmlPage(t *testing.T, method, path string, form url.Values, hdr ...[]string) (*testserver.Response, []*http.Cookie) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, g.Direct+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	h := flat(hdr)
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Add(h[i], h[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &testserver.Response{Status: res.StatusCode, Header: res.Header, Body: b}, res.Cookies()
}

func mfaCookieHdr(v string) []string { return []string{"Cookie", "gatehouse_mfa=" + v} }

func findCookie(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// labelledInput finds an input whose attributes match attr and a <label
// for> naming its id.
func labelledInput(body, attr string) bool {
	for _, in := range regexp.MustCompile(`<input\b[^>]*>`).FindAllString(body, -1) {
		if !strings.Contains(in, attr) {
			continue
		}
		id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(in)
		if id != nil && strings.Contains(body, `<label for="`+id[1]+`"`) {
			return true
		}
	}
	return false
}

// TestMFAHostedSecondStep: the hosted pages work without JavaScript: the
// password step of /login sends a TOTP user to /login/2fa with the
// challenge in an HttpOnly, SameSite=Lax cookie and no session; the page
// has a labelled one-time-code input and a recovery-code form; a recovery
// code signs in; without the cookie it is back to /login; a cross-site
// submission is refused and uses nothing up; return_to stays on the site.
func TestMFAHostedSecondStep(t *testing.T) {
	g := start(t, nil)
	u := g.mfaUser(t, "hosted")

	r, cookies := g.htmlPage(t, http.MethodPost, "/login", url.Values{"email": {u.Email}, "password": {password}}, g.sameOrigin())
	if r.Status != http.StatusSeeOther {
		t.Fatalf("POST /login of a TOTP user: %d %s, want 303", r.Status, r.Body)
	}
	if loc, _ := url.Parse(r.Header.Get("Location")); loc == nil || loc.Path != "/login/2fa" {
		t.Fatalf("POST /login of a TOTP user: Location %q, want /login/2fa", r.Header.Get("Location"))
	}
	ck := findCookie(cookies, "gatehouse_mfa")
	if ck == nil || !strings.HasPrefix(ck.Value, "ghm_") || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge <= 0 || ck.MaxAge > 300 {
		t.Fatalf("POST /login: the challenge cookie %+v, want gatehouse_mfa=ghm_… HttpOnly SameSite=Lax Max-Age ≤ 300 (Set-Cookie %q)", ck, r.Header.Values("Set-Cookie"))
	}
	if s := findCookie(cookies, g.cookieName); s != nil && s.Value != "" {
		t.Fatalf("POST /login set the session cookie before the second step: %q", r.Header.Values("Set-Cookie"))
	}
	tok := ck.Value

	p, _ := g.htmlPage(t, http.MethodGet, "/login/2fa", nil, mfaCookieHdr(tok))
	body := string(p.Body)
	if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /login/2fa: %d %s", p.Status, p.Header.Get("Content-Type"))
	}
	if !labelledInput(body, `autocomplete="one-time-code"`) {
		t.Fatalf("GET /login/2fa: no <input autocomplete=\"one-time-code\"> with a <label for> naming it:\n%s", body)
	}
	link := regexp.MustCompile(`<a href="(/login/2fa\?[^"]*recovery[^"]*)"`).FindStringSubmatch(body)
	if link == nil {
		t.Fatalf("GET /login/2fa: no link to the recovery-code form:\n%s", body)
	}
	if strings.Contains(strings.ToLower(body), "<script") && !strings.Contains(body, "passkey") {
		t.Errorf("GET /login/2fa has a script, and no passkey button to need it")
	}
	rp, _ := g.htmlPage(t, http.MethodGet, strings.ReplaceAll(link[1], "&amp;", "&"), nil, mfaCookieHdr(tok))
	if rp.Status != http.StatusOK || !labelledInput(string(rp.Body), `name="recovery_code"`) {
		t.Fatalf("GET %s: %d, want a form with a labelled recovery_code input:\n%s", link[1], rp.Status, rp.Body)
	}

	// Without the challenge cookie: back to /login.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var form url.Values
		if method == http.MethodPost {
			form = url.Values{"code": {"123456"}}
		}
		r, _ := g.htmlPage(t, method, "/login/2fa", form, g.sameOrigin())
		if loc, _ := url.Parse(r.Header.Get("Location")); r.Status != http.StatusSeeOther || loc == nil || loc.Path != "/login" {
			t.Fatalf("%s /login/2fa without the cookie: %d Location %q, want 303 to /login", method, r.Status, r.Header.Get("Location"))
		}
	}

	// A cross-site submission with the browser's cookie and a good code is
	// refused and uses neither the challenge nor the code.
	code := u.recoveryCode(t)
	form := url.Values{"recovery_code": {code}, "return_to": {"https://evil.example/steal"}}
	x, xc := g.htmlPage(t, http.MethodPost, "/login/2fa", form, mfaCookieHdr(tok), crossSite)
	if x.Status != http.StatusForbidden || len(xc) > 0 {
		t.Fatalf("cross-site POST /login/2fa: %d, cookies %q, want 403 and none", x.Status, x.Header.Values("Set-Cookie"))
	}
	ok, oc := g.htmlPage(t, http.MethodPost, "/login/2fa", form, mfaCookieHdr(tok), g.sameOrigin())
	if ok.Status != http.StatusSeeOther {
		t.Fatalf("POST /login/2fa with a recovery code after the cross-site attempt: %d %s, want 303", ok.Status, ok.Body)
	}
	if loc := ok.Header.Get("Location"); strings.Contains(loc, "evil.example") {
		t.Fatalf("POST /login/2fa with return_to on another site: Location %q", loc)
	}
	sess := findCookie(oc, g.cookieName)
	if sess == nil || sess.Value == "" {
		t.Fatalf("POST /login/2fa: no session cookie: %q", ok.Header.Values("Set-Cookie"))
	}
	if gone := findCookie(oc, "gatehouse_mfa"); gone == nil || gone.MaxAge >= 0 {
		t.Errorf("POST /login/2fa: the challenge cookie is not deleted: %q", ok.Header.Values("Set-Cookie"))
	}
	if me := g.get(t, "/v1/me", []string{"Cookie", g.cookieName + "=" + sess.Value}); me.Status != http.StatusOK || jsonOf(me)["email"] != u.Email {
		t.Fatalf("GET /v1/me with the session of /login/2fa: %s", me)
	}
	// The challenge is used: the page sends the browser to sign in again.
	again, againCookies := g.htmlPage(t, http.MethodPost, "/login/2fa", url.Values{"code": {u.code(t)}}, mfaCookieHdr(tok), g.sameOrigin())
	if again.Status != http.StatusBadRequest || findCookie(againCookies, g.cookieName) != nil {
		t.Fatalf("POST /login/2fa with the used challenge: %d %q, want 400 and no session", again.Status, again.Header.Values("Set-Cookie"))
	}
}

// TestMFAHostedPageTokenChallenge: the gatehouse_mfa cookie is only a
// carrier; a challenge that began at the token endpoint (password grant)
// put there — by a client, or by an attacker who planted the cookie —
// must get a clean answer from POST /login/2fa, never a server error, and
// must not be used up without an answer.
func TestMFAHostedPageTokenChallenge(t *testing.T) {
	g := start(t, nil)
	u := g.mfaUser(t, "hostedtok")
	tok := g.grantChallenge(t, u.Email, "")
	r, cookies := g.htmlPage(t, http.MethodPost, "/login/2fa", url.Values{"code": {u.code(t)}}, mfaCookieHdr(tok), g.sameOrigin())
	signedIn := r.Status == http.StatusSeeOther && findCookie(cookies, g.cookieName) != nil && findCookie(cookies, g.cookieName).Value != ""
	if !signedIn {
		// Refused: then the challenge was not used up.
		if f := g.mfaGrant(t, tok, "recovery_code", u.recoveryCode(t)); f.Status != http.StatusOK {
			t.Errorf("after POST /login/2fa answered %d without a session, the challenge is gone: the mfa grant with a recovery code answers %s", r.Status, f)
		}
	}
	if r.Status >= 500 || (r.Status == http.StatusSeeOther && !signedIn) {
		t.Fatalf("POST /login/2fa with a password-grant challenge in the gatehouse_mfa cookie and the right code: %d %s (Set-Cookie %q), want a 303 with a session or a 4xx", r.Status, r.Body, r.Header.Values("Set-Cookie"))
	}
}

// TestMFAVerifyLoginCSRF: finishing a sign-in sets the session cookie, so
// like POST /v1/sessions (login CSRF, SPEC §4) POST /v1/mfa/verify must be
// refused cross-site even without a cookie — or another site signs the
// browser into the attacker's account with the attacker's own challenge
// and code, sent as an HTML form.
func TestMFAVerifyLoginCSRF(t *testing.T) {
	g := start(t, nil)
	attacker := g.mfaUser(t, "logincsrf")
	tok := g.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": attacker.Email, "password": password}) // no browser headers: the attacker's own script
	if reason(tok) != "mfa_required" {
		t.Fatalf("POST /v1/sessions of the attacker: %s", tok)
	}
	form := url.Values{"mfa_token": {str(t, tok.JSON(t), "mfa_token")}, "code": {attacker.code(t)}}
	r := g.send(t, http.MethodPost, "/v1/mfa/verify", form, crossSite)
	if r.Status != http.StatusForbidden || len(r.Header.Values("Set-Cookie")) > 0 {
		t.Fatalf("cross-site form POST /v1/mfa/verify with the attacker's challenge and code: %s, Set-Cookie %q; want 403 and no cookie (login CSRF)", r, r.Header.Values("Set-Cookie"))
	}
}

// TestMFAOpenAPITokenGrant: /openapi.json documents the mfa grant of POST
// /oauth2/token (SPEC §6: every /oauth2 endpoint, so it cannot drift).
func TestMFAOpenAPITokenGrant(t *testing.T) {
	g := start(t, nil)
	r := g.get(t, "/openapi.json")
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						Properties map[string]struct {
							Enum []any `json:"enum"`
						} `json:"properties"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	op := doc.Paths["/oauth2/token"]["post"]
	props := op.RequestBody.Content["application/x-www-form-urlencoded"].Schema.Properties
	if !slices.Contains(props["grant_type"].Enum, any(mfaGrantType)) {
		t.Errorf("/openapi.json: grant_type of POST /oauth2/token is one of %v, without %s", props["grant_type"].Enum, mfaGrantType)
	}
	for _, p := range []string{"mfa_token", "otp", "recovery_code"} {
		if _, ok := props[p]; !ok {
			t.Errorf("/openapi.json: POST /oauth2/token documents no %s parameter", p)
		}
	}
	if _, ok := op.Responses["403"]; !ok {
		t.Errorf("/openapi.json: POST /oauth2/token documents no 403 (mfa_required)")
	}
}
