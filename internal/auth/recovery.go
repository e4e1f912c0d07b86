package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// Recovery codes (SPEC §13): 80 random bits each, written as 16 characters
// of a lowercase base32 alphabet in groups of four ("k4m9-x7qp-2ab8-ht3z"),
// stored only as HMAC-SHA256 under a key derived from the root secret, so a
// database dump alone cannot test guesses and checking a code is one
// indexed lookup.

// recoveryAlphabet is base32 without the letters people confuse with
// digits (i, l, o, u are left out; 0/1 stay): 32 symbols, 5 bits each.
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var recoveryEncoding = base32.NewEncoding(recoveryAlphabet).WithPadding(base32.NoPadding)

// newRecoveryCode returns a fresh code in its display form.
func newRecoveryCode() string {
	var b [10]byte // 80 bits → 16 symbols
	_, _ = rand.Read(b[:])
	s := recoveryEncoding.EncodeToString(b[:])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// normalizeRecoveryCode turns what a user typed into the 16 symbols: case,
// spaces and hyphens do not matter, and the look-alike letters i, l, o and
// u read as 1, 1, 0 and v. ok is false when the rest is not a code.
func normalizeRecoveryCode(in string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(in) {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			continue
		case r == 'i' || r == 'l':
			r = '1'
		case r == 'o':
			r = '0'
		case r == 'u':
			r = 'v'
		}
		if !strings.ContainsRune(recoveryAlphabet, r) || b.Len() >= 16 {
			return "", false
		}
		b.WriteRune(r)
	}
	return b.String(), b.Len() == 16
}

// recoveryCodeHash is the stored form of a normalised code.
func recoveryCodeHash(key []byte, normalized string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(normalized))
	return hex.EncodeToString(m.Sum(nil))
}
