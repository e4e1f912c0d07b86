package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/internal/webhook"
)

// Blocking hooks (SPEC §16). before_register asks an operator's endpoint
// whether an account may be made; before_login whether a sign-in whose
// first factor succeeded may go on. This file holds the policy: what each
// hook is sent, what a refusal and a failure answer, what is audited. The
// HTTP call is a HookCaller's (internal/webhook.Hook: signed like a
// webhook, SSRF-safe, bounded); the service never speaks HTTP.

// Hook names, as in the YAML section hooks: and in audit details.
const (
	HookBeforeRegister = "before_register"
	HookBeforeLogin    = "before_login"
)

// Audit event types of the blocking hooks.
const (
	EventHookDenied = "hook.denied" // a hook refused a registration or a sign-in
	EventHookError  = "hook.error"  // a hook timed out, failed or answered nonsense
)

// Reasons (the problem document's "code") of hook refusals.
const (
	ReasonRegistrationDenied = "registration_denied"
	ReasonLoginDenied        = "login_denied"
)

// Registration sources: data.source of a before_register request.
const (
	SourceRegister = "register" // POST /v1/register and the hosted form
	SourceSocial   = "social"   // first sign-in with an identity provider
	SourceEmail    = "email"    // an email-code sign-up
)

// MaxHookMessage is the longest refusal message passed on to the client,
// in characters; longer ones are cut.
const MaxHookMessage = 200

// hookRetryAfter is the Retry-After of a 503 caused by a failed hook.
const hookRetryAfter = 10 * time.Second

// HookCaller sends one blocking-hook request: its webhook-id (msgID) and
// its JSON body ({"type", "timestamp", "data"}). It reports a refusal with
// the hook's message (raw: the service cleans it), and an error when the
// hook could not be asked or gave no usable answer (timeout, transport
// failure, non-2xx status, unreadable body). Implementations bound the call
// by GATEHOUSE_HOOK_TIMEOUT and must be safe for concurrent use.
type HookCaller interface {
	CallHook(ctx context.Context, msgID string, body []byte) (refused bool, message string, err error)
}

// Hook is one configured blocking hook.
type Hook struct {
	Caller HookCaller
	// AllowOnError lets the registration or sign-in through when the hook
	// fails (on_error: allow); by default a failure refuses it with 503.
	AllowOnError bool
}

// Hooks are the blocking hooks given to New; a nil field is a hook that is
// not configured.
type Hooks struct {
	BeforeRegister *Hook
	BeforeLogin    *Hook
}

// registerHookData is the data of a before_register request.
type registerHookData struct {
	Email  string `json:"email"`
	Name   string `json:"name"`
	Source string `json:"source"` // SourceRegister, SourceSocial or SourceEmail
	// Provider is the identity provider of a social sign-up.
	Provider string `json:"provider,omitempty"`
	IP       string `json:"ip"`
}

// loginHookData is the data of a before_login request.
type loginHookData struct {
	User *webhookUser `json:"user"` // as in webhook payloads: never a hash or a secret
	// Method is the first factor: password, passkey or social.
	Method string `json:"method"`
	// Provider is the identity provider of a social sign-in.
	Provider string `json:"provider,omitempty"`
	IP       string `json:"ip"`
}

// hookRequest is the body of a hook request (the shape of a webhook
// message).
type hookRequest struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// serviceHooks are the service's configured hooks; nil when not configured.
type serviceHooks struct {
	beforeRegister, beforeLogin *hookRunner
}

// hookRunner is the service's side of one configured hook.
type hookRunner struct {
	Hook
	name, typ string
	// latency is a moving average of how long the hook takes to answer
	// (nanoseconds): the time a taken email is made to wait instead of
	// asking the hook (see paceDuplicate).
	latency atomic.Int64
}

// newHookRunner checks the hook given as Options.Hooks.<field>; nil stays
// nil (not configured).
func newHookRunner(h *Hook, name, field string) (*hookRunner, error) {
	if h == nil {
		return nil, nil
	}
	if h.Caller == nil {
		return nil, fmt.Errorf("auth.New: Hooks.%s has no Caller", field)
	}
	return &hookRunner{Hook: *h, name: name, typ: "hook." + name}, nil
}

// observe folds one call's duration into the moving average (weight 1/8).
func (h *hookRunner) observe(d time.Duration) {
	for {
		old := h.latency.Load()
		next := int64(d)
		if old != 0 {
			next = old + (int64(d)-old)/8
		}
		if h.latency.CompareAndSwap(old, next) {
			return
		}
	}
}

