-- +goose Up
-- The admin console's user list (SPEC §17): email order, keyset pages.
-- A prefix is a range [q, q || U+10FFFF), which selects exactly the
-- strings starting with q only in byte order: the list compares emails
-- and names COLLATE "C" whatever the database's collation, and these
-- indexes have that collation (the unique email index has the default).
-- The name index carries the email so the cursor is checked in the
-- index; the partial indexes serve the flag filters whose matches are
-- usually few, so such a page reads only matches.
CREATE INDEX users_email_bytes ON users (email COLLATE "C");
CREATE INDEX users_name_lower ON users ((lower(name)) COLLATE "C", email COLLATE "C");
CREATE INDEX users_disabled_email ON users (email COLLATE "C") WHERE disabled;
CREATE INDEX users_unverified_email ON users (email COLLATE "C") WHERE NOT email_verified;

-- +goose Down
DROP INDEX users_unverified_email;
DROP INDEX users_disabled_email;
DROP INDEX users_name_lower;
DROP INDEX users_email_bytes;
