package server_test

// HTTP-level attacks on the rules of SPEC §18 that the domain implements
// (internal/auth, internal/passkey) and the server must wire through:
// H2 (verifying an email reclaims a pre-registered account unless the
// request carries a credential of that account) and H6 (passkey login
// begin with an email does not reveal whether the account or its passkeys
// exist). Every request goes to a real `gatehouse serve` in this process.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/testserver"
)

// rulesPassword is the password of every account these tests make.
const rulesPassword = "correct horse battery staple"

// rulesServer is a Gatehouse whose public URL is http://localhost:PORT
// (passkeys need a host name), with login limits high enough that no
// request here is answered by a 429, and an administrator made with
// `gatehouse user create --role admin` before it started, to read the
// audit log.
type rulesServer struct {
	*testserver.Server
	admin string // the administrator's access token
}

func startRulesServer(t *testing.T, env ...string) *rulesServer {
	t.Helper()
	const adminEmail = "admin@rules.example.test"
	yaml := "rate_limits: {login_per_account_ip: 100000, login_per_ip: 100000, window: 1m}\n"
	// A fixed root secret: the decoy credentials derived from it are then
	// the same on every run.
	vars := map[string]string{"GATEHOUSE_SECRET": "rules-http-test-root-secret-0123456789"}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	envs := testserver.Env(t, yaml, vars)
	s := testserver.Start(t, testserver.Options{Env: envs, Localhost: true,
		Before: func(s *testserver.Server) {
			s.Command(t, rulesPassword+"\n", "user", "create", "--email", adminEmail, "--role", "admin", "--password-stdin")
		}})
	rs := &rulesServer{Server: s}
	r := rs.passwordGrant(t, adminEmail)
	if r.Status != http.StatusOK {
		t.Fatalf("administrator's password grant: %s", r)
	}
	rs.admin = rulesStr(t, r.JSON(t), "access_token")
	return rs
}

// sameOrigin is what a browser sends with a request made by the server's
// own pages.
func (rs *rulesServer) sameOrigin() []string {
	return []string{"Origin", rs.URL, "Sec-Fetch-Site", "same-origin"}
}

func (rs *rulesServer) cookie(value string) []string {
	return []string{"Cookie", "gatehouse_session=" + value}
}

func (rs *rulesServer) send(t *testing.T, method, path string, body any, hdr ...[]string) *testserver.Response {
	t.Helper()
	var h []string
	for _, g := range hdr {
		h = append(h, g...)
	}
	return testserver.Send(t, method, rs.Direct+path, body, h...)
}

func (rs *rulesServer) passwordGrant(t *testing.T, email string) *testserver.Response {
	t.Helper()
	return rs.send(t, http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {email}, "password": {rulesPassword}})
}

