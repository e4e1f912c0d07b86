package auth_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"gatehouse/internal/auth"
	"gatehouse/internal/password"
)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"trims and lower-cases", "  Alice@Example.COM\t", "alice@example.com", true},
		{"already normal", "bob@example.com", "bob@example.com", true},
		{"plus addressing kept", "Bob+Tag@Example.com", "bob+tag@example.com", true},
		{"empty", "", "", false},
		{"spaces only", "   ", "", false},
		{"no at", "alice.example.com", "", false},
		{"two ats", "a@b@example.com", "", false},
		{"empty local part", "@example.com", "", false},
		{"empty domain", "alice@", "", false},
		{"inner space", "ali ce@example.com", "", false},
		{"control character", "alice\x00@example.com", "", false},
		{"invalid UTF-8", "al\xffice@example.com", "", false},
		{"local part of 65", strings.Repeat("a", 65) + "@example.com", "", false},
		{"local part of 64", strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com", true},
		{"longer than 254", "a@" + strings.Repeat("b", 253), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := auth.NormalizeEmail(tc.in)
			if !tc.ok {
				wantCode(t, err, auth.EINVALID, "email")
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.register(t, "  Alice@Example.COM ", goodPass)
	if u.Email != "alice@example.com" {
		t.Errorf("Email = %q, want it normalised", u.Email)
	}
	if u.PasswordHash != "" {
		t.Errorf("Register returned the password hash %q", u.PasswordHash)
	}
	if !slices.Equal(u.Roles, []string{"user"}) || u.Name != "Test User" || u.ID == "" {
		t.Errorf("user = %+v", u)
	}
	stored, err := h.db.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if stored.ID != u.ID || !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Errorf("stored user = %+v", stored)
	}
	if evs := h.audit(t, auth.AuditFilter{Type: auth.EventUserRegistered, UserID: u.ID}); len(evs) != 1 || evs[0].IP != meta.IP {
		t.Errorf("user.registered events = %+v", evs)
	}
	h.assertAuditClean(t, goodPass, stored.PasswordHash)
}

func TestRegisterRefusesBadInput(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, email, password, field string
		hashes                       bool // whether refusing may cost hashing (it never should)
	}{
		{"too short", "a@example.com", "short", "password", false},
		{"seven characters", "a@example.com", "abcdefg", "password", false},
		{"breached", "a@example.com", "password", "password", false},
		{"breached, other case", "a@example.com", "PassWord123", "password", false},
		{"equals the email", "long.address@example.com", "Long.Address@example.com", "password", false},
		{"257 characters", "a@example.com", strings.Repeat("x", 257), "password", false},
		{"300 characters", "a@example.com", strings.Repeat("y", 300), "password", false},
		{"300 two-byte characters", "a@example.com", strings.Repeat("é", 300), "password", false},
		{"invalid UTF-8", "a@example.com", "abcdefgh\xff", "password", false},
		{"bad email", "not-an-email", goodPass, "email", false},
		{"empty email", "", goodPass, "email", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.hashes.Load()
			u, err := h.svc.Register(context.Background(), auth.RegisterInput{Email: tc.email, Password: tc.password}, meta)
			if u != nil {
				t.Fatalf("Register returned a user %+v with error %v", u, err)
			}
			wantCode(t, err, auth.EINVALID, tc.field)
			if n := h.hashes.Load() - before; n != 0 {
				t.Errorf("refusing the input cost %d hash computations, want 0", n)
			}
			if email, err := auth.NormalizeEmail(tc.email); err == nil {
				if n := h.countUsers(t, email); n != 0 {
					t.Errorf("%d users stored for %s", n, email)
				}
			}
		})
	}
	t.Run("256 two-byte characters are accepted", func(t *testing.T) {
		h.register(t, "long@example.com", strings.Repeat("é", 255)+"x")
	})
}

// shape is what a registration answer reveals about the account, apart
// from values that differ between any two registrations.
type shape struct {
	Email, Name                  string
	IDLen                        int
	HasHash, Verified, Disabled  bool
	Roles                        string
	HasCreatedAt, CreatedUpdated bool
}

