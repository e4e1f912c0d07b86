package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

var _ auth.MFAStore = (*DB)(nil)

// Second factors (SPEC §13). The single-use writes — a challenge consumed,
// a TOTP step used, a recovery code spent — are conditional statements
// whose affected-row count decides: on PostgreSQL the second of two
// concurrent writers waits for the first's row lock and then finds the row
// gone or changed (0 rows), on SQLite the one writer connection runs them
// one after the other.

const totpCols = `id, user_id, sealed, confirmed, created_at, expires_at, confirmed_at, last_step, last_used_at`

func scanTOTP(row scanner) (*auth.TOTPAuthenticator, error) {
	var (
		a                        auth.TOTPAuthenticator
		c                        int64
		expires, confirmed, used sql.NullInt64
	)
	err := row.Scan(&a.ID, &a.UserID, &a.Sealed, &a.Confirmed, &c, &expires, &confirmed, &a.LastStep, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	a.CreatedAt, a.ConfirmedAt, a.LastUsedAt = fromTS(c), fromNullTS(confirmed), fromNullTS(used)
	if expires.Valid {
		a.ExpiresAt = fromTS(expires.Int64)
	}
	return &a, nil
}

// PutPendingTOTP stores a pending enrolment in place of the user's
// previous pending one. One upsert on the (user_id, confirmed) unique
// index, so that two concurrent enrolments of a user leave one, not an
// error.
func (db *DB) PutPendingTOTP(ctx context.Context, a *auth.TOTPAuthenticator) error {
	_, err := db.exec(ctx, `INSERT INTO totp_authenticators (id, user_id, sealed, confirmed, created_at, expires_at, last_step)
		VALUES (?, ?, ?, FALSE, ?, ?, ?)
		ON CONFLICT (user_id, confirmed) DO UPDATE SET
			id = excluded.id, sealed = excluded.sealed, created_at = excluded.created_at,
			expires_at = excluded.expires_at, confirmed_at = NULL, last_step = excluded.last_step, last_used_at = NULL`,
		a.ID, a.UserID, a.Sealed, ts(a.CreatedAt), ts(a.ExpiresAt), a.LastStep)
	return err
}

// PendingTOTP returns the user's pending enrolment id, expired or not
// (the caller tells an expired enrolment from a missing one).
func (db *DB) PendingTOTP(ctx context.Context, userID, id string) (*auth.TOTPAuthenticator, error) {
	return scanTOTP(db.queryRow(ctx, `SELECT `+totpCols+` FROM totp_authenticators WHERE id = ? AND user_id = ? AND NOT confirmed`, id, userID))
}

// ConfirmedTOTP returns the user's confirmed authenticator.
func (db *DB) ConfirmedTOTP(ctx context.Context, userID string) (*auth.TOTPAuthenticator, error) {
	return scanTOTP(db.queryRow(ctx, `SELECT `+totpCols+` FROM totp_authenticators WHERE user_id = ? AND confirmed`, userID))
}

// ConfirmTOTP makes a live pending enrolment the user's authenticator and,
// when recoveryHashes is not nil, replaces the recovery codes, in one
// transaction.
func (db *DB) ConfirmTOTP(ctx context.Context, userID, id string, step int64, recoveryHashes []string, now time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, db.rebind(`SELECT 1 FROM totp_authenticators WHERE id = ? AND user_id = ? AND NOT confirmed AND expires_at > ?`),
			id, userID, ts(now)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return auth.ErrNotFound
		}
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, db.rebind(`SELECT 1 FROM totp_authenticators WHERE user_id = ? AND confirmed`), userID).Scan(&one)
		if err == nil {
			return auth.ErrTOTPExists
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// The conditions again: on PostgreSQL a concurrent confirmation or
		// enrolment may have changed the row since the SELECT (0 rows), or
		// confirmed another (the unique index refuses a second).
		err = affectedOne(tx.ExecContext(ctx, db.rebind(`UPDATE totp_authenticators
			SET confirmed = TRUE, confirmed_at = ?, expires_at = NULL, last_step = ?
			WHERE id = ? AND user_id = ? AND NOT confirmed AND expires_at > ?`),
			ts(now), step, id, userID, ts(now)))
		if isUnique(err) {
			return auth.ErrTOTPExists
		}
		if err != nil {
			return err
		}
		if recoveryHashes == nil {
			return nil
		}
		return db.replaceRecoveryCodes(ctx, tx, userID, recoveryHashes, now)
	})
}

