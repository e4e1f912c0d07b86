package auth

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. The HTTP layer maps each code to a status in one table
// (internal/server/errors.go); domain code never speaks HTTP.
const (
	EINVALID      = "invalid"      // the input fails validation
	ENOTFOUND     = "not_found"    // no such resource, or not the caller's
	ECONFLICT     = "conflict"     // the write conflicts with existing state
	EUNAUTHORIZED = "unauthorized" // credentials missing or wrong
	EFORBIDDEN    = "forbidden"    // authenticated but not allowed
	EUNAVAILABLE  = "unavailable"  // a dependency is down or saturated
	ETOOMANY      = "too_many"     // rate limited or locked out
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// Error is a domain error: a code for machines and a message that is safe to
// show to the caller. The cause, when present, is for logs only.
type Error struct {
	Code    string
	Message string
	// Field names the input field that failed validation, when one did.
	Field string
	// Reason is a finer machine-readable code, when the caller may act on
	// it (ReasonInsufficientScope, …); the problem document's "code".
	Reason string
	// RetryAfter tells the caller when to try again (ETOOMANY, EUNAVAILABLE).
	RetryAfter time.Duration
	// AttemptsRemaining is set on a wrong second-factor code: how many
	// more the challenge takes (SPEC §13).
	AttemptsRemaining *int
	Cause             error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EINTERNAL for an error that is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorMessage returns the public message of err; a generic one for unknown errors.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrNotFound is the error stores return when a row does not exist.
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "not found"}

// ErrEmailTaken is returned by UserStore.CreateUser for a duplicate email.
var ErrEmailTaken = &Error{Code: ECONFLICT, Message: "email already registered"}

// ErrInvalidCredentials is the one answer for every failed password login,
// whatever the reason (unknown user, wrong password, disabled account), so
// that responses do not reveal which accounts exist.
var ErrInvalidCredentials = &Error{Code: EUNAUTHORIZED, Message: "invalid credentials"}

// ErrInvalidRefreshToken is the one answer for every refused refresh token.
var ErrInvalidRefreshToken = &Error{Code: EUNAUTHORIZED, Message: "invalid refresh token"}

// ErrEmailNotVerified refuses a password login while
// GATEHOUSE_REQUIRE_VERIFIED_EMAIL is set and the address is unverified.
// Only a caller who knew the password sees it.
var ErrEmailNotVerified = &Error{Code: EFORBIDDEN, Reason: ReasonEmailNotVerified, Message: "the email address is not verified yet: follow the link in the verification mail"}
