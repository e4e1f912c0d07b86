package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gatehouse/internal/auth"
)

var _ auth.TokenStore = (*DB)(nil)

// PutToken stores t and deletes the user's older tokens of that purpose,
// in one transaction.
func (db *DB) PutToken(ctx context.Context, t *auth.OneTimeToken) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		// Two PutTokens of one user at once (two mail workers) must not
		// both delete before either inserts, or both tokens stay live.
		// SQLite runs one write transaction at a time; PostgreSQL, at READ
		// COMMITTED, is made to wait here on the user's row, and the DELETE
		// then sees the token the other transaction committed. (NO KEY
		// UPDATE does not block the foreign-key checks of other inserts.)
		if db.dialect == dialectPostgres {
			if _, err := tx.ExecContext(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, t.UserID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM one_time_tokens WHERE user_id = ? AND purpose = ?`), t.UserID, t.Purpose); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`),
			t.Hash, t.UserID, t.Purpose, t.Email, ts(t.CreatedAt), ts(t.ExpiresAt))
		return err
	})
}

func scanToken(row *sql.Row) (*auth.OneTimeToken, error) {
	var (
		t    auth.OneTimeToken
		c, e int64
	)
	err := row.Scan(&t.Hash, &t.UserID, &t.Purpose, &t.Email, &c, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt = fromTS(c), fromTS(e)
	return &t, nil
}

const tokenCols = `token_hash, user_id, purpose, email, created_at, expires_at`

// PeekToken returns a live token without using it.
func (db *DB) PeekToken(ctx context.Context, hash, purpose string, now time.Time) (*auth.OneTimeToken, error) {
	return scanToken(db.queryRow(ctx, `SELECT `+tokenCols+` FROM one_time_tokens WHERE token_hash = ? AND purpose = ? AND expires_at > ?`, hash, purpose, ts(now)))
}

// ConsumeToken deletes a live token and returns it; the DELETE is the
// atomic step, so of concurrent redemptions exactly one gets the row.
func (db *DB) ConsumeToken(ctx context.Context, hash, purpose string, now time.Time) (*auth.OneTimeToken, error) {
	return scanToken(db.w.QueryRowContext(ctx, db.rebind(`DELETE FROM one_time_tokens WHERE token_hash = ? AND purpose = ? AND expires_at > ? RETURNING `+tokenCols), hash, purpose, ts(now)))
}
