package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix prefixes the base64 encoding of a signing secret.
const SecretPrefix = "whsec_"

// SecretSize is the number of random bytes in a secret made by NewSecret.
const SecretSize = 32

// DefaultTolerance is the timestamp tolerance Verify applies when it is given
// a tolerance <= 0 (the Standard Webhooks recommendation).
const DefaultTolerance = 5 * time.Minute

// Errors returned by ParseSecret and Verify.
var (
	ErrInvalidSecret       = errors.New("webhook: invalid secret")
	ErrMissingHeaders      = errors.New("webhook: missing required headers")
	ErrInvalidTimestamp    = errors.New("webhook: invalid timestamp header")
	ErrTimestampTooOld     = errors.New("webhook: message timestamp too old")
	ErrTimestampTooNew     = errors.New("webhook: message timestamp too new")
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// mac returns the raw HMAC-SHA256 of "msgID.ts.body" under secret.
func mac(secret []byte, msgID string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns one webhook-signature entry, "v1,<base64 HMAC-SHA256 of
// msgID.ts.body>", where ts is rendered as Unix seconds.
func Sign(secret []byte, msgID string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(secret, msgID, ts.Unix(), body))
}

// NewSecret returns a fresh signing secret: "whsec_" followed by the standard
// base64 encoding of 32 random bytes.
func NewSecret() string {
	b := make([]byte, SecretSize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ParseSecret decodes a "whsec_<base64>" secret into its key bytes. The prefix
// is required and the key must not be empty.
func ParseSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: missing %q prefix", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSecret, err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrInvalidSecret)
	}
	return key, nil
}

// Headers returns the Standard Webhooks headers for one delivery attempt:
// webhook-id, webhook-timestamp (Unix seconds of ts) and webhook-signature
// with one space-separated "v1,…" entry per secret, in order (two while a
// rotated secret is still live). Callers pass at least one secret.
func Headers(secrets [][]byte, msgID string, ts time.Time, body []byte) http.Header {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sigs = append(sigs, Sign(s, msgID, ts, body))
	}
	h := make(http.Header, 3)
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h
}

// Verify checks a received message against secret: the webhook-id,
// webhook-timestamp and webhook-signature headers must be present, the
// timestamp must lie within tolerance of now (either direction; tolerance <= 0
// means DefaultTolerance), and at least one "v1,…" entry of the signature
// header must match. Comparison is constant-time.
func Verify(secret []byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	msgID, tsHeader, sigHeader := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if msgID == "" || tsHeader == "" || sigHeader == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrInvalidTimestamp, tsHeader)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(unix, 0)
	if now.Sub(ts) > tolerance {
		return ErrTimestampTooOld
	}
	if ts.Sub(now) > tolerance {
		return ErrTimestampTooNew
	}
	want := mac(secret, msgID, unix, body)
	for _, entry := range strings.Fields(sigHeader) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}
