package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gatehouse/internal/auth"
)

var _ auth.PasskeyStore = (*DB)(nil)

const passkeyCols = `id, user_id, name, credential_id, credential, created_at, last_used_at`

func scanPasskey(row scanner) (*auth.Passkey, error) {
	var (
		p    auth.Passkey
		c    int64
		used sql.NullInt64
	)
	err := row.Scan(&p.ID, &p.UserID, &p.Name, &p.CredentialID, &p.Credential, &c, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p.CreatedAt, p.LastUsedAt = fromTS(c), fromNullTS(used)
	return &p, nil
}

// CreatePasskey stores a passkey.
func (db *DB) CreatePasskey(ctx context.Context, p *auth.Passkey) error {
	_, err := db.exec(ctx, `INSERT INTO passkeys (`+passkeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.UserID, p.Name, p.CredentialID, p.Credential, ts(p.CreatedAt), nullTS(p.LastUsedAt))
	if isUnique(err) {
		return &auth.Error{Code: auth.ECONFLICT, Message: "this passkey is registered already"}
	}
	return err
}

// PasskeyByCredentialID finds a passkey by its WebAuthn credential id.
func (db *DB) PasskeyByCredentialID(ctx context.Context, credentialID []byte) (*auth.Passkey, error) {
	return scanPasskey(db.queryRow(ctx, `SELECT `+passkeyCols+` FROM passkeys WHERE credential_id = ?`, credentialID))
}

// ListPasskeys returns a user's passkeys, oldest first.
func (db *DB) ListPasskeys(ctx context.Context, userID string) ([]*auth.Passkey, error) {
	return queryAll(ctx, db, scanPasskey, `SELECT `+passkeyCols+` FROM passkeys WHERE user_id = ? ORDER BY created_at, id`, userID)
}

// UpdatePasskeyUse replaces the credential record if it is still prev.
func (db *DB) UpdatePasskeyUse(ctx context.Context, id string, prev, credential []byte, at time.Time) error {
	return affectedOne(db.exec(ctx, `UPDATE passkeys SET credential = ?, last_used_at = ? WHERE id = ? AND credential = ?`, credential, ts(at), id, prev))
}

// RenamePasskey names one of the user's passkeys.
func (db *DB) RenamePasskey(ctx context.Context, userID, id, name string) error {
	return affectedOne(db.exec(ctx, `UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?`, name, id, userID))
}

// DeletePasskey removes one of the user's passkeys.
func (db *DB) DeletePasskey(ctx context.Context, userID, id string) error {
	return affectedOne(db.exec(ctx, `DELETE FROM passkeys WHERE id = ? AND user_id = ?`, id, userID))
}
