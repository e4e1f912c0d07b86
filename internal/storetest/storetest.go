// Package storetest is the contract every Gatehouse storage backend must
// satisfy. The auth package talks to storage only through small interfaces;
// their doc comments say what a backend must do, and this package says it
// in code: a backend is correct when the suites of the interfaces it
// implements pass against it. Each backend's own test calls them with a
// function that opens a fresh, migrated, empty store, in the manner of Ory
// Kratos' session/test/persistence.go.
//
//	func TestSQLite(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store {
//			return openFreshSQLite(t)
//		})
//	}
//
// One suite per interface:
//
//	Run            users, refresh families, audit, signing keys (Store)
//	RunSessions    auth.SessionStore
//	RunLimits      auth.RateLimiter and auth.LockoutStore
//	RunTokens      auth.TokenStore (reset and verification tokens)
//	RunChallenges  auth.ChallengeStore (OIDC and passkey ceremonies)
//	RunPasskeys    auth.PasskeyStore
//	RunAPIKeys     auth.APIKeyStore
//	RunIdentities  auth.IdentityStore
//	RunMailJobs    auth.MailQueue and the mail worker's mail.JobStore
//	RunMFA         auth.MFAStore (TOTP, recovery codes, sign-in challenges)
//	RunOAuthProvider  clients, consents and authorization codes (SPEC §14)
//	RunRevocations auth.RevocationStore, and the events every revoking
//	               method records in its own transaction (SPEC §15)
//	RunWebhooks    auth.WebhookStore, and the webhook messages every audit
//	               append queues in its own transaction
//	RunAdminStats  auth.AdminStatsStore: the admin console's overview counts
//	RunAuditStream auth.AuditStream: the audit log newest first, filtered,
//	               by keyset position, one event at a time
//	RunAdminUsers  auth.UserDirectory: the admin console's account search
//	               (email order in bytes, keyset both ways, filters); the
//	               lockout reader (auth.LockoutInspector) is in RunLimits
//
// The suites pin down behaviour the domain relies on and that is easy to
// get subtly wrong in a new backend: every field round-trips (times at
// microsecond precision, roles in order, binary values intact), missing
// rows are auth.ErrNotFound, duplicates are refused with the error the
// interface names, multi-row writes happen whole or not at all, listings
// keep their order, deleting a user removes what it owned (where the
// backend keeps users), and every single-use thing is single-use under
// concurrency: of 32 callers racing to consume one token, take one
// challenge, rotate one refresh token, lease one mail job, swap one
// passkey record or password hash, or redeem one recovery code, TOTP time
// step or MFA challenge, exactly one wins.
//
// Unavailable is the shared skip-or-fail rule for tests that need an
// external service (PostgreSQL, Redis, a browser).
//
// This is not a _test package so that every backend's tests can import it;
// it imports "testing" and must only be used from tests.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// Store is everything a Gatehouse storage backend implements.
type Store interface {
	auth.UserStore
	auth.RefreshStore
	auth.AuditStore
	auth.KeyStore
}

// RequireAllEnv names the environment variable that, set to "1", turns the
// skip of a test whose external service is unavailable into a failure (CI
// sets it so that a missing service cannot pass silently).
const RequireAllEnv = "GATEHOUSE_TEST_REQUIRE_ALL"

// Unavailable ends a test that cannot reach an external service it needs:
// it skips, or fails when GATEHOUSE_TEST_REQUIRE_ALL=1. what names the
// service and should say how to make it available, e.g. "PostgreSQL at
// postgres://… (set GATEHOUSE_TEST_POSTGRES_URL)".
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv(RequireAllEnv) == "1" {
		t.Fatalf("%s is unavailable: %v\n%s=1, so this is a failure, not a skip", what, err, RequireAllEnv)
	}
	t.Skipf("%s is unavailable: %v\nskipping; make it available to run this test (set %s=1 to fail instead of skipping)", what, err, RequireAllEnv)
}

// Run runs the contract suite. open must return a fresh, migrated, empty
// store each time it is called (once per subtest) and arrange its cleanup
// with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Helper()
	t.Run("Users", func(t *testing.T) {
		testUsers(t, open)
		testUserFlags(t, open)
		t.Run("List", func(t *testing.T) { testListUsers(t, open) })
		testUserRaces(t, open)
	})
	t.Run("Refresh", func(t *testing.T) {
		testRefresh(t, open)
		testRefreshAtomic(t, open)
		testRefreshLevels(t, open)
		t.Run("LoginFinisher", func(t *testing.T) { testLoginFinisher(t, open) })
	})
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, open) })
}

