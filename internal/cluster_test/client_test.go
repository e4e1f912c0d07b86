package clustertest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

var httpClient = &http.Client{Timeout: 20 * time.Second}

// response is an answer with its body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// String is the status and the start of the body, for failure messages.
func (r *response) String() string {
	b := string(r.Body)
	if len(b) > 300 {
		b = b[:300] + "…"
	}
	return fmt.Sprintf("%d %s", r.Status, strings.TrimSpace(b))
}

// JSON decodes the body as a JSON object.
func (r *response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object (%v): %s", err, r)
	}
	return m
}

// Str returns a string member of the JSON body, failing when it is missing.
func (r *response) Str(t *testing.T, key string) string {
	t.Helper()
	s, _ := r.JSON(t)[key].(string)
	if s == "" {
		t.Fatalf("no %q string in %s", key, r)
	}
	return s
}

// option adds something to a request.
type option func(*http.Request)

// fromIP makes the request come from ip: the nodes trust X-Forwarded-For
// from 127.0.0.1, as from a load balancer.
func fromIP(ip string) option {
	return func(r *http.Request) { r.Header.Set("X-Forwarded-For", ip) }
}

// withCookie authenticates the request with a session cookie, sent as a
// page of the public origin would send it: the public host differs from
// the socket's, so Sec-Fetch-Site is what marks the request same-origin for
// the CSRF check.
func withCookie(c *http.Cookie) option {
	return func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
}

// sameOrigin marks a request without a cookie (a login) as same-origin.
func sameOrigin(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-origin") }

// withBearer authenticates the request with an access token.
func withBearer(tok string) option {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// do sends one request to the node. body is nil, url.Values (a form) or
// anything else (JSON).
func (n *node) do(t *testing.T, method, path string, body any, opts ...option) *response {
	t.Helper()
	var (
		rd    io.Reader
		ctype string
	)
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(t.Context(), method, n.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, o := range opts {
		o(req)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on node %s: %v", method, path, n.Name, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s on node %s: reading the body: %v", method, path, n.Name, err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// user is an account and the client address its requests come from.
type user struct {
	Email, Password string
	IP              string
}

// randomIP returns a client address of its own, so that per-IP limits of
// one user do not count another's requests.
func randomIP() string {
	return fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), 1+rand.IntN(254))
}

// newUser registers a fresh account through n.
func newUser(t *testing.T, n *node) *user {
	t.Helper()
	u := &user{Email: "u-" + randomHex(t, 6) + "@example.com", Password: "cluster pass phrase " + randomHex(t, 4), IP: randomIP()}
	r := n.do(t, "POST", "/v1/register", map[string]string{"email": u.Email, "password": u.Password}, fromIP(u.IP))
	if r.Status != http.StatusCreated {
		t.Fatalf("registering %s on node %s: %s", u.Email, n.Name, r)
	}
	return u
}

// sessionLogin is POST /v1/sessions with the user's credentials.
func (n *node) sessionLogin(t *testing.T, u *user, password, ip string) *response {
	t.Helper()
	return n.do(t, "POST", "/v1/sessions", map[string]string{"email": u.Email, "password": password}, fromIP(ip), sameOrigin)
}

// login starts a cookie session on n and returns its cookie and id.
func (n *node) login(t *testing.T, u *user) (*http.Cookie, string) {
	t.Helper()
	r := n.sessionLogin(t, u, u.Password, u.IP)
	if r.Status != http.StatusCreated {
		t.Fatalf("session login of %s on node %s: %s", u.Email, n.Name, r)
	}
	res := http.Response{Header: r.Header}
	for _, c := range res.Cookies() {
		if c.HttpOnly && c.Value != "" {
			sess, _ := r.JSON(t)["session"].(map[string]any)
			id, _ := sess["id"].(string)
			if id == "" {
				t.Fatalf("session login on node %s: no session id in %s", n.Name, r)
			}
			return c, id
		}
	}
	t.Fatalf("session login on node %s set no session cookie: %v", n.Name, r.Header.Values("Set-Cookie"))
	return nil, ""
}

// me is GET /v1/me with the given credentials.
func (n *node) me(t *testing.T, u *user, cred option) *response {
	t.Helper()
	return n.do(t, "GET", "/v1/me", nil, cred, fromIP(u.IP))
}

// passwordGrant is POST /oauth2/token with grant_type=password.
func (n *node) passwordGrant(t *testing.T, u *user, password, ip string) *response {
	t.Helper()
	return n.do(t, "POST", "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {u.Email}, "password": {password}}, fromIP(ip))
}

// tokens logs in with the password grant and returns the access and
// refresh tokens.
func (n *node) tokens(t *testing.T, u *user) (access, refresh string) {
	t.Helper()
	r := n.passwordGrant(t, u, u.Password, u.IP)
	if r.Status != http.StatusOK {
		t.Fatalf("password grant of %s on node %s: %s", u.Email, n.Name, r)
	}
	return r.Str(t, "access_token"), r.Str(t, "refresh_token")
}

// refresh is POST /oauth2/token with grant_type=refresh_token.
func (n *node) refresh(t *testing.T, u *user, rt string) *response {
	t.Helper()
	return n.do(t, "POST", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, fromIP(u.IP))
}

// kids returns the sorted key ids of the node's JWKS.
func (n *node) kids(t *testing.T) []string {
	t.Helper()
	r := n.do(t, "GET", "/.well-known/jwks.json", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("JWKS of node %s: %s", n.Name, r)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &set); err != nil {
		t.Fatalf("JWKS of node %s: %v: %s", n.Name, err, r)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	slices.Sort(kids)
	return kids
}

// kidOf returns the kid in a JWT's header.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.KID == "" {
		t.Fatalf("JWT header without kid: %s (%v)", b, err)
	}
	return h.KID
}

// oauthError returns the RFC 6749 error code of a response.
func oauthError(t *testing.T, r *response) string {
	t.Helper()
	s, _ := r.JSON(t)["error"].(string)
	return s
}
