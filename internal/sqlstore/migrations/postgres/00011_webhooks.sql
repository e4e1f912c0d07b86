-- +goose Up
-- Webhook endpoints (SPEC §16). secret and previous_secret are sealed
-- (AES-256-GCM under a key derived from the root secret; the AAD names the
-- endpoint), never stored in the clear. events is a JSON array.
CREATE TABLE webhook_endpoints (
    id                         TEXT PRIMARY KEY,
    url                        TEXT NOT NULL,
    events                     TEXT NOT NULL DEFAULT '[]',
    description                TEXT NOT NULL DEFAULT '',
    enabled                    BOOLEAN NOT NULL DEFAULT TRUE,
    secret                     BYTEA NOT NULL,
    previous_secret            BYTEA,
    previous_secret_expires_at BIGINT,
    from_config                BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_reason            TEXT NOT NULL DEFAULT '',
    failing_since              BIGINT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

-- The webhook outbox: one row per message and endpoint, written in the
-- transaction of the audit event it reports, drained by the delivery
-- workers of every node with leases like mail_jobs. No foreign key to the
-- endpoint: a row queued while its endpoint is being deleted must not fail
-- the sign-in that wrote it (the worker drops such rows).
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL,
    type            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempt_count   BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    finished_at     BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);

-- The delivery log: one row per attempt.
CREATE TABLE webhook_attempts (
    delivery_id      TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at               BIGINT NOT NULL,
    status_code      BIGINT NOT NULL DEFAULT 0,
    duration_ms      BIGINT NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    response_excerpt TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, at);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
