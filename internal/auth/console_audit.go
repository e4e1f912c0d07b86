package auth

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// The admin console's audit log (SPEC §17): pages of it, newest first, with
// a signed keyset cursor; its export, streamed and itself audited; and the
// record of a key rotation made from the console.

// EventAuditExported records an export of the audit log (SPEC §17); its
// details name the format and the filters.
const EventAuditExported = "admin.audit.exported"

// AuditQuery selects audit events for AuditStream.EachAudit; empty fields
// match everything.
type AuditQuery struct {
	UserID string
	Type   string
	// From (inclusive) and To (exclusive) bound the events' time; zero
	// leaves that side open.
	From, To time.Time
	// Before, when set, keeps only events older than this position in the
	// log's order (keyset pagination).
	Before *AuditPosition
	// Limit is the most events to read; 0 reads every match.
	Limit int
}

// AuditPosition is a place in the audit log's order: newest first, by time
// and then by id (descending), so that events of the same microsecond keep
// one order.
type AuditPosition struct {
	At time.Time
	ID string
}

// AuditStream reads the audit log one event at a time, so that a reader of
// a million events holds one of them at a time.
type AuditStream interface {
	// EachAudit calls fn with each event q selects, newest first (by At,
	// then by ID, both descending), as the rows are read from the store:
	// never the whole result in memory. It stops at the first error fn
	// returns and returns it. fn may use the store meanwhile (EachAudit
	// holds no write lock).
	EachAudit(ctx context.Context, q AuditQuery, fn func(*AuditEvent) error) error
}

// maxAuditFilter bounds a type or user filter (ids are 26 characters,
// emails at most 320).
const maxAuditFilter = 320

// checkAuditQuery refuses filters no event can have and a range that ends
// before it starts.
func checkAuditQuery(q AuditQuery) error {
	if len(q.Type) > maxAuditFilter {
		return &Error{Code: EINVALID, Field: "type", Message: "the event type is too long"}
	}
	if len(q.UserID) > maxAuditFilter {
		return &Error{Code: EINVALID, Field: "user", Message: "the user is too long"}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return &Error{Code: EINVALID, Field: "to", Message: "the end of the time range must be after its start"}
	}
	return nil
}

// AuditUserID turns the console's user filter — an account's id or its
// email — into the id the audit log holds. An id is taken as it is (the
// events of a deleted account keep its id); an email must belong to an
// account (ENOTFOUND otherwise).
func (s *Service) AuditUserID(ctx context.Context, idOrEmail string) (string, error) {
	v := strings.TrimSpace(idOrEmail)
	if !strings.Contains(v, "@") {
		return v, nil
	}
	email, err := NormalizeEmail(v)
	if err != nil {
		return "", err
	}
	u, err := s.st.Users.UserByEmail(ctx, email)
	if err != nil {
		return "", err
	}
	return u.ID, nil
}

// auditCursorTag starts the payload of an audit-log cursor: cursors share
// the admin pagination key (sealCursor), and the tag keeps one listing's
// cursor from being read as another's position.
const auditCursorTag = "audit\x00"

func (s *Service) sealAuditCursor(p AuditPosition) string {
	return s.sealCursor(auditCursorTag + strconv.FormatInt(p.At.UnixMicro(), 10) + "\x00" + p.ID)
}

func (s *Service) openAuditCursor(c string) (*AuditPosition, error) {
	v, err := s.openCursor(c)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(v, auditCursorTag)
	if !ok {
		return nil, ErrBadCursor
	}
	at, id, ok := strings.Cut(rest, "\x00")
	if !ok || id == "" {
		return nil, ErrBadCursor
	}
	us, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return nil, ErrBadCursor
	}
	return &AuditPosition{At: time.UnixMicro(us).UTC(), ID: id}, nil
}

// AuditPage is one page of the audit log, newest first: at most limit
// (1–200, default 50) events q selects, after the position of cursor (the
// next cursor of the page before; "" for the first page). The next cursor
// is "" on the last page. A cursor not made by this server (another root
// secret, a changed byte) is ErrBadCursor (SPEC §18 H3).
func (s *Service) AuditPage(ctx context.Context, q AuditQuery, cursor string, limit int) ([]*AuditEvent, string, error) {
	if err := checkAuditQuery(q); err != nil {
		return nil, "", err
	}
	q.Before = nil
	if cursor != "" {
		p, err := s.openAuditCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q.Before = p
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	q.Limit = limit + 1
	var out []*AuditEvent
	err := s.st.Audit.EachAudit(ctx, q, func(e *AuditEvent) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = s.sealAuditCursor(AuditPosition{At: last.At, ID: last.ID})
	}
	return out, next, nil
}

// ExportAudit streams every event q selects to fn, newest first, as the
// store reads them, after recording the export (admin.audit.exported, with
// the format and the filters, user m.Actor): the record comes first, so an
// export that fails or is cut off half-way is on record too.
func (s *Service) ExportAudit(ctx context.Context, q AuditQuery, format string, m Meta, fn func(*AuditEvent) error) error {
	q.Before, q.Limit = nil, 0
	if err := checkAuditQuery(q); err != nil {
		return err
	}
	filters := map[string]any{}
	if q.Type != "" {
		filters["type"] = q.Type
	}
	if q.UserID != "" {
		filters["user_id"] = q.UserID
	}
	if !q.From.IsZero() {
		filters["from"] = q.From.UTC().Format(time.RFC3339)
	}
	if !q.To.IsZero() {
		filters["to"] = q.To.UTC().Format(time.RFC3339)
	}
	s.audit(ctx, EventAuditExported, m.Actor, m, map[string]any{"format": format, "filters": filters})
	return s.st.Audit.EachAudit(ctx, q, fn)
}

// RotatedKey is a signing key a rotation made (token.Keyring.RotateAll).
type RotatedKey struct {
	KID, Alg string
	IDToken  bool
}

// RecordKeyRotation audits a rotation of the signing keys made by an
// administrator (key.rotated per new key, as `gatehouse keys rotate` does;
// user m.Actor).
func (s *Service) RecordKeyRotation(ctx context.Context, keys []RotatedKey, m Meta) {
	for _, k := range keys {
		s.audit(ctx, EventKeyRotated, m.Actor, m, map[string]any{"kid": k.KID, "alg": k.Alg, "id_token": k.IDToken})
	}
}
