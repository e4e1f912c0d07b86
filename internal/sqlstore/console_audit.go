package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"gatehouse/internal/auth"
)

var _ auth.AuditStream = (*DB)(nil)

// EachAudit reads the events q selects, newest first, calling fn with each
// as its row arrives (rows.Next): SQLite steps through the result and pgx
// reads PostgreSQL's rows off the connection as they come, so an export of
// any size holds one event at a time. It runs on the read pool, so fn may
// write (the single SQLite writer is never held).
func (db *DB) EachAudit(ctx context.Context, q auth.AuditQuery, fn func(*auth.AuditEvent) error) error {
	s := `SELECT id, type, at, user_id, ip, details FROM audit_events WHERE 1=1`
	var args []any
	if q.UserID != "" {
		s += ` AND user_id = ?`
		args = append(args, q.UserID)
	}
	if q.Type != "" {
		s += ` AND type = ?`
		args = append(args, q.Type)
	}
	if !q.From.IsZero() {
		s += ` AND at >= ?`
		args = append(args, ts(q.From))
	}
	if !q.To.IsZero() {
		s += ` AND at < ?`
		args = append(args, ts(q.To))
	}
	if q.Before != nil {
		// A row-value comparison: both dialects walk an index on (at, id)
		// from this position down.
		s += ` AND (at, id) < (?, ?)`
		args = append(args, ts(q.Before.At), q.Before.ID)
	}
	s += ` ORDER BY at DESC, id DESC`
	if q.Limit > 0 {
		s += fmt.Sprintf(` LIMIT %d`, q.Limit)
	}
	rows, err := db.r.QueryContext(ctx, db.rebind(s), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var details sql.RawBytes
	for rows.Next() {
		var (
			e  auth.AuditEvent
			at int64
		)
		// details stays the driver's bytes (RawBytes, valid until the
		// next row): it is decoded at once.
		if err := rows.Scan(&e.ID, &e.Type, &at, &e.UserID, &e.IP, &details); err != nil {
			return err
		}
		e.At = fromTS(at)
		if err := json.Unmarshal(details, &e.Details); err != nil {
			return fmt.Errorf("sqlstore: audit details of %s: %w", e.ID, err)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}
