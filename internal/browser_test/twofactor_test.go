package browsertest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// totpAt is the RFC 6238 code (HMAC-SHA1, 6 digits) of a base32 secret at
// the 30-second step of t, computed here as an authenticator app would.
func totpAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil {
		t.Fatalf("the key shown on the page, %q, is not base32: %v", secret, err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	return fmt.Sprintf("%06d", v%1_000_000)
}

// TestBrowserTwoFactor walks SPEC §13 in Chromium: set up an
// authenticator app on the account page (QR code and key, recovery codes
// shown once), sign out, sign in with the password and a code on
// /login/2fa, sign out, and sign in with a recovery code — every step with
// the pages' own forms and no CSP violation.
func TestBrowserTwoFactor(t *testing.T) {
	ctx := newBrowser(t)
	recordCSPViolations(t, ctx)
	g := startGatehouse(t, "", nil)
	const email = "ada@example.com"

	must(t, ctx, "register",
		chromedp.Navigate(g.URL+"/register"),
		typeInto("#email", email),
		typeInto("#password", testPassword),
		click(`form[action="/register"] button[type=submit]`),
	)
	waitFor(t, ctx, "the check-your-email page", bodyHas("Check your email"))
	must(t, ctx, "open the verification link", chromedp.Navigate(g.mailLink(t, email, "/verify-email")))
	waitFor(t, ctx, "the verify form", pathIs("/verify-email", "Verify your email address"))
	must(t, ctx, "verify", click(`form[action="/verify-email"] button[type=submit]`))
	waitFor(t, ctx, "verified", bodyHas("Email address verified"))

	signIn := func(what string) {
		t.Helper()
		must(t, ctx, what,
			chromedp.Navigate(g.URL+"/login"),
			typeInto("#email", email),
			typeInto("#password", testPassword),
			click(`form[action="/login"] button[type=submit]`),
		)
	}
	signOut := func() {
		t.Helper()
		must(t, ctx, "sign out", click(`form[action="/logout"] button`))
		waitFor(t, ctx, "the login page after signing out", pathIs("/login", "Sign in"))
	}

	// Enrol: the QR code is inline SVG, the key is printed next to it.
	signIn("sign in with the password")
	waitFor(t, ctx, "the account page", pathIs("/account", "Your account"))
	must(t, ctx, "start setting up an authenticator app", click(`form[action="/account/2fa/totp"] button`))
	waitFor(t, ctx, "the QR code and key", `!!document.querySelector(".qr svg path") && !!document.querySelector("#totp-secret")`)
	noCSPViolations(t, ctx, "the enrolment page")
	secret, err := eval[string](ctx, `document.querySelector("#totp-secret").textContent`)
	if err != nil || len(secret) < 32 {
		t.Fatalf("the key on the page: %q (%v)", secret, err)
	}
	// A mistyped code shows the same QR code again.
	wrong := "000000"
	if totpAt(t, secret, time.Now()) == wrong {
		wrong = "111111"
	}
	must(t, ctx, "confirm with a wrong code", typeInto("#totp-confirm-code", wrong), click(`form[action="/account/2fa/totp/confirm"] button`))
	waitFor(t, ctx, "the error and the QR code again", bodyHas("That code didn't work")+` && document.querySelector("#totp-secret").textContent === `+jsString(secret))
	used := time.Now()
	must(t, ctx, "confirm with the app's code", typeInto("#totp-confirm-code", totpAt(t, secret, used)), click(`form[action="/account/2fa/totp/confirm"] button`))
	waitFor(t, ctx, "the recovery codes", `document.querySelectorAll("ul.codes code").length === 10`)
	codes, err := eval[[]string](ctx, `Array.from(document.querySelectorAll("ul.codes code")).map(c => c.textContent)`)
	if err != nil || len(codes) != 10 {
		t.Fatalf("recovery codes on the page: %v (%v)", codes, err)
	}
	noCSPViolations(t, ctx, "the recovery codes")
	must(t, ctx, "reload the account page", chromedp.Navigate(g.URL+"/account"))
	waitFor(t, ctx, "two-factor on", bodyHas("Two-factor authentication is on"))
	if body, _ := eval[string](ctx, `document.body.innerHTML`); strings.Contains(body, codes[0]) || strings.Contains(body, secret) {
		t.Fatal("the account page shows the recovery codes or the key again: they are shown once")
	}
	signOut()

	// Sign in with a code: the password step leads to /login/2fa.
	signIn("sign in with the password (challenged)")
	waitFor(t, ctx, "the second step", pathIs("/login/2fa", "Two-step verification"))
	noCSPViolations(t, ctx, "/login/2fa")
	if ac, _ := eval[string](ctx, `document.querySelector("#code").getAttribute("autocomplete")`); ac != "one-time-code" {
		t.Fatalf("the code input has autocomplete %q, want one-time-code", ac)
	}
	if label, _ := eval[string](ctx, `document.querySelector('label[for="code"]').textContent`); label == "" {
		t.Fatal("the code input has no label")
	}
	if me := g.do(t, browserClient(t), "GET", "/account", nil); me.Status != 303 {
		t.Fatalf("GET /account by a client that never signed in: %s", me)
	}
	// The confirmation used its step: the next step's code signs in.
	next := used.Add(30 * time.Second)
	if wait := time.Until(next.Truncate(30*time.Second)) - 29*time.Second; wait > 0 {
		time.Sleep(wait) // the server accepts one step ahead (skew 1)
	}
	must(t, ctx, "enter the code", typeInto("#code", totpAt(t, secret, next)), click(`form[action="/login/2fa"] button`))
	waitFor(t, ctx, "the account page after the code", pathIs("/account", "Your account"))
	if who, _ := eval[string](ctx, `document.querySelector(".who").textContent`); who != email {
		t.Fatalf("signed in as %q, want %s", who, email)
	}
	signOut()

	// Sign in with a recovery code, typed in capitals without hyphens.
	signIn("sign in with the password, then a recovery code")
	waitFor(t, ctx, "the second step", pathIs("/login/2fa", "Two-step verification"))
	must(t, ctx, "choose a recovery code", click(`a[href^="/login/2fa?recovery=1"]`))
	waitFor(t, ctx, "the recovery-code form", `!!document.querySelector("#recovery_code")`)
	must(t, ctx, "enter a recovery code",
		typeInto("#recovery_code", strings.ToUpper(strings.ReplaceAll(codes[3], "-", ""))),
		click(`form[action="/login/2fa"] button`))
	waitFor(t, ctx, "the account page after the recovery code", pathIs("/account", "Your account"))
	waitFor(t, ctx, "nine codes left", bodyHas("9 of 10 recovery codes left"))
	noCSPViolations(t, ctx, "account page after the recovery code")
}

// TestHostedEnrolmentAtSignIn: with GATEHOUSE_MFA_REQUIRED_ROLES, a user
// of such a role without a second factor who signs in on /login is sent to
// /login/2fa, which sets up an authenticator app (QR code and key) without
// JavaScript; confirming it signs in and shows the recovery codes once.
func TestHostedEnrolmentAtSignIn(t *testing.T) {
	g := startGatehouse(t, "", map[string]string{"GATEHOUSE_MFA_REQUIRED_ROLES": "user"})
	const email = "grace@example.com"
	g.register(t, email, "")
	c := browserClient(t)
	p := g.login(t, c, email, testPassword, "")
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/login/2fa") {
		t.Fatalf("POST /login for a user whose role requires a second factor: %s (Location %q), want 303 to /login/2fa", p, p.Header.Get("Location"))
	}
	if sessionCookie(p) != nil {
		t.Fatal("the password step set a session cookie")
	}
	if me := g.do(t, c, "GET", "/v1/me", nil); me.Status != http.StatusUnauthorized {
		t.Fatalf("GET /v1/me before the enrolment: %s", me)
	}
	page := g.do(t, c, "GET", "/login/2fa", nil)
	checkHTML(t, "GET /login/2fa (enrolment)", page, false)
	m := regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(page.Body)
	id := regexp.MustCompile(`name="enrollment_id" value="([^"]+)"`).FindStringSubmatch(page.Body)
	if page.Status != http.StatusOK || m == nil || id == nil || !strings.Contains(page.Body, "<svg") {
		t.Fatalf("GET /login/2fa: %s, want the QR code, the key and the confirmation form", page)
	}
	wrong := "000000"
	if totpAt(t, m[1], time.Now()) == wrong {
		wrong = "111111"
	}
	bad := g.do(t, c, "POST", "/login/2fa/enrol", url.Values{"enrollment_id": {id[1]}, "code": {wrong}})
	if bad.Status != http.StatusBadRequest || sessionCookie(bad) != nil || !strings.Contains(bad.Body, m[1]) {
		t.Fatalf("a wrong confirmation code: %s, want 400 showing the same key again and no session", bad)
	}
	done := g.do(t, c, "POST", "/login/2fa/enrol", url.Values{"enrollment_id": {id[1]}, "code": {totpAt(t, m[1], time.Now())}})
	checkHTML(t, "the recovery codes", done, false)
	codes := regexp.MustCompile(`<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>`).FindAllStringSubmatch(done.Body, -1)
	if done.Status != http.StatusOK || sessionCookie(done) == nil || len(codes) != 10 {
		t.Fatalf("confirming the enrolment: %s, want 200 with a session cookie and 10 recovery codes", done)
	}
	me := g.do(t, c, "GET", "/v1/me", nil)
	if me.Status != http.StatusOK || !strings.Contains(me.Body, `"mfa_enabled":true`) {
		t.Fatalf("GET /v1/me after the enrolment: %s, want 200 with mfa_enabled true", me)
	}
	// The next sign-in is an ordinary challenge: a recovery code finishes it.
	c2 := browserClient(t)
	if p := g.login(t, c2, email, testPassword, ""); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/login/2fa") {
		t.Fatalf("the next sign-in: %s, want 303 to /login/2fa", p)
	}
	fin := g.do(t, c2, "POST", "/login/2fa", url.Values{"recovery_code": {codes[0][1]}})
	if fin.Status != http.StatusSeeOther || sessionCookie(fin) == nil {
		t.Fatalf("the next sign-in with a recovery code: %s", fin)
	}
}
