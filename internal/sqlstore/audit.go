package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"gatehouse/internal/auth"
)

var _ auth.AuditStore = (*DB)(nil)

// AppendAudit records one event, and queues its webhook messages in the
// same transaction (one statement when it has none).
func (db *DB) AppendAudit(ctx context.Context, e *auth.AuditEvent) error {
	details, err := auditDetails(e)
	if err != nil {
		return err
	}
	const insert = `INSERT INTO audit_events (id, type, at, user_id, ip, details) VALUES (?, ?, ?, ?, ?, ?)`
	if len(e.Webhooks) == 0 {
		_, err = db.exec(ctx, insert, e.ID, e.Type, ts(e.At), e.UserID, e.IP, details)
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.rebind(insert), e.ID, e.Type, ts(e.At), e.UserID, e.IP, details); err != nil {
			return err
		}
		return db.insertWebhookMessages(ctx, tx, e.Webhooks)
	})
}

// auditDetails encodes an event's details as JSON text.
func auditDetails(e *auth.AuditEvent) (string, error) {
	if len(e.Details) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(e.Details)
	if err != nil {
		return "", fmt.Errorf("sqlstore: audit details: %w", err)
	}
	return string(b), nil
}

// ListAudit returns events, newest first.
func (db *DB) ListAudit(ctx context.Context, f auth.AuditFilter) ([]*auth.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var out []*auth.AuditEvent
	err := db.EachAudit(ctx, auth.AuditQuery{UserID: f.UserID, Type: f.Type, Limit: limit}, func(e *auth.AuditEvent) error {
		out = append(out, e)
		return nil
	})
	return out, err
}
