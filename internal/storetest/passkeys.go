package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// PasskeyBackend is a passkey store under test: auth.PasskeyStore, plus
// CreateUser to make the passkeys' owners exist (see userMaker).
type PasskeyBackend interface {
	auth.PasskeyStore
	userMaker
}

// RunPasskeys runs the passkey contract. open must return a fresh, empty
// backend each time it is called (once per subtest) and arrange its
// cleanup with t.Cleanup.
func RunPasskeys(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testPasskeyRoundTrip(t, open) })
	t.Run("Unknown", func(t *testing.T) { testPasskeyUnknown(t, open) })
	t.Run("DuplicateCredentialID", func(t *testing.T) { testPasskeyDuplicate(t, open) })
	t.Run("ListOldestFirst", func(t *testing.T) { testPasskeyList(t, open) })
	t.Run("UpdateUseIsCompareAndSwap", func(t *testing.T) { testPasskeyUpdateUse(t, open) })
	t.Run("ConcurrentUpdateUse", func(t *testing.T) { testPasskeyConcurrentUse(t, open) })
	t.Run("Rename", func(t *testing.T) { testPasskeyRename(t, open) })
	t.Run("Delete", func(t *testing.T) { testPasskeyDelete(t, open) })
	t.Run("DeleteUserCascades", func(t *testing.T) { testPasskeyDeleteUser(t, open) })
}

