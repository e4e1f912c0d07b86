package sqlstore_test

import (
	"testing"

	"gatehouse/internal/sqlstore"
	"gatehouse/internal/storetest"
)

// The session, rate-limit and lockout contracts, on both dialects. The DB
// is a SessionBackend as it is: its CreateUser makes the users the
// sessions' foreign key refers to.

func TestSQLiteSessions(t *testing.T) {
	storetest.RunSessions(t, func(t *testing.T) storetest.SessionBackend {
		db, _ := openSQLite(t)
		return db
	})
}

func TestSQLiteLimits(t *testing.T) {
	storetest.RunLimits(t, func(t *testing.T) storetest.LimitBackend {
		db, _ := openSQLite(t)
		return db
	})
}

func TestPostgresSessions(t *testing.T) {
	pg := postgres(t)
	storetest.RunSessions(t, func(t *testing.T) storetest.SessionBackend {
		return pg.migrated(t)
	})
}

func TestPostgresLimits(t *testing.T) {
	pg := postgres(t)
	storetest.RunLimits(t, func(t *testing.T) storetest.LimitBackend {
		return pg.migrated(t)
	})
}

// migrated opens a fresh, migrated database, dropped when t ends.
func (s *pgServer) migrated(t *testing.T) *sqlstore.DB {
	t.Helper()
	db := s.open(t, s.newDatabase(t))
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}
