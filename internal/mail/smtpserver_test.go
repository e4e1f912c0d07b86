package mail_test

import (
	"testing"
	"time"

	"gatehouse/internal/testserver/smtptest"
)

// The test SMTP server (a real emersion/go-smtp server on 127.0.0.1 with an
// in-memory backend) lives in internal/testserver/smtptest, shared with
// internal/cli's tests; these names keep this package's tests as written.
type (
	testSMTPServer  = smtptest.Server
	testSMTPOptions = smtptest.Options
)

// startTestSMTPServer starts a test SMTP server; it is closed when the test
// ends. With opts.ListenHost that cannot be bound it returns nil.
func startTestSMTPServer(t testing.TB, opts testSMTPOptions) *testSMTPServer {
	t.Helper()
	return smtptest.Start(t, opts)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
