package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// AdminUserBackend is a store under test for the admin console's account
// search: users, and TOTP authenticators for the MFA filter.
type AdminUserBackend interface {
	auth.UserStore
	auth.MFAStore
}

// RunAdminUsers runs the contract of auth.UserDirectory (the admin
// console's user list, SPEC §17). open must return a fresh, migrated,
// empty store each time it is called and arrange its cleanup with
// t.Cleanup.
func RunAdminUsers(t *testing.T, open func(t *testing.T) AdminUserBackend) {
	t.Helper()
	t.Run("FindUsers", func(t *testing.T) { testFindUsers(t, open) })
	t.Run("FindUsersPages", func(t *testing.T) { testFindUsersPages(t, open) })
}

// directoryUser is one account of testFindUsers.
type directoryUser struct {
	id, email, name   string
	roles             []string
	verified, disable bool
	mfa               bool
}

// directory are the accounts testFindUsers searches. Emails are chosen so
// that byte order differs from a natural-language collation's ("al-x"
// sorts first: '-' < 'b'), and hold LIKE wildcards that must match only
// themselves.
var directory = []directoryUser{
	{"u-0", "alice@example.com", "Alice Liddell", []string{"user"}, true, false, false},
	{"u-1", "albert@example.org", "Zed", []string{"user", "admin"}, false, false, false},
	{"u-2", "bob@example.com", "Alicia Keys", []string{"user"}, true, true, false},
	{"u-3", "carol_x@example.com", "Carol", []string{"auditor"}, true, false, false},
	{"u-4", "carolyx@example.com", "Émile Zola", []string{"user"}, true, false, false},
	{"u-5", "zoë@example.com", "zoë", []string{"user"}, true, false, true},
	{"u-6", "ali%x@example.net", "", nil, true, false, false},
	{"u-7", "dave@sub.example.com", "Dave", []string{"user"}, false, true, true},
	{"u-8", "al-x@example.com", "Al", []string{"superuser"}, true, false, false},
	{"u-9", "erin@example.com", "ALICE COOPER", []string{"user"}, true, false, false},
}

func seedDirectory(t *testing.T, s AdminUserBackend) {
	t.Helper()
	for i, d := range directory {
		u := minimalUser(d.id, d.email)
		u.Name, u.Roles, u.EmailVerified, u.Disabled = d.name, d.roles, d.verified, d.disable
		addUser(t, s, u)
		if d.mfa {
			id := fmt.Sprintf("totp-%d", i)
			if err := s.PutPendingTOTP(t.Context(), pendingTOTP(id, d.id, at(0))); err != nil {
				t.Fatalf("PutPendingTOTP(%s): %v", id, err)
			}
			if err := s.ConfirmTOTP(t.Context(), d.id, id, 1, nil, at(time.Minute)); err != nil {
				t.Fatalf("ConfirmTOTP(%s): %v", id, err)
			}
		}
	}
	// A pending (unconfirmed) enrolment is not MFA.
	if err := s.PutPendingTOTP(t.Context(), pendingTOTP("totp-pending", "u-0", at(0))); err != nil {
		t.Fatalf("PutPendingTOTP: %v", err)
	}
}

// directoryEmails maps ids of directory to their emails, in the order
// given.
func directoryEmails(ids ...string) []string {
	var out []string
	for _, id := range ids {
		for _, d := range directory {
			if d.id == id {
				out = append(out, d.email)
			}
		}
	}
	return out
}

