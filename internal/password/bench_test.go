package password

import (
	"context"
	"testing"

	"golang.org/x/crypto/argon2"
)

// BenchmarkHash measures Hasher.Hash with the default params, limiter
// included; compare with BenchmarkArgon2idRaw for the hasher's overhead.
func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams(), NewLimiter(LimiterOptions{Concurrency: 1}))
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArgon2idRaw measures argon2.IDKey alone with the default params.
func BenchmarkArgon2idRaw(b *testing.B) {
	p := DefaultParams()
	password := []byte("correct horse battery staple")
	salt := make([]byte, p.SaltLen)
	for b.Loop() {
		argon2.IDKey(password, salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	}
}

// BenchmarkVerify measures a successful Verify with the default params.
func BenchmarkVerify(b *testing.B) {
	h := NewHasher(DefaultParams(), nil)
	ctx := context.Background()
	encoded := mustHash(b, h, "correct horse battery staple")
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, encoded, "correct horse battery staple"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
