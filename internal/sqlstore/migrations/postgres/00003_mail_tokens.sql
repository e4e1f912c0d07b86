-- +goose Up
-- Single-use tokens (password reset, email verification); hash only.
CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX one_time_tokens_user ON one_time_tokens(user_id, purpose);

-- The durable mail queue. Jobs name what to send; no secret is stored.
CREATE TABLE mail_jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    user_id         TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    done_at         BIGINT,
    failed          BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_jobs_due ON mail_jobs(done_at, next_attempt_at);

-- +goose Down
DROP TABLE mail_jobs;
DROP TABLE one_time_tokens;