// t0 has microsecond precision, the precision every backend must keep, and
// a non-UTC zone: stores may return another location, so times are compared
// with Equal.
var t0 = time.Date(2025, time.March, 14, 15, 9, 26, 535897000, time.FixedZone("UTC+2", 2*3600))

func at(d time.Duration) time.Time { return t0.Add(d) }

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ---- users ----

func fullUser(id, email string) *auth.User {
	return &auth.User{
		ID:            id,
		Email:         email,
		EmailVerified: true,
		Name:          "Zoë O'Brien-Łukasz 🙂",
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
		Roles:         []string{"user", "admin", "auditor"}, // deliberately not sorted
		Disabled:      true,
		CreatedAt:     at(0),
		UpdatedAt:     at(90*time.Minute + 123*time.Microsecond),
	}
}

func minimalUser(id, email string) *auth.User {
	return &auth.User{ID: id, Email: email, CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
}

func createUser(t *testing.T, s Store, u *auth.User) {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.ID, err)
	}
}

func getUser(t *testing.T, s Store, id string) *auth.User {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}

// checkUser compares every field; nil and empty Roles are equal.
func checkUser(t *testing.T, got, want *auth.User) {
	t.Helper()
	if got == nil {
		t.Fatalf("user %s: got nil", want.ID)
	}
	if got.ID != want.ID {
		t.Errorf("ID = %q, want %q", got.ID, want.ID)
	}
	if got.Email != want.Email {
		t.Errorf("Email = %q, want %q", got.Email, want.Email)
	}
	if got.EmailVerified != want.EmailVerified {
		t.Errorf("EmailVerified = %v, want %v", got.EmailVerified, want.EmailVerified)
	}
	if got.Name != want.Name {
		t.Errorf("Name = %q, want %q", got.Name, want.Name)
	}
	if got.PasswordHash != want.PasswordHash {
		t.Errorf("PasswordHash = %q, want %q", got.PasswordHash, want.PasswordHash)
	}
	if !slices.Equal(got.Roles, want.Roles) {
		t.Errorf("Roles = %q, want %q", got.Roles, want.Roles)
	}
	if got.Disabled != want.Disabled {
		t.Errorf("Disabled = %v, want %v", got.Disabled, want.Disabled)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, want.UpdatedAt)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

func testUsers(t *testing.T, open func(t *testing.T) Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			user *auth.User
		}{
			{"EveryField", fullUser("u-full", "full@example.com")},
			{"ZeroValues", minimalUser("u-min", "min@example.com")},
			{"OneRole", func() *auth.User {
				u := minimalUser("u-one", "one@example.com")
				u.Roles = []string{"admin"}
				return u
			}()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				want := *tc.user
				want.Roles = slices.Clone(tc.user.Roles)
				createUser(t, s, tc.user)

				byID := getUser(t, s, want.ID)
				checkUser(t, byID, &want)

				byEmail, err := s.UserByEmail(t.Context(), want.Email)
				if err != nil {
					t.Fatalf("UserByEmail: %v", err)
				}
				checkUser(t, byEmail, &want)
			})
		}
	})

	t.Run("DuplicateEmail", func(t *testing.T) {
		s := open(t)
		first := fullUser("u-1", "taken@example.com")
		createUser(t, s, first)

		second := minimalUser("u-2", "taken@example.com")
		second.Name = "Intruder"
		err := s.CreateUser(t.Context(), second)
		wantErr(t, "CreateUser with a taken email", err, auth.ErrEmailTaken)

		got, err := s.UserByEmail(t.Context(), "taken@example.com")
		if err != nil {
			t.Fatalf("UserByEmail: %v", err)
		}
		checkUser(t, got, fullUser("u-1", "taken@example.com"))
		_, err = s.UserByID(t.Context(), "u-2")
		wantErr(t, "UserByID of the refused user", err, auth.ErrNotFound)
	})

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		s := open(t)
		createUser(t, s, fullUser("u-1", "known@example.com"))
		now := at(time.Hour)
		for _, tc := range []struct {
			name string
			call func(ctx context.Context) error
		}{
			{"UserByID", func(ctx context.Context) error { _, err := s.UserByID(ctx, "nobody"); return err }},
			{"UserByEmail", func(ctx context.Context) error { _, err := s.UserByEmail(ctx, "nobody@example.com"); return err }},
			{"UpdateUserName", func(ctx context.Context) error { return s.UpdateUserName(ctx, "nobody", "x", now) }},
			{"SetPasswordHash", func(ctx context.Context) error { return s.SetPasswordHash(ctx, "nobody", "", "x", now) }},
			{"SetRoles", func(ctx context.Context) error { return s.SetRoles(ctx, "nobody", []string{"admin"}, now) }},
			{"ChangePassword", func(ctx context.Context) error { return s.ChangePassword(ctx, "nobody", "x", now) }},
			{"DeleteUser", func(ctx context.Context) error { return s.DeleteUser(ctx, "nobody") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantErr(t, tc.name, tc.call(t.Context()), auth.ErrNotFound)
			})
		}
		// None of that touched the existing user.
		checkUser(t, getUser(t, s, "u-1"), fullUser("u-1", "known@example.com"))
	})

	t.Run("Update", func(t *testing.T) {
		now := at(3*time.Hour + 7*time.Microsecond)
		for _, tc := range []struct {
			name   string
			update func(ctx context.Context, s Store, id string) error
			apply  func(u *auth.User) // the expected change, besides UpdatedAt
		}{
			{
				"UpdateUserName",
				func(ctx context.Context, s Store, id string) error { return s.UpdateUserName(ctx, id, "New Name", now) },
				func(u *auth.User) { u.Name = "New Name" },
			},
			{
				"UpdateUserNameEmpty",
				func(ctx context.Context, s Store, id string) error { return s.UpdateUserName(ctx, id, "", now) },
				func(u *auth.User) { u.Name = "" },
			},
			{
				"SetPasswordHash",
				func(ctx context.Context, s Store, id string) error {
					return s.SetPasswordHash(ctx, id, fullUser(id, "").PasswordHash, "$2a$10$legacybcrypthashlegacybcrypthashlegacybcrypthashxx", now)
				},
				func(u *auth.User) { u.PasswordHash = "$2a$10$legacybcrypthashlegacybcrypthashlegacybcrypthashxx" },
			},
			{
				"SetRoles",
				func(ctx context.Context, s Store, id string) error {
					return s.SetRoles(ctx, id, []string{"support", "admin"}, now)
				},
				func(u *auth.User) { u.Roles = []string{"support", "admin"} },
			},
			{
				"SetRolesEmpty",
				func(ctx context.Context, s Store, id string) error { return s.SetRoles(ctx, id, []string{}, now) },
				func(u *auth.User) { u.Roles = nil },
			},
			{
				"SetRolesNil",
				func(ctx context.Context, s Store, id string) error { return s.SetRoles(ctx, id, nil, now) },
				func(u *auth.User) { u.Roles = nil },
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				createUser(t, s, fullUser("u-1", "one@example.com"))
				createUser(t, s, fullUser("u-2", "two@example.com"))

				if err := tc.update(t.Context(), s, "u-1"); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				want := fullUser("u-1", "one@example.com")
				tc.apply(want)
				want.UpdatedAt = now
				checkUser(t, getUser(t, s, "u-1"), want)
				// Only the addressed user changed.
				checkUser(t, getUser(t, s, "u-2"), fullUser("u-2", "two@example.com"))
			})
		}
	})

	// SPEC §18 H7: a re-hash never overwrites a password changed meanwhile.
	t.Run("SetPasswordHashIsCompareAndSet", func(t *testing.T) {
		s := open(t)
		createUser(t, s, fullUser("u-1", "one@example.com"))
		old := fullUser("u-1", "").PasswordHash
		if err := s.ChangePassword(t.Context(), "u-1", "$argon2id$changed", at(4*time.Hour)); err != nil {
			t.Fatalf("ChangePassword: %v", err)
		}
		wantErr(t, "SetPasswordHash with a stale old hash", s.SetPasswordHash(t.Context(), "u-1", old, "$argon2id$rehashed", at(5*time.Hour)), auth.ErrNotFound)
		if got := getUser(t, s, "u-1").PasswordHash; got != "$argon2id$changed" {
			t.Fatalf("password hash after a stale re-hash = %q, want the changed one", got)
		}
		if err := s.SetPasswordHash(t.Context(), "u-1", "$argon2id$changed", "$argon2id$rehashed", at(5*time.Hour)); err != nil {
			t.Fatalf("SetPasswordHash with the current hash: %v", err)
		}
		if got := getUser(t, s, "u-1").PasswordHash; got != "$argon2id$rehashed" {
			t.Fatalf("password hash = %q, want the re-hash", got)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		createUser(t, s, fullUser("u-1", "gone@example.com"))
		createUser(t, s, fullUser("u-2", "stays@example.com"))

		if err := s.DeleteUser(t.Context(), "u-1"); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		_, err := s.UserByID(t.Context(), "u-1")
		wantErr(t, "UserByID after delete", err, auth.ErrNotFound)
		_, err = s.UserByEmail(t.Context(), "gone@example.com")
		wantErr(t, "UserByEmail after delete", err, auth.ErrNotFound)
		wantErr(t, "second DeleteUser", s.DeleteUser(t.Context(), "u-1"), auth.ErrNotFound)
		wantErr(t, "UpdateUserName after delete", s.UpdateUserName(t.Context(), "u-1", "x", at(time.Hour)), auth.ErrNotFound)
		checkUser(t, getUser(t, s, "u-2"), fullUser("u-2", "stays@example.com"))

		// The email is free again.
		createUser(t, s, minimalUser("u-3", "gone@example.com"))
		checkUser(t, getUser(t, s, "u-3"), minimalUser("u-3", "gone@example.com"))
	})

	t.Run("DeleteCascadesToRefreshTokens", func(t *testing.T) {
		s := open(t)
		createUser(t, s, fullUser("u-1", "one@example.com"))
		createUser(t, s, fullUser("u-2", "two@example.com"))
		createFamily(t, s, "f-1", "u-1", "tok-1a")
		createFamily(t, s, "f-2", "u-1", "tok-2a")
		createFamily(t, s, "f-3", "u-2", "tok-3a")
		rotate(t, s, "tok-1a", "tok-1b", at(time.Minute))

		if err := s.DeleteUser(t.Context(), "u-1"); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		for _, tok := range []string{"tok-1a", "tok-1b", "tok-2a"} {
			_, _, err := s.RefreshTokenByHash(t.Context(), hashOf(tok))
			wantErr(t, "RefreshTokenByHash("+tok+") after DeleteUser", err, auth.ErrNotFound)
		}
		if _, _, err := s.RefreshTokenByHash(t.Context(), hashOf("tok-3a")); err != nil {
			t.Errorf("another user's token: %v", err)
		}
	})

	t.Run("ChangePassword", func(t *testing.T) {
		s := open(t)
		createUser(t, s, fullUser("u-1", "one@example.com"))
		createUser(t, s, fullUser("u-2", "two@example.com"))
		createFamily(t, s, "f-1", "u-1", "tok-1")
		createFamily(t, s, "f-2", "u-1", "tok-2")
		createFamily(t, s, "f-old", "u-1", "tok-old")
		createFamily(t, s, "f-other", "u-2", "tok-other")
		earlier := at(10 * time.Minute)
		if err := s.RevokeFamily(t.Context(), "f-old", earlier); err != nil {
			t.Fatalf("RevokeFamily: %v", err)
		}

		now := at(2 * time.Hour)
		const newHash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaA"
		if err := s.ChangePassword(t.Context(), "u-1", newHash, now); err != nil {
			t.Fatalf("ChangePassword: %v", err)
		}

		want := fullUser("u-1", "one@example.com")
		want.PasswordHash, want.UpdatedAt = newHash, now
		checkUser(t, getUser(t, s, "u-1"), want)
		checkUser(t, getUser(t, s, "u-2"), fullUser("u-2", "two@example.com"))

		for _, tc := range []struct {
			token       string
			wantRevoked *time.Time
		}{
			{"tok-1", &now},
			{"tok-2", &now},
			{"tok-old", &earlier}, // already revoked: keeps its time
			{"tok-other", nil},    // another user's family is untouched
		} {
			_, f := getRefresh(t, s, tc.token)
			if !equalTimePtr(f.RevokedAt, tc.wantRevoked) {
				t.Errorf("family of %s: RevokedAt = %s, want %s", tc.token, fmtTimePtr(f.RevokedAt), fmtTimePtr(tc.wantRevoked))
			}
		}
	})
}