func shapeOf(u *auth.User) shape {
	return shape{
		Email: u.Email, Name: u.Name, IDLen: len(u.ID), HasHash: u.PasswordHash != "",
		Verified: u.EmailVerified, Disabled: u.Disabled, Roles: strings.Join(u.Roles, " "),
		HasCreatedAt: !u.CreatedAt.IsZero(), CreatedUpdated: u.CreatedAt.Equal(u.UpdatedAt),
	}
}

func TestRegisterDuplicateEmail(t *testing.T) {
	const other = "a different strong passphrase"
	t.Run("not revealed", func(t *testing.T) {
		h := newHarness(t)
		first := h.register(t, "alice@example.com", goodPass)
		hashBefore := h.user(t, first.ID).PasswordHash

		second, err := h.svc.Register(context.Background(), auth.RegisterInput{Email: " ALICE@example.com", Password: other, Name: "Test User"}, meta)
		if err != nil {
			t.Fatalf("duplicate Register = %v, want the same answer as a new account", err)
		}
		if got, want := shapeOf(second), shapeOf(first); got != want {
			t.Errorf("duplicate answer shape %+v, want %+v", got, want)
		}
		if n := h.countUsers(t, "alice@example.com"); n != 1 {
			t.Fatalf("%d users with the email, want 1", n)
		}
		if _, err := h.svc.User(context.Background(), second.ID); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("the duplicate's id exists: %v", err)
		}
		if got := h.user(t, first.ID).PasswordHash; got != hashBefore {
			t.Error("a duplicate registration changed the password hash")
		}
		if _, err := h.svc.Login(context.Background(), "alice@example.com", goodPass, meta); err != nil {
			t.Errorf("original password no longer works: %v", err)
		}
		if _, err := h.svc.Login(context.Background(), "alice@example.com", other, meta); err != auth.ErrInvalidCredentials {
			t.Errorf("the duplicate's password logs in: %v", err)
		}
		h.assertAuditClean(t, goodPass, other)
	})
	t.Run("revealed", func(t *testing.T) {
		h := newHarness(t, func(c *auth.Config) { c.RevealExisting = true })
		h.register(t, "alice@example.com", goodPass)
		u, err := h.svc.Register(context.Background(), auth.RegisterInput{Email: "Alice@Example.com", Password: other}, meta)
		if u != nil {
			t.Fatalf("Register returned %+v", u)
		}
		wantCode(t, err, auth.ECONFLICT, "email")
		if n := h.countUsers(t, "alice@example.com"); n != 1 {
			t.Fatalf("%d users with the email, want 1", n)
		}
	})
}

func TestLogin(t *testing.T) {
	h := newHarness(t)
	alice := h.register(t, "alice@example.com", goodPass)
	h.insertUser(t, "disabled@example.com", h.hash(t, goodPass), true)
	h.insertUser(t, "nopassword@example.com", "", false)

	tests := []struct {
		name, email, password string
		ok                    bool
	}{
		{"right password", "alice@example.com", goodPass, true},
		{"email in another case, with spaces", "  ALICE@example.com ", goodPass, true},
		{"wrong password", "alice@example.com", goodPass + "!", false},
		{"password in another case", "alice@example.com", strings.ToUpper(goodPass), false},
		{"empty password", "alice@example.com", "", false},
		{"unknown email", "mallory@example.com", goodPass, false},
		{"malformed email", "alice", goodPass, false},
		{"disabled user, right password", "disabled@example.com", goodPass, false},
		{"disabled user, wrong password", "disabled@example.com", "wrong password!", false},
		{"account without a password", "nopassword@example.com", goodPass, false},
		{"account without a password, empty password", "nopassword@example.com", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := h.svc.Login(context.Background(), tc.email, tc.password, meta)
			if tc.ok {
				if err != nil || u == nil || u.ID != alice.ID {
					t.Fatalf("Login = %+v, %v; want alice", u, err)
				}
				return
			}
			if err != auth.ErrInvalidCredentials {
				t.Fatalf("Login error = %v; want exactly auth.ErrInvalidCredentials", err)
			}
			if u != nil {
				t.Fatalf("Login returned user %+v with an error", u)
			}
		})
	}
	if h.loginMetric("succeeded") != 2 || h.loginMetric("failed") != int64(len(tests)-2) {
		t.Errorf("login metrics succeeded=%d failed=%d", h.loginMetric("succeeded"), h.loginMetric("failed"))
	}
}

