package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// SessionBackend is a session store under test: auth.SessionStore plus the
// one piece of setup the suite needs, making the owner of a session exist.
// The SQL store's sessions reference users (a foreign key), so its
// *sqlstore.DB qualifies as it is; a backend without users (Redis) is wrapped
// with a CreateUser that does nothing. CreateUser is the whole of
// auth.UserStore the suite needs, so it asks for nothing more.
type SessionBackend interface {
	auth.SessionStore
	CreateUser(ctx context.Context, u *auth.User) error
}

// RunSessions runs the session contract. open must return a fresh, empty
// backend each time it is called (once per subtest) and arrange its cleanup
// with t.Cleanup.
//
// A backend may drop a session once its ExpiresAt has passed by the wall
// clock (Redis expires the keys), so the sessions of this suite are dated
// around the real time and expire in the future.
func RunSessions(t *testing.T, open func(t *testing.T) SessionBackend) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testSessionRoundTrip(t, open) })
	t.Run("UnknownHash", func(t *testing.T) { testSessionUnknown(t, open) })
	t.Run("Touch", func(t *testing.T) { testSessionTouch(t, open) })
	t.Run("TouchDeletedDoesNotResurrect", func(t *testing.T) { testSessionTouchDeleted(t, open) })
	t.Run("ListNewestFirst", func(t *testing.T) { testSessionList(t, open) })
	t.Run("DeleteSession", func(t *testing.T) { testSessionDelete(t, open) })
	t.Run("DeleteUserSessions", func(t *testing.T) { testSessionDeleteUser(t, open) })
	t.Run("DeleteUserCascades", func(t *testing.T) { testSessionUserDeleted(t, open) })
	t.Run("AuthenticationDefaults", func(t *testing.T) { testSessionAuthDefaults(t, open) })
	t.Run("Elevate", func(t *testing.T) { testSessionElevate(t, open) })
}

// sessionBase is "now" at microsecond precision in a non-UTC zone.
func sessionBase() time.Time {
	return time.Now().Truncate(time.Microsecond).In(t0.Location())
}

// newSession makes session id of userID created at created; every field is
// set, and the times differ by odd microseconds. Its level is aal2, not the
// default a store gives a session without one, so that a store that drops
// the level fails the round trip.
func newSession(id, userID string, created time.Time) *auth.Session {
	return &auth.Session{
		ACR:        auth.ACR2,
		AMR:        []string{"pwd", "otp", "mfa"},
		AuthTime:   created.Add(-2*time.Minute - 13*time.Microsecond),
		ID:         id,
		UserID:     userID,
		Hash:       hashOf("session-token-" + id),
		CreatedAt:  created,
		LastSeenAt: created.Add(90*time.Second + 17*time.Microsecond),
		ExpiresAt:  created.Add(30*24*time.Hour + 999_999*time.Microsecond),
		IP:         "2001:db8::" + id,
		UserAgent:  "Mozilla/5.0 (X11; Linux x86_64) Zoë's \"browser\" 🙂 " + id,
	}
}

func sessionUsers(t *testing.T, s SessionBackend, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.CreateUser(t.Context(), minimalUser(id, id+"@example.com")); err != nil {
			t.Fatalf("CreateUser(%s): %v", id, err)
		}
	}
}

func createSession(t *testing.T, s SessionBackend, x *auth.Session) *auth.Session {
	t.Helper()
	in := *x // the store may not keep a pointer to the caller's value
	if err := s.CreateSession(t.Context(), &in); err != nil {
		t.Fatalf("CreateSession(%s): %v", x.ID, err)
	}
	return x
}

func getSession(t *testing.T, s SessionBackend, hash string) *auth.Session {
	t.Helper()
	got, err := s.SessionByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("SessionByHash(%.12s…): %v", hash, err)
	}
	if got == nil {
		t.Fatalf("SessionByHash(%.12s…): nil session, nil error", hash)
	}
	return got
}

func checkSession(t *testing.T, got, want *auth.Session) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.Hash != want.Hash {
		t.Errorf("session = {ID %q, UserID %q, Hash %q}, want {%q, %q, %q}", got.ID, got.UserID, got.Hash, want.ID, want.UserID, want.Hash)
	}
	if got.IP != want.IP {
		t.Errorf("session %s: IP = %q, want %q", want.ID, got.IP, want.IP)
	}
	if got.UserAgent != want.UserAgent {
		t.Errorf("session %s: UserAgent = %q, want %q", want.ID, got.UserAgent, want.UserAgent)
	}
	if got.ACR != want.ACR {
		t.Errorf("session %s: ACR = %q, want %q", want.ID, got.ACR, want.ACR)
	}
	if !slices.Equal(got.AMR, want.AMR) {
		t.Errorf("session %s: AMR = %q, want %q", want.ID, got.AMR, want.AMR)
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"LastSeenAt", got.LastSeenAt, want.LastSeenAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"AuthTime", got.AuthTime, want.AuthTime},
	} {
		if !f.got.Equal(f.want) {
			t.Errorf("session %s: %s = %v, want %v", want.ID, f.name, f.got, f.want)
		}
	}
}

