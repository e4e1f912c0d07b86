package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// maxBcryptCost is the highest bcrypt cost Verify accepts. Legacy systems
// used 10 to 12; each step doubles the work, and cost 31 would take days,
// so a larger value in a stored hash is corruption or an attack, not a
// password to check.
const maxBcryptCost = 16

// bcryptLen is the length of every modular-crypt bcrypt hash:
// "$2b$" + 2 cost digits + "$" + 22 salt + 31 hash characters.
const bcryptLen = 60

// Hasher hashes and verifies passwords. Safe for concurrent use.
type Hasher struct {
	params    Params
	paramsErr error    // from params.Validate; Hash refuses to run with bad params
	limiter   *Limiter // nil: unlimited
	// dummy is an argon2id hash with h's params of a random key nobody
	// knows the password to; VerifyDummy checks passwords against it.
	dummy string
}

// NewHasher returns a Hasher that writes argon2id hashes with p and runs
// every computation inside l (nil = unlimited).
//
// NewHasher does not fail: if p is invalid, Hash and VerifyDummy return
// p.Validate's error (call p.Validate at start-up to fail fast on bad
// configuration), while Verify still checks existing hashes.
func NewHasher(p Params, l *Limiter) *Hasher {
	h := &Hasher{params: p, paramsErr: p.Validate(), limiter: l}
	if h.paramsErr == nil {
		h.dummy = phcHash{
			memory:      p.Memory,
			iterations:  p.Iterations,
			parallelism: p.Parallelism,
			salt:        randomBytes(p.SaltLen),
			key:         randomBytes(p.KeyLen),
		}.String()
	}
	return h
}

// Params returns the parameters new hashes are written with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the argon2id hash of plain as a PHC string,
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>" with base64 (standard
// alphabet, no padding) salt and key. The salt is fresh from crypto/rand for
// every call, so equal passwords get different hashes. Hash does not apply
// any Policy; callers check new passwords with Policy.Check first.
func (h *Hasher) Hash(ctx context.Context, plain string) (string, error) {
	if h.paramsErr != nil {
		return "", h.paramsErr
	}
	p := h.params
	salt := randomBytes(p.SaltLen)
	release, err := h.limiter.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	key := argon2.IDKey([]byte(plain), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return phcHash{
		memory:      p.Memory,
		iterations:  p.Iterations,
		parallelism: p.Parallelism,
		salt:        salt,
		key:         key,
	}.String(), nil
}

// Verify reports whether plain matches encoded. encoded may be an argon2id
// PHC string with ANY parameters (within sane bounds), or a bcrypt hash
// ($2a$, $2b$, $2y$). rehash is true when the match succeeded and the
// encoded hash is not argon2id with exactly h's current params (so the
// caller re-hashes on login).
//
// A malformed or unsupported encoded gives an error wrapping
// ErrMalformedHash, detected before any expensive work and without taking a
// limiter slot. Stored parameters beyond the bounds (memory > 4 GiB,
// iterations > 100, bcrypt cost > 16) are refused the same way rather than
// computed. A wrong password is ok=false with a nil error. The computation
// runs inside the limiter, so err may also be a *BusyError.
func (h *Hasher) Verify(ctx context.Context, encoded, plain string) (ok, rehash bool, err error) {
	switch {
	case strings.HasPrefix(encoded, argon2idPrefix):
		return h.verifyArgon2id(ctx, encoded, plain)
	case isBcrypt(encoded):
		return h.verifyBcrypt(ctx, encoded, plain)
	default:
		return false, false, malformed("unknown hash scheme (want argon2id or bcrypt)")
	}
}

func (h *Hasher) verifyArgon2id(ctx context.Context, encoded, plain string) (ok, rehash bool, err error) {
	stored, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	release, err := h.limiter.Acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	key := argon2.IDKey([]byte(plain), stored.salt, stored.iterations, stored.memory, stored.parallelism, uint32(len(stored.key)))
	// Constant-time comparison: the time taken must not reveal how many
	// leading bytes of the stored key an attacker's guess got right.
	if subtle.ConstantTimeCompare(key, stored.key) != 1 {
		return false, false, nil
	}
	return true, stored.params() != h.params, nil
}

// isBcrypt reports whether encoded claims to be a bcrypt hash in one of the
// variants that mean the same algorithm: $2a$ (the common one), $2b$
// (OpenBSD's fix for a length wrap-around bug that Go never had) and $2y$
// (PHP's name for the corrected crypt_blowfish).
func isBcrypt(encoded string) bool {
	return strings.HasPrefix(encoded, "$2a$") ||
		strings.HasPrefix(encoded, "$2b$") ||
		strings.HasPrefix(encoded, "$2y$")
}

func (h *Hasher) verifyBcrypt(ctx context.Context, encoded, plain string) (ok, rehash bool, err error) {
	if len(encoded) != bcryptLen {
		return false, false, malformed("bcrypt hash must be %d characters", bcryptLen)
	}
	// bcrypt.Cost parses the hash without computing anything, so the cost
	// bound is enforced before the expensive part.
	cost, err := bcrypt.Cost([]byte(encoded))
	if err != nil {
		return false, false, malformed("bcrypt: %v", err)
	}
	if cost > maxBcryptCost {
		return false, false, malformed("bcrypt cost %d above %d", cost, maxBcryptCost)
	}
	release, err := h.limiter.Acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	// CompareHashAndPassword compares in constant time. Like every bcrypt
	// implementation it only uses the first 72 bytes of the password, which
	// is what the legacy system did when it made the hash.
	switch err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(plain)); err {
	case nil:
		// Every bcrypt hash is upgraded to argon2id on a successful login.
		return true, true, nil
	case bcrypt.ErrMismatchedHashAndPassword:
		return false, false, nil
	default:
		// The salt is only decoded here, so a bad salt surfaces now.
		return false, false, malformed("bcrypt: %v", err)
	}
}

// VerifyDummy performs the same work as Verify of a wrong password against a
// hash with h's current params, and returns nothing useful — used for
// unknown users so timing does not reveal which emails exist. It goes
// through the limiter like Verify, and returns its error (e.g. *BusyError),
// so an unknown email is refused under load exactly like a known one.
func (h *Hasher) VerifyDummy(ctx context.Context, plain string) error {
	if h.paramsErr != nil {
		return h.paramsErr
	}
	// Run the real Verify code path on a real hash, rather than a
	// look-alike computation, so that parsing, memory and comparison cost
	// the same as for a known user. The random key means no password can
	// match (short of a 2^-256 chance), and the result is discarded anyway.
	_, _, err := h.Verify(ctx, h.dummy, plain)
	return err
}

// randomBytes returns n bytes from crypto/rand, which never fails (since
// Go 1.24 it crashes the program rather than return predictable bytes).
func randomBytes(n uint32) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
