package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

var _ auth.SessionStore = (*DB)(nil)

const sessionCols = `id, token_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent, acr, amr, auth_time`

func scanSession(row scanner) (*auth.Session, error) {
	var (
		s          auth.Session
		c, l, e, a int64
		amr        string
	)
	err := row.Scan(&s.ID, &s.Hash, &s.UserID, &c, &l, &e, &s.IP, &s.UserAgent, &s.ACR, &amr, &a)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromTS(c), fromTS(l), fromTS(e)
	s.AMR, s.AuthTime = auth.SplitAMR(amr), fromAuthTS(a, c)
	return &s, nil
}

// acrOrDefault is the level a session or family is stored with: none
// given is one factor, the migration's default for the rows before it, so
// that revoking a user's aal1 families or sessions cannot miss one.
func acrOrDefault(acr string) string {
	if acr == "" {
		return auth.ACR1
	}
	return acr
}

// authTS stores an authentication time; the zero time is stored as 0,
// which reads back as the row's creation time (see fromAuthTS).
func authTS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ts(t)
}

// fromAuthTS reads an auth_time column: 0 (a row from before migration 8,
// or written without one) is the row's created_at.
func fromAuthTS(v, created int64) time.Time {
	if v == 0 {
		return fromTS(created)
	}
	return fromTS(v)
}

// CreateSession stores a new session.
func (db *DB) CreateSession(ctx context.Context, s *auth.Session) error {
	return db.insertSession(ctx, db.w, s)
}

// insertSession is CreateSession on q (the pool or a transaction).
func (db *DB) insertSession(ctx context.Context, q querier, s *auth.Session) error {
	_, err := q.ExecContext(ctx, db.rebind(`INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		s.ID, s.Hash, s.UserID, ts(s.CreatedAt), ts(s.LastSeenAt), ts(s.ExpiresAt), s.IP, s.UserAgent,
		acrOrDefault(s.ACR), auth.JoinAMR(s.AMR), authTS(s.AuthTime))
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

// ElevateSession records a step-up on a live session and updates s.
func (db *DB) ElevateSession(ctx context.Context, s *auth.Session, acr string, amr []string, authTime time.Time) error {
	acr = acrOrDefault(acr)
	// Keyed by the session and its owner: a step-up never touches another
	// account's session, whatever id it is given.
	if err := affectedOne(db.exec(ctx, `UPDATE sessions SET acr = ?, amr = ?, auth_time = ? WHERE id = ? AND user_id = ?`,
		acr, auth.JoinAMR(amr), authTS(authTime), s.ID, s.UserID)); err != nil {
		return err
	}
	s.ACR, s.AMR, s.AuthTime = acr, slices.Clone(amr), authTime
	if authTime.IsZero() {
		s.AuthTime = s.CreatedAt
	}
	return nil
}

// DeleteSession removes one of the user's sessions.
func (db *DB) DeleteSession(ctx context.Context, userID, id string) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		return one(db.deleteSessions(ctx, tx, time.Now(), `id = ? AND user_id = ?`, id, userID))
	})
}

// DeleteUserSessions removes every session of the user but exceptID.
func (db *DB) DeleteUserSessions(ctx context.Context, userID, exceptID string) error {
	return db.revoke(ctx, func(tx *sql.Tx) ([]revfeed.Event, error) {
		return db.deleteSessions(ctx, tx, time.Now(), `user_id = ? AND id <> ?`, userID, exceptID)
	})
}

var _ auth.SessionUserStore = (*DB)(nil)

// sessionAndUserQuery reads a session and its account. Every column it
// reads is in the covering indexes of migrations 7 and 8: SQLite answers it
// from the indexes alone, PostgreSQL with index-only scans.
const sessionAndUserQuery = `SELECT s.id, s.token_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.ip, s.user_agent, s.acr, s.amr, s.auth_time,
	u.id, u.email, u.email_verified, u.name, u.roles, u.disabled, u.created_at, u.updated_at
	FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`

// SessionAndUser returns a session and its account in one query: the hot
// path of every cookie-authenticated request.
func (db *DB) SessionAndUser(ctx context.Context, hash string) (*auth.Session, *auth.User, error) {
	var (
		s                  auth.Session
		u                  auth.User
		c, l, e, a, uc, uu int64
		roles, amr         string
	)
	// The password hash is not read: a session's account needs none of it
	// (and the covering indexes of migrations 7 and 8 leave it out).
	err := db.queryRow(ctx, sessionAndUserQuery, hash).
		Scan(&s.ID, &s.Hash, &s.UserID, &c, &l, &e, &s.IP, &s.UserAgent, &s.ACR, &amr, &a,
			&u.ID, &u.Email, &u.EmailVerified, &u.Name, &roles, &u.Disabled, &uc, &uu)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = fromTS(c), fromTS(l), fromTS(e)
	s.AMR, s.AuthTime = auth.SplitAMR(amr), fromAuthTS(a, c)
	u.Roles = strings.Fields(roles)
	u.CreatedAt, u.UpdatedAt = fromTS(uc), fromTS(uu)
	return &s, &u, nil
}