// listIDs lists the user's sessions, checks each against want (by id), and
// returns their ids in the order listed.
func listIDs(t *testing.T, s SessionBackend, userID string, want ...*auth.Session) []string {
	t.Helper()
	got, err := s.ListSessions(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListSessions(%s): %v", userID, err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ID)
		for _, w := range want {
			if w.ID == g.ID {
				checkSession(t, g, w)
			}
		}
	}
	return ids
}

func wantSessionGone(t *testing.T, s SessionBackend, x *auth.Session, why string) {
	t.Helper()
	got, err := s.SessionByHash(t.Context(), x.Hash)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("SessionByHash(%s) %s = %+v, %v; want ErrNotFound", x.ID, why, got, err)
	}
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func testSessionRoundTrip(t *testing.T, open func(t *testing.T) SessionBackend) {
	base := sessionBase()
	for _, tc := range []struct {
		name string
		sess *auth.Session
	}{
		{"EveryField", newSession("s-full", "u-1", base.Add(-time.Hour+3*time.Microsecond))},
		{"EmptyIPAndUserAgent", func() *auth.Session {
			x := newSession("s-min", "u-1", base)
			x.IP, x.UserAgent = "", ""
			return x
		}()},
		{"LongUserAgent", func() *auth.Session {
			x := newSession("s-long", "u-1", base)
			b := make([]byte, 512)
			for i := range b {
				b[i] = 'a' + byte(i%26)
			}
			x.UserAgent = string(b)
			return x
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			sessionUsers(t, s, "u-1", "u-2")
			want := *tc.sess
			createSession(t, s, tc.sess)
			// Another session, of another user, must not be returned instead.
			createSession(t, s, newSession("s-other", "u-2", base.Add(time.Minute)))

			checkSession(t, getSession(t, s, want.Hash), &want)
			wantIDs(t, "ListSessions(u-1)", listIDs(t, s, "u-1", &want), want.ID)
		})
	}
}

func testSessionUnknown(t *testing.T, open func(t *testing.T) SessionBackend) {
	s := open(t)
	sessionUsers(t, s, "u-1")
	x := createSession(t, s, newSession("s-1", "u-1", sessionBase()))
	for _, h := range []string{hashOf("never issued"), "", x.Hash[:32], x.ID} {
		got, err := s.SessionByHash(t.Context(), h)
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("SessionByHash(%q) = %+v, %v; want ErrNotFound", h, got, err)
		}
	}
	ids := listIDs(t, s, "nobody")
	wantIDs(t, "ListSessions(nobody)", ids)
}

func testSessionTouch(t *testing.T, open func(t *testing.T) SessionBackend) {
	s := open(t)
	sessionUsers(t, s, "u-1")
	base := sessionBase()
	x := createSession(t, s, newSession("s-1", "u-1", base))
	other := createSession(t, s, newSession("s-2", "u-1", base.Add(time.Second)))

	for i, d := range []time.Duration{5*time.Minute + 3*time.Microsecond, 17*time.Minute + 999_999*time.Microsecond} {
		at := base.Add(d)
		// A stale copy, as a request holds it: the store keys on ID/Hash,
		// not on the LastSeenAt the caller read.
		stale := *x
		if err := s.TouchSession(t.Context(), &stale, at); err != nil {
			t.Fatalf("TouchSession %d: %v", i+1, err)
		}
		want := *x
		want.LastSeenAt = at
		checkSession(t, getSession(t, s, x.Hash), &want)
	}
	checkSession(t, getSession(t, s, other.Hash), other)
}

func testSessionTouchDeleted(t *testing.T, open func(t *testing.T) SessionBackend) {
	s := open(t)
	sessionUsers(t, s, "u-1")
	base := sessionBase()
	x := createSession(t, s, newSession("s-1", "u-1", base))
	keep := createSession(t, s, newSession("s-2", "u-1", base.Add(-time.Minute)))
	if err := s.DeleteSession(t.Context(), "u-1", x.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	// A request that read the session before the revocation touches it
	// after: that must not bring it back. The touch may report ErrNotFound
	// or succeed doing nothing.
	if err := s.TouchSession(t.Context(), x, base.Add(time.Hour)); err != nil && !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("TouchSession of a deleted session: %v", err)
	}
	wantSessionGone(t, s, x, "after touching the deleted session")
	wantIDs(t, "ListSessions(u-1)", listIDs(t, s, "u-1", keep), keep.ID)
	wantErr(t, "DeleteSession of the touched deleted session", s.DeleteSession(t.Context(), "u-1", x.ID), auth.ErrNotFound)
}

