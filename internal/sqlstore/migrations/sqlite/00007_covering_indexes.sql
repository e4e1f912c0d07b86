-- +goose Up
-- Covering indexes for the cookie hot path (session + account in one
-- query): every column it reads is in the index, so SQLite never visits
-- the tables. The password hash is deliberately not part of them.
CREATE INDEX sessions_by_hash_cover ON sessions(token_hash, id, user_id, created_at, last_seen_at, expires_at, ip, user_agent);
CREATE INDEX users_by_id_cover ON users(id, email, email_verified, name, roles, disabled, created_at, updated_at);

-- +goose Down
DROP INDEX users_by_id_cover;
DROP INDEX sessions_by_hash_cover;
