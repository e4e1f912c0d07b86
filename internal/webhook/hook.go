package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// DefaultHookTimeout bounds a blocking hook call when Hook.Timeout is zero
// (GATEHOUSE_HOOK_TIMEOUT's default).
const DefaultHookTimeout = 2 * time.Second

// MaxHookAnswer is the most of a hook's answer that is read; a longer
// answer is a failed call.
const MaxHookAnswer = 64 << 10

// Hook calls one blocking hook (SPEC §16, before_register or before_login):
// a POST of the body it is given with the Standard Webhooks headers, signed
// with Secret when there is one, and the hook's decision read from its
// answer (see ParseHookAnswer). It implements auth.HookCaller and is safe
// for concurrent use.
type Hook struct {
	URL string
	// Secret signs every request (webhook-signature); nil sends webhook-id
	// and webhook-timestamp without a signature.
	Secret []byte
	// Client sends the requests: NewClient, for its address checks at
	// connect time and no redirects.
	Client *http.Client
	// Timeout bounds a whole call, reading the answer included; zero means
	// DefaultHookTimeout.
	Timeout   time.Duration
	UserAgent string           // "Gatehouse/<version>"
	Now       func() time.Time // the webhook-timestamp; nil: time.Now
}

// CallHook POSTs body (JSON) as message msgID and returns the hook's
// decision: refused with the hook's message (as sent: the caller cleans
// it), or allowed. It returns an error when no usable answer came: a
// transport failure or timeout, a status other than 2xx (redirects are not
// followed), an answer over MaxHookAnswer, or a body that is not a decision.
func (h *Hook) CallHook(ctx context.Context, msgID string, body []byte) (refused bool, message string, err error) {
	at := time.Now()
	if h.Now != nil {
		at = h.Now()
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return false, "", fmt.Errorf("webhook: hook request: %w", err)
	}
	if h.Secret != nil {
		req.Header = Headers([][]byte{h.Secret}, msgID, at, body)
	} else {
		req.Header.Set(HeaderID, msgID)
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	}
	req.Header.Set("Content-Type", "application/json")
	if h.UserAgent != "" {
		req.Header.Set("User-Agent", h.UserAgent)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		// Not err itself: it quotes the URL, whose query may hold a token,
		// and the error goes into the audit log.
		return false, "", errors.New("webhook: calling the hook: " + attemptError(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxHookAnswer+1))
	if err != nil {
		return false, "", fmt.Errorf("webhook: reading the hook's answer: %w", err)
	}
	if len(answer) > MaxHookAnswer {
		return false, "", fmt.Errorf("webhook: the hook's answer is over %d bytes", MaxHookAnswer)
	}
	return ParseHookAnswer(resp.StatusCode, answer)
}

// ErrBadHookAnswer is returned (wrapped) for an answer that is not a
// decision.
var ErrBadHookAnswer = errors.New("webhook: the hook's answer is not a decision")

// ParseHookAnswer reads a hook's decision from its status and body:
//
//   - 204, or 2xx with an empty body, {} or {"decision": "allow"}: allowed;
//   - 2xx with {"decision": "reject", "message": "…"}, or Supabase's
//     {"error": {"http_code": 403, "message": "…"}}: refused with the
//     message;
//   - any other status, or a 2xx body that is not a JSON object, names
//     another decision or has fields of the wrong type: an error wrapping
//     ErrBadHookAnswer.
//
// Unknown fields are ignored. An "error" object refuses whatever
// "decision" says.
func ParseHookAnswer(status int, body []byte) (refused bool, message string, err error) {
	if status < 200 || status > 299 {
		return false, "", fmt.Errorf("%w: status %d", ErrBadHookAnswer, status)
	}
	body = bytes.TrimSpace(body)
	if status == http.StatusNoContent || len(body) == 0 {
		return false, "", nil
	}
	if body[0] != '{' {
		return false, "", fmt.Errorf("%w: the body is not a JSON object", ErrBadHookAnswer)
	}
	var a struct {
		Decision string `json:"decision"`
		Message  string `json:"message"`
		Error    *struct {
			HTTPCode int    `json:"http_code"`
			Message  string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return false, "", fmt.Errorf("%w: %v", ErrBadHookAnswer, err)
	}
	switch {
	case a.Error != nil:
		if a.Error.Message != "" {
			return true, a.Error.Message, nil
		}
		return true, a.Message, nil
	case a.Decision == "reject":
		return true, a.Message, nil
	case a.Decision == "" || a.Decision == "allow":
		return false, "", nil
	}
	return false, "", fmt.Errorf("%w: unknown decision %q", ErrBadHookAnswer, a.Decision)
}

// crockford is the ULID alphabet (Crockford's base32).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newULID returns a ULID for t: 48 bits of Unix milliseconds and 80
// random bits, as 26 characters of Crockford's base32 (sortable by time).
func newULID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails
	// 26 characters carry 130 bits: the 128 of b behind two zero bits.
	var out [26]byte
	for i := range out {
		v := 0
		for j := range 5 {
			bit := i*5 + j - 2 // bit index into b, from the most significant
			v <<= 1
			if bit >= 0 && b[bit/8]&(0x80>>(bit%8)) != 0 {
				v |= 1
			}
		}
		out[i] = crockford[v]
	}
	return string(out[:])
}
