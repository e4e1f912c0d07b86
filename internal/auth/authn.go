package auth

import (
	"context"
	"errors"
	"time"
)

// This file is where a sign-in method plugs in. Every first factor ends in
// an Authentication value, made by one of the constructors below
// (password, passkey, social login), and Complete is the one function that
// turns it into a session, a token family or both. A check every sign-in
// must pass — the second factor of SPEC §13 among them — belongs in
// Complete and nowhere else.

// Authentication methods (RFC 8176 "amr" values).
const (
	AMRPassword  = "pwd"  // a password
	AMRPasskey   = "hwk"  // proof of possession of a hardware-bound key
	AMRUser      = "user" // the authenticator verified the user (WebAuthn UV)
	AMRFederated = "fed"  // an external identity provider (social login)
)

// Finish says what a completed sign-in yields.
type Finish int

// How a sign-in finishes.
const (
	FinishSession Finish = 1 << iota // a cookie session
	FinishTokens                     // an access token and a new refresh family
	FinishBoth    = FinishSession | FinishTokens
)

// Authentication is a proven first factor: who signed in, how, when, and
// what the caller asked the sign-in to yield. Only this package makes one
// (see the constructors in this file); Complete consumes it.
type Authentication struct {
	User     *User
	Methods  []string  // amr
	Time     time.Time // auth_time
	Finish   Finish
	ClientID string   // for FinishTokens
	Scope    []string // requested scopes for FinishTokens; empty: every allowed one
	Meta     Meta

	// deferred holds a password login's success writes (lockout reset,
	// audit event) for Complete to make in the transaction that creates
	// the token family.
	deferred *loginSuccess
	// provider is the identity provider of a social login (for the
	// before_login hook).
	provider string
	done     bool
}

// Completion is a finished sign-in.
type Completion struct {
	User *User
	// SessionToken and Session are set for FinishSession: the token goes
	// into the cookie and nowhere else.
	SessionToken string
	Session      *Session
	// Tokens is set for FinishTokens.
	Tokens *TokenResponse
}

// errBadAuthentication reports a programming error: an Authentication that
// was not made by this package, or completed twice.
var errBadAuthentication = errors.New("auth: Complete needs an unused Authentication from this package")

// Complete finishes a sign-in: it is the only way to a session or a token
// family. It re-checks that the account is enabled, asks the before_login
// hook (SPEC §16) once, before any second factor is asked for, then makes
// what a.Finish asks for.
func (s *Service) Complete(ctx context.Context, a *Authentication) (*Completion, error) {
	if a == nil || a.User == nil || a.done || a.Time.IsZero() || len(a.Methods) == 0 || a.Finish&FinishBoth == 0 || a.Finish&^FinishBoth != 0 {
		return nil, errBadAuthentication
	}
	a.done = true
	if a.User.Disabled {
		return nil, ErrInvalidCredentials
	}
	// A refused sign-in makes no writes of a successful one: the lockout
	// count stays, as while a second factor is awaited.
	if err := s.beforeLogin(ctx, a); err != nil {
		return nil, err
	}
	asr := s.assess(a.Methods, a.Time)
	if asr.acr != ACR2 {
		// The second factor (SPEC §13): nothing is issued yet.
		if err := s.challenge(ctx, a); err != nil {
			// The password was right: audited; but the lockout count
			// stays until the second factor is right too, so that a
			// password known to an attacker does not reset the count of
			// their wrong codes.
			if a.deferred != nil && a.deferred.event != nil {
				s.appendAudit(ctx, a.deferred.event)
			}
			return nil, err
		}
	}
	c := &Completion{User: a.User}
	if a.Finish&FinishTokens != 0 {
		t, err := s.startFamily(ctx, a.User, a.ClientID, a.Scope, a.deferred, asr)
		if err != nil {
			return nil, err
		}
		c.Tokens = t
	} else if err := s.settle(ctx, a.deferred); err != nil {
		return nil, err
	}
	if a.Finish&FinishSession != 0 {
		tok, sess, err := s.startSession(ctx, a.User, a.Meta, asr)
		if err != nil {
			return nil, err
		}
		c.SessionToken, c.Session = tok, sess
	}
	return c, nil
}

func (s *Service) authentication(u *User, f Finish, m Meta, methods ...string) *Authentication {
	return &Authentication{User: u, Methods: methods, Time: s.now(), Finish: f, Meta: m}
}

// PasswordAuthentication checks an email and password (the first factor of
// POST /v1/sessions, the hosted /login form and the password grant). Every
// failure is ErrInvalidCredentials (see Login).
func (s *Service) PasswordAuthentication(ctx context.Context, email, plain string, f Finish, m Meta) (*Authentication, error) {
	// The success writes wait for Complete: it clears the lockout count
	// only when the sign-in finishes, not when a second factor is still
	// awaited (SPEC §13: wrong codes count toward the same lockout).
	ls := &loginSuccess{}
	u, err := s.login(ctx, email, plain, m, ls)
	if err != nil {
		return nil, err
	}
	a := s.authentication(u, f, m, AMRPassword)
	a.deferred = ls
	return a, nil
}

// PasskeyAuthentication is the first factor of a passkey sign-in, after
// the assertion was verified (internal/passkey): the user read fresh, and
// whether the authenticator verified the user (the UV flag).
func (s *Service) PasskeyAuthentication(ctx context.Context, userID string, userVerified bool, f Finish, m Meta) (*Authentication, error) {
	u, err := s.st.Users.UserByID(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrPasskeyLogin
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, ErrPasskeyLogin
	}
	s.loginMetric("succeeded")
	s.audit(ctx, EventLoginSucceeded, u.ID, m, map[string]any{"method": "passkey"})
	methods := []string{AMRPasskey}
	if userVerified {
		methods = append(methods, AMRUser)
	}
	return s.authentication(u, f, m, methods...), nil
}

// ExternalAuthentication is the first factor of a social login: the
// identity a provider vouched for, resolved to an account by
// ExternalSignIn's rules.
func (s *Service) ExternalAuthentication(ctx context.Context, ext ExternalIdentity, f Finish, m Meta) (*Authentication, error) {
	u, err := s.ExternalSignIn(ctx, ext, "", m)
	if err != nil {
		return nil, err
	}
	a := s.authentication(u, f, m, AMRFederated)
	a.provider = ext.Provider
	return a, nil
}

// SessionLogin checks an email and password and starts a cookie session.
func (s *Service) SessionLogin(ctx context.Context, email, plain string, m Meta) (*Completion, error) {
	a, err := s.PasswordAuthentication(ctx, email, plain, FinishSession, m)
	if err != nil {
		return nil, err
	}
	return s.Complete(ctx, a)
}

// PasswordGrant is the OAuth2 resource-owner password grant.
func (s *Service) PasswordGrant(ctx context.Context, email, plain, scope, clientID string, m Meta) (*TokenResponse, error) {
	requested := ParseScope(scope)
	// Unknown scopes are refused before any hashing work.
	for _, sc := range requested {
		if !s.roles.KnownScope(sc) {
			return nil, ErrInvalidScope
		}
	}
	a, err := s.PasswordAuthentication(ctx, email, plain, FinishTokens, m)
	if err != nil {
		return nil, err
	}
	a.ClientID, a.Scope = clientID, requested
	c, err := s.Complete(ctx, a)
	if err != nil {
		return nil, err
	}
	return c.Tokens, nil
}
