package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"gatehouse/internal/auth"
)

// statusOf is the one table that turns domain error codes into HTTP statuses.
var statusOf = map[string]int{
	auth.EINVALID:      http.StatusUnprocessableEntity,
	auth.ENOTFOUND:     http.StatusNotFound,
	auth.ECONFLICT:     http.StatusConflict,
	auth.EUNAUTHORIZED: http.StatusUnauthorized,
	auth.EFORBIDDEN:    http.StatusForbidden,
	auth.EUNAVAILABLE:  http.StatusServiceUnavailable,
	auth.ETOOMANY:      http.StatusTooManyRequests,
	auth.EINTERNAL:     http.StatusInternalServerError,
}

func retryAfter(h http.Header, d time.Duration) {
	secs := int((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	h.Set("Retry-After", strconv.Itoa(secs))
}

// Problem is the RFC 9457 problem document of the /v1 API: huma's model
// plus "code", a machine-readable reason when the domain gave one
// (insufficient_scope, …).
type Problem struct {
	huma.ErrorModel
	Code string `json:"code,omitempty" doc:"A machine-readable reason, when there is one"`
	// SPEC §13: a sign-in waiting for its second factor, and wrong codes.
	MFAToken          string    `json:"mfa_token,omitempty" doc:"mfa_required: the challenge to finish with POST /v1/mfa/verify"`
	MFAMethods        *[]string `json:"mfa_methods,omitempty" doc:"mfa_required: the second factors the account has"`
	ExpiresIn         int       `json:"expires_in,omitempty" doc:"mfa_required: seconds the challenge lives"`
	AttemptsRemaining *int      `json:"attempts_remaining,omitempty" doc:"mfa_invalid_code: wrong codes the challenge still takes"`
}

// register adds a /v1 operation whose every error goes through apiError:
// a handler returns domain errors as they are and cannot forget to
// translate them. Every /v1 operation is registered through it.
func register[I, O any](s *Server, api huma.API, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	huma.Register(api, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := h(ctx, in)
		if err != nil {
			return nil, s.apiError(ctx, err)
		}
		return out, nil
	})
}

// apiError is the one translator from domain errors to problem documents
// (RFC 9457) for the /v1 API. Errors that already carry a status pass
// through. Unknown errors become a generic 500 (or 503 when a backing
// service is down); their cause is logged, never sent.
func (s *Server) apiError(ctx context.Context, err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	var mr *auth.MFARequired
	if errors.As(err, &mr) {
		methods := mr.Methods
		p := &Problem{ErrorModel: huma.ErrorModel{Title: http.StatusText(http.StatusUnauthorized), Status: http.StatusUnauthorized,
			Detail: "second factor required"}, Code: mr.Reason(), MFAToken: mr.Token, MFAMethods: &methods, ExpiresIn: mr.ExpiresIn}
		return huma.ErrorWithHeaders(p, http.Header{"Cache-Control": {"no-store"}})
	}
	code := auth.ErrorCode(err)
	status := statusOf[code]
	if status == 0 || code == auth.EINTERNAL {
		h := http.Header{}
		if s.failure(ctx, "internal error", err, h) == http.StatusServiceUnavailable {
			return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(msgUnavailable), h)
		}
		return huma.Error500InternalServerError("internal error")
	}
	var de *auth.Error
	errors.As(err, &de)
	if code == auth.EINVALID && (de.Reason == auth.ReasonMFAInvalidCode || de.Reason == auth.ReasonMFACodeReused || de == auth.ErrMFAChallenge) {
		status = http.StatusBadRequest // SPEC §13
	}
	p := &Problem{ErrorModel: huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: de.Message}, Code: de.Reason,
		AttemptsRemaining: de.AttemptsRemaining}
	if code == auth.EINVALID && de.Field != "" {
		p.Errors = []*huma.ErrorDetail{{Message: de.Message, Location: "body." + de.Field}}
	}
	var out error = p
	h := http.Header{}
	if de.RetryAfter > 0 {
		retryAfter(h, de.RetryAfter)
	}
	switch {
	case de.Reason == auth.ReasonStepUpRequired:
		// RFC 9470 §3.
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_user_authentication", error_description="a recent sign-in with a second factor is required", acr_values="aal2", max_age=%d`,
			int(s.auth.StepUpMaxAge()/time.Second)))
	case status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case de.Reason == auth.ReasonInsufficientScope:
		h.Set("WWW-Authenticate", `Bearer realm="gatehouse", error="insufficient_scope"`)
	}
	if len(h) > 0 {
		out = huma.ErrorWithHeaders(out, h)
	}
	return out
}

