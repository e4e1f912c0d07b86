package auth_test

// Attack tests for the rules of SPEC §18 that this package enforces. Each
// performs the attack and fails if the rule breaks.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"gatehouse/internal/auth"
	"gatehouse/internal/password"
)

func wantReason(t *testing.T, what string, err error, code, reason string) {
	t.Helper()
	var de *auth.Error
	if !errors.As(err, &de) || de.Code != code || de.Reason != reason {
		t.Fatalf("%s: err = %v, want code %q reason %q", what, err, code, reason)
	}
}

// accessPrincipal is the caller behind an access token, as the HTTP layer
// builds it from the verified claims.
func (h *harness) accessPrincipal(t *testing.T, tok string) *auth.Principal {
	t.Helper()
	c, err := h.keys.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return &auth.Principal{UserID: c.Subject, Kind: auth.KindAccessToken, Scopes: c.Scopes, Roles: c.Roles, ClientID: c.ClientID,
		ACR: c.ACR, AMR: c.AMR, AuthTime: c.AuthTime}
}

// H1: a token narrowed to some scopes cannot mint an API key with more,
// nor add a credential that signs in.
func TestH1CredentialMintsOnlyWhatItHolds(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin := h.insertUser(t, "root@example.com", h.hash(t, goodPass), false, "admin")
	narrow := h.accessPrincipal(t, h.grant(t, "root@example.com", goodPass, "read write").AccessToken)
	full := h.accessPrincipal(t, h.grant(t, "root@example.com", goodPass, "").AccessToken)

	for _, scopes := range [][]string{{"admin"}, {"introspect"}, {"read", "admin"}} {
		k, secret, err := h.svc.CreateAPIKey(ctx, narrow, admin, auth.CreateAPIKeyInput{Name: "escalate", Scopes: scopes}, meta)
		wantReason(t, "narrowed token minting "+strings.Join(scopes, " "), err, auth.EFORBIDDEN, auth.ReasonInsufficientScope)
		if k != nil || secret != "" {
			t.Fatalf("a refused key was returned: %+v", k)
		}
	}
	if keys, _ := h.svc.ListAPIKeys(ctx, admin.ID); len(keys) != 0 {
		t.Fatalf("refused requests stored %d keys", len(keys))
	}
	// Within what it holds, the narrowed token may mint.
	if _, _, err := h.svc.CreateAPIKey(ctx, narrow, admin, auth.CreateAPIKeyInput{Name: "ok", Scopes: []string{"read"}}, meta); err != nil {
		t.Fatalf("narrowed token minting read: %v", err)
	}
	// A token holding admin holds introspect too (the one rule).
	if _, _, err := h.svc.CreateAPIKey(ctx, full, admin, auth.CreateAPIKeyInput{Name: "rs", Scopes: []string{"introspect"}}, meta); err != nil {
		t.Fatalf("admin token minting introspect: %v", err)
	}
	// A user's roles bound it too, whatever the token says.
	user := h.insertUser(t, "plain@example.com", h.hash(t, goodPass), false)
	forged := &auth.Principal{UserID: user.ID, Kind: auth.KindAccessToken, Scopes: []string{"read", "write", "admin"}}
	_, _, err := h.svc.CreateAPIKey(ctx, forged, user, auth.CreateAPIKeyInput{Name: "x", Scopes: []string{"admin"}}, meta)
	wantReason(t, "roles without admin", err, auth.EFORBIDDEN, auth.ReasonInsufficientScope)
	// A key of another account, or an API key as the caller, never.
	if _, _, err := h.svc.CreateAPIKey(ctx, full, user, auth.CreateAPIKeyInput{Name: "x", Scopes: []string{"read"}}, meta); auth.ErrorCode(err) != auth.EFORBIDDEN {
		t.Fatalf("minting for another account: %v", err)
	}
	keyCaller := &auth.Principal{UserID: admin.ID, Kind: auth.KindAPIKey, Scopes: []string{"read", "write", "admin"}}
	if _, _, err := h.svc.CreateAPIKey(ctx, keyCaller, admin, auth.CreateAPIKeyInput{Name: "x", Scopes: []string{"read"}}, meta); auth.ErrorCode(err) != auth.EFORBIDDEN {
		t.Fatalf("an API key minting a key: %v", err)
	}

	// Adding a sign-in method: every scope the roles allow, and no API key.
	wantReason(t, "narrowed token adding a sign-in method", h.svc.CanAddSignInMethod(ctx, narrow), auth.EFORBIDDEN, auth.ReasonInsufficientScope)
	if err := h.svc.CanAddSignInMethod(ctx, keyCaller); auth.ErrorCode(err) != auth.EFORBIDDEN {
		t.Fatalf("an API key adding a sign-in method: %v", err)
	}
	if err := h.svc.CanAddSignInMethod(ctx, full); err != nil {
		t.Fatalf("a full token adding a sign-in method: %v", err)
	}
	pk := &auth.Passkey{ID: auth.NewID(), UserID: admin.ID, Name: "planted", CredentialID: []byte("planted-credential"), Credential: []byte(`{}`), CreatedAt: h.clock.Now()}
	wantReason(t, "AddPasskey with a narrowed token", h.svc.AddPasskey(ctx, narrow, pk, meta), auth.EFORBIDDEN, auth.ReasonInsufficientScope)
	if keys, _ := h.svc.ListPasskeys(ctx, admin.ID); len(keys) != 0 {
		t.Fatalf("a refused passkey was stored")
	}
	if err := h.svc.AddPasskey(ctx, full, pk, meta); err != nil {
		t.Fatalf("AddPasskey with a full token: %v", err)
	}
}

