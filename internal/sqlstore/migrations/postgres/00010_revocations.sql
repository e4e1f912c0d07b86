-- +goose Up
-- The revocation feed (SPEC §15): one row per revocation, written in the
-- transaction of the revocation itself (an outbox). seq is the feed's
-- cursor; inserts take a transaction-scoped advisory lock first, so seq
-- order is commit order and a reader that has seen seq n has seen every
-- event before it. data is the event's JSON (text: it reads back byte for
-- byte). Rows live for the access-token lifetime plus five minutes.
CREATE TABLE revocation_events (
    seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type TEXT NOT NULL,
    at   BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX revocation_events_at ON revocation_events (at);

-- +goose Down
DROP TABLE revocation_events;
