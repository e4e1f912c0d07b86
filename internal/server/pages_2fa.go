package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"gatehouse/internal/auth"
)

// The hosted second step (SPEC §13): /login, the social-login callback and
// (later) the email link keep the mfa_token in the HttpOnly gatehouse_mfa
// cookie and send the browser to /login/2fa, which takes a code, a
// recovery code or — with JavaScript — a passkey.

// mfaChallengeCookie holds a hosted sign-in's mfa_token (SameSite=Lax, as
// long as the challenge lives); maxAge < 0 deletes it.
func (s *Server) mfaChallengeCookie(tok string, maxAge int) *http.Cookie {
	return s.flowCookie(mfaCookie, "/", tok, maxAge)
}

// mfaCookieValue reads the hosted sign-in's mfa_token.
func (s *Server) mfaCookieValue(r *http.Request) string {
	if ck, err := r.Cookie(s.flowCookieName(mfaCookie)); err == nil {
		return ck.Value
	}
	return ""
}

// pickMFACookie is the challenge cookie huma read, by the name this
// server uses (__Host- on https).
func (s *Server) pickMFACookie(plain, host string) string {
	if s.https {
		return host
	}
	return plain
}

// toSecondStep answers a hosted sign-in whose first factor was right and
// whose second is awaited: the challenge goes into the cookie and the
// browser to /login/2fa. It reports false when err is not that.
func (s *Server) toSecondStep(w http.ResponseWriter, r *http.Request, err error, returnTo string) bool {
	var mr *auth.MFARequired
	if !errors.As(err, &mr) {
		return false
	}
	// An enrolment-only challenge goes there too: /login/2fa then sets up
	// the authenticator app that the account's role requires.
	http.SetCookie(w, s.mfaChallengeCookie(mr.Token, mr.ExpiresIn))
	to := "/login/2fa"
	if rt := s.safeReturnTo(returnTo); rt != "/account" {
		to += "?return_to=" + queryValue(rt)
	}
	seeOther(w, r, to)
	return true
}

func (s *Server) secondStepData(r *http.Request, returnTo string) pageData {
	d := s.authPageData("Two-step verification", returnTo)
	d.Providers = nil
	d.Recovery = r.URL.Query().Get("recovery") != ""
	return d
}

func (s *Server) handleSecondStepPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tok := s.mfaCookieValue(r)
	if tok == "" {
		seeOther(w, r, "/login")
		return
	}
	ctx := r.Context()
	d := s.secondStepData(r, q.Get("return_to"))
	methods, enrol, err := s.auth.ChallengeMethods(ctx, tok)
	if err != nil {
		s.secondStepExpired(w, r, q.Get("return_to"), err)
		return
	}
	if enrol {
		// The account's role requires a second factor and it has none:
		// set up an authenticator app now; confirming it signs in.
		p, err := s.auth.EnrolmentPrincipal(ctx, tok)
		var e *auth.TOTPEnrollment
		if err == nil {
			e, err = s.auth.BeginTOTP(ctx, p, meta(ctx))
		}
		if err == nil {
			d.Enrol, err = enrolView(e)
		}
		if err != nil {
			s.secondStepExpired(w, r, q.Get("return_to"), err)
			return
		}
		d.Title, d.Script, d.Passkeys = "Set up two-step verification", false, false
		s.renderPage(w, http.StatusOK, "login2fa", d)
		return
	}
	d.Passkeys = d.Passkeys && slices.Contains(methods, auth.MFAMethodPasskey)
	d.Script = d.Passkeys
	d.NoRecovery = !slices.Contains(methods, auth.MFAMethodRecovery)
	d.NoCode = !slices.Contains(methods, auth.MFAMethodTOTP)
	if q.Get("method") == "passkey" {
		d.Error = msgNoPasskeyJ
	}
	s.renderPage(w, http.StatusOK, "login2fa", d)
}

// secondStepExpired answers a hosted second step whose challenge is gone:
// the cookie is cleared and the sign-in starts again.
func (s *Server) secondStepExpired(w http.ResponseWriter, r *http.Request, returnTo string, err error) {
	if auth.ErrorCode(err) != auth.EINVALID && auth.ErrorCode(err) != auth.EUNAUTHORIZED {
		status, msg := s.pageError(w, r, "hosted second step", err)
		d := s.authPageData("Sign in", returnTo)
		d.Error = msg
		s.renderPage(w, status, "login", d)
		return
	}
	http.SetCookie(w, s.mfaChallengeCookie("", -1))
	ld := s.authPageData("Sign in", returnTo)
	ld.Error = "Your sign-in expired or had too many wrong codes. Sign in again."
	s.renderPage(w, http.StatusBadRequest, "login", ld)
}

