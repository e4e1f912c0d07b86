package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

var _ auth.SessionStore = (*DB)(nil)

const sessionCols = `id, token_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent`

func scanSession(row scanner) (*auth.Session, error) {
	var (
		s       auth.Session
		c, l, e int64
	)
	err := row.Scan(&s.ID, &s.Hash, &s.UserID, &c, &l, &e, &s.IP, &s.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromTS(c), fromTS(l), fromTS(e)
	return &s, nil
}

// CreateSession stores a new session.
func (db *DB) CreateSession(ctx context.Context, s *auth.Session) error {
	_, err := db.exec(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Hash, s.UserID, ts(s.CreatedAt), ts(s.LastSeenAt), ts(s.ExpiresAt), s.IP, s.UserAgent)
	return err
}

// SessionByHash returns a session by token hash.
func (db *DB) SessionByHash(ctx context.Context, hash string) (*auth.Session, error) {
	return scanSession(db.queryRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE token_hash = ?`, hash))
}

// TouchSession records use.
func (db *DB) TouchSession(ctx context.Context, s *auth.Session, t time.Time) error {
	_, err := db.exec(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, ts(t), s.ID)
	return err
}

// ListSessions returns a user's sessions, newest first.
func (db *DB) ListSessions(ctx context.Context, userID string) ([]*auth.Session, error) {
	return queryAll(ctx, db, scanSession, `SELECT `+sessionCols+` FROM sessions WHERE user_id = ? ORDER BY created_at DESC, id`, userID)
}

// DeleteSession removes one of the user's sessions.
func (db *DB) DeleteSession(ctx context.Context, userID, id string) error {
	return affectedOne(db.exec(ctx, `DELETE FROM sessions WHERE id = ? AND user_id = ?`, id, userID))
}

// DeleteUserSessions removes every session of the user but exceptID.
func (db *DB) DeleteUserSessions(ctx context.Context, userID, exceptID string) error {
	_, err := db.exec(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, exceptID)
	return err
}

var _ auth.SessionUserStore = (*DB)(nil)

// SessionAndUser returns a session and its account in one query: the hot
// path of every cookie-authenticated request.
func (db *DB) SessionAndUser(ctx context.Context, hash string) (*auth.Session, *auth.User, error) {
	var (
		s               auth.Session
		u               auth.User
		c, l, e, uc, uu int64
		roles           string
	)
	// The password hash is not read: a session's account needs none of it
	// (and the covering indexes of migration 7 leave it out).
	err := db.queryRow(ctx, `SELECT s.id, s.token_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.ip, s.user_agent,
		u.id, u.email, u.email_verified, u.name, u.roles, u.disabled, u.created_at, u.updated_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, hash).
		Scan(&s.ID, &s.Hash, &s.UserID, &c, &l, &e, &s.IP, &s.UserAgent,
			&u.ID, &u.Email, &u.EmailVerified, &u.Name, &roles, &u.Disabled, &uc, &uu)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromTS(c), fromTS(l), fromTS(e)
	u.Roles = strings.Fields(roles)
	u.CreatedAt, u.UpdatedAt = fromTS(uc), fromTS(uu)
	return &s, &u, nil
}
