package sqlstore

import (
	"context"

	"gatehouse/internal/auth"
)

var _ auth.AdminStatsStore = (*DB)(nil)

// AdminStats counts the admin console's overview in two statements (see
// auth.AdminStatsStore), each count served by an index of migration 13 or
// an older one:
//
//   - users: one pass over users_overview (created_at, email_verified,
//     disabled), which covers every column the aggregate reads;
//   - TOTP: totp_authenticators_user (user_id, confirmed);
//   - sign-ins and lockouts begun: audit_events_type (type, at), a range
//     per type;
//   - lockouts now: lockouts_locked_until;
//   - mail: mail_jobs_due (done_at, …) for the queue, mail_jobs_failed
//     (failed, done_at) for the failures;
//   - webhooks: webhook_deliveries_finished (state, finished_at); the
//     endpoints table is small.
func (db *DB) AdminStats(ctx context.Context, q auth.AdminStatsQuery) (*auth.AdminStats, error) {
	var s auth.AdminStats
	err := db.queryRow(ctx, `SELECT COUNT(*),
			COALESCE(SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN email_verified THEN 0 ELSE 1 END), 0),
			COALESCE(SUM(CASE WHEN disabled THEN 1 ELSE 0 END), 0)
		FROM users`, ts(q.NewSince)).
		Scan(&s.Users, &s.UsersNew, &s.UsersUnverified, &s.UsersDisabled)
	if err != nil {
		return nil, err
	}
	err = db.queryRow(ctx, `SELECT
			(SELECT COUNT(*) FROM totp_authenticators WHERE confirmed),
			(SELECT COUNT(*) FROM audit_events WHERE type = ? AND at >= ?),
			(SELECT COUNT(*) FROM audit_events WHERE type = ? AND at >= ?),
			(SELECT COUNT(*) FROM audit_events WHERE type = ? AND at >= ?),
			(SELECT COUNT(*) FROM lockouts WHERE locked_until > ?),
			(SELECT COUNT(*) FROM mail_jobs WHERE done_at IS NULL),
			(SELECT COUNT(*) FROM mail_jobs WHERE failed = 1 AND done_at >= ?),
			(SELECT COUNT(*) FROM webhook_deliveries WHERE state = ? AND finished_at >= ?),
			(SELECT COUNT(*) FROM webhook_endpoints WHERE NOT enabled)`,
		auth.EventLoginSucceeded, ts(q.SignInsSince),
		auth.EventLoginFailed, ts(q.SignInsSince),
		auth.EventAccountLocked, ts(q.LocksSince),
		ts(q.Now),
		ts(q.FailuresSince),
		auth.DeliveryFailed, ts(q.FailuresSince)).
		Scan(&s.UsersTOTP, &s.SignInsSucceeded, &s.SignInsFailed, &s.LocksBegun, &s.LockedNow,
			&s.MailQueued, &s.MailFailed, &s.WebhooksFailed, &s.WebhookEndpointsDisabled)
	if err != nil {
		return nil, err
	}
	return &s, nil
}
