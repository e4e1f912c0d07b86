package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"gatehouse/internal/storetest"
)

// chromiumPath is Debian's Chromium (apt-get install -y chromium).
const chromiumPath = "/usr/bin/chromium"

// screenshotsEnv, set to 1, makes the tests write docs/screenshots/*.png.
// Off by default, so that a test run does not change the tree.
const screenshotsEnv = "GATEHOUSE_UPDATE_SCREENSHOTS"

// step is how long one browser step may take.
const step = 30 * time.Second

// newBrowser starts headless Chromium with a fresh profile and returns the
// context of its first tab. The context that launches the browser has no
// timeout (a timeout there would kill the browser); steps derive theirs.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		storetest.Unavailable(t, "Chromium", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first action starts the browser: it runs on the tab's own
	// context, since the browser lives as long as that context.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		storetest.Unavailable(t, "Chromium", err)
	}
	// No smooth scrolling: a click aims at where its target is, and a page
	// still scrolling to a #fragment moves the target under the pointer.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
	}); err != nil {
		t.Fatalf("Emulation.setEmulatedMedia: %v", err)
	}
	return ctx
}

// onNewDocument runs a script in every page of the tab before its own.
func onNewDocument(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
		t.Fatalf("Page.addScriptToEvaluateOnNewDocument: %v", err)
	}
}

// recordCSPViolations makes every page of the tab remember what its
// Content-Security-Policy blocked; noCSPViolations checks the list.
func recordCSPViolations(t *testing.T, ctx context.Context) {
	t.Helper()
	onNewDocument(t, ctx, `window.__csp = []; document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline")));`)
}

func noCSPViolations(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	if v, err := eval[[]string](ctx, `window.__csp || []`); err != nil || len(v) > 0 {
		t.Errorf("%s: the page's CSP blocked %v (%v)", where, v, err)
	}
}

// run runs browser steps with a timeout derived from the tab's context.
func run(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	sctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	return chromedp.Do(sctx, steps...)
}

// must runs steps and fails the test, with where the browser was, when
// one fails.
func must(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := run(ctx, steps...); err != nil {
		loc, _ := eval[string](ctx, `location.href + "\n" + document.body.innerText.slice(0, 1500)`)
		t.Fatalf("%s: %v\nthe browser shows: %s", what, err, loc)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) in the page.
func eval[T any](ctx context.Context, js string) (T, error) {
	sctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	return chromedp.Run(sctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// waitFor polls a JavaScript condition until it is true. Each poll is a
// fresh evaluation, so the condition may span a navigation.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(step)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, err = eval[bool](ctx, cond); err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	loc, _ := eval[string](ctx, `location.href + "\n" + document.body.innerText.slice(0, 1500)`)
	t.Fatalf("waiting for %s (%s): timed out (last error: %v)\nthe browser shows: %s", what, cond, err, loc)
}

// pathIs is a condition on the page's path and, when given, the text of
// its h1.
func pathIs(path, h1 string) string {
	c := fmt.Sprintf(`document.readyState === "complete" && location.pathname === %q`, path)
	if h1 != "" {
		c += fmt.Sprintf(` && !!document.querySelector("h1") && document.querySelector("h1").textContent.trim() === %q`, h1)
	}
	return c
}

func bodyHas(text string) string {
	return fmt.Sprintf(`document.readyState === "complete" && document.body.innerText.includes(%q)`, text)
}

// typeInto types text into an input, as a user would.
func typeInto(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), text)
}

func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)
}

// passkeysOn reports whether this build serves the passkey API (the pages
// show passkey buttons only then).
func passkeysOn(t *testing.T, g *gatehouse) bool {
	t.Helper()
	p := g.do(t, browserClient(t), "GET", "/login", nil)
	return strings.Contains(p.Body, `class="passkey-login"`)
}

