package oidctest

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Page is one response the Browser received.
type Page struct {
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

// Location resolves the page's Location header against its URL.
func (p *Page) Location() (*url.URL, error) {
	loc := p.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s answered %d without a Location", p.URL, p.Status)
	}
	l, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	return p.URL.ResolveReference(l), nil
}

// Browser is a user's browser for the tests: a cookie jar, redirects
// followed one hop at a time (so a test can stop anywhere), the login form
// of the test providers filled in with Username and Password, and a host
// map so that a made-up public host (http://gatehouse.test) reaches a real
// listener.
type Browser struct {
	Client   *http.Client
	Jar      *cookiejar.Jar
	Username string
	Password string

	mu    sync.Mutex
	hosts map[string]string
}

// NewBrowser returns a browser with an empty cookie jar that signs in at
// the providers as DefaultUser.
func NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	b := &Browser{Jar: jar, Username: DefaultUser.Username, Password: DefaultUser.Password, hosts: map[string]string{}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		b.mu.Lock()
		if to, ok := b.hosts[addr]; ok {
			addr = to
		}
		b.mu.Unlock()
		return dialer.DialContext(ctx, network, addr)
	}
	b.Client = &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

// Route sends connections for hostport (as in URLs: "gatehouse.test:80")
// to addr.
func (b *Browser) Route(hostport, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hosts[hostport] = addr
}

// Get requests u without following redirects.
func (b *Browser) Get(u string) (*Page, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return b.Do(req)
}

// Do sends a request without following redirects.
func (b *Browser) Do(req *http.Request) (*Page, error) {
	res, err := b.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &Page{URL: req.URL, Status: res.StatusCode, Header: res.Header, Body: string(body)}, nil
}

var (
	formRE   = regexp.MustCompile(`(?is)<form[^>]*\baction="([^"]*)"`)
	hiddenRE = regexp.MustCompile(`(?is)<input[^>]*type="hidden"[^>]*name="([^"]*)"[^>]*value="([^"]*)"`)
)

// Follow requests start and follows redirects, and submits a provider's
// login form when one is shown, until stop reports true for the next URL:
// that URL is returned without being requested, with the last page. A
// flow that ends elsewhere (an error page, say) is an error.
func (b *Browser) Follow(start string, stop func(*url.URL) bool) (*url.URL, *Page, error) {
	u, err := url.Parse(start)
	if err != nil {
		return nil, nil, err
	}
	var last *Page
	for range 20 {
		if stop(u) {
			return u, last, nil
		}
		p, err := b.Get(u.String())
		if err != nil {
			return nil, last, err
		}
		if p.Status == http.StatusOK && strings.Contains(p.Body, `name="password"`) {
			p, err = b.submitLogin(p)
			if err != nil {
				return nil, p, err
			}
		}
		last = p
		if p.Status < 300 || p.Status > 399 {
			return nil, p, fmt.Errorf("the flow stopped at %s with %d: %.300s", p.URL, p.Status, p.Body)
		}
		if u, err = p.Location(); err != nil {
			return nil, p, err
		}
	}
	return nil, last, fmt.Errorf("too many redirects")
}

func (b *Browser) submitLogin(p *Page) (*Page, error) {
	m := formRE.FindStringSubmatch(p.Body)
	if m == nil {
		return p, fmt.Errorf("a login page without a form action at %s", p.URL)
	}
	action, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return p, err
	}
	form := url.Values{"username": {b.Username}, "password": {b.Password}}
	for _, h := range hiddenRE.FindAllStringSubmatch(p.Body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	req, err := http.NewRequest(http.MethodPost, p.URL.ResolveReference(action).String(), strings.NewReader(form.Encode()))
	if err != nil {
		return p, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	np, err := b.Do(req)
	if err != nil {
		return p, err
	}
	if np.Status < 300 || np.Status > 399 {
		return np, fmt.Errorf("provider login refused (%d): %.300s", np.Status, np.Body)
	}
	return np, nil
}
