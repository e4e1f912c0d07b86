package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformedHash is wrapped by every error Verify returns for a stored hash
// it cannot or will not check: unknown scheme, bad syntax, or parameters
// outside the accepted bounds. The wrapping message names the problem but
// never echoes the hash or the password.
var ErrMalformedHash = errors.New("password: malformed or unsupported hash")

const (
	argon2idPrefix = "$argon2id$"
	// argon2Version is the only version x/crypto/argon2 implements (0x13).
	argon2Version = 19
	// maxEncodedLen bounds the input before any parsing or decoding, so the
	// work done on a garbage column value is tiny. The longest hash within
	// the Params bounds is about 740 bytes.
	maxEncodedLen = 1024
)

// phcHash is a parsed "$argon2id$v=19$m=...,t=...,p=...$salt$key" string.
type phcHash struct {
	memory      uint32
	iterations  uint32
	parallelism uint8
	salt        []byte
	key         []byte
}

// params returns the Params that produced h, for comparison with a Hasher's.
func (h phcHash) params() Params {
	return Params{
		Memory:      h.memory,
		Iterations:  h.iterations,
		Parallelism: h.parallelism,
		SaltLen:     uint32(len(h.salt)),
		KeyLen:      uint32(len(h.key)),
	}
}

// String encodes h in the PHC string format, with parameters in the order
// the reference implementation uses (m, t, p).
func (h phcHash) String() string {
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2idPrefix, argon2Version, h.memory, h.iterations, h.parallelism,
		b64(h.salt), b64(h.key))
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedHash, fmt.Sprintf(format, args...))
}

// parsePHC parses and bounds-checks an argon2id PHC string. It is strict: it
// accepts exactly the canonical form that String produces (and that the
// reference implementation, libsodium and argon2-cffi produce), because a
// lenient parser is where confusion between what was stored and what is
// checked creeps in. It never allocates more than the input's size.
func parsePHC(encoded string) (phcHash, error) {
	var h phcHash
	if len(encoded) > maxEncodedLen {
		return h, malformed("argon2id hash longer than %d bytes", maxEncodedLen)
	}
	// "$argon2id$v=19$m=..,t=..,p=..$salt$key" splits into 6 fields, the
	// first empty.
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" || fields[1] != "argon2id" {
		return h, malformed("argon2id hash must have the form $argon2id$v=19$m=M,t=T,p=P$salt$key")
	}
	if fields[2] != "v="+strconv.Itoa(argon2Version) {
		return h, malformed("unsupported argon2 version (only v=%d is supported)", argon2Version)
	}
	if err := h.parseCosts(fields[3]); err != nil {
		return h, err
	}
	var err error
	if h.salt, err = decodeB64(fields[4], "salt"); err != nil {
		return h, err
	}
	if h.key, err = decodeB64(fields[5], "key"); err != nil {
		return h, err
	}
	if n := len(h.salt); n < minSaltLen || n > maxSaltLen {
		return h, malformed("salt length %d not in [%d, %d]", n, minSaltLen, maxSaltLen)
	}
	if n := len(h.key); n < minKeyLen || n > maxKeyLen {
		return h, malformed("key length %d not in [%d, %d]", n, minKeyLen, maxKeyLen)
	}
	return h, nil
}

// parseCosts parses "m=M,t=T,p=P" into h and checks the bounds before
// anything is allocated: argon2 would happily try to allocate m KiB and run
// t passes, so these checks are what stop a bad row from taking the server
// down.
func (h *phcHash) parseCosts(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return malformed("argon2id parameters must be m=M,t=T,p=P")
	}
	m, err := parseCost(parts[0], "m=", 32)
	if err != nil {
		return err
	}
	t, err := parseCost(parts[1], "t=", 32)
	if err != nil {
		return err
	}
	p, err := parseCost(parts[2], "p=", 8)
	if err != nil {
		return err
	}
	if t < 1 || t > maxIter {
		return malformed("iterations %d not in [1, %d]", t, maxIter)
	}
	if p < 1 {
		return malformed("parallelism must be at least 1")
	}
	if m < 8*p || m > maxMemoryKiB {
		return malformed("memory %d KiB not in [8*parallelism, %d]", m, maxMemoryKiB)
	}
	h.memory, h.iterations, h.parallelism = uint32(m), uint32(t), uint8(p)
	return nil
}

// parseCost parses "<prefix><decimal>" into an unsigned integer of bits bits.
func parseCost(s, prefix string, bits int) (uint64, error) {
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, malformed("expected argon2id parameter %q", strings.TrimSuffix(prefix, "="))
	}
	// ParseUint with base 10 rejects signs, spaces and underscores; an
	// out-of-range value is an error, not a silent wrap-around. Leading
	// zeros are refused too (the PHC format forbids them), so every value
	// has one spelling.
	v, err := strconv.ParseUint(digits, 10, bits)
	if err != nil || (len(digits) > 1 && digits[0] == '0') {
		return 0, malformed("argon2id parameter %q is not a %d-bit unsigned integer", strings.TrimSuffix(prefix, "="), bits)
	}
	return v, nil
}

// b64 encodes b in the PHC string format's base64: the standard alphabet
// without padding, as the argon2 reference implementation writes it.
func b64(b []byte) string {
	return base64.RawStdEncoding.EncodeToString(b)
}

// decodeB64 decodes a PHC base64 field and insists on the canonical
// encoding: the decoder skips '\r' and '\n' and tolerates stray trailing
// bits, so re-encoding and comparing is the simplest way to accept exactly
// one spelling of each value.
func decodeB64(s, what string) ([]byte, error) {
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || b64(b) != s {
		return nil, malformed("%s is not unpadded standard base64", what)
	}
	return b, nil
}