// addAuthenticator gives the tab a virtual platform authenticator that
// holds discoverable credentials and verifies the user at once. WebAuthn
// is enabled per tab, after its first navigation.
func addAuthenticator(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	_, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:            webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:        webauthn.Ctap2versionCtap21,
			Transport:           webauthn.AuthenticatorTransportInternal,
			HasResidentKey:      true,
			HasUserVerification: true,
			IsUserVerified:      true,
			// Must be set explicitly: left out it is sent as false, and
			// navigator.credentials.create then waits for ever.
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
}

// screenshot writes docs/screenshots/<name>.png of the current page at
// width×height when GATEHOUSE_UPDATE_SCREENSHOTS=1. full captures the
// whole page, not only the viewport.
func screenshot(t *testing.T, ctx context.Context, name string, width, height int64, full bool) {
	t.Helper()
	mobile := width < 600
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	must(t, ctx, "resize to "+name, chromedp.EmulateViewport(width, height, opts...), chromedp.Reload())
	waitFor(t, ctx, "the page after resizing", `document.readyState === "complete"`)
	// Responsive: nothing is wider than the viewport.
	// A mobile browser zooms out to fit a page wider than the screen
	// (innerWidth grows with it), so compare with the emulated width.
	if w, _ := eval[int](ctx, `Math.max(document.documentElement.scrollWidth, window.innerWidth)`); w > int(width) {
		t.Errorf("%s: the page is %d px wide at %d×%d: it scrolls sideways or is zoomed out", name, w, width, height)
	}
	if os.Getenv(screenshotsEnv) == "1" {
		sctx, cancel := context.WithTimeout(ctx, step)
		var (
			png []byte
			err error
		)
		if full {
			png, err = chromedp.Run(sctx, chromedp.FullScreenshot(100))
		} else {
			png, err = chromedp.Run(sctx, chromedp.CaptureScreenshot())
		}
		cancel()
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		dir := filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/screenshots/%s.png", name)
	}
	must(t, ctx, "restore the viewport", chromedp.EmulateViewport(1280, 800, chromedp.EmulateScale(1)))
}

