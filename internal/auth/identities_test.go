package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// newIDHarness is the harness with every store social login touches: the
// real SQLite store for identities, sessions, API keys, one-time tokens
// and challenges.
func newIDHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, func(c *auth.Config) {
		c.SessionTTL = 24 * time.Hour
		c.SessionIdleTTL = time.Hour
	})
	return h
}

func (h *harness) verifyEmail(t *testing.T, userID string) {
	t.Helper()
	if err := h.db.SetEmailVerified(context.Background(), userID, true, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) identities(t *testing.T, userID string) []*auth.Identity {
	t.Helper()
	ids, err := h.svc.ListIdentities(context.Background(), userID)
	if err != nil {
		t.Fatalf("ListIdentities: %v", err)
	}
	return ids
}

func (h *harness) signIn(t *testing.T, ext auth.ExternalIdentity, linkUser string) *auth.User {
	t.Helper()
	u, err := h.svc.ExternalSignIn(context.Background(), ext, linkUser, meta)
	if err != nil {
		t.Fatalf("ExternalSignIn(%+v, link %q): %v", ext, linkUser, err)
	}
	return u
}

func (h *harness) countIdentities(t *testing.T, provider, subject string) int {
	t.Helper()
	var n int
	if err := h.rawDB(t).QueryRow(`SELECT COUNT(*) FROM identities WHERE provider = ? AND subject = ?`, provider, subject).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func ext(provider, subject, email string, verified bool) auth.ExternalIdentity {
	return auth.ExternalIdentity{Provider: provider, Subject: subject, Email: email, EmailVerified: verified, Name: "Ext User"}
}

// No account has the email: a new account, verified only if the provider
// says so; then the linked (provider, subject) signs in to it whatever
// email the provider reports later.
func TestExternalSignInNewAccount(t *testing.T) {
	h := newIDHarness(t)
	ctx := context.Background()
	u := h.signIn(t, ext("corp", "sub-1", " New@Example.COM ", true), "")
	if u.Email != "new@example.com" || !u.EmailVerified || u.Name != "Ext User" || len(u.Roles) != 1 || u.Roles[0] != "user" {
		t.Fatalf("new account = %+v", u)
	}
	if stored := h.user(t, u.ID); stored.PasswordHash != "" || !stored.EmailVerified {
		t.Fatalf("stored account = %+v", stored)
	}
	ids := h.identities(t, u.ID)
	if len(ids) != 1 || ids[0].Provider != "corp" || ids[0].Subject != "sub-1" || ids[0].Email != "new@example.com" || !ids[0].EmailVerified {
		t.Fatalf("identities = %+v", ids)
	}
	if evs := h.audit(t, auth.AuditFilter{Type: auth.EventUserRegistered, UserID: u.ID}); len(evs) != 1 {
		t.Errorf("user.registered events: %d", len(evs))
	}

	// Keyed by (provider, subject), never by email: the same subject with
	// another email (even one of another account) signs in to its account.
	other := h.register(t, "other@example.com", goodPass)
	h.verifyEmail(t, other.ID)
	again := h.signIn(t, ext("corp", "sub-1", "other@example.com", true), "")
	if again.ID != u.ID {
		t.Fatalf("linked identity signed in to %s, want its account %s", again.ID, u.ID)
	}
	// The same subject at another provider is another identity.
	if x := h.signIn(t, ext("elsewhere", "sub-1", "third@example.com", false), ""); x.ID == u.ID || x.EmailVerified {
		t.Fatalf("(elsewhere, sub-1) = %+v", x)
	}

	// A provider that did not verify the email: a new, unverified account.
	nv := h.signIn(t, ext("corp", "sub-2", "unverified@example.com", false), "")
	if nv.EmailVerified || h.user(t, nv.ID).EmailVerified {
		t.Fatalf("account from an unverified provider email is verified: %+v", nv)
	}

	// No subject, no email.
	_, err := h.svc.ExternalSignIn(ctx, ext("corp", "", "x@example.com", true), "", meta)
	wantCode(t, err, auth.EINVALID, "")
	if _, err := h.svc.ExternalSignIn(ctx, ext("corp", "sub-3", "", true), "", meta); err != auth.ErrNoEmail {
		t.Fatalf("no email: %v, want ErrNoEmail", err)
	}
	if h.countIdentities(t, "corp", "sub-3") != 0 {
		t.Fatalf("an identity without email was stored")
	}
}

// Same email, both verified: the identity is linked to the account, which
// keeps its password and sessions.
func TestExternalSignInBothVerifiedLinks(t *testing.T) {
	h := newIDHarness(t)
	ctx := context.Background()
	local := h.register(t, "ada@example.com", goodPass)
	h.verifyEmail(t, local.ID)
	c, err := h.svc.SignInForTest(ctx, local, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	tok := c.SessionToken
	u := h.signIn(t, ext("corp", "ada-sub", "ADA@example.com", true), "")
	if u.ID != local.ID {
		t.Fatalf("signed in to %s, want the existing account %s", u.ID, local.ID)
	}
	if ids := h.identities(t, local.ID); len(ids) != 1 || ids[0].Subject != "ada-sub" {
		t.Fatalf("identities = %+v", ids)
	}
	if _, err := h.svc.Login(ctx, "ada@example.com", goodPass, meta); err != nil {
		t.Fatalf("the password stopped working: %v", err)
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, tok); err != nil {
		t.Fatalf("the existing session ended: %v", err)
	}
	if evs := h.audit(t, auth.AuditFilter{Type: auth.EventAccountReclaimed}); len(evs) != 0 {
		t.Fatalf("a verified account was reclaimed: %+v", evs)
	}
}

// The pre-hijack attack: an attacker registers the victim's address with a
// password (it stays unverified) and keeps a session, a refresh token and
// an API key in it. The victim then signs in with a provider that verifies
// the address: the account is reclaimed for them — the attacker's password,
// sessions, refresh tokens, API keys, passkeys and identities are gone —
// then verified and linked.
func TestPreHijackedAccountIsReclaimed(t *testing.T) {
	h := newIDHarness(t)
	ctx := context.Background()
	const attackerPass = "attacker knows this one"
	acct := h.register(t, "victim@example.com", attackerPass)
	if h.user(t, acct.ID).EmailVerified {
		t.Fatal("a registered account starts verified")
	}
	// The attacker also slipped in an identity of their own, through a
	// provider that does not verify emails, before the password was set.
	attackerID := &auth.Identity{ID: auth.NewID(), UserID: acct.ID, Provider: "sketchy", Subject: "attacker", Email: "victim@example.com", CreatedAt: h.clock.Now()}
	if err := h.db.CreateIdentity(ctx, attackerID); err != nil {
		t.Fatal(err)
	}
	// And a passkey: registering one needs only a session, not a
	// verified email.
	if err := h.db.CreatePasskey(ctx, &auth.Passkey{ID: auth.NewID(), UserID: acct.ID, Name: "attacker's key",
		CredentialID: []byte("attacker-credential"), Credential: []byte(`{}`), CreatedAt: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	c, err := h.svc.SignInForTest(ctx, acct, auth.FinishSession, meta)
	if err != nil {
		t.Fatal(err)
	}
	sessTok := c.SessionToken
	rt := h.grant(t, "victim@example.com", attackerPass, "read").RefreshToken
	_, keySecret, err := h.svc.CreateAPIKey(ctx, h.svc.SessionPrincipal(c.Session, h.user(t, acct.ID)), h.user(t, acct.ID), auth.CreateAPIKeyInput{Name: "backdoor", Scopes: []string{"read"}}, meta)
	if err != nil {
		t.Fatal(err)
	}

	u := h.signIn(t, ext("corp", "victim-sub", "victim@example.com", true), "")
	if u.ID != acct.ID {
		t.Fatalf("signed in to %s, want the reclaimed account %s", u.ID, acct.ID)
	}
	stored := h.user(t, acct.ID)
	if !stored.EmailVerified || stored.PasswordHash != "" || !u.EmailVerified || u.PasswordHash != "" {
		t.Fatalf("reclaimed account = %+v (returned %+v)", stored, u)
	}
	if _, err := h.svc.Login(ctx, "victim@example.com", attackerPass, meta); err != auth.ErrInvalidCredentials {
		t.Fatalf("the attacker's password still logs in: %v", err)
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, sessTok); err != auth.ErrInvalidSession {
		t.Fatalf("the attacker's session survived: %v", err)
	}
	h.refuseRefresh(t, rt)
	if _, _, _, err := h.svc.AuthenticateAPIKey(ctx, keySecret); err != auth.ErrInvalidAPIKey {
		t.Fatalf("the attacker's API key survived: %v", err)
	}
	if keys, err := h.svc.ListAPIKeys(ctx, acct.ID); err != nil || len(keys) != 0 {
		t.Fatalf("API keys after reclaim: %v %v", keys, err)
	}
	if keys, err := h.db.ListPasskeys(ctx, acct.ID); err != nil || len(keys) != 0 {
		t.Fatalf("the attacker's passkey survived the reclaim: %d, %v", len(keys), err)
	}
	if _, err := h.db.PasskeyByCredentialID(ctx, []byte("attacker-credential")); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("the attacker's credential is still known: %v", err)
	}
	ids := h.identities(t, acct.ID)
	if len(ids) != 1 || ids[0].Provider != "corp" || ids[0].Subject != "victim-sub" || !ids[0].EmailVerified {
		t.Fatalf("identities after reclaim = %+v", ids)
	}
	if evs := h.audit(t, auth.AuditFilter{Type: auth.EventAccountReclaimed, UserID: acct.ID}); len(evs) != 1 {
		t.Fatalf("account.reclaimed events: %+v", evs)
	}
	// The attacker's identity no longer reaches the account, and cannot
	// attach itself again: the provider does not verify the email.
	if _, err := h.svc.ExternalSignIn(ctx, ext("sketchy", "attacker", "victim@example.com", false), "", meta); err != auth.ErrLinkFromAccount {
		t.Fatalf("attacker's identity after reclaim: %v, want ErrLinkFromAccount", err)
	}
	// The victim signs in again through the same identity.
	if again := h.signIn(t, ext("corp", "victim-sub", "victim@example.com", true), ""); again.ID != acct.ID {
		t.Fatalf("second sign-in reached %s", again.ID)
	}
	h.assertAuditClean(t, attackerPass, keySecret, rt, sessTok)
}

// The provider did not verify the email and an account has it: refused,
// nothing linked, nothing created — whether or not the account is
// verified.
func TestProviderUnverifiedEmailOfExistingAccountRefused(t *testing.T) {
	h := newIDHarness(t)
	ctx := context.Background()
	verified := h.register(t, "verified@example.com", goodPass)
	h.verifyEmail(t, verified.ID)
	h.register(t, "unverified@example.com", goodPass)
	for _, email := range []string{"verified@example.com", "Unverified@Example.com"} {
		u, err := h.svc.ExternalSignIn(ctx, ext("corp", "sub-"+email, email, false), "", meta)
		if err != auth.ErrLinkFromAccount {
			t.Fatalf("%s: %+v, %v; want ErrLinkFromAccount", email, u, err)
		}
		wantCode(t, err, auth.ECONFLICT, "")
		if n := h.countIdentities(t, "corp", "sub-"+email); n != 0 {
			t.Fatalf("%s: %d identities linked", email, n)
		}
	}
	if h.countUsers(t, "unverified@example.com") != 1 || h.countUsers(t, "verified@example.com") != 1 {
		t.Fatalf("accounts were created")
	}
	if _, err := h.svc.Login(ctx, "unverified@example.com", goodPass, meta); err != nil {
		t.Fatalf("the account's password stopped working: %v", err)
	}
	// A disabled account is never signed in to, linked or reclaimed.
	dis := h.insertUser(t, "disabled@example.com", h.hash(t, goodPass), true)
	if _, err := h.svc.ExternalSignIn(ctx, ext("corp", "dis", "disabled@example.com", true), "", meta); err != auth.ErrInvalidCredentials {
		t.Fatalf("disabled account: %v", err)
	}
	if h.user(t, dis.ID).PasswordHash == "" || len(h.identities(t, dis.ID)) != 0 {
		t.Fatalf("a disabled account was reclaimed or linked")
	}
}

// The link flow from the account page: needs a verified local email; an
// identity linked elsewhere is refused; linking twice is harmless.
func TestLinkFlow(t *testing.T) {
	h := newIDHarness(t)
	ctx := context.Background()
	unverified := h.register(t, "new@example.com", goodPass)
	_, err := h.svc.ExternalSignIn(ctx, ext("corp", "s1", "new@example.com", true), unverified.ID, meta)
	wantCode(t, err, auth.EFORBIDDEN, "")
	if h.countIdentities(t, "corp", "s1") != 0 {
		t.Fatalf("linked to an unverified account")
	}

	me := h.register(t, "me@example.com", goodPass)
	h.verifyEmail(t, me.ID)
	// The provider's email may differ, and need not be verified: the user
	// proved both ends (session + provider sign-in).
	if u := h.signIn(t, ext("gh", "octo", "octo@users.example", false), me.ID); u.ID != me.ID {
		t.Fatalf("linked to %s", u.ID)
	}
	if u := h.signIn(t, ext("gh", "octo", "octo@users.example", false), me.ID); u.ID != me.ID {
		t.Fatalf("linking again: %s", u.ID)
	}
	if ids := h.identities(t, me.ID); len(ids) != 1 || ids[0].EmailVerified {
		t.Fatalf("identities = %+v", ids)
	}
	// Now it signs in to me without the link flow.
	if u := h.signIn(t, ext("gh", "octo", "octo@users.example", false), ""); u.ID != me.ID {
		t.Fatalf("linked identity signed in to %s", u.ID)
	}

	someone := h.register(t, "someone@example.com", goodPass)
	h.verifyEmail(t, someone.ID)
	if _, err := h.svc.ExternalSignIn(ctx, ext("gh", "octo", "octo@users.example", true), someone.ID, meta); err != auth.ErrIdentityTaken {
		t.Fatalf("linking an identity of another account: %v, want ErrIdentityTaken", err)
	}
	if ids := h.identities(t, someone.ID); len(ids) != 0 {
		t.Fatalf("identity moved: %+v", ids)
	}
	if ids := h.identities(t, me.ID); len(ids) != 1 {
		t.Fatalf("identity lost: %+v", ids)
	}
}

// Unlinking: refused for the last way to sign in.
func TestUnlinkIdentity(t *testing.T) {
	h := newIDHarness(t)
	ctx := context.Background()
	// Provider-only account: its one identity is its only way in.
	u := h.signIn(t, ext("corp", "only", "only@example.com", true), "")
	ids := h.identities(t, u.ID)
	if err := h.svc.UnlinkIdentity(ctx, u.ID, ids[0].ID, meta); err != auth.ErrLastCredential {
		t.Fatalf("unlinking the last way in: %v, want ErrLastCredential", err)
	}
	wantCode(t, auth.ErrLastCredential, auth.ECONFLICT, "")
	// A second identity: one may go, then the other is the last again.
	h.signIn(t, ext("gh", "only-gh", "only@users.example", true), u.ID)
	ids = h.identities(t, u.ID)
	if len(ids) != 2 {
		t.Fatalf("identities = %+v", ids)
	}
	if err := h.svc.UnlinkIdentity(ctx, u.ID, ids[0].ID, meta); err != nil {
		t.Fatalf("unlinking one of two: %v", err)
	}
	if err := h.svc.UnlinkIdentity(ctx, u.ID, ids[1].ID, meta); err != auth.ErrLastCredential {
		t.Fatalf("unlinking the remaining one: %v", err)
	}
	// A passkey counts as a way to sign in.
	if err := h.db.CreatePasskey(ctx, &auth.Passkey{ID: auth.NewID(), UserID: u.ID, Name: "laptop",
		CredentialID: []byte("only-credential"), Credential: []byte(`{}`), CreatedAt: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.UnlinkIdentity(ctx, u.ID, ids[1].ID, meta); err != nil {
		t.Fatalf("unlinking with a passkey left: %v", err)
	}

	// With a password the identity may go.
	pw := h.register(t, "pw@example.com", goodPass)
	h.verifyEmail(t, pw.ID)
	h.signIn(t, ext("corp", "pw-sub", "pw@example.com", true), "")
	ids = h.identities(t, pw.ID)
	if len(ids) != 1 {
		t.Fatalf("identities = %+v", ids)
	}
	// Someone else's identity, or an unknown id: not found.
	if err := h.svc.UnlinkIdentity(ctx, u.ID, ids[0].ID, meta); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("unlinking another account's identity: %v", err)
	}
	if err := h.svc.UnlinkIdentity(ctx, pw.ID, "no-such-id", meta); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("unlinking an unknown id: %v", err)
	}
	if err := h.svc.UnlinkIdentity(ctx, pw.ID, ids[0].ID, meta); err != nil {
		t.Fatalf("unlinking with a password present: %v", err)
	}
	if len(h.identities(t, pw.ID)) != 0 {
		t.Fatalf("identity still linked")
	}
	if evs := h.audit(t, auth.AuditFilter{Type: auth.EventProviderUnlinked, UserID: pw.ID}); len(evs) != 1 {
		t.Fatalf("provider.unlinked events: %+v", evs)
	}
}

// A password reset proves who owns the address: identities whose email
// the provider never verified are dropped; verified ones stay.
func TestPasswordResetDropsUnverifiedIdentities(t *testing.T) {
	h := newIDHarness(t)
	ctx := context.Background()
	u := h.register(t, "reset@example.com", goodPass)
	h.verifyEmail(t, u.ID)
	h.signIn(t, ext("corp", "verified-sub", "reset@example.com", true), "")
	h.signIn(t, ext("sketchy", "unverified-sub", "reset@example.com", false), u.ID)
	if n := len(h.identities(t, u.ID)); n != 2 {
		t.Fatalf("%d identities before the reset", n)
	}
	tok, err := h.svc.IssueToken(ctx, h.user(t, u.ID), auth.PurposeReset)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.ResetPassword(ctx, tok, "a brand new pass phrase", meta); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	ids := h.identities(t, u.ID)
	if len(ids) != 1 || ids[0].Provider != "corp" || ids[0].Subject != "verified-sub" {
		t.Fatalf("identities after reset = %+v", ids)
	}
	if _, err := h.svc.ExternalSignIn(ctx, ext("sketchy", "unverified-sub", "reset@example.com", false), "", meta); err != auth.ErrLinkFromAccount {
		t.Fatalf("the dropped identity after reset: %v, want ErrLinkFromAccount", err)
	}
	if x := h.signIn(t, ext("corp", "verified-sub", "reset@example.com", true), ""); x.ID != u.ID {
		t.Fatalf("the verified identity after reset reached %s", x.ID)
	}
}
