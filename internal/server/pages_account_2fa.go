package server

import (
	"html/template"
	"net/http"
	"strings"

	"gatehouse/internal/auth"
)

// The account page's two-factor section (SPEC §13): set up an
// authenticator app with its QR code and key, see the recovery codes once,
// replace them, turn it off, and confirm it is you (step-up) when an
// action asks. Every form works without JavaScript.

const msgStepUp = "Confirm it is you first: this change needs a recent sign-in."

func (s *Server) registerAccountMFARoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /account/2fa/totp", s.handleAccountTOTPBegin)
	mux.HandleFunc("POST /account/2fa/totp/confirm", s.handleAccountTOTPConfirm)
	mux.HandleFunc("POST /account/2fa/totp/delete", s.handleAccountTOTPDelete)
	mux.HandleFunc("POST /account/2fa/recovery-codes", s.handleAccountRecoveryCodes)
	mux.HandleFunc("POST /account/2fa/step-up", s.handleAccountStepUp)
}

func enrolView(e *auth.TOTPEnrollment) (*totpEnrolView, error) {
	svg, err := qrSVG(e.URI)
	if err != nil {
		return nil, err
	}
	// The SVG is ours, built from the QR matrix: no user input reaches it
	// except as dark and light modules.
	return &totpEnrolView{ID: e.ID, Secret: e.Secret, QR: template.HTML(svg)}, nil //nolint:gosec
}

// handleAccountTOTPBegin answers with the page itself (no redirect): the
// key is shown on this no-store response only.
func (s *Server) handleAccountTOTPBegin(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	e, err := s.auth.BeginTOTP(ctx, s.auth.SessionPrincipal(sess, u), meta(ctx))
	if err != nil {
		s.accountFail(w, r, sess, u, "two-factor", err, nil)
		return
	}
	v, err := enrolView(e)
	if err != nil {
		s.accountFail(w, r, sess, u, "two-factor", err, nil)
		return
	}
	s.renderAccount(w, r, http.StatusOK, sess, u, pageData{}, func(a *accountView) { a.Enrol = v })
}

func (s *Server) handleAccountTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	p := s.auth.SessionPrincipal(sess, u)
	id := r.PostForm.Get("enrollment_id")
	c, err := s.auth.ConfirmTOTP(ctx, p, id, strings.ReplaceAll(r.PostForm.Get("code"), " ", ""), meta(ctx))
	if err != nil {
		var again func(*accountView)
		if auth.ErrorCode(err) == auth.EINVALID {
			// A mistyped code: show the same QR code again.
			if e, perr := s.auth.PendingTOTP(ctx, p, id); perr == nil {
				if v, verr := enrolView(e); verr == nil {
					again = func(a *accountView) { a.Enrol = v }
				}
			}
			err = &auth.Error{Code: auth.EINVALID, Message: "That code didn't work. Check that your device's clock is right and enter the current code"}
		}
		s.accountFail(w, r, sess, u, "two-factor", err, again)
		return
	}
	s.renderAccount(w, r, http.StatusOK, sess, u, pageData{Notice: "Two-factor authentication is on. Every other session that signed in with a password alone was signed out."},
		func(a *accountView) { a.NewRecoveryCodes = c.RecoveryCodes })
}

func (s *Server) handleAccountTOTPDelete(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	if err := s.auth.RemoveTOTP(r.Context(), s.auth.SessionPrincipal(sess, u), meta(r.Context())); err != nil {
		s.accountFail(w, r, sess, u, "two-factor", err, nil)
		return
	}
	accountDone(w, r, "totp-removed", "two-factor")
}

func (s *Server) handleAccountRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	codes, err := s.auth.RegenerateRecoveryCodes(r.Context(), s.auth.SessionPrincipal(sess, u), meta(r.Context()))
	if err != nil {
		s.accountFail(w, r, sess, u, "two-factor", err, nil)
		return
	}
	s.renderAccount(w, r, http.StatusOK, sess, u, pageData{Notice: "New recovery codes are ready. The old ones no longer work."},
		func(a *accountView) { a.NewRecoveryCodes = codes })
}

func (s *Server) handleAccountStepUp(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.accountPost(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	in := auth.StepUpInput{Password: f.Get("password"),
		Factor: auth.SecondFactor{Code: strings.ReplaceAll(f.Get("code"), " ", ""), RecoveryCode: f.Get("recovery_code")}}
	if _, err := s.auth.StepUp(r.Context(), s.auth.SessionPrincipal(sess, u), in, meta(r.Context())); err != nil {
		msg := "That didn't work. Try again."
		if auth.ErrorCode(err) != auth.EINVALID {
			_, msg = s.pageError(w, r, "account step-up", err)
		}
		s.renderAccount(w, r, http.StatusBadRequest, sess, u, pageData{Error: msg, Section: "two-factor"}, func(a *accountView) { a.StepUp = true })
		return
	}
	accountDone(w, r, "stepped-up", "two-factor")
}
