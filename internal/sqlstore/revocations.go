package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

var _ auth.RevocationStore = (*DB)(nil)

// feedLockKey is the PostgreSQL advisory lock that serialises inserts into
// revocation_events (an arbitrary constant: "ghrevfd" in ASCII).
const feedLockKey = 0x67687265766664

// revocationFeed is the feed's switch and the hook told of each commit
// that recorded revocations.
type revocationFeed struct {
	on        atomic.Bool
	committed atomic.Pointer[func()]
	notBefore atomic.Pointer[func(sub string) int64]
}

// SetSubjectNotBefore gives the store what the feed knows of each
// subject's latest not_before (revfeed.Set.SubjectNotBefore); see
// subjectRevoked.
func (db *DB) SetSubjectNotBefore(f func(sub string) int64) {
	if f == nil {
		db.feed.notBefore.Store(nil)
		return
	}
	db.feed.notBefore.Store(&f)
}

// SetRevocationFeed turns the recording of revocation events on or off
// (GATEHOUSE_REVOCATION_FEED; off until called) and sets the function
// called, synchronously, after every commit that recorded some (the feed's
// hub reads them at once, so the revoking request answers after its own
// node has them). Call it before serving.
func (db *DB) SetRevocationFeed(on bool, committed func()) {
	db.feed.on.Store(on)
	if committed != nil {
		db.feed.committed.Store(&committed)
	} else {
		db.feed.committed.Store(nil)
	}
}

// revoke runs fn in a transaction and records the revocation events it
// returns in the same transaction: no revocation commits without its
// event, and no event without its revocation.
func (db *DB) revoke(ctx context.Context, fn func(tx *sql.Tx) ([]revfeed.Event, error)) error {
	recorded := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		evs, err := fn(tx)
		if err != nil {
			return err
		}
		recorded = len(evs)
		return db.insertRevocations(ctx, tx, evs)
	})
	if err == nil && recorded > 0 && db.feed.on.Load() {
		db.notifyRevocations()
	}
	return err
}

func (db *DB) notifyRevocations() {
	if f := db.feed.committed.Load(); f != nil {
		(*f)()
	}
}

// insertRevocations appends events inside tx (nothing when the feed is off).
func (db *DB) insertRevocations(ctx context.Context, tx *sql.Tx, evs []revfeed.Event) error {
	if len(evs) == 0 || !db.feed.on.Load() {
		return nil
	}
	if db.dialect == dialectPostgres {
		// Sequence values are taken in lock order and the lock is held to
		// the commit: seq order is commit order, so a reader that saw seq n
		// never misses an event below it.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(feedLockKey)); err != nil {
			return err
		}
	}
	q := db.rebind(`INSERT INTO revocation_events (type, at, data) VALUES (?, ?, ?)`)
	for _, ev := range evs {
		ev.ID = ""
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("sqlstore: revocation event: %w", err)
		}
		if _, err := tx.ExecContext(ctx, q, ev.Type, ts(ev.At), string(b)); err != nil {
			return err
		}
	}
	return nil
}

// AppendRevocations records events on their own (revocations held outside
// this database: sessions in Redis).
func (db *DB) AppendRevocations(ctx context.Context, evs []revfeed.Event) error {
	if len(evs) == 0 || !db.feed.on.Load() {
		return nil
	}
	return db.revoke(ctx, func(*sql.Tx) ([]revfeed.Event, error) { return evs, nil })
}

