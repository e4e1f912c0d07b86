// Command gen regenerates internal/password/breached.txt.gz, the embedded
// list of common breached passwords, from the npm tarball of
// @zxcvbn-ts/language-common (MIT licence).
//
// Usage, from the module root (see docs/decisions-password.md):
//
//	(cd /tmp && npm pack @zxcvbn-ts/language-common@4.1.3)
//	go run ./internal/password/internal/gen \
//	    -tgz /tmp/zxcvbn-ts-language-common-4.1.3.tgz \
//	    -o internal/password/breached.txt.gz
//
// The tarball's package/src/passwords.json is a JSON array of passwords from
// Xato's 10-million-password corpus, most frequent first. The output keeps
// that order, lower-cases and trims every entry, drops empty entries and
// duplicates, and keeps the first -n entries (0 = all). The gzip stream has
// no file name or timestamp, so the same input always gives the same bytes.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// listPath is the file inside the npm tarball that holds the password list.
const listPath = "package/src/passwords.json"

func main() {
	tgz := flag.String("tgz", "", "path to the npm tarball of @zxcvbn-ts/language-common")
	out := flag.String("o", "internal/password/breached.txt.gz", "output file")
	n := flag.Int("n", 0, "keep only the n most frequent passwords (0 = all)")
	flag.Parse()
	if *tgz == "" {
		fmt.Fprintln(os.Stderr, "gen: -tgz is required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*tgz, *out, *n); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(tgzPath, outPath string, n int) error {
	raw, err := os.ReadFile(tgzPath)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	fmt.Printf("source %s sha256 %s\n", tgzPath, hex.EncodeToString(sum[:]))

	listJSON, err := readFromTarball(raw, listPath)
	if err != nil {
		return err
	}
	var entries []string
	if err := json.Unmarshal(listJSON, &entries); err != nil {
		return fmt.Errorf("%s: %w", listPath, err)
	}
	words := normalize(entries, n)

	data, err := gzipLines(words)
	if err != nil {
		return err
	}
	if err := os.WriteFile(outPath, data, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d passwords (of %d in source), %d bytes\n", outPath, len(words), len(entries), len(data))
	return nil
}

// readFromTarball returns the contents of the file name in the gzipped tar
// archive tgz.
func readFromTarball(tgz []byte, name string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s not found in tarball", name)
		}
		if err != nil {
			return nil, err
		}
		if hdr.Name == name {
			return io.ReadAll(tr)
		}
	}
}

// normalize lower-cases and trims entries, drops empty ones, entries that
// contain a line break (they could not be stored one per line) and
// duplicates, and keeps the first n (all when n <= 0), preserving order.
func normalize(entries []string, n int) []string {
	seen := make(map[string]bool, len(entries))
	var words []string
	for _, e := range entries {
		w := strings.ToLower(strings.TrimSpace(e))
		if w == "" || strings.ContainsAny(w, "\r\n") || seen[w] {
			continue
		}
		seen[w] = true
		words = append(words, w)
		if n > 0 && len(words) == n {
			break
		}
	}
	return words
}

// gzipLines returns words, one per line, gzip-compressed deterministically.
func gzipLines(words []string) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriter(zw)
	for _, w := range words {
		bw.WriteString(w)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
