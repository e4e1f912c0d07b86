// Package httptest holds HTTP-level tests of Gatehouse's public
// surface, run against a real `gatehouse serve` in the test's own process
// (internal/testserver) and reached over its listener, as a client would:
//
//   - the admin API (/v1/admin/users and /v1/admin/audit): listing and
//     searching with the keyset cursor, get, PATCH of roles, disabled and
//     email_verified, DELETE, POST …/revoke, and every refusal — no
//     credential, a non-admin, an access token whose admin role was taken
//     away after it was issued (SPEC §18 H5), an API key without admin, a
//     tampered or foreign cursor (H3), an unknown id;
//   - CSRF on every unsafe route: the routes come from the server's own
//     OpenAPI document and from the mux registrations in internal/server's
//     source, so a new route cannot escape; each is sent with a valid
//     session cookie cross-site (403, nothing changes) and same-origin (not
//     refused); bearer tokens and API keys are exempt;
//   - problem documents (RFC 9457) on every /v1 error, and the statuses of
//     SPEC §6 and §12: 401 with WWW-Authenticate, 403 with code
//     insufficient_scope (§18 H1), 413 beyond 64 KiB, 415 for a wrong
//     content type.
//
// The tests are in the external test package httptest_test; this file
// exists so that the directory is a package.
package httptest
