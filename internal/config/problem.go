package config

import "strings"

// Problem is one invalid setting found while loading the configuration.
type Problem struct {
	// File is the path of the YAML file the key came from, or "" when the
	// key is a flag, an environment variable or a built-in default.
	File string
	// Key names the setting in the spelling of the source it came from:
	// "--signing-alg", "GATEHOUSE_ACCESS_TOKEN_TTL", "argon2.memory".
	// It is empty only for problems with the YAML file as a whole (for
	// example a syntax error), in which case File is set.
	Key string
	// Message says what is wrong, without the key.
	Message string
}

// String formats the problem as "[file: ]key: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError is the error returned by Load. It lists every problem
// found, not only the first.
type ValidationError struct {
	Problems []Problem
}

// Error returns the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
