package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

// Session is a cookie session. The cookie carries a random token; only its
// SHA-256 is stored. ID is a separate public identifier for listing and
// revoking.
type Session struct {
	ID         string
	UserID     string
	Hash       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute end
	IP         string
	UserAgent  string
	// How the user signed in (SPEC §13): "aal1" or "aal2", the RFC 8176
	// methods, and when. A step-up renews them.
	ACR      string
	AMR      []string
	AuthTime time.Time
}

// SessionStore persists cookie sessions (the database, or Redis when
// configured).
type SessionStore interface {
	CreateSession(ctx context.Context, s *Session) error
	// SessionByHash returns a session by token hash or ErrNotFound.
	SessionByHash(ctx context.Context, hash string) (*Session, error)
	// TouchSession records use at t.
	TouchSession(ctx context.Context, s *Session, t time.Time) error
	// ListSessions returns the user's sessions, newest first.
	ListSessions(ctx context.Context, userID string) ([]*Session, error)
	// DeleteSession removes one of the user's sessions; ErrNotFound when
	// the id is not one of that user's.
	DeleteSession(ctx context.Context, userID, id string) error
	// DeleteUserSessions removes every session of the user but exceptID.
	DeleteUserSessions(ctx context.Context, userID, exceptID string) error
	// ElevateSession records a step-up on a live session, identified by
	// s.ID and owned by s.UserID (the caller may know nothing else of it):
	// its new level, methods and authentication time. ErrNotFound when it
	// is gone or another user's.
	ElevateSession(ctx context.Context, s *Session, acr string, amr []string, authTime time.Time) error
}

// SessionUserStore is an optional SessionStore extension that reads a
// session and its account in one query (the SQL store implements it).
type SessionUserStore interface {
	SessionAndUser(ctx context.Context, hash string) (*Session, *User, error)
}

// ErrInvalidSession is the one answer for a missing, expired or revoked
// session cookie.
var ErrInvalidSession = &Error{Code: EUNAUTHORIZED, Message: "the session is invalid or expired"}

// newSessionToken is an opaque token of 256 random bits (session cookies,
// mfa_tokens, authorization codes, one-time tokens): only its hash is
// stored.
func newSessionToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// startSession makes a new session for an authenticated user: always a new
// random token, so a login never reuses an id an attacker planted (no
// fixation).
func (s *Service) startSession(ctx context.Context, u *User, m Meta, asr assurance) (string, *Session, error) {
	tok, sess := s.newSession(u, m, asr)
	if err := s.st.Sessions.CreateSession(ctx, sess); err != nil {
		return "", nil, err
	}
	return tok, sess, nil
}

// newSession makes (without storing) a session for a sign-in of asr.
func (s *Service) newSession(u *User, m Meta, asr assurance) (string, *Session) {
	now := s.now()
	tok := newSessionToken()
	ua := m.UserAgent
	if len(ua) > 512 {
		ua = ua[:512]
	}
	return tok, &Session{ID: NewID(), UserID: u.ID, Hash: HashToken(tok), CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(s.cfg.SessionTTL), IP: m.IP, UserAgent: ua, ACR: asr.acr, AMR: asr.amr, AuthTime: asr.at}
}

// touchEvery is how stale last_seen may get before a request writes it:
// often enough for the idle lifetime to be exact to a few percent, rarely
// enough that a busy session does not write on every request.
func (s *Service) touchEvery() time.Duration {
	return min(s.cfg.SessionIdleTTL/8, time.Minute)
}

// AuthenticateSession resolves a session cookie: the session must exist,
// be neither idle longer than the idle lifetime nor older than the absolute
// one, and belong to an enabled account, which is read fresh so that a role
// change or a disable applies on the next request.
func (s *Service) AuthenticateSession(ctx context.Context, tok string) (*Session, *User, error) {
	return s.authenticateSession(ctx, tok, true)
}

// InspectSession resolves a session cookie like AuthenticateSession but
// does not count as use: introspection by a resource server must not keep
// an idle session alive.
func (s *Service) InspectSession(ctx context.Context, tok string) (*Session, *User, error) {
	return s.authenticateSession(ctx, tok, false)
}

func (s *Service) authenticateSession(ctx context.Context, tok string, touch bool) (*Session, *User, error) {
	if tok == "" || len(tok) > 128 {
		return nil, nil, ErrInvalidSession
	}
	var (
		sess *Session
		u    *User
		err  error
	)
	if both, ok := s.st.Sessions.(SessionUserStore); ok {
		sess, u, err = both.SessionAndUser(ctx, HashToken(tok))
	} else if sess, err = s.st.Sessions.SessionByHash(ctx, HashToken(tok)); err == nil {
		u, err = s.st.Users.UserByID(ctx, sess.UserID)
	}
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrInvalidSession
	}
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) >= s.cfg.SessionIdleTTL {
		_ = s.st.Sessions.DeleteSession(ctx, sess.UserID, sess.ID)
		return nil, nil, ErrInvalidSession
	}
	if u.Disabled {
		return nil, nil, ErrInvalidSession
	}
	if touch && now.Sub(sess.LastSeenAt) >= s.touchEvery() {
		if err := s.st.Sessions.TouchSession(ctx, sess, now); err != nil {
			return nil, nil, err
		}
		sess.LastSeenAt = now
	}
	return sess, u, nil
}

// ListSessions returns the user's live sessions.
func (s *Service) ListSessions(ctx context.Context, userID string) ([]*Session, error) {
	all, err := s.st.Sessions.ListSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := all[:0]
	for _, x := range all {
		if now.Before(x.ExpiresAt) && now.Sub(x.LastSeenAt) < s.cfg.SessionIdleTTL {
			out = append(out, x)
		}
	}
	return out, nil
}

// RevokeSession ends one of the user's sessions.
func (s *Service) RevokeSession(ctx context.Context, userID, id string, m Meta) error {
	if err := s.st.Sessions.DeleteSession(ctx, userID, id); err != nil {
		return err
	}
	s.audit(ctx, EventSessionRevoked, userID, m, map[string]any{"session_id": id})
	return nil
}

// RevokeOtherSessions ends every session of the user but keep.
func (s *Service) RevokeOtherSessions(ctx context.Context, userID, keep string, m Meta) error {
	if err := s.st.Sessions.DeleteUserSessions(ctx, userID, keep); err != nil {
		return err
	}
	s.audit(ctx, EventSessionRevoked, userID, m, map[string]any{"all_but": keep})
	return nil
}
