package password

import (
	"errors"
	"strings"
	"testing"
)

// strong is a password that passes every rule; tests build lengths from it.
const strong = "violet-kettle-harbor-42"

// repeatTo returns s repeated and cut to exactly n runes.
func repeatTo(t *testing.T, s string, n int) string {
	t.Helper()
	r := []rune(strings.Repeat(s, n/len([]rune(s))+1))
	return string(r[:n])
}

func TestPolicyCheck(t *testing.T) {
	const email = "Alice.Smith@Example.com"
	tests := []struct {
		name     string
		policy   Policy
		plain    string
		email    string
		wantRule string // "" means accepted
	}{
		{"accepted", DefaultPolicy(), strong, email, ""},
		{"no composition rules: lower-case letters only", DefaultPolicy(), "violetkettleharbor", email, ""},
		{"no composition rules: spaces allowed", DefaultPolicy(), "correct horse battery staple", email, ""},

		{"256 characters", DefaultPolicy(), repeatTo(t, strong, 256), email, ""},
		{"257 characters", DefaultPolicy(), repeatTo(t, strong, 257), email, RuleMaxLength},
		{"256 two-byte characters", DefaultPolicy(), repeatTo(t, "éà", 256), email, ""},
		{"256 four-byte characters (1024 bytes)", DefaultPolicy(), repeatTo(t, "🔑🎻", 256), email, ""},
		{"257 four-byte characters", DefaultPolicy(), repeatTo(t, "🔑🎻", 257), email, RuleMaxLength},
		{"over 4*MaxLength bytes", DefaultPolicy(), strings.Repeat("x", 4*256+1), email, RuleMaxLength},
		{"megabyte", DefaultPolicy(), strings.Repeat("x", 1<<20), email, RuleMaxLength},

		{"7 characters", DefaultPolicy(), "vk7#qz!", email, RuleMinLength},
		{"8 characters", DefaultPolicy(), "vk7#qz!p", email, ""},
		{"empty", DefaultPolicy(), "", email, RuleMinLength},
		{"8 two-byte characters count as 8", DefaultPolicy(), "éàüöçñøå", email, ""},
		{"7 four-byte characters (28 bytes) are too short", DefaultPolicy(), "🔑🎻🌵🚲🧭🪁🎲", email, RuleMinLength},

		{"equals email", DefaultPolicy(), email, email, RuleEqualsEmail},
		{"equals email ignoring case", DefaultPolicy(), "alice.smith@example.com", email, RuleEqualsEmail},
		{"equals email after trimming", DefaultPolicy(), " alice.smith@example.COM ", " " + email + "\t", RuleEqualsEmail},
		{"contains email but longer", DefaultPolicy(), email + "!", email, ""},
		{"no email given", DefaultPolicy(), strong, "", ""},

		{"breached", DefaultPolicy(), "password", email, RuleBreached},
		{"breached 12345678", DefaultPolicy(), "12345678", email, RuleBreached},
		{"breached qwerty123", DefaultPolicy(), "qwerty123", email, RuleBreached},
		{"breached ignoring case", DefaultPolicy(), "PassWord", email, RuleBreached},
		{"breached name", DefaultPolicy(), "michael1", email, RuleBreached},

		{"invalid UTF-8", DefaultPolicy(), "abcdefgh\xff", email, RuleInvalid},
		{"truncated multi-byte sequence", DefaultPolicy(), "abcdefgh\xe2\x82", email, RuleInvalid},

		// Order: the first failing rule is reported.
		{"too short beats breached", DefaultPolicy(), "letmein", email, RuleMinLength},
		{"too long beats equals email", DefaultPolicy(), repeatTo(t, strong, 257), repeatTo(t, strong, 257), RuleMaxLength},
		{"too short beats equals email", DefaultPolicy(), "a@b.io", "a@b.io", RuleMinLength},
		{"equals email beats breached", DefaultPolicy(), "password", "password", RuleEqualsEmail},
		{"too long beats invalid", DefaultPolicy(), strings.Repeat("\xff", 4*256+1), email, RuleMaxLength},
		{"invalid beats too short", DefaultPolicy(), "\xff", email, RuleInvalid},

		{"zero Policy uses defaults: 7 characters", Policy{}, "vk7#qz!", email, RuleMinLength},
		{"zero Policy uses defaults: 257 characters", Policy{}, repeatTo(t, strong, 257), email, RuleMaxLength},
		{"custom minimum 15: 14 characters", Policy{MinLength: 15}, "violet-kettle-", email, RuleMinLength},
		{"custom minimum 15: 15 characters", Policy{MinLength: 15}, "violet-kettle-h", email, ""},
		{"custom maximum 64: 65 characters", Policy{MaxLength: 64}, repeatTo(t, strong, 65), email, RuleMaxLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.plain, tt.email)
			if tt.wantRule == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", abbreviate(tt.plain), err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check(%q) = %v, want *PolicyError with rule %q", abbreviate(tt.plain), err, tt.wantRule)
			}
			if pe.Rule != tt.wantRule {
				t.Fatalf("Check(%q) rule = %q (%s), want %q", abbreviate(tt.plain), pe.Rule, pe.Message, tt.wantRule)
			}
		})
	}
}

func TestPolicyMessages(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		plain  string
		want   string
	}{
		{"min_length", DefaultPolicy(), "short", "password must be at least 8 characters"},
		{"min_length custom", Policy{MinLength: 12}, "short", "password must be at least 12 characters"},
		{"max_length", DefaultPolicy(), strings.Repeat("x", 257), "password is too long (at most 256 characters)"},
		{"equals_email", DefaultPolicy(), "bob@example.org", "password must not be the same as the email address"},
		{"breached", DefaultPolicy(), "password", "password is too common: it appears in lists of breached passwords"},
		{"invalid", DefaultPolicy(), "\xff\xfe\xfd\xfcabcdefgh", "password must be valid text (UTF-8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.plain, "bob@example.org")
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check = %v, want *PolicyError", err)
			}
			if pe.Rule != tt.name && !strings.HasPrefix(tt.name, pe.Rule+" ") {
				t.Fatalf("rule = %q, want %q", pe.Rule, tt.name)
			}
			if pe.Message != tt.want || pe.Error() != tt.want {
				t.Fatalf("Message = %q, Error() = %q; want %q", pe.Message, pe.Error(), tt.want)
			}
		})
	}
}

func TestDefaultPolicy(t *testing.T) {
	if got, want := DefaultPolicy(), (Policy{MinLength: 8, MaxLength: 256}); got != want {
		t.Fatalf("DefaultPolicy() = %+v, want %+v", got, want)
	}
}

// abbreviate keeps failure messages readable for long test passwords.
func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
