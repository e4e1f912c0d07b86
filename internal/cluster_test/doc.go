// Package clustertest checks that Gatehouse scales out (SPEC §0): its tests
// build the gatehouse binary, start two real `gatehouse serve` processes on
// one PostgreSQL database and one Redis, behind one public URL, and check
// that nothing that must be shared lives in one process — sessions and
// their revocation, refresh-token reuse detection, signing keys and their
// rotation, login rate limits and lockouts — and that the nodes fail closed
// while Redis is down and recover by themselves when it comes back.
//
// Each test makes its own database (on the server named by
// GATEHOUSE_TEST_POSTGRES_URL, default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable, whose user may
// CREATE DATABASE) and its own redis-server process (from PATH), and
// removes both afterwards. When either is unavailable the tests skip, or
// fail with GATEHOUSE_TEST_REQUIRE_ALL=1.
//
// The package holds tests only; this file exists so that it builds.
package clustertest