// credentialRecord stands for the WebAuthn library's credential record
// (JSON with the sign counter); the store must treat it as opaque bytes.
func credentialRecord(id string, counter int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"publicKey":"pQECAyYgASFYIP7x…","flags":{"backupEligible":true},"authenticator":{"signCount":%d}}`, id, counter)
}

// newPasskey makes passkey id of userID created at created; its credential
// id is binary (NUL and 0xff included) and derived from id.
func newPasskey(id, userID string, created time.Time) *auth.Passkey {
	return &auth.Passkey{
		ID:           id,
		UserID:       userID,
		Name:         "YubiKey 5 « " + id + " » 🔑",
		CredentialID: append([]byte{0, 0xff, 0x10}, hashOf("credential-" + id)[:20]...),
		Credential:   credentialRecord(id, 0),
		CreatedAt:    created,
	}
}

func createPasskey(t *testing.T, s PasskeyBackend, p *auth.Passkey) *auth.Passkey {
	t.Helper()
	in := *p
	if err := s.CreatePasskey(t.Context(), &in); err != nil {
		t.Fatalf("CreatePasskey(%s): %v", p.ID, err)
	}
	return p
}

func checkPasskey(t *testing.T, got, want *auth.Passkey) {
	t.Helper()
	if got == nil {
		t.Fatalf("passkey %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.UserID != want.UserID || got.Name != want.Name {
		t.Errorf("passkey = {ID %q, UserID %q, Name %q}, want {%q, %q, %q}", got.ID, got.UserID, got.Name, want.ID, want.UserID, want.Name)
	}
	if !bytes.Equal(got.CredentialID, want.CredentialID) {
		t.Errorf("passkey %s: CredentialID = %x, want %x", want.ID, got.CredentialID, want.CredentialID)
	}
	if !bytes.Equal(got.Credential, want.Credential) {
		t.Errorf("passkey %s: Credential = %s, want %s", want.ID, got.Credential, want.Credential)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("passkey %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if !equalTimePtr(got.LastUsedAt, want.LastUsedAt) {
		t.Errorf("passkey %s: LastUsedAt = %s, want %s", want.ID, fmtTimePtr(got.LastUsedAt), fmtTimePtr(want.LastUsedAt))
	}
}

func getPasskey(t *testing.T, s PasskeyBackend, p *auth.Passkey) *auth.Passkey {
	t.Helper()
	got, err := s.PasskeyByCredentialID(t.Context(), p.CredentialID)
	if err != nil {
		t.Fatalf("PasskeyByCredentialID(%s): %v", p.ID, err)
	}
	return got
}

// listPasskeys lists the user's passkeys, checks each against want (by
// id), and returns their ids in the order listed.
func listPasskeys(t *testing.T, s PasskeyBackend, userID string, want ...*auth.Passkey) []string {
	t.Helper()
	got, err := s.ListPasskeys(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListPasskeys(%s): %v", userID, err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ID)
		for _, w := range want {
			if w.ID == g.ID {
				checkPasskey(t, g, w)
			}
		}
	}
	return ids
}

func wantNoPasskey(t *testing.T, s PasskeyBackend, p *auth.Passkey, why string) {
	t.Helper()
	got, err := s.PasskeyByCredentialID(t.Context(), p.CredentialID)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("PasskeyByCredentialID(%s) %s = %+v, %v; want ErrNotFound", p.ID, why, got, err)
	}
}

func testPasskeyRoundTrip(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	for _, tc := range []struct {
		name string
		key  *auth.Passkey
	}{
		{"NeverUsed", newPasskey("pk-1", "u-1", at(time.Hour+3*time.Microsecond))},
		{"Used", func() *auth.Passkey {
			p := newPasskey("pk-1", "u-1", at(time.Hour))
			used := at(2*time.Hour + 999_999*time.Microsecond)
			p.LastUsedAt = &used
			p.Credential = credentialRecord("pk-1", 41)
			return p
		}()},
		{"EmptyName", func() *auth.Passkey {
			p := newPasskey("pk-1", "u-1", at(time.Hour))
			p.Name = ""
			return p
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1", "u-2")
			want := *tc.key
			createPasskey(t, s, tc.key)
			createPasskey(t, s, newPasskey("pk-other", "u-2", at(time.Minute)))

			checkPasskey(t, getPasskey(t, s, &want), &want)
			wantIDs(t, "ListPasskeys(u-1)", listPasskeys(t, s, "u-1", &want), want.ID)
		})
	}
}

func testPasskeyUnknown(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	p := createPasskey(t, s, newPasskey("pk-1", "u-1", at(0)))
	for _, id := range [][]byte{[]byte("never registered"), nil, p.CredentialID[:len(p.CredentialID)-1], append(bytes.Clone(p.CredentialID), 0)} {
		got, err := s.PasskeyByCredentialID(t.Context(), id)
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("PasskeyByCredentialID(%x) = %+v, %v; want ErrNotFound", id, got, err)
		}
	}
	wantIDs(t, "ListPasskeys(nobody)", listPasskeys(t, s, "nobody"))
}

func testPasskeyDuplicate(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	first := createPasskey(t, s, newPasskey("pk-1", "u-1", at(0)))

	// The same authenticator registered again, by the same or another user.
	for _, owner := range []string{"u-1", "u-2"} {
		dup := newPasskey("pk-dup-"+owner, owner, at(time.Hour))
		dup.CredentialID = bytes.Clone(first.CredentialID)
		wantCode(t, "CreatePasskey with a registered credential id for "+owner, s.CreatePasskey(t.Context(), dup), auth.ECONFLICT)
	}
	checkPasskey(t, getPasskey(t, s, first), first)
	wantIDs(t, "ListPasskeys(u-1)", listPasskeys(t, s, "u-1", first), "pk-1")
	wantIDs(t, "ListPasskeys(u-2)", listPasskeys(t, s, "u-2"))
}

func testPasskeyList(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2", "u-3")
	a := newPasskey("pk-a", "u-1", at(3*time.Hour))
	b := newPasskey("pk-b", "u-1", at(time.Hour+time.Microsecond))
	c := newPasskey("pk-c", "u-1", at(time.Hour)) // 1µs older than b
	d := newPasskey("pk-d", "u-1", at(2*time.Hour))
	o := newPasskey("pk-o", "u-2", at(0))
	for _, p := range []*auth.Passkey{d, o, a, c, b} { // neither time nor id order
		createPasskey(t, s, p)
	}
	wantIDs(t, "ListPasskeys(u-1)", listPasskeys(t, s, "u-1", a, b, c, d), "pk-c", "pk-b", "pk-d", "pk-a")
	wantIDs(t, "ListPasskeys(u-2)", listPasskeys(t, s, "u-2", o), "pk-o")
	wantIDs(t, "ListPasskeys(u-3)", listPasskeys(t, s, "u-3"))
}

func testPasskeyUpdateUse(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	p := createPasskey(t, s, newPasskey("pk-1", "u-1", at(0)))
	other := createPasskey(t, s, newPasskey("pk-2", "u-1", at(time.Second)))

	used := at(time.Hour + 7*time.Microsecond)
	if err := s.UpdatePasskeyUse(t.Context(), p.ID, p.Credential, credentialRecord("pk-1", 1), used); err != nil {
		t.Fatalf("UpdatePasskeyUse with the current record: %v", err)
	}
	want := *p
	want.Credential, want.LastUsedAt = credentialRecord("pk-1", 1), &used
	checkPasskey(t, getPasskey(t, s, p), &want)

	// The record read before that login is stale now: refused, nothing
	// changes.
	later := at(2 * time.Hour)
	wantErr(t, "UpdatePasskeyUse with a stale record", s.UpdatePasskeyUse(t.Context(), p.ID, p.Credential, credentialRecord("pk-1", 9), later), auth.ErrNotFound)
	// Another passkey's current record does not stand in for this one's.
	wantErr(t, "UpdatePasskeyUse with another passkey's record", s.UpdatePasskeyUse(t.Context(), p.ID, other.Credential, credentialRecord("pk-1", 9), later), auth.ErrNotFound)
	wantErr(t, "UpdatePasskeyUse of an unknown id", s.UpdatePasskeyUse(t.Context(), "pk-none", want.Credential, credentialRecord("pk-1", 9), later), auth.ErrNotFound)
	checkPasskey(t, getPasskey(t, s, p), &want)
	checkPasskey(t, getPasskey(t, s, other), other)

	// The current record moves it on again.
	if err := s.UpdatePasskeyUse(t.Context(), p.ID, want.Credential, credentialRecord("pk-1", 2), later); err != nil {
		t.Fatalf("second UpdatePasskeyUse: %v", err)
	}
	want.Credential, want.LastUsedAt = credentialRecord("pk-1", 2), &later
	checkPasskey(t, getPasskey(t, s, p), &want)
}

// testPasskeyConcurrentUse: logins racing with one credential record (a
// cloned authenticator, a replayed assertion) cannot all advance it: of
// concurrent compare-and-swaps from one record exactly one succeeds.
func testPasskeyConcurrentUse(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	p := createPasskey(t, s, newPasskey("pk-1", "u-1", at(0)))

	var (
		errs  = make([]error, racers)
		times [racers]time.Time
	)
	for i := range racers {
		times[i] = at(time.Hour + time.Duration(i)*time.Second)
	}
	race(racers, func(i int) {
		errs[i] = s.UpdatePasskeyUse(t.Context(), p.ID, p.Credential, credentialRecord("pk-1", 100+i), times[i])
	})
	w := oneWinner(t, "UpdatePasskeyUse from one record", errs, auth.ErrNotFound)
	want := *p
	want.Credential, want.LastUsedAt = credentialRecord("pk-1", 100+w), &times[w]
	checkPasskey(t, getPasskey(t, s, p), &want)
}

func testPasskeyRename(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	p := createPasskey(t, s, newPasskey("pk-1", "u-1", at(0)))
	theirs := createPasskey(t, s, newPasskey("pk-2", "u-2", at(0)))

	wantErr(t, "RenamePasskey of another user's passkey", s.RenamePasskey(t.Context(), "u-2", p.ID, "stolen"), auth.ErrNotFound)
	wantErr(t, "RenamePasskey of an unknown id", s.RenamePasskey(t.Context(), "u-1", "pk-none", "x"), auth.ErrNotFound)
	checkPasskey(t, getPasskey(t, s, p), p)

	if err := s.RenamePasskey(t.Context(), "u-1", p.ID, "Phone — Zoë's"); err != nil {
		t.Fatalf("RenamePasskey: %v", err)
	}
	want := *p
	want.Name = "Phone — Zoë's"
	checkPasskey(t, getPasskey(t, s, p), &want)
	checkPasskey(t, getPasskey(t, s, theirs), theirs)
}

func testPasskeyDelete(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	p := createPasskey(t, s, newPasskey("pk-1", "u-1", at(0)))
	keep := createPasskey(t, s, newPasskey("pk-2", "u-1", at(time.Second)))
	theirs := createPasskey(t, s, newPasskey("pk-3", "u-2", at(0)))

	wantErr(t, "DeletePasskey of another user's passkey", s.DeletePasskey(t.Context(), "u-2", p.ID), auth.ErrNotFound)
	wantErr(t, "DeletePasskey of an unknown id", s.DeletePasskey(t.Context(), "u-1", "pk-none"), auth.ErrNotFound)
	checkPasskey(t, getPasskey(t, s, p), p)

	if err := s.DeletePasskey(t.Context(), "u-1", p.ID); err != nil {
		t.Fatalf("DeletePasskey: %v", err)
	}
	wantNoPasskey(t, s, p, "after DeletePasskey")
	wantErr(t, "second DeletePasskey", s.DeletePasskey(t.Context(), "u-1", p.ID), auth.ErrNotFound)
	wantIDs(t, "ListPasskeys(u-1)", listPasskeys(t, s, "u-1", keep), "pk-2")
	checkPasskey(t, getPasskey(t, s, theirs), theirs)

	// The authenticator may be registered again.
	again := newPasskey("pk-again", "u-2", at(time.Hour))
	again.CredentialID = bytes.Clone(p.CredentialID)
	createPasskey(t, s, again)
	checkPasskey(t, getPasskey(t, s, again), again)
}

func testPasskeyDeleteUser(t *testing.T, open func(t *testing.T) PasskeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	mine := []*auth.Passkey{createPasskey(t, s, newPasskey("pk-1", "u-1", at(0))), createPasskey(t, s, newPasskey("pk-2", "u-1", at(time.Second)))}
	theirs := createPasskey(t, s, newPasskey("pk-3", "u-2", at(0)))

	deleteUser(t, s, "u-1")
	for _, p := range mine {
		wantNoPasskey(t, s, p, "after DeleteUser")
	}
	wantIDs(t, "ListPasskeys(u-1) after DeleteUser", listPasskeys(t, s, "u-1"))
	checkPasskey(t, getPasskey(t, s, theirs), theirs)
}