func TestLoginAudit(t *testing.T) {
	h := newHarness(t)
	alice := h.register(t, "alice@example.com", goodPass)
	disabled := h.insertUser(t, "disabled@example.com", h.hash(t, goodPass), true)
	ctx := context.Background()
	wrong := "Tr0ub4dor&3-not-the-password"
	_, _ = h.svc.Login(ctx, "alice@example.com", goodPass, meta)
	_, _ = h.svc.Login(ctx, "alice@example.com", wrong, meta)
	_, _ = h.svc.Login(ctx, "nobody@example.com", wrong+"-unknown", meta)
	_, _ = h.svc.Login(ctx, "disabled@example.com", goodPass, meta)

	ok := h.audit(t, auth.AuditFilter{Type: auth.EventLoginSucceeded})
	if len(ok) != 1 || ok[0].UserID != alice.ID || ok[0].IP != meta.IP {
		t.Errorf("login.succeeded events = %+v", ok)
	}
	failed := h.audit(t, auth.AuditFilter{Type: auth.EventLoginFailed})
	reasons := map[string]string{} // user id → reason
	for _, e := range failed {
		reasons[e.UserID], _ = e.Details["reason"].(string)
	}
	want := map[string]string{alice.ID: "wrong_password", "": "unknown_user", disabled.ID: "disabled"}
	if len(failed) != 3 || len(reasons) != 3 {
		t.Fatalf("login.failed events = %+v", failed)
	}
	for id, r := range want {
		if reasons[id] != r {
			t.Errorf("login.failed for user %q: reason %q, want %q", id, reasons[id], r)
		}
	}
	h.assertAuditClean(t, goodPass, wrong, h.user(t, alice.ID).PasswordHash)
}

