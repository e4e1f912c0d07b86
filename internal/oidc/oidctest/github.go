package oidctest

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// GitHubUser is what the stand-in's /api/v3/user answers.
type GitHubUser struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
}

// GitHubEmail is one entry of /api/v3/user/emails.
type GitHubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// GitHubStandIn stands in for GitHub (Enterprise layout, so a provider of
// type github with issuer = URL uses it): /login/oauth/authorize (approves
// at once), /login/oauth/access_token (client secret, PKCE S256, codes
// single-use), /api/v3/user and /api/v3/user/emails (bearer token).
type GitHubStandIn struct {
	URL          string
	ClientID     string
	ClientSecret string

	mu     sync.Mutex
	user   GitHubUser
	emails []GitHubEmail
	codes  map[string]stubCode
	tokens map[string]bool
}

// StartGitHubStandIn starts the stand-in on 127.0.0.1 for client
// "gh-client" with secret "gh-secret".
func StartGitHubStandIn(t testing.TB) *GitHubStandIn {
	t.Helper()
	g := &GitHubStandIn{ClientID: "gh-client", ClientSecret: "gh-secret", codes: map[string]stubCode{}, tokens: map[string]bool{},
		user: GitHubUser{ID: 4242, Login: "octocat", Name: "The Octocat"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.accessToken)
	mux.HandleFunc("GET /api/v3/user", g.api(func() any { return g.user }))
	mux.HandleFunc("GET /api/v3/user/emails", g.api(func() any { return g.emails }))
	srv := httptest.NewServer(mux)
	g.URL = srv.URL
	t.Cleanup(srv.Close)
	return g
}

// Set sets the user and their emails.
func (g *GitHubStandIn) Set(u GitHubUser, emails ...GitHubEmail) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.user, g.emails = u, emails
}

func (g *GitHubStandIn) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != g.ClientID || q.Get("code_challenge_method") != "S256" || q.Get("redirect_uri") == "" || q.Get("state") == "" {
		http.Error(w, "GitHub stand-in: bad authorization request", http.StatusBadRequest)
		return
	}
	code := randomString()
	g.mu.Lock()
	g.codes[code] = stubCode{challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri")}
	g.mu.Unlock()
	redirectWithCode(w, r, q.Get("redirect_uri"), code, q.Get("state"))
}

func (g *GitHubStandIn) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "bad_request"})
		return
	}
	id, secret := clientCredentials(r)
	if id != g.ClientID || secret != g.ClientSecret {
		writeJSON(w, 401, map[string]string{"error": "incorrect_client_credentials"})
		return
	}
	g.mu.Lock()
	c, found := g.codes[r.PostForm.Get("code")]
	delete(g.codes, r.PostForm.Get("code"))
	g.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !found || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge || c.redirectURI != r.PostForm.Get("redirect_uri") {
		// GitHub answers a bad code with 200 and an error member.
		writeJSON(w, 200, map[string]string{"error": "bad_verification_code"})
		return
	}
	at := "gho_" + randomString()
	g.mu.Lock()
	g.tokens[at] = true
	g.mu.Unlock()
	writeJSON(w, 200, map[string]string{"access_token": at, "token_type": "bearer", "scope": "read:user,user:email"})
}

func (g *GitHubStandIn) api(body func() any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		g.mu.Lock()
		ok := g.tokens[tok]
		v := body()
		g.mu.Unlock()
		if !ok {
			writeJSON(w, 401, map[string]string{"message": "Bad credentials"})
			return
		}
		if v == nil {
			v = []GitHubEmail{}
		}
		if e, isList := v.([]GitHubEmail); isList && e == nil {
			v = []GitHubEmail{}
		}
		writeJSON(w, 200, v)
	}
}
