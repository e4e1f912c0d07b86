package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// APIKeyBackend is an API key store under test: auth.APIKeyStore, plus
// CreateUser to make the keys' owners exist (see userMaker).
type APIKeyBackend interface {
	auth.APIKeyStore
	userMaker
}

// RunAPIKeys runs the API key contract. open must return a fresh, empty
// backend each time it is called (once per subtest) and arrange its
// cleanup with t.Cleanup.
func RunAPIKeys(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testAPIKeyRoundTrip(t, open) })
	t.Run("Unknown", func(t *testing.T) { testAPIKeyUnknown(t, open) })
	t.Run("DuplicateHash", func(t *testing.T) { testAPIKeyDuplicate(t, open) })
	t.Run("ListNewestFirst", func(t *testing.T) { testAPIKeyList(t, open) })
	t.Run("Delete", func(t *testing.T) { testAPIKeyDelete(t, open) })
	t.Run("DeleteUserAPIKeys", func(t *testing.T) { testAPIKeyDeleteAll(t, open) })
	t.Run("Touch", func(t *testing.T) { testAPIKeyTouch(t, open) })
	t.Run("ConcurrentTouch", func(t *testing.T) { testAPIKeyConcurrentTouch(t, open) })
	t.Run("DeleteUserCascades", func(t *testing.T) { testAPIKeyDeleteUser(t, open) })
}

// newAPIKey makes key id of userID created at created, with scopes in no
// particular order and no expiry; its hash is hashOf("api-key-" + id).
func newAPIKey(id, userID string, created time.Time) *auth.APIKey {
	return &auth.APIKey{
		ID:        id,
		UserID:    userID,
		Name:      "CI deploy « " + id + " » ✓",
		Prefix:    "gth_" + id,
		Hash:      hashOf("api-key-" + id),
		Scopes:    []string{"read:users", "openid", "admin:keys"},
		CreatedAt: created,
	}
}

func createAPIKey(t *testing.T, s APIKeyBackend, k *auth.APIKey) *auth.APIKey {
	t.Helper()
	in := *k
	in.Scopes = slices.Clone(k.Scopes)
	if err := s.CreateAPIKey(t.Context(), &in); err != nil {
		t.Fatalf("CreateAPIKey(%s): %v", k.ID, err)
	}
	return k
}

// checkAPIKey compares every field; nil and empty Scopes are equal.
func checkAPIKey(t *testing.T, got, want *auth.APIKey) {
	t.Helper()
	if got == nil {
		t.Fatalf("API key %s: got nil", want.ID)
	}
	if got.ID != want.ID || got.UserID != want.UserID || got.Name != want.Name || got.Prefix != want.Prefix || got.Hash != want.Hash {
		t.Errorf("API key = {ID %q, UserID %q, Name %q, Prefix %q, Hash %.12s…}, want {%q, %q, %q, %q, %.12s…}",
			got.ID, got.UserID, got.Name, got.Prefix, got.Hash, want.ID, want.UserID, want.Name, want.Prefix, want.Hash)
	}
	if !slices.Equal(got.Scopes, want.Scopes) {
		t.Errorf("API key %s: Scopes = %q, want %q", want.ID, got.Scopes, want.Scopes)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("API key %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if !equalTimePtr(got.ExpiresAt, want.ExpiresAt) {
		t.Errorf("API key %s: ExpiresAt = %s, want %s", want.ID, fmtTimePtr(got.ExpiresAt), fmtTimePtr(want.ExpiresAt))
	}
	if !equalTimePtr(got.LastUsedAt, want.LastUsedAt) {
		t.Errorf("API key %s: LastUsedAt = %s, want %s", want.ID, fmtTimePtr(got.LastUsedAt), fmtTimePtr(want.LastUsedAt))
	}
}

func getAPIKey(t *testing.T, s APIKeyBackend, k *auth.APIKey) *auth.APIKey {
	t.Helper()
	got, err := s.APIKeyByHash(t.Context(), k.Hash)
	if err != nil {
		t.Fatalf("APIKeyByHash(%s): %v", k.ID, err)
	}
	return got
}

func wantNoAPIKey(t *testing.T, s APIKeyBackend, k *auth.APIKey, why string) {
	t.Helper()
	got, err := s.APIKeyByHash(t.Context(), k.Hash)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("APIKeyByHash(%s) %s = %+v, %v; want ErrNotFound", k.ID, why, got, err)
	}
}

// listAPIKeys lists the user's keys, checks each against want (by id),
// and returns their ids in the order listed.
func listAPIKeys(t *testing.T, s APIKeyBackend, userID string, want ...*auth.APIKey) []string {
	t.Helper()
	got, err := s.ListAPIKeys(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListAPIKeys(%s): %v", userID, err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ID)
		for _, w := range want {
			if w.ID == g.ID {
				checkAPIKey(t, g, w)
			}
		}
	}
	return ids
}