func testSessionList(t *testing.T, open func(t *testing.T) SessionBackend) {
	s := open(t)
	sessionUsers(t, s, "u-1", "u-2", "u-3")
	base := sessionBase()
	a := newSession("s-a", "u-1", base.Add(-3*time.Hour))
	b := newSession("s-b", "u-1", base.Add(-time.Hour+time.Microsecond))
	c := newSession("s-c", "u-1", base.Add(-time.Hour)) // 1µs older than b
	d := newSession("s-d", "u-1", base.Add(-2*time.Hour))
	o1 := newSession("s-o1", "u-2", base)
	o2 := newSession("s-o2", "u-2", base.Add(-5*time.Hour))
	// Created neither in time nor in id order, interleaved across users.
	for _, x := range []*auth.Session{d, o1, a, c, o2, b} {
		createSession(t, s, x)
	}
	wantIDs(t, "ListSessions(u-1)", listIDs(t, s, "u-1", a, b, c, d), "s-b", "s-c", "s-d", "s-a")
	wantIDs(t, "ListSessions(u-2)", listIDs(t, s, "u-2", o1, o2), "s-o1", "s-o2")
	wantIDs(t, "ListSessions(u-3)", listIDs(t, s, "u-3"))
	wantIDs(t, "ListSessions(unknown user)", listIDs(t, s, "nobody"))
}

func testSessionDelete(t *testing.T, open func(t *testing.T) SessionBackend) {
	s := open(t)
	sessionUsers(t, s, "u-1", "u-2")
	base := sessionBase()
	mine := createSession(t, s, newSession("s-1", "u-1", base))
	mine2 := createSession(t, s, newSession("s-2", "u-1", base.Add(-time.Minute)))
	theirs := createSession(t, s, newSession("s-3", "u-2", base))

	// Another user's session id: not found, and nothing is deleted.
	wantErr(t, "DeleteSession(u-2, u-1's session)", s.DeleteSession(t.Context(), "u-2", mine.ID), auth.ErrNotFound)
	wantErr(t, "DeleteSession(unknown user, u-1's session)", s.DeleteSession(t.Context(), "nobody", mine.ID), auth.ErrNotFound)
	wantErr(t, "DeleteSession(u-1, unknown id)", s.DeleteSession(t.Context(), "u-1", "s-none"), auth.ErrNotFound)
	checkSession(t, getSession(t, s, mine.Hash), mine)
	wantIDs(t, "ListSessions(u-1) after refused deletes", listIDs(t, s, "u-1", mine, mine2), "s-1", "s-2")
	wantIDs(t, "ListSessions(u-2) after refused deletes", listIDs(t, s, "u-2", theirs), "s-3")

	if err := s.DeleteSession(t.Context(), "u-1", mine.ID); err != nil {
		t.Fatalf("DeleteSession(u-1, s-1): %v", err)
	}
	wantSessionGone(t, s, mine, "after DeleteSession")
	wantIDs(t, "ListSessions(u-1) after delete", listIDs(t, s, "u-1", mine2), "s-2")
	wantErr(t, "second DeleteSession", s.DeleteSession(t.Context(), "u-1", mine.ID), auth.ErrNotFound)

	checkSession(t, getSession(t, s, mine2.Hash), mine2)
	checkSession(t, getSession(t, s, theirs.Hash), theirs)
}

