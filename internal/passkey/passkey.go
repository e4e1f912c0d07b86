// Package passkey runs WebAuthn ceremonies (go-webauthn) for Gatehouse:
// registering passkeys for a signed-in user and signing in with them,
// discoverable (no email) or with an email. Challenges are kept server-side
// in the challenge store (Redis when configured), single-use, for five
// minutes; the relying party ID and the allowed origin come from the public
// URL. Sign-counter regressions (a cloned authenticator) are refused and
// audited.
//
// A Service is safe for concurrent use.
package passkey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"gatehouse/internal/auth"
)

// ChallengeTTL is how long a ceremony may take.
const ChallengeTTL = 5 * time.Minute

// Service runs passkey ceremonies.
type Service struct {
	wa   *webauthn.WebAuthn
	auth *auth.Service
}

// New configures the relying party from the public URL: its host is the RP
// ID (localhost in development) and its origin the only allowed origin.
func New(publicURL, product string, a *auth.Service) (*Service, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" {
		return nil, errors.New("passkey: invalid public URL")
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: product,
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ChallengeTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ChallengeTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &Service{wa: wa, auth: a}, nil
}

// waUser adapts an account to go-webauthn.
type waUser struct {
	u     *auth.User
	creds []webauthn.Credential
}

func (w *waUser) WebAuthnID() []byte { return []byte(w.u.ID) }
func (w *waUser) WebAuthnName() string {
	return w.u.Email
}
func (w *waUser) WebAuthnDisplayName() string {
	if w.u.Name != "" {
		return w.u.Name
	}
	return w.u.Email
}
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

func (s *Service) loadUser(ctx context.Context, u *auth.User) (*waUser, []*auth.Passkey, error) {
	keys, err := s.auth.ListPasskeys(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	w, err := newWAUser(u, keys)
	return w, keys, err
}

// newWAUser adapts an account and its stored passkeys to go-webauthn.
func newWAUser(u *auth.User, keys []*auth.Passkey) (*waUser, error) {
	w := &waUser{u: u}
	for _, k := range keys {
		var c webauthn.Credential
		if err := json.Unmarshal(k.Credential, &c); err != nil {
			return nil, fmt.Errorf("passkey %s: %w", k.ID, err)
		}
		w.creds = append(w.creds, c)
	}
	return w, nil
}

// ceremony is what the server keeps between begin and finish.
type ceremony struct {
	Kind   string `json:"k"` // "register" or "login"
	UserID string `json:"u,omitempty"`
	// Decoy marks a sign-in begun for an email without passkeys: its
	// options list decoy credential ids, and it never finishes.
	Decoy bool `json:"d,omitempty"`
	// Bind ties a second-factor ceremony to what it finishes: the hash of
	// the mfa_token, or the session or token it steps up.
	Bind    string               `json:"b,omitempty"`
	Session webauthn.SessionData `json:"s"`
}

func (s *Service) put(ctx context.Context, c *ceremony) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	id := auth.NewID() + auth.NewID()
	if err := s.auth.PutChallenge(ctx, "pk:"+auth.HashToken(id), b, ChallengeTTL); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Service) take(ctx context.Context, id, kind string) (*ceremony, error) {
	if id == "" || len(id) > 128 {
		return nil, auth.ErrPasskeyLogin
	}
	b, err := s.auth.TakeChallenge(ctx, "pk:"+auth.HashToken(id))
	if errors.Is(err, auth.ErrNotFound) {
		return nil, auth.ErrPasskeyLogin
	}
	if err != nil {
		return nil, err
	}
	var c ceremony
	if err := json.Unmarshal(b, &c); err != nil || c.Kind != kind {
		return nil, auth.ErrPasskeyLogin
	}
	return &c, nil
}

// BeginRegistration starts adding a passkey to the caller p's account u:
// it returns the publicKey creation options (WebAuthn Level 3 JSON) and a
// ceremony id. p must be allowed to add a sign-in method
// (auth.Service.CanAddSignInMethod).
func (s *Service) BeginRegistration(ctx context.Context, p *auth.Principal, u *auth.User) (json.RawMessage, string, error) {
	if err := s.auth.CanAddSignInMethod(ctx, p); err != nil {
		return nil, "", err
	}
	w, _, err := s.loadUser(ctx, u)
	if err != nil {
		return nil, "", err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range w.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, sess, err := s.wa.BeginRegistration(w,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExclusions(exclude),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred,
		}))
	if err != nil {
		return nil, "", fmt.Errorf("passkey: begin registration: %w", err)
	}
	id, err := s.put(ctx, &ceremony{Kind: "register", UserID: u.ID, Session: *sess})
	if err != nil {
		return nil, "", err
	}
	opts, err := json.Marshal(creation.Response)
	return opts, id, err
}

