package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"gatehouse/internal/auth"
)

// racers is how many goroutines the "exactly one caller wins" tests start
// at once: enough to make a lost race likely on two CPUs, few enough for the
// PostgreSQL pool (32 connections) to serve them all at the same time.
const racers = 32

// race calls f(0) … f(n-1) from n goroutines released together by one
// channel close, and waits for them all.
func race(n int, f func(i int)) {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// oneWinner requires that exactly one of errs is nil and that every other
// is loser (errors.Is), and returns the winner's index.
func oneWinner(t *testing.T, what string, errs []error, loser error) int {
	t.Helper()
	return winnerOf(t, what, errs, loser.Error(), func(err error) bool { return errors.Is(err, loser) })
}

// oneWinnerCode is oneWinner for refusals specified by code: every error
// but the winner's nil is an *auth.Error of that code.
func oneWinnerCode(t *testing.T, what string, errs []error, code string) int {
	t.Helper()
	return winnerOf(t, what, errs, "code "+code, func(err error) bool { return auth.ErrorCode(err) == code })
}

func winnerOf(t *testing.T, what string, errs []error, loser string, isLoser func(error) bool) int {
	t.Helper()
	winner, winners := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winner = i
		case !isLoser(err):
			t.Errorf("%s: caller %d: error = %v, want nil or %s", what, i, err, loser)
		}
	}
	if winners != 1 {
		t.Fatalf("%s: %d of %d concurrent callers won, want exactly 1", what, winners, len(errs))
	}
	return winner
}

// wantCode requires an *auth.Error of the given code: some refusals are
// specified by code (ECONFLICT) rather than by one error value.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := auth.ErrorCode(err); got != code {
		t.Errorf("%s: error = %v (code %q), want code %q", what, err, got, code)
	}
}

// userMaker is the part of auth.UserStore the suites of user-owned records
// (one-time tokens, API keys, identities, passkeys) need: making the owner
// exist, for the SQL store's foreign keys. A backend without users (Redis)
// is wrapped with a CreateUser that does nothing.
type userMaker interface {
	CreateUser(ctx context.Context, u *auth.User) error
}

func makeUsers(t *testing.T, s userMaker, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.CreateUser(t.Context(), minimalUser(id, id+"@example.com")); err != nil {
			t.Fatalf("CreateUser(%s): %v", id, err)
		}
	}
}

// userDeleter is the part of auth.UserStore a cascade test needs.
type userDeleter interface {
	DeleteUser(ctx context.Context, id string) error
}

// deleteUser deletes user id through the backend's own DeleteUser, which
// must take the user's records with it; a backend that keeps no users (its
// records die with the account by other means) skips the test.
func deleteUser(t *testing.T, s any, id string) {
	t.Helper()
	d, ok := s.(userDeleter)
	if !ok {
		t.Skipf("%T keeps no users, so deleting one cannot cascade into it", s)
	}
	if err := d.DeleteUser(t.Context(), id); err != nil {
		t.Fatalf("DeleteUser(%s): %v", id, err)
	}
}
