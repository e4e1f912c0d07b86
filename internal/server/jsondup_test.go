package server

import "testing"

func TestCheckDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		dup  bool
	}{
		{"flat", `{"email":"a","password":"b"}`, false},
		{"repeated top-level", `{"email":"a","email":"b"}`, true},
		{"repeated after nested object", `{"a":{"x":1,"y":2},"b":1,"a":2}`, true},
		{"same key in sibling objects", `{"a":{"x":1},"b":{"x":1}}`, false},
		{"repeated inside nested", `{"a":{"x":1,"x":2}}`, true},
		{"objects in array", `[{"x":1},{"x":2}]`, false},
		{"repeated in array element", `[{"x":1,"x":2}]`, true},
		{"string value equal to a key", `{"a":"b","b":"a"}`, false},
		{"array value then key", `{"a":[1,2,{"a":1}],"b":1}`, false},
		{"malformed is not our business", `{"a":`, false},
		{"empty", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkDuplicateKeys([]byte(tc.body))
			if (err != nil) != tc.dup {
				t.Fatalf("checkDuplicateKeys(%s) = %v, want duplicate=%v", tc.body, err, tc.dup)
			}
		})
	}
}
