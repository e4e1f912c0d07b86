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

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Allow counts a hit in a fixed window per key, atomically (one UPSERT).
// On SQLite the commit does not wait for the disk (see txNoSync).
func (db *DB) Allow(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (auth.Decision, error) {
	if db.dialect == dialectPostgres {
		return db.allowOn(ctx, db.w, key, limit, window, now)
	}
	var d auth.Decision
	err := db.txNoSync(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = db.allowOn(ctx, tx, key, limit, window, now)
		return err
	})
	return d, err
}

func (db *DB) allowOn(ctx context.Context, q querier, key string, limit int, window time.Duration, now time.Time) (auth.Decision, error) {
	start := now.Truncate(window)
	var count int64
	err := q.QueryRowContext(ctx, db.rebind(`INSERT INTO rate_counters (key, window_start, count) VALUES (?, ?, 1)
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
// reset lockout rows, and the ceremony challenges, MFA challenges, pending
// TOTP enrolments and authorization codes that expired before t (see
// PurgeMFA and PurgeAuthCodes).
func (db *DB) PurgeCounters(ctx context.Context, before time.Time) error {
	if _, err := db.exec(ctx, `DELETE FROM rate_counters WHERE window_start < ?`, ts(before)); err != nil {
		return err
	}
	if _, err := db.exec(ctx, `DELETE FROM lockouts WHERE failures = 0 AND locked_until < ?`, ts(before)); err != nil {
		return err
	}
	if _, err := db.exec(ctx, `DELETE FROM challenges WHERE expires_at < ?`, ts(before)); err != nil {
		return err
	}
	if err := db.PurgeMFA(ctx, before); err != nil {
		return err
	}
	return db.PurgeAuthCodes(ctx, before)
}

// BeginAttempt counts a login attempt before the password is checked; see
// auth.LockoutStore.
func (db *DB) BeginAttempt(ctx context.Context, key string, threshold int, lockFor time.Duration, now time.Time) (time.Duration, bool, error) {
	var (
		locked time.Duration
		newly  bool
	)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		locked, newly, err = db.beginAttemptOn(ctx, tx, key, threshold, lockFor, now)
		return err
	})
	return locked, newly, err
}

func (db *DB) beginAttemptOn(ctx context.Context, q querier, key string, threshold int, lockFor time.Duration, now time.Time) (time.Duration, bool, error) {
	var failures, until int64
	// While locked the count stays; otherwise it grows by one. The row
	// lock taken by the upsert serialises concurrent attempts.
	err := q.QueryRowContext(ctx, db.rebind(`INSERT INTO lockouts (key, failures, locked_until) VALUES (?, 1, 0)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN lockouts.locked_until > ? THEN lockouts.failures ELSE lockouts.failures + 1 END
		RETURNING failures, locked_until`), key, ts(now)).Scan(&failures, &until)
	if err != nil {
		return 0, false, err
	}
	if u := fromTS(until); u.After(now) {
		return u.Sub(now), false, nil
	}
	if failures <= int64(threshold) {
		return 0, false, nil
	}
	end := now.Add(lockFor)
	if _, err := q.ExecContext(ctx, db.rebind(`UPDATE lockouts SET failures = 0, locked_until = ? WHERE key = ?`), ts(end), key); err != nil {
		return 0, false, err
	}
	return lockFor, true, nil
}

var _ auth.LoginCounter = (*DB)(nil)

// CountLogin counts a login attempt's per-IP hit, per-account hit and
// lockout attempt in one transaction, stopping at the first refusal exactly
// like the separate calls would. Its commit does not wait for the disk (see
// txNoSync): it sits between the request and the password hash, and a power
// failure losing the last counts gives an attacker no more than it takes.
func (db *DB) CountLogin(ctx context.Context, c auth.LoginCount) (auth.LoginCountResult, error) {
	var r auth.LoginCountResult
	err := db.txNoSync(ctx, func(tx *sql.Tx) error {
		var err error
		r = auth.LoginCountResult{}
		if c.IPLimit > 0 {
			if r.IP, err = db.allowOn(ctx, tx, c.IPKey, c.IPLimit, c.Window, c.Now); err != nil || !r.IP.Allowed {
				return err
			}
		} else {
			r.IP.Allowed = true
		}
		if c.AccountLimit > 0 {
			if r.Account, err = db.allowOn(ctx, tx, c.AccountKey, c.AccountLimit, c.Window, c.Now); err != nil || !r.Account.Allowed {
				return err
			}
		} else {
			r.Account.Allowed = true
		}
		if c.Threshold > 0 {
			r.Locked, r.NewlyLocked, err = db.beginAttemptOn(ctx, tx, c.LockKey, c.Threshold, c.LockFor, c.Now)
		}
		return err
	})
	return r, err
}

// ClearFailures resets the count and lifts any lock.
func (db *DB) ClearFailures(ctx context.Context, key string) error {
	_, err := db.exec(ctx, `DELETE FROM lockouts WHERE key = ?`, key)
	return err
}
