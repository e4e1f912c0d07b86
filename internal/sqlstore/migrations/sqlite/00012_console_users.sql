-- +goose Up
-- The admin console's user list (SPEC §17): email order, keyset pages.
-- An email prefix search is a range of the unique email index (BINARY,
-- byte order) as it is. These add the name prefix search (lower(name):
-- SQLite folds ASCII letters only; the email rides along so the cursor is
-- checked in the index) and partial email indexes for the flag filters
-- whose matches are usually few, so such a page reads only matches.
CREATE INDEX users_name_lower ON users(lower(name), email);
CREATE INDEX users_disabled_email ON users(email) WHERE disabled = 1;
CREATE INDEX users_unverified_email ON users(email) WHERE email_verified = 0;

-- +goose Down
DROP INDEX users_unverified_email;
DROP INDEX users_disabled_email;
DROP INDEX users_name_lower;
