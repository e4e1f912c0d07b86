package password

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// testParams are small argon2id params that keep the tests fast.
func testParams() Params {
	return Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

func newTestHasher(t testing.TB, p Params, l *Limiter) *Hasher {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("test params %+v invalid: %v", p, err)
	}
	return NewHasher(p, l)
}

func mustHash(t testing.TB, h *Hasher, plain string) string {
	t.Helper()
	encoded, err := h.Hash(context.Background(), plain)
	if err != nil {
		t.Fatalf("Hash(%q): %v", plain, err)
	}
	return encoded
}

func assertVerify(t *testing.T, h *Hasher, encoded, plain string, wantOK, wantRehash bool) {
	t.Helper()
	ok, rehash, err := h.Verify(context.Background(), encoded, plain)
	if err != nil {
		t.Fatalf("Verify(%q, %q): unexpected error %v", encoded, plain, err)
	}
	if ok != wantOK || rehash != wantRehash {
		t.Fatalf("Verify(%q, %q) = ok %v, rehash %v; want ok %v, rehash %v", encoded, plain, ok, rehash, wantOK, wantRehash)
	}
}

// heldLimiter returns a limiter whose only slot is taken and that refuses
// waiters, plus a counter of Acquire calls. Verify calls that reach the
// limiter fail with *BusyError, so a test using it can prove that an input
// was rejected before any hashing capacity was spent on it.
func heldLimiter(t *testing.T) (*Limiter, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	l := NewLimiter(LimiterOptions{Concurrency: 1, Observe: func(time.Duration) { calls.Add(1) }})
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire on empty limiter: %v", err)
	}
	t.Cleanup(release)
	calls.Store(0)
	return l, &calls
}

func TestHashVerifyRoundTrip(t *testing.T) {
	h := newTestHasher(t, testParams(), nil)
	tests := []struct {
		name  string
		plain string
	}{
		{"ascii", "correct horse battery staple"},
		{"empty", ""},
		{"multi-byte", "pässwörd-密码-🔑"},
		{"with NUL", "abc\x00def"},
		{"256 characters", strings.Repeat("é", 256)},
		{"1 KiB", strings.Repeat("x", 1024)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded := mustHash(t, h, tt.plain)
			assertVerify(t, h, encoded, tt.plain, true, false)
			assertVerify(t, h, encoded, tt.plain+"x", false, false)
		})
	}
}

