package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"gatehouse/internal/auth"
)

var _ auth.WebhookStore = (*DB)(nil)

// Webhook endpoints and the webhook outbox (SPEC §16). Messages are
// inserted with the audit event they report (AppendAudit,
// FinishPasswordLogin, RedeemMFA call insertWebhookMessages in their
// transaction); workers on every node claim them with leases, like
// mail_jobs.

const webhookEndpointCols = `id, url, events, description, enabled, secret, previous_secret, previous_secret_expires_at,
	from_config, disabled_reason, failing_since, created_at, updated_at`

func scanWebhookEndpoint(row scanner) (*auth.WebhookEndpoint, error) {
	var (
		e                  auth.WebhookEndpoint
		events             string
		prevExpiry, failng sql.NullInt64
		cr, up             int64
	)
	err := row.Scan(&e.ID, &e.URL, &events, &e.Description, &e.Enabled, &e.Secret, &e.PreviousSecret, &prevExpiry,
		&e.FromConfig, &e.DisabledReason, &failng, &cr, &up)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if e.Events, err = splitList("webhook endpoint "+e.ID, events); err != nil {
		return nil, err
	}
	if len(e.PreviousSecret) == 0 {
		e.PreviousSecret = nil
	}
	e.PreviousSecretExpiresAt, e.FailingSince = fromNullTS(prevExpiry), fromNullTS(failng)
	e.CreatedAt, e.UpdatedAt = fromTS(cr), fromTS(up)
	return &e, nil
}

// CreateWebhookEndpoint inserts an endpoint; ECONFLICT when the id exists.
func (db *DB) CreateWebhookEndpoint(ctx context.Context, e *auth.WebhookEndpoint) error {
	events, err := joinList("events", e.Events)
	if err != nil {
		return err
	}
	var prev any
	if e.PreviousSecret != nil {
		prev = e.PreviousSecret
	}
	_, err = db.exec(ctx, `INSERT INTO webhook_endpoints (`+webhookEndpointCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.URL, events, e.Description, e.Enabled, e.Secret, prev, nullTS(e.PreviousSecretExpiresAt),
		e.FromConfig, e.DisabledReason, nullTS(e.FailingSince), ts(e.CreatedAt), ts(e.UpdatedAt))
	if isUnique(err) {
		return &auth.Error{Code: auth.ECONFLICT, Message: "a webhook endpoint with this id exists"}
	}
	return err
}

// WebhookEndpoint returns an endpoint or auth.ErrNotFound.
func (db *DB) WebhookEndpoint(ctx context.Context, id string) (*auth.WebhookEndpoint, error) {
	return scanWebhookEndpoint(db.queryRow(ctx, `SELECT `+webhookEndpointCols+` FROM webhook_endpoints WHERE id = ?`, id))
}

// ListWebhookEndpoints returns every endpoint, oldest first.
func (db *DB) ListWebhookEndpoints(ctx context.Context) ([]*auth.WebhookEndpoint, error) {
	return queryAll(ctx, db, scanWebhookEndpoint, `SELECT `+webhookEndpointCols+` FROM webhook_endpoints ORDER BY created_at, id`)
}

// UpdateWebhookEndpoint replaces an endpoint's settings and state (not its
// secrets).
func (db *DB) UpdateWebhookEndpoint(ctx context.Context, e *auth.WebhookEndpoint) error {
	events, err := joinList("events", e.Events)
	if err != nil {
		return err
	}
	return affectedOne(db.exec(ctx, `UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, enabled = ?,
		from_config = ?, disabled_reason = ?, failing_since = ?, updated_at = ? WHERE id = ?`,
		e.URL, events, e.Description, e.Enabled, e.FromConfig, e.DisabledReason, nullTS(e.FailingSince), ts(e.UpdatedAt), e.ID))
}

// RotateWebhookSecret makes sealed the current secret and the current one
// the previous. One statement: its right-hand sides read the row as it
// was.
func (db *DB) RotateWebhookSecret(ctx context.Context, id string, sealed []byte, previousUntil, now time.Time) error {
	return affectedOne(db.exec(ctx, `UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = ?,
		secret = ?, updated_at = ? WHERE id = ?`, ts(previousUntil), sealed, ts(now), id))
}

