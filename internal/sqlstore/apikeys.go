package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

var _ auth.APIKeyStore = (*DB)(nil)

const apiKeyCols = `id, user_id, name, prefix, key_hash, scopes, created_at, expires_at, last_used_at`

func scanAPIKey(row scanner) (*auth.APIKey, error) {
	var (
		k        auth.APIKey
		scopes   string
		created  int64
		exp, use sql.NullInt64
	)
	err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.Hash, &scopes, &created, &exp, &use)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	k.Scopes = strings.Fields(scopes)
	k.CreatedAt, k.ExpiresAt, k.LastUsedAt = fromTS(created), fromNullTS(exp), fromNullTS(use)
	return &k, nil
}

func nullTS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// CreateAPIKey stores a key.
func (db *DB) CreateAPIKey(ctx context.Context, k *auth.APIKey) error {
	_, err := db.exec(ctx, `INSERT INTO api_keys (`+apiKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.UserID, k.Name, k.Prefix, k.Hash, strings.Join(k.Scopes, " "), ts(k.CreatedAt), nullTS(k.ExpiresAt), nullTS(k.LastUsedAt))
	return err
}

// APIKeyByHash returns a key by the hash of its secret.
func (db *DB) APIKeyByHash(ctx context.Context, hash string) (*auth.APIKey, error) {
	return scanAPIKey(db.queryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE key_hash = ?`, hash))
}

// ListAPIKeys returns the user's keys, newest first.
func (db *DB) ListAPIKeys(ctx context.Context, userID string) ([]*auth.APIKey, error) {
	return queryAll(ctx, db, scanAPIKey, `SELECT `+apiKeyCols+` FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, id`, userID)
}

// DeleteAPIKey removes one of the user's keys.
func (db *DB) DeleteAPIKey(ctx context.Context, userID, id string) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		return one(db.deleteAPIKeys(ctx, tx, time.Now(), `id = ? AND user_id = ?`, id, userID))
	})
}

// DeleteUserAPIKeys removes every key of a user.
func (db *DB) DeleteUserAPIKeys(ctx context.Context, userID string) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		return db.deleteAPIKeys(ctx, tx, time.Now(), `user_id = ?`, userID)
	})
}

// TouchAPIKeys records last-used times in one transaction. The keys are
// updated in id order: every node flushes its batch at about the same
// time, and two transactions locking the same rows in different (map)
// orders deadlock on PostgreSQL, failing one batch.
func (db *DB) TouchAPIKeys(ctx context.Context, used map[string]time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range slices.Sorted(maps.Keys(used)) {
			t := used[id]
			if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`), ts(t), id, ts(t)); err != nil {
				return err
			}
		}
		return nil
	})
}
