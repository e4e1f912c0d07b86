package auth

import (
	"testing"
	"time"
)

// TestTOTPRFC6238Vectors checks the code generator against RFC 6238
// Appendix B (SHA-1 rows; the RFC prints 8 digits, a 6-digit code is the
// same value modulo 10^6, that is its last six digits).
func TestTOTPRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string // the RFC's 8 digits
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		got := totpCode(secret, TOTPStep(time.Unix(tc.unix, 0)))
		if string(got[:]) != tc.want[2:] {
			t.Errorf("T=%d: code %s, want %s", tc.unix, got[:], tc.want[2:])
		}
	}
}

func TestMatchTOTP(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	cur := TOTPStep(now)
	for _, tc := range []struct {
		name     string
		step     int64
		skew     int
		wantOK   bool
		wantStep int64
	}{
		{"current step", cur, 1, true, cur},
		{"previous step within skew", cur - 1, 1, true, cur - 1},
		{"next step within skew", cur + 1, 1, true, cur + 1},
		{"two steps back with skew 1", cur - 2, 1, false, 0},
		{"two steps back with skew 2", cur - 2, 2, true, cur - 2},
		{"previous step with skew 0", cur - 1, 0, false, 0},
	} {
		c := totpCode(secret, tc.step)
		step, ok := matchTOTP(secret, string(c[:]), now, tc.skew)
		if ok != tc.wantOK || (ok && step != tc.wantStep) {
			t.Errorf("%s: matchTOTP = %d, %v; want %d, %v", tc.name, step, ok, tc.wantStep, tc.wantOK)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef", "０１２３４５"} {
		if _, ok := matchTOTP(secret, bad, now, 2); ok {
			t.Errorf("matchTOTP(%q) accepted a malformed code", bad)
		}
	}
	if _, ok := matchTOTP([]byte("another secret of twenty"), func() string { c := totpCode(secret, cur); return string(c[:]) }(), now, 1); ok {
		t.Error("a code of another secret was accepted")
	}
}
