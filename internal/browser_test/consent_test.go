package browsertest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserConsent walks the OpenID provider's consent page in Chromium
// (SPEC §14): a relying party (a local server on a loopback redirect URI)
// sends the signed-in browser to /oauth2/authorize; the consent page names
// the client and the scopes, without JavaScript and without CSP
// violations; Deny returns access_denied; Allow returns a code, and a
// second request for the same scopes skips the page.
func TestBrowserConsent(t *testing.T) {
	ctx := newBrowser(t)
	recordCSPViolations(t, ctx)

	var mu sync.Mutex
	var got []url.Values
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r) // the browser's favicon request, say
			return
		}
		mu.Lock()
		got = append(got, r.URL.Query())
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>RP</title><h1>Back at the application</h1>")
	}))
	rp.Listener = ln
	rp.Start()
	t.Cleanup(rp.Close)
	redirect := rp.URL + "/cb"

	yaml := fmt.Sprintf(`clients:
  - id: wiki
    name: Team Wiki
    type: public
    redirect_uris: [%q]
    scopes: [openid, profile, email]
`, redirect)
	g := startGatehouse(t, yaml, nil)
	const email = "lin@example.com"
	g.register(t, email, "")
	signIn := func() {
		t.Helper()
		must(t, ctx, "sign in",
			chromedp.Navigate(g.URL+"/login"),
			typeInto("#email", email),
			typeInto("#password", testPassword),
			click(`form[action="/login"] button[type=submit]`),
		)
		waitFor(t, ctx, "the account page", pathIs("/account", "Your account"))
	}
	signIn()
	last := func() url.Values {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			return nil
		}
		return got[len(got)-1]
	}
	answers := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	// arrived waits until the application has received its n-th answer.
	arrived := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for answers() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the application received %d answers, want %d", answers(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	authorize := func(state string) string {
		q := url.Values{"response_type": {"code"}, "client_id": {"wiki"}, "redirect_uri": {redirect},
			"scope": {"openid email"}, "state": {state}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
		return g.URL + "/oauth2/authorize?" + q.Encode()
	}

	// Deny.
	must(t, ctx, "open the authorization request", chromedp.Navigate(authorize("s1")))
	waitFor(t, ctx, "the consent page", pathIs("/oauth2/authorize", "Allow access?")+` && document.body.innerText.includes("Team Wiki")`)
	noCSPViolations(t, ctx, "the consent page")
	if n, _ := eval[int](ctx, `document.scripts.length`); n != 0 {
		t.Errorf("the consent page loads %d scripts, want none", n)
	}
	if text, _ := eval[string](ctx, `document.querySelector("ul.scopes").innerText`); !strings.Contains(text, "email address") {
		t.Errorf("the consent page does not say what the scopes allow: %q", text)
	}
	must(t, ctx, "deny", click(`button[value=deny]`))
	waitFor(t, ctx, "back at the application", `location.origin === `+jsString(rp.URL))
	arrived(1)
	if q := last(); q.Get("error") != "access_denied" || q.Get("state") != "s1" || q.Get("code") != "" {
		t.Fatalf("after Deny the application got %v, want error=access_denied with the state", q)
	}

	// Allow: a code.
	must(t, ctx, "open the authorization request again", chromedp.Navigate(authorize("s2")))
	waitFor(t, ctx, "the consent page", pathIs("/oauth2/authorize", "Allow access?"))
	must(t, ctx, "allow", click(`button[value=allow]`))
	waitFor(t, ctx, "back at the application", `location.origin === `+jsString(rp.URL))
	arrived(2)
	if q := last(); q.Get("code") == "" || q.Get("state") != "s2" || q.Get("iss") != g.URL {
		t.Fatalf("after Allow the application got %v, want a code, the state and iss", q)
	}
	noCSPViolations(t, ctx, "after Allow")

	// Remembered: no page the second time.
	must(t, ctx, "a third request", chromedp.Navigate(authorize("s3")))
	arrived(3)
	if q := last(); q.Get("code") == "" || q.Get("state") != "s3" {
		t.Fatalf("with the consent remembered the application got %v, want a code", q)
	}

	// The account page lists the grant and takes it back.
	must(t, ctx, "open the account page", chromedp.Navigate(g.URL+"/account#consents"))
	waitFor(t, ctx, "the grant", `!!document.querySelector('li[data-consent="wiki"]')`)
	must(t, ctx, "remove the access", click(`li[data-consent="wiki"] button`))
	waitFor(t, ctx, "the grant removed", `location.search.includes("done=consent-revoked") && !document.querySelector('li[data-consent="wiki"]')`)
}
