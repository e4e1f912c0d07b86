package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gatehouse/internal/auth"
)

var _ auth.MailQueue = (*DB)(nil)

// Enqueue adds a mail job, due at once.
func (db *DB) Enqueue(ctx context.Context, j *auth.MailJob) error {
	_, err := db.exec(ctx, `INSERT INTO mail_jobs (id, kind, to_addr, user_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.To, j.UserID, ts(j.CreatedAt), ts(j.CreatedAt))
	return err
}

// ClaimMailJob leases the next due job for lease, or returns
// auth.ErrNotFound. A job whose worker died (a crash, a restart) becomes
// due again when its lease ends. Safe with several workers and nodes: the
// UPDATE re-checks the lease, so two claimers never get the same job.
func (db *DB) ClaimMailJob(ctx context.Context, now time.Time, lease time.Duration) (*auth.MailJob, error) {
	var j auth.MailJob
	var created int64
	// On PostgreSQL, workers claiming at the same moment skip the rows
	// another one has locked instead of all picking the oldest and all but
	// one coming back empty until their next poll. (SQLite has one writer.)
	skip := ""
	if db.dialect == dialectPostgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	err := db.w.QueryRowContext(ctx, db.rebind(`UPDATE mail_jobs SET locked_until = ?, attempts = attempts + 1
		WHERE id = (SELECT id FROM mail_jobs WHERE done_at IS NULL AND next_attempt_at <= ? AND locked_until <= ? ORDER BY next_attempt_at, id LIMIT 1`+skip+`)
		  AND done_at IS NULL AND locked_until <= ?
		RETURNING id, kind, to_addr, user_id, created_at, attempts`), ts(now.Add(lease)), ts(now), ts(now), ts(now)).
		Scan(&j.ID, &j.Kind, &j.To, &j.UserID, &created, &j.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	j.CreatedAt = fromTS(created)
	return &j, nil
}

// FinishMailJob marks a job done (sent, or nothing to send).
func (db *DB) FinishMailJob(ctx context.Context, id string, now time.Time) error {
	_, err := db.exec(ctx, `UPDATE mail_jobs SET done_at = ?, locked_until = 0, last_error = '' WHERE id = ?`, ts(now), id)
	return err
}

// RetryMailJob schedules another attempt.
func (db *DB) RetryMailJob(ctx context.Context, id string, next time.Time, errText string) error {
	_, err := db.exec(ctx, `UPDATE mail_jobs SET next_attempt_at = ?, locked_until = 0, last_error = ? WHERE id = ?`, ts(next), errText, id)
	return err
}

// FailMailJob gives up on a job.
func (db *DB) FailMailJob(ctx context.Context, id string, now time.Time, errText string) error {
	_, err := db.exec(ctx, `UPDATE mail_jobs SET done_at = ?, failed = 1, locked_until = 0, last_error = ? WHERE id = ?`, ts(now), errText, id)
	return err
}

// PurgeMailJobs deletes jobs finished before t.
func (db *DB) PurgeMailJobs(ctx context.Context, before time.Time) error {
	_, err := db.exec(ctx, `DELETE FROM mail_jobs WHERE done_at IS NOT NULL AND done_at < ?`, ts(before))
	return err
}
