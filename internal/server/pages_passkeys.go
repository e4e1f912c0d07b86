package server

import "net/http"

// passkeysEnabled reports whether this server stores passkeys, and so
// whether the pages offer them.
func (s *Server) passkeysEnabled() bool { return s.auth.Passkeys != nil }

// Adding a passkey happens in the browser (assets/passkey.js calls
// /v1/passkeys/register/begin and /finish); renaming and removing are
// plain forms.

func (s *Server) handleAccountRenamePasskey(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	if !s.passkeysEnabled() {
		writeProblem(w, http.StatusNotFound, "passkeys are not enabled")
		return
	}
	if err := s.auth.RenamePasskey(r.Context(), u.ID, r.PathValue("id"), r.PostForm.Get("name"), meta(r.Context())); err != nil {
		s.accountFail(w, r, sess, u, "passkeys", err, nil)
		return
	}
	accountDone(w, r, "passkey-renamed", "passkeys")
}

func (s *Server) handleAccountDeletePasskey(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	if !s.passkeysEnabled() {
		writeProblem(w, http.StatusNotFound, "passkeys are not enabled")
		return
	}
	if err := s.auth.RemovePasskey(r.Context(), u.ID, r.PathValue("id"), meta(r.Context())); err != nil {
		s.accountFail(w, r, sess, u, "passkeys", err, nil)
		return
	}
	accountDone(w, r, "passkey-removed", "passkeys")
}
