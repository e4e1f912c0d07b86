// Package authtest builds a real auth.Service on a real store for tests of
// the packages around it (mail, passkey): every store is the one database,
// rate limits are off, and the hashing parameters are the cheapest valid
// ones.
package authtest

import (
	"context"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/password"
	"gatehouse/internal/sqlstore"
	"gatehouse/internal/token"
)

// RootSecret is the root secret of the services New builds.
const RootSecret = "authtest-root-secret-0123456789abcdef"

// TB is the part of testing.TB that New uses (a *testing.F is one too).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// New returns a service on db with roles user (read, write) and admin
// (read, write, admin). configure, when given, may change the options
// before the service is built.
func New(t TB, db *sqlstore.DB, configure ...func(*auth.Options)) *auth.Service {
	t.Helper()
	keys, err := token.New(context.Background(), token.Options{
		Issuer: "https://auth.example.test", Audience: "https://api.example.test", Alg: "EdDSA",
		Secret: []byte(RootSecret), Store: db, AccessTTL: 15 * time.Minute,
	})
	if err != nil {
		t.Fatalf("token.New: %v", err)
	}
	params := password.DefaultParams()
	params.Memory, params.Iterations, params.Parallelism = 64, 1, 1
	o := auth.Options{
		Stores: auth.Stores{Users: db, Refresh: db, Audit: db, Sessions: db, Tokens: db, APIKeys: db,
			Identities: db, Passkeys: db, Challenges: db, Mail: db, MFA: db,
			Clients: db, Consents: db, AuthCodes: db, Webhooks: db, Stats: db},
		Limits: auth.Limits{Off: true},
		Hasher: password.NewHasher(params, password.NewLimiter(password.LimiterOptions{Concurrency: 2, MaxWait: time.Minute, MaxQueue: 100})),
		Policy: password.Policy{MinLength: 8, MaxLength: 256},
		Issuer: keys, IDTokens: keys,
		Roles: auth.NewRoleModel(map[string][]string{"user": {"read", "write"}, "admin": {"read", "write", "admin"}},
			[]string{"read", "write", "admin", "introspect"}),
		RootSecret: []byte(RootSecret),
		Config: auth.Config{
			AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 24 * time.Hour,
			SessionTTL: 24 * time.Hour, SessionIdleTTL: time.Hour, DefaultRoles: []string{"user"},
		},
	}
	for _, f := range configure {
		f(&o)
	}
	svc, err := auth.New(o)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	return svc
}
