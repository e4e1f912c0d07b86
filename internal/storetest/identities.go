package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// IdentityBackend is a linked-identity store under test: auth.IdentityStore,
// plus CreateUser to make the identities' owners exist (see userMaker) and
// UserByID to see whether CreateUserWithIdentity made its account.
type IdentityBackend interface {
	auth.IdentityStore
	userMaker
	UserByID(ctx context.Context, id string) (*auth.User, error)
}

// RunIdentities runs the linked-identity contract. open must return a
// fresh, empty backend each time it is called (once per subtest) and
// arrange its cleanup with t.Cleanup.
func RunIdentities(t *testing.T, open func(t *testing.T) IdentityBackend) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testIdentityRoundTrip(t, open) })
	t.Run("Unknown", func(t *testing.T) { testIdentityUnknown(t, open) })
	t.Run("LinkedAlready", func(t *testing.T) { testIdentityTaken(t, open) })
	t.Run("CreateUserWithIdentity", func(t *testing.T) { testIdentityWithUser(t, open) })
	t.Run("ListOldestFirst", func(t *testing.T) { testIdentityList(t, open) })
	t.Run("Delete", func(t *testing.T) { testIdentityDelete(t, open) })
	t.Run("DeleteUserIdentities", func(t *testing.T) { testIdentityDeleteAll(t, open) })
	t.Run("ConcurrentLink", func(t *testing.T) { testIdentityConcurrentLink(t, open) })
	t.Run("ConcurrentCreateUserWithIdentity", func(t *testing.T) { testIdentityConcurrentSignUp(t, open) })
	t.Run("DeleteUserCascades", func(t *testing.T) { testIdentityDeleteUser(t, open) })
}

// newIdentity links subject at provider to userID, created at created.
func newIdentity(id, userID, provider, subject string, verified bool, created time.Time) *auth.Identity {
	return &auth.Identity{
		ID:            id,
		UserID:        userID,
		Provider:      provider,
		Subject:       subject,
		Email:         "zoë." + subject + "@gmail.example",
		EmailVerified: verified,
		CreatedAt:     created,
	}
}

func createIdentity(t *testing.T, s IdentityBackend, x *auth.Identity) *auth.Identity {
	t.Helper()
	in := *x
	if err := s.CreateIdentity(t.Context(), &in); err != nil {
		t.Fatalf("CreateIdentity(%s): %v", x.ID, err)
	}
	return x
}

