package guard_test

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/guard"
	"gatehouse/internal/revfeed"
)

// fakeClock is a settable clock shared by the fake Gatehouse and the guard.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signingKey is a key the test controls.
type signingKey struct {
	kid, alg string
	priv     crypto.Signer
}

func (k *signingKey) method() jwt.SigningMethod { return jwt.GetSigningMethod(k.alg) }

func (k *signingKey) jwk() map[string]string {
	j := map[string]string{"kid": k.kid, "alg": k.alg, "use": "sig"}
	b := base64.RawURLEncoding.EncodeToString
	switch p := k.priv.Public().(type) {
	case ed25519.PublicKey:
		j["kty"], j["crv"], j["x"] = "OKP", "Ed25519", b(p)
	case *ecdsa.PublicKey:
		raw, err := p.Bytes() // uncompressed point: 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		j["kty"], j["crv"], j["x"], j["y"] = "EC", "P-256", b(raw[1:33]), b(raw[33:65])
	case *rsa.PublicKey:
		j["kty"], j["n"], j["e"] = "RSA", b(p.N.Bytes()), b(big.NewInt(int64(p.E)).Bytes())
	}
	return j
}

var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newKey(t testing.TB, kid, alg string) *signingKey {
	t.Helper()
	k := &signingKey{kid: kid, alg: alg}
	var err error
	switch alg {
	case "EdDSA":
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	case "ES256":
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		k.priv = rsaKey()
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeGatehouse serves a JWKS and an introspection endpoint the way
// Gatehouse does, and counts the calls.
type fakeGatehouse struct {
	t     testing.TB
	URL   string
	clock *fakeClock
	srv   *httptest.Server

	mu        sync.Mutex
	published []*signingKey
	jwksDown  bool
	introDown int                       // a status code to answer introspection with, 0 = normal
	active    map[string]map[string]any // credential → introspection answer
	lastKey   string                    // X-API-Key of the last introspection
	lastForm  url.Values

	jwksHits  atomic.Int32
	introHits atomic.Int32
	gate      chan struct{} // when set, introspection waits for it

	// The revocation feed (GET /v1/revocations/stream).
	feedSeq    int64
	feedEvents []revfeed.Event             // every event so far: the snapshot
	feedDown   int                         // a status code to answer the stream with, 0 = serve it
	feedSubs   map[chan revfeed.Event]bool // the open streams
	feedKill   chan struct{}               // closed to end the open streams
	feedHits   atomic.Int32                // stream requests
	feedOpen   atomic.Int32                // streams open now
}

const introKey = "gth_introspectionKeyOfTheResourceServer000"

func newFakeGatehouse(t testing.TB, clock *fakeClock, keys ...*signingKey) *fakeGatehouse {
	t.Helper()
	f := &fakeGatehouse{t: t, clock: clock, published: keys, active: map[string]map[string]any{},
		feedSubs: map[chan revfeed.Event]bool{}, feedKill: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		f.jwksHits.Add(1)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.jwksDown {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		keys := []map[string]string{}
		for _, k := range f.published {
			keys = append(keys, k.jwk())
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	mux.HandleFunc("POST /oauth2/introspect", func(w http.ResponseWriter, r *http.Request) {
		f.introHits.Add(1)
		f.mu.Lock()
		gate, down := f.gate, f.introDown
		f.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if down != 0 {
			http.Error(w, "down", down)
			return
		}
		if r.Header.Get("X-API-Key") != introKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil || r.URL.RawQuery != "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.lastKey, f.lastForm = r.Header.Get("X-API-Key"), r.PostForm
		ans, ok := f.active[r.PostForm.Get("token")]
		f.mu.Unlock()
		if !ok {
			ans = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	})
	mux.HandleFunc("GET /v1/revocations/stream", f.serveFeed)
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// serveFeed is the revocation feed as Gatehouse serves it: every event
// (the snapshot), ready, then live events.
func (f *fakeGatehouse) serveFeed(w http.ResponseWriter, r *http.Request) {
	f.feedHits.Add(1)
	if r.Header.Get("X-API-Key") != introKey {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	if f.feedDown != 0 {
		status := f.feedDown
		f.mu.Unlock()
		http.Error(w, "down", status)
		return
	}
	snapshot := slices.Clone(f.feedEvents)
	live := make(chan revfeed.Event, 64)
	f.feedSubs[live] = true
	kill := f.feedKill
	f.mu.Unlock()
	f.feedOpen.Add(1)
	defer func() {
		f.mu.Lock()
		delete(f.feedSubs, live)
		f.mu.Unlock()
		f.feedOpen.Add(-1)
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	bw := bufio.NewWriter(w)
	write := func(ev revfeed.Event) {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(bw, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, b)
	}
	cursor := "0-0"
	for _, ev := range snapshot {
		write(ev)
		cursor = ev.ID
	}
	fmt.Fprintf(bw, "event: ready\ndata: {\"cursor\":%q}\n\n", cursor)
	rc := http.NewResponseController(w)
	flush := func() { _ = bw.Flush(); _ = rc.Flush() }
	flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-kill:
			return
		case ev := <-live:
			write(ev)
			flush()
		}
	}
}

// revoke records a revocation event and sends it to the open streams, as
// Gatehouse does when one commits.
func (f *fakeGatehouse) revoke(ev revfeed.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.feedSeq++
	if ev.At.IsZero() {
		ev.At = f.clock.Now()
	}
	ev.ID = revfeed.Cursor{Seq: f.feedSeq, At: ev.At}.String()
	f.feedEvents = append(f.feedEvents, ev)
	for live := range f.feedSubs {
		select {
		case live <- ev:
		default:
			f.t.Error("fake gatehouse: a feed stream is not reading")
		}
	}
}

// feedOutage ends the open streams and answers new ones with status; 0
// serves them again.
func (f *fakeGatehouse) feedOutage(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.feedDown = status
	if status != 0 {
		close(f.feedKill)
		f.feedKill = make(chan struct{})
	}
}

func (f *fakeGatehouse) publish(keys ...*signingKey) {
	f.mu.Lock()
	f.published = keys
	f.mu.Unlock()
}

func (f *fakeGatehouse) set(fn func(f *fakeGatehouse)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// activate makes introspection report cred as active.
func (f *fakeGatehouse) activate(cred, tokenType, sub, scope string, roles ...string) {
	f.set(func(f *fakeGatehouse) {
		f.active[cred] = map[string]any{"active": true, "token_type": tokenType, "sub": sub, "scope": scope,
			"iat": f.clock.Now().Unix(), "username": sub + "@example.test", "roles": roles, "iss": f.URL}
	})
}

// claims are the claims Gatehouse puts in an access token.
func (f *fakeGatehouse) claims(sub string, roles ...string) jwt.MapClaims {
	now := f.clock.Now()
	return jwt.MapClaims{
		"iss": f.URL, "sub": sub, "aud": []string{f.URL},
		"exp": now.Add(15 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"jti": rand.Text(), "client_id": "web", "scope": "read write", "roles": roles, "email": sub + "@example.test",
	}
}

// sign signs claims as Gatehouse does (typ at+jwt, kid), after edit may
// change the header or claims.
func sign(t testing.TB, k *signingKey, c jwt.MapClaims, edit ...func(h map[string]any, c jwt.MapClaims)) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method(), c)
	tok.Header["kid"] = k.kid
	tok.Header["typ"] = "at+jwt"
	for _, e := range edit {
		e(tok.Header, c)
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newGuard(t testing.TB, f *fakeGatehouse, edit ...func(*guard.Config)) *guard.Guard {
	t.Helper()
	cfg := guard.Config{Issuer: f.URL, IntrospectionKey: introKey, Now: f.clock.Now, Logger: discard}
	for _, e := range edit {
		e(&cfg)
	}
	g, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() }) // before the fake closes: cleanups run last first
	return g
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func request(method string, h http.Header) *http.Request {
	r := httptest.NewRequest(method, "http://api.example.test/posts", nil)
	for k, v := range h {
		r.Header[k] = v
	}
	return r
}
