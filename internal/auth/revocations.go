package auth

import (
	"context"
	"time"

	"gatehouse/internal/revfeed"
)

// RevocationStore keeps the revocation feed's events (SPEC §15). Stores
// that revoke (UserStore, RefreshStore, SessionStore, APIKeyStore,
// ClientStore, ConsentStore) record each revocation's events in the
// transaction of the revocation itself; AppendRevocations is for
// revocations held elsewhere (sessions in Redis).
type RevocationStore interface {
	AppendRevocations(ctx context.Context, evs []revfeed.Event) error
	// RevocationsAfter returns at most limit events whose sequence number
	// is above after, in order, each with its cursor as ID.
	RevocationsAfter(ctx context.Context, after int64, limit int) ([]revfeed.Event, error)
	// PurgeRevocations deletes events recorded before t.
	PurgeRevocations(ctx context.Context, before time.Time) error
}

// Revocations is what the service knows of revocations committed so far
// (the feed's in-memory set): it must not mint a token that a revocation
// of its subject has already killed.
type Revocations interface {
	SubjectNotBefore(sub string) int64
}
