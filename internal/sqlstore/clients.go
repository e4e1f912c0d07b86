package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

var (
	_ auth.ClientStore   = (*DB)(nil)
	_ auth.ConsentStore  = (*DB)(nil)
	_ auth.AuthCodeStore = (*DB)(nil)
)

// OAuth2 / OpenID Connect provider mode (SPEC §14): clients, consents and
// authorization codes. A code is single-use by one conditional UPDATE
// (used_at IS NULL): on PostgreSQL the second of two concurrent
// redemptions waits for the first's row lock and then finds used_at set
// (0 rows), on SQLite the one writer connection runs them one after the
// other.

// joinList stores a list as a JSON array of strings, so that every item,
// a redirect URI with spaces or quotes included, reads back as the exact
// string it was. HTML escaping is off: the column holds the strings
// themselves, not markup. A string that is not UTF-8 is refused rather
// than stored altered (encoding/json would replace the bad bytes).
func joinList(what string, items []string) (string, error) {
	if len(items) == 0 {
		return "[]", nil
	}
	for _, s := range items {
		if !utf8.ValidString(s) {
			return "", &auth.Error{Code: auth.EINVALID, Message: what + " must be UTF-8"}
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(items); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// splitList is the inverse of joinList; an empty list reads as nil.
func splitList(what, s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ---- clients ----

const clientCols = `id, name, type, redirect_uris, post_logout_redirect_uris, grant_types, scopes,
	first_party, require_pkce, token_endpoint_auth_method, id_token_alg, id_token_claims, logo_url,
	secret_hash, previous_secret_hash, previous_secret_expires_at, from_config, created_at, updated_at`

// clientLists are a client's lists as stored, in the order of clientCols.
func clientLists(c *auth.Client) ([4]string, error) {
	var (
		out [4]string
		err error
	)
	for i, l := range []struct {
		what  string
		items []string
	}{
		{"redirect_uris", c.RedirectURIs},
		{"post_logout_redirect_uris", c.PostLogoutRedirectURIs},
		{"grant_types", c.GrantTypes},
		{"scopes", c.Scopes},
	} {
		if out[i], err = joinList(l.what, l.items); err != nil {
			return out, err
		}
	}
	return out, nil
}

func scanClient(row scanner) (*auth.Client, error) {
	var (
		c          auth.Client
		lists      [4]string
		cr, up     int64
		prevExpiry sql.NullInt64
	)
	err := row.Scan(&c.ID, &c.Name, &c.Type, &lists[0], &lists[1], &lists[2], &lists[3],
		&c.FirstParty, &c.RequirePKCE, &c.TokenEndpointAuthMethod, &c.IDTokenAlg, &c.IDTokenClaims, &c.LogoURL,
		&c.SecretHash, &c.PreviousSecretHash, &prevExpiry, &c.FromConfig, &cr, &up)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	for i, dst := range []*[]string{&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.GrantTypes, &c.Scopes} {
		if *dst, err = splitList("client "+c.ID, lists[i]); err != nil {
			return nil, err
		}
	}
	c.PreviousSecretExpiresAt, c.CreatedAt, c.UpdatedAt = fromNullTS(prevExpiry), fromTS(cr), fromTS(up)
	return &c, nil
}

// CreateClient inserts a client; ECONFLICT when the id exists.
func (db *DB) CreateClient(ctx context.Context, c *auth.Client) error {
	lists, err := clientLists(c)
	if err != nil {
		return err
	}
	_, err = db.exec(ctx, `INSERT INTO oauth_clients (`+clientCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.Type, lists[0], lists[1], lists[2], lists[3],
		c.FirstParty, c.RequirePKCE, c.TokenEndpointAuthMethod, c.IDTokenAlg, c.IDTokenClaims, c.LogoURL,
		c.SecretHash, c.PreviousSecretHash, nullTS(c.PreviousSecretExpiresAt), c.FromConfig, ts(c.CreatedAt), ts(c.UpdatedAt))
	if isUnique(err) {
		return &auth.Error{Code: auth.ECONFLICT, Field: "client_id", Message: "a client with this id exists"}
	}
	return err
}

// ClientByID returns a client.
func (db *DB) ClientByID(ctx context.Context, id string) (*auth.Client, error) {
	return scanClient(db.queryRow(ctx, `SELECT `+clientCols+` FROM oauth_clients WHERE id = ?`, id))
}

// ListClients returns every client ordered by name, then id.
func (db *DB) ListClients(ctx context.Context) ([]*auth.Client, error) {
	return queryAll(ctx, db, scanClient, `SELECT `+clientCols+` FROM oauth_clients ORDER BY name, id`)
}

// UpdateClient replaces the client's settings: everything but the id, the
// secrets and created_at.
func (db *DB) UpdateClient(ctx context.Context, c *auth.Client) error {
	lists, err := clientLists(c)
	if err != nil {
		return err
	}
	return affectedOne(db.exec(ctx, `UPDATE oauth_clients SET name = ?, type = ?,
		redirect_uris = ?, post_logout_redirect_uris = ?, grant_types = ?, scopes = ?,
		first_party = ?, require_pkce = ?, token_endpoint_auth_method = ?, id_token_alg = ?, id_token_claims = ?,
		logo_url = ?, from_config = ?, updated_at = ?
		WHERE id = ?`,
		c.Name, c.Type, lists[0], lists[1], lists[2], lists[3],
		c.FirstParty, c.RequirePKCE, c.TokenEndpointAuthMethod, c.IDTokenAlg, c.IDTokenClaims,
		c.LogoURL, c.FromConfig, ts(c.UpdatedAt), c.ID))
}

// RotateClientSecret makes hash the current secret and the current one the
// previous, valid until previousUntil. One statement: the right-hand sides
// read the row as it was, so two concurrent rotations cannot both keep the
// same previous secret.
func (db *DB) RotateClientSecret(ctx context.Context, id, hash string, previousUntil, now time.Time) error {
	return affectedOne(db.exec(ctx, `UPDATE oauth_clients SET previous_secret_hash = secret_hash,
		previous_secret_expires_at = ?, secret_hash = ?, updated_at = ? WHERE id = ?`,
		ts(previousUntil), hash, ts(now), id))
}

// DeleteClient removes a client, its consents and codes (the foreign keys
// cascade) and revokes its refresh families, in one transaction: a client
// that is gone leaves no refresh token working.
func (db *DB) DeleteClient(ctx context.Context, id string, now time.Time) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		if err := affectedOne(tx.ExecContext(ctx, db.rebind(`DELETE FROM oauth_clients WHERE id = ?`), id)); err != nil {
			return nil, err
		}
		evs, err := db.revokeFamilies(ctx, tx, now, `client_id = ?`, id)
		return append(evs, revfeed.Event{Type: revfeed.TypeClientRevoked, At: now, ClientID: id, NotBefore: revfeed.NotBefore(now)}), err
	})
}

// ---- consents ----

const consentCols = `user_id, client_id, scopes, created_at, updated_at, expires_at`

func scanConsent(row scanner) (*auth.Consent, error) {
	var (
		c       auth.Consent
		scopes  string
		cr, up  int64
		expires sql.NullInt64
	)
	err := row.Scan(&c.UserID, &c.ClientID, &scopes, &cr, &up, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if c.Scopes, err = splitList("consent scopes", scopes); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.ExpiresAt = fromTS(cr), fromTS(up), fromNullTS(expires)
	return &c, nil
}

// Consent returns the user's grant to the client, expired or not.
func (db *DB) Consent(ctx context.Context, userID, clientID string) (*auth.Consent, error) {
	return scanConsent(db.queryRow(ctx, `SELECT `+consentCols+` FROM oauth_consents WHERE user_id = ? AND client_id = ?`, userID, clientID))
}

// PutConsent inserts or replaces (every column) the user's grant to the
// client: one upsert, so that two concurrent grants leave one row.
func (db *DB) PutConsent(ctx context.Context, c *auth.Consent) error {
	scopes, err := joinList("scopes", c.Scopes)
	if err != nil {
		return err
	}
	_, err = db.exec(ctx, `INSERT INTO oauth_consents (`+consentCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET
			scopes = excluded.scopes, created_at = excluded.created_at,
			updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
		c.UserID, c.ClientID, scopes, ts(c.CreatedAt), ts(c.UpdatedAt), nullTS(c.ExpiresAt))
	return err
}

// ListConsents returns the user's grants ordered by client id.
func (db *DB) ListConsents(ctx context.Context, userID string) ([]*auth.Consent, error) {
	return queryAll(ctx, db, scanConsent, `SELECT `+consentCols+` FROM oauth_consents WHERE user_id = ? ORDER BY client_id`, userID)
}

// DeleteConsent removes the grant and revokes the user's refresh families
// of that client, in one transaction: a revoked grant leaves no refresh
// token of it working.
func (db *DB) DeleteConsent(ctx context.Context, userID, clientID string, now time.Time) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		if err := affectedOne(tx.ExecContext(ctx, db.rebind(`DELETE FROM oauth_consents WHERE user_id = ? AND client_id = ?`), userID, clientID)); err != nil {
			return nil, err
		}
		return db.revokeFamilies(ctx, tx, now, `user_id = ? AND client_id = ?`, userID, clientID)
	})
}