// DeleteWebhookEndpoint deletes an endpoint with its deliveries (their
// attempts cascade).
func (db *DB) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM webhook_deliveries WHERE endpoint_id = ?`), id); err != nil {
			return err
		}
		return affectedOne(tx.ExecContext(ctx, db.rebind(`DELETE FROM webhook_endpoints WHERE id = ?`), id))
	})
}

// SetWebhookEndpointFailing starts a failure streak (only when none runs)
// or, with since nil, ends it.
func (db *DB) SetWebhookEndpointFailing(ctx context.Context, id string, since *time.Time) error {
	if since == nil {
		_, err := db.exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`, id)
		return err
	}
	_, err := db.exec(ctx, `UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL`, ts(*since), id)
	return err
}

// DisableWebhookEndpoint disables an enabled endpoint; it reports whether
// this call did, so that of concurrent workers only one audits it.
func (db *DB) DisableWebhookEndpoint(ctx context.Context, id, reason string, now time.Time) (bool, error) {
	err := affectedOne(db.exec(ctx, `UPDATE webhook_endpoints SET enabled = ?, disabled_reason = ?, updated_at = ? WHERE id = ? AND enabled = ?`,
		false, reason, ts(now), id, true))
	if errors.Is(err, auth.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// insertWebhookMessages queues messages in tx, due at their creation.
func (db *DB) insertWebhookMessages(ctx context.Context, tx *sql.Tx, msgs []*auth.WebhookMessage) error {
	for _, m := range msgs {
		if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO webhook_deliveries (id, endpoint_id, type, payload, state, created_at, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), m.ID, m.EndpointID, m.Type, string(m.Payload), auth.DeliveryPending, ts(m.CreatedAt), ts(m.CreatedAt)); err != nil {
			return err
		}
	}
	return nil
}

// EnqueueWebhooks queues messages that belong to no audit event.
func (db *DB) EnqueueWebhooks(ctx context.Context, msgs []*auth.WebhookMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	return db.tx(ctx, func(tx *sql.Tx) error { return db.insertWebhookMessages(ctx, tx, msgs) })
}

const webhookDeliveryCols = `id, endpoint_id, type, payload, state, attempt_count, created_at, next_attempt_at`

func scanWebhookDelivery(row scanner) (*auth.WebhookDelivery, error) {
	var (
		d         auth.WebhookDelivery
		payload   string
		cr, nextA int64
	)
	err := row.Scan(&d.ID, &d.EndpointID, &d.Type, &payload, &d.State, &d.AttemptCount, &cr, &nextA)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	d.Payload, d.CreatedAt, d.NextAttemptAt = []byte(payload), fromTS(cr), fromTS(nextA)
	return &d, nil
}

// ListWebhookDeliveries returns a page of an endpoint's deliveries, newest
// first (message ids are ULIDs: they sort by time), with their attempts.
func (db *DB) ListWebhookDeliveries(ctx context.Context, endpointID, state, beforeID string, limit int) ([]*auth.WebhookDelivery, error) {
	q := `SELECT ` + webhookDeliveryCols + ` FROM webhook_deliveries WHERE endpoint_id = ?`
	args := []any{endpointID}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, state)
	}
	if beforeID != "" {
		q += ` AND id < ?`
		args = append(args, beforeID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	ds, err := queryAll(ctx, db, scanWebhookDelivery, q, args...)
	if err != nil || len(ds) == 0 {
		return ds, err
	}
	byID := make(map[string]*auth.WebhookDelivery, len(ds))
	ids := make([]any, len(ds))
	for i, d := range ds {
		byID[d.ID], ids[i] = d, d.ID
	}
	rows, err := db.r.QueryContext(ctx, db.rebind(`SELECT delivery_id, at, status_code, duration_ms, error, response_excerpt
		FROM webhook_attempts WHERE delivery_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY at`), ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			a  auth.WebhookAttempt
			at int64
		)
		if err := rows.Scan(&id, &at, &a.StatusCode, &a.DurationMS, &a.Error, &a.ResponseExcerpt); err != nil {
			return nil, err
		}
		a.At = fromTS(at)
		if d := byID[id]; d != nil {
			d.Attempts = append(d.Attempts, a)
		}
	}
	return ds, rows.Err()
}