func testAPIKeyRoundTrip(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	expires, used := at(90*24*time.Hour+999_999*time.Microsecond), at(2*time.Hour+3*time.Microsecond)
	for _, tc := range []struct {
		name string
		key  *auth.APIKey
	}{
		{"NoExpiryNeverUsed", newAPIKey("k-1", "u-1", at(time.Hour+time.Microsecond))},
		{"EveryField", func() *auth.APIKey {
			k := newAPIKey("k-1", "u-1", at(time.Hour))
			k.ExpiresAt, k.LastUsedAt = &expires, &used
			return k
		}()},
		{"NoScopes", func() *auth.APIKey {
			k := newAPIKey("k-1", "u-1", at(time.Hour))
			k.Scopes = nil
			return k
		}()},
		{"OneScope", func() *auth.APIKey {
			k := newAPIKey("k-1", "u-1", at(time.Hour))
			k.Scopes = []string{"read:users"}
			return k
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1", "u-2")
			want := *tc.key
			createAPIKey(t, s, tc.key)
			createAPIKey(t, s, newAPIKey("k-other", "u-2", at(time.Minute)))

			checkAPIKey(t, getAPIKey(t, s, &want), &want)
			wantIDs(t, "ListAPIKeys(u-1)", listAPIKeys(t, s, "u-1", &want), want.ID)
		})
	}
}

func testAPIKeyUnknown(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	k := createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0)))
	for _, h := range []string{hashOf("never issued"), "", k.Hash[:32], k.ID, k.Prefix} {
		got, err := s.APIKeyByHash(t.Context(), h)
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("APIKeyByHash(%q) = %+v, %v; want ErrNotFound", h, got, err)
		}
	}
	wantIDs(t, "ListAPIKeys(nobody)", listAPIKeys(t, s, "nobody"))
}

func testAPIKeyDuplicate(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	first := createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0)))
	dup := newAPIKey("k-2", "u-2", at(time.Hour))
	dup.Hash = first.Hash
	if err := s.CreateAPIKey(t.Context(), dup); err == nil {
		t.Fatalf("CreateAPIKey with the hash of another key: no error")
	}
	checkAPIKey(t, getAPIKey(t, s, first), first)
	wantIDs(t, "ListAPIKeys(u-2)", listAPIKeys(t, s, "u-2"))
}

func testAPIKeyList(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2", "u-3")
	a := newAPIKey("k-a", "u-1", at(3*time.Hour))
	b := newAPIKey("k-b", "u-1", at(time.Hour+time.Microsecond))
	c := newAPIKey("k-c", "u-1", at(time.Hour)) // 1µs older than b
	d := newAPIKey("k-d", "u-1", at(2*time.Hour))
	o := newAPIKey("k-o", "u-2", at(0))
	for _, k := range []*auth.APIKey{d, o, a, c, b} { // neither time nor id order
		createAPIKey(t, s, k)
	}
	wantIDs(t, "ListAPIKeys(u-1)", listAPIKeys(t, s, "u-1", a, b, c, d), "k-a", "k-d", "k-b", "k-c")
	wantIDs(t, "ListAPIKeys(u-2)", listAPIKeys(t, s, "u-2", o), "k-o")
	wantIDs(t, "ListAPIKeys(u-3)", listAPIKeys(t, s, "u-3"))
}

func testAPIKeyDelete(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	k := createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0)))
	keep := createAPIKey(t, s, newAPIKey("k-2", "u-1", at(time.Second)))
	theirs := createAPIKey(t, s, newAPIKey("k-3", "u-2", at(0)))

	wantErr(t, "DeleteAPIKey of another user's key", s.DeleteAPIKey(t.Context(), "u-2", k.ID), auth.ErrNotFound)
	wantErr(t, "DeleteAPIKey of an unknown id", s.DeleteAPIKey(t.Context(), "u-1", "k-none"), auth.ErrNotFound)
	checkAPIKey(t, getAPIKey(t, s, k), k)

	if err := s.DeleteAPIKey(t.Context(), "u-1", k.ID); err != nil {
		t.Fatalf("DeleteAPIKey: %v", err)
	}
	wantNoAPIKey(t, s, k, "after DeleteAPIKey")
	wantErr(t, "second DeleteAPIKey", s.DeleteAPIKey(t.Context(), "u-1", k.ID), auth.ErrNotFound)
	wantIDs(t, "ListAPIKeys(u-1)", listAPIKeys(t, s, "u-1", keep), "k-2")
	checkAPIKey(t, getAPIKey(t, s, theirs), theirs)
}

