package server

import (
	"net/http"

	"gatehouse/internal/auth"
)

// passkeysEnabled reports whether passkeys work on this server (they need a
// public URL with a domain name), and so whether the pages offer them.
func (s *Server) passkeysEnabled() bool { return s.passkeys != nil }

// Adding a passkey happens in the browser (assets/passkey.js calls
// /v1/passkeys/register/begin and /finish); renaming and removing are
// plain forms.

// errPasskeysOff is what the passkey forms answer when passkeys are off.
var errPasskeysOff = &auth.Error{Code: auth.ENOTFOUND, Message: "passkeys are not enabled on this server"}

func (s *Server) handleAccountRenamePasskey() http.HandlerFunc {
	return s.accountAction("passkeys", "passkey-renamed", func(r *http.Request, _ *auth.Session, u *auth.User) error {
		if !s.passkeysEnabled() {
			return errPasskeysOff
		}
		return s.auth.RenamePasskey(r.Context(), u.ID, r.PathValue("id"), r.PostForm.Get("name"), meta(r.Context()))
	})
}

func (s *Server) handleAccountDeletePasskey() http.HandlerFunc {
	return s.accountAction("passkeys", "passkey-removed", func(r *http.Request, sess *auth.Session, u *auth.User) error {
		if !s.passkeysEnabled() {
			return errPasskeysOff
		}
		return s.auth.RemovePasskey(r.Context(), s.auth.SessionPrincipal(sess, u), r.PathValue("id"), meta(r.Context()))
	})
}
