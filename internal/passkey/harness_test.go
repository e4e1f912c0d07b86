package passkey_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"time"

	"gatehouse/internal/auth"
	"gatehouse/internal/authtest"
	"gatehouse/internal/passkey"
	"gatehouse/internal/sqlstore"
)

const (
	publicURL = "http://localhost:8080"
	origin    = "http://localhost:8080"
)

var meta = auth.Meta{IP: "203.0.113.9", UserAgent: "passkey-test"}

// harness is a passkey.Service over an auth.Service on a real SQLite store
// in a temporary directory.
type harness struct {
	db  *sqlstore.DB
	svc *auth.Service
	pk  *passkey.Service
}

type tb interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Fatalf(string, ...any)
}

func newHarness(t tb) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	svc := authtest.New(t, db)
	pk, err := passkey.New(publicURL, "Gatehouse", svc)
	if err != nil {
		t.Fatalf("passkey.New: %v", err)
	}
	return &harness{db: db, svc: svc, pk: pk}
}

// user stores an account (no password: passkeys are its way in).
func (h *harness) user(t tb, email string) *auth.User {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &auth.User{ID: auth.NewID(), Email: email, Name: "Test " + email, Roles: []string{"user"}, CreatedAt: now, UpdatedAt: now}
	if err := h.db.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// options decodes begin options.
func options(t tb, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("options %s: %v", raw, err)
	}
	return m
}

func mustJSON(t tb, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	return b
}

func b64(t tb, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

// beginReg starts a registration for u.
func (h *harness) beginReg(t tb, u *auth.User) (map[string]any, string) {
	t.Helper()
	raw, id, err := h.pk.BeginRegistration(context.Background(), owner(u), u)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	return options(t, raw), id
}

// register adds a passkey of a to u and fails the test otherwise.
func (h *harness) register(t tb, u *auth.User, a *testAuthenticator) (*auth.Passkey, *testCredential) {
	t.Helper()
	opts, id := h.beginReg(t, u)
	resp, cred, err := a.Register(opts, nil)
	if err != nil {
		t.Fatalf("authenticator Register: %v", err)
	}
	p, err := h.pk.FinishRegistration(context.Background(), owner(u), u, id, mustJSON(t, resp), meta)
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	return p, cred
}

// beginLogin starts a login ("" for a discoverable one).
func (h *harness) beginLogin(t tb, email string) (map[string]any, string) {
	t.Helper()
	raw, id, err := h.pk.BeginLogin(context.Background(), email)
	if err != nil {
		t.Fatalf("BeginLogin(%q): %v", email, err)
	}
	return options(t, raw), id
}

// assertion begins a login and answers it with cred forged as f says.
func (h *harness) assertion(t tb, email string, a *testAuthenticator, cred *testCredential, f *forge) ([]byte, string) {
	t.Helper()
	opts, id := h.beginLogin(t, email)
	resp, err := a.Assert(opts, cred, f)
	if err != nil {
		t.Fatalf("authenticator Assert: %v", err)
	}
	return mustJSON(t, resp), id
}

// login runs a whole login and returns FinishLogin's answer.
func (h *harness) login(t tb, email string, a *testAuthenticator, cred *testCredential, f *forge) (*auth.User, error) {
	t.Helper()
	body, id := h.assertion(t, email, a, cred, f)
	return h.finishLogin(context.Background(), id, body, meta)
}

// mustLogin expects a login that signs in want.
func (h *harness) mustLogin(t tb, email string, a *testAuthenticator, cred *testCredential, f *forge, want *auth.User) {
	t.Helper()
	got, err := h.login(t, email, a, cred, f)
	if err != nil {
		t.Fatalf("login (email %q): %v", email, err)
	}
	if got == nil || got.ID != want.ID {
		t.Fatalf("login signed in %+v, want user %s", got, want.ID)
	}
}

// refused expects exactly the one passkey-login refusal.
func refused(t tb, u *auth.User, err error) {
	t.Helper()
	if !errors.Is(err, auth.ErrPasskeyLogin) {
		t.Fatalf("FinishLogin = %+v, %v; want ErrPasskeyLogin", u, err)
	}
	if u != nil {
		t.Fatalf("FinishLogin returned user %s with an error", u.ID)
	}
}

// audits returns the user's audit events of one type.
func (h *harness) audits(t tb, userID, typ string) []*auth.AuditEvent {
	t.Helper()
	ev, err := h.db.ListAudit(context.Background(), auth.AuditFilter{UserID: userID, Type: typ})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	return ev
}

// storedCount returns the sign counter in a passkey's stored credential record.
func (h *harness) storedCount(t tb, userID, passkeyID string) uint32 {
	t.Helper()
	keys, err := h.db.ListPasskeys(context.Background(), userID)
	if err != nil {
		t.Fatalf("ListPasskeys: %v", err)
	}
	for _, k := range keys {
		if k.ID == passkeyID {
			var c struct {
				Authenticator struct {
					SignCount uint32 `json:"signCount"`
				} `json:"authenticator"`
			}
			if err := json.Unmarshal(k.Credential, &c); err != nil {
				t.Fatalf("credential record: %v", err)
			}
			return c.Authenticator.SignCount
		}
	}
	t.Fatalf("passkey %s not found", passkeyID)
	return 0
}

func u32(n uint32) *uint32 { return &n }
func flags(b byte) *byte   { return &b }

// owner is u signed in with a session: the credential that may add a
// passkey to u's account.
func owner(u *auth.User) *auth.Principal {
	return &auth.Principal{UserID: u.ID, Kind: auth.KindSession, Scopes: []string{"read", "write"}, Roles: u.Roles, ACR: auth.ACR1, AuthTime: time.Now()}
}

// finishLogin is FinishLogin for a cookie session, returning the account
// the passkey signed in.
func (h *harness) finishLogin(ctx context.Context, id string, body []byte, m auth.Meta) (*auth.User, error) {
	a, err := h.pk.FinishLogin(ctx, id, body, auth.FinishSession, m)
	if err != nil {
		return nil, err
	}
	return a.User, nil
}