// RequeueWebhookDelivery makes a delivery pending and due at now again,
// with a fresh attempt count.
func (db *DB) RequeueWebhookDelivery(ctx context.Context, endpointID, id string, now time.Time) error {
	return affectedOne(db.exec(ctx, `UPDATE webhook_deliveries SET state = ?, attempt_count = 0, next_attempt_at = ?, finished_at = NULL
		WHERE id = ? AND endpoint_id = ?`, auth.DeliveryPending, ts(now), id, endpointID))
}

// ClaimWebhookDelivery leases the next due delivery (see
// auth.WebhookStore). The UPDATE re-checks the state and the lease, so two
// claimers never get the same delivery.
func (db *DB) ClaimWebhookDelivery(ctx context.Context, now time.Time, lease time.Duration) (*auth.WebhookDelivery, error) {
	// On PostgreSQL, workers claiming at the same moment skip the rows
	// another one has locked (SQLite has one writer).
	skip := ""
	if db.dialect == dialectPostgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	return scanWebhookDelivery(db.w.QueryRowContext(ctx, db.rebind(`UPDATE webhook_deliveries SET locked_until = ?, attempt_count = attempt_count + 1
		WHERE id = (SELECT id FROM webhook_deliveries WHERE state = ? AND next_attempt_at <= ? AND locked_until <= ? ORDER BY next_attempt_at, id LIMIT 1`+skip+`)
		  AND state = ? AND locked_until <= ?
		RETURNING `+webhookDeliveryCols), ts(now.Add(lease)), auth.DeliveryPending, ts(now), ts(now), auth.DeliveryPending, ts(now)))
}

// maxAttemptError bounds the error text kept with an attempt.
const maxAttemptError = 1000

// RecordWebhookAttempt logs an attempt and moves the delivery on, in one
// transaction.
func (db *DB) RecordWebhookAttempt(ctx context.Context, id string, a *auth.WebhookAttempt, state string, next time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if state == auth.DeliveryPending {
			err = affectedOne(tx.ExecContext(ctx, db.rebind(`UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, locked_until = 0 WHERE id = ?`),
				state, ts(next), id))
		} else {
			at := time.Now()
			if a != nil {
				at = a.At
			}
			err = affectedOne(tx.ExecContext(ctx, db.rebind(`UPDATE webhook_deliveries SET state = ?, finished_at = ?, locked_until = 0 WHERE id = ?`),
				state, ts(at), id))
		}
		if err != nil || a == nil {
			return err
		}
		msg := a.Error
		if len(msg) > maxAttemptError {
			msg = strings.ToValidUTF8(msg[:maxAttemptError], "") + "…"
		}
		_, err = tx.ExecContext(ctx, db.rebind(`INSERT INTO webhook_attempts (delivery_id, at, status_code, duration_ms, error, response_excerpt)
			VALUES (?, ?, ?, ?, ?, ?)`), id, ts(a.At), a.StatusCode, a.DurationMS, msg, a.ResponseExcerpt)
		return err
	})
}

// WebhookQueueDepth counts pending deliveries.
func (db *DB) WebhookQueueDepth(ctx context.Context) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE state = ?`, auth.DeliveryPending).Scan(&n)
	return n, err
}

// PurgeWebhookDeliveries deletes finished deliveries queued before t, with
// their attempts (GATEHOUSE_WEBHOOK_RETENTION).
func (db *DB) PurgeWebhookDeliveries(ctx context.Context, before time.Time) error {
	_, err := db.exec(ctx, `DELETE FROM webhook_deliveries WHERE state <> ? AND created_at < ?`, auth.DeliveryPending, ts(before))
	return err
}

// UsersWithRole returns the accounts that have role. Roles are stored
// space-separated: LIKE narrows the rows, HasRole decides.
func (db *DB) UsersWithRole(ctx context.Context, role string) ([]*auth.User, error) {
	if role == "" || strings.ContainsAny(role, " \t\r\n") {
		return nil, nil
	}
	pattern := "% " + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(role) + " %"
	users, err := queryAll(ctx, db, scanUser, `SELECT `+userCols+` FROM users WHERE ' ' || roles || ' ' LIKE ? ESCAPE '\' ORDER BY email`, pattern)
	if err != nil {
		return nil, err
	}
	out := users[:0]
	for _, u := range users {
		if u.HasRole(role) {
			out = append(out, u)
		}
	}
	return out, nil
}