// writeDomainProblem writes a domain error as a problem document outside
// huma (plain handlers), through the same translator as the /v1 API.
func (s *Server) writeDomainProblem(w http.ResponseWriter, ctx context.Context, err error) {
	out := s.apiError(ctx, err)
	var he huma.HeadersError
	if errors.As(out, &he) {
		for k, vs := range he.GetHeaders() {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
	}
	var se huma.StatusError
	if !errors.As(out, &se) {
		writeProblem(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(se.GetStatus())
	_ = json.NewEncoder(w).Encode(se)
}

// pageError is the one translator from domain errors to the hosted pages:
// the status and the sentence the page shows. It sets Retry-After when the
// domain gave one and logs unexpected errors, whose cause is never shown.
// Pages handle their own expected errors (a used link, a wrong password)
// first, by error value or code, and hand the rest here.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, where string, err error) (int, string) {
	var de *auth.Error
	errors.As(err, &de)
	switch code := auth.ErrorCode(err); code {
	case auth.EINVALID, auth.ECONFLICT, auth.EFORBIDDEN:
		return statusOf[code], sentence(de.Message)
	case auth.ENOTFOUND:
		return http.StatusNotFound, "That item does not exist any more. It may have been removed already."
	case auth.EUNAUTHORIZED:
		return http.StatusUnauthorized, "Your sign-in has ended. Sign in again."
	case auth.ETOOMANY:
		retryAfter(w.Header(), de.RetryAfter)
		if de.Reason == auth.ReasonAccountLocked {
			// Unknown emails are locked out exactly like real ones, so
			// this reveals nothing about which accounts exist.
			return http.StatusTooManyRequests, "Too many failed sign-ins for this account. It is locked for " +
				waitText(de.RetryAfter) + ": try again later, or reset your password."
		}
		return http.StatusTooManyRequests, "Too many attempts. Wait " + waitText(de.RetryAfter) + " and try again."
	case auth.EUNAVAILABLE:
		retryAfter(w.Header(), max(de.RetryAfter, 5*time.Second))
		return http.StatusServiceUnavailable, "The server is busy right now. Try again in a moment."
	}
	return s.failure(r.Context(), where, err, w.Header()), msgTryAgain
}

// writeProblem writes a problem document outside huma (middleware).
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"title": http.StatusText(status), "status": status, "detail": detail,
	})
}

// oauthError writes an RFC 6749 §5.2 error.
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// failure handles an unexpected error: it logs the cause (never sent) with
// the request id, and returns 503 — with Retry-After set on h — when a
// backing service is down, so the request failed for that reason, else 500.
func (s *Server) failure(ctx context.Context, where string, err error, h http.Header) int {
	s.log.ErrorContext(ctx, where, "err", err, "request_id", requestID(ctx))
	if !s.dependenciesUp(ctx) {
		h.Set("Retry-After", "5")
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// msgUnavailable is the public message of a 503 from failure.
const msgUnavailable = "a backing service is unreachable; try again shortly"

// writeFailure writes failure's answer as a problem document.
func (s *Server) writeFailure(w http.ResponseWriter, ctx context.Context, where string, err error) {
	st := s.failure(ctx, where, err, w.Header())
	msg := "internal error"
	if st == http.StatusServiceUnavailable {
		msg = msgUnavailable
	}
	writeProblem(w, st, msg)
}

// dependenciesUp pings the database (and Redis) after an unexpected error:
// when one is down the request failed for that reason, and the caller gets
// 503 with Retry-After rather than 500 (SPEC §12).
func (s *Server) dependenciesUp(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	for _, p := range s.ready {
		if p.Ping(ctx) != nil {
			return false
		}
	}
	return true
}
