package auth

import (
	"context"
	"time"
)

// OAuth2 / OpenID Connect provider mode (SPEC §14): the data and the store
// interfaces. Gatehouse is the authorization server for registered
// clients: relying parties sign users in with the authorization-code flow
// (PKCE S256), confidential clients also get tokens of their own
// (client_credentials).

// Client types and authentication methods at the token endpoint.
const (
	ClientConfidential = "confidential"
	ClientPublic       = "public"

	ClientAuthBasic = "client_secret_basic"
	ClientAuthPost  = "client_secret_post"
	ClientAuthNone  = "none"

	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Client is a registered relying party.
type Client struct {
	ID                      string // client_id
	Name                    string
	Type                    string // ClientConfidential or ClientPublic
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	GrantTypes              []string
	Scopes                  []string // what the client may ask for
	FirstParty              bool     // no consent page; roles in access tokens
	RequirePKCE             bool
	TokenEndpointAuthMethod string
	IDTokenAlg              string // id_token_signed_response_alg
	IDTokenClaims           bool   // profile and email claims in the ID token too
	LogoURL                 string
	// SecretHash is the hex SHA-256 of the current secret (confidential
	// clients); PreviousSecretHash works until PreviousSecretExpiresAt
	// after a rotation (24 h).
	SecretHash              string
	PreviousSecretHash      string
	PreviousSecretExpiresAt *time.Time
	// FromConfig marks a client declared in YAML (clients:): the API can
	// read it but not change it.
	FromConfig bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ClientStore persists clients.
type ClientStore interface {
	// CreateClient inserts c; ErrConflict (an *Error with ECONFLICT) when
	// the id exists.
	CreateClient(ctx context.Context, c *Client) error
	// ClientByID returns a client; ErrNotFound.
	ClientByID(ctx context.Context, id string) (*Client, error)
	// ListClients returns every client ordered by name, then id.
	ListClients(ctx context.Context) ([]*Client, error)
	// UpdateClient replaces the client's settings (everything but the id,
	// the secrets and CreatedAt); ErrNotFound.
	UpdateClient(ctx context.Context, c *Client) error
	// RotateClientSecret makes hash the current secret and keeps the
	// current one as the previous until previousUntil; ErrNotFound.
	RotateClientSecret(ctx context.Context, id, hash string, previousUntil, now time.Time) error
	// DeleteClient removes a client with its consents and codes and
	// revokes its refresh families; ErrNotFound.
	DeleteClient(ctx context.Context, id string, now time.Time) error
}

// Consent is what a user granted a client: the scopes, remembered per
// (user, client).
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
	ExpiresAt *time.Time // nil: until revoked
}

// ConsentStore persists consents.
type ConsentStore interface {
	// Consent returns the user's grant to the client; ErrNotFound.
	Consent(ctx context.Context, userID, clientID string) (*Consent, error)
	// PutConsent inserts or replaces the user's grant to the client.
	PutConsent(ctx context.Context, c *Consent) error
	// ListConsents returns the user's grants, ordered by client id.
	ListConsents(ctx context.Context, userID string) ([]*Consent, error)
	// DeleteConsent removes the grant and revokes every refresh family
	// of that user and client, in one transaction; ErrNotFound when there
	// was no grant.
	DeleteConsent(ctx context.Context, userID, clientID string, now time.Time) error
}

// AuthCode is an authorization code: only its SHA-256 is stored.
type AuthCode struct {
	Hash          string
	ClientID      string
	UserID        string
	RedirectURI   string
	Scope         string // granted, space-separated
	Nonce         string
	CodeChallenge string // S256 challenge, "" when the client sent none
	SessionID     string // the browser session it was issued to (sid)
	ACR           string
	AMR           []string
	AuthTime      time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
	// UsedAt and FamilyID are set by the redemption: a second
	// presentation finds them and revokes that family.
	UsedAt   *time.Time
	FamilyID string
}

// AuthCodeStore persists authorization codes.
type AuthCodeStore interface {
	CreateAuthCode(ctx context.Context, c *AuthCode) error
	// AuthCodeByHash returns a code, used or not; ErrNotFound.
	AuthCodeByHash(ctx context.Context, hash string) (*AuthCode, error)
	// RedeemAuthCode marks the code used at now — only when it is unused
	// and live — and, in the same transaction, creates the refresh family
	// f with its first token when f is not nil, recording f's id on the
	// code. ErrAuthCodeUsed when it was used already (or concurrently),
	// ErrNotFound when it is missing or expired.
	RedeemAuthCode(ctx context.Context, hash string, now time.Time, f *RefreshFamily, first *RefreshToken) error
	// PurgeAuthCodes deletes codes that expired before now.
	PurgeAuthCodes(ctx context.Context, now time.Time) error
}

// ErrAuthCodeUsed is a second presentation of an authorization code.
var ErrAuthCodeUsed = &Error{Code: EINVALID, Message: "the authorization code was used already"}

// IDClaims are the claims of an ID token (OIDC Core §2) that Gatehouse
// decides; the signer adds iss, the kid and at_hash.
type IDClaims struct {
	Subject   string
	Audience  string // the client id (also azp)
	Nonce     string
	ACR       string
	AMR       []string
	AuthTime  time.Time
	IssuedAt  time.Time
	ExpiresAt time.Time
	SessionID string // sid
	// AccessToken, when set, is hashed into at_hash with the hash of the
	// signing algorithm (OIDC Core §3.1.3.6).
	AccessToken string
	// Extra claims (email, email_verified, name, updated_at) for clients
	// that want them in the ID token.
	Extra map[string]any
}

// IDTokenSigner signs ID tokens and reads them back as id_token_hint.
type IDTokenSigner interface {
	// SignIDToken signs c with a key of alg (RS256 when empty: the
	// server's GATEHOUSE_ID_TOKEN_ALG).
	SignIDToken(ctx context.Context, alg string, c *IDClaims) (string, error)
	// PrepareIDTokenAlg makes sure a key of alg exists (a client
	// registering that algorithm), so every node publishes it before the
	// first ID token it signs.
	PrepareIDTokenAlg(ctx context.Context, alg string) error
	// ParseIDTokenHint verifies an ID token this server issued — the
	// signature and the issuer, but not its expiry, as an
	// id_token_hint may be expired (OIDC RP-Initiated Logout §2).
	ParseIDTokenHint(tok string) (*IDClaims, error)
}