// ---- refresh tokens ----

func newFamily(id, userID string) *auth.RefreshFamily {
	return &auth.RefreshFamily{
		ID:        id,
		UserID:    userID,
		ClientID:  "client-" + id,
		Scope:     "openid profile offline_access",
		CreatedAt: at(time.Minute),
		ExpiresAt: at(30*24*time.Hour + 999999*time.Microsecond),
		// Not the default a store gives a family without a level, so that
		// a store that drops it fails the round trip.
		ACR:      auth.ACR2,
		AMR:      []string{"pwd", "otp", "mfa"},
		AuthTime: at(-3*time.Minute + 11*time.Microsecond),
	}
}

func newToken(id, familyID string, created time.Time) *auth.RefreshToken {
	return &auth.RefreshToken{ID: id, FamilyID: familyID, Hash: hashOf(id), CreatedAt: created}
}

// createFamily creates family id of userID whose first token is tokenID
// (hash hashOf(tokenID)).
func createFamily(t *testing.T, s Store, id, userID, tokenID string) (*auth.RefreshFamily, *auth.RefreshToken) {
	t.Helper()
	f := newFamily(id, userID)
	tok := newToken(tokenID, id, f.CreatedAt)
	if err := s.CreateFamily(t.Context(), f, tok); err != nil {
		t.Fatalf("CreateFamily(%s): %v", id, err)
	}
	return f, tok
}