// DeleteTOTP removes the user's authenticators and, with recovery, the
// recovery codes.
func (db *DB) DeleteTOTP(ctx context.Context, userID string, recovery bool) (bool, error) {
	removed := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM totp_authenticators WHERE user_id = ? AND confirmed`), userID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		removed = n > 0
		if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM totp_authenticators WHERE user_id = ?`), userID); err != nil {
			return err
		}
		if !recovery {
			return nil
		}
		if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM recovery_codes WHERE user_id = ?`), userID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.rebind(`DELETE FROM recovery_code_sets WHERE user_id = ?`), userID)
		return err
	})
	if err != nil {
		return false, err
	}
	return removed, nil
}

// RecoveryCodes describes the user's recovery-code set.
func (db *DB) RecoveryCodes(ctx context.Context, userID string) (*auth.RecoveryCodeSet, error) {
	var (
		set auth.RecoveryCodeSet
		c   int64
	)
	err := db.queryRow(ctx, `SELECT s.total, s.created_at, (SELECT COUNT(*) FROM recovery_codes c WHERE c.user_id = s.user_id)
		FROM recovery_code_sets s WHERE s.user_id = ?`, userID).Scan(&set.Total, &c, &set.Remaining)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	set.CreatedAt = fromTS(c)
	return &set, nil
}

// ReplaceRecoveryCodes replaces the user's recovery codes.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, now time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error { return db.replaceRecoveryCodes(ctx, tx, userID, hashes, now) })
}

func (db *DB) replaceRecoveryCodes(ctx context.Context, tx *sql.Tx, userID string, hashes []string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM recovery_codes WHERE user_id = ?`), userID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO recovery_code_sets (user_id, total, created_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET total = excluded.total, created_at = excluded.created_at`),
		userID, len(hashes), ts(now)); err != nil {
		return err
	}
	if len(hashes) == 0 {
		return nil
	}
	// One statement for the whole set (a few dozen placeholders at most).
	var q strings.Builder
	q.WriteString(`INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES `)
	args := make([]any, 0, 3*len(hashes))
	for i, h := range hashes {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?)")
		args = append(args, userID, h, ts(now))
	}
	_, err := tx.ExecContext(ctx, db.rebind(q.String()), args...)
	return err
}

// mfaEnabledChunk bounds the placeholders of one MFAEnabled query, well
// under SQLite's and PostgreSQL's limits; a page of users is one query.
const mfaEnabledChunk = 1000

// MFAEnabled reports which of the users have a confirmed authenticator.
func (db *DB) MFAEnabled(ctx context.Context, userIDs []string) (map[string]bool, error) {
	out := make(map[string]bool)
	for len(userIDs) > 0 {
		chunk := userIDs[:min(len(userIDs), mfaEnabledChunk)]
		userIDs = userIDs[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		ids, err := queryAll(ctx, db, func(row scanner) (string, error) {
			var id string
			return id, row.Scan(&id)
		}, `SELECT user_id FROM totp_authenticators WHERE confirmed AND user_id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			out[id] = true
		}
	}
	return out, nil
}

const mfaChallengeCols = `hash, user_id, client_id, scope, amr, auth_time, finish, enrol_only, attempts, created_at, expires_at`

// CreateMFAChallenge stores a challenge.
func (db *DB) CreateMFAChallenge(ctx context.Context, c *auth.MFAChallenge) error {
	_, err := db.exec(ctx, `INSERT INTO mfa_challenges (`+mfaChallengeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.UserID, c.ClientID, c.Scope, auth.JoinAMR(c.AMR), authTS(c.AuthTime), int64(c.Finish), c.EnrolOnly, c.Attempts,
		ts(c.CreatedAt), ts(c.ExpiresAt))
	return err
}

