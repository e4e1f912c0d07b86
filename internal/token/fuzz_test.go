package token

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// FuzzVerify feeds Verify arbitrary strings: it must never panic, and
// whatever it accepts must carry a subject and an expiry.
func FuzzVerify(f *testing.F) {
	k, _ := newKeyring(f, "EdDSA")
	genuine := issue(f, k)
	h, p, s := parts(f, genuine)
	for _, seed := range []string{
		"", ".", "..", "...", "a.b.c", genuine, h + "." + p + ".", h + "." + p,
		segment(f, map[string]any{"alg": "none"}) + "." + p + ".",
		segment(f, map[string]any{"alg": "HS256", "kid": currentKey(f, k).kid, "typ": "at+jwt"}) + "." + p + "." + s,
		segment(f, map[string]any{"alg": "EdDSA", "kid": []any{1, 2}, "typ": map[string]any{}}) + "." + p + "." + s,
		h + "." + segment(f, map[string]any{"exp": "x", "aud": 7, "nbf": []any{}, "roles": "admin"}) + "." + s,
		h + ".e30." + s,
		"eyJ9." + p + "." + s,
		strings.Repeat("A", maxTokenLen+1),
		strings.Repeat(".", 3) + "\x00\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := k.Verify(tok)
		if err != nil {
			if c != nil {
				t.Fatalf("claims %+v returned with error %v", c, err)
			}
			return
		}
		if c == nil || c.Subject == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted %q with claims %+v", tok, c)
		}
	})
}

// BenchmarkVerify compares a cached Verify (the same token again, the
// common case for a client making many calls) with a full cryptographic
// verification, for every algorithm.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			k, _ := newKeyring(b, alg)
			b.Run("cached", func(b *testing.B) {
				tok := issue(b, k)
				mustVerify(b, k, tok)
				for b.Loop() {
					if _, err := k.Verify(tok); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("uncached", func(b *testing.B) {
				// A pool of distinct tokens, each dropped from the cache
				// after use, so every Verify checks the signature.
				toks := make([]string, 64)
				for i := range toks {
					toks[i] = issue(b, k)
				}
				i := 0
				for b.Loop() {
					tok := toks[i%len(toks)]
					i++
					if _, err := k.Verify(tok); err != nil {
						b.Fatal(err)
					}
					forget(k, tok)
				}
			})
		})
	}
}

func BenchmarkIssue(b *testing.B) {
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			k, _ := newKeyring(b, alg)
			c := accessClaims(k.opts.Now())
			ctx := context.Background()
			i := 0
			for b.Loop() {
				c.ID = "jti-" + strconv.Itoa(i)
				i++
				if _, err := k.Issue(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
