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
// a JSON string member. A repeated field is refused rather than guessed at.
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
		for k, vs := range vals {
			if len(vs) != 1 {
				return errors.New("form field " + k + " is repeated")
			}
			m[k] = vs[0]
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, v)
	},
}
