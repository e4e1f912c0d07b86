package auth

import (
	"context"
	"errors"
	"time"
)

// Identity links an account to an external identity provider's user,
// keyed by (provider, subject) — never by email.
type Identity struct {
	ID       string
	UserID   string
	Provider string
	Subject  string
	Email    string
	// EmailVerified records whether the provider vouched for the email
	// when the identity was linked.
	EmailVerified bool
	CreatedAt     time.Time
}

// ExternalIdentity is what a provider said after a successful sign-in.
type ExternalIdentity struct {
	Provider      string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// IdentityStore persists linked identities.
type IdentityStore interface {
	IdentityBySubject(ctx context.Context, provider, subject string) (*Identity, error)
	// CreateIdentity links an identity; ECONFLICT when (provider, subject)
	// is linked already.
	CreateIdentity(ctx context.Context, id *Identity) error
	// CreateUserWithIdentity creates an account and its first identity in
	// one transaction.
	CreateUserWithIdentity(ctx context.Context, u *User, id *Identity) error
	// ListIdentities returns the user's identities, oldest first.
	ListIdentities(ctx context.Context, userID string) ([]*Identity, error)
	// DeleteIdentity unlinks one of the user's identities; ErrNotFound.
	DeleteIdentity(ctx context.Context, userID, id string) error
	// DeleteUserIdentities unlinks identities of a user; with
	// unverifiedOnly, only those whose email the provider did not verify.
	DeleteUserIdentities(ctx context.Context, userID string, unverifiedOnly bool) error
}

// ChallengeStore keeps short-lived, single-use ceremony state (OIDC login
// flows, passkey challenges): the database, or Redis when configured.
type ChallengeStore interface {
	PutChallenge(ctx context.Context, key string, value []byte, expires time.Time) error
	// TakeChallenge returns and deletes a live challenge atomically;
	// ErrNotFound when it is missing, used or expired.
	TakeChallenge(ctx context.Context, key string, now time.Time) ([]byte, error)
}

// ErrIdentityTaken is returned when an external identity is linked to
// another account already.
var ErrIdentityTaken = &Error{Code: ECONFLICT, Message: "this external account is linked to another account"}

// ErrLinkFromAccount asks the user to sign in and link from the account page.
var ErrLinkFromAccount = &Error{Code: ECONFLICT, Message: "an account with this email address exists: sign in to it and link this provider from your account page"}

// ErrNoEmail refuses a provider sign-in that shared no email address.
var ErrNoEmail = &Error{Code: EINVALID, Message: "the provider did not share an email address"}

// ErrLastCredential refuses to remove an account's last way to sign in.
var ErrLastCredential = &Error{Code: ECONFLICT, Message: "this is the account's last way to sign in: add a password or another provider first"}

// ExternalSignIn decides which account an external identity signs in to.
// The rule (docs/DECISIONS.md, "Social login"):
//
//   - a linked (provider, subject) signs in to its account;
//   - with linkUserID (the link flow from the account page), the identity is
//     attached to that account, whose email must be verified;
//   - otherwise, when an account has the same email:
//   - both emails verified: the identity is linked to it;
//   - the provider verified it but the account did not: the account is
//     reclaimed for the address's proven owner — its password, sessions,
//     refresh tokens, API keys, passkeys and other identities are removed
//     first — and then linked, so a pre-registered (pre-hijacked) account never becomes
//     reachable to the provider's user while someone else's password still
//     works;
//   - the provider did not verify it: refused; sign in and link instead;
//   - no account has the email: a new account is made, its email verified
//     only if the provider says so.
func (s *Service) ExternalSignIn(ctx context.Context, ext ExternalIdentity, linkUserID string, m Meta) (*User, error) {
	if ext.Subject == "" {
		return nil, &Error{Code: EINVALID, Message: "the provider returned no subject"}
	}
	existing, err := s.st.Identities.IdentityBySubject(ctx, ext.Provider, ext.Subject)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if linkUserID != "" {
		return s.linkIdentity(ctx, ext, existing, linkUserID, m)
	}
	if existing != nil {
		u, err := s.st.Users.UserByID(ctx, existing.UserID)
		if err != nil {
			return nil, err
		}
		if u.Disabled {
			return nil, ErrInvalidCredentials
		}
		s.audit(ctx, EventLoginSucceeded, u.ID, m, map[string]any{"provider": ext.Provider})
		return u, nil
	}
	if ext.Email == "" {
		return nil, ErrNoEmail
	}
	email, err := NormalizeEmail(ext.Email)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ident := &Identity{ID: NewID(), Provider: ext.Provider, Subject: ext.Subject, Email: email, EmailVerified: ext.EmailVerified, CreatedAt: now}
	local, err := s.st.Users.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		name, _ := validName(ext.Name)
		// A sign-up: the before_register hook decides (an address that is
		// taken is linked below instead, never put to the hook).
		if err := s.beforeRegister(ctx, registerHookData{Email: email, Name: name, Source: SourceSocial, Provider: ext.Provider}, m); err != nil {
			return nil, err
		}
		u := &User{ID: NewID(), Email: email, EmailVerified: ext.EmailVerified, Name: name,
			Roles: append([]string(nil), s.cfg.DefaultRoles...), CreatedAt: now, UpdatedAt: now}
		ident.UserID = u.ID
		if err := s.st.Identities.CreateUserWithIdentity(ctx, u, ident); err != nil {
			return nil, err
		}
		s.auditAbout(ctx, EventUserRegistered, u, m, map[string]any{"provider": ext.Provider, "source": SourceSocial})
		s.audit(ctx, EventProviderLinked, u.ID, m, map[string]any{"provider": ext.Provider})
		return u, nil
	}
	if err != nil {
		return nil, err
	}
	if local.Disabled {
		return nil, ErrInvalidCredentials
	}
	switch {
	case !ext.EmailVerified:
		return nil, ErrLinkFromAccount
	case !local.EmailVerified:
		if err := s.reclaim(ctx, local, m, "", false); err != nil {
			return nil, err
		}
		local.EmailVerified, local.PasswordHash = true, ""
	}
	ident.UserID = local.ID
	if err := s.st.Identities.CreateIdentity(ctx, ident); err != nil {
		return nil, err
	}
	s.audit(ctx, EventProviderLinked, local.ID, m, map[string]any{"provider": ext.Provider, "automatic": true})
	s.audit(ctx, EventLoginSucceeded, local.ID, m, map[string]any{"provider": ext.Provider})
	return local, nil
}

