package server

import (
	"net/http"
	"slices"
	"time"

	"gatehouse/internal/auth"
)

// The console's signing keys (SPEC §17): the key ring as `gatehouse keys
// list` shows it, and a rotation (`gatehouse keys rotate`), audited
// key.rotated per new key. Revoking a key stays with the command line
// (`gatehouse keys revoke`): the server holds the key ring, not the store
// method that withdraws a key and records its revocation event.

func (s *Server) registerConsoleKeys(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/keys", s.handleConsoleKeys)
	mux.HandleFunc("POST /admin/keys/rotate", s.handleConsoleKeysRotate)
}

// signingKeysView is the keys page, newest key first.
type signingKeysView struct {
	Keys []signingKeyRow
}

type signingKeyRow struct {
	KID, Alg, Signs, Created, Age string
	// State is current (signs new tokens), verifying (published, still
	// accepted) or retired (kept, no longer accepted).
	State string
}

func (s *Server) handleConsoleKeys(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleAccess(w, r)
	if !ok {
		return
	}
	s.renderConsoleKeys(w, r, c, s.consoleNotice(r))
}

func (s *Server) renderConsoleKeys(w http.ResponseWriter, r *http.Request, c *consoleCaller, notice string) {
	var v signingKeysView
	for _, k := range slices.Backward(s.keys.Keys()) {
		row := signingKeyRow{KID: k.KID, Alg: k.Alg, Signs: "Access tokens", Created: consoleTime(k.CreatedAt),
			Age: time.Since(k.CreatedAt).Truncate(time.Minute).String(), State: k.State()}
		if k.IDToken {
			row.Signs = "ID tokens"
		}
		v.Keys = append(v.Keys, row)
	}
	s.renderConsole(w, http.StatusOK, "keys", c, consoleData{Title: "Signing keys", Nav: "keys", Notice: notice, Data: v})
}

func (s *Server) handleConsoleKeysRotate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.consoleWrite(w, r, "/admin/keys")
	if !ok {
		return
	}
	ctx := r.Context()
	made, err := s.keys.RotateAll(ctx)
	if err != nil {
		s.consoleFailure(w, r, "console rotate keys", err)
		return
	}
	rotated := make([]auth.RotatedKey, 0, len(made))
	for _, k := range made {
		rotated = append(rotated, auth.RotatedKey{KID: k.KID, Alg: k.Alg, IDToken: k.IDToken})
	}
	s.auth.RecordKeyRotation(ctx, rotated, consoleMeta(ctx, c))
	s.consoleDone(w, r, "/admin/keys", "New signing keys are current; tokens signed by the previous ones stay valid until they expire. Other nodes pick them up within a minute.")
}
