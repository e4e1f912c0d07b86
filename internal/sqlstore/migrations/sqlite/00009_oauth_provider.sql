-- +goose Up
-- OAuth2 / OpenID Connect provider mode (SPEC §14).

-- Registered clients. The lists are JSON arrays of strings (text): a
-- redirect URI reads back exactly as registered, whatever it contains, so
-- that the authorization endpoint can compare it as an exact string. The
-- secrets are hex SHA-256; the previous one works until its expiry after a
-- rotation.
CREATE TABLE oauth_clients (
    id                         TEXT PRIMARY KEY,
    name                       TEXT NOT NULL DEFAULT '',
    type                       TEXT NOT NULL,
    redirect_uris              TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris  TEXT NOT NULL DEFAULT '[]',
    grant_types                TEXT NOT NULL DEFAULT '[]',
    scopes                     TEXT NOT NULL DEFAULT '[]',
    first_party                INTEGER NOT NULL DEFAULT 0,
    require_pkce               INTEGER NOT NULL DEFAULT 1,
    token_endpoint_auth_method TEXT NOT NULL DEFAULT '',
    id_token_alg               TEXT NOT NULL DEFAULT '',
    id_token_claims            INTEGER NOT NULL DEFAULT 0,
    logo_url                   TEXT NOT NULL DEFAULT '',
    secret_hash                TEXT NOT NULL DEFAULT '',
    previous_secret_hash       TEXT NOT NULL DEFAULT '',
    previous_secret_expires_at INTEGER,
    from_config                INTEGER NOT NULL DEFAULT 0,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
);

-- What each user granted each client (scopes: a JSON array). A consent
-- goes with its user and with its client.
CREATE TABLE oauth_consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;
CREATE INDEX oauth_consents_client ON oauth_consents(client_id);

-- Authorization codes, by the SHA-256 of the code. used_at and family_id
-- are set by the one redemption; a second presentation finds them.
CREATE TABLE oauth_codes (
    hash           TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL DEFAULT '',
    nonce          TEXT NOT NULL DEFAULT '',
    code_challenge TEXT NOT NULL DEFAULT '',
    session_id     TEXT NOT NULL DEFAULT '',
    acr            TEXT NOT NULL DEFAULT '',
    amr            TEXT NOT NULL DEFAULT '',
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    family_id      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX oauth_codes_expiry ON oauth_codes(expires_at);
CREATE INDEX oauth_codes_client ON oauth_codes(client_id);
CREATE INDEX oauth_codes_user ON oauth_codes(user_id);

-- Deleting a client revokes its refresh families: find them without
-- reading every family.
CREATE INDEX refresh_families_client ON refresh_families(client_id);

-- The browser session an authorization code was issued to: RP-initiated
-- logout ends that session's refresh families too.
ALTER TABLE refresh_families ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
CREATE INDEX refresh_families_session ON refresh_families(session_id) WHERE session_id <> '';

-- +goose Down
DROP INDEX refresh_families_session;
ALTER TABLE refresh_families DROP COLUMN session_id;
DROP INDEX refresh_families_client;
DROP TABLE oauth_codes;
DROP TABLE oauth_consents;
DROP TABLE oauth_clients;
