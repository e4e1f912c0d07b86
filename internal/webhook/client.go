package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// DefaultTimeout is the per-request timeout NewClient uses when
// ClientOptions.Timeout is zero (GATEHOUSE_WEBHOOK_TIMEOUT's default).
const DefaultTimeout = 10 * time.Second

// ClientOptions configures NewClient.
type ClientOptions struct {
	// AllowPrivate permits plain http and connections to loopback, private,
	// link-local and other non-public addresses (development only;
	// GATEHOUSE_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivate bool
	// Timeout bounds a whole request including reading the body; zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// ErrAddressNotAllowed is returned (wrapped) when the dialer refuses an
// address, and ErrSchemeNotAllowed when a URL's scheme is refused.
var (
	ErrAddressNotAllowed = errors.New("webhook: address is not allowed")
	ErrSchemeNotAllowed  = errors.New("webhook: URL scheme is not allowed")
)

// blockedPrefixes are refused unless AllowPrivate. IPv4-mapped IPv6 addresses
// are unmapped before the check, so ::ffff:10.0.0.1 is caught by 10.0.0.0/8.
var blockedPrefixes = []netip.Prefix{
	// IPv4
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network", incl. unspecified 0.0.0.0
	netip.MustParsePrefix("10.0.0.0/8"),     // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),  // CGNAT (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, incl. cloud metadata 169.254.169.254
	netip.MustParsePrefix("172.16.0.0/12"),  // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, incl. broadcast 255.255.255.255
	// IPv6
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("::/96"),          // deprecated IPv4-compatible (::a.b.c.d)
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 (could reach internal IPv4)
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("ff00::/8"),       // multicast
}

// CheckAddr reports whether a webhook may connect to ip: it returns an error
// wrapping ErrAddressNotAllowed for loopback, private (RFC 1918, fc00::/7),
// link-local (169.254.0.0/16, fe80::/10), CGNAT (100.64.0.0/10), unspecified,
// multicast and other non-public ranges, including their IPv4-mapped IPv6
// forms, and nil for anything else.
func CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrAddressNotAllowed)
	}
	a := ip.WithZone("").Unmap()
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return fmt.Errorf("%w: %s (in %s)", ErrAddressNotAllowed, ip, p)
		}
	}
	return nil
}

// dialControl is the net.Dialer Control hook: it runs after DNS resolution,
// for every address actually connected to, so re-binding a name to an
// internal address after it was checked does not help an attacker.
func dialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q: %v", ErrAddressNotAllowed, address, err)
	}
	return CheckAddr(ap.Addr())
}

// CheckScheme refuses URLs other than https (http and https when
// allowPrivate) and URLs without a host.
func CheckScheme(u *url.URL, allowPrivate bool) error {
	switch {
	case u == nil:
		return fmt.Errorf("%w: no URL", ErrSchemeNotAllowed)
	case u.Scheme == "https", allowPrivate && u.Scheme == "http":
	default:
		return fmt.Errorf("%w: %q", ErrSchemeNotAllowed, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: URL has no host", ErrSchemeNotAllowed)
	}
	return nil
}

// schemeGuard enforces CheckScheme on every request the client sends.
type schemeGuard struct {
	next         http.RoundTripper
	allowPrivate bool
}

func (g schemeGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := CheckScheme(r.URL, g.allowPrivate); err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(r)
}

// NewClient returns the HTTP client for webhook deliveries and blocking hooks:
// https only and non-public addresses refused at connect time (both lifted by
// AllowPrivate), redirects never followed (the 3xx response is returned as
// is), no proxy from the environment, and a per-request timeout.
func NewClient(opts ClientOptions) *http.Client {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !opts.AllowPrivate {
		dialer.Control = dialControl
	}
	tr := &http.Transport{
		Proxy:                 nil, // never from the environment: a proxy would dial for us, unchecked
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: schemeGuard{next: tr, allowPrivate: opts.AllowPrivate},
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
