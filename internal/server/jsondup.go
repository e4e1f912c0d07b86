package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// errDuplicateKey reports a JSON object that names one member twice.
var errDuplicateKey = errors.New("a JSON object names the same member more than once")

// checkDuplicateKeys walks a JSON document and refuses repeated object
// members. encoding/json keeps the last of them silently; a proxy or
// another parser may keep the first, and that difference is an attack
// surface (which "email" did the rate limiter see?). Malformed JSON is left
// to the real decoder, which reports it properly.
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
