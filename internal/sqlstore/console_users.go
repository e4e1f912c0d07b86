package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"

	"gatehouse/internal/auth"
)

var (
	_ auth.UserDirectory    = (*DB)(nil)
	_ auth.LockoutInspector = (*DB)(nil)
)

// prefixEnd follows every string that starts with a prefix p when appended
// to it: in byte order (UTF-8, code point order) p + U+10FFFF sorts after
// p followed by any other character. (An email holding U+10FFFF right
// after the prefix would be missed; no real one does.)
const prefixEnd = "\U0010FFFF"

// FindUsers returns the accounts q selects in byte order of email; see
// auth.UserDirectory. Every variant is a keyset read of an email-ordered
// index, except the name half of MatchPrefix, which reads the name
// index's range and sorts its matches by email.
func (db *DB) FindUsers(ctx context.Context, q auth.UserQuery) ([]*auth.User, error) {
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 50
	}
	if q.After != "" && q.Before != "" {
		return nil, errors.New("sqlstore: FindUsers with both After and Before")
	}
	if q.Match != auth.MatchPrefix {
		return db.findUsers(ctx, q, q.Match)
	}
	// Email prefix or name prefix: two keyset reads merged. Each returns
	// its first q.Limit in the page's direction, so their merge holds the
	// page's.
	byEmail, err := db.findUsers(ctx, q, auth.MatchEmailPrefix)
	if err != nil {
		return nil, err
	}
	byName, err := db.findUsers(ctx, q, matchNamePrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*auth.User, 0, len(byEmail)+len(byName))
	seen := make(map[string]bool, len(byEmail))
	for _, u := range byEmail {
		seen[u.ID] = true
		out = append(out, u)
	}
	for _, u := range byName {
		if !seen[u.ID] {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b *auth.User) int { return strings.Compare(a.Email, b.Email) })
	if len(out) > q.Limit {
		if q.Before != "" {
			out = out[len(out)-q.Limit:]
		} else {
			out = out[:q.Limit]
		}
	}
	return out, nil
}

// matchNamePrefix is the name half of auth.MatchPrefix.
const matchNamePrefix auth.UserMatch = -1

// findUsers is one keyset read for FindUsers, matching q.Text as match
// says.
func (db *DB) findUsers(ctx context.Context, q auth.UserQuery, match auth.UserMatch) ([]*auth.User, error) {
	pg := db.dialect == dialectPostgres
	// Emails compare in byte order on both dialects (see migration 12).
	email := "email"
	if pg {
		email = `email COLLATE "C"`
	}
	var (
		where []string
		args  []any
	)
	cond := func(c string, a ...any) {
		where = append(where, c)
		args = append(args, a...)
	}
	// The search's own range, narrowed by the cursor: one lower and one
	// upper bound on the index column.
	lo, loStrict, hi := "", false, ""
	switch match {
	case auth.MatchEmailPrefix:
		lo = strings.ToLower(q.Text) // as NormalizeEmail folds
		hi = lo + prefixEnd
	case matchNamePrefix:
		name := foldName(q.Text, pg)
		if pg {
			cond(`lower(name) COLLATE "C" >= ? AND lower(name) COLLATE "C" < ?`, name, name+prefixEnd)
		} else {
			cond(`lower(name) >= ? AND lower(name) < ?`, name, name+prefixEnd)
		}
	case auth.MatchEmailContains:
		cond(`email LIKE ? ESCAPE '\'`, "%"+likeEscaper.Replace(strings.ToLower(q.Text))+"%")
	case auth.MatchID:
		cond(`id = ?`, q.Text)
	case auth.MatchAll:
	default:
		return nil, errors.New("sqlstore: FindUsers: unknown match")
	}
	if q.After != "" && q.After >= lo {
		lo, loStrict = q.After, true
	}
	if q.Before != "" && (hi == "" || q.Before < hi) {
		hi = q.Before
	}
	if lo != "" {
		op := " >= ?"
		if loStrict {
			op = " > ?"
		}
		cond(email+op, lo)
	}
	if hi != "" {
		cond(email+" < ?", hi)
	}
	// Flag filters are literals, not parameters, so that the planner can
	// use the partial indexes of migration 12 (SQLite only matches a
	// partial index's WHERE against literal terms).
	if q.Disabled != nil {
		cond(flagTerm("disabled", *q.Disabled, pg))
	}
	if q.Verified != nil {
		cond(flagTerm("email_verified", *q.Verified, pg))
	}
	if q.MFA != nil {
		has := `EXISTS (SELECT 1 FROM totp_authenticators t WHERE t.user_id = users.id AND t.confirmed)`
		if !*q.MFA {
			has = "NOT " + has
		}
		cond(has)
	}
	if q.Role != "" {
		cond(`(' ' || roles || ' ') LIKE ? ESCAPE '\'`, "% "+likeEscaper.Replace(q.Role)+" %")
	}
	order := " ASC"
	if q.Before != "" {
		order = " DESC"
	}
	sqlq := `SELECT ` + userCols + ` FROM users`
	if len(where) > 0 {
		sqlq += ` WHERE ` + strings.Join(where, " AND ")
	}
	sqlq += ` ORDER BY ` + email + order + ` LIMIT ?`
	args = append(args, q.Limit)
	users, err := queryAll(ctx, db, scanUser, sqlq, args...)
	if err != nil {
		return nil, err
	}
	if q.Before != "" {
		slices.Reverse(users)
	}
	return users, nil
}

// likeEscaper escapes LIKE's wildcards (with ESCAPE '\'): a search for
// "a_b" means it.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// flagTerm is the condition "column is v" written as migration 12's
// partial indexes write it.
func flagTerm(column string, v, pg bool) string {
	switch {
	case pg && v:
		return column
	case pg:
		return "NOT " + column
	case v:
		return column + " = 1"
	}
	return column + " = 0"
}

// foldName folds a name search's case as the database's lower() folds the
// names it compares it with: PostgreSQL folds every letter; SQLite's
// built-in lower() folds ASCII letters only.
func foldName(s string, pg bool) string {
	if pg {
		return strings.ToLower(s)
	}
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// LockoutState reads a lockout counter without counting an attempt; see
// auth.LockoutInspector.
func (db *DB) LockoutState(ctx context.Context, key string) (auth.LockoutState, error) {
	var failures, until int64
	err := db.queryRow(ctx, `SELECT failures, locked_until FROM lockouts WHERE key = ?`, key).Scan(&failures, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.LockoutState{}, nil
	}
	if err != nil {
		return auth.LockoutState{}, err
	}
	st := auth.LockoutState{Failures: int(failures)}
	if until > 0 {
		st.LockedUntil = fromTS(until)
	}
	return st, nil
}
