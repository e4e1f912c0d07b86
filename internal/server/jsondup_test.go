package server

import (
	"encoding/json"
	"strings"
	"testing"
)

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
		// SPEC §18 H9: a repeat under another letter case.
		{"case repeat top-level", `{"email":"a@x","Email":"b@x","password":"p"}`, true},
		{"case repeat all caps", `{"EMAIL":"a@x","email":"b@x"}`, true},
		{"case repeat mixed", `{"eMaIl":"a@x","password":"p","EmAiL":"b@x"}`, true},
		{"case repeat through an escape", `{"email":"a@x","\u0045mail":"b@x"}`, true},
		{"exact repeat through an escape", `{"email":"a@x","\u0065mail":"b@x"}`, true},
		{"case repeat nested", `{"user":{"name":"a","NAME":"b"}}`, true},
		{"case repeat deep in arrays", `{"a":[{"b":[{"x":1,"X":2}]}]}`, true},
		{"case repeat of an object member", `{"a":{"x":1},"A":{"y":2}}`, true},
		{"case repeat after nested object", `{"scope":{"x":1},"b":1,"Scope":2}`, true},
		{"Kelvin sign folds to k", "{\"kid\":1,\"\u212aid\":2}", true},
		{"long s folds to s", "{\"scope\":1,\"\u017fcope\":2}", true},
		{"Greek sigma forms", `{"σ":1,"ς":2}`, true},
		{"non-ASCII upper and lower", `{"émail":1,"ÉMAIL":2}`, true},
		{"same letters in sibling objects", `{"a":{"x":1},"b":{"X":1}}`, false},
		{"case differs in key and value only", `{"email":"Email"}`, false},
		{"different names", `{"email":"a","emails":"b","e_mail":"c"}`, false},
		{"dotted i is not i", `{"i":1,"İ":2}`, false},
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

// TestFoldKeyMatchesEqualFold: foldKey(a) == foldKey(b) exactly when
// strings.EqualFold(a, b), the folding encoding/json applies to names.
func TestFoldKeyMatchesEqualFold(t *testing.T) {
	words := []string{"", "email", "Email", "EMAIL", "e_mail", "emails", "k", "K", "\u212a", "kid", "KID", "\u212aid",
		"s", "S", "\u017f", "scope", "\u017fcope", "σ", "Σ", "ς", "i", "I", "İ", "ı", "ß", "ẞ", "ss", "émail", "ÉMAIL",
		"µ", "μ", "Μ", "ǅ", "ǆ", "Ǆ", "ω", "Ω", "\u2126", "日本", "a\ufffd", "A\ufffd", "1", "_"}
	for _, a := range words {
		for _, b := range words {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("foldKey(%q) == foldKey(%q) is %v; strings.EqualFold says %v", a, b, got, want)
			}
		}
	}
}

// TestCaseRepeatFillsOneField shows why H9 matters: encoding/json fills
// one field from both members, and keeps the last.
func TestCaseRepeatFillsOneField(t *testing.T) {
	var v struct {
		Email string `json:"email"`
	}
	body := `{"email":"a@x","Email":"b@x"}`
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Email != "b@x" {
		t.Fatalf("encoding/json: %+v, %v", v, err)
	}
	if checkDuplicateKeys([]byte(body)) == nil {
		t.Fatalf("checkDuplicateKeys accepted %s", body)
	}
}
