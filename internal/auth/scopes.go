package auth

import (
	"slices"
	"strings"
)

// Model: roles say what a user may do; scopes say what a token may do. An
// action is allowed when the user's roles grant the permission and the
// presented token carries the scope. RoleModel maps roles to the scopes they
// allow and negotiates the scopes of a new token.
type RoleModel struct {
	roles  map[string][]string
	scopes map[string]bool
}

// NewRoleModel returns the model for the configured roles (role → scopes) and
// known scope names.
func NewRoleModel(roles map[string][]string, scopes []string) *RoleModel {
	m := &RoleModel{roles: map[string][]string{}, scopes: map[string]bool{}}
	for r, s := range roles {
		m.roles[r] = slices.Clone(s)
	}
	for _, s := range scopes {
		m.scopes[s] = true
	}
	return m
}

// KnownScope reports whether s is a configured scope.
func (m *RoleModel) KnownScope(s string) bool { return m.scopes[s] }

// KnownRole reports whether r is a configured role.
func (m *RoleModel) KnownRole(r string) bool { _, ok := m.roles[r]; return ok }

// Scopes returns every configured scope, sorted.
func (m *RoleModel) Scopes() []string {
	out := make([]string, 0, len(m.scopes))
	for s := range m.scopes {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Allowed returns the scopes that the given roles allow, sorted and unique.
func (m *RoleModel) Allowed(roles []string) []string {
	var out []string
	for _, r := range roles {
		for _, s := range m.roles[r] {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

// ParseScope splits a space-separated scope parameter (RFC 6749 §3.3).
func ParseScope(s string) []string {
	fields := strings.Fields(s)
	var out []string
	for _, f := range fields {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// ErrInvalidScope is returned for a scope that does not exist or that a
// refresh asks for beyond the original grant.
var ErrInvalidScope = &Error{Code: EINVALID, Field: "scope", Message: "the requested scope is invalid, unknown, or exceeds the grant"}

// Negotiate returns the scopes a new token gets: every allowed scope when
// nothing is requested; otherwise the requested ones the roles allow, others
// dropped silently. An unknown scope, or a request of which nothing can be
// granted, is ErrInvalidScope.
func (m *RoleModel) Negotiate(requested []string, roles []string) ([]string, error) {
	allowed := m.Allowed(roles)
	if len(requested) == 0 {
		if len(allowed) == 0 {
			return nil, ErrInvalidScope
		}
		return allowed, nil
	}
	var out []string
	for _, s := range requested {
		if !m.scopes[s] {
			return nil, ErrInvalidScope
		}
		if slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ErrInvalidScope
	}
	slices.Sort(out)
	return out, nil
}
