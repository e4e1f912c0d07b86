package webhook

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestClientRefusesLoopback(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("request reached the server")
	}))
	defer srv.Close()
	c := NewClient(ClientOptions{Timeout: 5 * time.Second})

	// https passes the scheme check; the dialer must refuse 127.0.0.1.
	u, _ := url.Parse(srv.URL)
	for _, target := range []string{srv.URL, "https://localhost:" + u.Port() + "/"} {
		resp, err := c.Get(target)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded", target)
		}
		if !errors.Is(err, ErrAddressNotAllowed) || !strings.Contains(err.Error(), "not allowed") {
			t.Fatalf("GET %s: error %v, want ErrAddressNotAllowed", target, err)
		}
	}
}

func TestClientAllowPrivateReachesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	resp, err := NewClient(ClientOptions{AllowPrivate: true}).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET with AllowPrivate: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

func TestClientRefusesHTTPWithoutAllowPrivate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("request reached the server")
	}))
	defer srv.Close()
	resp, err := NewClient(ClientOptions{}).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("plain http succeeded")
	}
	if !errors.Is(err, ErrSchemeNotAllowed) {
		t.Fatalf("error %v, want ErrSchemeNotAllowed", err)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	hit := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		hit <- struct{}{}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := NewClient(ClientOptions{AllowPrivate: true}).Post(srv.URL+"/hook", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/elsewhere" {
		t.Fatalf("got %d Location %q, want the 302 as is", resp.StatusCode, resp.Header.Get("Location"))
	}
	select {
	case <-hit:
		t.Fatal("redirect was followed")
	default:
	}
}

func TestClientIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://192.0.2.1:3128")
	t.Setenv("HTTP_PROXY", "http://192.0.2.1:3128")
	for _, allow := range []bool{false, true} {
		c := NewClient(ClientOptions{AllowPrivate: allow})
		g, ok := c.Transport.(schemeGuard)
		if !ok {
			t.Fatalf("transport is %T", c.Transport)
		}
		if tr := g.next.(*http.Transport); tr.Proxy != nil {
			t.Fatal("transport has a Proxy func")
		}
	}
}

func TestCheckAddr(t *testing.T) {
	refused := []string{
		"10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "::1",
		"169.254.169.254", "100.64.0.1", "fd00::1", "fe80::1", "fe80::1%eth0",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "0.0.0.0", "::",
		"224.0.0.1", "ff02::1", "255.255.255.255", "100.127.255.254", "172.31.255.255",
	}
	for _, s := range refused {
		if err := CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("CheckAddr(%s) = %v, want ErrAddressNotAllowed", s, err)
		}
	}
	allowed := []string{
		"93.184.216.34", "2606:4700::1111", "8.8.8.8", "1.1.1.1", "172.32.0.1",
		"100.128.0.1", "2a00:1450:4001:80b::200e",
	}
	for _, s := range allowed {
		if err := CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
		}
	}
	if err := CheckAddr(netip.Addr{}); err == nil {
		t.Error("CheckAddr(zero Addr) = nil")
	}
}

func TestDialControl(t *testing.T) {
	for _, a := range []string{"127.0.0.1:443", "[::1]:443", "[fe80::1%lo]:443", "[::ffff:192.168.0.1]:80", "garbage"} {
		if err := dialControl("tcp", a, nil); !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("dialControl(%s) = %v, want ErrAddressNotAllowed", a, err)
		}
	}
	for _, a := range []string{"93.184.216.34:443", "[2606:4700::1111]:443"} {
		if err := dialControl("tcp", a, nil); err != nil {
			t.Errorf("dialControl(%s) = %v, want nil", a, err)
		}
	}
}

func TestCheckScheme(t *testing.T) {
	cases := []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://hooks.example.com/x", false, true},
		{"http://hooks.example.com/x", false, false},
		{"http://hooks.example.com/x", true, true},
		{"https://hooks.example.com/x", true, true},
		{"ftp://hooks.example.com/x", true, false},
		{"file:///etc/passwd", true, false},
		{"gopher://hooks.example.com/", false, false},
		{"https:///nohost", false, false},
	}
	for _, c := range cases {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckScheme(u, c.allowPrivate)
		if (err == nil) != c.ok {
			t.Errorf("CheckScheme(%s, %v) = %v, want ok=%v", c.url, c.allowPrivate, err, c.ok)
		}
	}
	if err := CheckScheme(nil, true); err == nil {
		t.Error("CheckScheme(nil) = nil")
	}
}
