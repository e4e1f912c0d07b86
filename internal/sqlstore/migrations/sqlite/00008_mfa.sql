-- +goose Up
-- How each session and refresh family was signed in to (SPEC §13): the
-- assurance level, the RFC 8176 methods (space-separated) and when, in
-- Unix microseconds (0: the row predates this migration; read created_at).
ALTER TABLE sessions ADD COLUMN acr TEXT NOT NULL DEFAULT 'aal1';
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_families ADD COLUMN acr TEXT NOT NULL DEFAULT 'aal1';
ALTER TABLE refresh_families ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_families ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;

-- The cookie hot path reads the new columns too: the covering index of
-- migration 7 must hold them, or every request visits the table again.
DROP INDEX sessions_by_hash_cover;
CREATE INDEX sessions_by_hash_cover ON sessions(token_hash, id, user_id, created_at, last_seen_at, expires_at, ip, user_agent, acr, amr, auth_time);

-- TOTP authenticators: pending (confirmed = 0, expires_at set) until
-- confirmed (expires_at NULL). The unique index allows one of each per
-- user. The secret is sealed (AES-256-GCM, AAD = id and user id).
CREATE TABLE totp_authenticators (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sealed       BLOB NOT NULL,
    confirmed    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER
);
CREATE UNIQUE INDEX totp_authenticators_user ON totp_authenticators(user_id, confirmed);
CREATE INDEX totp_authenticators_expiry ON totp_authenticators(expires_at);

-- Recovery codes: a set per user (its size when made, for "remaining"),
-- and the codes left, as HMAC-SHA256 under a key derived from the root
-- secret. Using a code deletes it.
CREATE TABLE recovery_code_sets (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    total      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES recovery_code_sets(user_id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- Sign-ins awaiting their second factor (the mfa_token, stored hashed).
CREATE TABLE mfa_challenges (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL DEFAULT '',
    scope      TEXT NOT NULL DEFAULT '',
    amr        TEXT NOT NULL DEFAULT '',
    auth_time  INTEGER NOT NULL,
    finish     INTEGER NOT NULL,
    enrol_only INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges(expires_at);

-- +goose Down
DROP TABLE mfa_challenges;
DROP TABLE recovery_codes;
DROP TABLE recovery_code_sets;
DROP TABLE totp_authenticators;
DROP INDEX sessions_by_hash_cover;
ALTER TABLE refresh_families DROP COLUMN auth_time;
ALTER TABLE refresh_families DROP COLUMN amr;
ALTER TABLE refresh_families DROP COLUMN acr;
ALTER TABLE sessions DROP COLUMN auth_time;
ALTER TABLE sessions DROP COLUMN amr;
ALTER TABLE sessions DROP COLUMN acr;
CREATE INDEX sessions_by_hash_cover ON sessions(token_hash, id, user_id, created_at, last_seen_at, expires_at, ip, user_agent);
