package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"gatehouse/internal/auth"
)

func (s *Server) registerConsoleOverview(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin", s.handleConsoleOverview)
	mux.HandleFunc("GET /admin/{$}", s.handleConsoleOverview)
}

// overviewView is the overview page: the figures an operator looks at
// first.
type overviewView struct {
	Version string
	// Health of each dependency /readyz checks, by name.
	Health []healthView
	// The current access-token signing key and how old it is.
	KeyID  string
	KeyAge time.Duration
	// Figures of accounts, sign-ins, lockouts, mail and webhooks (one
	// auth.AdminOverview); nil when they could not be read.
	Stats *auth.AdminOverview
	// The periods of the figures, in words.
	NewWindow, SignInWindow, FailureWindow, LockoutWindow string
}

type healthView struct {
	Name, Status string
	OK           bool
}

func (s *Server) handleConsoleOverview(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	v := overviewView{Version: s.version, Health: s.consoleHealth(r.Context())}
	for _, k := range s.keys.Keys() {
		if k.Current && !k.IDToken {
			v.KeyID, v.KeyAge = k.KID, time.Since(k.CreatedAt).Truncate(time.Minute)
		}
	}
	d := consoleData{Title: "Overview", Nav: "overview", Notice: s.consoleNotice(r), Data: &v}
	// The page still shows the service's health when the figures fail
	// (a database in trouble is what the operator came to see).
	if st, err := s.auth.AdminOverview(r.Context()); err != nil {
		s.log.ErrorContext(r.Context(), "console overview figures", "err", err, "request_id", requestID(r.Context()))
		d.Error = "The figures could not be read just now; the service status below is current."
	} else {
		v.Stats = st
		v.NewWindow, v.SignInWindow, v.FailureWindow = inWords(st.NewUsersWindow), inWords(st.SignInWindow), inWords(st.FailureWindow)
		v.LockoutWindow = inWords(st.LockoutWindow)
	}
	s.renderConsole(w, http.StatusOK, "overview", c, d)
}

// inWords says a period the way the overview names it: "7 days",
// "24 hours", "15 minutes", "90 seconds".
func inWords(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return plural(int64(d/time.Second), "second")
}

// consoleHealth pings what /readyz checks, each with a short timeout.
func (s *Server) consoleHealth(ctx context.Context) []healthView {
	var out []healthView
	for _, p := range s.ready {
		name := fmt.Sprintf("%T", p)
		if n, ok := p.(interface{ Name() string }); ok {
			name = n.Name()
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := p.Ping(pctx)
		cancel()
		h := healthView{Name: name, Status: "reachable", OK: err == nil}
		if err != nil {
			h.Status = "unreachable"
		}
		out = append(out, h)
	}
	return out
}
