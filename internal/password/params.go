package password

import (
	"fmt"
	"strings"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory      uint32 // KiB, default 19456
	Iterations  uint32 // default 2
	Parallelism uint8  // default 1
	SaltLen     uint32 // default 16
	KeyLen      uint32 // default 32
}

// Bounds on argon2id parameters. The lower bounds come from the argon2
// specification (RFC 9106) and common sense: a salt under 8 bytes makes
// precomputation practical, a tag under 16 bytes makes accidental matches
// conceivable. The upper bounds exist because stored hashes are input: a
// corrupted or hostile row with m=4TiB or t=2^32-1 must be refused with an
// error instead of making the server allocate or spin until it dies. The
// same bounds apply to the configured Params, so a Hasher never writes a
// hash that its own Verify would refuse.
const (
	minSaltLen   = 8
	maxSaltLen   = 256
	minKeyLen    = 16
	maxKeyLen    = 256
	maxMemoryKiB = 4 << 20 // 4 GiB
	maxIter      = 100
)

// DefaultParams returns the OWASP Password Storage Cheat Sheet's first
// argon2id configuration: 19 MiB of memory, 2 iterations, 1 lane. It costs
// roughly as much as bcrypt cost 10 on one core while being memory-hard,
// which is what makes GPU and ASIC guessing expensive.
func DefaultParams() Params {
	return Params{
		Memory:      19456,
		Iterations:  2,
		Parallelism: 1,
		SaltLen:     16,
		KeyLen:      32,
	}
}

// Validate reports whether p is usable: iterations >= 1, parallelism >= 1,
// memory >= 8*parallelism KiB (an argon2 requirement), salt >= 8 bytes and
// key >= 16 bytes, and nothing above the limits that Verify enforces on
// stored hashes (memory <= 4 GiB, iterations <= 100, salt and key <= 256
// bytes).
func (p Params) Validate() error {
	var problems []string
	if p.Iterations < 1 || p.Iterations > maxIter {
		problems = append(problems, fmt.Sprintf("iterations %d not in [1, %d]", p.Iterations, maxIter))
	}
	if p.Parallelism < 1 {
		problems = append(problems, "parallelism must be at least 1")
	}
	if p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemoryKiB {
		problems = append(problems, fmt.Sprintf("memory %d KiB not in [8*parallelism, %d]", p.Memory, maxMemoryKiB))
	}
	if p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen {
		problems = append(problems, fmt.Sprintf("salt length %d not in [%d, %d]", p.SaltLen, minSaltLen, maxSaltLen))
	}
	if p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		problems = append(problems, fmt.Sprintf("key length %d not in [%d, %d]", p.KeyLen, minKeyLen, maxKeyLen))
	}
	if len(problems) > 0 {
		return fmt.Errorf("password: invalid argon2id params: %s", strings.Join(problems, "; "))
	}
	return nil
}
