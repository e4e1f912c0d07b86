package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

var _ auth.UserStore = (*DB)(nil)

const userCols = `id, email, email_verified, name, password_hash, roles, disabled, created_at, updated_at`

func scanUser(row scanner) (*auth.User, error) {
	var (
		u        auth.User
		roles    string
		cat, uat int64
	)
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.PasswordHash, &roles, &u.Disabled, &cat, &uat)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u.Roles = strings.Fields(roles)
	u.CreatedAt, u.UpdatedAt = fromTS(cat), fromTS(uat)
	return &u, nil
}

// CreateUser inserts u; auth.ErrEmailTaken for a duplicate email.
func (db *DB) CreateUser(ctx context.Context, u *auth.User) error {
	_, err := db.exec(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.EmailVerified, u.Name, u.PasswordHash, strings.Join(u.Roles, " "), u.Disabled, ts(u.CreatedAt), ts(u.UpdatedAt))
	if isUnique(err) {
		return auth.ErrEmailTaken
	}
	return err
}

// UserByID returns a user or auth.ErrNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (*auth.User, error) {
	return scanUser(db.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
}

// UserByEmail returns a user by normalised email or auth.ErrNotFound.
func (db *DB) UserByEmail(ctx context.Context, email string) (*auth.User, error) {
	return scanUser(db.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, email))
}

func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// UpdateUserName sets a user's display name.
func (db *DB) UpdateUserName(ctx context.Context, id, name string, now time.Time) error {
	return affectedOne(db.exec(ctx, `UPDATE users SET name = ?, updated_at = ? WHERE id = ?`, name, ts(now), id))
}

// SetPasswordHash replaces a password hash while it is still old (re-hash
// on login, compare-and-set): a password changed or reset meanwhile stays.
func (db *DB) SetPasswordHash(ctx context.Context, id, old, hash string, now time.Time) error {
	return affectedOne(db.exec(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?`, hash, ts(now), id, old))
}

// SetRoles replaces a user's roles.
func (db *DB) SetRoles(ctx context.Context, id string, roles []string, now time.Time) error {
	// A role change reaches resource servers as subject.revoked: tokens
	// carrying the old roles stop working within a second (SPEC §15).
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		if err := affectedOne(tx.ExecContext(ctx, db.rebind(`UPDATE users SET roles = ?, updated_at = ? WHERE id = ?`), strings.Join(roles, " "), ts(now), id)); err != nil {
			return nil, err
		}
		return []revfeed.Event{db.subjectRevoked(id, now)}, nil
	})
}

// SetEmailVerified sets the email_verified flag.
func (db *DB) SetEmailVerified(ctx context.Context, id string, verified bool, now time.Time) error {
	return affectedOne(db.exec(ctx, `UPDATE users SET email_verified = ?, updated_at = ? WHERE id = ?`, verified, ts(now), id))
}

// SetDisabled sets the disabled flag.
func (db *DB) SetDisabled(ctx context.Context, id string, disabled bool, now time.Time) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		if err := affectedOne(tx.ExecContext(ctx, db.rebind(`UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?`), disabled, ts(now), id)); err != nil {
			return nil, err
		}
		if !disabled {
			return nil, nil
		}
		return []revfeed.Event{db.subjectRevoked(id, now)}, nil
	})
}

// ListUsers returns users ordered by email after afterEmail whose email
// contains query (emails are stored lower-cased), at most limit.
func (db *DB) ListUsers(ctx context.Context, query, afterEmail string, limit int) ([]*auth.User, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	// LIKE wildcards in the query are escaped: a search for "a_b" means it.
	pattern := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(query)) + "%"
	return queryAll(ctx, db, scanUser, `SELECT `+userCols+` FROM users WHERE email > ? AND email LIKE ? ESCAPE '\' ORDER BY email LIMIT ?`, afterEmail, pattern, limit)
}

// DeleteUser deletes a user and, by cascade, its refresh tokens.
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	// Its sessions and API keys go first, explicitly, for their events
	// (the cascade would take them silently).
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		now := time.Now()
		evs, err := db.deleteSessions(ctx, tx, now, `user_id = ?`, id)
		if err != nil {
			return nil, err
		}
		keys, err := db.deleteAPIKeys(ctx, tx, now, `user_id = ?`, id)
		if err != nil {
			return nil, err
		}
		fams, err := db.revokeFamilies(ctx, tx, now, `user_id = ?`, id)
		if err != nil {
			return nil, err
		}
		if err := affectedOne(tx.ExecContext(ctx, db.rebind(`DELETE FROM users WHERE id = ?`), id)); err != nil {
			return nil, err
		}
		evs = append(append(append(evs, keys...), fams...), db.subjectRevoked(id, now))
		return evs, nil
	})
}

// ChangePassword stores a new hash and revokes every refresh family of the
// user in one transaction.
func (db *DB) ChangePassword(ctx context.Context, id, hash string, now time.Time) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		if err := affectedOne(tx.ExecContext(ctx, db.rebind(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`), hash, ts(now), id)); err != nil {
			return nil, err
		}
		evs, err := db.revokeFamilies(ctx, tx, now, `user_id = ?`, id)
		return append(evs, db.subjectRevoked(id, now)), err
	})
}
