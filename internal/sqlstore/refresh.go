package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

var _ auth.RefreshStore = (*DB)(nil)

// CreateFamily inserts a family and its first token in one transaction.
func (db *DB) CreateFamily(ctx context.Context, f *auth.RefreshFamily, first *auth.RefreshToken) error {
	return db.tx(ctx, func(tx *sql.Tx) error { return db.insertFamily(ctx, tx, f, first) })
}

// insertFamily inserts a family and, when not nil, its first token, in tx.
func (db *DB) insertFamily(ctx context.Context, tx *sql.Tx, f *auth.RefreshFamily, first *auth.RefreshToken) error {
	if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, expires_at, acr, amr, auth_time, session_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		f.ID, f.UserID, f.ClientID, f.Scope, ts(f.CreatedAt), ts(f.ExpiresAt), acrOrDefault(f.ACR), auth.JoinAMR(f.AMR), authTS(f.AuthTime), f.SessionID); err != nil {
		return err
	}
	if first == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO refresh_tokens (id, family_id, token_hash, created_at) VALUES (?, ?, ?, ?)`),
		first.ID, first.FamilyID, first.Hash, ts(first.CreatedAt))
	return err
}

const refreshQuery = `SELECT t.id, t.family_id, t.token_hash, t.created_at, t.rotated_at,
	f.id, f.user_id, f.client_id, f.scope, f.created_at, f.expires_at, f.revoked_at, f.acr, f.amr, f.auth_time, f.session_id
	FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?`

func scanRefresh(row *sql.Row) (*auth.RefreshToken, *auth.RefreshFamily, error) {
	var (
		t                auth.RefreshToken
		f                auth.RefreshFamily
		tc, fc, fe, fa   int64
		rotated, revoked sql.NullInt64
		amr              string
	)
	err := row.Scan(&t.ID, &t.FamilyID, &t.Hash, &tc, &rotated, &f.ID, &f.UserID, &f.ClientID, &f.Scope, &fc, &fe, &revoked, &f.ACR, &amr, &fa, &f.SessionID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	t.CreatedAt, t.RotatedAt = fromTS(tc), fromNullTS(rotated)
	f.CreatedAt, f.ExpiresAt, f.RevokedAt = fromTS(fc), fromTS(fe), fromNullTS(revoked)
	f.AMR, f.AuthTime = auth.SplitAMR(amr), fromAuthTS(fa, fc)
	return &t, &f, nil
}

// RefreshTokenByHash returns a token and its family.
func (db *DB) RefreshTokenByHash(ctx context.Context, hash string) (*auth.RefreshToken, *auth.RefreshFamily, error) {
	// Read through the writer: a rotation must see the latest state, and on
	// SQLite the single writer connection serialises it with the rotation.
	return scanRefresh(db.w.QueryRowContext(ctx, db.rebind(refreshQuery), hash))
}

// RotateRefreshToken marks old rotated and inserts next, only when old was
// not rotated yet; it reports whether this call did it.
func (db *DB) RotateRefreshToken(ctx context.Context, oldID string, next *auth.RefreshToken, now time.Time) (bool, error) {
	won := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// The conditional UPDATE is the lock: of concurrent rotations of one
		// token exactly one changes a row.
		res, err := tx.ExecContext(ctx, db.rebind(`UPDATE refresh_tokens SET rotated_at = ? WHERE id = ? AND rotated_at IS NULL`), ts(now), oldID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO refresh_tokens (id, family_id, token_hash, created_at) VALUES (?, ?, ?, ?)`),
			next.ID, next.FamilyID, next.Hash, ts(next.CreatedAt)); err != nil {
			return err
		}
		won = true
		return nil
	})
	return won, err
}

// RevokeFamily marks a family revoked.
func (db *DB) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		return db.revokeFamilies(ctx, tx, now, `id = ?`, familyID)
	})
}

// RevokeUserFamilies revokes every family of a user; its events end every
// access token of the user too (subject.revoked: an admin's revoke, an
// MFA reset).
func (db *DB) RevokeUserFamilies(ctx context.Context, userID string, now time.Time) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		evs, err := db.revokeFamilies(ctx, tx, now, `user_id = ?`, userID)
		return append(evs, db.subjectRevoked(userID, now)), err
	})
}

// RevokeUserFamiliesAt revokes every family of a user at level acr.
func (db *DB) RevokeUserFamiliesAt(ctx context.Context, userID, acr string, now time.Time) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		return db.revokeFamilies(ctx, tx, now, `user_id = ? AND acr = ?`, userID, acr)
	})
}

var _ auth.LoginFinisher = (*DB)(nil)

// FinishPasswordLogin makes every write of a successful password login in
// one transaction: the lockout count is cleared, the audit event appended,
// the refresh family and its first token inserted. Its commit does not wait
// for the disk (see txNoSync): should a power failure roll it back, the
// client's refresh token stops working and it signs in again.
func (db *DB) FinishPasswordLogin(ctx context.Context, lockKey string, e *auth.AuditEvent, f *auth.RefreshFamily, first *auth.RefreshToken) error {
	details, err := auditDetails(e)
	if err != nil {
		return err
	}
	return db.txNoSync(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM lockouts WHERE key = ?`), lockKey); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO audit_events (id, type, at, user_id, ip, details) VALUES (?, ?, ?, ?, ?, ?)`),
			e.ID, e.Type, ts(e.At), e.UserID, e.IP, details); err != nil {
			return err
		}
		if err := db.insertWebhookMessages(ctx, tx, e.Webhooks); err != nil {
			return err
		}
		return db.insertFamily(ctx, tx, f, first)
	})
}

// RevokeSessionFamilies revokes every live family issued to a browser
// session (through the authorization code flow).
func (db *DB) RevokeSessionFamilies(ctx context.Context, sessionID string, now time.Time) error {
	if sessionID == "" {
		return nil
	}
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		return db.revokeFamilies(ctx, tx, now, `session_id = ?`, sessionID)
	})
}
