package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

type ctxKey int

const (
	keyRequest ctxKey = iota // *requestInfo, set by outer
	keyPrincipal
)

// requestInfo is what outer learns of a request, in one context value
// (one allocation, not one per field: this runs on every request).
type requestInfo struct {
	id, ip, userAgent string
	route             routeHolder
}

func info(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(keyRequest).(*requestInfo)
	if ri == nil {
		return &requestInfo{}
	}
	return ri
}

func userAgent(ctx context.Context) string { return info(ctx).userAgent }

func requestID(ctx context.Context) string { return info(ctx).id }

// clientIP returns the client address chosen by clientAddr.
func clientIP(ctx context.Context) string { return info(ctx).ip }

// maxBody is the cap on request bodies (SPEC §12).
const maxBody = 64 << 10

type routeHolder struct{ route string }

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outer is the first middleware: request id, client ip, security headers,
// panic recovery, access log and request metrics, in one wrapper so that the
// hot path allocates once.
func (s *Server) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		ip := s.clientAddr(r)
		ri := &requestInfo{id: id, ip: ip, userAgent: r.UserAgent()}
		rh := &ri.route
		ctx := context.WithValue(r.Context(), keyRequest, ri)
		r = r.WithContext(ctx)

		h := w.Header()
		h["X-Request-Id"] = []string{id}
		// The fixed headers share read-only slices (capacity = length, so
		// an Add appends to a copy): no allocation per request.
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDeny
		h["Referrer-Policy"] = hdrNoReferrer
		h["Content-Security-Policy"] = hdrCSP
		if s.https {
			h["Strict-Transport-Security"] = hdrHSTS
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(ctx, "panic", "panic", p, "request_id", id)
				if sw.status == 0 {
					writeProblem(sw, http.StatusInternalServerError, "internal error")
				}
			}
			route := rh.route
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			s.metrics.request(route, r.Method, status, d)
			// The path only: query strings and bodies may carry secrets.
			s.log.LogAttrs(ctx, logLevel(status), "request",
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("route", route),
				slog.String("path", r.URL.Path), slog.Int("status", status), slog.Int64("bytes", sw.n),
				slog.Duration("duration", d), slog.String("ip", ip))
		}()
		next.ServeHTTP(sw, r)
	})
}

var (
	hdrNosniff    = []string{"nosniff"}[:1:1]
	hdrDeny       = []string{"DENY"}[:1:1]
	hdrNoReferrer = []string{"no-referrer"}[:1:1]
	hdrCSP        = []string{"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"}[:1:1]
	hdrHSTS       = []string{"max-age=63072000; includeSubDomains"}[:1:1]
)

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c == '-' || c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

// clientAddr is the socket peer, or — only when the peer is a trusted
// proxy — the right-most address in X-Forwarded-For that is not itself a
// trusted proxy. Believing the header from anyone would let clients choose
// their rate-limit bucket.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer.String()
			}
			a = a.Unmap()
			if !s.trusted(a) {
				return a.String()
			}
			peer = a
		}
	}
	return peer.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// route records the matched pattern for logs and metrics; it wraps the mux
// so that it sees the request the mux annotated.
func route(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if ri, ok := r.Context().Value(keyRequest).(*requestInfo); ok {
			ri.route.route = r.Pattern
		}
	})
}

// limitBody reads a request body of at most maxBody bytes into memory,
// answering 413 beyond it, and refuses JSON bodies that are not valid UTF-8
// (encoding/json would silently replace the bad bytes).
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		oauth := strings.HasPrefix(r.URL.Path, "/oauth2/")
		fail := func(status int, code, msg string) {
			if oauth {
				writeOAuthError(w, status, code, msg)
			} else {
				writeProblem(w, status, msg)
			}
		}
		if r.ContentLength > maxBody {
			fail(http.StatusRequestEntityTooLarge, "invalid_request", "request body too large (at most 64 KiB)")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(http.StatusRequestEntityTooLarge, "invalid_request", "request body too large (at most 64 KiB)")
			return
		}
		if err != nil {
			fail(http.StatusBadRequest, "invalid_request", "could not read the request body")
			return
		}
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); (ct == "application/json" || ct == "application/x-www-form-urlencoded" || strings.HasSuffix(ct, "+json")) && !utf8.Valid(body) {
			fail(http.StatusBadRequest, "invalid_request", "request body is not valid UTF-8")
			return
		}
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" || strings.HasSuffix(ct, "+json") {
			if err := checkDuplicateKeys(body); err != nil {
				fail(http.StatusBadRequest, "invalid_request", err.Error())
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func logLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