func TestHashFormat(t *testing.T) {
	tests := []struct {
		name   string
		params Params
		want   string
	}{
		{"test params", testParams(), `^\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`},
		{"longer salt and key", Params{Memory: 2048, Iterations: 3, Parallelism: 2, SaltLen: 32, KeyLen: 64},
			`^\$argon2id\$v=19\$m=2048,t=3,p=2\$[A-Za-z0-9+/]{43}\$[A-Za-z0-9+/]{86}$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded := mustHash(t, newTestHasher(t, tt.params, nil), "hunter2hunter2")
			if !regexp.MustCompile(tt.want).MatchString(encoded) {
				t.Fatalf("Hash = %q, want match for %s", encoded, tt.want)
			}
		})
	}
}

// TestHashDefaultParams is the one test that pays for the real defaults.
func TestHashDefaultParams(t *testing.T) {
	h := newTestHasher(t, DefaultParams(), nil)
	encoded := mustHash(t, h, "correct horse battery staple")
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(encoded) {
		t.Fatalf("Hash = %q, want match for %s", encoded, re)
	}
	assertVerify(t, h, encoded, "correct horse battery staple", true, false)
	assertVerify(t, h, encoded, "correct horse battery stapler", false, false)
}

func TestHashSaltsDiffer(t *testing.T) {
	h := newTestHasher(t, testParams(), nil)
	a, b := mustHash(t, h, "same password"), mustHash(t, h, "same password")
	if a == b {
		t.Fatalf("two hashes of the same password are equal: %q", a)
	}
	pa, err := parsePHC(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := parsePHC(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(pa.salt) == string(pb.salt) {
		t.Fatalf("two hashes share the salt %x", pa.salt)
	}
}

// TestVerifyReferenceVectors checks interoperability with the argon2
// reference implementation (phc-winner-argon2): hashes it produced verify,
// and our encoder writes the same string for the same inputs.
func TestVerifyReferenceVectors(t *testing.T) {
	tests := []struct {
		name    string
		encoded string
		plain   string
	}{
		// The argon2id vector in the reference implementation's src/test.c.
		{"reference test vector", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password"},
		// Made with the reference CLI (Debian's argon2 0~20171227):
		// echo -n pässwörd | argon2 saltsaltsalt1234 -id -t 3 -k 2048 -p 2 -l 24 -e
		{"reference CLI, p=2, 24-byte key", "$argon2id$v=19$m=2048,t=3,p=2$c2FsdHNhbHRzYWx0MTIzNA$QXVByVFDCcR75GpHgXh5o27l6j98TsRR", "pässwörd"},
	}
	h := newTestHasher(t, testParams(), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertVerify(t, h, tt.encoded, tt.plain, true, true)
			assertVerify(t, h, tt.encoded, strings.ToUpper(tt.plain), false, false)

			stored, err := parsePHC(tt.encoded)
			if err != nil {
				t.Fatal(err)
			}
			key := argon2.IDKey([]byte(tt.plain), stored.salt, stored.iterations, stored.memory, stored.parallelism, uint32(len(stored.key)))
			got := phcHash{memory: stored.memory, iterations: stored.iterations, parallelism: stored.parallelism, salt: stored.salt, key: key}.String()
			if got != tt.encoded {
				t.Fatalf("encoded the reference inputs as %q, want %q", got, tt.encoded)
			}
		})
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	h := newTestHasher(t, testParams(), nil)
	encoded := mustHash(t, h, "Tr0ub4dor&3")
	tests := []struct {
		name  string
		plain string
	}{
		{"different", "correct horse"},
		{"case differs", "tr0ub4dor&3"},
		{"prefix", "Tr0ub4dor&"},
		{"extra character", "Tr0ub4dor&33"},
		{"trailing space", "Tr0ub4dor&3 "},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertVerify(t, h, encoded, tt.plain, false, false)
		})
	}
}

func TestVerifyRehash(t *testing.T) {
	current := testParams()
	with := func(f func(*Params)) Params {
		p := current
		f(&p)
		return p
	}
	tests := []struct {
		name       string
		stored     Params
		wantRehash bool
	}{
		{"same params", current, false},
		{"older params m=8192,t=1", Params{Memory: 8192, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, true},
		{"memory differs", with(func(p *Params) { p.Memory = 512 }), true},
		{"iterations differ", with(func(p *Params) { p.Iterations = 2 }), true},
		{"parallelism differs", with(func(p *Params) { p.Parallelism = 2 }), true},
		{"salt length differs", with(func(p *Params) { p.SaltLen = 8 }), true},
		{"key length differs", with(func(p *Params) { p.KeyLen = 16 }), true},
	}
	h := newTestHasher(t, current, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded := mustHash(t, newTestHasher(t, tt.stored, nil), "an old password")
			assertVerify(t, h, encoded, "an old password", true, tt.wantRehash)
			// rehash is only ever reported with a successful match.
			assertVerify(t, h, encoded, "not the old password", false, false)
		})
	}
}

func TestVerifyBcrypt(t *testing.T) {
	h := newTestHasher(t, testParams(), nil)
	const plain = "legacy password"
	raw, err := bcrypt.GenerateFromPassword([]byte(plain), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a := string(raw)
	if !strings.HasPrefix(a, "$2a$04$") {
		t.Fatalf("x/crypto/bcrypt produced %q, want a $2a$04$ hash", a)
	}
	tests := []struct {
		name    string
		encoded string
	}{
		// $2b$ and $2y$ are the same algorithm under other names, so the
		// same salt and digest verify under each prefix.
		{"2a", a},
		{"2b", "$2b$" + a[4:]},
		{"2y", "$2y$" + a[4:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertVerify(t, h, tt.encoded, plain, true, true)
			assertVerify(t, h, tt.encoded, "Legacy password", false, false)
			assertVerify(t, h, tt.encoded, "", false, false)
		})
	}
}

// TestVerifyBcryptLongPassword documents that, like the legacy systems that
// made them, bcrypt hashes only depend on a password's first 72 bytes.
func TestVerifyBcryptLongPassword(t *testing.T) {
	h := newTestHasher(t, testParams(), nil)
	first72 := strings.Repeat("0123456789", 7) + "ab"
	raw, err := bcrypt.GenerateFromPassword([]byte(first72), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	assertVerify(t, h, string(raw), first72, true, true)
	assertVerify(t, h, string(raw), first72+"anything", true, true)
	assertVerify(t, h, string(raw), first72[:71], false, false)
}

func TestVerifyMalformed(t *testing.T) {
	const (
		salt16 = "c29tZXNhbHRzb21lc2FsdA" // 16 bytes
		key32  = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
		bc     = "$2a$04$abcdefghijklmnopqrstuu" + "abcdefghijklmnopqrstuvwxyz01234" // 60 chars, valid shape
	)
	phc := func(version, costs, salt, key string) string {
		return "$argon2id$" + version + "$" + costs + "$" + salt + "$" + key
	}
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"plain text", "not a hash"},
		{"argon2i", "$argon2i$v=19$m=1024,t=1,p=1$" + salt16 + "$" + key32},
		{"argon2d", "$argon2d$v=19$m=1024,t=1,p=1$" + salt16 + "$" + key32},
		{"scrypt", "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"},
		{"prefix only", "$argon2id$"},
		{"wrong version", phc("v=16", "m=1024,t=1,p=1", salt16, key32)},
		{"version with leading zero", phc("v=019", "m=1024,t=1,p=1", salt16, key32)},
		{"missing version", "$argon2id$m=1024,t=1,p=1$" + salt16 + "$" + key32},
		{"missing key", "$argon2id$v=19$m=1024,t=1,p=1$" + salt16},
		{"missing salt and key", "$argon2id$v=19$m=1024,t=1,p=1"},
		{"empty key", phc("v=19", "m=1024,t=1,p=1", salt16, "")},
		{"extra field", phc("v=19", "m=1024,t=1,p=1", salt16, key32) + "$extra"},
		{"costs out of order", phc("v=19", "t=1,m=1024,p=1", salt16, key32)},
		{"missing parallelism", phc("v=19", "m=1024,t=1", salt16, key32)},
		{"extra cost parameter", phc("v=19", "m=1024,t=1,p=1,k=abc", salt16, key32)},
		{"empty memory", phc("v=19", "m=,t=1,p=1", salt16, key32)},
		{"negative memory", phc("v=19", "m=-1024,t=1,p=1", salt16, key32)},
		{"plus sign", phc("v=19", "m=+1024,t=1,p=1", salt16, key32)},
		{"leading zero", phc("v=19", "m=01024,t=1,p=1", salt16, key32)},
		{"space", phc("v=19", "m= 1024,t=1,p=1", salt16, key32)},
		{"absurd memory just over 4 GiB", phc("v=19", "m=4194305,t=1,p=1", salt16, key32)},
		{"absurd memory max uint32", phc("v=19", "m=4294967295,t=1,p=1", salt16, key32)},
		{"memory overflows uint32", phc("v=19", "m=4294967296,t=1,p=1", salt16, key32)},
		{"memory below 8*p", phc("v=19", "m=31,t=1,p=4", salt16, key32)},
		{"zero iterations", phc("v=19", "m=1024,t=0,p=1", salt16, key32)},
		{"absurd iterations", phc("v=19", "m=1024,t=101,p=1", salt16, key32)},
		{"zero parallelism", phc("v=19", "m=1024,t=1,p=0", salt16, key32)},
		{"parallelism overflows uint8", phc("v=19", "m=4096,t=1,p=256", salt16, key32)},
		{"bad base64 salt", phc("v=19", "m=1024,t=1,p=1", "!!!!notbase64!!!!", key32)},
		{"bad base64 key", phc("v=19", "m=1024,t=1,p=1", salt16, "****")},
		{"url-safe base64", phc("v=19", "m=1024,t=1,p=1", salt16, "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPP_")},
		{"padded base64", phc("v=19", "m=1024,t=1,p=1", salt16, key32+"=")},
		{"newline in salt", phc("v=19", "m=1024,t=1,p=1", salt16[:8]+"\n"+salt16[8:], key32)},
		{"non-canonical trailing bits", phc("v=19", "m=1024,t=1,p=1", salt16, key32[:42]+"d")},
		{"salt too short", phc("v=19", "m=1024,t=1,p=1", "c2FsdA", key32)},
		{"key too short", phc("v=19", "m=1024,t=1,p=1", salt16, "CTFhFdXPJO0")},
		{"too long", phc("v=19", "m=1024,t=1,p=1", salt16, strings.Repeat("A", 2000))},
		{"bcrypt too short", "$2a$04$abcdefghijklmnopqrstuu"},
		{"bcrypt too long", bc + "x"},
		{"bcrypt cost below minimum", "$2a$03" + bc[6:]},
		{"bcrypt absurd cost", "$2a$31" + bc[6:]},
		{"bcrypt cost above limit", "$2a$17" + bc[6:]},
		{"bcrypt cost not a number", "$2a$1x" + bc[6:]},
		{"bcrypt unsupported variant 2x", "$2x$" + bc[4:]},
		{"bcrypt without minor version", "$2$" + bc[4:] + "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, acquires := heldLimiter(t)
			h := NewHasher(testParams(), l)
			ok, rehash, err := h.Verify(context.Background(), tt.encoded, "password")
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify(%q) error = %v, want ErrMalformedHash", tt.encoded, err)
			}
			if ok || rehash {
				t.Fatalf("Verify(%q) = ok %v, rehash %v with error; want false, false", tt.encoded, ok, rehash)
			}
			if n := acquires.Load(); n != 0 {
				t.Fatalf("Verify(%q) called Acquire %d times; malformed hashes must be refused before hashing", tt.encoded, n)
			}
		})
	}
}

// TestVerifyBcryptBadSalt covers the one malformation bcrypt only notices
// while computing: the salt is decoded inside the expensive setup.
func TestVerifyBcryptBadSalt(t *testing.T) {
	h := newTestHasher(t, testParams(), nil)
	encoded := "$2a$04$!!!!!!!!!!!!!!!!!!!!!!" + "abcdefghijklmnopqrstuvwxyz01234"
	ok, _, err := h.Verify(context.Background(), encoded, "password")
	if !errors.Is(err, ErrMalformedHash) || ok {
		t.Fatalf("Verify(%q) = ok %v, err %v; want ErrMalformedHash", encoded, ok, err)
	}
}

func TestHasherBusy(t *testing.T) {
	other := newTestHasher(t, testParams(), nil)
	encoded := mustHash(t, other, "password1234")
	l, acquires := heldLimiter(t)
	h := newTestHasher(t, testParams(), l)
	tests := []struct {
		name string
		call func() error
	}{
		{"Hash", func() error { _, err := h.Hash(context.Background(), "password1234"); return err }},
		{"Verify", func() error { _, _, err := h.Verify(context.Background(), encoded, "password1234"); return err }},
		{"VerifyDummy", func() error { return h.VerifyDummy(context.Background(), "password1234") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := acquires.Load()
			err := tt.call()
			var busy *BusyError
			if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) {
				t.Fatalf("%s with a full limiter: error %v, want *BusyError", tt.name, err)
			}
			if acquires.Load() != before+1 {
				t.Fatalf("%s did not go through the limiter", tt.name)
			}
		})
	}
}

func TestHashCanceledContext(t *testing.T) {
	h := newTestHasher(t, testParams(), NewLimiter(LimiterOptions{Concurrency: 1}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Hash(ctx, "password1234")
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash with canceled context: error %v, want *BusyError wrapping context.Canceled", err)
	}
}

func TestVerifyDummy(t *testing.T) {
	var acquires atomic.Int64
	l := NewLimiter(LimiterOptions{Concurrency: 1, Observe: func(time.Duration) { acquires.Add(1) }})
	h := newTestHasher(t, testParams(), l)

	if err := h.VerifyDummy(context.Background(), "whatever"); err != nil {
		t.Fatalf("VerifyDummy: %v", err)
	}
	if n := acquires.Load(); n != 1 {
		t.Fatalf("VerifyDummy acquired the limiter %d times, want 1", n)
	}
	// The dummy costs what a real hash with the current params costs.
	dummy, err := parsePHC(h.dummy)
	if err != nil {
		t.Fatalf("dummy hash %q does not parse: %v", h.dummy, err)
	}
	if got := dummy.params(); got != h.Params() {
		t.Fatalf("dummy hash params %+v, want the hasher's %+v", got, h.Params())
	}
	// Nobody knows the dummy's password, and each hasher has its own.
	assertVerify(t, h, h.dummy, "", false, false)
	assertVerify(t, h, h.dummy, "whatever", false, false)
	if other := newTestHasher(t, testParams(), nil); other.dummy == h.dummy {
		t.Fatal("two hashers share a dummy hash")
	}
}

func TestHasherInvalidParams(t *testing.T) {
	h := NewHasher(Params{}, nil)
	if _, err := h.Hash(context.Background(), "password1234"); err == nil {
		t.Fatal("Hash with zero Params succeeded")
	}
	if err := h.VerifyDummy(context.Background(), "password1234"); err == nil {
		t.Fatal("VerifyDummy with zero Params succeeded")
	}
	// Existing hashes still verify, and need rehashing.
	encoded := mustHash(t, newTestHasher(t, testParams(), nil), "password1234")
	assertVerify(t, h, encoded, "password1234", true, true)
}

func TestHasherConcurrent(t *testing.T) {
	h := newTestHasher(t, testParams(), NewLimiter(LimiterOptions{Concurrency: 2, MaxWait: 10 * time.Second, MaxQueue: 100}))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			plain := strings.Repeat("p", i+8)
			encoded, err := h.Hash(context.Background(), plain)
			if err != nil {
				errs <- err
				return
			}
			ok, _, err := h.Verify(context.Background(), encoded, plain)
			if err != nil || !ok {
				errs <- fmt.Errorf("Verify(%q) = %v, %v", plain, ok, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$$", "x")
	f.Add("$argon2id$v=19$m=1024,t=1,p=1$$", "x")
	f.Add("$argon2id$$$$$", "x")
	f.Add("$2a$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234", "password")
	f.Add("$2y$04$!!!!!!!!!!!!!!!!!!!!!!abcdefghijklmnopqrstuvwxyz01234", "password")
	f.Add("$2b$99$", "x")
	f.Add("", "")
	f.Add("$", "\xff")
	h := NewHasher(testParams(), nil)
	f.Fuzz(func(t *testing.T, encoded, plain string) {
		// Inputs that parse with expensive costs are valid by design; skip
		// them so fuzzing explores parsing rather than allocating 4 GiB.
		if p, err := parsePHC(encoded); err == nil {
			if uint64(p.memory)*uint64(p.iterations) > 64<<10 {
				t.Skip("valid but expensive argon2id parameters")
			}
			// Whatever parses is canonical: it re-encodes to itself.
			if p.String() != encoded {
				t.Fatalf("parsePHC(%q) re-encodes as %q", encoded, p.String())
			}
		}
		if isBcrypt(encoded) {
			if c, err := bcrypt.Cost([]byte(encoded)); err == nil && c > 6 {
				t.Skip("valid but expensive bcrypt cost")
			}
		}
		ok, rehash, err := h.Verify(context.Background(), encoded, plain)
		if err != nil && (ok || rehash) {
			t.Fatalf("Verify(%q) = ok %v, rehash %v together with error %v", encoded, ok, rehash, err)
		}
		if rehash && !ok {
			t.Fatalf("Verify(%q) reported rehash without a match", encoded)
		}
	})
}