// TestBrowserJourney walks one user through the hosted pages in a real
// browser: register, verify the address from the mailed link, sign in,
// add a passkey, sign out, sign in with the passkey, create an API key,
// end another session, and reset the password from the mailed link.
func TestBrowserJourney(t *testing.T) {
	ctx := newBrowser(t)
	recordCSPViolations(t, ctx)
	g := startGatehouse(t, providerYAML, nil)
	const email = "grace@example.com"

	// Register.
	must(t, ctx, "register",
		chromedp.Navigate(g.URL+"/register"),
		typeInto("#name", "Grace Hopper"),
		typeInto("#email", email),
		typeInto("#password", testPassword),
		click(`form[action="/register"] button[type=submit]`),
	)
	waitFor(t, ctx, "the check-your-email page", bodyHas("Check your email"))
	noCSPViolations(t, ctx, "register")

	// Verify the address from the mailed link: opening it shows a form.
	link := g.mailLink(t, email, "/verify-email")
	must(t, ctx, "open the verification link", chromedp.Navigate(link))
	waitFor(t, ctx, "the verify form", pathIs("/verify-email", "Verify your email address"))
	must(t, ctx, "verify", click(`form[action="/verify-email"] button[type=submit]`))
	waitFor(t, ctx, "verified", bodyHas("Email address verified"))

	// Sign in with the keyboard only: the email field has focus, Tab
	// reaches the password, Enter submits.
	must(t, ctx, "open the login page", chromedp.Navigate(g.URL+"/login"))
	waitFor(t, ctx, "the login page", pathIs("/login", "Sign in"))
	noCSPViolations(t, ctx, "login page")
	screenshot(t, ctx, "login-desktop", 1280, 800, false)
	screenshot(t, ctx, "login-mobile", 390, 844, false)
	if id, _ := eval[string](ctx, `document.activeElement.id`); id != "email" {
		t.Errorf("the login page starts with focus on %q, want the email field", id)
	}
	must(t, ctx, "type the email", chromedp.KeyEvent(email), chromedp.KeyEvent("\t"))
	if id, _ := eval[string](ctx, `document.activeElement.id`); id != "password" {
		t.Fatalf("Tab from the email field goes to %q, want the password field", id)
	}
	if outline, _ := eval[string](ctx, `getComputedStyle(document.activeElement).outlineStyle`); outline == "none" {
		t.Errorf("the focused password field shows no focus outline")
	}
	must(t, ctx, "type the password and press Enter", chromedp.KeyEvent(testPassword), chromedp.KeyEvent("\r"))
	waitFor(t, ctx, "the account page", pathIs("/account", "Your account"))
	waitFor(t, ctx, "the verified address", bodyHas("Verified"))

	// Passkeys are on for a localhost public URL: their absence is a failure.
	if !passkeysOn(t, g) {
		t.Fatal("the login page offers no passkey sign-in")
	}
	t.Run("add a passkey, sign out, sign in with it", func(t *testing.T) {
		addAuthenticator(t, ctx)
		must(t, ctx, "add a passkey", click(`form.passkey-add button`))
		// The page the script navigated to, fully loaded: a click on a page
		// that is still being replaced can be lost.
		waitFor(t, ctx, "the new passkey", pathIs("/account", "Your account")+` && location.search.includes("done=passkey-added") && document.querySelectorAll("li[data-passkey]").length === 1`)
		noCSPViolations(t, ctx, "account page after adding a passkey")

		must(t, ctx, "sign out", click(`form[action="/logout"] button`))
		waitFor(t, ctx, "the login page after signing out", pathIs("/login", "Sign in")+` && document.body.innerText.includes("You are signed out.")`)
		if r := g.do(t, browserClient(t), "GET", "/account", nil); r.Status != http.StatusSeeOther {
			t.Fatalf("GET /account without a cookie: %s", r)
		}

		must(t, ctx, "sign in with a passkey", click(`form.passkey-login button`))
		waitFor(t, ctx, "the account page after the passkey login", pathIs("/account", "Your account"))
		noCSPViolations(t, ctx, "account page after the passkey login")
		if who, _ := eval[string](ctx, `document.querySelector(".who").textContent`); who != email {
			t.Fatalf("signed in with the passkey as %q, want %s", who, email)
		}

		must(t, ctx, "rename the passkey",
			click(`li[data-passkey] details.rename > summary`),
			chromedp.WaitVisible(chromedp.CSS(`li[data-passkey] input[name=name]`)),
			chromedp.Evaluate[chromedp.Void](`document.querySelector("li[data-passkey] input[name=name]").value = ""`),
			typeInto(`li[data-passkey] input[name=name]`, "Work laptop"),
			click(`li[data-passkey] form[action$="/rename"] button`),
		)
		waitFor(t, ctx, "the renamed passkey", `location.search.includes("done=passkey-renamed") && document.querySelector("li[data-passkey] .item-title").textContent === "Work laptop"`)
	})

	// Create an API key with the form (shown once), then revoke nothing.
	must(t, ctx, "open the API key form",
		chromedp.Navigate(g.URL+"/account#api-keys"),
		click(`details.create > summary`),
		typeInto("#key-name", "Nightly export"),
		click(`form[action="/account/api-keys"] button[type=submit]`),
	)
	waitFor(t, ctx, "the new key", `!!document.querySelector("#new-key") && document.querySelector("#new-key").textContent.startsWith("gth_")`)
	key, _ := eval[string](ctx, `document.querySelector("#new-key").textContent`)
	if r := g.do(t, browserClient(t), "GET", "/v1/me", nil, "X-API-Key", key); r.Status != http.StatusOK {
		t.Fatalf("the API key from the page on GET /v1/me: %s", r)
	}

	// Another session (say, a phone), made through the JSON API as a
	// same-origin page would; the account page ends it.
	body, _ := json.Marshal(map[string]string{"email": email, "password": testPassword})
	req, _ := http.NewRequest("POST", g.Direct+"/v1/sessions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	_ = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	var phone *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "gatehouse_session" {
			phone = c
		}
	}
	if res.StatusCode != http.StatusCreated || phone == nil || created.Session.ID == "" {
		t.Fatalf("POST /v1/sessions: %d, cookie %v, id %q", res.StatusCode, phone, created.Session.ID)
	}
	phoneMe := func() int {
		r, _ := http.NewRequest("GET", g.Direct+"/v1/me", nil)
		r.AddCookie(phone)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := phoneMe(); st != http.StatusOK {
		t.Fatalf("the second session on GET /v1/me: %d", st)
	}

	must(t, ctx, "reload the account page", chromedp.Navigate(g.URL+"/account"))
	waitFor(t, ctx, "the account page", pathIs("/account", "Your account"))
	noCSPViolations(t, ctx, "account page")
	screenshot(t, ctx, "account-desktop", 1280, 800, true)
	screenshot(t, ctx, "account-mobile", 390, 844, true)

	sel := fmt.Sprintf(`li[data-session=%q] form button`, created.Session.ID)
	if label, _ := eval[string](ctx, fmt.Sprintf(`document.querySelector(%q).getAttribute("aria-label")`, sel)); !strings.Contains(label, "Safari on iPhone") {
		t.Errorf("the other session's button is labelled %q, want it to name Safari on iPhone", label)
	}
	must(t, ctx, "sign out the other session", click(sel))
	waitFor(t, ctx, "the session gone", `location.search.includes("done=session-revoked") && !document.querySelector(`+jsString(fmt.Sprintf(`li[data-session=%q]`, created.Session.ID))+`)`)
	if st := phoneMe(); st != http.StatusUnauthorized {
		t.Fatalf("the revoked session on GET /v1/me: want 401, got %d", st)
	}

	must(t, ctx, "remove the passkey", click(`li[data-passkey] form[action$="/delete"] button`))
	waitFor(t, ctx, "no passkey", `location.search.includes("done=passkey-removed") && !document.querySelector("li[data-passkey]")`)

	// Forgotten password: the mailed link opens a form; submitting it
	// sets the new password and ends every session.
	must(t, ctx, "ask for a reset link",
		chromedp.Navigate(g.URL+"/forgot-password"),
		typeInto("#email", email),
		click(`form[action="/forgot-password"] button[type=submit]`),
	)
	waitFor(t, ctx, "the reset confirmation", bodyHas("a reset link is on its way"))
	reset := g.mailLink(t, email, "/reset-password")
	const newPassword = "a whole new passphrase"
	must(t, ctx, "set a new password",
		chromedp.Navigate(reset),
		typeInto("#new_password", newPassword),
		click(`form[action="/reset-password"] button[type=submit]`),
	)
	waitFor(t, ctx, "the password changed", bodyHas("Your password was changed"))
	must(t, ctx, "open the account page", chromedp.Navigate(g.URL+"/account"))
	waitFor(t, ctx, "the login page (the reset ended the session)", pathIs("/login", "Sign in"))
	must(t, ctx, "sign in with the new password",
		typeInto("#email", email),
		typeInto("#password", newPassword),
		click(`form[action="/login"] button[type=submit]`),
	)
	waitFor(t, ctx, "the account page", pathIs("/account", "Your account"))

	// A wrong password shows the one generic message, focusable by
	// assistive tools as an alert.
	must(t, ctx, "sign out", click(`form[action="/logout"] button`))
	waitFor(t, ctx, "the login page", pathIs("/login", "Sign in"))
	must(t, ctx, "sign in with a wrong password",
		typeInto("#email", email),
		typeInto("#password", "not my password"),
		click(`form[action="/login"] button[type=submit]`),
	)
	waitFor(t, ctx, "the generic message", `!!document.querySelector('[role=alert]') && document.querySelector('[role=alert]').textContent === "Email or password is incorrect."`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestSwaggerUI logs in through Swagger UI's Authorize dialog (OAuth2
// password flow) and runs "Try it out" on GET /v1/me.
func TestSwaggerUI(t *testing.T) {
	ctx := newBrowser(t)
	g := startGatehouse(t, "", nil)
	g.register(t, "ada@example.com", "Ada")

	must(t, ctx, "open /docs", chromedp.Navigate(g.URL+"/docs"))
	waitFor(t, ctx, "Swagger UI", `!!document.querySelector(".swagger-ui .auth-wrapper .authorize")`)
	must(t, ctx, "open the Authorize dialog", click(".swagger-ui .auth-wrapper .authorize"))
	waitFor(t, ctx, "the password flow form", `!!document.querySelector("#oauth_username")`)
	must(t, ctx, "log in in the dialog",
		typeInto("#oauth_username", "ada@example.com"),
		typeInto("#oauth_password", testPassword),
		// The dialog lists every scheme; the password flow's form is the
		// one with the username field.
		click(".auth-container:has(#oauth_username) .auth-btn-wrapper .authorize"),
	)
	waitFor(t, ctx, "the dialog to show Logout", `[...document.querySelectorAll(".auth-container .auth-btn-wrapper button")].some(b => b.textContent.trim() === "Logout")`)
	must(t, ctx, "close the dialog", click(".modal-ux-header .close-modal"))

	op := "#operations-accounts-get-me"
	waitFor(t, ctx, "the GET /v1/me operation", `!!document.querySelector("`+op+`")`)
	must(t, ctx, "expand GET /v1/me", click(op+" .opblock-summary-control"))
	waitFor(t, ctx, "Try it out", `!!document.querySelector("`+op+` .try-out__btn")`)
	must(t, ctx, "Try it out", click(op+" .try-out__btn"))
	// Execute before the operation has loaded throws OperationNotFoundError.
	waitFor(t, ctx, "Execute", `!!document.querySelector("`+op+` .execute")`)
	must(t, ctx, "Execute", click(op+" .execute"))
	waitFor(t, ctx, "the response", `!!document.querySelector("`+op+` .live-responses-table tr.response .response-col_status")`)
	status, _ := eval[string](ctx, `document.querySelector("`+op+` .live-responses-table tr.response .response-col_status").textContent.trim()`)
	resp, _ := eval[string](ctx, `document.querySelector("`+op+` .live-responses-table tr.response .response-col_description").textContent`)
	if !strings.HasPrefix(status, "200") || !strings.Contains(resp, "ada@example.com") {
		t.Fatalf("Try it out on GET /v1/me: status %q, body %q", status, resp)
	}
}

// TestLoginPageScripts: the page's CSP blocks inline script in practice
// (an injected <script> does not run), and in a browser without WebAuthn
// the passkey button is hidden, and with it the "or" divider when nothing
// else is offered.
func TestLoginPageScripts(t *testing.T) {
	ctx := newBrowser(t)
	recordCSPViolations(t, ctx)
	g := startGatehouse(t, "", nil)
	must(t, ctx, "open the login page", chromedp.Navigate(g.URL+"/login"))
	waitFor(t, ctx, "the login page", pathIs("/login", "Sign in"))
	noCSPViolations(t, ctx, "login page")
	ran, err := eval[bool](ctx, `(() => { const s = document.createElement("script"); s.textContent = "window.__ran = true"; document.body.appendChild(s); return window.__ran === true; })()`)
	if err != nil || ran {
		t.Fatalf("an inline script ran on /login (%v)", err)
	}
	if v, _ := eval[[]string](ctx, `window.__csp`); len(v) != 1 || !strings.HasPrefix(v[0], "script-src") {
		t.Fatalf("CSP violations after injecting an inline script: %v, want one script-src violation", v)
	}

	if !passkeysOn(t, g) {
		t.Fatal("the login page offers no passkey sign-in")
	}
	waitFor(t, ctx, "the passkey button", `!!document.querySelector("form.passkey-login") && !document.querySelector("form.passkey-login").hidden`)
	onNewDocument(t, ctx, `delete window.PublicKeyCredential;`)
	must(t, ctx, "reload without WebAuthn", chromedp.Navigate(g.URL+"/login"))
	waitFor(t, ctx, "the login page", pathIs("/login", "Sign in"))
	waitFor(t, ctx, "the passkey button and divider hidden",
		`document.querySelector("form.passkey-login").hidden && document.querySelector(".divider").hidden && document.querySelector(".passkey-login button").offsetParent === null`)
}
