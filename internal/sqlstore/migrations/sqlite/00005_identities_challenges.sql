-- +goose Up
CREATE TABLE identities (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    subject        TEXT NOT NULL,
    email          TEXT NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user ON identities(user_id);

-- Short-lived single-use ceremony state (OIDC flows, passkey challenges).
CREATE TABLE challenges (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE challenges;
DROP TABLE identities;