func testAPIKeyDeleteAll(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2", "u-3")
	mine := []*auth.APIKey{createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0))), createAPIKey(t, s, newAPIKey("k-2", "u-1", at(time.Second)))}
	theirs := createAPIKey(t, s, newAPIKey("k-3", "u-2", at(0)))

	if err := s.DeleteUserAPIKeys(t.Context(), "u-1"); err != nil {
		t.Fatalf("DeleteUserAPIKeys: %v", err)
	}
	for _, k := range mine {
		wantNoAPIKey(t, s, k, "after DeleteUserAPIKeys")
	}
	wantIDs(t, "ListAPIKeys(u-1)", listAPIKeys(t, s, "u-1"))
	if err := s.DeleteUserAPIKeys(t.Context(), "u-3"); err != nil {
		t.Errorf("DeleteUserAPIKeys of a user without keys: %v", err)
	}
	checkAPIKey(t, getAPIKey(t, s, theirs), theirs)
	wantIDs(t, "ListAPIKeys(u-2)", listAPIKeys(t, s, "u-2", theirs), "k-3")
}

func testAPIKeyTouch(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	a := createAPIKey(t, s, newAPIKey("k-a", "u-1", at(0)))
	b := createAPIKey(t, s, newAPIKey("k-b", "u-2", at(0)))
	c := createAPIKey(t, s, newAPIKey("k-c", "u-1", at(0)))
	touch := func(used map[string]time.Time) {
		t.Helper()
		if err := s.TouchAPIKeys(t.Context(), used); err != nil {
			t.Fatalf("TouchAPIKeys(%v): %v", used, err)
		}
	}
	want := func(k *auth.APIKey, used *time.Time) {
		t.Helper()
		w := *k
		w.LastUsedAt = used
		checkAPIKey(t, getAPIKey(t, s, k), &w)
	}

	touch(map[string]time.Time{})
	t1, t2 := at(time.Hour+time.Microsecond), at(2*time.Hour)
	// One batch, several users' keys. A key deleted before the batch is
	// written (an unknown id) does not fail it.
	touch(map[string]time.Time{a.ID: t1, b.ID: t2, "k-deleted": t2})
	want(a, &t1)
	want(b, &t2)
	want(c, nil)

	// Last-used times only move forward: batches from several nodes may
	// arrive out of order.
	t0 := at(30 * time.Minute)
	t3 := at(3*time.Hour + 999_999*time.Microsecond)
	touch(map[string]time.Time{a.ID: t0, b.ID: t3})
	want(a, &t1)
	want(b, &t3)
	touch(map[string]time.Time{b.ID: t3}) // the same time again: no change, no error
	want(b, &t3)
}

// testAPIKeyConcurrentTouch: nodes flush their batches at the same time,
// over the same keys in any order; every batch is written and the latest
// time of each key wins.
func testAPIKeyConcurrentTouch(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	const nKeys, batches = 8, 16
	var keys []*auth.APIKey
	for i := range nKeys {
		keys = append(keys, createAPIKey(t, s, newAPIKey(fmt.Sprintf("k-%d", i), "u-1", at(0))))
	}
	// Batch b uses key i at hour (b+i)%batches, so every batch holds the
	// latest time of some key and none of all.
	usedAt := func(b, i int) time.Time { return at(time.Duration(1+(b+i)%batches) * time.Hour) }
	errs := make([]error, batches)
	race(batches, func(b int) {
		used := make(map[string]time.Time, nKeys)
		for i, k := range keys {
			used[k.ID] = usedAt(b, i)
		}
		errs[b] = s.TouchAPIKeys(t.Context(), used)
	})
	for b, err := range errs {
		if err != nil {
			t.Errorf("TouchAPIKeys batch %d: %v", b, err)
		}
	}
	latest := at(batches * time.Hour)
	for _, k := range keys {
		w := *k
		w.LastUsedAt = &latest
		checkAPIKey(t, getAPIKey(t, s, k), &w)
	}
}

func testAPIKeyDeleteUser(t *testing.T, open func(t *testing.T) APIKeyBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	mine := []*auth.APIKey{createAPIKey(t, s, newAPIKey("k-1", "u-1", at(0))), createAPIKey(t, s, newAPIKey("k-2", "u-1", at(time.Second)))}
	theirs := createAPIKey(t, s, newAPIKey("k-3", "u-2", at(0)))

	deleteUser(t, s, "u-1")
	for _, k := range mine {
		wantNoAPIKey(t, s, k, "after DeleteUser")
	}
	wantIDs(t, "ListAPIKeys(u-1) after DeleteUser", listAPIKeys(t, s, "u-1"))
	checkAPIKey(t, getAPIKey(t, s, theirs), theirs)
}