// ErrBadRegistration refuses a registration response that does not verify.
var ErrBadRegistration = &auth.Error{Code: auth.EINVALID, Message: "the passkey registration could not be verified"}

// FinishRegistration verifies the authenticator's response (challenge,
// origin, RP ID, flags) and stores the passkey for the caller p, if p may
// add one (auth.Service.AddPasskey decides).
func (s *Service) FinishRegistration(ctx context.Context, p *auth.Principal, u *auth.User, ceremonyID string, body []byte, m auth.Meta) (*auth.Passkey, error) {
	c, err := s.take(ctx, ceremonyID, "register")
	if err != nil {
		return nil, ErrBadRegistration
	}
	if c.UserID != u.ID {
		return nil, ErrBadRegistration
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, ErrBadRegistration
	}
	w, _, err := s.loadUser(ctx, u)
	if err != nil {
		return nil, err
	}
	cred, err := s.wa.CreateCredential(w, c.Session, parsed)
	if err != nil {
		return nil, ErrBadRegistration
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	pk := &auth.Passkey{ID: auth.NewID(), UserID: u.ID, Name: "Passkey " + now.Format("2006-01-02"), CredentialID: cred.ID, Credential: raw, CreatedAt: now}
	if err := s.auth.AddPasskey(ctx, p, pk, m); err != nil {
		return nil, err
	}
	return pk, nil
}

// BeginLogin starts a passkey sign-in. Without an email it is a
// discoverable-credential sign-in. With one, the options list the
// account's passkeys — or, for an unknown email or an account without
// passkeys, 1–2 decoy credential ids that are the same on every call
// (SPEC §18 H6), so the answer has the same shape and reveals nothing.
func (s *Service) BeginLogin(ctx context.Context, email string) (json.RawMessage, string, error) {
	var (
		assertion *protocol.CredentialAssertion
		sess      *webauthn.SessionData
		err       error
		c         = &ceremony{Kind: "login"}
	)
	uv := webauthn.WithUserVerification(protocol.VerificationPreferred)
	if email == "" {
		assertion, sess, err = s.wa.BeginDiscoverableLogin(uv)
	} else {
		u, keys, decoys, terr := s.auth.PasskeyLoginTarget(ctx, email)
		if terr != nil {
			return nil, "", terr
		}
		var w *waUser
		if u != nil {
			if w, err = newWAUser(u, keys); err != nil {
				return nil, "", err
			}
			c.UserID = u.ID
		} else {
			w = &waUser{u: &auth.User{ID: "decoy"}}
			var transports []protocol.AuthenticatorTransport
			if decoys.Transports {
				transports = decoyTransports
			}
			for _, id := range decoys.IDs {
				w.creds = append(w.creds, webauthn.Credential{ID: id, Transport: transports})
			}
			c.Decoy = true
		}
		assertion, sess, err = s.wa.BeginLogin(w, uv)
	}
	if err != nil {
		return nil, "", fmt.Errorf("passkey: begin login: %w", err)
	}
	c.Session = *sess
	id, err := s.put(ctx, c)
	if err != nil {
		return nil, "", err
	}
	opts, err := json.Marshal(assertion.Response)
	return opts, id, err
}

// decoyTransports are the transports a decoy credential claims, for the
// three emails in four whose decoys claim any (auth.PasskeyDecoys):
// those of a synced platform passkey, the most common kind.
var decoyTransports = []protocol.AuthenticatorTransport{protocol.Hybrid, protocol.Internal}

// FinishLogin verifies an assertion and returns the first factor it
// proves, to be finished as f by auth.Service.Complete. Every failure is
// auth.ErrPasskeyLogin.
func (s *Service) FinishLogin(ctx context.Context, ceremonyID string, body []byte, f auth.Finish, m auth.Meta) (*auth.Authentication, error) {
	c, err := s.take(ctx, ceremonyID, "login")
	if err != nil {
		return nil, err
	}
	if c.Decoy {
		return nil, auth.ErrPasskeyLogin
	}
	uid, uv, err := s.verifyAssertion(ctx, c, body, m)
	if err != nil {
		return nil, err
	}
	return s.auth.PasskeyAuthentication(ctx, uid, uv, f, m)
}

// BeginSecondFactor starts a passkey ceremony that serves as the second
// factor of u (SPEC §13): allowCredentials lists u's passkeys, and the
// ceremony is bound to bind (the challenge or credential it finishes).
func (s *Service) BeginSecondFactor(ctx context.Context, u *auth.User, keys []*auth.Passkey, bind string) (json.RawMessage, string, error) {
	w, err := newWAUser(u, keys)
	if err != nil {
		return nil, "", err
	}
	assertion, sess, err := s.wa.BeginLogin(w, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, "", fmt.Errorf("passkey: begin second factor: %w", err)
	}
	id, err := s.put(ctx, &ceremony{Kind: "mfa", UserID: u.ID, Bind: bind, Session: *sess})
	if err != nil {
		return nil, "", err
	}
	opts, err := json.Marshal(assertion.Response)
	return opts, id, err
}

// FinishSecondFactor verifies the assertion of a second-factor ceremony and
// returns the user it proves, whether the authenticator verified the user,
// and what the ceremony was bound to; the caller checks that binding.
// Every failure is auth.ErrPasskeyLogin.
func (s *Service) FinishSecondFactor(ctx context.Context, ceremonyID string, body []byte, m auth.Meta) (userID string, uv bool, bind string, err error) {
	c, err := s.take(ctx, ceremonyID, "mfa")
	if err != nil {
		return "", false, "", err
	}
	if c.Bind == "" || c.UserID == "" {
		return "", false, "", auth.ErrPasskeyLogin
	}
	userID, uv, err = s.verifyAssertion(ctx, c, body, m)
	return userID, uv, c.Bind, err
}

// verifyAssertion checks an assertion against its ceremony and the stored
// credential, updates the credential's counter (compare-and-swap), and
// returns the user and the UV flag.
func (s *Service) verifyAssertion(ctx context.Context, c *ceremony, body []byte, m auth.Meta) (string, bool, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return "", false, auth.ErrPasskeyLogin
	}
	var (
		user *waUser
		keys []*auth.Passkey
	)
	load := func(id string) (*waUser, error) {
		u, err := s.auth.User(ctx, id)
		if err != nil {
			return nil, err
		}
		if u.Disabled {
			return nil, auth.ErrPasskeyLogin
		}
		w, ks, err := s.loadUser(ctx, u)
		if err != nil {
			return nil, err
		}
		user, keys = w, ks
		return w, nil
	}
	var cred *webauthn.Credential
	if c.UserID != "" {
		w, lerr := load(c.UserID)
		if lerr != nil {
			return "", false, auth.ErrPasskeyLogin
		}
		cred, err = s.wa.ValidateLogin(w, c.Session, parsed)
	} else {
		_, cred, err = s.wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			return load(string(userHandle))
		}, c.Session, parsed)
	}
	if err != nil || user == nil {
		return "", false, auth.ErrPasskeyLogin
	}
	var stored *auth.Passkey
	for _, k := range keys {
		if bytes.Equal(k.CredentialID, cred.ID) {
			stored = k
		}
	}
	if stored == nil {
		return "", false, auth.ErrPasskeyLogin
	}
	// A counter that did not grow means two authenticators share the key:
	// one of them is a clone (WebAuthn §6.1.1).
	if cred.Authenticator.CloneWarning {
		s.auth.Record(ctx, auth.EventPasskeyRegressed, user.u.ID, m, map[string]any{"passkey_id": stored.ID,
			"stored_count": cred.Authenticator.SignCount, "presented_count": parsed.Response.AuthenticatorData.Counter})
		return "", false, auth.ErrPasskeyLogin
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return "", false, err
	}
	// Compare-and-swap on the record read above: of two logins presenting
	// the same counter at once, only one gets through.
	if err := s.auth.UsePasskey(ctx, stored.ID, stored.Credential, raw); err != nil {
		return "", false, err
	}
	return user.u.ID, cred.Flags.UserVerified, nil
}
