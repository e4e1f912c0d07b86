package password

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBreachedListSize(t *testing.T) {
	const minSize = 10000
	if n := breachedSet().Len(); n < minSize {
		t.Fatalf("breached list has %d entries, want at least %d", n, minSize)
	}
}

// breachedFileLines returns the embedded file's lines, decoded here rather
// than by the code under test.
func breachedFileLines(t *testing.T) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(breachedGz))
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(raw.String(), "\n"), "\n")
}

func TestBreachedListEntries(t *testing.T) {
	lines := breachedFileLines(t)
	seen := make(map[string]bool, len(lines))
	for i, w := range lines {
		switch {
		case w == "":
			t.Errorf("line %d is empty", i+1)
		case w != strings.ToLower(w):
			t.Errorf("line %d %q is not lower-case", i+1, w)
		case w != strings.TrimSpace(w):
			t.Errorf("line %d %q has surrounding space", i+1, w)
		case !utf8.ValidString(w):
			t.Errorf("line %d %q is not UTF-8", i+1, w)
		case seen[w]:
			t.Errorf("line %d %q is a duplicate", i+1, w)
		}
		seen[w] = true
	}
	if len(seen) != breachedSet().Len() {
		t.Errorf("file has %d distinct entries, set has %d", len(seen), breachedSet().Len())
	}
	// The list is ordered most common first.
	if lines[0] != "123456" {
		t.Errorf("first entry %q, want the most common password 123456", lines[0])
	}
}

func TestIsBreached(t *testing.T) {
	tests := []struct {
		name  string
		plain string
		want  bool
	}{
		{"password", "password", true},
		{"12345678", "12345678", true},
		{"qwerty123", "qwerty123", true},
		{"upper case", "PASSWORD", true},
		{"mixed case", "QwErTy123", true},
		{"iloveyou", "iloveyou", true},
		{"common name", "michael", true},
		{"passphrase", "correct horse battery staple", false},
		{"random", "vk7#qz!p-Lm2", false},
		{"empty", "", false},
		{"listed with suffix", "password!x9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsBreached(tt.plain); got != tt.want {
				t.Fatalf("IsBreached(%q) = %v, want %v", tt.plain, got, tt.want)
			}
		})
	}
}

func TestDecodeBreachedRejectsCorruptData(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"not gzip", []byte("password\n123456\n")},
		{"truncated gzip", breachedGz[:len(breachedGz)/2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeBreached(tt.data); err == nil {
				t.Fatal("decodeBreached succeeded on corrupt data")
			}
		})
	}
}

// TestBreachedListContains checks the sorted, pointer-free set against the
// file: every line is found, and nothing next to a line in sort order is.
func TestBreachedListContains(t *testing.T) {
	list := breachedSet()
	in := map[string]bool{}
	for _, w := range breachedFileLines(t) {
		in[w] = true
	}
	for w := range in {
		if !list.Contains(w) {
			t.Fatalf("Contains(%q) = false for a listed entry", w)
		}
		for _, near := range []string{w + "\x00", w[:len(w)-1], w + "~"} {
			if !in[near] && list.Contains(near) {
				t.Fatalf("Contains(%q) = true for an entry not in the file", near)
			}
		}
	}
	for _, w := range []string{"", "\x00", "~~~~~~~~~~~~", "\xff"} {
		if list.Contains(w) {
			t.Errorf("Contains(%q) = true", w)
		}
	}
}

func BenchmarkIsBreached(b *testing.B) {
	breachedSet()
	for b.Loop() {
		IsBreached("correct horse battery staple")
	}
}
