package server

import (
	"context"
	"fmt"
	"net/http"
	"time"
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
	s.renderConsole(w, http.StatusOK, "overview", c, consoleData{Title: "Overview", Nav: "overview", Notice: consoleNotice(r), Data: v})
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