func testSessionDeleteUser(t *testing.T, open func(t *testing.T) SessionBackend) {
	setup := func(t *testing.T) (SessionBackend, []*auth.Session, []*auth.Session) {
		s := open(t)
		sessionUsers(t, s, "u-1", "u-2")
		base := sessionBase()
		var mine, theirs []*auth.Session
		for i, id := range []string{"s-1", "s-2", "s-3"} {
			mine = append(mine, createSession(t, s, newSession(id, "u-1", base.Add(-time.Duration(i)*time.Minute))))
		}
		for i, id := range []string{"s-4", "s-5"} {
			theirs = append(theirs, createSession(t, s, newSession(id, "u-2", base.Add(-time.Duration(i)*time.Minute))))
		}
		return s, mine, theirs
	}
	othersUntouched := func(t *testing.T, s SessionBackend, theirs []*auth.Session) {
		t.Helper()
		for _, x := range theirs {
			checkSession(t, getSession(t, s, x.Hash), x)
		}
		wantIDs(t, "ListSessions(u-2)", listIDs(t, s, "u-2", theirs...), "s-4", "s-5")
	}

	t.Run("KeepsExcept", func(t *testing.T) {
		s, mine, theirs := setup(t)
		if err := s.DeleteUserSessions(t.Context(), "u-1", "s-2"); err != nil {
			t.Fatalf("DeleteUserSessions: %v", err)
		}
		checkSession(t, getSession(t, s, mine[1].Hash), mine[1])
		wantSessionGone(t, s, mine[0], "after DeleteUserSessions")
		wantSessionGone(t, s, mine[2], "after DeleteUserSessions")
		wantIDs(t, "ListSessions(u-1)", listIDs(t, s, "u-1", mine[1]), "s-2")
		othersUntouched(t, s, theirs)
	})

	t.Run("EmptyExceptRemovesAll", func(t *testing.T) {
		s, mine, theirs := setup(t)
		if err := s.DeleteUserSessions(t.Context(), "u-1", ""); err != nil {
			t.Fatalf("DeleteUserSessions: %v", err)
		}
		for _, x := range mine {
			wantSessionGone(t, s, x, "after DeleteUserSessions")
		}
		wantIDs(t, "ListSessions(u-1)", listIDs(t, s, "u-1"))
		othersUntouched(t, s, theirs)
	})

	t.Run("ExceptAnotherUsersSession", func(t *testing.T) {
		// exceptID names a session of someone else: it protects nothing of
		// the user and deletes nothing of the other.
		s, mine, theirs := setup(t)
		if err := s.DeleteUserSessions(t.Context(), "u-1", "s-4"); err != nil {
			t.Fatalf("DeleteUserSessions: %v", err)
		}
		for _, x := range mine {
			wantSessionGone(t, s, x, "after DeleteUserSessions")
		}
		othersUntouched(t, s, theirs)
	})

	t.Run("NoSessions", func(t *testing.T) {
		s, _, theirs := setup(t)
		if err := s.DeleteUserSessions(t.Context(), "nobody", ""); err != nil {
			t.Errorf("DeleteUserSessions of a user without sessions: %v", err)
		}
		othersUntouched(t, s, theirs)
	})
}

// testSessionUserDeleted: deleting an account ends its sessions, in a
// backend that keeps the users; Redis, which does not, skips (the domain
// refuses a session whose account is gone).
func testSessionUserDeleted(t *testing.T, open func(t *testing.T) SessionBackend) {
	s := open(t)
	sessionUsers(t, s, "u-1", "u-2")
	base := sessionBase()
	mine := []*auth.Session{
		createSession(t, s, newSession("s-1", "u-1", base)),
		createSession(t, s, newSession("s-2", "u-1", base.Add(-time.Minute))),
	}
	theirs := createSession(t, s, newSession("s-3", "u-2", base))

	deleteUser(t, s, "u-1")
	for _, x := range mine {
		wantSessionGone(t, s, x, "after DeleteUser")
	}
	wantIDs(t, "ListSessions(u-1) after DeleteUser", listIDs(t, s, "u-1"))
	checkSession(t, getSession(t, s, theirs.Hash), theirs)
}

// checkSessionAndUser reads the session through the backend's one-query
// session-and-account read (auth.SessionUserStore, the cookie hot path),
// when it has one, and checks it like SessionByHash's.
func checkSessionAndUser(t *testing.T, s SessionBackend, want *auth.Session) {
	t.Helper()
	su, ok := s.(auth.SessionUserStore)
	if !ok {
		return
	}
	got, u, err := su.SessionAndUser(t.Context(), want.Hash)
	if err != nil {
		t.Fatalf("SessionAndUser(%s): %v", want.ID, err)
	}
	checkSession(t, got, want)
	if u == nil || u.ID != want.UserID {
		t.Errorf("SessionAndUser(%s): user = %+v, want %s", want.ID, u, want.UserID)
	}
}

