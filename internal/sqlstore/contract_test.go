package sqlstore_test

import (
	"testing"

	"gatehouse/internal/auth"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/storetest"
)

// Every store contract of internal/storetest, on both dialects: the one
// list of what the SQL store must do. The DB is each suite's backend as it
// is: its CreateUser makes the users the records' foreign keys refer to,
// and its DeleteUser runs the cascade tests. On PostgreSQL the subtests
// share one pool of migrated databases (see migrated).

func TestSQLiteContracts(t *testing.T) {
	runContracts(t, func(t *testing.T) *sqlstore.DB {
		db, _ := openSQLite(t)
		return db
	})
}

func TestPostgresContracts(t *testing.T) {
	pg := postgres(t)
	runContracts(t, pg.migrated)
}

// runContracts runs every contract; open returns a fresh, migrated, empty
// store.
func runContracts(t *testing.T, open func(t *testing.T) *sqlstore.DB) {
	t.Run("Store", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
	})
	t.Run("Sessions", func(t *testing.T) {
		storetest.RunSessions(t, func(t *testing.T) storetest.SessionBackend { return open(t) })
	})
	t.Run("Limits", func(t *testing.T) {
		storetest.RunLimits(t, func(t *testing.T) storetest.LimitBackend { return open(t) })
	})
	t.Run("Tokens", func(t *testing.T) {
		storetest.RunTokens(t, func(t *testing.T) storetest.TokenBackend { return open(t) })
	})
	t.Run("Challenges", func(t *testing.T) {
		storetest.RunChallenges(t, func(t *testing.T) auth.ChallengeStore { return open(t) })
	})
	t.Run("Passkeys", func(t *testing.T) {
		storetest.RunPasskeys(t, func(t *testing.T) storetest.PasskeyBackend { return open(t) })
	})
	t.Run("APIKeys", func(t *testing.T) {
		storetest.RunAPIKeys(t, func(t *testing.T) storetest.APIKeyBackend { return open(t) })
	})
	t.Run("Identities", func(t *testing.T) {
		storetest.RunIdentities(t, func(t *testing.T) storetest.IdentityBackend { return open(t) })
	})
	t.Run("MailJobs", func(t *testing.T) {
		storetest.RunMailJobs(t, func(t *testing.T) storetest.MailJobBackend { return open(t) })
	})
	t.Run("MFA", func(t *testing.T) {
		storetest.RunMFA(t, func(t *testing.T) storetest.MFABackend { return open(t) })
	})
	t.Run("OAuthProvider", func(t *testing.T) {
		storetest.RunOAuthProvider(t, func(t *testing.T) storetest.OAuthBackend { return open(t) })
	})
	t.Run("Webhooks", func(t *testing.T) {
		storetest.RunWebhooks(t, func(t *testing.T) storetest.WebhookBackend { return open(t) })
	})
	t.Run("AuditStream", func(t *testing.T) {
		storetest.RunAuditStream(t, func(t *testing.T) storetest.AuditStreamBackend { return open(t) })
	})
	t.Run("AdminStats", func(t *testing.T) {
		storetest.RunAdminStats(t, func(t *testing.T) storetest.AdminStatsBackend { return open(t) })
	})
	t.Run("AdminUsers", func(t *testing.T) {
		storetest.RunAdminUsers(t, func(t *testing.T) storetest.AdminUserBackend { return open(t) })
	})
	t.Run("Revocations", func(t *testing.T) {
		storetest.RunRevocations(t, func(t *testing.T) storetest.RevocationBackend {
			db := open(t)
			db.SetRevocationFeed(true, nil)
			return db
		})
	})
}
