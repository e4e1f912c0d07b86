package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

var (
	_ auth.IdentityStore  = (*DB)(nil)
	_ auth.ChallengeStore = (*DB)(nil)
)

const identityCols = `id, user_id, provider, subject, email, email_verified, created_at`

func scanIdentity(row scanner) (*auth.Identity, error) {
	var (
		i  auth.Identity
		at int64
	)
	err := row.Scan(&i.ID, &i.UserID, &i.Provider, &i.Subject, &i.Email, &i.EmailVerified, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	i.CreatedAt = fromTS(at)
	return &i, nil
}

// IdentityBySubject returns the identity linked for (provider, subject).
func (db *DB) IdentityBySubject(ctx context.Context, provider, subject string) (*auth.Identity, error) {
	return scanIdentity(db.queryRow(ctx, `SELECT `+identityCols+` FROM identities WHERE provider = ? AND subject = ?`, provider, subject))
}

func insertIdentity(ctx context.Context, db *DB, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, i *auth.Identity) error {
	_, err := ex.ExecContext(ctx, db.rebind(`INSERT INTO identities (`+identityCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		i.ID, i.UserID, i.Provider, i.Subject, i.Email, i.EmailVerified, ts(i.CreatedAt))
	if isUnique(err) {
		return auth.ErrIdentityTaken
	}
	return err
}

// CreateIdentity links an identity.
func (db *DB) CreateIdentity(ctx context.Context, i *auth.Identity) error {
	return insertIdentity(ctx, db, db.w, i)
}

// CreateUserWithIdentity creates an account and its first identity in one
// transaction.
func (db *DB) CreateUserWithIdentity(ctx context.Context, u *auth.User, i *auth.Identity) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			u.ID, u.Email, u.EmailVerified, u.Name, u.PasswordHash, strings.Join(u.Roles, " "), u.Disabled, ts(u.CreatedAt), ts(u.UpdatedAt))
		if isUnique(err) {
			return auth.ErrEmailTaken
		}
		if err != nil {
			return err
		}
		return insertIdentity(ctx, db, tx, i)
	})
}

// ListIdentities returns a user's identities, oldest first.
func (db *DB) ListIdentities(ctx context.Context, userID string) ([]*auth.Identity, error) {
	return queryAll(ctx, db, scanIdentity, `SELECT `+identityCols+` FROM identities WHERE user_id = ? ORDER BY created_at, id`, userID)
}

// DeleteIdentity unlinks one of the user's identities.
func (db *DB) DeleteIdentity(ctx context.Context, userID, id string) error {
	return affectedOne(db.exec(ctx, `DELETE FROM identities WHERE id = ? AND user_id = ?`, id, userID))
}

// DeleteUserIdentities unlinks a user's identities (only unverified ones
// with unverifiedOnly).
func (db *DB) DeleteUserIdentities(ctx context.Context, userID string, unverifiedOnly bool) error {
	q := `DELETE FROM identities WHERE user_id = ?`
	if unverifiedOnly {
		q += ` AND email_verified = ?`
		_, err := db.exec(ctx, q, userID, false)
		return err
	}
	_, err := db.exec(ctx, q, userID)
	return err
}

// PutChallenge stores a challenge.
func (db *DB) PutChallenge(ctx context.Context, key string, value []byte, expires time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO challenges (key, value, expires_at) VALUES (?, ?, ?)`, key, value, ts(expires))
	return err
}

// TakeChallenge deletes a live challenge and returns its value; the DELETE
// makes it single-use under concurrency.
func (db *DB) TakeChallenge(ctx context.Context, key string, now time.Time) ([]byte, error) {
	var v []byte
	err := db.w.QueryRowContext(ctx, db.rebind(`DELETE FROM challenges WHERE key = ? AND expires_at > ? RETURNING value`), key, ts(now)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	return v, err
}
