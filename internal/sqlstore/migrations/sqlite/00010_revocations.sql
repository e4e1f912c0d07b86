-- +goose Up
-- The revocation feed (SPEC §15): one row per revocation, written in the
-- transaction of the revocation itself (an outbox). seq is the feed's
-- cursor (AUTOINCREMENT: never reused after a purge); SQLite has one
-- writer, so seq order is commit order. data is the event's JSON. Rows
-- live for the access-token lifetime plus five minutes.
CREATE TABLE revocation_events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    at   INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX revocation_events_at ON revocation_events (at);

-- +goose Down
DROP TABLE revocation_events;
