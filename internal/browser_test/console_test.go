package browsertest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// allLabelled is a condition: every visible input and select of the page
// has a label (a <label for>, a wrapping label or aria-label).
const allLabelled = `Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea")).every(i => (i.labels && i.labels.length > 0) || !!i.getAttribute("aria-label"))`

// TestBrowserAdminConsole walks an administrator through the admin console
// (SPEC §17) in Chromium, with the keyboard where a keyboard user would:
// opening /admin signs in first; an admin without a second factor is sent
// to set one up; signing in again with the password and the app's code
// opens the console; the admin finds a user, disables them (after a
// confirmation page) and sees user.disabled in the audit log — every page
// labelled, without CSP violations, and usable on a phone.
func TestBrowserAdminConsole(t *testing.T) {
	ctx := newBrowser(t)
	recordCSPViolations(t, ctx)
	g := startGatehouse(t, "", nil)
	const admin, target = "root@example.com", "grace@example.com"
	g.Command(t, testPassword+"\n", "user", "create", "--email", admin, "--role", "admin", "--name", "Ops Admin", "--password-stdin")
	for _, u := range []struct{ email, name string }{
		{target, "Grace Hopper"}, {"grace.kelly@example.com", "Grace Kelly"}, {"alan@example.com", "Alan Turing"},
	} {
		g.register(t, u.email, u.name)
	}

	signIn := func(what string) {
		t.Helper()
		waitFor(t, ctx, "the login page", pathIs("/login", "Sign in"))
		must(t, ctx, what,
			typeInto("#email", admin),
			typeInto("#password", testPassword),
			click(`form[action="/login"] button[type=submit]`),
		)
	}

	// Opening the console signs in first, then sends an admin without a
	// second factor to set one up.
	must(t, ctx, "open the console", chromedp.Navigate(g.URL+"/admin"))
	signIn("sign in with the password")
	waitFor(t, ctx, "the account page asking for a second factor", pathIs("/account", "Your account")+" && "+bodyHas("The admin console needs a second factor"))
	noCSPViolations(t, ctx, "account page")

	// Set up the authenticator app.
	must(t, ctx, "start setting up an authenticator app", click(`form[action="/account/2fa/totp"] button`))
	waitFor(t, ctx, "the QR code and key", `!!document.querySelector("#totp-secret")`)
	secret, err := eval[string](ctx, `document.querySelector("#totp-secret").textContent`)
	if err != nil || len(secret) < 32 {
		t.Fatalf("the key on the page: %q (%v)", secret, err)
	}
	used := time.Now()
	must(t, ctx, "confirm with the app's code", typeInto("#totp-confirm-code", totpAt(t, secret, used)), click(`form[action="/account/2fa/totp/confirm"] button`))
	waitFor(t, ctx, "the recovery codes", `document.querySelectorAll("ul.codes code").length === 10`)

	// Confirming the app made this session a two-factor one (SPEC §13):
	// the console opens at once.
	must(t, ctx, "open the console after setting up the app", chromedp.Navigate(g.URL+"/admin"))
	waitFor(t, ctx, "the console overview", pathIs("/admin", "Overview"))

	// Sign out, open the console again: password, then the second factor.
	must(t, ctx, "sign out", click(`form[action="/logout"] button`))
	waitFor(t, ctx, "signed out", pathIs("/login", "Sign in"))
	must(t, ctx, "open the console signed out", chromedp.Navigate(g.URL+"/admin"))
	signIn("sign in for the console")
	waitFor(t, ctx, "the second step", pathIs("/login/2fa", "Two-step verification"))
	// The confirmation used its 30-second step: wait for the next one.
	next := used.Add(30 * time.Second)
	if wait := time.Until(next.Truncate(30*time.Second)) - 29*time.Second; wait > 0 {
		time.Sleep(wait) // the server accepts one step ahead (skew 1)
	}
	must(t, ctx, "enter the code", typeInto("#code", totpAt(t, secret, next)), click(`form[action="/login/2fa"] button`))
	waitFor(t, ctx, "the console overview", pathIs("/admin", "")+" && "+bodyHas("Users"))
	noCSPViolations(t, ctx, "overview")
	if who, _ := eval[string](ctx, `document.body.innerText`); !strings.Contains(who, admin) {
		t.Fatalf("the console does not show who is signed in (%s)", admin)
	}
	if n, _ := eval[int](ctx, `document.querySelectorAll("script").length`); n != 0 {
		t.Fatalf("the overview has %d script elements; the console runs without JavaScript", n)
	}
	screenshot(t, ctx, "admin-overview-desktop", 1280, 900, true)

	// Keyboard: Tab reaches a link first, and the focused element shows a
	// visible outline.
	must(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
	if ok, _ := eval[bool](ctx, `(() => { const e = document.activeElement; if (!e || e === document.body) return false; const s = getComputedStyle(e); return s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0; })()`); !ok {
		t.Error("after Tab, no element has a visible focus outline")
	}

	// Find the user from the Users section, submitting the search with Enter.
	must(t, ctx, "open Users", click(`nav a[href="/admin/users"]`))
	waitFor(t, ctx, "the users page", pathIs("/admin/users", "")+` && !!document.querySelector("#users-q")`)
	if ok, _ := eval[bool](ctx, allLabelled); !ok {
		t.Error("the users page has an input without a label")
	}
	must(t, ctx, "search for grace", typeInto("#users-q", "grace"+kb.Enter))
	waitFor(t, ctx, "the search results", `location.search.includes("q=grace") && document.querySelectorAll("tr[data-user]").length === 2`)
	if found, _ := eval[string](ctx, `Array.from(document.querySelectorAll("tr[data-user] td:first-child")).map(td => td.innerText).join(" ")`); strings.Contains(found, "alan@") || !strings.Contains(found, target) {
		t.Fatalf("searching for grace found: %s", found)
	}
	screenshot(t, ctx, "admin-users-desktop", 1280, 800, false)
	href, err := eval[string](ctx, `Array.from(document.querySelectorAll("tr[data-user] a")).find(a => a.textContent === `+jsString(target)+`).getAttribute("href")`)
	if err != nil || !strings.HasPrefix(href, "/admin/users/") {
		t.Fatalf("the link to %s in the results: %q (%v)", target, href, err)
	}
	must(t, ctx, "open the user", click(`tr[data-user] a[href="`+href+`"]`))
	waitFor(t, ctx, "the user page", pathIs(href, "")+` && `+bodyHas("Grace Hopper")+` && `+bodyHas("Disable account"))
	userPath, _ := eval[string](ctx, `location.pathname`)
	userID := strings.TrimPrefix(userPath, "/admin/users/")
	if ok, _ := eval[bool](ctx, allLabelled); !ok {
		t.Error("the user page has an input without a label")
	}
	noCSPViolations(t, ctx, "user page")
	screenshot(t, ctx, "admin-user-desktop", 1280, 900, true)
	screenshot(t, ctx, "admin-user-mobile", 390, 844, true)

	// Disable: a confirmation page first, then the post.
	must(t, ctx, "choose Disable account", click(`a[href="/admin/users/`+userID+`/disable"]`))
	waitFor(t, ctx, "the confirmation page", pathIs("/admin/users/"+userID+"/disable", "")+" && "+bodyHas("Please confirm"))
	if dis := g.login(t, browserClient(t), target, testPassword, ""); dis.Status != http.StatusSeeOther {
		t.Fatalf("the user cannot sign in before being disabled: %s", dis)
	}
	must(t, ctx, "confirm", click(`form[action="/admin/users/`+userID+`/disable"] button.danger`))
	waitFor(t, ctx, "the user page, disabled", pathIs(userPath, "")+" && "+bodyHas("Enable account"))
	noCSPViolations(t, ctx, "after disabling")
	if p := g.login(t, browserClient(t), target, testPassword, ""); p.Status == http.StatusSeeOther {
		t.Fatalf("the disabled user still signs in: %s", p)
	}

	// The audit log shows it, filtered by type.
	must(t, ctx, "open the audit log", click(`nav a[href="/admin/audit"]`))
	waitFor(t, ctx, "the audit log", pathIs("/admin/audit", "")+` && !!document.querySelector("#audit-type")`)
	if ok, _ := eval[bool](ctx, allLabelled); !ok {
		t.Error("the audit page has an input without a label")
	}
	// Disabling is audited as user.disabled, marked as done via the
	// console (SPEC §17).
	must(t, ctx, "filter by type and user",
		typeInto("#audit-type", "user.disabled"),
		typeInto("#audit-user", userID),
		click(`form[action="/admin/audit"] button[type=submit]`))
	waitFor(t, ctx, "the filtered log", `location.search.includes("type=user.disabled") && document.readyState === "complete" && !!document.querySelector("#audit-events-h")`)
	rows, err := eval[[]string](ctx, `Array.from(document.querySelectorAll("tr[id^=event-]")).map(r => r.innerText)`)
	if err != nil || len(rows) != 1 || !strings.Contains(rows[0], "user.disabled") || !strings.Contains(rows[0], userID) || !strings.Contains(rows[0], "via=console") {
		t.Fatalf("the audit log filtered by user.disabled and the user shows %q (%v), want one event disabling %s via the console", rows, err, userID)
	}
	noCSPViolations(t, ctx, "audit log")
	screenshot(t, ctx, "admin-audit-desktop", 1280, 800, false)

	// Every section fits a phone: nothing scrolls sideways at 390 px (wide
	// tables scroll inside their own frame).
	for _, section := range []string{"", "/users?q=grace", "/audit", "/clients", "/webhooks", "/keys", "/settings"} {
		must(t, ctx, "open /admin"+section, chromedp.Navigate(g.URL+"/admin"+section))
		waitFor(t, ctx, "/admin"+section, `document.readyState === "complete" && !!document.querySelector("main h1")`)
		noCSPViolations(t, ctx, "/admin"+section)
		name := "admin" + strings.NewReplacer("/", "-", "?q=grace", "").Replace(section) + "-mobile"
		if section == "" {
			name = "admin-overview-mobile"
		}
		screenshot(t, ctx, name, 390, 844, false)
	}
}

// TestBrowserAdminConsolePasskey: an administrator whose second factor is
// a passkey (no authenticator app) reaches the console and changes
// something. The console runs no script, so its step-up page sends them to
// sign in again with the passkey on the hosted login page, which brings
// them back; the password alone is refused there (it would prove one
// factor, below what the console requires).
func TestBrowserAdminConsolePasskey(t *testing.T) {
	ctx := newBrowser(t)
	recordCSPViolations(t, ctx)
	g := startGatehouse(t, "", nil)
	if !passkeysOn(t, g) {
		t.Fatal("the login page offers no passkey sign-in")
	}
	const admin, target = "keys@example.com", "ada@example.com"
	g.Command(t, testPassword+"\n", "user", "create", "--email", admin, "--role", "admin", "--password-stdin")
	g.register(t, target, "Ada Lovelace")

	// Password sign-in, sent to set up a second factor: a passkey.
	must(t, ctx, "open the console", chromedp.Navigate(g.URL+"/admin"))
	waitFor(t, ctx, "the login page", pathIs("/login", "Sign in"))
	must(t, ctx, "sign in with the password",
		typeInto("#email", admin), typeInto("#password", testPassword),
		click(`form[action="/login"] button[type=submit]`))
	waitFor(t, ctx, "the account page asking for a second factor", pathIs("/account", "Your account")+" && "+bodyHas("The admin console needs a second factor"))
	addAuthenticator(t, ctx)
	must(t, ctx, "add a passkey", click(`form.passkey-add button`))
	waitFor(t, ctx, "the new passkey", pathIs("/account", "Your account")+` && location.search.includes("done=passkey-added")`)

	// The session is still a one-factor one: the step-up page offers the
	// passkey, and no password form.
	must(t, ctx, "open the console again", chromedp.Navigate(g.URL+"/admin/users"))
	waitFor(t, ctx, "the step-up page", pathIs("/admin/step-up", "")+" && "+bodyHas("Sign in again with your passkey"))
	if has, _ := eval[bool](ctx, `!!document.querySelector("#password")`); has {
		t.Fatal("the step-up page of a passkey-only admin offers the password form, which cannot reach two factors")
	}
	noCSPViolations(t, ctx, "step-up page")
	must(t, ctx, "choose the passkey", click(`a[href^="/login?"]`))
	waitFor(t, ctx, "the login page, address filled in", pathIs("/login", "Sign in")+` && document.querySelector("#email").value === `+jsString(admin))
	must(t, ctx, "sign in with the passkey", click(`form.passkey-login button`))
	waitFor(t, ctx, "back in the console", pathIs("/admin/users", "")+` && !!document.querySelector("#users-q")`)
	noCSPViolations(t, ctx, "users page after the passkey")

	// A write goes through: the passkey sign-in is recent.
	must(t, ctx, "search", typeInto("#users-q", "ada"+kb.Enter))
	waitFor(t, ctx, "the result", `location.search.includes("q=ada") && document.querySelectorAll("tr[data-user]").length === 1`)
	must(t, ctx, "open the user", click(`tr[data-user] a`))
	waitFor(t, ctx, "the user page", bodyHas("Ada Lovelace")+` && !!document.querySelector('form[action$="/verify"] button')`)
	must(t, ctx, "mark the address verified", click(`form[action$="/verify"] button`))
	waitFor(t, ctx, "the notice", bodyHas("Email address marked as verified."))
	if has, _ := eval[bool](ctx, `!!document.querySelector('form[action$="/verify"]')`); has {
		t.Error("the user page still offers to mark the address verified")
	}
	// The password alone is refused on the step-up form.
	c := browserClient(t)
	if p := g.login(t, c, admin, testPassword, "/admin"); p.Status != http.StatusSeeOther {
		t.Fatalf("password sign-in of the admin: %s", p)
	}
	if p := g.do(t, c, "POST", "/admin/step-up", url.Values{"password": {testPassword}, "return_to": {"/admin"}}); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "Your second factor is a passkey") {
		t.Fatalf("a password-only step-up by a passkey-only admin: %s, want 400 pointing to the passkey", p)
	}
	if p := g.do(t, c, "GET", "/admin", nil); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/admin/step-up") {
		t.Fatalf("the console after the refused step-up: %s (Location %q), want the step-up page again", p, p.Header.Get("Location"))
	}
}