func testFindUsers(t *testing.T, open func(t *testing.T) AdminUserBackend) {
	s := open(t)
	seedDirectory(t, s)
	var all []string
	for _, d := range directory {
		all = append(all, d.email)
	}
	slices.Sort(all) // byte order
	yes, no := true, false
	for _, tc := range []struct {
		name string
		q    auth.UserQuery
		want []string // emails, in order
	}{
		{"All", auth.UserQuery{}, all},
		{"AllLimit", auth.UserQuery{Limit: 3}, all[:3]},
		{"AllAfter", auth.UserQuery{After: "b"}, all[4:]},
		{"AllAfterAnEmail", auth.UserQuery{After: "bob@example.com"}, all[5:]},
		{"AllBefore", auth.UserQuery{Before: "carol_x@example.com", Limit: 2}, []string{"alice@example.com", "bob@example.com"}},
		{"AllBeforeTheFirst", auth.UserQuery{Before: "al-x@example.com"}, nil},
		{"EmailPrefix", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "al"},
			directoryEmails("u-8", "u-1", "u-6", "u-0")},
		{"EmailPrefixAnyCase", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "AL"},
			directoryEmails("u-8", "u-1", "u-6", "u-0")},
		{"EmailPrefixPercentIsLiteral", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "ali%"}, directoryEmails("u-6")},
		{"EmailPrefixUnderscoreIsLiteral", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "carol_"}, directoryEmails("u-3")},
		{"EmailPrefixNonASCII", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "zoë@"}, directoryEmails("u-5")},
		{"EmailPrefixWhole", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "bob@example.com"}, directoryEmails("u-2")},
		{"EmailPrefixLimit", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "al", Limit: 2}, directoryEmails("u-8", "u-1")},
		{"EmailPrefixAfter", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "al", After: "albert@example.org"}, directoryEmails("u-6", "u-0")},
		{"EmailPrefixAfterBeforeTheRange", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "al", After: "a"},
			directoryEmails("u-8", "u-1", "u-6", "u-0")},
		{"EmailPrefixAfterTheRange", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "al", After: "b"}, nil},
		{"EmailPrefixBefore", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "al", Before: "alice@example.com", Limit: 2},
			directoryEmails("u-1", "u-6")},
		{"EmailPrefixBeforeAfterTheRange", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "al", Before: "z", Limit: 2},
			directoryEmails("u-6", "u-0")},
		{"EmailPrefixNoMatch", auth.UserQuery{Match: auth.MatchEmailPrefix, Text: "nobody"}, nil},
		// Email or name: "ali" starts alice's and ali%x's emails and the
		// names of alice, bob (Alicia) and erin (ALICE, any case).
		{"Prefix", auth.UserQuery{Match: auth.MatchPrefix, Text: "ali"}, directoryEmails("u-6", "u-0", "u-2", "u-9")},
		{"PrefixAnyCase", auth.UserQuery{Match: auth.MatchPrefix, Text: "ALIC"}, directoryEmails("u-0", "u-2", "u-9")},
		{"PrefixLimit", auth.UserQuery{Match: auth.MatchPrefix, Text: "ali", Limit: 2}, directoryEmails("u-6", "u-0")},
		{"PrefixAfter", auth.UserQuery{Match: auth.MatchPrefix, Text: "ali", After: "alice@example.com"}, directoryEmails("u-2", "u-9")},
		{"PrefixBefore", auth.UserQuery{Match: auth.MatchPrefix, Text: "ali", Before: "erin@example.com", Limit: 2}, directoryEmails("u-0", "u-2")},
		{"PrefixOneAccountBothWays", auth.UserQuery{Match: auth.MatchPrefix, Text: "zo"}, directoryEmails("u-5")},
		{"PrefixNameNonASCII", auth.UserQuery{Match: auth.MatchPrefix, Text: "Émile"}, directoryEmails("u-4")},
		{"PrefixNameWithSpace", auth.UserQuery{Match: auth.MatchPrefix, Text: "alice l"}, directoryEmails("u-0")},
		{"PrefixNoMatch", auth.UserQuery{Match: auth.MatchPrefix, Text: "q"}, nil},
		{"Contains", auth.UserQuery{Match: auth.MatchEmailContains, Text: "@example.org"}, directoryEmails("u-1")},
		{"ContainsAnyCase", auth.UserQuery{Match: auth.MatchEmailContains, Text: "@SUB.example"}, directoryEmails("u-7")},
		{"ContainsPercentIsLiteral", auth.UserQuery{Match: auth.MatchEmailContains, Text: "i%x"}, directoryEmails("u-6")},
		{"ContainsUnderscoreIsLiteral", auth.UserQuery{Match: auth.MatchEmailContains, Text: "l_x"}, directoryEmails("u-3")},
		{"ContainsAfter", auth.UserQuery{Match: auth.MatchEmailContains, Text: "@example.com", After: "carolyx@example.com"},
			directoryEmails("u-9", "u-5")},
		{"ContainsBefore", auth.UserQuery{Match: auth.MatchEmailContains, Text: "@example.com", Before: "bob@example.com"},
			directoryEmails("u-8", "u-0")},
		{"ID", auth.UserQuery{Match: auth.MatchID, Text: "u-3"}, directoryEmails("u-3")},
		{"IDUnknown", auth.UserQuery{Match: auth.MatchID, Text: "u-99"}, nil},
		{"Disabled", auth.UserQuery{Disabled: &yes}, directoryEmails("u-2", "u-7")},
		{"Enabled", auth.UserQuery{Disabled: &no}, without(all, "bob@example.com", "dave@sub.example.com")},
		{"Unverified", auth.UserQuery{Verified: &no}, directoryEmails("u-1", "u-7")},
		{"Verified", auth.UserQuery{Verified: &yes, Limit: 3}, directoryEmails("u-8", "u-6", "u-0")},
		{"MFA", auth.UserQuery{MFA: &yes}, directoryEmails("u-7", "u-5")},
		{"NoMFA", auth.UserQuery{MFA: &no}, without(all, "dave@sub.example.com", "zoë@example.com")},
		{"Role", auth.UserQuery{Role: "admin"}, directoryEmails("u-1")},
		{"RoleIsAWholeWord", auth.UserQuery{Role: "user"}, directoryEmails("u-1", "u-0", "u-2", "u-4", "u-7", "u-9", "u-5")},
		{"RoleNoneHas", auth.UserQuery{Role: "us"}, nil},
		{"RoleWildcardIsLiteral", auth.UserQuery{Role: "%"}, nil},
		{"FiltersTogether", auth.UserQuery{Match: auth.MatchPrefix, Text: "al", Verified: &no, Disabled: &no}, directoryEmails("u-1")},
		{"FilterAndAfter", auth.UserQuery{Disabled: &yes, After: "bob@example.com"}, directoryEmails("u-7")},
		{"FilterAndBefore", auth.UserQuery{Disabled: &yes, Before: "dave@sub.example.com"}, directoryEmails("u-2")},
		{"MFAAndPrefix", auth.UserQuery{Match: auth.MatchPrefix, Text: "d", MFA: &yes}, directoryEmails("u-7")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users, err := s.FindUsers(t.Context(), tc.q)
			if err != nil {
				t.Fatalf("FindUsers(%+v): %v", tc.q, err)
			}
			var got []string
			for _, u := range users {
				got = append(got, u.Email)
				d := directory[slices.IndexFunc(directory, func(d directoryUser) bool { return d.email == u.Email })]
				if u.ID != d.id || u.Name != d.name || u.Disabled != d.disable || u.EmailVerified != d.verified || strings.Join(u.Roles, " ") != strings.Join(d.roles, " ") {
					t.Errorf("FindUsers: %s read as %+v, want %+v", u.Email, u, d)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("FindUsers(%+v) = %q, want %q", tc.q, got, tc.want)
			}
		})
	}
}