func getRefresh(t *testing.T, s Store, tokenID string) (*auth.RefreshToken, *auth.RefreshFamily) {
	t.Helper()
	tok, f, err := s.RefreshTokenByHash(t.Context(), hashOf(tokenID))
	if err != nil {
		t.Fatalf("RefreshTokenByHash(%s): %v", tokenID, err)
	}
	if tok == nil || f == nil {
		t.Fatalf("RefreshTokenByHash(%s): token %v, family %v", tokenID, tok, f)
	}
	return tok, f
}

// rotate rotates oldID into nextID (same family) and requires it to win.
func rotate(t *testing.T, s Store, oldID, nextID string, now time.Time) *auth.RefreshToken {
	t.Helper()
	old, _ := getRefresh(t, s, oldID)
	next := newToken(nextID, old.FamilyID, now)
	ok, err := s.RotateRefreshToken(t.Context(), old.ID, next, now)
	if err != nil || !ok {
		t.Fatalf("RotateRefreshToken(%s → %s) = %v, %v; want true, nil", oldID, nextID, ok, err)
	}
	return next
}

func equalTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func fmtTimePtr(p *time.Time) string {
	if p == nil {
		return "nil"
	}
	return p.String()
}

func checkToken(t *testing.T, got, want *auth.RefreshToken) {
	t.Helper()
	if got.ID != want.ID || got.FamilyID != want.FamilyID || got.Hash != want.Hash {
		t.Errorf("token = {ID %q, FamilyID %q, Hash %q}, want {%q, %q, %q}", got.ID, got.FamilyID, got.Hash, want.ID, want.FamilyID, want.Hash)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("token %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if !equalTimePtr(got.RotatedAt, want.RotatedAt) {
		t.Errorf("token %s: RotatedAt = %s, want %s", want.ID, fmtTimePtr(got.RotatedAt), fmtTimePtr(want.RotatedAt))
	}
}

func checkFamily(t *testing.T, got, want *auth.RefreshFamily) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.ClientID != want.ClientID || got.Scope != want.Scope {
		t.Errorf("family = {ID %q, UserID %q, ClientID %q, Scope %q}, want {%q, %q, %q, %q}",
			got.ID, got.UserID, got.ClientID, got.Scope, want.ID, want.UserID, want.ClientID, want.Scope)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("family %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("family %s: ExpiresAt = %v, want %v", want.ID, got.ExpiresAt, want.ExpiresAt)
	}
	if !equalTimePtr(got.RevokedAt, want.RevokedAt) {
		t.Errorf("family %s: RevokedAt = %s, want %s", want.ID, fmtTimePtr(got.RevokedAt), fmtTimePtr(want.RevokedAt))
	}
	if got.ACR != want.ACR || !slices.Equal(got.AMR, want.AMR) {
		t.Errorf("family %s: ACR %q, AMR %q; want %q, %q", want.ID, got.ACR, got.AMR, want.ACR, want.AMR)
	}
	if !got.AuthTime.Equal(want.AuthTime) {
		t.Errorf("family %s: AuthTime = %v, want %v", want.ID, got.AuthTime, want.AuthTime)
	}
}

func testRefresh(t *testing.T, open func(t *testing.T) Store) {
	t.Run("CreateFamilyAndGet", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		f, tok := createFamily(t, s, "f-1", "u-1", "tok-1")
		createFamily(t, s, "f-2", "u-1", "tok-2")

		gotTok, gotFam := getRefresh(t, s, "tok-1")
		checkToken(t, gotTok, tok)
		checkFamily(t, gotFam, f)
	})

	t.Run("UnknownHash", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		createFamily(t, s, "f-1", "u-1", "tok-1")
		_, _, err := s.RefreshTokenByHash(t.Context(), hashOf("never issued"))
		wantErr(t, "RefreshTokenByHash(unknown)", err, auth.ErrNotFound)
	})

	t.Run("Rotate", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		f, first := createFamily(t, s, "f-1", "u-1", "tok-1")

		now := at(time.Hour)
		next := newToken("tok-2", "f-1", now)
		ok, err := s.RotateRefreshToken(t.Context(), first.ID, next, now)
		if err != nil || !ok {
			t.Fatalf("first RotateRefreshToken = %v, %v; want true, nil", ok, err)
		}

		// The same old token again: refused, and its successor is not stored.
		later := at(2 * time.Hour)
		again := newToken("tok-2-replay", "f-1", later)
		ok, err = s.RotateRefreshToken(t.Context(), first.ID, again, later)
		if err != nil || ok {
			t.Fatalf("second RotateRefreshToken of the same token = %v, %v; want false, nil", ok, err)
		}
		_, _, err = s.RefreshTokenByHash(t.Context(), again.Hash)
		wantErr(t, "successor of a refused rotation", err, auth.ErrNotFound)

		gotOld, gotFam := getRefresh(t, s, "tok-1")
		wantOld := *first
		wantOld.RotatedAt = &now // the first rotation's time, not the refused one's
		checkToken(t, gotOld, &wantOld)
		checkFamily(t, gotFam, f)

		gotNext, gotFam := getRefresh(t, s, "tok-2")
		checkToken(t, gotNext, next)
		checkFamily(t, gotFam, f)

		// The successor rotates in turn.
		rotate(t, s, "tok-2", "tok-3", later)
	})

	t.Run("ConcurrentRotate", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		_, first := createFamily(t, s, "f-1", "u-1", "tok-1")

		const n = racers
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			won   [n]bool
			errs  [n]error
			nexts [n]*auth.RefreshToken
		)
		now := at(time.Hour)
		for i := range n {
			nexts[i] = newToken(fmt.Sprintf("tok-next-%02d", i), "f-1", now)
			wg.Go(func() {
				<-start
				won[i], errs[i] = s.RotateRefreshToken(context.Background(), first.ID, nexts[i], now)
			})
		}
		close(start)
		wg.Wait()

		winners := 0
		for i := range n {
			if errs[i] != nil {
				t.Errorf("rotation %d: %v", i, errs[i])
			}
			if won[i] {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("%d of %d concurrent rotations of one token won, want exactly 1", winners, n)
		}
		stored := 0
		for i := range n {
			_, _, err := s.RefreshTokenByHash(t.Context(), nexts[i].Hash)
			switch {
			case err == nil:
				stored++
				if !won[i] {
					t.Errorf("successor %d is stored but its rotation reported false", i)
				}
			case errors.Is(err, auth.ErrNotFound):
				if won[i] {
					t.Errorf("successor %d is missing but its rotation reported true", i)
				}
			default:
				t.Errorf("RefreshTokenByHash(successor %d): %v", i, err)
			}
		}
		if stored != 1 {
			t.Errorf("%d successors stored, want exactly 1", stored)
		}
	})

	t.Run("RevokeFamily", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		f, _ := createFamily(t, s, "f-1", "u-1", "tok-1")
		other, _ := createFamily(t, s, "f-2", "u-1", "tok-2")
		rotate(t, s, "tok-1", "tok-1b", at(time.Hour))

		revokedAt := at(2 * time.Hour)
		if err := s.RevokeFamily(t.Context(), "f-1", revokedAt); err != nil {
			t.Fatalf("RevokeFamily: %v", err)
		}
		// Idempotent: no error, and the first revocation time stays.
		if err := s.RevokeFamily(t.Context(), "f-1", at(3*time.Hour)); err != nil {
			t.Fatalf("second RevokeFamily: %v", err)
		}

		want := *f
		want.RevokedAt = &revokedAt
		for _, tok := range []string{"tok-1", "tok-1b"} {
			_, got := getRefresh(t, s, tok)
			checkFamily(t, got, &want)
		}
		_, got := getRefresh(t, s, "tok-2")
		checkFamily(t, got, other)
	})

	t.Run("RevokeUserFamilies", func(t *testing.T) {
		s := open(t)
		createUser(t, s, minimalUser("u-1", "one@example.com"))
		createUser(t, s, minimalUser("u-2", "two@example.com"))
		createUser(t, s, minimalUser("u-3", "three@example.com"))
		createFamily(t, s, "f-1", "u-1", "tok-1")
		createFamily(t, s, "f-2", "u-1", "tok-2")
		createFamily(t, s, "f-3", "u-1", "tok-3")
		createFamily(t, s, "f-other", "u-2", "tok-other")
		earlier := at(10 * time.Minute)
		if err := s.RevokeFamily(t.Context(), "f-3", earlier); err != nil {
			t.Fatalf("RevokeFamily: %v", err)
		}

		now := at(time.Hour)
		if err := s.RevokeUserFamilies(t.Context(), "u-1", now); err != nil {
			t.Fatalf("RevokeUserFamilies: %v", err)
		}
		if err := s.RevokeUserFamilies(t.Context(), "u-3", now); err != nil {
			t.Errorf("RevokeUserFamilies of a user without families: %v", err)
		}

		for _, tc := range []struct {
			token       string
			wantRevoked *time.Time
		}{
			{"tok-1", &now},
			{"tok-2", &now},
			{"tok-3", &earlier},
			{"tok-other", nil},
		} {
			_, f := getRefresh(t, s, tc.token)
			if !equalTimePtr(f.RevokedAt, tc.wantRevoked) {
				t.Errorf("family of %s: RevokedAt = %s, want %s", tc.token, fmtTimePtr(f.RevokedAt), fmtTimePtr(tc.wantRevoked))
			}
		}
	})
}