// ---- authorization codes ----

const authCodeCols = `hash, client_id, user_id, redirect_uri, scope, nonce, code_challenge, session_id,
	acr, amr, auth_time, created_at, expires_at, used_at, family_id`

func scanAuthCode(row scanner) (*auth.AuthCode, error) {
	var (
		c           auth.AuthCode
		amr         string
		at, cr, exp int64
		used        sql.NullInt64
	)
	err := row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.Scope, &c.Nonce, &c.CodeChallenge, &c.SessionID,
		&c.ACR, &amr, &at, &cr, &exp, &used, &c.FamilyID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.AMR, c.AuthTime, c.CreatedAt, c.ExpiresAt, c.UsedAt = auth.SplitAMR(amr), fromTS(at), fromTS(cr), fromTS(exp), fromNullTS(used)
	return &c, nil
}

// CreateAuthCode stores a code, unused.
func (db *DB) CreateAuthCode(ctx context.Context, c *auth.AuthCode) error {
	_, err := db.exec(ctx, `INSERT INTO oauth_codes (`+authCodeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '')`,
		c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.Scope, c.Nonce, c.CodeChallenge, c.SessionID,
		c.ACR, auth.JoinAMR(c.AMR), ts(c.AuthTime), ts(c.CreatedAt), ts(c.ExpiresAt))
	return err
}

// AuthCodeByHash returns a code, used or not, live or not. A read on the
// read pool sees every redemption committed before it began, and a
// redemption's decision is RedeemAuthCode's conditional UPDATE, never
// this read.
func (db *DB) AuthCodeByHash(ctx context.Context, hash string) (*auth.AuthCode, error) {
	return scanAuthCode(db.queryRow(ctx, `SELECT `+authCodeCols+` FROM oauth_codes WHERE hash = ?`, hash))
}

// RedeemAuthCode marks a live, unused code used and, when f is not nil,
// creates the refresh family and its first token, in one transaction. The
// conditional UPDATE is the lock: of concurrent redemptions of one code
// exactly one changes the row; the others, and any later one, find it
// used (ErrAuthCodeUsed). A family that cannot be inserted rolls the
// redemption back, leaving the code unused.
func (db *DB) RedeemAuthCode(ctx context.Context, hash string, now time.Time, f *auth.RefreshFamily, first *auth.RefreshToken) error {
	familyID := ""
	if f != nil {
		familyID = f.ID
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.rebind(`UPDATE oauth_codes SET used_at = ?, family_id = ?
			WHERE hash = ? AND used_at IS NULL AND expires_at > ?`), ts(now), familyID, hash, ts(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			// Missing, expired or used: only a used code is a replay (its
			// family is then revoked), whether or not it has expired since.
			var used sql.NullInt64
			err := tx.QueryRowContext(ctx, db.rebind(`SELECT used_at FROM oauth_codes WHERE hash = ?`), hash).Scan(&used)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return auth.ErrNotFound
			case err != nil:
				return err
			case used.Valid:
				return auth.ErrAuthCodeUsed
			}
			return auth.ErrNotFound
		}
		if f == nil {
			return nil
		}
		return db.insertFamily(ctx, tx, f, first)
	})
}

// PurgeAuthCodes deletes codes that expired before now, used or not.
func (db *DB) PurgeAuthCodes(ctx context.Context, now time.Time) error {
	_, err := db.exec(ctx, `DELETE FROM oauth_codes WHERE expires_at < ?`, ts(now))
	return err
}
