package guard_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse/guard"
)

// A resource server: every route names what it needs.
func Example() {
	g, err := guard.New(guard.Config{
		Issuer:           "https://auth.example.com",               // Gatehouse's GATEHOUSE_PUBLIC_URL
		IntrospectionKey: os.Getenv("GATEHOUSE_INTROSPECTION_KEY"), // an API key with scope introspect
	})
	if err != nil {
		log.Fatal(err)
	}
	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	create := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := guard.PrincipalFrom(r.Context())
		fmt.Fprintln(w, "created by", p.Subject)
	})
	remove := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

	mux := http.NewServeMux()
	mux.Handle("GET /posts", g.Optional(list))                                                    // anyone; a bad token is still 401
	mux.Handle("POST /posts", g.Middleware(guard.RequireScopes("write")(create)))                 // the token must carry write
	mux.Handle("DELETE /posts/{id}", g.Middleware(guard.RequireRoles("editor", "admin")(remove))) // the user must be editor or admin
	srv := &http.Server{Addr: "127.0.0.1:8081", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func ExampleGuard_Middleware() {
	g, err := guard.New(guard.Config{Issuer: "https://auth.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := guard.PrincipalFrom(r.Context()) // always there behind Middleware
		fmt.Fprintf(w, "hello %s (%s)", p.Subject, p.Kind)
	}))

	for _, authz := range []string{"", "Bearer not-a-jwt"} {
		r := httptest.NewRequest("GET", "/me", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 401 Bearer realm="gatehouse"
	// 401 Bearer realm="gatehouse", error="invalid_token", error_description="the credential is invalid, expired or revoked"
}

func ExampleRequireScopes() {
	create := guard.RequireScopes("write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	// Behind Guard.Middleware the principal comes from the credential;
	// here it is set by hand.
	readOnly := &guard.Principal{Subject: "alice", Kind: guard.KindAccessToken, Scopes: []string{"read"}}
	r := httptest.NewRequest("POST", "/posts", nil)
	w := httptest.NewRecorder()
	create.ServeHTTP(w, r.WithContext(guard.WithPrincipal(r.Context(), readOnly)))

	var problem struct {
		Detail       string `json:"detail"`
		MissingScope string `json:"missing_scope"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &problem)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	fmt.Println(problem.Detail)
	// Output:
	// 403 Bearer realm="gatehouse", error="insufficient_scope", scope="write"
	// the credential lacks the scope write (missing scope: write)
}

// "Load the post, allow its author or an admin": Authorize runs the
// handler only for callers the rule allows.
func ExampleAuthorize() {
	type Post struct{ ID, Author, Body string }
	posts := map[string]*Post{"1": {ID: "1", Author: "alice", Body: "hello"}}

	load := func(w http.ResponseWriter, r *http.Request) (*Post, bool) {
		p, ok := posts[r.PathValue("id")]
		if !ok {
			http.Error(w, "no such post", http.StatusNotFound) // or 403, to hide it: your choice
		}
		return p, ok
	}
	authorOrAdmin := func(p *guard.Principal, post *Post) error { return guard.OwnerOr(p, post.Author, "admin") }
	edit := func(w http.ResponseWriter, r *http.Request, post *Post) {
		fmt.Fprintf(w, "post %s edited", post.ID)
	}

	mux := http.NewServeMux()
	// In a service: g.Middleware(guard.RequireScopes("write")(guard.Authorize(...))).
	mux.Handle("PATCH /posts/{id}", guard.Authorize(load, authorOrAdmin, edit))

	for _, c := range []struct {
		who  *guard.Principal
		path string
	}{
		{&guard.Principal{Subject: "alice", Roles: []string{"user"}}, "/posts/1"},
		{&guard.Principal{Subject: "bob", Roles: []string{"user"}}, "/posts/1"},
		{&guard.Principal{Subject: "root", Roles: []string{"admin"}}, "/posts/1"},
		{&guard.Principal{Subject: "alice", Roles: []string{"user"}}, "/posts/2"},
	} {
		r := httptest.NewRequest("PATCH", c.path, nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r.WithContext(guard.WithPrincipal(r.Context(), c.who)))
		var problem struct{ Detail string }
		detail := strings.TrimSpace(w.Body.String())
		if json.Unmarshal(w.Body.Bytes(), &problem) == nil {
			detail = problem.Detail
		}
		fmt.Printf("%s: %d %s\n", c.who.Subject, w.Code, detail)
	}
	// Output:
	// alice: 200 post 1 edited
	// bob: 403 only the owner of this resource or a user with the role admin may do this
	// root: 200 post 1 edited
	// alice: 404 no such post
}

// Check is the decision without the plumbing, for handlers that accept
// several kinds of caller or write their own errors.
func ExampleGuard_Check() {
	g, err := guard.New(guard.Config{Issuer: "https://auth.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.Check(r)
		if err != nil {
			log.Printf("refused: %v", err) // the reason, for logs only
			guard.WriteError(w, r, err)    // 401, 403 or 503, no reason
			return
		}
		fmt.Fprintln(w, "hello", p.Subject)
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Println(w.Code)
	// Output:
	// 401
}

// Moving money needs a sign-in with two factors: an aal1 caller gets the
// RFC 9470 challenge, steps up with Gatehouse (POST /v1/mfa/step-up) and
// retries.
func ExampleRequireAAL2() {
	payout := guard.RequireAAL2()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "paid")
	}))
	for _, p := range []*guard.Principal{
		{Subject: "alice", Kind: guard.KindAccessToken, ACR: guard.AAL1, AMR: []string{"pwd"}},
		{Subject: "alice", Kind: guard.KindAccessToken, ACR: guard.AAL2, AMR: []string{"pwd", "otp", "mfa"}},
	} {
		r := httptest.NewRequest("POST", "/payouts", nil)
		w := httptest.NewRecorder()
		payout.ServeHTTP(w, r.WithContext(guard.WithPrincipal(r.Context(), p)))
		var problem struct{ Code string }
		_ = json.Unmarshal(w.Body.Bytes(), &problem)
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %d %s %s", p.ACR, w.Code, problem.Code, w.Header().Get("WWW-Authenticate"))))
	}
	// Output:
	// aal1 401 step_up_required Bearer realm="gatehouse", error="insufficient_user_authentication", error_description="this action requires a sign-in with two factors (aal2)", acr_values="aal2"
	// aal2 200
}

// Deleting the account needs a sign-in in the last 10 minutes, whatever
// the token's age.
func ExampleRequireFreshAuth() {
	remove := guard.RequireFreshAuth(10 * time.Minute)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, ago := range []time.Duration{2 * time.Minute, time.Hour} {
		p := &guard.Principal{Subject: "alice", ACR: guard.AAL2, AuthTime: time.Now().Add(-ago)}
		r := httptest.NewRequest("DELETE", "/account", nil)
		w := httptest.NewRecorder()
		remove.ServeHTTP(w, r.WithContext(guard.WithPrincipal(r.Context(), p)))
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%v %d %s", ago, w.Code, w.Header().Get("WWW-Authenticate"))))
	}
	// Output:
	// 2m0s 204
	// 1h0m0s 401 Bearer realm="gatehouse", error="insufficient_user_authentication", error_description="this action requires a sign-in within the last 10 minutes", max_age=600
}

// With the revocation feed, a token is refused about a second after it is
// revoked (logout, password change, role change), not when it expires.
func ExampleConfig_revocationFeed() {
	g, err := guard.New(guard.Config{
		Issuer:           "https://auth.example.com",
		IntrospectionKey: os.Getenv("GATEHOUSE_INTROSPECTION_KEY"), // the feed needs scope introspect
		RevocationFeed:   true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close() // New started the feed; Close stops it

	registry := prometheus.NewRegistry()
	registry.MustRegister(g.Collector()) // guard_revocation_feed_lag_seconds

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !g.FeedHealthy() { // out of rotation until the revocations are known
			http.Error(w, "revocation feed not up to date", http.StatusServiceUnavailable)
		}
	})
	mux.Handle("GET /posts", g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	srv := &http.Server{Addr: "127.0.0.1:8081", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Print(err) // and the deferred Close runs
	}
}
