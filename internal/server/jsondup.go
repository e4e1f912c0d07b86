package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode"
	"unicode/utf8"
)

// errDuplicateKey reports a JSON object that names one member twice.
var errDuplicateKey = errors.New("a JSON object names the same member more than once (letter case does not count)")

// checkDuplicateKeys walks a JSON document and refuses repeated object
// members, at every level. encoding/json keeps the last of them silently; a
// proxy or another parser may keep the first, and that difference is an
// attack surface (which "email" did the rate limiter see?). encoding/json
// also matches member names to fields without regard to letter case, so
// "email" and "Email" fill the same field: they count as a repeat too
// (SPEC §18 H9), under the same Unicode case folding (bytes.EqualFold).
// Malformed JSON is left to the real decoder, which reports it properly.
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		obj     bool
		keys    map[string]struct{}
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // syntax errors are reported by the decoder
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.obj && top.wantKey {
			if k, ok := tok.(string); ok {
				k = foldKey(k)
				if _, dup := top.keys[k]; dup {
					return errDuplicateKey
				}
				top.keys[k] = struct{}{}
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.obj {
				top.wantKey = true
			}
			stack = append(stack, &frame{obj: true, keys: map[string]struct{}{}, wantKey: true})
			continue
		case json.Delim('['):
			if top != nil && top.obj {
				top.wantKey = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 && stack[n-1].obj {
				stack[n-1].wantKey = true
			}
			continue
		}
		// A scalar value: in an object, the next token is a key.
		if top != nil && top.obj {
			top.wantKey = true
		}
	}
}

// foldKey maps a member name to one representative of its case-folding
// class, so that foldKey(a) == foldKey(b) exactly when strings.EqualFold(a,
// b): every rune becomes the smallest rune of its unicode.SimpleFold orbit
// (as encoding/json folds names). "K", "k" and the Kelvin sign U+212A fold
// together; so do "S", "s" and "ſ" (U+017F).
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'a' <= c && c <= 'z' {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = utf8.AppendRune(b, foldRune(r))
	}
	return string(b)
}

// foldRune returns the smallest rune of r's case-folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