// TestLoginRehashesLegacyHashes: a user whose hash is bcrypt, or argon2id
// with other parameters, logs in, and the stored hash becomes argon2id with
// the current parameters.
func TestLoginRehashesLegacyHashes(t *testing.T) {
	h := newHarness(t)
	bc, err := bcrypt.GenerateFromPassword([]byte(goodPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	old := password.Params{Memory: 512, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	oldArgon, err := password.NewHasher(old, nil).Hash(context.Background(), goodPass)
	if err != nil {
		t.Fatal(err)
	}
	current := "$argon2id$v=19$m=1024,t=1,p=1$"
	tests := []struct {
		name, hash string
		rehash     bool
	}{
		{"bcrypt $2a$", string(bc), true},
		{"bcrypt $2b$", "$2b$" + string(bc)[4:], true},
		{"argon2id with older params", oldArgon, true},
		{"argon2id with a longer salt", mustHashWith(t, password.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLen: 32, KeyLen: 32}), true},
		{"argon2id with current params", h.hash(t, goodPass), false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			email := "legacy" + string(rune('a'+i)) + "@example.com"
			u := h.insertUser(t, email, tc.hash, false)

			// A wrong password does not touch the hash.
			if _, err := h.svc.Login(context.Background(), email, "wrong password!", meta); err != auth.ErrInvalidCredentials {
				t.Fatalf("wrong password: %v", err)
			}
			if got := h.user(t, u.ID).PasswordHash; got != tc.hash {
				t.Fatalf("a failed login rewrote the hash to %s", got)
			}

			if _, err := h.svc.Login(context.Background(), email, goodPass, meta); err != nil {
				t.Fatalf("Login with the legacy hash: %v", err)
			}
			stored := h.user(t, u.ID).PasswordHash
			if !strings.HasPrefix(stored, current) {
				t.Fatalf("stored hash after login = %s, want argon2id with %s", stored, current)
			}
			if changed := stored != tc.hash; changed != tc.rehash {
				t.Fatalf("hash rewritten = %v, want %v", changed, tc.rehash)
			}
			ok, rehash, err := h.hasher.Verify(context.Background(), stored, goodPass)
			if err != nil || !ok || rehash {
				t.Fatalf("new hash: ok %v rehash %v err %v", ok, rehash, err)
			}
			if _, err := h.svc.Login(context.Background(), email, goodPass, meta); err != nil {
				t.Fatalf("Login after the re-hash: %v", err)
			}
			if got := h.user(t, u.ID).PasswordHash; got != stored {
				t.Fatal("a login with an up-to-date hash rewrote it")
			}
		})
	}
}

func mustHashWith(t *testing.T, p password.Params) string {
	t.Helper()
	s, err := password.NewHasher(p, nil).Hash(context.Background(), goodPass)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOverlongPasswordsCostNoHashing: a password over the 256-character cap
// is refused everywhere before any hashing work.
func TestOverlongPasswordsCostNoHashing(t *testing.T) {
	h := newHarness(t)
	u := h.register(t, "alice@example.com", goodPass)
	ctx := context.Background()
	for _, long := range []string{strings.Repeat("p", 300), strings.Repeat("€", 300), strings.Repeat("p", 1<<20)} {
		calls := []struct {
			name string
			call func() error
			want func(t *testing.T, err error)
		}{
			{"Login", func() error { _, err := h.svc.Login(ctx, "alice@example.com", long, meta); return err },
				func(t *testing.T, err error) {
					if err != auth.ErrInvalidCredentials {
						t.Fatalf("err = %v, want ErrInvalidCredentials", err)
					}
				}},
			{"Login of unknown user", func() error { _, err := h.svc.Login(ctx, "nobody@example.com", long, meta); return err },
				func(t *testing.T, err error) {
					if err != auth.ErrInvalidCredentials {
						t.Fatalf("err = %v, want ErrInvalidCredentials", err)
					}
				}},
			{"PasswordGrant", func() error { _, err := h.svc.PasswordGrant(ctx, "alice@example.com", long, "", "c", meta); return err },
				func(t *testing.T, err error) {
					if err != auth.ErrInvalidCredentials {
						t.Fatalf("err = %v, want ErrInvalidCredentials", err)
					}
				}},
			{"Register", func() error {
				_, err := h.svc.Register(ctx, auth.RegisterInput{Email: "bob@example.com", Password: long}, meta)
				return err
			}, func(t *testing.T, err error) { wantCode(t, err, auth.EINVALID, "password") }},
			{"ChangePassword current", func() error { return h.svc.ChangePassword(ctx, h.fresh(u.ID), long, goodPass+"2", meta) },
				func(t *testing.T, err error) { wantCode(t, err, auth.EINVALID, "current_password") }},
			{"DeleteAccount", func() error { return h.svc.DeleteAccount(ctx, h.fresh(u.ID), long, meta) },
				func(t *testing.T, err error) { wantCode(t, err, auth.EINVALID, "password") }},
			{"CreateUser", func() error { _, err := h.svc.CreateUser(ctx, "carol@example.com", long, nil); return err },
				func(t *testing.T, err error) { wantCode(t, err, auth.EINVALID, "password") }},
		}
		for _, c := range calls {
			t.Run(c.name+"/"+string([]rune(long)[:1])+"x"+strconv.Itoa(len([]rune(long))), func(t *testing.T) {
				before := h.hashes.Load()
				c.want(t, c.call())
				if n := h.hashes.Load() - before; n != 0 {
					t.Fatalf("%d hash computations for an over-long password, want 0", n)
				}
			})
		}
	}
	if _, err := h.svc.Login(ctx, "alice@example.com", goodPass, meta); err != nil {
		t.Fatalf("account damaged: %v", err)
	}
}

func TestChangePassword(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.register(t, "alice@example.com", goodPass)
	const next = "an entirely new passphrase"
	r1 := h.grant(t, "alice@example.com", goodPass, "")
	other := h.grant(t, "alice@example.com", goodPass, "read") // a second family

	t.Run("wrong current password", func(t *testing.T) {
		err := h.svc.ChangePassword(ctx, h.fresh(u.ID), "not my password", next, meta)
		wantCode(t, err, auth.EINVALID, "current_password")
		r1 = h.refresh(t, r1.RefreshToken, "") // nothing was revoked
		if _, err := h.svc.Login(ctx, "alice@example.com", goodPass, meta); err != nil {
			t.Fatalf("old password stopped working: %v", err)
		}
	})
	t.Run("weak new password", func(t *testing.T) {
		err := h.svc.ChangePassword(ctx, h.fresh(u.ID), goodPass, "short", meta)
		wantCode(t, err, auth.EINVALID, "password")
		r1 = h.refresh(t, r1.RefreshToken, "")
	})
	t.Run("unknown user", func(t *testing.T) {
		err := h.svc.ChangePassword(ctx, h.fresh("no-such-user"), goodPass, next, meta)
		wantCode(t, err, auth.ENOTFOUND, "")
	})
	t.Run("success revokes every refresh token", func(t *testing.T) {
		if err := h.svc.ChangePassword(ctx, h.fresh(u.ID), goodPass, next, meta); err != nil {
			t.Fatalf("ChangePassword: %v", err)
		}
		h.refuseRefresh(t, r1.RefreshToken)
		h.refuseRefresh(t, other.RefreshToken)
		if _, err := h.svc.Login(ctx, "alice@example.com", goodPass, meta); err != auth.ErrInvalidCredentials {
			t.Fatalf("old password: %v", err)
		}
		if _, err := h.svc.Login(ctx, "alice@example.com", next, meta); err != nil {
			t.Fatalf("new password: %v", err)
		}
		if evs := h.audit(t, auth.AuditFilter{Type: auth.EventPasswordChanged, UserID: u.ID}); len(evs) != 1 {
			t.Fatalf("password.changed events = %+v", evs)
		}
		// A fresh login makes a working family again.
		h.refresh(t, h.grant(t, "alice@example.com", next, "").RefreshToken, "")
	})
	h.assertAuditClean(t, goodPass, next, "not my password", r1.RefreshToken)
}

func TestDeleteAccount(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.register(t, "alice@example.com", goodPass)
	bob := h.register(t, "bob@example.com", goodPass)
	r := h.grant(t, "alice@example.com", goodPass, "")

	tests := []struct {
		name, password string
	}{
		{"wrong password", "not the password"},
		{"empty password", ""},
		{"another user's password", goodPass + "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A token with no recent sign-in: the password must do.
			stale := &auth.Principal{UserID: u.ID, Kind: auth.KindAccessToken, ACR: auth.ACR1, AuthTime: h.clock.Now().Add(-time.Hour)}
			err := h.svc.DeleteAccount(ctx, stale, tc.password, meta)
			wantCode(t, err, auth.EINVALID, "password")
			h.user(t, u.ID) // still there
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		wantCode(t, h.svc.DeleteAccount(ctx, h.fresh("no-such-user"), goodPass, meta), auth.ENOTFOUND, "")
	})
	t.Run("right password", func(t *testing.T) {
		if err := h.svc.DeleteAccount(ctx, h.fresh(u.ID), goodPass, meta); err != nil {
			t.Fatalf("DeleteAccount: %v", err)
		}
		if _, err := h.svc.User(ctx, u.ID); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("user after delete: %v", err)
		}
		h.refuseRefresh(t, r.RefreshToken)
		if _, err := h.svc.Login(ctx, "alice@example.com", goodPass, meta); err != auth.ErrInvalidCredentials {
			t.Fatalf("login after delete: %v", err)
		}
		if evs := h.audit(t, auth.AuditFilter{Type: auth.EventUserDeleted, UserID: u.ID}); len(evs) != 1 {
			t.Fatalf("user.deleted events = %+v", evs)
		}
		h.user(t, bob.ID) // others untouched
	})
}

func TestSetRoles(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.register(t, "alice@example.com", goodPass)

	if err := h.svc.SetRoles(ctx, u.ID, []string{"admin", "editor"}, meta); err != nil {
		t.Fatalf("SetRoles: %v", err)
	}
	if got := h.user(t, u.ID).Roles; !slices.Equal(got, []string{"admin", "editor"}) {
		t.Fatalf("roles = %v", got)
	}
	evs := h.audit(t, auth.AuditFilter{Type: auth.EventRoleChanged, UserID: u.ID})
	if len(evs) != 1 {
		t.Fatalf("role.changed events = %+v", evs)
	}
	if from, to := mustJSONString(t, evs[0].Details["from"]), mustJSONString(t, evs[0].Details["to"]); from != `["user"]` || to != `["admin","editor"]` {
		t.Errorf("role.changed details from %s to %s", from, to)
	}

	tests := []struct {
		name, id string
		roles    []string
		code     string
	}{
		{"unknown role", u.ID, []string{"admin", "superuser"}, auth.EINVALID},
		{"unknown user", "no-such-user", []string{"user"}, auth.ENOTFOUND},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, h.svc.SetRoles(ctx, tc.id, tc.roles, meta), tc.code, "")
			if got := h.user(t, u.ID).Roles; !slices.Equal(got, []string{"admin", "editor"}) {
				t.Fatalf("roles changed to %v", got)
			}
			if n := len(h.audit(t, auth.AuditFilter{Type: auth.EventRoleChanged})); n != 1 {
				t.Fatalf("%d role.changed events, want 1", n)
			}
		})
	}
}