// RevocationsAfter returns at most limit events whose seq is above after,
// in seq order, each with its cursor as ID.
func (db *DB) RevocationsAfter(ctx context.Context, after int64, limit int) ([]revfeed.Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := db.r.QueryContext(ctx, db.rebind(`SELECT seq, at, data FROM revocation_events WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []revfeed.Event
	for rows.Next() {
		var (
			seq, at int64
			data    string
			ev      revfeed.Event
		)
		if err := rows.Scan(&seq, &at, &data); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return nil, fmt.Errorf("sqlstore: revocation event %d: %w", seq, err)
		}
		ev.At = fromTS(at)
		ev.ID = revfeed.Cursor{Seq: seq, At: ev.At}.String()
		out = append(out, ev)
	}
	return out, rows.Err()
}

// PurgeRevocations deletes events recorded before t.
func (db *DB) PurgeRevocations(ctx context.Context, before time.Time) error {
	_, err := db.exec(ctx, `DELETE FROM revocation_events WHERE at < ?`, ts(before))
	return err
}

// ---- the events of each kind of revocation ----

func sessionRevoked(sid string, at time.Time) revfeed.Event {
	return revfeed.Event{Type: revfeed.TypeSessionRevoked, At: at, SID: sid}
}

// subjectRevoked is the event of a subject revoked at at. Its not_before
// is the next second — or, when an earlier revocation of the subject
// already set a not_before still ahead of the clock, one past that: tokens
// minted since carry that earlier not_before as iat (so as not to be born
// dead) and must die with this revocation too.
func (db *DB) subjectRevoked(sub string, at time.Time) revfeed.Event {
	nb := revfeed.NotBefore(at)
	if f := db.feed.notBefore.Load(); f != nil {
		if prev := (*f)(sub); prev >= nb {
			nb = prev + 1
		}
	}
	return revfeed.Event{Type: revfeed.TypeSubjectRevoked, At: at, Sub: sub, NotBefore: nb}
}

func credentialRevoked(kind, hash string, at time.Time) revfeed.Event {
	return revfeed.Event{Type: revfeed.TypeCredentialRevoked, At: at, Kind: kind, SHA256: hash}
}

// revokeFamilies revokes the live families matching where (a condition on
// refresh_families with ? placeholders) and returns a session.revoked
// event for each.
func (db *DB) revokeFamilies(ctx context.Context, tx *sql.Tx, now time.Time, where string, args ...any) ([]revfeed.Event, error) {
	rows, err := tx.QueryContext(ctx, db.rebind(`UPDATE refresh_families SET revoked_at = ? WHERE `+where+` AND revoked_at IS NULL RETURNING id`),
		append([]any{ts(now)}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []revfeed.Event
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		evs = append(evs, sessionRevoked(id, now))
	}
	return evs, rows.Err()
}

// deleteSessions deletes the sessions matching where and returns, for
// each, its session.revoked and credential.revoked events.
func (db *DB) deleteSessions(ctx context.Context, tx *sql.Tx, now time.Time, where string, args ...any) ([]revfeed.Event, error) {
	rows, err := tx.QueryContext(ctx, db.rebind(`DELETE FROM sessions WHERE `+where+` RETURNING id, token_hash`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []revfeed.Event
	for rows.Next() {
		var id, hash string
		if err := rows.Scan(&id, &hash); err != nil {
			return nil, err
		}
		evs = append(evs, sessionRevoked(id, now), credentialRevoked(revfeed.KindSession, hash, now))
	}
	return evs, rows.Err()
}

// deleteAPIKeys deletes the API keys matching where and returns a
// credential.revoked event for each.
func (db *DB) deleteAPIKeys(ctx context.Context, tx *sql.Tx, now time.Time, where string, args ...any) ([]revfeed.Event, error) {
	rows, err := tx.QueryContext(ctx, db.rebind(`DELETE FROM api_keys WHERE `+where+` RETURNING key_hash`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []revfeed.Event
	for rows.Next() {
		var hash string
		if err := rows.Scan(&hash); err != nil {
			return nil, err
		}
		evs = append(evs, credentialRevoked(revfeed.KindAPIKey, hash, now))
	}
	return evs, rows.Err()
}

// one turns "no row" into auth.ErrNotFound for single-row revocations.
func one(evs []revfeed.Event, err error) ([]revfeed.Event, error) {
	if err == nil && len(evs) == 0 {
		return nil, auth.ErrNotFound
	}
	return evs, err
}
