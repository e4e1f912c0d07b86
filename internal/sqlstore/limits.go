package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"gatehouse/internal/auth"
)

var (
	_ auth.RateLimiter  = (*DB)(nil)
	_ auth.LockoutStore = (*DB)(nil)
)

// Allow counts a hit in a fixed window per key, atomically (one UPSERT).
func (db *DB) Allow(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (auth.Decision, error) {
	start := now.Truncate(window)
	var count int64
	err := db.w.QueryRowContext(ctx, db.rebind(`INSERT INTO rate_counters (key, window_start, count) VALUES (?, ?, 1)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN rate_counters.window_start = excluded.window_start THEN rate_counters.count + 1 ELSE 1 END,
			window_start = excluded.window_start
		RETURNING count`), key, ts(start)).Scan(&count)
	if err != nil {
		return auth.Decision{}, err
	}
	if count <= int64(limit) {
		return auth.Decision{Allowed: true}, nil
	}
	return auth.Decision{RetryAfter: start.Add(window).Sub(now), FirstDenial: count == int64(limit)+1}, nil
}

// PurgeCounters deletes rate-limit windows that ended before t and expired,
// reset lockout rows.
func (db *DB) PurgeCounters(ctx context.Context, before time.Time) error {
	if _, err := db.exec(ctx, `DELETE FROM rate_counters WHERE window_start < ?`, ts(before)); err != nil {
		return err
	}
	if _, err := db.exec(ctx, `DELETE FROM lockouts WHERE failures = 0 AND locked_until < ?`, ts(before)); err != nil {
		return err
	}
	_, err := db.exec(ctx, `DELETE FROM challenges WHERE expires_at < ?`, ts(before))
	return err
}

// BeginAttempt counts a login attempt before the password is checked; see
// auth.LockoutStore.
func (db *DB) BeginAttempt(ctx context.Context, key string, threshold int, lockFor time.Duration, now time.Time) (time.Duration, bool, error) {
	var (
		locked time.Duration
		newly  bool
	)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var failures, until int64
		// While locked the count stays; otherwise it grows by one. The row
		// lock taken by the upsert serialises concurrent attempts.
		err := tx.QueryRowContext(ctx, db.rebind(`INSERT INTO lockouts (key, failures, locked_until) VALUES (?, 1, 0)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN lockouts.locked_until > ? THEN lockouts.failures ELSE lockouts.failures + 1 END
			RETURNING failures, locked_until`), key, ts(now)).Scan(&failures, &until)
		if err != nil {
			return err
		}
		if u := fromTS(until); u.After(now) {
			locked = u.Sub(now)
			return nil
		}
		if failures <= int64(threshold) {
			return nil
		}
		end := now.Add(lockFor)
		if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE lockouts SET failures = 0, locked_until = ? WHERE key = ?`), ts(end), key); err != nil {
			return err
		}
		locked, newly = lockFor, true
		return nil
	})
	return locked, newly, err
}

// ClearFailures resets the count and lifts any lock.
func (db *DB) ClearFailures(ctx context.Context, key string) error {
	_, err := db.exec(ctx, `DELETE FROM lockouts WHERE key = ?`, key)
	return err
}
