-- +goose Up
-- Indexes for the admin console's overview (SPEC §17), whose counts must
-- stay cheap with 100 000 users and millions of audit events:
-- users by creation time with the flags it counts (one index-only pass
-- answers total, new, unverified and disabled), lockouts by end, mail
-- jobs given up by when, webhook deliveries by state and end. Sign-ins
-- are counted by audit_events_type (type, at).
CREATE INDEX users_overview ON users(created_at, email_verified, disabled);
CREATE INDEX lockouts_locked_until ON lockouts(locked_until);
CREATE INDEX mail_jobs_failed ON mail_jobs(failed, done_at);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries(state, finished_at);

-- +goose Down
DROP INDEX webhook_deliveries_finished;
DROP INDEX mail_jobs_failed;
DROP INDEX lockouts_locked_until;
DROP INDEX users_overview;