// runHook asks the hook. A refusal becomes denied(message) and is audited as
// hook.denied; a failure is audited as hook.error and becomes EUNAVAILABLE
// with a Retry-After, or nil with AllowOnError. details go into both audit
// events.
func (s *Service) runHook(ctx context.Context, h *hookRunner, data any, userID string, m Meta,
	details map[string]any, denied func(msg string) error) error {
	now := s.now()
	body, err := json.Marshal(hookRequest{Type: h.typ, Timestamp: now.Format(time.RFC3339), Data: data})
	if err != nil {
		return err
	}
	start := time.Now()
	refused, msg, err := h.Caller.CallHook(ctx, webhook.NewMessageID(now), body)
	h.observe(time.Since(start))
	if err != nil && ctx.Err() != nil {
		// The caller went away (or its deadline passed): not the hook's fault.
		return ctx.Err()
	}
	d := map[string]any{"hook": h.name}
	for k, v := range details {
		d[k] = v
	}
	if err != nil {
		outcome := "denied"
		if h.AllowOnError {
			outcome = "allowed"
		}
		d["error"], d["outcome"] = cutRunes(err.Error(), 300), outcome
		s.log.WarnContext(ctx, "blocking hook failed", "hook", h.name, "outcome", outcome, "err", err)
		s.audit(ctx, EventHookError, userID, m, d)
		if h.AllowOnError {
			return nil
		}
		what := "registration"
		if h.name == HookBeforeLogin {
			what = "sign-in"
		}
		return &Error{Code: EUNAVAILABLE, Message: what + " is unavailable right now; try again shortly",
			RetryAfter: hookRetryAfter, Cause: err}
	}
	if !refused {
		return nil
	}
	e := denied(msg)
	d["message"] = ErrorMessage(e)
	s.audit(ctx, EventHookDenied, userID, m, d)
	return e
}

// beforeRegister asks the before_register hook, when there is one, whether
// an account may be made. Callers make sure the email is not taken first:
// a taken email never reaches the hook (SPEC §16), so a hook cannot be
// used to find out which addresses have accounts.
func (s *Service) beforeRegister(ctx context.Context, d registerHookData, m Meta) error {
	h := s.hooks.beforeRegister
	if h == nil {
		return nil
	}
	d.IP = m.IP
	details := map[string]any{"email": d.Email, "source": d.Source}
	if d.Provider != "" {
		details["provider"] = d.Provider
	}
	return s.runHook(ctx, h, d, "", m, details, func(msg string) error {
		return &Error{Code: EFORBIDDEN, Reason: ReasonRegistrationDenied,
			Message: hookMessage(msg, "registration is not allowed")}
	})
}

// paceDuplicate makes a registration of a taken email take about as long
// as one that asked the before_register hook, so that the hook's latency
// does not tell which addresses have accounts. Without the hook it returns
// at once.
func (s *Service) paceDuplicate(ctx context.Context) {
	h := s.hooks.beforeRegister
	if h == nil {
		return
	}
	d := time.Duration(h.latency.Load())
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// beforeLogin asks the before_login hook, when there is one, whether the
// sign-in a may go on. Complete calls it once per sign-in, after the first
// factor and before a second factor is asked for, so a refused user never
// sees a challenge.
func (s *Service) beforeLogin(ctx context.Context, a *Authentication) error {
	h := s.hooks.beforeLogin
	if h == nil {
		return nil
	}
	u := a.User
	method := "password"
	switch {
	case slices.Contains(a.Methods, AMRPasskey):
		method = "passkey"
	case slices.Contains(a.Methods, AMRFederated):
		method = "social"
	}
	d := loginHookData{User: webhookUserOf(u, u.ID), Method: method, Provider: a.provider, IP: a.Meta.IP}
	details := map[string]any{"method": method}
	if a.provider != "" {
		details["provider"] = a.provider
	}
	return s.runHook(ctx, h, d, u.ID, a.Meta, details, func(msg string) error {
		return &Error{Code: EFORBIDDEN, Reason: ReasonLoginDenied, Message: hookMessage(msg, "sign-in is not allowed")}
	})
}

// hookMessage turns a hook's refusal message into plain text for the
// client: markup tags become spaces, control and formatting characters
// (escape sequences, bidi overrides, zero-width characters) are dropped,
// runs of white space become one space, and the result is cut to
// MaxHookMessage characters.
// The hook is trusted to decide, not to write into our pages or logs.
func hookMessage(raw, fallback string) string {
	var b strings.Builder
	space, tag := false, false
	rs := []rune(strings.ToValidUTF8(raw, ""))
	for i, r := range rs {
		switch {
		case tag:
			tag = r != '>'
			continue
		case r == '<' && i+1 < len(rs) && (unicode.IsLetter(rs[i+1]) || strings.ContainsRune("/!?", rs[i+1])):
			tag, space = true, b.Len() > 0 // a tag separates words
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) || r == utf8.RuneError:
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	msg := b.String()
	if msg == "" {
		return fallback
	}
	return cutRunes(msg, MaxHookMessage)
}

// cutRunes cuts s to at most n characters, ending a cut string with "…".
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:n-1]), unicode.IsSpace) + "…"
}
