package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The OAuth client registry of the OpenID provider (SPEC §14): who may
// register a client and with what settings, client secrets, and client
// authentication at the token endpoint. The admin API, the command line
// and the YAML clients: section all go through CreateClient, so every
// client, wherever it comes from, passes the same rules.

// Audit events of the client registry. Their details name the client,
// never a secret or a secret's hash.
const (
	EventClientCreated       = "oauth.client.created"
	EventClientUpdated       = "oauth.client.updated"
	EventClientDeleted       = "oauth.client.deleted"
	EventClientSecretRotated = "oauth.client.secret_rotated"
)

// ClientSecretGrace is how long a client's previous secret keeps working
// after RotateClientSecret, so that a relying party can be redeployed with
// the new one without downtime.
const ClientSecretGrace = 24 * time.Hour

// Client secret format: "ghcs_" + 43 base62 characters (256 bits of
// randomness) + 6 base62 characters of CRC-32 checksum, like API keys
// (apikeys.go): the prefix lets secret scanners find leaked secrets, and
// the checksum tells a mistyped secret from a made-up one.
const clientSecretPrefix = "ghcs_"

// NewClientSecret returns a fresh client secret.
func NewClientSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	random := encode62(new(big.Int).SetBytes(b[:]), apiKeyRandLen)
	return clientSecretPrefix + random + apiKeyChecksum(random)
}

// IsClientSecret reports whether s has the shape of a secret Gatehouse
// generated: the prefix, the length, base62 and a matching checksum.
// Secrets from the configuration file need not have it.
func IsClientSecret(s string) bool {
	if len(s) != len(clientSecretPrefix)+apiKeyRandLen+apiKeySumLen || !strings.HasPrefix(s, clientSecretPrefix) {
		return false
	}
	body := s[len(clientSecretPrefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(base62, body[i]) < 0 {
			return false
		}
	}
	return apiKeyChecksum(body[:apiKeyRandLen]) == body[apiKeyRandLen:]
}

// ErrInvalidClient is the one answer for every failed client
// authentication: unknown client, wrong or expired secret, a secret sent
// for a public client, none sent for a confidential one.
var ErrInvalidClient = &Error{Code: EUNAUTHORIZED, Message: "invalid client credentials"}

// Limits of a client's settings.
const (
	maxClientURIs      = 32   // redirect URIs, and post-logout redirect URIs
	maxClientScopes    = 64   // scopes a client may ask for
	maxClientURILength = 2000 // characters of one URI
	maxClientIDLength  = 64   // a client id from the configuration file
	// MinConfigClientSecret is the shortest secret a client from the
	// configuration file may have: secrets are stored as an unkeyed
	// SHA-256, which is safe only for secrets too long to guess.
	MinConfigClientSecret = 32
	maxClientSecret       = 512
)

// clientOIDCScopes are the OpenID Connect scopes every client may be
// registered with, whatever the role model says.
var clientOIDCScopes = []string{"openid", "profile", "email", "offline_access"}

// idTokenAlgs are the accepted id_token_signed_response_alg values ("":
// the server's GATEHOUSE_ID_TOKEN_ALG).
var idTokenAlgs = []string{"RS256", "ES256", "EdDSA"}

// ValidateRedirectURI checks a redirect URI for registration (SPEC §14,
// RFC 6749 §3.1.2, RFC 8252 §7, OAuth 2.0 Security BCP): an absolute URI
// without fragment, user info or wildcard; https with any host; http only
// on the loopback interface (127.0.0.1, [::1] or localhost, any port); any
// other scheme must be a private-use scheme in reverse domain notation,
// which contains a dot (com.example.app:/cb). Redirect URIs are then
// compared as exact strings (RedirectURIMatches), so nothing is
// normalised here.
func ValidateRedirectURI(raw string) error {
	return checkClientURI(raw, "redirect_uris", "redirect URI")
}

// checkClientURI is ValidateRedirectURI for a redirect URI or a
// post-logout redirect URI; field and what name it in the error.
func checkClientURI(raw, field, what string) error {
	bad := func(format string, args ...any) error {
		return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf("%s %q: ", what, clip(raw)) + fmt.Sprintf(format, args...)}
	}
	switch {
	case raw == "":
		return &Error{Code: EINVALID, Field: field, Message: what + " must not be empty"}
	case len(raw) > maxClientURILength:
		return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf("%s is too long (at most %d characters)", what, maxClientURILength)}
	case !utf8.ValidString(raw) || strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return bad("must not contain spaces or control characters")
	case strings.Contains(raw, "#"):
		return bad("must not have a fragment (#)")
	case strings.Contains(raw, "*"):
		return bad("wildcards (*) are not allowed: register each URI exactly")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("is not a valid URI")
	}
	if u.Scheme == "" {
		return bad("must be absolute (with a scheme such as https://), not relative")
	}
	if u.User != nil {
		return bad("must not contain user info (user@)")
	}
	switch u.Scheme {
	case "https":
		if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
			return bad("an https URI needs a host (https://host/path)")
		}
	case "http":
		if u.Opaque != "" || u.Host == "" {
			return bad("an http URI needs a host (http://127.0.0.1:PORT/path)")
		}
		if !loopbackHost(u.Hostname()) {
			return bad("http is allowed only on the loopback interface (127.0.0.1, [::1] or localhost); use https")
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return bad("a private-use scheme must be in reverse domain notation, with a dot (com.example.app:/callback)")
		}
		if u.Opaque == "" && u.Host == "" && u.Path == "" {
			return bad("nothing follows the scheme")
		}
	}
	return nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) <= 100 {
		return s
	}
	return strings.ToValidUTF8(s[:100], "") + "…"
}

