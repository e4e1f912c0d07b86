package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// The rest of the user contract: the flags, the listing, and the races
// (one email, one password hash). Run runs it with testUsers.

func testUserFlags(t *testing.T, open func(t *testing.T) Store) {
	now := at(5*time.Hour + 11*time.Microsecond)
	for _, tc := range []struct {
		name  string
		from  *auth.User
		set   func(ctx context.Context, s Store, id string) error
		apply func(u *auth.User)
	}{
		{
			"SetEmailVerifiedFalse", fullUser("u-1", "one@example.com"),
			func(ctx context.Context, s Store, id string) error { return s.SetEmailVerified(ctx, id, false, now) },
			func(u *auth.User) { u.EmailVerified = false },
		},
		{
			"SetEmailVerifiedTrue", minimalUser("u-1", "one@example.com"),
			func(ctx context.Context, s Store, id string) error { return s.SetEmailVerified(ctx, id, true, now) },
			func(u *auth.User) { u.EmailVerified = true },
		},
		{
			"SetDisabledFalse", fullUser("u-1", "one@example.com"),
			func(ctx context.Context, s Store, id string) error { return s.SetDisabled(ctx, id, false, now) },
			func(u *auth.User) { u.Disabled = false },
		},
		{
			"SetDisabledTrue", minimalUser("u-1", "one@example.com"),
			func(ctx context.Context, s Store, id string) error { return s.SetDisabled(ctx, id, true, now) },
			func(u *auth.User) { u.Disabled = true },
		},
		{
			// Setting what is set already succeeds (and still dates it).
			"SetDisabledUnchanged", fullUser("u-1", "one@example.com"),
			func(ctx context.Context, s Store, id string) error { return s.SetDisabled(ctx, id, true, now) },
			func(u *auth.User) {},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			before := *tc.from
			createUser(t, s, tc.from)
			createUser(t, s, fullUser("u-2", "two@example.com"))
			if err := tc.set(t.Context(), s, "u-1"); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			want := before
			tc.apply(&want)
			want.UpdatedAt = now
			checkUser(t, getUser(t, s, "u-1"), &want)
			checkUser(t, getUser(t, s, "u-2"), fullUser("u-2", "two@example.com"))
			wantErr(t, tc.name+" of an unknown user", tc.set(t.Context(), s, "nobody"), auth.ErrNotFound)
		})
	}
}

func testListUsers(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	// Created in no particular order. Emails are stored normalised
	// (lower-case); '_' and '%' are LIKE wildcards in SQL and must match
	// only themselves. No two emails differ only in punctuation, whose
	// place in the order depends on the database's collation.
	emails := []string{
		"carolyx@example.com",
		"bob@example.org",
		"per%cent@example.net",
		"alice@example.com",
		"carol_x@example.com",
		"dave@sub.example.com",
		"zoë@example.com",
	}
	for i, e := range emails {
		createUser(t, s, minimalUser(fmt.Sprintf("u-%d", i), e))
	}
	sorted := slices.Sorted(slices.Values(emails))

	list := func(query, after string, limit int) []string {
		t.Helper()
		got, err := s.ListUsers(t.Context(), query, after, limit)
		if err != nil {
			t.Fatalf("ListUsers(%q, %q, %d): %v", query, after, limit, err)
		}
		var out []string
		for _, u := range got {
			out = append(out, u.Email)
			if i := slices.Index(emails, u.Email); i < 0 || u.ID != fmt.Sprintf("u-%d", i) {
				t.Errorf("ListUsers: %s has ID %q", u.Email, u.ID)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		query, after string
		limit        int
		want         []string
	}{
		{"All", "", "", 100, sorted},
		{"Limit", "", "", 3, sorted[:3]},
		{"After", "", "bob@example.org", 100, sorted[2:]},
		{"AfterAndLimit", "", "bob@example.org", 2, sorted[2:4]},
		{"AfterTheLast", "", "zoë@example.com", 100, nil},
		{"AfterAbsentEmail", "", "c", 100, sorted[2:]},
		{"Query", "carol", "", 100, []string{"carol_x@example.com", "carolyx@example.com"}},
		{"QueryAnyCase", "EXAMPLE.ORG", "", 100, []string{"bob@example.org"}},
		{"QueryUnderscoreIsLiteral", "l_x", "", 100, []string{"carol_x@example.com"}},
		{"QueryPercentIsLiteral", "%", "", 100, []string{"per%cent@example.net"}},
		{"QueryNonASCII", "zoë", "", 100, []string{"zoë@example.com"}},
		{"QueryAndAfter", "example.com", "carol_x@example.com", 100, []string{"carolyx@example.com", "dave@sub.example.com", "zoë@example.com"}},
		{"QueryNoMatch", "nobody", "", 100, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.query, tc.after, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("ListUsers(%q, %q, %d) = %q, want %q", tc.query, tc.after, tc.limit, got, tc.want)
			}
		})
	}

	t.Run("Pages", func(t *testing.T) {
		var all []string
		for after := ""; ; {
			page := list("", after, 2)
			if len(page) == 0 {
				break
			}
			if len(page) > 2 {
				t.Fatalf("page after %q holds %d users, limit 2", after, len(page))
			}
			all = append(all, page...)
			after = page[len(page)-1]
		}
		if !slices.Equal(all, sorted) {
			t.Errorf("pages of 2 = %q, want %q", all, sorted)
		}
	})
}

func testUserRaces(t *testing.T, open func(t *testing.T) Store) {
	// Sign-ups with one email at once make exactly one account.
	t.Run("ConcurrentCreateUserOneEmail", func(t *testing.T) {
		s := open(t)
		var (
			us   [racers]*auth.User
			errs = make([]error, racers)
		)
		for i := range racers {
			us[i] = minimalUser(fmt.Sprintf("u-%02d", i), "taken@example.com")
		}
		race(racers, func(i int) {
			u := *us[i]
			errs[i] = s.CreateUser(t.Context(), &u)
		})
		w := oneWinner(t, "CreateUser with one email", errs, auth.ErrEmailTaken)
		got, err := s.UserByEmail(t.Context(), "taken@example.com")
		if err != nil {
			t.Fatalf("UserByEmail: %v", err)
		}
		checkUser(t, got, us[w])
	})

	// Logins re-hashing one password at once (SPEC §18 H7): of concurrent
	// compare-and-sets from one hash exactly one succeeds.
	t.Run("ConcurrentSetPasswordHash", func(t *testing.T) {
		s := open(t)
		createUser(t, s, fullUser("u-1", "one@example.com"))
		old := fullUser("u-1", "").PasswordHash
		var (
			hashes [racers]string
			errs   = make([]error, racers)
		)
		for i := range racers {
			hashes[i] = fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$rehash%02d", i)
		}
		now := at(6 * time.Hour)
		race(racers, func(i int) {
			errs[i] = s.SetPasswordHash(t.Context(), "u-1", old, hashes[i], now)
		})
		w := oneWinner(t, "SetPasswordHash from one hash", errs, auth.ErrNotFound)
		want := fullUser("u-1", "one@example.com")
		want.PasswordHash, want.UpdatedAt = hashes[w], now
		checkUser(t, getUser(t, s, "u-1"), want)
	})
}