func (rs *rulesServer) refreshGrant(t *testing.T, refresh string) *testserver.Response {
	t.Helper()
	return rs.send(t, http.MethodPost, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
}

// me is GET /v1/me with the header group hdr.
func (rs *rulesServer) me(t *testing.T, hdr []string) *testserver.Response {
	t.Helper()
	return rs.send(t, http.MethodGet, "/v1/me", nil, hdr)
}

// auditEvents reads the audit events of type typ for a user through the
// admin API.
func (rs *rulesServer) auditEvents(t *testing.T, userID, typ string) []map[string]any {
	t.Helper()
	r := rs.send(t, http.MethodGet, "/v1/admin/audit?"+url.Values{"user_id": {userID}, "type": {typ}}.Encode(), nil,
		[]string{"Authorization", "Bearer " + rs.admin})
	var body struct {
		Events []map[string]any `json:"events"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &body) != nil || body.Events == nil {
		t.Fatalf("GET /v1/admin/audit for %s, type %s: %s", userID, typ, r)
	}
	for _, e := range body.Events {
		if e["type"] != typ || e["user_id"] != userID {
			t.Fatalf("audit filtered on user %s and type %s holds %v", userID, typ, e)
		}
	}
	return body.Events
}

// rulesAccount is an account and the credentials it was given before its
// address was verified.
type rulesAccount struct {
	id, email string
	cookie    string // session cookie value (POST /v1/sessions)
	access    string // access token of the password grant
	refresh   string // the family's current refresh token
	apiKey    string
	passkey   *softPasskey // nil: none registered
}

// newAccount registers email and gives the account every credential the
// tests take away: a cookie session, a password-grant refresh family, an
// API key made with the session and, when withPasskey, a passkey. Each is
// shown to work first, so that a later refusal means something.
func (rs *rulesServer) newAccount(t *testing.T, email string, withPasskey bool) *rulesAccount {
	t.Helper()
	r := rs.send(t, http.MethodPost, "/v1/register", map[string]string{"email": email, "password": rulesPassword})
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: %s", email, r)
	}
	a := &rulesAccount{id: rulesStr(t, r.JSON(t), "id"), email: email}

	r = rs.send(t, http.MethodPost, "/v1/sessions", map[string]string{"email": email, "password": rulesPassword}, rs.sameOrigin())
	if r.Status != http.StatusCreated {
		t.Fatalf("session login %s: %s", email, r)
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "gatehouse_session" {
			a.cookie = c.Value
		}
	}
	if a.cookie == "" {
		t.Fatalf("session login %s set no gatehouse_session cookie: %q", email, r.Header.Values("Set-Cookie"))
	}

	r = rs.passwordGrant(t, email)
	if r.Status != http.StatusOK {
		t.Fatalf("password grant %s: %s", email, r)
	}
	a.access, a.refresh = rulesStr(t, r.JSON(t), "access_token"), rulesStr(t, r.JSON(t), "refresh_token")

	r = rs.send(t, http.MethodPost, "/v1/api-keys", map[string]any{"name": "ci", "scopes": []string{"read"}}, rs.cookie(a.cookie), rs.sameOrigin())
	if r.Status != http.StatusCreated {
		t.Fatalf("create an API key for %s with its session: %s", email, r)
	}
	a.apiKey = rulesStr(t, r.JSON(t), "key")

	if withPasskey {
		a.passkey = rs.registerPasskey(t, a, []string{"hybrid", "internal"})
	}

	// Controls: every credential works before the address is verified.
	if r := rs.me(t, rs.cookie(a.cookie)); r.Status != http.StatusOK || r.JSON(t)["email_verified"] != false || r.JSON(t)["id"] != a.id {
		t.Fatalf("control: GET /v1/me with %s's cookie: %s", email, r)
	}
	if r := rs.me(t, []string{"X-API-Key", a.apiKey}); r.Status != http.StatusOK || r.JSON(t)["id"] != a.id {
		t.Fatalf("control: GET /v1/me with %s's API key: %s", email, r)
	}
	r = rs.refreshGrant(t, a.refresh)
	if r.Status != http.StatusOK {
		t.Fatalf("control: refresh grant of %s: %s", email, r)
	}
	a.refresh = rulesStr(t, r.JSON(t), "refresh_token")
	return a
}

// passkeys lists the passkeys an account has, signed in with hdr.
func (rs *rulesServer) passkeys(t *testing.T, hdr []string) []string {
	t.Helper()
	r := rs.send(t, http.MethodGet, "/v1/passkeys", nil, hdr)
	var body struct {
		Passkeys []struct {
			CredentialID string `json:"credential_id"`
		} `json:"passkeys"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &body) != nil || body.Passkeys == nil {
		t.Fatalf("GET /v1/passkeys: %s", r)
	}
	var ids []string
	for _, p := range body.Passkeys {
		ids = append(ids, p.CredentialID)
	}
	return ids
}

// wantReclaimed checks SPEC §18 H2 after a verification without a
// credential of the account: its session, refresh family, API key and
// passkey are gone, the reclaim is audited, and the password still signs
// in to the now verified account.
func (rs *rulesServer) wantReclaimed(t *testing.T, a *rulesAccount) {
	t.Helper()
	if r := rs.me(t, rs.cookie(a.cookie)); r.Status != http.StatusUnauthorized {
		t.Errorf("the session made before the verification: GET /v1/me %s, want 401", r)
	}
	if r := rs.refreshGrant(t, a.refresh); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"invalid_grant"`) {
		t.Errorf("the refresh token issued before the verification: %s, want 400 invalid_grant", r)
	}
	if r := rs.me(t, []string{"X-API-Key", a.apiKey}); r.Status != http.StatusUnauthorized {
		t.Errorf("the API key made before the verification: GET /v1/me %s, want 401", r)
	}
	// The password stays.
	r := rs.passwordGrant(t, a.email)
	if r.Status != http.StatusOK {
		t.Fatalf("password grant after the reclaim: %s, want 200 (the password stays)", r)
	}
	bearer := []string{"Authorization", "Bearer " + rulesStr(t, r.JSON(t), "access_token")}
	if r := rs.me(t, bearer); r.Status != http.StatusOK || r.JSON(t)["id"] != a.id || r.JSON(t)["email_verified"] != true {
		t.Errorf("GET /v1/me after the reclaim: %s, want the same account, verified", r)
	}
	if a.passkey != nil {
		if ids := rs.passkeys(t, bearer); len(ids) != 0 {
			t.Errorf("passkeys after the reclaim: %q, want none", ids)
		}
	}
	ev := rs.auditEvents(t, a.id, "account.reclaimed")
	if len(ev) != 1 {
		t.Fatalf("audit events account.reclaimed for the account: %v, want 1", ev)
	}
	if d, _ := ev[0]["details"].(map[string]any); d["by"] != "email_verification" {
		t.Errorf("account.reclaimed details %v, want by: email_verification", ev[0]["details"])
	}
	if ev := rs.auditEvents(t, a.id, "email.verified"); len(ev) != 1 {
		t.Errorf("audit events email.verified: %v, want 1", ev)
	}
}

// wantKept checks the other half of H2: verified with a credential of the
// account itself, nothing is removed and nothing is audited as reclaimed.
func (rs *rulesServer) wantKept(t *testing.T, a *rulesAccount) {
	t.Helper()
	if r := rs.me(t, rs.cookie(a.cookie)); r.Status != http.StatusOK || r.JSON(t)["id"] != a.id || r.JSON(t)["email_verified"] != true {
		t.Errorf("the session after a verification with the account's own credential: GET /v1/me %s, want 200, verified", r)
	}
	r := rs.refreshGrant(t, a.refresh)
	if r.Status != http.StatusOK {
		t.Errorf("the refresh token after a verification with the account's own credential: %s, want 200", r)
	} else {
		a.refresh = rulesStr(t, r.JSON(t), "refresh_token")
	}
	if r := rs.me(t, []string{"X-API-Key", a.apiKey}); r.Status != http.StatusOK || r.JSON(t)["id"] != a.id {
		t.Errorf("the API key after a verification with the account's own credential: GET /v1/me %s, want 200", r)
	}
	if a.passkey != nil {
		if ids := rs.passkeys(t, rs.cookie(a.cookie)); !slices.Equal(ids, []string{a.passkey.idB64()}) {
			t.Errorf("passkeys after a verification with the account's own credential: %q, want [%s]", ids, a.passkey.idB64())
		}
	}
	if ev := rs.auditEvents(t, a.id, "account.reclaimed"); len(ev) != 0 {
		t.Errorf("audit events account.reclaimed: %v, want none", ev)
	}
	if ev := rs.auditEvents(t, a.id, "email.verified"); len(ev) != 1 {
		t.Errorf("audit events email.verified: %v, want 1", ev)
	}
}

// TestVerificationReclaimsPreRegisteredAccount performs the
// pre-registration hijack that SPEC §18 H2 closes, over HTTP: an attacker
// registers the victim's address, signs in (cookie session, refresh
// token, API key, passkey) and waits; the victim receives the
// verification mail and submits its token — by the JSON API or the hosted
// page's form. Without a credential of the account itself (no cookie, an
// API key, another account's cookie) every credential the account had is
// removed and account.reclaimed is audited, while the password still
// signs in. With the account's own cookie session or access token, nothing
// is removed.
func TestVerificationReclaimsPreRegisteredAccount(t *testing.T) {
	rs := startRulesServer(t)
	bystander := rs.newAccount(t, "bystander@rules.example.test", false)

	type verifier func(t *testing.T, a *rulesAccount, token string)
	api := func(hdr func(a *rulesAccount) [][]string) verifier {
		return func(t *testing.T, a *rulesAccount, token string) {
			t.Helper()
			r := rs.send(t, http.MethodPost, "/v1/email/verify", map[string]string{"token": token}, hdr(a)...)
			if r.Status != http.StatusNoContent || len(r.Body) != 0 {
				t.Fatalf("POST /v1/email/verify: %s, want 204 with no body", r)
			}
		}
	}
	form := func(hdr func(a *rulesAccount) [][]string) verifier {
		return func(t *testing.T, a *rulesAccount, token string) {
			t.Helper()
			// Opening the mailed link only shows the form.
			page := rs.send(t, http.MethodGet, "/verify-email?token="+url.QueryEscape(token), nil)
			if page.Status != http.StatusOK || !strings.Contains(string(page.Body), `value="`+token+`"`) {
				t.Fatalf("GET /verify-email: %d, want 200 with the token in the form", page.Status)
			}
			r := rs.send(t, http.MethodPost, "/verify-email", url.Values{"token": {token}}, hdr(a)...)
			if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Email address verified") {
				t.Fatalf("POST /verify-email: %d, want 200 and the page saying the address is verified:\n%.400s", r.Status, r.Body)
			}
		}
	}
	bare := func(*rulesAccount) [][]string { return nil }
	none := func(*rulesAccount) [][]string { return [][]string{rs.sameOrigin()} } // a form needs its origin
	ownCookie := func(a *rulesAccount) [][]string { return [][]string{rs.cookie(a.cookie), rs.sameOrigin()} }
	ownToken := func(a *rulesAccount) [][]string {
		return [][]string{{"Authorization", "Bearer " + a.access}}
	}
	otherCookie := func(*rulesAccount) [][]string { return [][]string{rs.cookie(bystander.cookie), rs.sameOrigin()} }
	ownAPIKey := func(a *rulesAccount) [][]string { return [][]string{{"X-API-Key", a.apiKey}} }
	ownAPIKeyBearer := func(a *rulesAccount) [][]string { return [][]string{{"Authorization", "Bearer " + a.apiKey}} }

	cases := []struct {
		name      string
		verify    verifier
		reclaimed bool
	}{
		{"API, no credential", api(bare), true},
		{"API, the account's own session cookie", api(ownCookie), false},
		{"API, the account's own access token", api(ownToken), false},
		{"API, another account's session cookie", api(otherCookie), true},
		{"API, the account's own API key", api(ownAPIKey), true},
		{"API, the account's own API key as a bearer token", api(ownAPIKeyBearer), true},
		{"hosted form, no cookie", form(none), true},
		{"hosted form, the account's own session cookie", form(ownCookie), false},
		{"hosted form, another account's session cookie", form(otherCookie), true},
	}
	// Make every account first, then wait for all their mails at once.
	accounts := make([]*rulesAccount, len(cases))
	var emails []string
	for i := range cases {
		accounts[i] = rs.newAccount(t, "victim"+string(rune('a'+i))+"@rules.example.test", true)
		emails = append(emails, accounts[i].email)
	}
	tokens := rs.verifyTokens(t, emails...)

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := accounts[i]
			tc.verify(t, a, tokens[a.email])
			if tc.reclaimed {
				rs.wantReclaimed(t, a)
			} else {
				rs.wantKept(t, a)
			}
			// The token is single-use either way.
			if r := rs.send(t, http.MethodPost, "/v1/email/verify", map[string]string{"token": tokens[a.email]}); r.Status != http.StatusBadRequest {
				t.Errorf("the verification token a second time: %s, want 400", r)
			}
		})
	}

	// The account whose cookie came with other accounts' tokens lost
	// nothing.
	if r := rs.me(t, rs.cookie(bystander.cookie)); r.Status != http.StatusOK || r.JSON(t)["id"] != bystander.id || r.JSON(t)["email_verified"] != false {
		t.Errorf("the bystander's session: GET /v1/me %s, want 200, unverified", r)
	}
	if r := rs.refreshGrant(t, bystander.refresh); r.Status != http.StatusOK {
		t.Errorf("the bystander's refresh token: %s, want 200", r)
	}
	if ev := rs.auditEvents(t, bystander.id, "account.reclaimed"); len(ev) != 0 {
		t.Errorf("the bystander's account.reclaimed events: %v, want none", ev)
	}
}

// TestVerificationFormRefusedCrossSite: the hosted verification form,
// submitted by another site with the account's cookie (a forged request
// that would make the browser's own session the proof of ownership), is
// refused with 403 and does not use the token, which still verifies
// afterwards from the page itself.
func TestVerificationFormRefusedCrossSite(t *testing.T) {
	rs := startRulesServer(t)
	a := rs.newAccount(t, "crosssite@rules.example.test", false)
	token := rs.verifyTokens(t, a.email)[a.email]
	for _, hdr := range [][]string{
		{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example"},
	} {
		r := rs.send(t, http.MethodPost, "/verify-email", url.Values{"token": {token}}, rs.cookie(a.cookie), hdr)
		if r.Status != http.StatusForbidden {
			t.Fatalf("cross-site POST /verify-email (%q): %d, want 403", hdr, r.Status)
		}
	}
	if r := rs.me(t, rs.cookie(a.cookie)); r.Status != http.StatusOK || r.JSON(t)["email_verified"] != false {
		t.Fatalf("after the refused cross-site form: GET /v1/me %s, want 200, unverified", r)
	}
	r := rs.send(t, http.MethodPost, "/verify-email", url.Values{"token": {token}}, rs.cookie(a.cookie), rs.sameOrigin())
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Email address verified") {
		t.Fatalf("same-origin POST /verify-email after the refused one: %d:\n%.400s", r.Status, r.Body)
	}
	rs.wantKept(t, a)
}

// TestPasskeyLoginBeginRevealsNoAccount attacks SPEC §18 H6: an attacker
// asks POST /v1/passkeys/login/begin for emails and compares the answers
// to learn which accounts exist and which have passkeys. An unknown
// email, an account without passkeys and an account with one must all
// answer 200 with the same members; the first two list 1–2 decoy
// credentials that look like real ones — type and id, with transports or
// without, as real ones come (a security key may report none) — the same
// on every call and for the email in any letter case (a real account's
// list is stable too), and different for different emails.
func TestPasskeyLoginBeginRevealsNoAccount(t *testing.T) {
	rs := startRulesServer(t)
	keyless := rs.newAccount(t, "keyless@rules.example.test", false)
	keyed := rs.newAccount(t, "keyed@rules.example.test", true)
	const unknown = "nobody@rules.example.test"

	type answer struct {
		top, publicKey, entry []string // member names, sorted
		ids                   []string
	}
	begin := func(t *testing.T, email string) answer {
		t.Helper()
		r := rs.send(t, http.MethodPost, "/v1/passkeys/login/begin", map[string]string{"email": email})
		if r.Status != http.StatusOK {
			t.Fatalf("login begin for %q: %s, want 200", email, r)
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("login begin for %q: %v: %s", email, err, r.Body)
		}
		var pk map[string]json.RawMessage
		if err := json.Unmarshal(body["publicKey"], &pk); err != nil {
			t.Fatalf("login begin for %q: publicKey %v: %s", email, err, r.Body)
		}
		var allow []map[string]json.RawMessage
		if err := json.Unmarshal(pk["allowCredentials"], &allow); err != nil || len(allow) < 1 || len(allow) > 2 {
			t.Fatalf("login begin for %q: allowCredentials %s (%v), want 1–2 entries", email, pk["allowCredentials"], err)
		}
		a := answer{top: memberNames(body), publicKey: memberNames(pk)}
		for _, e := range allow {
			names := memberNames(e)
			withTransports := slices.Equal(names, []string{"id", "transports", "type"})
			if !withTransports && !slices.Equal(names, []string{"id", "type"}) {
				t.Errorf("login begin for %q: allowCredentials entry with members %q, want id, type and maybe transports", email, names)
			}
			if a.entry == nil {
				a.entry = names
			}
			var typ, id string
			var transports []string
			if json.Unmarshal(e["type"], &typ) != nil || typ != "public-key" || json.Unmarshal(e["id"], &id) != nil ||
				(withTransports && (json.Unmarshal(e["transports"], &transports) != nil || len(transports) == 0)) {
				t.Errorf("login begin for %q: allowCredentials entry %v, want type public-key, a string id and non-empty transports if any", email, e)
			}
			if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) == 0 {
				t.Errorf("login begin for %q: credential id %q is not base64url (%v)", email, id, err)
			}
			a.ids = append(a.ids, id)
		}
		return a
	}

	answers := map[string]answer{}
	for _, tc := range []struct{ what, email, variant string }{
		{"an unknown email", unknown, "NoBody@Rules.Example.Test"},
		{"an account without passkeys", keyless.email, "KeyLess@rules.EXAMPLE.test"},
		{"an account with a passkey", keyed.email, "Keyed@Rules.example.test"},
	} {
		first := begin(t, tc.email)
		if again := begin(t, tc.email); !slices.Equal(again.ids, first.ids) {
			t.Errorf("%s: credential ids %q, then %q: want the same on every call", tc.what, first.ids, again.ids)
		}
		if v := begin(t, tc.variant); !slices.Equal(v.ids, first.ids) {
			t.Errorf("%s: credential ids %q for %q, %q for %q: want the same for any letter case", tc.what, first.ids, tc.email, v.ids, tc.variant)
		}
		answers[tc.what] = first
	}

	if got := answers["an account with a passkey"].ids; !slices.Equal(got, []string{keyed.passkey.idB64()}) {
		t.Errorf("an account with a passkey: allowCredentials ids %q, want its passkey %s", got, keyed.passkey.idB64())
	}
	u, k := answers["an unknown email"].ids, answers["an account without passkeys"].ids
	for _, id := range u {
		if slices.Contains(k, id) {
			t.Errorf("the decoy ids of two emails overlap: %q and %q", u, k)
		}
	}
	// A second unknown email gets other decoys too.
	if other := begin(t, "somebody@rules.example.test").ids; slices.Equal(other, u) || slices.Contains(other, u[0]) {
		t.Errorf("two unknown emails got the decoy ids %q and %q", u, other)
	}

	ref := answers["an account with a passkey"]
	for what, a := range answers {
		if !slices.Equal(a.top, ref.top) || !slices.Equal(a.publicKey, ref.publicKey) {
			t.Errorf("%s answers members %q / publicKey %q; an account with a passkey %q / %q",
				what, a.top, a.publicKey, ref.top, ref.publicKey)
		}
	}

	// Entries come in both shapes for real credentials (with transports,
	// as browsers report for platform passkeys; without, as some security
	// keys do), so decoys must too: among unknown emails, both occur.
	bare := rs.newAccount(t, "bare-key@rules.example.test", false)
	bare.passkey = rs.registerPasskey(t, bare, []string{})
	if got := begin(t, bare.email); len(got.entry) != 2 {
		t.Errorf("a passkey registered without transports is listed with members %q, want id and type", got.entry)
	}
	shapes := map[string]int{}
	for i := range 24 {
		shapes[strings.Join(begin(t, fmt.Sprintf("stranger%d@rules.example.test", i)).entry, " ")]++
	}
	if len(shapes) != 2 {
		t.Errorf("decoy entries of 24 unknown emails come in the shapes %v; want both, with and without transports", shapes)
	}
	if !slices.Contains(ref.publicKey, "allowCredentials") || !slices.Contains(ref.publicKey, "challenge") {
		t.Errorf("publicKey members %q lack allowCredentials or challenge", ref.publicKey)
	}
}

func memberNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func rulesStr(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, _ := m[key].(string)
	if s == "" {
		t.Fatalf("no string %q in %v", key, m)
	}
	return s
}

// ---- the verification mail ----

// verifyTokens waits for the verification mail of each address in the
// outbox (no SMTP configured: <data dir>/mail/*.eml) and returns the
// token of its link, which is built from the public URL. The mail is
// sent by a queue worker after the request: the wait ends as soon as
// every mail is there, and fails after 15 s.
func (rs *rulesServer) verifyTokens(t *testing.T, emails ...string) map[string]string {
	t.Helper()
	link := regexp.MustCompile(regexp.QuoteMeta(rs.URL+"/verify-email?token=") + `([A-Za-z0-9_.~%-]+)`)
	tokens := map[string]string{}
	deadline := time.Now().Add(15 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(rs.DataDir, "mail", "*.eml"))
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			to, text, ok := readOutboxMail(raw)
			if !ok { // still being written
				continue
			}
			if m := link.FindStringSubmatch(text); m != nil && slices.Contains(emails, to) {
				tok, err := url.QueryUnescape(m[1])
				if err != nil {
					t.Fatalf("mail to %s: link token %q: %v", to, m[1], err)
				}
				if prev, seen := tokens[to]; seen && prev != tok {
					t.Fatalf("two verification mails to %s", to)
				}
				tokens[to] = tok
			}
		}
		if len(tokens) == len(emails) {
			return tokens
		}
		if time.Now().After(deadline) {
			t.Fatalf("verification mails in %s after 15 s: %d of %d (%v)", filepath.Join(rs.DataDir, "mail"), len(tokens), len(emails), tokens)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readOutboxMail returns the recipient of a mail and the decoded text of
// its plain-text parts.
func readOutboxMail(raw []byte) (to, text string, ok bool) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", "", false
	}
	a, err := mail.ParseAddress(m.Header.Get("To"))
	if err != nil {
		return "", "", false
	}
	var b strings.Builder
	if !plainText(&b, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body) {
		return "", "", false
	}
	return strings.ToLower(a.Address), b.String(), true
}

func plainText(b *strings.Builder, contentType, encoding string, body io.Reader) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return true
			}
			if err != nil || !plainText(b, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p) {
				return false
			}
		}
	}
	if mt != "text/plain" {
		_, err := io.Copy(io.Discard, body)
		return err == nil
	}
	if strings.EqualFold(encoding, "base64") {
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	// multipart.Reader decodes quoted-printable parts itself.
	_, err = io.Copy(b, body)
	return err == nil
}

// ---- a passkey over HTTP ----

// softPasskey is a minimal software authenticator written for these
// tests: one P-256 key (ES256) whose registration uses "none" attestation,
// the way a platform authenticator's passkey is registered through
// credential.toJSON().
type softPasskey struct {
	key *ecdsa.PrivateKey
	id  []byte // credential id
}

func (p *softPasskey) idB64() string { return base64.RawURLEncoding.EncodeToString(p.id) }

// registerPasskey adds a passkey to a through POST
// /v1/passkeys/register/begin and /finish, signed in with its cookie;
// transports is what the browser reports in the response.
func (rs *rulesServer) registerPasskey(t *testing.T, a *rulesAccount, transports []string) *softPasskey {
	t.Helper()
	p, r := rs.addPasskey(t, a.email, transports, rs.cookie(a.cookie), rs.sameOrigin())
	if r.Status != http.StatusCreated || r.JSON(t)["credential_id"] != p.idB64() {
		t.Fatalf("passkey register finish for %s: %s, want 201 with credential_id %s", a.email, r, p.idB64())
	}
	if ids := rs.passkeys(t, rs.cookie(a.cookie)); !slices.Contains(ids, p.idB64()) {
		t.Fatalf("control: passkeys of %s %q, want %s among them", a.email, ids, p.idB64())
	}
	return p
}

// addPasskey registers a new software passkey with the credentials of hdr
// and returns it with the answer of the finish call.
func (rs *rulesServer) addPasskey(t *testing.T, label string, transports []string, hdr ...[]string) (*softPasskey, *testserver.Response) {
	t.Helper()
	a := struct{ email string }{label}
	r := rs.send(t, http.MethodPost, "/v1/passkeys/register/begin", nil, hdr...)
	var begin struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
		} `json:"publicKey"`
		Ceremony string `json:"ceremony"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &begin) != nil || begin.Ceremony == "" || begin.PublicKey.Challenge == "" {
		t.Fatalf("passkey register begin for %s: %s", a.email, r)
	}
	if begin.PublicKey.RP.ID != "localhost" {
		t.Fatalf("passkey register begin: rp.id %q, want localhost", begin.PublicKey.RP.ID)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &softPasskey{key: key, id: make([]byte, 16)}
	rand.Read(p.id)

	clientData, _ := json.Marshal(map[string]any{"type": "webauthn.create", "challenge": begin.PublicKey.Challenge, "origin": rs.URL, "crossOrigin": false})
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose := cborHead(5, 5)
	for _, part := range [][]byte{
		cborInt(1), cborInt(2), // kty: EC2
		cborInt(3), cborInt(-7), // alg: ES256
		cborInt(-1), cborInt(1), // crv: P-256
		cborInt(-2), cborBytes(pub[1:33]), // x
		cborInt(-3), cborBytes(pub[33:65]), // y
	} {
		cose = append(cose, part...)
	}
	rpIDHash := sha256.Sum256([]byte(begin.PublicKey.RP.ID))
	authData := append([]byte{}, rpIDHash[:]...)
	authData = append(authData, 0x45)                // flags: user present, user verified, attested credential data
	authData = append(authData, 0, 0, 0, 0)          // sign count
	authData = append(authData, make([]byte, 16)...) // AAGUID
	authData = append(authData, byte(len(p.id)>>8), byte(len(p.id)))
	authData = append(authData, p.id...)
	authData = append(authData, cose...)
	att := cborHead(5, 3)
	for _, part := range [][]byte{
		cborText("fmt"), cborText("none"),
		cborText("attStmt"), cborHead(5, 0),
		cborText("authData"), cborBytes(authData),
	} {
		att = append(att, part...)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	cred := map[string]any{
		"id": p.idB64(), "rawId": p.idB64(), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64(clientData), "attestationObject": b64(att), "transports": transports,
		},
		"clientExtensionResults": map[string]any{},
	}
	r = rs.send(t, http.MethodPost, "/v1/passkeys/register/finish?ceremony="+url.QueryEscape(begin.Ceremony), cred, hdr...)
	return p, r
}

// The few CBOR (RFC 8949) items an attestation object needs.
func cborHead(major byte, n int) []byte {
	switch {
	case n < 24:
		return []byte{major<<5 | byte(n)}
	case n < 256:
		return []byte{major<<5 | 24, byte(n)}
	default:
		return []byte{major<<5 | 25, byte(n >> 8), byte(n)}
	}
}

func cborInt(v int) []byte {
	if v >= 0 {
		return cborHead(0, v)
	}
	return cborHead(1, -1-v)
}

func cborBytes(b []byte) []byte { return append(cborHead(2, len(b)), b...) }
func cborText(s string) []byte  { return append(cborHead(3, len(s)), s...) }

// TestPasskeyEnrolmentFinishesSignIn: with GATEHOUSE_MFA_REQUIRED_ROLES, a
// user without a second factor gets an enrolment-only mfa_token; adding a
// passkey with it (Bearer ghm_…) finishes the sign-in the way it began —
// here the password grant, so a token response at aal2 — and the token is
// used up (SPEC §13).
func TestPasskeyEnrolmentFinishesSignIn(t *testing.T) {
	rs := startRulesServer(t, "GATEHOUSE_MFA_REQUIRED_ROLES", "user")
	const email = "enrol@rules.example.test"
	if r := rs.send(t, http.MethodPost, "/v1/register", map[string]string{"email": email, "password": rulesPassword}); r.Status != http.StatusCreated {
		t.Fatalf("register: %s", r)
	}
	r := rs.passwordGrant(t, email)
	j := r.JSON(t)
	tok, _ := j["mfa_token"].(string)
	if r.Status != http.StatusForbidden || j["code"] != "mfa_enrollment_required" || tok == "" {
		t.Fatalf("password grant of a user whose role requires a second factor: %s, want 403 mfa_enrollment_required", r)
	}
	bearer := []string{"Authorization", "Bearer " + tok}
	_, fin := rs.addPasskey(t, email, []string{"internal"}, bearer)
	if fin.Status != http.StatusCreated {
		t.Fatalf("passkey register finish with the enrolment token: %s", fin)
	}
	signIn, _ := fin.JSON(t)["sign_in"].(map[string]any)
	access, _ := signIn["access_token"].(string)
	if access == "" || signIn["refresh_token"] == nil {
		t.Fatalf("the enrolment finished no sign-in: %s", fin)
	}
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q", access)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		ACR string   `json:"acr"`
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.ACR != "aal2" || !slices.Contains(claims.AMR, "pwd") || !slices.Contains(claims.AMR, "hwk") {
		t.Fatalf("the finished sign-in's claims %s: want acr aal2 with amr pwd and hwk", payload)
	}
	if me := rs.me(t, []string{"Authorization", "Bearer " + access}); me.Status != http.StatusOK {
		t.Fatalf("GET /v1/me with the token of the enrolment: %s", me)
	}
	// Used up: the same token adds nothing more.
	if again := rs.send(t, http.MethodPost, "/v1/passkeys/register/begin", nil, bearer); again.Status != http.StatusUnauthorized {
		t.Fatalf("passkey register begin with the used enrolment token: %s, want 401", again)
	}
}