// H2: the real owner of an address verifying it without a credential of
// the account ends everything the registrant set up; the password stays.
func TestH2VerificationReclaimsPreRegisteredAccount(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const attackerPass = "attacker's own password 1"
	acct := h.register(t, "victim@example.com", attackerPass)
	acct = h.user(t, acct.ID)
	// The attacker signs in and sets up every way back in.
	c, err := h.svc.SignInForTest(ctx, acct, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	rt := h.grant(t, "victim@example.com", attackerPass, "").RefreshToken
	_, keySecret, err := h.svc.CreateAPIKey(ctx, h.svc.SessionPrincipal(c.Session, acct), acct, auth.CreateAPIKeyInput{Name: "backdoor", Scopes: []string{"read"}}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.AddPasskey(ctx, h.svc.SessionPrincipal(c.Session, acct), &auth.Passkey{ID: auth.NewID(), UserID: acct.ID, Name: "backdoor",
		CredentialID: []byte("attacker-cred"), Credential: []byte(`{}`), CreatedAt: h.clock.Now()}, meta); err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateIdentity(ctx, &auth.Identity{ID: auth.NewID(), UserID: acct.ID, Provider: "corp", Subject: "attacker", Email: "victim@example.com", CreatedAt: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	// A second factor of the attacker's would lock the owner out after a
	// reset.
	sp := h.svc.SessionPrincipal(c.Session, acct)
	e, err := h.svc.BeginTOTP(ctx, sp, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.ConfirmTOTP(ctx, sp, e.ID, mfaCodeAt(t, e.Secret, h.clock.Now()), meta); err != nil {
		t.Fatal(err)
	}

	// The owner follows the mailed link, signed in to nothing.
	tok, err := h.svc.IssueToken(ctx, acct, auth.PurposeVerify)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.VerifyEmail(ctx, tok, "", meta); err != nil {
		t.Fatalf("VerifyEmail: %v", err)
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, c.SessionToken); err == nil {
		t.Fatal("the registrant's session survived verification")
	}
	h.refuseRefresh(t, rt)
	if _, _, _, err := h.svc.AuthenticateAPIKey(ctx, keySecret); err == nil {
		t.Fatal("the registrant's API key survived verification")
	}
	if keys, _ := h.svc.ListPasskeys(ctx, acct.ID); len(keys) != 0 {
		t.Fatalf("%d passkeys survived verification", len(keys))
	}
	if ids := h.identities(t, acct.ID); len(ids) != 0 {
		t.Fatalf("%d linked identities survived verification", len(ids))
	}
	if st, err := h.svc.MFAStatus(ctx, acct.ID); err != nil || st.TOTP != nil || st.Recovery != nil {
		t.Fatalf("the registrant's TOTP authenticator or recovery codes survived verification: %+v, %v", st, err)
	}
	if !h.user(t, acct.ID).EmailVerified {
		t.Fatal("the email is not verified")
	}
	if evs := h.audit(t, auth.AuditFilter{UserID: acct.ID, Type: auth.EventAccountReclaimed}); len(evs) != 1 {
		t.Fatalf("%d account.reclaimed events, want 1", len(evs))
	}
	// The password stays (a reset ends it).
	if _, err := h.svc.Login(ctx, "victim@example.com", attackerPass, meta); err != nil {
		t.Fatalf("the password should stay until a reset: %v", err)
	}
}

// H2, the other half: verifying with the account's own credential removes
// nothing.
func TestH2VerificationWithOwnCredentialKeepsEverything(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	acct := h.user(t, h.register(t, "owner@example.com", goodPass).ID)
	c, err := h.svc.SignInForTest(ctx, acct, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	rt := h.grant(t, "owner@example.com", goodPass, "").RefreshToken
	tok, err := h.svc.IssueToken(ctx, acct, auth.PurposeVerify)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.VerifyEmail(ctx, tok, acct.ID, meta); err != nil {
		t.Fatalf("VerifyEmail: %v", err)
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, c.SessionToken); err != nil {
		t.Fatalf("own session ended by own verification: %v", err)
	}
	h.refresh(t, rt, "")
	if evs := h.audit(t, auth.AuditFilter{UserID: acct.ID, Type: auth.EventAccountReclaimed}); len(evs) != 0 {
		t.Fatalf("account.reclaimed audited for the owner's own verification")
	}
	// A credential of another account is no credential of this one.
	other := h.user(t, h.register(t, "other@example.com", goodPass).ID)
	c2, err := h.svc.SignInForTest(ctx, other, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.SetEmailVerified(ctx, other.ID, false, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	tok2, err := h.svc.IssueToken(ctx, other, auth.PurposeVerify)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.VerifyEmail(ctx, tok2, acct.ID, meta); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, c2.SessionToken); err == nil {
		t.Fatal("verifying with another account's credential kept the sessions")
	}
}

// H3: the service refuses to build without its stores or keys, and a
// cursor sealed under another root secret is refused.
func TestH3ConstructorAndPurposeKeys(t *testing.T) {
	h := newHarness(t)
	base := func() auth.Options {
		db := h.db
		return auth.Options{
			Stores: auth.Stores{Users: db, Refresh: db, Audit: db, Sessions: db, Tokens: db, APIKeys: db, MFA: db,
				Identities: db, Passkeys: db, Challenges: db, Mail: db, Limiter: db, Lockout: db,
				Clients: db, Consents: db, AuthCodes: db, Webhooks: db, Stats: db},
			Hasher: h.hasher, Policy: passwordPolicy(), Issuer: h.keys,
			Roles:      auth.NewRoleModel(map[string][]string{"user": {"read"}}, []string{"read"}),
			RootSecret: []byte(testRootSecret),
			Config:     auth.Config{AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour, SessionTTL: time.Hour, SessionIdleTTL: time.Minute},
		}
	}
	if _, err := auth.New(base()); err != nil {
		t.Fatalf("New with everything: %v", err)
	}
	for name, change := range map[string]func(o *auth.Options){
		"no users store":      func(o *auth.Options) { o.Stores.Users = nil },
		"no challenge store":  func(o *auth.Options) { o.Stores.Challenges = nil },
		"no mail queue":       func(o *auth.Options) { o.Stores.Mail = nil },
		"no limiter":          func(o *auth.Options) { o.Stores.Limiter = nil },
		"no lockout store":    func(o *auth.Options) { o.Stores.Lockout = nil },
		"no hasher":           func(o *auth.Options) { o.Hasher = nil },
		"no issuer":           func(o *auth.Options) { o.Issuer = nil },
		"no roles":            func(o *auth.Options) { o.Roles = nil },
		"no root secret":      func(o *auth.Options) { o.RootSecret = nil },
		"short root secret":   func(o *auth.Options) { o.RootSecret = []byte("0123456789abcdef0123456789abcde") },
		"no session lifetime": func(o *auth.Options) { o.Config.SessionTTL = 0 },
	} {
		o := base()
		change(&o)
		if s, err := auth.New(o); err == nil || s != nil {
			t.Errorf("New with %s = %v, %v; want an error", name, s, err)
		}
	}
	o := base()
	o.Stores.Limiter, o.Stores.Lockout, o.Limits = nil, nil, auth.Limits{Off: true}
	if _, err := auth.New(o); err != nil {
		t.Fatalf("New with Limits.Off and no limiter: %v", err)
	}

	// Cursors: one made under another root secret is refused.
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		h.insertUser(t, e, "", false)
	}
	other := newHarnessWith(t, func(_ *harness, o *auth.Options) { o.RootSecret = []byte("another-root-secret-0123456789abcdef") })
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		other.insertUser(t, e, "", false)
	}
	_, foreign, err := other.svc.SearchUsers(context.Background(), "", "", 1)
	if err != nil || foreign == "" {
		t.Fatalf("SearchUsers: %q, %v", foreign, err)
	}
	if _, _, err := h.svc.SearchUsers(context.Background(), "", foreign, 1); err != auth.ErrBadCursor {
		t.Fatalf("a cursor sealed under another secret: %v, want ErrBadCursor", err)
	}
	_, own, err := h.svc.SearchUsers(context.Background(), "", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if own == foreign {
		t.Fatal("two root secrets sealed the same cursor")
	}
	if users, _, err := h.svc.SearchUsers(context.Background(), "", own, 1); err != nil || len(users) != 1 || users[0].Email != "b@example.com" {
		t.Fatalf("own cursor: %v, %v", users, err)
	}
}

// H4: inside the grace window, a repeat of token N gets N's successor only
// while that successor is current; walking back the chain is reuse.
func TestH4GraceDoesNotWalkTheChain(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice@example.com", goodPass)
	n0 := h.grant(t, "alice@example.com", goodPass, "").RefreshToken
	n1 := h.refresh(t, n0, "").RefreshToken
	// A retry of n0 at once is a lost response: the same n1.
	if again := h.refresh(t, n0, "").RefreshToken; again != n1 {
		t.Fatal("a retry inside the grace window got another successor")
	}
	n2 := h.refresh(t, n1, "").RefreshToken
	// n1 was used: n0 is still inside the grace window, but presenting it
	// now walks back the chain.
	h.refuseRefresh(t, n0)
	h.refuseRefresh(t, n2)
	if evs := h.audit(t, auth.AuditFilter{Type: auth.EventRefreshReused}); len(evs) != 1 {
		t.Fatalf("%d refresh.reused events, want 1", len(evs))
	}
}

// H5: introspection and the admin check read the current roles.
func TestH5StaleRoleScopes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin := h.insertUser(t, "root@example.com", h.hash(t, goodPass), false, "admin")
	r := h.grant(t, "root@example.com", goodPass, "")
	p := h.accessPrincipal(t, r.AccessToken)
	if _, err := h.svc.AuthorizeAdmin(ctx, p); err != nil {
		t.Fatalf("AuthorizeAdmin before the demotion: %v", err)
	}
	if err := h.svc.AuthorizeIntrospection(ctx, p); err != nil {
		t.Fatalf("AuthorizeIntrospection before the demotion: %v", err)
	}
	if err := h.svc.SetRoles(ctx, admin.ID, []string{"user"}, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.AuthorizeAdmin(ctx, p); auth.ErrorCode(err) != auth.EFORBIDDEN {
		t.Fatalf("AuthorizeAdmin with a stale admin token: %v, want forbidden", err)
	}
	if err := h.svc.AuthorizeIntrospection(ctx, p); auth.ErrorCode(err) != auth.EFORBIDDEN {
		t.Fatalf("AuthorizeIntrospection with a stale admin token: %v, want forbidden", err)
	}
	c, err := h.keys.Verify(r.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	in, err := h.svc.IntrospectAccessToken(ctx, c)
	if err != nil || in == nil {
		t.Fatalf("IntrospectAccessToken: %+v, %v", in, err)
	}
	if strings.Join(in.Scope, " ") != "read write" {
		t.Fatalf("introspected scope %q, want the token's narrowed to the current roles: read write", in.Scope)
	}
	rin, err := h.svc.IntrospectRefreshToken(ctx, r.RefreshToken)
	if err != nil || rin == nil || strings.Join(rin.Scope, " ") != "read write" {
		t.Fatalf("IntrospectRefreshToken: %+v, %v; want scope read write", rin, err)
	}
}

// rehashRace is the real store with a password reset landing between a
// login's verification and its re-hash write.
type rehashRace struct {
	auth.UserStore
	once sync.Once
	hash string
}

func (r *rehashRace) SetPasswordHash(ctx context.Context, id, old, hash string, now time.Time) error {
	r.once.Do(func() {
		if err := r.UserStore.ChangePassword(ctx, id, r.hash, now); err != nil {
			panic(err)
		}
	})
	return r.UserStore.SetPasswordHash(ctx, id, old, hash, now)
}

// H7: re-hashing on login never overwrites a password changed meanwhile.
func TestH7RehashIsCompareAndSet(t *testing.T) {
	const next = "the new password after a reset"
	var race *rehashRace
	h := newHarnessWith(t, func(h *harness, o *auth.Options) {
		race = &rehashRace{UserStore: o.Stores.Users, hash: h.hash(t, next)}
		o.Stores.Users = race
	})
	ctx := context.Background()
	// A legacy bcrypt hash: a successful login re-hashes it.
	h.insertUser(t, "legacy@example.com", bcryptHash(t, goodPass), false)
	if _, err := h.svc.Login(ctx, "legacy@example.com", goodPass, meta); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if _, err := h.svc.Login(ctx, "legacy@example.com", goodPass, meta); err != auth.ErrInvalidCredentials {
		t.Fatalf("the old password works after the reset: %v", err)
	}
	if _, err := h.svc.Login(ctx, "legacy@example.com", next, meta); err != nil {
		t.Fatalf("the reset password was overwritten by the re-hash: %v", err)
	}
}

func bcryptHash(t *testing.T, plain string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(plain), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func passwordPolicy() password.Policy { return password.Policy{MinLength: 8, MaxLength: 256} }