// MFAChallenge returns a challenge live at now.
func (db *DB) MFAChallenge(ctx context.Context, hash string, now time.Time) (*auth.MFAChallenge, error) {
	var (
		c                 auth.MFAChallenge
		amr               string
		at, fin, cr, e, n int64
	)
	err := db.queryRow(ctx, `SELECT `+mfaChallengeCols+` FROM mfa_challenges WHERE hash = ? AND expires_at > ?`, hash, ts(now)).
		Scan(&c.Hash, &c.UserID, &c.ClientID, &c.Scope, &amr, &at, &fin, &c.EnrolOnly, &n, &cr, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.AMR, c.AuthTime, c.Finish, c.Attempts = auth.SplitAMR(amr), fromAuthTS(at, cr), auth.Finish(fin), int(n)
	c.CreatedAt, c.ExpiresAt = fromTS(cr), fromTS(e)
	return &c, nil
}

// FailMFAChallenge counts a wrong attempt and returns how many are left;
// the challenge is deleted with the last.
func (db *DB) FailMFAChallenge(ctx context.Context, hash string, max int) (int, error) {
	left := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// The increment is one statement: concurrent wrong codes each
		// count (the row lock, or SQLite's one writer, orders them).
		var n int64
		err := tx.QueryRowContext(ctx, db.rebind(`UPDATE mfa_challenges SET attempts = attempts + 1 WHERE hash = ? RETURNING attempts`), hash).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return auth.ErrNotFound
		}
		if err != nil {
			return err
		}
		if n < int64(max) {
			left = max - int(n)
			return nil
		}
		_, err = tx.ExecContext(ctx, db.rebind(`DELETE FROM mfa_challenges WHERE hash = ?`), hash)
		return err
	})
	if err != nil {
		return 0, err
	}
	return left, nil
}

// RedeemMFA consumes the challenge, uses the factor and creates the
// family and session of r, with its audit events, in one transaction; any
// refusal rolls it all back. A redemption that makes no session commits
// like a password login's (txNoSync): a power failure may roll it back
// whole, which loses the new refresh family (the client signs in again)
// and frees the code's step for the rest of its 30 seconds.
func (db *DB) RedeemMFA(ctx context.Context, r *auth.MFARedemption) error {
	now := ts(r.Now)
	run := db.tx
	if r.Session == nil {
		run = db.txNoSync
	}
	details := make([]string, len(r.Audit))
	for i, e := range r.Audit {
		d, err := auditDetails(e)
		if err != nil {
			return err
		}
		details[i] = d
	}
	return run(ctx, func(tx *sql.Tx) error {
		if r.ChallengeHash != "" {
			if err := affectedOne(tx.ExecContext(ctx, db.rebind(`DELETE FROM mfa_challenges WHERE hash = ? AND user_id = ? AND expires_at > ?`),
				r.ChallengeHash, r.UserID, now)); err != nil {
				return err
			}
		}
		if r.TOTPID != "" {
			// Compare-and-set of the last step (RFC 6238 §5.2): a step at
			// or before the last one used is a replay.
			err := affectedOne(tx.ExecContext(ctx, db.rebind(`UPDATE totp_authenticators SET last_step = ?, last_used_at = ?
				WHERE id = ? AND user_id = ? AND confirmed AND last_step < ?`),
				r.Step, now, r.TOTPID, r.UserID, r.Step))
			if errors.Is(err, auth.ErrNotFound) {
				return auth.ErrMFAReplay
			}
			if err != nil {
				return err
			}
		}
		if r.RecoveryHash != "" {
			if err := affectedOne(tx.ExecContext(ctx, db.rebind(`DELETE FROM recovery_codes WHERE user_id = ? AND code_hash = ?`),
				r.UserID, r.RecoveryHash)); err != nil {
				return err
			}
		}
		if r.ClearLockout != "" {
			if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM lockouts WHERE key = ?`), r.ClearLockout); err != nil {
				return err
			}
		}
		for i, e := range r.Audit {
			if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO audit_events (id, type, at, user_id, ip, details) VALUES (?, ?, ?, ?, ?, ?)`),
				e.ID, e.Type, ts(e.At), e.UserID, e.IP, details[i]); err != nil {
				return err
			}
			if err := db.insertWebhookMessages(ctx, tx, e.Webhooks); err != nil {
				return err
			}
		}
		if r.Family != nil {
			if err := db.insertFamily(ctx, tx, r.Family, r.First); err != nil {
				return err
			}
		}
		if r.Session != nil {
			return db.insertSession(ctx, tx, r.Session)
		}
		return nil
	})
}

// PurgeMFA deletes challenges and pending enrolments expired before now.
func (db *DB) PurgeMFA(ctx context.Context, now time.Time) error {
	if _, err := db.exec(ctx, `DELETE FROM mfa_challenges WHERE expires_at < ?`, ts(now)); err != nil {
		return err
	}
	_, err := db.exec(ctx, `DELETE FROM totp_authenticators WHERE NOT confirmed AND expires_at < ?`, ts(now))
	return err
}