// ---- audit ----

func testAudit(t *testing.T, open func(t *testing.T) Store) {
	t.Run("Filters", func(t *testing.T) {
		s := open(t)
		events := []*auth.AuditEvent{
			{ID: "e1", Type: auth.EventLoginSucceeded, At: at(1 * time.Second), UserID: "u-1"},
			{ID: "e2", Type: auth.EventLoginFailed, At: at(2 * time.Second), UserID: "u-1"},
			{ID: "e3", Type: auth.EventLoginSucceeded, At: at(3 * time.Second), UserID: "u-2"},
			{ID: "e4", Type: auth.EventLoginFailed, At: at(4 * time.Second), UserID: "u-2"},
			{ID: "e5", Type: auth.EventLoginSucceeded, At: at(5 * time.Second), UserID: "u-1"},
			{ID: "e6", Type: auth.EventKeyRotated, At: at(6 * time.Second)},
		}
		// Appended out of order: the listing orders by time, not insertion.
		for _, i := range []int{2, 0, 5, 1, 4, 3} {
			if err := s.AppendAudit(t.Context(), events[i]); err != nil {
				t.Fatalf("AppendAudit(%s): %v", events[i].ID, err)
			}
		}

		for _, tc := range []struct {
			name   string
			filter auth.AuditFilter
			want   []string
		}{
			{"All", auth.AuditFilter{}, []string{"e6", "e5", "e4", "e3", "e2", "e1"}},
			{"UserID", auth.AuditFilter{UserID: "u-1"}, []string{"e5", "e2", "e1"}},
			{"Type", auth.AuditFilter{Type: auth.EventLoginSucceeded}, []string{"e5", "e3", "e1"}},
			{"UserIDAndType", auth.AuditFilter{UserID: "u-2", Type: auth.EventLoginFailed}, []string{"e4"}},
			{"Limit", auth.AuditFilter{Limit: 2}, []string{"e6", "e5"}},
			{"UserIDAndLimit", auth.AuditFilter{UserID: "u-1", Limit: 2}, []string{"e5", "e2"}},
			{"LimitAboveCount", auth.AuditFilter{Type: auth.EventLoginFailed, Limit: 50}, []string{"e4", "e2"}},
			{"NoMatch", auth.AuditFilter{UserID: "nobody"}, nil},
			{"NoMatchTypeForUser", auth.AuditFilter{UserID: "u-1", Type: auth.EventKeyRotated}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ListAudit(t.Context(), tc.filter)
				if err != nil {
					t.Fatalf("ListAudit(%+v): %v", tc.filter, err)
				}
				var ids []string
				for _, e := range got {
					ids = append(ids, e.ID)
				}
				if !slices.Equal(ids, tc.want) {
					t.Errorf("ListAudit(%+v) = %q, want %q (newest first)", tc.filter, ids, tc.want)
				}
			})
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		in := &auth.AuditEvent{
			ID:     "e1",
			Type:   auth.EventLoginFailed,
			At:     at(42*time.Second + 17*time.Microsecond),
			UserID: "u-1",
			IP:     "2001:db8::1",
			Details: map[string]any{
				"reason":   "bad password",
				"attempts": 3,
				"client":   "cli ✓",
			},
		}
		if err := s.AppendAudit(t.Context(), in); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		got, err := s.ListAudit(t.Context(), auth.AuditFilter{})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		if len(got) != 1 {
			t.Fatalf("ListAudit returned %d events, want 1", len(got))
		}
		e := got[0]
		if e.ID != in.ID || e.Type != in.Type || e.UserID != in.UserID || e.IP != in.IP {
			t.Errorf("event = {%q %q %q %q}, want {%q %q %q %q}", e.ID, e.Type, e.UserID, e.IP, in.ID, in.Type, in.UserID, in.IP)
		}
		if !e.At.Equal(in.At) {
			t.Errorf("At = %v, want %v", e.At, in.At)
		}
		// Details go through JSON: numbers come back as float64.
		want := map[string]any{"reason": "bad password", "attempts": float64(3), "client": "cli ✓"}
		if len(e.Details) != len(want) {
			t.Errorf("Details = %#v, want %#v", e.Details, want)
		}
		for k, v := range want {
			if e.Details[k] != v {
				t.Errorf("Details[%q] = %#v (%T), want %#v (%T)", k, e.Details[k], e.Details[k], v, v)
			}
		}
	})

	t.Run("EmptyDetails", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			details map[string]any
		}{
			{"Nil", nil},
			{"Empty", map[string]any{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				in := &auth.AuditEvent{ID: "e1", Type: auth.EventUserDeleted, At: at(time.Second), Details: tc.details}
				if err := s.AppendAudit(t.Context(), in); err != nil {
					t.Fatalf("AppendAudit: %v", err)
				}
				got, err := s.ListAudit(t.Context(), auth.AuditFilter{})
				if err != nil {
					t.Fatalf("ListAudit: %v", err)
				}
				if len(got) != 1 {
					t.Fatalf("ListAudit returned %d events, want 1", len(got))
				}
				if len(got[0].Details) != 0 { // nil or empty: either is fine
					t.Errorf("Details = %#v, want empty", got[0].Details)
				}
				if got[0].UserID != "" || got[0].IP != "" {
					t.Errorf("UserID, IP = %q, %q; want empty", got[0].UserID, got[0].IP)
				}
			})
		}
	})
}