func checkIdentity(t *testing.T, got, want *auth.Identity) {
	t.Helper()
	if got == nil {
		t.Fatalf("identity %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.UserID != want.UserID || got.Provider != want.Provider || got.Subject != want.Subject {
		t.Errorf("identity = {ID %q, UserID %q, Provider %q, Subject %q}, want {%q, %q, %q, %q}",
			got.ID, got.UserID, got.Provider, got.Subject, want.ID, want.UserID, want.Provider, want.Subject)
	}
	if got.Email != want.Email || got.EmailVerified != want.EmailVerified {
		t.Errorf("identity %s: Email, EmailVerified = %q, %v; want %q, %v", want.ID, got.Email, got.EmailVerified, want.Email, want.EmailVerified)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("identity %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
}

func getIdentity(t *testing.T, s IdentityBackend, x *auth.Identity) *auth.Identity {
	t.Helper()
	got, err := s.IdentityBySubject(t.Context(), x.Provider, x.Subject)
	if err != nil {
		t.Fatalf("IdentityBySubject(%s, %s): %v", x.Provider, x.Subject, err)
	}
	return got
}

func wantNoIdentity(t *testing.T, s IdentityBackend, provider, subject, why string) {
	t.Helper()
	got, err := s.IdentityBySubject(t.Context(), provider, subject)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("IdentityBySubject(%s, %s) %s = %+v, %v; want ErrNotFound", provider, subject, why, got, err)
	}
}

// listIdentities lists the user's identities, checks each against want
// (by id), and returns their ids in the order listed.
func listIdentities(t *testing.T, s IdentityBackend, userID string, want ...*auth.Identity) []string {
	t.Helper()
	got, err := s.ListIdentities(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListIdentities(%s): %v", userID, err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ID)
		for _, w := range want {
			if w.ID == g.ID {
				checkIdentity(t, g, w)
			}
		}
	}
	return ids
}

func testIdentityRoundTrip(t *testing.T, open func(t *testing.T) IdentityBackend) {
	for _, tc := range []struct {
		name string
		x    *auth.Identity
	}{
		{"Verified", newIdentity("i-1", "u-1", "google", "108234567890123456789", true, at(time.Hour+3*time.Microsecond))},
		{"Unverified", newIdentity("i-1", "u-1", "github", "583231", false, at(time.Hour))},
		{"NoEmail", func() *auth.Identity {
			x := newIdentity("i-1", "u-1", "apple", "001234.abcdef0123456789.0123", false, at(time.Hour))
			x.Email = ""
			return x
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1", "u-2")
			want := *tc.x
			createIdentity(t, s, tc.x)
			createIdentity(t, s, newIdentity("i-other", "u-2", want.Provider, want.Subject+"0", true, at(time.Minute)))

			checkIdentity(t, getIdentity(t, s, &want), &want)
			wantIDs(t, "ListIdentities(u-1)", listIdentities(t, s, "u-1", &want), want.ID)
		})
	}
}

func testIdentityUnknown(t *testing.T, open func(t *testing.T) IdentityBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	createIdentity(t, s, newIdentity("i-1", "u-1", "google", "sub-1", true, at(0)))
	for _, tc := range []struct{ provider, subject string }{
		{"google", "sub-2"},
		{"github", "sub-1"}, // subjects are per provider
		{"Google", "sub-1"},
		{"google", "SUB-1"},
		{"google", ""},
		{"", "sub-1"},
	} {
		wantNoIdentity(t, s, tc.provider, tc.subject, "of an unknown pair")
	}
	wantIDs(t, "ListIdentities(nobody)", listIdentities(t, s, "nobody"))
}

func testIdentityTaken(t *testing.T, open func(t *testing.T) IdentityBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	first := createIdentity(t, s, newIdentity("i-1", "u-1", "google", "sub-1", true, at(0)))

	for _, owner := range []string{"u-1", "u-2"} {
		dup := newIdentity("i-dup-"+owner, owner, "google", "sub-1", true, at(time.Hour))
		wantCode(t, "CreateIdentity of a linked (provider, subject) for "+owner, s.CreateIdentity(t.Context(), dup), auth.ECONFLICT)
	}
	checkIdentity(t, getIdentity(t, s, first), first)
	wantIDs(t, "ListIdentities(u-2)", listIdentities(t, s, "u-2"))

	// The same subject at another provider is another identity.
	other := createIdentity(t, s, newIdentity("i-2", "u-2", "github", "sub-1", false, at(time.Hour)))
	checkIdentity(t, getIdentity(t, s, other), other)
	checkIdentity(t, getIdentity(t, s, first), first)
}

func testIdentityWithUser(t *testing.T, open func(t *testing.T) IdentityBackend) {
	t.Run("Creates", func(t *testing.T) {
		s := open(t)
		u := fullUser("u-new", "new@example.com")
		x := newIdentity("i-1", "u-new", "google", "sub-1", true, at(time.Hour))
		wantU, wantX := *u, *x
		if err := s.CreateUserWithIdentity(t.Context(), u, x); err != nil {
			t.Fatalf("CreateUserWithIdentity: %v", err)
		}
		got, err := s.UserByID(t.Context(), "u-new")
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkUser(t, got, &wantU)
		checkIdentity(t, getIdentity(t, s, &wantX), &wantX)
		wantIDs(t, "ListIdentities(u-new)", listIdentities(t, s, "u-new", &wantX), "i-1")
	})

	// Either insert failing leaves neither row.
	t.Run("EmailTaken", func(t *testing.T) {
		s := open(t)
		if err := s.CreateUser(t.Context(), fullUser("u-1", "taken@example.com")); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		err := s.CreateUserWithIdentity(t.Context(), minimalUser("u-new", "taken@example.com"), newIdentity("i-1", "u-new", "google", "sub-1", true, at(0)))
		wantErr(t, "CreateUserWithIdentity with a taken email", err, auth.ErrEmailTaken)
		_, err = s.UserByID(t.Context(), "u-new")
		wantErr(t, "UserByID of the refused account", err, auth.ErrNotFound)
		wantNoIdentity(t, s, "google", "sub-1", "after the refused CreateUserWithIdentity")
	})

	t.Run("IdentityTaken", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		first := createIdentity(t, s, newIdentity("i-1", "u-1", "google", "sub-1", true, at(0)))
		err := s.CreateUserWithIdentity(t.Context(), minimalUser("u-new", "new@example.com"), newIdentity("i-2", "u-new", "google", "sub-1", true, at(time.Hour)))
		wantCode(t, "CreateUserWithIdentity with a linked identity", err, auth.ECONFLICT)
		_, err = s.UserByID(t.Context(), "u-new")
		wantErr(t, "UserByID of the refused account (the identity insert failed after the user insert)", err, auth.ErrNotFound)
		checkIdentity(t, getIdentity(t, s, first), first)
		// Nor does the refused account hold its email.
		if err := s.CreateUser(t.Context(), minimalUser("u-later", "new@example.com")); err != nil {
			t.Errorf("CreateUser with the refused account's email: %v", err)
		}
	})
}

func testIdentityList(t *testing.T, open func(t *testing.T) IdentityBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2", "u-3")
	a := newIdentity("i-a", "u-1", "google", "a", true, at(3*time.Hour))
	b := newIdentity("i-b", "u-1", "github", "b", false, at(time.Hour+time.Microsecond))
	c := newIdentity("i-c", "u-1", "apple", "c", true, at(time.Hour)) // 1µs older than b
	d := newIdentity("i-d", "u-1", "google", "d", true, at(2*time.Hour))
	o := newIdentity("i-o", "u-2", "google", "o", true, at(0))
	for _, x := range []*auth.Identity{d, o, a, c, b} { // neither time nor id order
		createIdentity(t, s, x)
	}
	wantIDs(t, "ListIdentities(u-1)", listIdentities(t, s, "u-1", a, b, c, d), "i-c", "i-b", "i-d", "i-a")
	wantIDs(t, "ListIdentities(u-2)", listIdentities(t, s, "u-2", o), "i-o")
	wantIDs(t, "ListIdentities(u-3)", listIdentities(t, s, "u-3"))
}

func testIdentityDelete(t *testing.T, open func(t *testing.T) IdentityBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	x := createIdentity(t, s, newIdentity("i-1", "u-1", "google", "sub-1", true, at(0)))
	keep := createIdentity(t, s, newIdentity("i-2", "u-1", "github", "sub-2", true, at(time.Second)))
	theirs := createIdentity(t, s, newIdentity("i-3", "u-2", "google", "sub-3", true, at(0)))

	wantErr(t, "DeleteIdentity of another user's identity", s.DeleteIdentity(t.Context(), "u-2", x.ID), auth.ErrNotFound)
	wantErr(t, "DeleteIdentity of an unknown id", s.DeleteIdentity(t.Context(), "u-1", "i-none"), auth.ErrNotFound)
	checkIdentity(t, getIdentity(t, s, x), x)

	if err := s.DeleteIdentity(t.Context(), "u-1", x.ID); err != nil {
		t.Fatalf("DeleteIdentity: %v", err)
	}
	wantNoIdentity(t, s, x.Provider, x.Subject, "after DeleteIdentity")
	wantErr(t, "second DeleteIdentity", s.DeleteIdentity(t.Context(), "u-1", x.ID), auth.ErrNotFound)
	wantIDs(t, "ListIdentities(u-1)", listIdentities(t, s, "u-1", keep), "i-2")
	checkIdentity(t, getIdentity(t, s, theirs), theirs)

	// The unlinked identity may be linked again, to anyone.
	again := createIdentity(t, s, newIdentity("i-4", "u-2", "google", "sub-1", false, at(time.Hour)))
	checkIdentity(t, getIdentity(t, s, again), again)
}

func testIdentityDeleteAll(t *testing.T, open func(t *testing.T) IdentityBackend) {
	setup := func(t *testing.T) (IdentityBackend, []*auth.Identity, []*auth.Identity, *auth.Identity) {
		s := open(t)
		makeUsers(t, s, "u-1", "u-2", "u-3")
		verified := []*auth.Identity{
			createIdentity(t, s, newIdentity("i-v1", "u-1", "google", "v1", true, at(0))),
			createIdentity(t, s, newIdentity("i-v2", "u-1", "apple", "v2", true, at(time.Second))),
		}
		unverified := []*auth.Identity{
			createIdentity(t, s, newIdentity("i-u1", "u-1", "github", "u1", false, at(2*time.Second))),
			createIdentity(t, s, newIdentity("i-u2", "u-1", "gitlab", "u2", false, at(3*time.Second))),
		}
		theirs := createIdentity(t, s, newIdentity("i-o", "u-2", "github", "o", false, at(0)))
		return s, verified, unverified, theirs
	}

	t.Run("UnverifiedOnly", func(t *testing.T) {
		s, verified, unverified, theirs := setup(t)
		if err := s.DeleteUserIdentities(t.Context(), "u-1", true); err != nil {
			t.Fatalf("DeleteUserIdentities(unverifiedOnly): %v", err)
		}
		for _, x := range unverified {
			wantNoIdentity(t, s, x.Provider, x.Subject, "after DeleteUserIdentities(unverifiedOnly)")
		}
		wantIDs(t, "ListIdentities(u-1)", listIdentities(t, s, "u-1", verified...), "i-v1", "i-v2")
		checkIdentity(t, getIdentity(t, s, theirs), theirs)
	})

	t.Run("All", func(t *testing.T) {
		s, verified, unverified, theirs := setup(t)
		if err := s.DeleteUserIdentities(t.Context(), "u-1", false); err != nil {
			t.Fatalf("DeleteUserIdentities: %v", err)
		}
		for _, x := range append(verified, unverified...) {
			wantNoIdentity(t, s, x.Provider, x.Subject, "after DeleteUserIdentities")
		}
		wantIDs(t, "ListIdentities(u-1)", listIdentities(t, s, "u-1"))
		checkIdentity(t, getIdentity(t, s, theirs), theirs)
		if err := s.DeleteUserIdentities(t.Context(), "u-3", false); err != nil {
			t.Errorf("DeleteUserIdentities of a user without identities: %v", err)
		}
	})
}

// testIdentityConcurrentLink: one external account linked from several
// sessions at once ends up linked to exactly one account.
func testIdentityConcurrentLink(t *testing.T, open func(t *testing.T) IdentityBackend) {
	s := open(t)
	var xs [racers]*auth.Identity
	for i := range racers {
		owner := fmt.Sprintf("u-%02d", i)
		makeUsers(t, s, owner)
		xs[i] = newIdentity(fmt.Sprintf("i-%02d", i), owner, "google", "sub-1", true, at(time.Duration(i)*time.Second))
	}
	errs := make([]error, racers)
	race(racers, func(i int) {
		in := *xs[i]
		errs[i] = s.CreateIdentity(t.Context(), &in)
	})
	w := oneWinnerCode(t, "CreateIdentity of one (provider, subject)", errs, auth.ECONFLICT)
	checkIdentity(t, getIdentity(t, s, xs[w]), xs[w])
	for i := range racers {
		n := 0
		if i == w {
			n = 1
		}
		if ids := listIdentities(t, s, xs[i].UserID); len(ids) != n {
			t.Errorf("ListIdentities(%s) = %q, want %d identities", xs[i].UserID, ids, n)
		}
	}
}

// testIdentityConcurrentSignUp: first sign-ins with one external account
// at once (a double-submitted callback) make exactly one account, and the
// losers leave no account behind.
func testIdentityConcurrentSignUp(t *testing.T, open func(t *testing.T) IdentityBackend) {
	s := open(t)
	var (
		us   [racers]*auth.User
		xs   [racers]*auth.Identity
		errs = make([]error, racers)
	)
	for i := range racers {
		id := fmt.Sprintf("u-%02d", i)
		us[i] = minimalUser(id, id+"@example.com")
		xs[i] = newIdentity(fmt.Sprintf("i-%02d", i), id, "google", "sub-1", true, at(time.Duration(i)*time.Second))
	}
	race(racers, func(i int) {
		u, x := *us[i], *xs[i]
		errs[i] = s.CreateUserWithIdentity(t.Context(), &u, &x)
	})
	w := oneWinnerCode(t, "CreateUserWithIdentity of one (provider, subject)", errs, auth.ECONFLICT)
	checkIdentity(t, getIdentity(t, s, xs[w]), xs[w])
	for i := range racers {
		_, err := s.UserByID(t.Context(), us[i].ID)
		if i == w && err != nil {
			t.Errorf("UserByID of the winner %s: %v", us[i].ID, err)
		}
		if i != w && !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("UserByID of the loser %s = %v, want ErrNotFound (no account without its identity)", us[i].ID, err)
		}
	}
}

func testIdentityDeleteUser(t *testing.T, open func(t *testing.T) IdentityBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	mine := []*auth.Identity{
		createIdentity(t, s, newIdentity("i-1", "u-1", "google", "sub-1", true, at(0))),
		createIdentity(t, s, newIdentity("i-2", "u-1", "github", "sub-2", false, at(time.Second))),
	}
	theirs := createIdentity(t, s, newIdentity("i-3", "u-2", "google", "sub-3", true, at(0)))

	deleteUser(t, s, "u-1")
	for _, x := range mine {
		wantNoIdentity(t, s, x.Provider, x.Subject, "after DeleteUser")
	}
	wantIDs(t, "ListIdentities(u-1) after DeleteUser", listIdentities(t, s, "u-1"))
	checkIdentity(t, getIdentity(t, s, theirs), theirs)
	// The external account is free to sign up again.
	again := createIdentity(t, s, newIdentity("i-4", "u-2", "google", "sub-1", true, at(time.Hour)))
	checkIdentity(t, getIdentity(t, s, again), again)
}
