package argon2

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	upstream "golang.org/x/crypto/argon2"
)

// The RFC 9106 §5.3 Argon2id test vector (with secret and associated data),
// as upstream tests it.
func TestRFC9106Vector(t *testing.T) {
	password := bytes.Repeat([]byte{0x01}, 32)
	salt := bytes.Repeat([]byte{0x02}, 16)
	secret := bytes.Repeat([]byte{0x03}, 8)
	ad := bytes.Repeat([]byte{0x04}, 12)
	want := "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
	defer func(sse4 bool) { useSSE4 = sse4 }(useSSE4)
	for _, sse4 := range []bool{useSSE4, false} {
		useSSE4 = sse4
		p := NewPool(1)
		// Twice: the second run reuses the first one's memory.
		for run := range 2 {
			got := hex.EncodeToString(p.deriveKey(password, salt, secret, ad, 3, 32, 4, 32))
			if got != want {
				t.Errorf("sse4=%v run %d: got %s, want %s", sse4, run, got, want)
			}
		}
	}
}

// Upstream's Argon2id known answers for password "password", salt "somesalt".
func TestUpstreamVectors(t *testing.T) {
	vectors := []struct {
		time, memory uint32
		threads      uint8
		hash         string
	}{
		{1, 64, 1, "655ad15eac652dc59f7170a7332bf49b8469be1fdb9c28bb"},
		{2, 64, 1, "068d62b26455936aa6ebe60060b0a65870dbfa3ddf8d41f7"},
		{2, 64, 2, "350ac37222f436ccb5c0972f1ebd3bf6b958bf2071841362"},
		{3, 256, 2, "4668d30ac4187e6878eedeacf0fd83c5a0a30db2cc16ef0b"},
		{4, 4096, 4, "145db9733a9f4ee43edf33c509be96b934d505a4efb33c5a"},
		{4, 1024, 8, "8dafa8e004f8ea96bf7c0f93eecf67a6047476143d15577f"},
		{2, 64, 3, "4a15b31aec7c2590b87d1f520be7d96f56658172deaa3079"},
		{3, 1024, 6, "1640b932f4b60e272f5d2207b9a9c626ffa1bd88d2349016"},
	}
	p := NewPool(2)
	for i, v := range vectors {
		want, _ := hex.DecodeString(v.hash)
		for run := range 2 {
			poison(p)
			got := p.IDKey([]byte("password"), []byte("somesalt"), v.time, v.memory, v.threads, uint32(len(want)))
			if !bytes.Equal(got, want) {
				t.Errorf("vector %d run %d: got %x, want %x", i, run, got, want)
			}
		}
	}
}

// poison fills every idle buffer of p with random words, so a hash that
// read memory before writing it would give a wrong key.
func poison(p *Pool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := rand.New(rand.NewPCG(1, 2))
	for _, b := range p.idle {
		for i := range b {
			for j := range b[i] {
				b[i][j] = r.Uint64()
			}
		}
	}
}

// The same keys as upstream over random inputs and parameters, with every
// buffer reused from an earlier hash and scribbled over first.
func TestMatchesUpstream(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	p := NewPool(3)
	for i := range 60 {
		password := make([]byte, r.IntN(40))
		salt := make([]byte, 8+r.IntN(24))
		for j := range password {
			password[j] = byte(r.UintN(256))
		}
		for j := range salt {
			salt[j] = byte(r.UintN(256))
		}
		time := 1 + r.Uint32N(3)
		threads := uint8(1 + r.UintN(4))
		// Small and odd sizes too: both sides round them the same way.
		memory := 8 + r.Uint32N(300)
		if i%10 == 0 {
			memory = 19456 // Gatehouse's default
		}
		keyLen := 4 + r.Uint32N(80)
		poison(p)
		got := p.IDKey(password, salt, time, memory, threads, keyLen)
		want := upstream.IDKey(password, salt, time, memory, threads, keyLen)
		if !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d len=%d: got %x, want %x", time, memory, threads, keyLen, got, want)
		}
	}
}

func TestPoolKeepsAtMostMaxIdle(t *testing.T) {
	p := NewPool(2)
	for _, m := range []uint32{64, 128, 256, 64} {
		p.IDKey([]byte("pw"), []byte("saltsalt"), 1, m, 1, 32)
	}
	n, size := p.Idle()
	// The two most recently returned sizes are kept: 256 and 64 KiB.
	if n != 2 || size != (256+64)*1024 {
		t.Fatalf("Idle() = %d buffers, %d bytes; want 2, %d", n, size, (256+64)*1024)
	}
	// Reuse takes the idle buffer of the right size instead of allocating.
	before := testing.AllocsPerRun(5, func() { p.IDKey([]byte("pw"), []byte("saltsalt"), 1, 256, 1, 32) })
	var zero Pool
	after := testing.AllocsPerRun(5, func() { zero.IDKey([]byte("pw"), []byte("saltsalt"), 1, 256, 1, 32) })
	if before >= after {
		t.Errorf("allocations with a warm pool (%v) not below a pool that keeps nothing (%v)", before, after)
	}
	if n, _ := zero.Idle(); n != 0 {
		t.Errorf("zero Pool keeps %d buffers, want 0", n)
	}
}

// Concurrent hashes never share a buffer (run with -race).
func TestPoolConcurrent(t *testing.T) {
	p := NewPool(2)
	want := make(map[int][]byte)
	for i := range 8 {
		want[i] = upstream.IDKey(fmt.Appendf(nil, "password %d", i), []byte("somesalt"), 2, 256, 2, 32)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*5)
	for i := range 8 {
		wg.Go(func() {
			for range 5 {
				got := p.IDKey(fmt.Appendf(nil, "password %d", i), []byte("somesalt"), 2, 256, 2, 32)
				if !bytes.Equal(got, want[i]) {
					errs <- fmt.Errorf("password %d: got %x, want %x", i, got, want[i])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPanicsOnBadCost(t *testing.T) {
	for _, tt := range []struct {
		time    uint32
		threads uint8
	}{{0, 1}, {1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("time=%d threads=%d: no panic", tt.time, tt.threads)
				}
			}()
			NewPool(1).IDKey([]byte("pw"), []byte("saltsalt"), tt.time, 64, tt.threads, 32)
		}()
	}
}

// BenchmarkIDKey compares a pooled hash with upstream's at Gatehouse's
// default parameters, one hash per CPU at a time.
func BenchmarkIDKey(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.Run("upstream", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				upstream.IDKey(pw, salt, 2, 19456, 1, 32)
			}
		})
	})
	b.Run("pooled", func(b *testing.B) {
		p := NewPool(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.IDKey(pw, salt, 2, 19456, 1, 32)
			}
		})
	})
}