// ---- signing keys ----

func testKeys(t *testing.T, open func(t *testing.T) Store) {
	sealed := func(seed byte, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*37)
		}
		return b
	}

	t.Run("AddAndListOldestFirst", func(t *testing.T) {
		s := open(t)
		keys, err := s.SigningKeys(t.Context())
		if err != nil {
			t.Fatalf("SigningKeys on an empty store: %v", err)
		}
		if len(keys) != 0 {
			t.Fatalf("SigningKeys on an empty store = %d keys, want 0", len(keys))
		}

		newest := &auth.SigningKey{KID: "k-a", Alg: "EdDSA", Sealed: sealed(1, 120), CreatedAt: at(48 * time.Hour)}
		oldest := &auth.SigningKey{KID: "k-c", Alg: "ES256", Sealed: sealed(0, 200), CreatedAt: at(0)}
		middle := &auth.SigningKey{KID: "k-b", Alg: "RS256", Sealed: append([]byte{0, 0, 0xff, '\'', '\\'}, sealed(7, 1500)...), CreatedAt: at(24*time.Hour + time.Microsecond)}
		for _, k := range []*auth.SigningKey{newest, oldest, middle} { // not in time order
			if err := s.AddSigningKey(t.Context(), k); err != nil {
				t.Fatalf("AddSigningKey(%s): %v", k.KID, err)
			}
		}

		keys, err = s.SigningKeys(t.Context())
		if err != nil {
			t.Fatalf("SigningKeys: %v", err)
		}
		want := []*auth.SigningKey{oldest, middle, newest}
		if len(keys) != len(want) {
			t.Fatalf("SigningKeys returned %d keys, want %d", len(keys), len(want))
		}
		for i, w := range want {
			checkKey(t, keys[i], w)
		}
	})

	t.Run("DuplicateKID", func(t *testing.T) {
		s := open(t)
		first := &auth.SigningKey{KID: "k-1", Alg: "EdDSA", Sealed: sealed(3, 64), CreatedAt: at(0)}
		if err := s.AddSigningKey(t.Context(), first); err != nil {
			t.Fatalf("AddSigningKey: %v", err)
		}
		dup := &auth.SigningKey{KID: "k-1", Alg: "ES256", Sealed: sealed(9, 64), CreatedAt: at(time.Hour)}
		if err := s.AddSigningKey(t.Context(), dup); err == nil {
			t.Fatalf("AddSigningKey with a duplicate KID: no error")
		}
		keys, err := s.SigningKeys(t.Context())
		if err != nil {
			t.Fatalf("SigningKeys: %v", err)
		}
		if len(keys) != 1 {
			t.Fatalf("SigningKeys returned %d keys, want 1", len(keys))
		}
		checkKey(t, keys[0], first)
	})
}

func checkKey(t *testing.T, got, want *auth.SigningKey) {
	t.Helper()
	if got.KID != want.KID || got.Alg != want.Alg {
		t.Errorf("key = {KID %q, Alg %q}, want {%q, %q}", got.KID, got.Alg, want.KID, want.Alg)
	}
	if !slices.Equal(got.Sealed, want.Sealed) {
		t.Errorf("key %s: Sealed differs (%d bytes, want %d)", want.KID, len(got.Sealed), len(want.Sealed))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("key %s: CreatedAt = %v, want %v", want.KID, got.CreatedAt, want.CreatedAt)
	}
}
