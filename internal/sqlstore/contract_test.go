package sqlstore_test

import (
	"testing"

	"gatehouse/internal/auth"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/storetest"
)

// The contracts of the stores of user-owned and single-use records, on
// both dialects. The DB is each suite's backend as it is: its CreateUser
// makes the users the records' foreign keys refer to, and its DeleteUser
// runs the cascade tests.

func sqliteDB(t *testing.T) *sqlstore.DB {
	db, _ := openSQLite(t)
	return db
}

func TestSQLiteTokens(t *testing.T) {
	storetest.RunTokens(t, func(t *testing.T) storetest.TokenBackend { return sqliteDB(t) })
}

func TestPostgresTokens(t *testing.T) {
	pg := postgres(t)
	storetest.RunTokens(t, func(t *testing.T) storetest.TokenBackend { return pg.migrated(t) })
}

func TestSQLiteChallenges(t *testing.T) {
	storetest.RunChallenges(t, func(t *testing.T) auth.ChallengeStore { return sqliteDB(t) })
}

func TestPostgresChallenges(t *testing.T) {
	pg := postgres(t)
	storetest.RunChallenges(t, func(t *testing.T) auth.ChallengeStore { return pg.migrated(t) })
}

func TestSQLitePasskeys(t *testing.T) {
	storetest.RunPasskeys(t, func(t *testing.T) storetest.PasskeyBackend { return sqliteDB(t) })
}

func TestPostgresPasskeys(t *testing.T) {
	pg := postgres(t)
	storetest.RunPasskeys(t, func(t *testing.T) storetest.PasskeyBackend { return pg.migrated(t) })
}

func TestSQLiteAPIKeys(t *testing.T) {
	storetest.RunAPIKeys(t, func(t *testing.T) storetest.APIKeyBackend { return sqliteDB(t) })
}

func TestPostgresAPIKeys(t *testing.T) {
	pg := postgres(t)
	storetest.RunAPIKeys(t, func(t *testing.T) storetest.APIKeyBackend { return pg.migrated(t) })
}

func TestSQLiteIdentities(t *testing.T) {
	storetest.RunIdentities(t, func(t *testing.T) storetest.IdentityBackend { return sqliteDB(t) })
}

func TestPostgresIdentities(t *testing.T) {
	pg := postgres(t)
	storetest.RunIdentities(t, func(t *testing.T) storetest.IdentityBackend { return pg.migrated(t) })
}

func TestSQLiteMailJobs(t *testing.T) {
	storetest.RunMailJobs(t, func(t *testing.T) storetest.MailJobBackend { return sqliteDB(t) })
}

func TestPostgresMailJobs(t *testing.T) {
	pg := postgres(t)
	storetest.RunMailJobs(t, func(t *testing.T) storetest.MailJobBackend { return pg.migrated(t) })
}
