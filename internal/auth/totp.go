package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"time"
)

// TOTP parameters (SPEC §13): SHA-1, 6 digits, 30-second steps — what every
// authenticator app supports.
const (
	TOTPPeriod  = 30 * time.Second
	TOTPDigits  = 6
	totpModulus = 1_000_000
)

// TOTPStep is the RFC 6238 time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// totpCode is the RFC 6238 code (RFC 4226 dynamic truncation, HMAC-SHA-1)
// of secret at step, as 6 ASCII digits.
func totpCode(secret []byte, step int64) [TOTPDigits]byte {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	v %= totpModulus
	var out [TOTPDigits]byte
	for i := TOTPDigits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
	return out
}

// matchTOTP checks code against every step in now ± skew with a
// constant-time comparison and no early exit, and returns the matching
// step (the latest, if several match) or ok false. Whether that step may
// still be used (greater than the authenticator's last step) is the
// caller's compare-and-set.
func matchTOTP(secret []byte, code string, now time.Time, skew int) (step int64, ok bool) {
	if len(code) != TOTPDigits {
		return 0, false
	}
	cur := TOTPStep(now)
	found := 0
	for s := cur - int64(skew); s <= cur+int64(skew); s++ {
		want := totpCode(secret, s)
		eq := subtle.ConstantTimeCompare(want[:], []byte(code))
		found |= eq
		step = int64(subtle.ConstantTimeSelect(eq, int(s), int(step)))
	}
	return step, found == 1
}
