package password

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Policy is the acceptance policy for new passwords, following NIST SP
// 800-63B: a minimum and maximum length, no composition rules (they push
// users to predictable patterns like "Password1!"), and a blocklist of
// passwords that are known to be common or breached, plus the account's own
// email address. Zero fields take their defaults.
type Policy struct {
	// MinLength is the minimum number of characters (Unicode code points);
	// default 8. SP 800-63B-4 asks for 15 when the password is the only
	// authentication factor.
	MinLength int
	// MaxLength is the maximum number of characters; default 256. SP
	// 800-63B requires allowing at least 64; the limit exists so that a
	// megabyte "password" is refused before anyone hashes it.
	MaxLength int
}

// Rule names reported in PolicyError.Rule.
const (
	RuleInvalid     = "invalid"
	RuleMaxLength   = "max_length"
	RuleMinLength   = "min_length"
	RuleEqualsEmail = "equals_email"
	RuleBreached    = "breached"
)

// DefaultPolicy returns a Policy with MinLength 8 and MaxLength 256.
func DefaultPolicy() Policy {
	return Policy{MinLength: 8, MaxLength: 256}
}

// withDefaults fills zero (or negative) fields from DefaultPolicy.
func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.MinLength <= 0 {
		p.MinLength = d.MinLength
	}
	if p.MaxLength <= 0 {
		p.MaxLength = d.MaxLength
	}
	return p
}

// PolicyError says which rule a password failed. Message is a sentence fit
// to show the user; Rule is a stable identifier for clients and metrics.
type PolicyError struct {
	Rule    string
	Message string
}

func (e *PolicyError) Error() string { return e.Message }

// Check returns nil if plain is acceptable as a new password for the account
// with the given email, or a *PolicyError for the first rule it fails. It
// never hashes. The rules, in order:
//
//   - more than 4*MaxLength bytes, or more than MaxLength characters:
//     "max_length";
//   - not valid UTF-8: "invalid";
//   - fewer than MinLength characters: "min_length";
//   - equal to the email address, ignoring case and surrounding spaces:
//     "equals_email";
//   - in the breached-password list, ignoring case: "breached".
//
// Characters are Unicode code points, so "pässwörd" has 8. Check does not
// normalise Unicode (see docs/decisions-password.md).
func (p Policy) Check(plain, email string) error {
	p = p.withDefaults()
	tooLong := &PolicyError{
		Rule:    RuleMaxLength,
		Message: fmt.Sprintf("password is too long (at most %d characters)", p.MaxLength),
	}
	// No character is more than 4 bytes in UTF-8, so this byte bound can
	// only refuse strings that are too long anyway; checking it first keeps
	// the cost of the checks below bounded for hostile input.
	if len(plain) > 4*p.MaxLength {
		return tooLong
	}
	if !utf8.ValidString(plain) {
		return &PolicyError{Rule: RuleInvalid, Message: "password must be valid text (UTF-8)"}
	}
	n := utf8.RuneCountInString(plain)
	if n > p.MaxLength {
		return tooLong
	}
	if n < p.MinLength {
		return &PolicyError{
			Rule:    RuleMinLength,
			Message: fmt.Sprintf("password must be at least %d characters", p.MinLength),
		}
	}
	if e := strings.TrimSpace(email); e != "" && strings.EqualFold(strings.TrimSpace(plain), e) {
		return &PolicyError{Rule: RuleEqualsEmail, Message: "password must not be the same as the email address"}
	}
	if IsBreached(plain) {
		return &PolicyError{Rule: RuleBreached, Message: "password is too common: it appears in lists of breached passwords"}
	}
	return nil
}
