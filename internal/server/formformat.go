package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/url"

	"github.com/danielgtaylor/huma/v2"
)

// formFormat lets JSON operations also take
// application/x-www-form-urlencoded bodies (HTML forms): each field becomes
// a JSON string member. A repeated field is refused rather than guessed at,
// and so are two names that differ in letter case only (email and Email):
// encoding/json would fill one field from both (SPEC §18 H9).
var formFormat = huma.Format{
	Marshal: func(io.Writer, any) error {
		return errors.New("form encoding is accepted in requests only")
	},
	Unmarshal: func(data []byte, v any) error {
		vals, err := url.ParseQuery(string(data))
		if err != nil {
			return err
		}
		m := make(map[string]any, len(vals))
		folded := make(map[string]bool, len(vals))
		for k, vs := range vals {
			if len(vs) != 1 || folded[foldKey(k)] {
				return errors.New("form field " + k + " is repeated (letter case does not count)")
			}
			folded[foldKey(k)] = true
			m[k] = vs[0]
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, v)
	},
}
