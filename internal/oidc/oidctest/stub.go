package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signing says how a StubOP signs its ID tokens.
type Signing int

const (
	// SignValid signs with the key published in the stub's JWKS (RS256).
	SignValid Signing = iota
	// SignOtherKey signs with another RSA key under the published key id.
	SignOtherKey
	// SignNone sends an unsigned token (alg none).
	SignNone
	// SignHS256ClientSecret signs with HS256 keyed by the client secret
	// (the algorithm-confusion attack).
	SignHS256ClientSecret
)

// Forge changes the ID tokens a StubOP issues.
type Forge struct {
	// Claims edits the claims before signing (iss, aud, exp, nonce, …).
	Claims  func(c jwt.MapClaims)
	Signing Signing
}

// StubOP is a stub OpenID Provider written for these tests, NOT a real
// provider: discovery, JWKS, an authorization endpoint that approves at
// once, a token endpoint (client secret by HTTP Basic or form, PKCE S256
// checked, codes single-use) and userinfo. Unlike TestOP, a test can forge
// its ID tokens (see Forge) to check that they are refused.
type StubOP struct {
	URL          string // the issuer, http://127.0.0.1:PORT
	ClientID     string
	ClientSecret string

	srv      *httptest.Server
	key      *rsa.PrivateKey
	otherKey *rsa.PrivateKey

	mu    sync.Mutex
	user  User
	forge Forge
	// EmailInIDToken puts email and email_verified into the ID token
	// (userinfo serves them either way).
	emailInIDToken  bool
	userinfoSubject string
	codes           map[string]stubCode
	access          map[string]string // access token → subject
}

type stubCode struct {
	nonce, challenge, redirectURI, subject string
}

// StartStubOP starts a StubOP on 127.0.0.1 for client "gatehouse" with
// secret "stub-secret"; user defaults to DefaultUser.
func StartStubOP(t testing.TB) *StubOP {
	t.Helper()
	s := &StubOP{ClientID: "gatehouse", ClientSecret: "stub-secret", user: DefaultUser,
		codes: map[string]stubCode{}, access: map[string]string{}}
	var err error
	if s.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if s.otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /userinfo", s.userinfo)
	s.srv = httptest.NewServer(mux) // binds 127.0.0.1
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// SetForge sets how the next ID tokens are made.
func (s *StubOP) SetForge(f Forge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forge = f
}

// SetUser sets who signs in next.
func (s *StubOP) SetUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = u
}

// SetEmailInIDToken puts the email claims into the ID token.
func (s *StubOP) SetEmailInIDToken(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emailInIDToken = on
}

// SetUserinfoSubject makes userinfo answer for another subject ("" for the
// token's own).
func (s *StubOP) SetUserinfoSubject(sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userinfoSubject = sub
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *StubOP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{
		"issuer":                                s.URL,
		"authorization_endpoint":                s.URL + "/authorize",
		"token_endpoint":                        s.URL + "/token",
		"jwks_uri":                              s.URL + "/jwks",
		"userinfo_endpoint":                     s.URL + "/userinfo",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

const stubKID = "stub-key-1"

func (s *StubOP) jwks(w http.ResponseWriter, _ *http.Request) {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	pub := s.key.PublicKey
	writeJSON(w, 200, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": stubKID,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func (s *StubOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != s.ClientID || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("redirect_uri") == "" {
		http.Error(w, "stub OP: bad authorization request", http.StatusBadRequest)
		return
	}
	code := randomString()
	s.mu.Lock()
	s.codes[code] = stubCode{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), subject: s.user.ID}
	s.mu.Unlock()
	redirectWithCode(w, r, q.Get("redirect_uri"), code, q.Get("state"))
}

func (s *StubOP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret := clientCredentials(r)
	if id != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	s.mu.Lock()
	c, found := s.codes[r.PostForm.Get("code")]
	delete(s.codes, r.PostForm.Get("code"))
	forge, user, emailInID := s.forge, s.user, s.emailInIDToken
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if r.PostForm.Get("grant_type") != "authorization_code" || !found || c.redirectURI != r.PostForm.Get("redirect_uri") ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": s.URL, "sub": c.subject, "aud": s.ClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	if c.nonce != "" {
		claims["nonce"] = c.nonce
	}
	if emailInID {
		claims["email"], claims["email_verified"] = user.Email, user.EmailVerified
		claims["name"] = user.FirstName + " " + user.LastName
	}
	if forge.Claims != nil {
		forge.Claims(claims)
	}
	idt, err := s.sign(claims, forge.Signing)
	if err != nil {
		writeJSON(w, 500, map[string]string{"error": "server_error", "error_description": err.Error()})
		return
	}
	at := randomString()
	s.mu.Lock()
	s.access[at] = c.subject
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300, "id_token": idt})
}

func (s *StubOP) sign(c jwt.MapClaims, how Signing) (string, error) {
	var t *jwt.Token
	switch how {
	case SignNone:
		t = jwt.NewWithClaims(jwt.SigningMethodNone, c)
		t.Header["kid"] = stubKID
		return t.SignedString(jwt.UnsafeAllowNoneSignatureType)
	case SignHS256ClientSecret:
		t = jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		t.Header["kid"] = stubKID
		return t.SignedString([]byte(s.ClientSecret))
	case SignOtherKey:
		t = jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		t.Header["kid"] = stubKID
		return t.SignedString(s.otherKey)
	}
	t = jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = stubKID
	return t.SignedString(s.key)
}

func (s *StubOP) userinfo(w http.ResponseWriter, r *http.Request) {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	s.mu.Lock()
	sub, ok := "", false
	if len(h) > len(prefix) {
		sub, ok = s.access[h[len(prefix):]]
	}
	user, override := s.user, s.userinfoSubject
	s.mu.Unlock()
	if !ok {
		writeJSON(w, 401, map[string]string{"error": "invalid_token"})
		return
	}
	if override != "" {
		sub = override
	}
	writeJSON(w, 200, map[string]any{"sub": sub, "email": user.Email, "email_verified": user.EmailVerified,
		"name": user.FirstName + " " + user.LastName})
}

func randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// redirectWithCode sends the browser back to the client with a code and the
// state it was given, as an authorization endpoint does.
func redirectWithCode(w http.ResponseWriter, r *http.Request, redirectURI, code, state string) {
	to, _ := url.Parse(redirectURI)
	v := to.Query()
	v.Set("code", code)
	v.Set("state", state)
	to.RawQuery = v.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

// clientCredentials reads client_secret_basic (form-encoded, RFC 6749
// §2.3.1) or client_secret_post credentials from a parsed token request.
func clientCredentials(r *http.Request) (id, secret string) {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}