// reclaim hands an account to the proven owner of its address: everything
// another person could have set up in it is removed and the address is
// marked verified. by, when set, says what proved ownership (audited). The
// password goes too unless keepPassword (an email verification keeps it,
// SPEC §18 H2, and a reset ends it later).
func (s *Service) reclaim(ctx context.Context, u *User, m Meta, by string, keepPassword bool) error {
	defer s.users.forget(u.ID)
	if !keepPassword {
		if err := s.st.Users.ChangePassword(ctx, u.ID, "", s.now()); err != nil {
			return err
		}
	}
	if err := s.dropUnproven(ctx, u.ID); err != nil {
		return err
	}
	if err := s.st.Users.SetEmailVerified(ctx, u.ID, true, s.now()); err != nil {
		return err
	}
	var details map[string]any
	if by != "" {
		details = map[string]any{"by": by}
	}
	s.audit(ctx, EventAccountReclaimed, u.ID, m, details)
	return nil
}

// dropUnproven removes everything that could have been set up in an account
// before anyone proved they own its address: sessions, refresh tokens, API
// keys, identities, passkeys (adding one needs only a session, not a
// verified email), the TOTP authenticator and its recovery codes — a
// squatter's second factor must not lock the real owner out after a reset.
func (s *Service) dropUnproven(ctx context.Context, userID string) error {
	if err := s.revokeAll(ctx, userID, true); err != nil {
		return err
	}
	defer s.users.forget(userID)
	if _, err := s.st.MFA.DeleteTOTP(ctx, userID, true); err != nil {
		return err
	}
	if err := s.st.Identities.DeleteUserIdentities(ctx, userID, false); err != nil {
		return err
	}
	keys, err := s.st.Passkeys.ListPasskeys(ctx, userID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.st.Passkeys.DeletePasskey(ctx, userID, k.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

func (s *Service) linkIdentity(ctx context.Context, ext ExternalIdentity, existing *Identity, userID string, m Meta) (*User, error) {
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		if existing.UserID == userID {
			return u, nil
		}
		return nil, ErrIdentityTaken
	}
	if !u.EmailVerified {
		return nil, &Error{Code: EFORBIDDEN, Message: "verify your email address before linking a provider"}
	}
	email, _ := NormalizeEmail(ext.Email)
	ident := &Identity{ID: NewID(), UserID: userID, Provider: ext.Provider, Subject: ext.Subject, Email: email,
		EmailVerified: ext.EmailVerified, CreatedAt: s.now()}
	if err := s.st.Identities.CreateIdentity(ctx, ident); err != nil {
		return nil, err
	}
	s.audit(ctx, EventProviderLinked, userID, m, map[string]any{"provider": ext.Provider})
	return u, nil
}

// ListIdentities returns the user's linked identities.
func (s *Service) ListIdentities(ctx context.Context, userID string) ([]*Identity, error) {
	return s.st.Identities.ListIdentities(ctx, userID)
}

// UnlinkIdentity removes one of the user's identities, unless it is the
// account's last way to sign in.
func (s *Service) UnlinkIdentity(ctx context.Context, userID, id string, m Meta) error {
	u, err := s.st.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	ids, err := s.st.Identities.ListIdentities(ctx, userID)
	if err != nil {
		return err
	}
	found := false
	for _, x := range ids {
		found = found || x.ID == id
	}
	if !found {
		return ErrNotFound
	}
	others := len(ids) - 1
	if u.PasswordHash == "" && others == 0 && !s.hasOtherCredentials(ctx, userID) {
		return ErrLastCredential
	}
	if err := s.st.Identities.DeleteIdentity(ctx, userID, id); err != nil {
		return err
	}
	s.audit(ctx, EventProviderUnlinked, userID, m, map[string]any{"identity_id": id})
	return nil
}

// hasOtherCredentials reports sign-in methods besides passwords and
// identities: passkeys.
func (s *Service) hasOtherCredentials(ctx context.Context, userID string) bool {
	keys, err := s.st.Passkeys.ListPasskeys(ctx, userID)
	return err == nil && len(keys) > 0
}