func addUser(t *testing.T, s AdminUserBackend, u *auth.User) {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.ID, err)
	}
}

func without(all []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(e string) bool { return slices.Contains(drop, e) })
}

// testFindUsersPages walks many accounts a page at a time forward, then
// back from the end: each account comes once, in order, and going back
// retraces the same pages.
func testFindUsersPages(t *testing.T, open func(t *testing.T) AdminUserBackend) {
	s := open(t)
	var want []string
	for i := range 37 {
		// Half match the prefix "m" by email; the rest by name only.
		email := fmt.Sprintf("m%03d@example.com", i)
		name := ""
		if i%2 == 1 {
			email, name = fmt.Sprintf("x%03d@example.com", i), fmt.Sprintf("Mia %d", i)
		}
		u := minimalUser(fmt.Sprintf("p-%d", i), email)
		u.Name = name
		addUser(t, s, u)
		want = append(want, email)
	}
	addUser(t, s, minimalUser("other", "other@example.com"))
	slices.Sort(want)
	{
		const (
			match = auth.MatchPrefix
			size  = 5
		)
		var got []string
		var firsts []string
		after := ""
		for n := 0; ; n++ {
			page, err := s.FindUsers(t.Context(), auth.UserQuery{Match: match, Text: "m", After: after, Limit: size})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if n > 20 {
				t.Fatalf("pages never end: %q", got)
			}
			firsts = append(firsts, page[0].Email)
			for _, u := range page {
				got = append(got, u.Email)
			}
			after = page[len(page)-1].Email
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages of %d forward: %q, want %q", size, got, want)
		}
		// Back from past the end: the same pages, last one first.
		before := "zzz"
		var back []string
		for n := 0; ; n++ {
			page, err := s.FindUsers(t.Context(), auth.UserQuery{Match: match, Text: "m", Before: before, Limit: size})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if n > 20 {
				t.Fatalf("pages back never end: %q", back)
			}
			var emails []string
			for _, u := range page {
				emails = append(emails, u.Email)
			}
			back = append(emails, back...)
			before = page[0].Email
		}
		if !slices.Equal(back, want) {
			t.Fatalf("pages of %d backward: %q, want %q", size, back, want)
		}
		if len(firsts) != (len(want)+size-1)/size {
			t.Fatalf("%d pages of %d for %d accounts", len(firsts), size, len(want))
		}
	}
}

