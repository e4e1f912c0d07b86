package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

var _ auth.KeyStore = (*DB)(nil)

// SigningKeys returns every signing key, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]*auth.SigningKey, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT kid, alg, sealed, created_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*auth.SigningKey
	for rows.Next() {
		var (
			k  auth.SigningKey
			at int64
		)
		if err := rows.Scan(&k.KID, &k.Alg, &k.Sealed, &at); err != nil {
			return nil, err
		}
		k.CreatedAt = fromTS(at)
		out = append(out, &k)
	}
	return out, rows.Err()
}

// AddSigningKey stores a new signing key.
func (db *DB) AddSigningKey(ctx context.Context, k *auth.SigningKey) error {
	_, err := db.exec(ctx, `INSERT INTO signing_keys (kid, alg, sealed, created_at) VALUES (?, ?, ?, ?)`, k.KID, k.Alg, k.Sealed, ts(k.CreatedAt))
	return err
}

// RevokeSigningKey deletes a signing key and records key.revoked in the
// same transaction (SPEC §15): the key leaves the JWKS of every node at its
// next reload, and the feed tells resource servers to refuse its tokens at
// once. auth.ErrNotFound when there is no such key.
func (db *DB) RevokeSigningKey(ctx context.Context, kid string, now time.Time) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		if err := affectedOne(tx.ExecContext(ctx, db.rebind(`DELETE FROM signing_keys WHERE kid = ?`), kid)); err != nil {
			return nil, err
		}
		return []revfeed.Event{{Type: revfeed.TypeKeyRevoked, At: now, KID: kid}}, nil
	})
}
