package sqlstore

import (
	"context"

	"gatehouse/internal/auth"
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