// testLockoutState is the contract of auth.LockoutInspector, for every
// lockout store (RunLimits).
func testLockoutState(t *testing.T, open func(t *testing.T) LimitBackend) {
	const (
		threshold = 3
		lockFor   = 15 * time.Minute
	)
	now := at(0)
	state := func(t *testing.T, s LimitBackend, key string) auth.LockoutState {
		t.Helper()
		st, err := s.LockoutState(t.Context(), key)
		if err != nil {
			t.Fatalf("LockoutState(%s): %v", key, err)
		}
		return st
	}
	s := open(t)
	if st := state(t, s, "never-seen"); st != (auth.LockoutState{}) {
		t.Fatalf("LockoutState of an unknown key = %+v, want the zero value", st)
	}
	proceed(t, s, "k", 2, threshold, lockFor, now)
	// Reading counts nothing: after any number of reads, one more
	// attempt is still allowed.
	for range 5 {
		if st := state(t, s, "k"); st.Failures != 2 || !st.LockedUntil.IsZero() {
			t.Fatalf("LockoutState after 2 attempts = %+v, want 2 failures and no lock", st)
		}
	}
	proceed(t, s, "k", 1, threshold, lockFor, now)
	if st := state(t, s, "k"); st.Failures != 3 || !st.LockedUntil.IsZero() {
		t.Fatalf("LockoutState after 3 attempts = %+v, want 3 failures and no lock", st)
	}
	wantLocked(t, s, "k", threshold, lockFor, now, lockFor, true, "attempt 4")
	end := now.Add(lockFor)
	// Stores keep the end at millisecond precision at least.
	if st := state(t, s, "k"); st.LockedUntil.Before(end.Add(-time.Millisecond)) || st.LockedUntil.After(end) {
		t.Fatalf("LockoutState of a locked key = %+v, want locked until %v", st, end)
	}
	if st := state(t, s, "other"); st != (auth.LockoutState{}) {
		t.Fatalf("LockoutState of another key = %+v, want the zero value", st)
	}
	clearFailures(t, s, "k")
	if st := state(t, s, "k"); st != (auth.LockoutState{}) {
		t.Fatalf("LockoutState after ClearFailures = %+v, want the zero value", st)
	}
}
