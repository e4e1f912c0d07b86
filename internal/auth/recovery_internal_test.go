package auth

import (
	"regexp"
	"testing"
)

func TestRecoveryCodes(t *testing.T) {
	shape := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`)
	seen := map[string]bool{}
	for range 1000 {
		c := newRecoveryCode()
		if !shape.MatchString(c) {
			t.Fatalf("code %q: want 4 groups of 4 symbols of the alphabet", c)
		}
		n, ok := normalizeRecoveryCode(c)
		if !ok || len(n) != 16 {
			t.Fatalf("normalizeRecoveryCode(%q) = %q, %v", c, n, ok)
		}
		if seen[n] {
			t.Fatalf("code %q drawn twice in 1000", c)
		}
		seen[n] = true
	}
	for in, want := range map[string]string{
		"k4m9-x7qp-2ab8-ht3z":   "k4m9x7qp2ab8ht3z",
		" K4M9 X7QP 2AB8 HT3Z ": "k4m9x7qp2ab8ht3z",
		"k4m9x7qp2ab8ht3z":      "k4m9x7qp2ab8ht3z",
		"OIlU-x7qp-2ab8-ht3z":   "011vx7qp2ab8ht3z",
		"k4m9--x7qp\t2ab8-ht3z": "k4m9x7qp2ab8ht3z",
	} {
		if got, ok := normalizeRecoveryCode(in); !ok || got != want {
			t.Errorf("normalizeRecoveryCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "k4m9-x7qp-2ab8", "k4m9-x7qp-2ab8-ht3z-0000", "k4m9-x7qp-2ab8-ht3!", "ünïcode-code-here"} {
		if got, ok := normalizeRecoveryCode(bad); ok {
			t.Errorf("normalizeRecoveryCode(%q) = %q, accepted", bad, got)
		}
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	a, b := recoveryCodeHash(key, "k4m9x7qp2ab8ht3z"), recoveryCodeHash([]byte("another key, 32 bytes long......"), "k4m9x7qp2ab8ht3z")
	if a == b || len(a) != 64 {
		t.Fatalf("recoveryCodeHash: %q under one key, %q under another", a, b)
	}
}