func TestCreateUser(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u, err := h.svc.CreateUser(ctx, " Root@Example.com", goodPass, []string{"admin"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.Email != "root@example.com" || !u.EmailVerified || !slices.Equal(u.Roles, []string{"admin"}) {
		t.Fatalf("user = %+v", u)
	}
	if _, err := h.svc.Login(ctx, "root@example.com", goodPass, meta); err != nil {
		t.Fatalf("Login: %v", err)
	}
	tests := []struct {
		name, email, password string
		roles                 []string
		code                  string
	}{
		{"taken email is reported", "ROOT@example.com", goodPass, nil, auth.ECONFLICT},
		{"unknown role", "x@example.com", goodPass, []string{"root"}, auth.EINVALID},
		{"weak password", "y@example.com", "password", nil, auth.EINVALID},
		{"bad email", "nope", goodPass, nil, auth.EINVALID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.svc.CreateUser(ctx, tc.email, tc.password, tc.roles)
			wantCode(t, err, tc.code, "")
		})
	}
	t.Run("no password: default roles, cannot log in", func(t *testing.T) {
		u, err := h.svc.CreateUser(ctx, "svc@example.com", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(u.Roles, []string{"user"}) || h.user(t, u.ID).PasswordHash != "" {
			t.Fatalf("user = %+v", u)
		}
		if _, err := h.svc.Login(ctx, "svc@example.com", "", meta); err != auth.ErrInvalidCredentials {
			t.Fatalf("Login with empty password: %v", err)
		}
		if _, err := h.svc.Login(ctx, "svc@example.com", goodPass, meta); err != auth.ErrInvalidCredentials {
			t.Fatalf("Login: %v", err)
		}
	})
}

// TestTokenUserSeesServiceWrites: the short-lived account cache behind
// access-token requests is invalidated by every write made through the
// Service, so a role change or a deletion shows on the next request.
func TestTokenUserSeesServiceWrites(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.register(t, "alice@example.com", goodPass)
	got, err := h.svc.TokenUser(ctx, u.ID)
	if err != nil || !slices.Equal(got.Roles, []string{"user"}) {
		t.Fatalf("TokenUser = %+v, %v", got, err)
	}
	got.Roles[0] = "admin" // a caller scribbling on its copy (read from the store)
	again, _ := h.svc.TokenUser(ctx, u.ID)
	if !slices.Equal(again.Roles, []string{"user"}) {
		t.Fatalf("cached roles changed by a caller: %v", again.Roles)
	}
	again.Roles[0] = "admin" // and on a copy served from the cache
	if third, _ := h.svc.TokenUser(ctx, u.ID); !slices.Equal(third.Roles, []string{"user"}) {
		t.Fatalf("cached roles changed by a caller: %v", third.Roles)
	}

	if err := h.svc.SetRoles(ctx, u.ID, []string{"editor"}, meta); err != nil {
		t.Fatal(err)
	}
	if got, err := h.svc.TokenUser(ctx, u.ID); err != nil || !slices.Equal(got.Roles, []string{"editor"}) {
		t.Fatalf("TokenUser after SetRoles = %+v, %v", got, err)
	}
	if _, err := h.svc.UpdateName(ctx, u.ID, "Alice", meta); err != nil {
		t.Fatal(err)
	}
	if got, err := h.svc.TokenUser(ctx, u.ID); err != nil || got.Name != "Alice" {
		t.Fatalf("TokenUser after UpdateName = %+v, %v", got, err)
	}
	if err := h.svc.DeleteAccount(ctx, h.fresh(u.ID), goodPass, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.TokenUser(ctx, u.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("TokenUser after DeleteAccount = %v, want ErrNotFound", err)
	}
}
