// Package oidctest runs identity providers inside tests, all bound to
// 127.0.0.1:
//
//   - TestOP: a real OpenID Provider (zitadel/oidc v3's op package with the
//     in-memory storage of its example server, plus a tiny login page);
//   - StubOP: a stub provider (discovery, JWKS, authorize, token, userinfo)
//     whose ID tokens a test can forge: wrong issuer, audience, nonce,
//     expiry, signature, or alg none;
//   - GitHubStandIn: a stand-in for GitHub's OAuth2 endpoints and its
//     /user and /user/emails API, under the GitHub Enterprise layout;
//   - Browser: an HTTP client that follows redirects and fills in the
//     providers' login form, as a user's browser would.
//
// It is a test helper: nothing in the server imports it.
package oidctest

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"html/template"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is an account at a test provider.
type User struct {
	ID            string // the subject
	Username      string
	Password      string
	Email         string
	EmailVerified bool
	FirstName     string
	LastName      string
}

// OPOptions configures a TestOP.
type OPOptions struct {
	// Addr is where to listen; default 127.0.0.1:0. Give a fixed address
	// to start a provider where a registry already expects one.
	Addr         string
	ClientID     string // default "gatehouse"
	ClientSecret string // default "test-secret"
	// RedirectURIs are the client's registered redirect URIs (exact match).
	RedirectURIs []string
	// Users default to DefaultUser.
	Users []User
}

// DefaultUser is the account of a TestOP started without Users.
var DefaultUser = User{ID: "alice-sub-1", Username: "alice", Password: "alice-password",
	Email: "alice@example.com", EmailVerified: true, FirstName: "Alice", LastName: "Liddell"}

// TestOP is a real OpenID Provider (zitadel/oidc v3 op) running in the
// test process on 127.0.0.1. Its discovery, authorization endpoint (code
// flow with PKCE), token endpoint (client secret by HTTP Basic or form),
// ID tokens (RS256, signed with a fresh key) and userinfo are the
// library's; the email is served by userinfo only, not in the ID token.
type TestOP struct {
	Issuer       string // http://127.0.0.1:PORT
	ClientID     string
	ClientSecret string
	Storage      *storage.Storage

	users *userStore
	srv   *http.Server
	done  chan struct{}
}

// StartOP starts a TestOP and stops it when the test ends.
func StartOP(t testing.TB, o OPOptions) *TestOP {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.ClientID == "" {
		o.ClientID = "gatehouse"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "test-secret"
	}
	if len(o.Users) == 0 {
		o.Users = []User{DefaultUser}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatalf("test OP: listen %s: %v", o.Addr, err)
	}
	issuer := "http://" + ln.Addr().String()
	us := &userStore{users: map[string]*storage.User{}}
	for _, u := range o.Users {
		us.add(u)
	}
	client := storage.WebClient(o.ClientID, o.ClientSecret, o.RedirectURIs...)
	st := storage.NewStorageWithClients(us, map[string]*storage.Client{o.ClientID: client})

	var key [32]byte
	_, _ = rand.Read(key[:])
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:          sha256.Sum256(key[:]),
		CodeMethodS256:     true,
		AuthMethodPost:     true,
		SupportedUILocales: []language.Tag{language.English},
	}, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		ln.Close()
		t.Fatalf("test OP: %v", err)
	}
	callback := op.AuthCallbackURL(provider)
	login := func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			renderLogin(w, r.URL.Query().Get("authRequestID"), "")
		case http.MethodPost:
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			id := r.PostForm.Get("id")
			if err := st.CheckUsernamePassword(r.PostForm.Get("username"), r.PostForm.Get("password"), id); err != nil {
				renderLogin(w, id, err.Error())
				return
			}
			http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}
	mux := http.NewServeMux()
	// The example client's login URL is /login/username?authRequestID=…
	mux.Handle("/login/username", op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(login))
	mux.Handle("/", provider)

	p := &TestOP{Issuer: issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Storage: st, users: us,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("test OP: %v", err)
		}
	}()
	t.Cleanup(p.Close)
	return p
}

// AddUser adds an account to the provider.
func (p *TestOP) AddUser(u User) { p.users.add(u) }

// Close stops the provider.
func (p *TestOP) Close() {
	_ = p.srv.Close()
	<-p.done
}

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html><head><meta charset="UTF-8"><title>Test OP login</title></head><body>
<form method="POST" action="/login/username">
<input type="hidden" name="id" value="{{.ID}}">
<input name="username" autocomplete="username">
<input name="password" type="password" autocomplete="current-password">
<p class="error">{{.Error}}</p>
<button type="submit">Login</button>
</form></body></html>`))

func renderLogin(w http.ResponseWriter, id, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if msg != "" {
		w.WriteHeader(http.StatusUnauthorized)
	}
	_ = loginPage.Execute(w, struct{ ID, Error string }{id, msg})
}

// userStore is the example storage's UserStore, safe for concurrent use.
type userStore struct {
	mu    sync.Mutex
	users map[string]*storage.User
}

func (s *userStore) add(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = &storage.User{ID: u.ID, Username: u.Username, Password: u.Password, Email: u.Email,
		EmailVerified: u.EmailVerified, FirstName: u.FirstName, LastName: u.LastName, PreferredLanguage: language.English}
}

func (s *userStore) GetUserByID(id string) *storage.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[id]
}

func (s *userStore) GetUserByUsername(name string) *storage.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func (s *userStore) ExampleClientID() string { return storage.ServiceUserID }

// FreeAddr returns a 127.0.0.1 address nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