// testSessionAuthDefaults: the level, methods and authentication time
// round-trip through every read, and a session stored without them (as
// every session was before SPEC §13) reads as aal1, no methods, signed in
// when it was created: a store must not leave a level empty, which
// revoking a user's aal1 sessions and families would miss.
func testSessionAuthDefaults(t *testing.T, open func(t *testing.T) SessionBackend) {
	base := sessionBase()
	for _, tc := range []struct {
		name string
		in   func(x *auth.Session)
		want func(x *auth.Session)
	}{
		{"TwoFactors", func(*auth.Session) {}, func(*auth.Session) {}},
		{"OneFactor", func(x *auth.Session) {
			x.ACR, x.AMR = auth.ACR1, []string{"hwk"}
		}, func(x *auth.Session) {}},
		{"NoneGiven", func(x *auth.Session) {
			x.ACR, x.AMR, x.AuthTime = "", nil, time.Time{}
		}, func(x *auth.Session) {
			x.ACR, x.AMR, x.AuthTime = auth.ACR1, nil, x.CreatedAt
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			sessionUsers(t, s, "u-1")
			x := newSession("s-1", "u-1", base)
			tc.in(x)
			createSession(t, s, x)
			want := *x
			tc.want(&want)
			checkSession(t, getSession(t, s, x.Hash), &want)
			wantIDs(t, "ListSessions(u-1)", listIDs(t, s, "u-1", &want), "s-1")
			checkSessionAndUser(t, s, &want)
		})
	}
}

// testSessionElevate: a step-up changes the level, methods and
// authentication time of the one session, keeps everything else (the
// expiry too), updates the caller's copy, and never brings back a session
// revoked meanwhile.
func testSessionElevate(t *testing.T, open func(t *testing.T) SessionBackend) {
	s := open(t)
	sessionUsers(t, s, "u-1", "u-2")
	base := sessionBase()
	x := newSession("s-1", "u-1", base)
	x.ACR, x.AMR = auth.ACR1, []string{"pwd"}
	createSession(t, s, x)
	other := newSession("s-2", "u-1", base.Add(-time.Minute))
	other.ACR, other.AMR = auth.ACR1, []string{"pwd"}
	createSession(t, s, other)
	theirs := createSession(t, s, newSession("s-3", "u-2", base))

	stepped := base.Add(7*time.Minute + 3*time.Microsecond)
	amr := []string{"pwd", "otp", "mfa"}
	held := *x // the request's copy
	if err := s.ElevateSession(t.Context(), &held, auth.ACR2, amr, stepped); err != nil {
		t.Fatalf("ElevateSession: %v", err)
	}
	want := *x
	want.ACR, want.AMR, want.AuthTime = auth.ACR2, []string{"pwd", "otp", "mfa"}, stepped
	checkSession(t, &held, &want) // the caller's copy follows
	amr[0] = "changed"            // the store keeps no reference to the caller's slice
	checkSession(t, getSession(t, s, x.Hash), &want)
	checkSessionAndUser(t, s, &want)
	checkSession(t, getSession(t, s, other.Hash), other)
	checkSession(t, getSession(t, s, theirs.Hash), theirs)

	// A later touch keeps the level.
	touched := base.Add(9 * time.Minute)
	if err := s.TouchSession(t.Context(), &held, touched); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	want.LastSeenAt = touched
	checkSession(t, getSession(t, s, x.Hash), &want)

	// Revoked meanwhile: ErrNotFound, and it stays revoked.
	if err := s.DeleteSession(t.Context(), "u-1", other.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	gone := *other
	wantErr(t, "ElevateSession of a deleted session", s.ElevateSession(t.Context(), &gone, auth.ACR2, amr, stepped), auth.ErrNotFound)
	wantSessionGone(t, s, other, "after elevating the deleted session")
	wantIDs(t, "ListSessions(u-1)", listIDs(t, s, "u-1", &want), "s-1")
	never := newSession("s-never", "u-1", base)
	wantErr(t, "ElevateSession of a session never stored", s.ElevateSession(t.Context(), never, auth.ACR2, amr, stepped), auth.ErrNotFound)
	wantSessionGone(t, s, never, "after elevating a session never stored")

	// Known only by its id and owner, as a request's principal knows it.
	byID := &auth.Session{ID: theirs.ID, UserID: "u-2"}
	later := stepped.Add(time.Minute)
	if err := s.ElevateSession(t.Context(), byID, auth.ACR2, []string{"pwd", "otp", "mfa"}, later); err != nil {
		t.Fatalf("ElevateSession by id and owner: %v", err)
	}
	wantTheirs := *theirs
	wantTheirs.ACR, wantTheirs.AMR, wantTheirs.AuthTime = auth.ACR2, []string{"pwd", "otp", "mfa"}, later
	checkSession(t, getSession(t, s, theirs.Hash), &wantTheirs)
	// Another user's session, by its id: refused, unchanged.
	wantErr(t, "ElevateSession of another user's session", s.ElevateSession(t.Context(), &auth.Session{ID: x.ID, UserID: "u-2"}, auth.ACR1, nil, base), auth.ErrNotFound)
	checkSession(t, getSession(t, s, x.Hash), &want)
}
