// Package revfeed is the revocation feed of SPEC §15 as both ends see it:
// the wire form of an event and its cursor, and the in-memory set of
// revocations a resource server (guard) and Gatehouse's own endpoints check
// access tokens against.
package revfeed

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Event types of SPEC §15.
const (
	TypeSessionRevoked    = "session.revoked"    // SID
	TypeSubjectRevoked    = "subject.revoked"    // Sub, NotBefore
	TypeClientRevoked     = "client.revoked"     // ClientID, NotBefore
	TypeKeyRevoked        = "key.revoked"        // KID
	TypeCredentialRevoked = "credential.revoked" // Kind, SHA256
)

// Kinds of a credential.revoked event.
const (
	KindAPIKey  = "apikey"
	KindSession = "session"
)

// Event is one revocation as the feed sends it (the JSON of an SSE data:
// line and of the long-poll's events array). Only the fields of its type
// are set.
type Event struct {
	// ID is the event's cursor (see Cursor).
	ID   string    `json:"id"`
	Type string    `json:"type"`
	At   time.Time `json:"at"`

	SID      string `json:"sid,omitempty"`
	Sub      string `json:"sub,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	KID      string `json:"kid,omitempty"`
	Kind     string `json:"kind,omitempty"`
	// SHA256 is the hex SHA-256 of the revoked credential (an API key or a
	// session cookie's value): what guard keys its introspection cache by.
	SHA256 string `json:"sha256,omitempty"`
	// NotBefore (Unix seconds): tokens of Sub (or ClientID) whose iat is
	// before it are dead.
	NotBefore int64 `json:"not_before,omitempty"`
}

// Cursor is a position in the feed: the sequence number of an event and
// the time it was recorded. Its text form is "<seq>-<unix milliseconds>".
type Cursor struct {
	Seq int64
	At  time.Time
}

// ErrBadCursor is returned by ParseCursor for text that is not a cursor.
var ErrBadCursor = errors.New("revfeed: malformed cursor")

// String is the cursor's text form.
func (c Cursor) String() string {
	return strconv.FormatInt(c.Seq, 10) + "-" + strconv.FormatInt(c.At.UnixMilli(), 10)
}

// ParseCursor reads a cursor's text form.
func ParseCursor(s string) (Cursor, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok || len(a) == 0 || len(a) > 19 || len(b) == 0 || len(b) > 19 {
		return Cursor{}, ErrBadCursor
	}
	seq, err1 := strconv.ParseInt(a, 10, 64)
	ms, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || seq < 0 || ms < 0 || a[0] == '+' || b[0] == '+' {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{Seq: seq, At: time.UnixMilli(ms).UTC()}, nil
}

// NotBefore is the not_before of a subject or client revoked at t: the
// next whole second. iat is whole seconds, so every token issued up to t
// (iat ≤ t) has iat < NotBefore(t) and is dead; an issuer that mints a
// token for the subject before NotBefore(t) gives it that iat (see
// Set.SubjectNotBefore), or it would be born dead.
func NotBefore(t time.Time) int64 { return t.Unix() + 1 }
