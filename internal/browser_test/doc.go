// Package browsertest checks Gatehouse's hosted pages end to end: each test
// starts a real `gatehouse serve` in-process (cli.Run) on
// http://localhost:PORT with mail going to the outbox folder, and drives it
// either with a plain HTTP client (pages_test.go: forms without
// JavaScript, redirects, CSRF, CSP, messages) or with headless Chromium
// through the DevTools protocol (browser_test.go: the whole journey in a
// real browser, passkeys through a virtual authenticator, Swagger UI).
//
// Browser tests need /usr/bin/chromium (Debian: apt-get install -y
// chromium); without it they skip, or fail with GATEHOUSE_TEST_REQUIRE_ALL=1.
// With GATEHOUSE_UPDATE_SCREENSHOTS=1 they also write the screenshots under
// docs/screenshots/.
//
// The package holds tests only; this file exists so that it builds.
package browsertest