// loopbackHost reports the loopback hosts http redirect URIs may use.
func loopbackHost(h string) bool {
	return h == "127.0.0.1" || h == "::1" || h == "localhost"
}

// loopbackKey returns a loopback http URI without its port, for comparing
// two of them regardless of port; ok is false for any other URI.
func loopbackKey(raw string) (key string, ok bool) {
	if strings.ContainsAny(raw, "#*") {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Opaque != "" || !loopbackHost(u.Hostname()) {
		return "", false
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u.Host = host
	return u.String(), true
}

// RedirectURIMatches reports whether uri is one of c's redirect URIs: the
// exact string, except that for a loopback http redirect URI any port
// matches (RFC 8252 §7.3: a native app listens on a port the system gives
// it at the time of the request).
func RedirectURIMatches(c *Client, uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	key, ok := loopbackKey(uri)
	if !ok {
		return false
	}
	for _, r := range c.RedirectURIs {
		if k, ok := loopbackKey(r); ok && k == key {
			return true
		}
	}
	return false
}

// ClientInput is a client's settings as registered (POST
// /v1/admin/clients, gatehouse client create, YAML clients:). Empty fields
// take the defaults (see CreateClient).
type ClientInput struct {
	// ID and Secret are set only for clients from the configuration file;
	// other clients get a random id and a generated secret.
	ID     string
	Secret string

	Name                    string
	Type                    string // ClientConfidential or ClientPublic
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	GrantTypes              []string
	Scopes                  []string
	FirstParty              bool
	RequirePKCE             *bool // nil: true
	TokenEndpointAuthMethod string
	IDTokenAlg              string // id_token_signed_response_alg; "": the server's default
	IDTokenClaims           bool
	LogoURL                 string
}

// ClientPatch is a change to a client's settings; nil fields stay. The
// type cannot change (a public client has no secret to turn into a
// confidential one's): register a new client instead.
type ClientPatch struct {
	Name                    *string
	RedirectURIs            *[]string
	PostLogoutRedirectURIs  *[]string
	GrantTypes              *[]string
	Scopes                  *[]string
	FirstParty              *bool
	RequirePKCE             *bool
	TokenEndpointAuthMethod *string
	IDTokenAlg              *string
	IDTokenClaims           *bool
	LogoURL                 *string
}

// buildClient checks in and returns the client it describes, with the
// defaults filled in (no id, secrets or times). knownScope says which
// scopes the role model has; fromConfig allows (and, for a confidential
// client, requires) the id and secret of a configuration-file client. It
// reports every problem it finds.
func buildClient(in ClientInput, knownScope func(string) bool, fromConfig bool) (*Client, []*Error) {
	var errs []*Error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	c := &Client{Type: in.Type, FirstParty: in.FirstParty, IDTokenClaims: in.IDTokenClaims}

	if fromConfig {
		switch {
		case in.ID == "":
			bad("id", "id is required")
		case len(in.ID) > maxClientIDLength || !validClientID(in.ID):
			bad("id", "id %q is invalid: 1 to %d of the characters A-Z a-z 0-9 . _ ~ -", clip(in.ID), maxClientIDLength)
		}
	} else {
		if in.ID != "" {
			bad("id", "only clients from the configuration file choose their id")
		}
		if in.Secret != "" {
			bad("secret", "only clients from the configuration file choose their secret: others get a generated one")
		}
	}

	if name, err := validName(in.Name); err != nil {
		errs = append(errs, err.(*Error))
	} else if name == "" {
		bad("name", "name is required")
	} else {
		c.Name = name
	}

	confidential := in.Type == ClientConfidential
	switch in.Type {
	case ClientConfidential, ClientPublic:
	case "":
		bad("type", "type is required: confidential (a server that keeps a secret) or public (a browser or native app)")
	default:
		bad("type", "type must be confidential or public, not %q", clip(in.Type))
	}

	if fromConfig {
		switch {
		case confidential && in.Secret == "":
			bad("secret", "a confidential client needs a secret")
		case confidential && len(in.Secret) < MinConfigClientSecret:
			bad("secret", "the secret is too short (at least %d characters; gatehouse generates 256-bit ones with `gatehouse client create`)", MinConfigClientSecret)
		case confidential && len(in.Secret) > maxClientSecret:
			bad("secret", "the secret is too long (at most %d characters)", maxClientSecret)
		case in.Type == ClientPublic && in.Secret != "":
			bad("secret", "a public client has no secret")
		}
	}

	// Grant types: authorization_code and refresh_token by default;
	// client_credentials only for a client that can keep a secret.
	grants := in.GrantTypes
	if len(grants) == 0 {
		grants = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	var seen []string
	for _, g := range grants {
		switch {
		case slices.Contains(seen, g):
			continue
		case g != GrantAuthorizationCode && g != GrantRefreshToken && g != GrantClientCredentials:
			bad("grant_types", "unknown grant type %q (authorization_code, refresh_token or client_credentials)", clip(g))
		case g == GrantClientCredentials && in.Type == ClientPublic:
			bad("grant_types", "client_credentials is only for confidential clients")
		}
		seen = append(seen, g)
	}
	c.GrantTypes = seen
	code := slices.Contains(seen, GrantAuthorizationCode)
	if slices.Contains(seen, GrantRefreshToken) && !code {
		bad("grant_types", "refresh_token needs authorization_code (only the code flow issues refresh tokens)")
	}

	// Redirect URIs: required for the code flow.
	c.RedirectURIs = checkURIs(in.RedirectURIs, "redirect_uris", "redirect URI", bad)
	if code && len(in.RedirectURIs) == 0 {
		bad("redirect_uris", "at least one redirect URI is required for the authorization_code grant")
	}
	c.PostLogoutRedirectURIs = checkURIs(in.PostLogoutRedirectURIs, "post_logout_redirect_uris", "post-logout redirect URI", bad)

	// Scopes: the role model's and OpenID Connect's; by default what the
	// code flow needs.
	if len(in.Scopes) > maxClientScopes {
		bad("scopes", "too many scopes (at most %d)", maxClientScopes)
	}
	for _, sc := range in.Scopes {
		switch {
		case slices.Contains(c.Scopes, sc): // a repeat
		case !slices.Contains(clientOIDCScopes, sc) && (knownScope == nil || !knownScope(sc)):
			bad("scopes", "unknown scope %q (known: the configured scopes and %s)", clip(sc), strings.Join(clientOIDCScopes, " "))
		default:
			c.Scopes = append(c.Scopes, sc)
		}
	}
	if len(in.Scopes) == 0 {
		if code {
			c.Scopes = []string{"openid", "profile", "email"}
			if slices.Contains(seen, GrantRefreshToken) {
				c.Scopes = append(c.Scopes, "offline_access")
			}
		} else {
			bad("scopes", "at least one scope is required for a client without the authorization_code grant")
		}
	}

	// PKCE: always for public clients; optional for confidential ones
	// (legacy relying parties, the conformance suite).
	c.RequirePKCE = true
	if in.RequirePKCE != nil {
		c.RequirePKCE = *in.RequirePKCE
	}
	if !c.RequirePKCE && in.Type == ClientPublic {
		bad("require_pkce", "public clients always need PKCE: require_pkce may be false only for confidential clients")
	}

	// Token endpoint authentication.
	c.TokenEndpointAuthMethod = in.TokenEndpointAuthMethod
	switch {
	case in.Type == ClientPublic && c.TokenEndpointAuthMethod == "":
		c.TokenEndpointAuthMethod = ClientAuthNone
	case in.Type == ClientPublic && c.TokenEndpointAuthMethod != ClientAuthNone:
		bad("token_endpoint_auth_method", "a public client has no secret: its token_endpoint_auth_method is none")
	case confidential && c.TokenEndpointAuthMethod == "":
		c.TokenEndpointAuthMethod = ClientAuthBasic
	case confidential && c.TokenEndpointAuthMethod != ClientAuthBasic && c.TokenEndpointAuthMethod != ClientAuthPost:
		bad("token_endpoint_auth_method", "a confidential client authenticates with client_secret_basic or client_secret_post, not %q", clip(c.TokenEndpointAuthMethod))
	}

	c.IDTokenAlg = in.IDTokenAlg
	if c.IDTokenAlg != "" && !slices.Contains(idTokenAlgs, c.IDTokenAlg) {
		bad("id_token_signed_response_alg", "id_token_signed_response_alg must be %s (or empty for the server's default), not %q", strings.Join(idTokenAlgs, ", "), clip(c.IDTokenAlg))
	}

	c.LogoURL = in.LogoURL
	if c.LogoURL != "" {
		u, err := url.Parse(c.LogoURL)
		switch {
		case len(c.LogoURL) > maxClientURILength:
			bad("logo_url", "logo_url is too long (at most %d characters)", maxClientURILength)
		case err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" ||
			strings.ContainsFunc(c.LogoURL, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			bad("logo_url", "logo_url must be an https URL (https://host/logo.png)")
		}
	}
	return c, errs
}

// checkURIs checks a list of redirect URIs and returns it without repeats.
func checkURIs(uris []string, field, what string, bad func(field, format string, args ...any)) []string {
	if len(uris) > maxClientURIs {
		bad(field, "too many %ss (at most %d)", what, maxClientURIs)
		return nil
	}
	var out []string
	for i, u := range uris {
		if err := checkClientURI(u, field, what); err != nil {
			bad(fmt.Sprintf("%s[%d]", field, i), "%s", err.(*Error).Message)
			continue
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// validClientID reports an id made of URL-safe characters (RFC 3986
// unreserved), so that it needs no escaping in a URL or a log line.
func validClientID(id string) bool {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._~-", r)) {
			return false
		}
	}
	return id != ""
}

// ValidateConfigClient checks a client of the configuration file
// (clients:) as SyncConfigClients will, with knownScope standing in for
// the role model (nil: only the OpenID Connect scopes are known), and
// returns every problem; nil when the client is valid. The configuration
// is checked at load time with it.
func ValidateConfigClient(in ClientInput, knownScope func(string) bool) []*Error {
	_, errs := buildClient(in, knownScope, true)
	return errs
}

// ErrClientFromConfig refuses a change over the API to a client declared
// in the configuration file.
var ErrClientFromConfig = &Error{Code: ECONFLICT, Message: "this client is declared in the configuration file (clients:) and is read-only here: change it there and restart"}

// redacted returns a copy of c without its secret hashes, for callers
// outside the registry: they need to know a client, not its secrets.
func redacted(c *Client) *Client {
	cp := *c
	cp.SecretHash, cp.PreviousSecretHash = "", ""
	return &cp
}

// CreateClient registers a client. Defaults: grant types
// authorization_code and refresh_token; token_endpoint_auth_method
// client_secret_basic for a confidential client and none for a public one;
// require_pkce true; scopes openid, profile and email (and offline_access
// with refresh_token). A confidential client gets a secret, returned here
// once and stored only as its SHA-256. The id is random unless fromConfig
// (a client of the configuration file, read-only over the API), which
// brings its own id and secret.
func (s *Service) CreateClient(ctx context.Context, in ClientInput, m Meta, fromConfig bool) (*Client, string, error) {
	c, errs := buildClient(in, s.roles.KnownScope, fromConfig)
	if len(errs) > 0 {
		return nil, "", errs[0]
	}
	secret := ""
	if c.Type == ClientConfidential {
		secret = NewClientSecret()
		if fromConfig {
			secret = in.Secret
		}
		c.SecretHash = HashToken(secret)
	}
	c.ID = NewID()
	if fromConfig {
		c.ID = in.ID
	}
	c.FromConfig = fromConfig
	c.CreatedAt = s.now()
	c.UpdatedAt = c.CreatedAt
	// A key of the client's ID-token algorithm exists before its first
	// ID token, so every node publishes it in time.
	if s.idTokens != nil && c.IDTokenAlg != "" {
		if err := s.idTokens.PrepareIDTokenAlg(ctx, c.IDTokenAlg); err != nil {
			return nil, "", err
		}
	}
	if err := s.st.Clients.CreateClient(ctx, c); err != nil {
		return nil, "", err
	}
	s.audit(ctx, EventClientCreated, m.Actor, m, clientDetails(c, fromConfig))
	if fromConfig {
		secret = "" // the operator has it; it is not shown again
	}
	return redacted(c), secret, nil
}

// clientDetails are the audit details of a client event: what the client
// is and may do, never its secret.
func clientDetails(c *Client, fromConfig bool) map[string]any {
	d := map[string]any{"client_id": c.ID, "name": c.Name, "type": c.Type, "redirect_uris": c.RedirectURIs,
		"grant_types": c.GrantTypes, "scopes": c.Scopes, "first_party": c.FirstParty, "require_pkce": c.RequirePKCE}
	if fromConfig {
		d["source"] = "config"
	}
	return d
}

// Client returns a registered client (without its secret hashes).
func (s *Service) Client(ctx context.Context, id string) (*Client, error) {
	c, err := s.st.Clients.ClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return redacted(c), nil
}

// ListClients returns every client ordered by name (without secret hashes).
func (s *Service) ListClients(ctx context.Context) ([]*Client, error) {
	cs, err := s.st.Clients.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	for i, c := range cs {
		cs[i] = redacted(c)
	}
	return cs, nil
}

// inputOf returns the settings of c as a ClientInput.
func inputOf(c *Client) ClientInput {
	pkce := c.RequirePKCE
	return ClientInput{Name: c.Name, Type: c.Type, RedirectURIs: slices.Clone(c.RedirectURIs),
		PostLogoutRedirectURIs: slices.Clone(c.PostLogoutRedirectURIs), GrantTypes: slices.Clone(c.GrantTypes),
		Scopes: slices.Clone(c.Scopes), FirstParty: c.FirstParty, RequirePKCE: &pkce,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, IDTokenAlg: c.IDTokenAlg, IDTokenClaims: c.IDTokenClaims, LogoURL: c.LogoURL}
}

// UpdateClient applies a patch to a client registered over the API or the
// command line; the result passes the same checks as a new client. A
// client of the configuration file is ErrClientFromConfig.
func (s *Service) UpdateClient(ctx context.Context, id string, p ClientPatch, m Meta) (*Client, error) {
	old, err := s.st.Clients.ClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if old.FromConfig {
		return nil, ErrClientFromConfig
	}
	in := inputOf(old)
	var changed []string
	set := func(name string, ok bool, apply func()) {
		if ok {
			apply()
			changed = append(changed, name)
		}
	}
	set("name", p.Name != nil, func() { in.Name = *p.Name })
	set("redirect_uris", p.RedirectURIs != nil, func() { in.RedirectURIs = *p.RedirectURIs })
	set("post_logout_redirect_uris", p.PostLogoutRedirectURIs != nil, func() { in.PostLogoutRedirectURIs = *p.PostLogoutRedirectURIs })
	set("grant_types", p.GrantTypes != nil, func() { in.GrantTypes = *p.GrantTypes })
	set("scopes", p.Scopes != nil, func() { in.Scopes = *p.Scopes })
	set("first_party", p.FirstParty != nil, func() { in.FirstParty = *p.FirstParty })
	set("require_pkce", p.RequirePKCE != nil, func() { in.RequirePKCE = p.RequirePKCE })
	set("token_endpoint_auth_method", p.TokenEndpointAuthMethod != nil, func() { in.TokenEndpointAuthMethod = *p.TokenEndpointAuthMethod })
	set("id_token_signed_response_alg", p.IDTokenAlg != nil, func() { in.IDTokenAlg = *p.IDTokenAlg })
	set("id_token_claims", p.IDTokenClaims != nil, func() { in.IDTokenClaims = *p.IDTokenClaims })
	set("logo_url", p.LogoURL != nil, func() { in.LogoURL = *p.LogoURL })
	c, errs := buildClient(in, s.roles.KnownScope, false)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	keep(c, old)
	c.UpdatedAt = s.now()
	if s.idTokens != nil && c.IDTokenAlg != "" {
		if err := s.idTokens.PrepareIDTokenAlg(ctx, c.IDTokenAlg); err != nil {
			return nil, err
		}
	}
	if err := s.st.Clients.UpdateClient(ctx, c); err != nil {
		return nil, err
	}
	d := clientDetails(c, false)
	d["changed"] = changed
	s.audit(ctx, EventClientUpdated, m.Actor, m, d)
	return redacted(c), nil
}

// keep copies onto c what an update does not change: the id, the secrets,
// the origin and the creation time.
func keep(c, old *Client) {
	c.ID, c.CreatedAt, c.FromConfig = old.ID, old.CreatedAt, old.FromConfig
	c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = old.SecretHash, old.PreviousSecretHash, old.PreviousSecretExpiresAt
}

// DeleteClient removes a client with its consents and codes, and revokes
// its refresh tokens. A client of the configuration file is
// ErrClientFromConfig (remove it from the file instead).
func (s *Service) DeleteClient(ctx context.Context, id string, m Meta) error {
	c, err := s.st.Clients.ClientByID(ctx, id)
	if err != nil {
		return err
	}
	if c.FromConfig {
		return ErrClientFromConfig
	}
	if err := s.st.Clients.DeleteClient(ctx, id, s.now()); err != nil {
		return err
	}
	s.audit(ctx, EventClientDeleted, m.Actor, m, map[string]any{"client_id": id, "name": c.Name})
	return nil
}

// RotateClientSecret gives a confidential client a new secret, returned
// here once; the previous one keeps working for ClientSecretGrace (a
// second rotation within it ends the first secret at once). It returns
// the new secret and when the previous one stops working.
func (s *Service) RotateClientSecret(ctx context.Context, id string, m Meta) (string, time.Time, error) {
	c, err := s.st.Clients.ClientByID(ctx, id)
	if err != nil {
		return "", time.Time{}, err
	}
	if c.FromConfig {
		return "", time.Time{}, ErrClientFromConfig
	}
	if c.Type != ClientConfidential {
		return "", time.Time{}, &Error{Code: ECONFLICT, Message: "a public client has no secret to rotate"}
	}
	secret := NewClientSecret()
	now := s.now()
	until := now.Add(ClientSecretGrace)
	if err := s.st.Clients.RotateClientSecret(ctx, id, HashToken(secret), until, now); err != nil {
		return "", time.Time{}, err
	}
	s.audit(ctx, EventClientSecretRotated, m.Actor, m, map[string]any{"client_id": id, "previous_valid_until": until})
	return secret, until, nil
}

// AuthenticateClient checks a client's credentials at the token
// endpoint (client_secret_basic, client_secret_post, or none for a public
// client). Every failure is ErrInvalidClient. A confidential client's
// secret is checked against the current hash and, until it expires, the
// previous one; a public client has no secret, and one sent is refused.
// Client ids are public (they appear in every authorization request), so
// an unknown id needs no decoy work; the hash comparisons are constant
// time and both run, so the answer's timing says nothing about which
// secret, or how much of one, matched.
func (s *Service) AuthenticateClient(ctx context.Context, id, secret string) (*Client, error) {
	if id == "" || len(id) > 256 || len(secret) > maxClientSecret {
		return nil, ErrInvalidClient
	}
	c, err := s.st.Clients.ClientByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidClient
	}
	if err != nil {
		return nil, err
	}
	if c.Type != ClientConfidential {
		if secret != "" {
			return nil, ErrInvalidClient
		}
		return redacted(c), nil
	}
	if secret == "" || c.SecretHash == "" {
		return nil, ErrInvalidClient
	}
	h := []byte(HashToken(secret))
	current := subtle.ConstantTimeCompare(h, []byte(c.SecretHash))
	previous := subtle.ConstantTimeCompare(h, []byte(c.PreviousSecretHash))
	live := c.PreviousSecretHash != "" && c.PreviousSecretExpiresAt != nil && s.now().Before(*c.PreviousSecretExpiresAt)
	if current != 1 && (previous != 1 || !live) {
		return nil, ErrInvalidClient
	}
	return redacted(c), nil
}

// SyncConfigClients makes the store's configuration-file clients those of
// ins (SPEC §14, clients:), at start-up: a client that is new is created,
// one that changed is replaced — a changed secret replaces the old one at
// once, with no grace period — and one no longer in the file is deleted
// (with its consents, codes and refresh tokens). A client of the file
// whose id an API client has takes that client over. Unchanged clients
// are not written. Each change is audited (details "source": "config").
func (s *Service) SyncConfigClients(ctx context.Context, ins []ClientInput) error {
	m := Meta{IP: "config"}
	want := map[string]bool{}
	var built []*Client
	for i, in := range ins {
		c, errs := buildClient(in, s.roles.KnownScope, true)
		if len(errs) > 0 {
			return fmt.Errorf("clients[%d] (%s): %s: %s", i, in.ID, errs[0].Field, errs[0].Message)
		}
		if want[in.ID] {
			return fmt.Errorf("clients[%d]: the id %q is used twice", i, in.ID)
		}
		want[in.ID] = true
		c.ID, c.FromConfig = in.ID, true
		if c.Type == ClientConfidential {
			c.SecretHash = HashToken(in.Secret)
		}
		built = append(built, c)
	}
	for _, c := range built {
		if err := s.syncConfigClient(ctx, c, m); err != nil {
			return fmt.Errorf("client %s: %w", c.ID, err)
		}
	}
	all, err := s.st.Clients.ListClients(ctx)
	if err != nil {
		return err
	}
	for _, c := range all {
		if !c.FromConfig || want[c.ID] {
			continue
		}
		if err := s.st.Clients.DeleteClient(ctx, c.ID, s.now()); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("client %s: %w", c.ID, err)
		}
		s.audit(ctx, EventClientDeleted, m.Actor, m, map[string]any{"client_id": c.ID, "name": c.Name, "source": "config"})
	}
	return nil
}

// syncConfigClient creates or replaces one client of the configuration
// file, whose SecretHash is the one it should have.
func (s *Service) syncConfigClient(ctx context.Context, c *Client, m Meta) error {
	now := s.now()
	old, err := s.st.Clients.ClientByID(ctx, c.ID)
	if errors.Is(err, ErrNotFound) {
		c.CreatedAt, c.UpdatedAt = now, now
		err = s.st.Clients.CreateClient(ctx, c)
		if err == nil {
			s.audit(ctx, EventClientCreated, m.Actor, m, clientDetails(c, true))
			return nil
		}
		if ErrorCode(err) != ECONFLICT {
			return err
		}
		// Another node starting at the same time created it: replace that.
		old, err = s.st.Clients.ClientByID(ctx, c.ID)
	}
	if err != nil {
		return err
	}
	hash := c.SecretHash
	keep(c, old)
	c.FromConfig = true
	if !old.FromConfig || !sameSettings(c, old) {
		c.UpdatedAt = now
		if err := s.st.Clients.UpdateClient(ctx, c); err != nil {
			return err
		}
		s.audit(ctx, EventClientUpdated, m.Actor, m, clientDetails(c, true))
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(old.SecretHash)) != 1 {
		// The old secret ends now: an operator who changes a secret in
		// the file may be replacing a leaked one.
		if err := s.st.Clients.RotateClientSecret(ctx, c.ID, hash, now, now); err != nil {
			return err
		}
		s.audit(ctx, EventClientSecretRotated, m.Actor, m, map[string]any{"client_id": c.ID, "source": "config"})
	}
	return nil
}

// sameSettings reports whether a and b have the same settings (not the
// id, secrets, origin or times).
func sameSettings(a, b *Client) bool {
	return a.Name == b.Name && a.Type == b.Type && slices.Equal(a.RedirectURIs, b.RedirectURIs) &&
		slices.Equal(a.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs) && slices.Equal(a.GrantTypes, b.GrantTypes) &&
		slices.Equal(a.Scopes, b.Scopes) && a.FirstParty == b.FirstParty && a.RequirePKCE == b.RequirePKCE &&
		a.TokenEndpointAuthMethod == b.TokenEndpointAuthMethod && a.IDTokenAlg == b.IDTokenAlg &&
		a.IDTokenClaims == b.IDTokenClaims && a.LogoURL == b.LogoURL
}