// handleSecondStepEnrol confirms the authenticator app an enrolment-only
// challenge set up, which finishes the sign-in; the recovery codes are
// shown on the answer, once, with a link onwards.
func (s *Server) handleSecondStepEnrol(w http.ResponseWriter, r *http.Request) {
	if !s.formPost(w, r, "login2fa", s.secondStepData(r, "")) {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	tok := s.mfaCookieValue(r)
	if tok == "" {
		seeOther(w, r, "/login")
		return
	}
	p, err := s.auth.EnrolmentPrincipal(ctx, tok)
	if err != nil {
		s.secondStepExpired(w, r, f.Get("return_to"), err)
		return
	}
	id := f.Get("enrollment_id")
	c, err := s.auth.ConfirmTOTP(ctx, p, id, strings.ReplaceAll(f.Get("code"), " ", ""), meta(ctx))
	if err != nil {
		d := s.secondStepData(r, f.Get("return_to"))
		d.Title, d.Script, d.Passkeys = "Set up two-step verification", false, false
		if e, perr := s.auth.PendingTOTP(ctx, p, id); perr == nil {
			d.Enrol, _ = enrolView(e)
		}
		if d.Enrol == nil || auth.ErrorCode(err) != auth.EINVALID {
			s.secondStepExpired(w, r, f.Get("return_to"), err)
			return
		}
		d.Error = "That code didn't work. Check the time on your phone and enter the current code."
		s.renderPage(w, http.StatusBadRequest, "login2fa", d)
		return
	}
	http.SetCookie(w, s.mfaChallengeCookie("", -1))
	done := c.Completion
	if done == nil || done.Session == nil {
		// A challenge begun at the token endpoint: enrolled, but the
		// page has no session to give; sign in again.
		ld := s.authPageData("Sign in", f.Get("return_to"))
		ld.Notice = "Two-step verification is set up. Sign in again."
		s.renderPage(w, http.StatusOK, "login", ld)
		return
	}
	ck := s.sessionCookie(done.SessionToken, done.Session.ExpiresAt)
	http.SetCookie(w, &ck)
	d := s.secondStepData(r, f.Get("return_to"))
	d.Title, d.Script, d.Passkeys = "Save your recovery codes", false, false
	d.Codes = c.RecoveryCodes
	d.Next = s.safeReturnTo(f.Get("return_to"))
	s.renderPage(w, http.StatusOK, "login2fa", d)
}

func (s *Server) handleSecondStepSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.formPost(w, r, "login2fa", s.secondStepData(r, "")) {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	d := s.secondStepData(r, f.Get("return_to"))
	tok := s.mfaCookieValue(r)
	if tok == "" {
		seeOther(w, r, "/login")
		return
	}
	// The hosted page always ends in a cookie session, whichever way the
	// challenge began.
	factor := auth.SecondFactor{Code: strings.ReplaceAll(f.Get("code"), " ", ""), RecoveryCode: f.Get("recovery_code"), Finish: auth.FinishSession}
	d.Recovery = factor.Code == "" && f.Has("recovery_code")
	if factor.Code == "" && factor.RecoveryCode == "" {
		d.Error = "Enter the code."
		s.renderPage(w, http.StatusBadRequest, "login2fa", d)
		return
	}
	done, err := s.auth.VerifyMFA(ctx, tok, factor, meta(ctx))
	if err != nil {
		var de *auth.Error
		errors.As(err, &de)
		switch {
		case de == auth.ErrMFAChallenge:
			s.secondStepExpired(w, r, f.Get("return_to"), err)
		case de != nil && de.Reason == auth.ReasonMFACodeReused:
			d.Error = "That code was used already. Wait for the next one."
			s.renderPage(w, http.StatusBadRequest, "login2fa", d)
		case de != nil && (de.Reason == auth.ReasonMFAInvalidCode || de.Code == auth.EINVALID):
			d.Error = "That code didn't work."
			s.renderPage(w, http.StatusBadRequest, "login2fa", d)
		default:
			status, msg := s.pageError(w, r, "hosted second step", err)
			d.Error = msg
			s.renderPage(w, status, "login2fa", d)
		}
		return
	}
	if old := currentSession(ctx); old != nil {
		if err := s.auth.RevokeSession(ctx, old.UserID, old.ID, meta(ctx)); err != nil && auth.ErrorCode(err) != auth.ENOTFOUND {
			s.log.WarnContext(ctx, "revoking the replaced session", "err", err)
		}
	}
	http.SetCookie(w, s.mfaChallengeCookie("", -1))
	c := s.sessionCookie(done.SessionToken, done.Session.ExpiresAt)
	http.SetCookie(w, &c)
	seeOther(w, r, s.safeReturnTo(f.Get("return_to")))
}
