package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

func mustJSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"read", []string{"read"}},
		{"  read   write\tread ", []string{"read", "write"}},
	}
	for _, tc := range tests {
		if got := auth.ParseScope(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("ParseScope(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRoleModelNegotiate(t *testing.T) {
	m := auth.NewRoleModel(map[string][]string{
		"user":   {"read", "write"},
		"editor": {"read", "write"},
		"admin":  {"read", "write", "admin"},
		"none":   nil,
	}, []string{"read", "write", "admin", "introspect"})
	tests := []struct {
		name      string
		requested string
		roles     []string
		want      []string // nil: ErrInvalidScope
	}{
		{"empty request gets all allowed (user)", "", []string{"user"}, []string{"read", "write"}},
		{"empty request gets all allowed (admin)", "", []string{"admin"}, []string{"admin", "read", "write"}},
		{"empty request, several roles", "", []string{"user", "admin"}, []string{"admin", "read", "write"}},
		{"read only", "read", []string{"user"}, []string{"read"}},
		{"requested order does not matter", "write read", []string{"user"}, []string{"read", "write"}},
		{"admin dropped for user", "read admin", []string{"user"}, []string{"read"}},
		{"admin granted to admin", "admin", []string{"admin"}, []string{"admin"}},
		{"only disallowed", "admin", []string{"user"}, nil},
		{"known scope no role grants", "introspect", []string{"admin"}, nil},
		{"unknown scope", "delete_everything", []string{"admin"}, nil},
		{"unknown among allowed", "read delete_everything", []string{"admin"}, nil},
		{"scope names are case-sensitive", "READ", []string{"user"}, nil},
		{"no roles", "", nil, nil},
		{"role with no scopes", "", []string{"none"}, nil},
		{"unknown role", "read", []string{"superuser"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Negotiate(auth.ParseScope(tc.requested), tc.roles)
			if tc.want == nil {
				if !errors.Is(err, auth.ErrInvalidScope) || got != nil {
					t.Fatalf("Negotiate = %q, %v; want ErrInvalidScope", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Negotiate = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestPasswordGrant(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.register(t, "alice@example.com", goodPass)

	r := h.grant(t, "Alice@example.com", goodPass, "")
	if !slices.Equal(r.Scope, []string{"read", "write"}) || r.ExpiresIn != int(accessTTL/time.Second) || !strings.HasPrefix(r.RefreshToken, "ghr_") {
		t.Fatalf("response = %+v", r)
	}
	c, err := h.keys.Verify(r.AccessToken)
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if c.Subject != u.ID || c.Email != "alice@example.com" || c.ClientID != "client-web" ||
		!slices.Equal(c.Scopes, r.Scope) || !slices.Equal(c.Roles, []string{"user"}) ||
		!c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(accessTTL)) {
		t.Fatalf("access claims = %+v", c)
	}

	tests := []struct {
		name, email, password, scope string
		want                         error
		hashes                       bool
	}{
		{"unknown scope refused before hashing", "alice@example.com", goodPass, "read everything", auth.ErrInvalidScope, false},
		{"only a scope the user lacks", "alice@example.com", goodPass, "admin", auth.ErrInvalidScope, true},
		{"wrong password", "alice@example.com", "wrong password!", "", auth.ErrInvalidCredentials, true},
		{"unknown user", "bob@example.com", goodPass, "", auth.ErrInvalidCredentials, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.hashes.Load()
			r, err := h.svc.PasswordGrant(ctx, tc.email, tc.password, tc.scope, "client-web", meta)
			if err != tc.want || r != nil {
				t.Fatalf("PasswordGrant = %+v, %v; want %v", r, err, tc.want)
			}
			if hashed := h.hashes.Load() != before; hashed != tc.hashes {
				t.Fatalf("hashing done = %v, want %v", hashed, tc.hashes)
			}
		})
	}
	t.Run("disallowed scope dropped", func(t *testing.T) {
		r := h.grant(t, "alice@example.com", goodPass, "read admin")
		if !slices.Equal(r.Scope, []string{"read"}) {
			t.Fatalf("scope = %q, want [read]", r.Scope)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice@example.com", goodPass)
	r1 := h.grant(t, "alice@example.com", goodPass, "")
	h.clock.Advance(time.Minute)
	r2 := h.refresh(t, r1.RefreshToken, "")
	if r2.RefreshToken == r1.RefreshToken || !strings.HasPrefix(r2.RefreshToken, "ghr_") {
		t.Fatalf("rotation returned %q after %q", r2.RefreshToken, r1.RefreshToken)
	}
	if r2.AccessToken == r1.AccessToken || !slices.Equal(r2.Scope, r1.Scope) {
		t.Fatalf("refresh response = %+v", r2)
	}
	c, err := h.keys.Verify(r2.AccessToken)
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if !c.IssuedAt.Equal(t0.Add(time.Minute)) || c.ClientID != "client-web" {
		t.Fatalf("refreshed claims = %+v", c)
	}
	h.clock.Advance(time.Minute)
	r3 := h.refresh(t, r2.RefreshToken, "")
	if r3.RefreshToken == r2.RefreshToken || r3.RefreshToken == r1.RefreshToken {
		t.Fatal("third token repeats an earlier one")
	}

	// Only hashes are stored.
	rows, err := h.rawDB(t).Query(`SELECT token_hash FROM refresh_tokens`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stored []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, s)
	}
	want := []string{auth.HashToken(r1.RefreshToken), auth.HashToken(r2.RefreshToken), auth.HashToken(r3.RefreshToken)}
	slices.Sort(stored)
	slices.Sort(want)
	if !slices.Equal(stored, want) {
		t.Fatalf("stored token hashes %q, want %q", stored, want)
	}
	h.assertAuditClean(t, r1.RefreshToken, r2.RefreshToken, r3.RefreshToken, r1.AccessToken, goodPass)
}

func TestRefreshBadTokens(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice@example.com", goodPass)
	r := h.grant(t, "alice@example.com", goodPass, "")
	for name, tok := range map[string]string{
		"empty":                 "",
		"unknown":               "ghr_" + strings.Repeat("A", 43),
		"access token":          r.AccessToken,
		"refresh token hash":    auth.HashToken(r.RefreshToken),
		"truncated":             r.RefreshToken[:len(r.RefreshToken)-1],
		"with trailing space":   r.RefreshToken + " ",
		"over 512 bytes":        r.RefreshToken + strings.Repeat("A", 512),
		"in upper case":         strings.ToUpper(r.RefreshToken),
		"without its prefix":    strings.TrimPrefix(r.RefreshToken, "ghr_"),
		"successor of a forged": "ghr_forged",
	} {
		t.Run(name, func(t *testing.T) { h.refuseRefresh(t, tok) })
	}
	h.refresh(t, r.RefreshToken, "") // the real one was not disturbed
}

// TestRefreshReuseIsDetected: presenting a rotated token after the grace
// window (or at all, with no grace) is reuse: refused, and the whole family
// is revoked, including its newest token.
func TestRefreshReuseIsDetected(t *testing.T) {
	tests := []struct {
		name    string
		grace   time.Duration
		advance time.Duration
	}{
		{"after the grace window", grace, grace + time.Second},
		{"just past the grace window", grace, grace + time.Microsecond},
		{"long after", grace, 7 * 24 * time.Hour},
		{"grace disabled", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *auth.Config) { c.RefreshReuseGrace = tc.grace })
			u := h.register(t, "alice@example.com", goodPass)
			other := h.grant(t, "alice@example.com", goodPass, "") // another device
			r1 := h.grant(t, "alice@example.com", goodPass, "")
			r2 := h.refresh(t, r1.RefreshToken, "")
			r3 := h.refresh(t, r2.RefreshToken, "")

			h.clock.Advance(tc.advance)
			h.refuseRefresh(t, r1.RefreshToken) // the stolen, rotated token
			h.refuseRefresh(t, r3.RefreshToken) // the newest token is revoked too
			h.refuseRefresh(t, r2.RefreshToken)

			evs := h.audit(t, auth.AuditFilter{Type: auth.EventRefreshReused})
			if len(evs) == 0 || evs[len(evs)-1].UserID != u.ID || evs[len(evs)-1].Details["family_id"] == nil {
				t.Fatalf("refresh.reused events = %+v", evs)
			}
			h.refresh(t, other.RefreshToken, "") // other families are not affected
			h.assertAuditClean(t, r1.RefreshToken, r2.RefreshToken, r3.RefreshToken)
		})
	}
}

// TestRefreshReplayInsideGrace: a repeat presentation within the grace
// window (a client that lost the response) gets the same successor back,
// and the successor keeps working.
func TestRefreshReplayInsideGrace(t *testing.T) {
	for _, advance := range []time.Duration{0, time.Second, grace / 2, grace} {
		t.Run(advance.String(), func(t *testing.T) {
			h := newHarness(t)
			h.register(t, "alice@example.com", goodPass)
			r1 := h.grant(t, "alice@example.com", goodPass, "")
			r2 := h.refresh(t, r1.RefreshToken, "")
			h.clock.Advance(advance)
			again := h.refresh(t, r1.RefreshToken, "")
			if again.RefreshToken != r2.RefreshToken {
				t.Fatal("replay inside the grace window returned a different successor")
			}
			if _, err := h.keys.Verify(again.AccessToken); err != nil {
				t.Fatalf("replay's access token: %v", err)
			}
			r3 := h.refresh(t, r2.RefreshToken, "")
			if r3.RefreshToken == r2.RefreshToken {
				t.Fatal("successor did not rotate")
			}
			h.refresh(t, r3.RefreshToken, "")
			if evs := h.audit(t, auth.AuditFilter{Type: auth.EventRefreshReused}); len(evs) != 0 {
				t.Fatalf("refresh.reused recorded for a replay inside the grace window: %+v", evs)
			}
		})
	}
}

// TestRefreshConcurrent presents one refresh token 20 times at once: every
// success carries the same successor, and only one rotation is stored.
func TestRefreshConcurrent(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice@example.com", goodPass)
	r1 := h.grant(t, "alice@example.com", goodPass, "")

	const n = 20
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		succ  = map[string]int{}
		errs  []error
	)
	for range n {
		wg.Go(func() {
			<-start
			r, err := h.svc.RefreshGrant(context.Background(), r1.RefreshToken, "", meta)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			succ[r.RefreshToken]++
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != auth.ErrInvalidRefreshToken {
			t.Errorf("concurrent RefreshGrant error %v", err)
		}
	}
	if len(succ) != 1 {
		t.Fatalf("%d distinct successors (%d errors), want exactly 1", len(succ), len(errs))
	}
	t.Logf("%d successes, %d refusals", n-len(errs), len(errs))
	var next string
	for k := range succ {
		next = k
	}
	var rows int
	if err := h.rawDB(t).QueryRow(`SELECT COUNT(*) FROM refresh_tokens`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Fatalf("%d refresh tokens stored, want 2 (the first and one successor)", rows)
	}
	h.refresh(t, next, "")
}

// TestRefreshFamilyLifetime: the family's absolute lifetime bounds every
// token in it, however often it is rotated.
func TestRefreshFamilyLifetime(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice@example.com", goodPass)
	rt := h.grant(t, "alice@example.com", goodPass, "").RefreshToken
	for _, step := range []time.Duration{10 * 24 * time.Hour, 10 * 24 * time.Hour, 10*24*time.Hour - time.Second} {
		h.clock.Advance(step)
		rt = h.refresh(t, rt, "").RefreshToken
	}
	h.clock.Advance(time.Second) // exactly RefreshTokenTTL after the login
	h.refuseRefresh(t, rt)
	h.clock.Advance(time.Hour)
	h.refuseRefresh(t, rt)
}

// TestRefreshScope: a refresh may narrow the scope of the grant but never
// widen it; a refused request does not consume the token.
func TestRefreshScope(t *testing.T) {
	tests := []struct {
		name         string
		roles        []string
		grantScope   string
		refreshScope string
		want         []string // nil: ErrInvalidScope
	}{
		{"same scope by default", []string{"user"}, "", "", []string{"read", "write"}},
		{"narrower", []string{"user"}, "", "read", []string{"read"}},
		{"narrower, other order", []string{"user"}, "", "write read", []string{"read", "write"}},
		{"wider than the grant", []string{"user"}, "read", "read write", nil},
		{"scope the role lacks", []string{"user"}, "", "admin", nil},
		{"admin narrowed", []string{"admin"}, "", "read", []string{"read"}},
		{"admin beyond a narrowed grant", []string{"admin"}, "read", "admin", nil},
		{"known scope outside the grant", []string{"admin"}, "", "introspect", nil},
		{"unknown scope", []string{"user"}, "", "everything", nil},
		{"prefix of a granted scope", []string{"user"}, "", "rea", nil},
		{"two granted scopes as one", []string{"user"}, "", "read+write", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if _, err := h.svc.CreateUser(context.Background(), "alice@example.com", goodPass, tc.roles); err != nil {
				t.Fatal(err)
			}
			r := h.grant(t, "alice@example.com", goodPass, tc.grantScope)
			got, err := h.svc.RefreshGrant(context.Background(), r.RefreshToken, tc.refreshScope, meta)
			if tc.want == nil {
				if !errors.Is(err, auth.ErrInvalidScope) || got != nil {
					t.Fatalf("RefreshGrant = %+v, %v; want ErrInvalidScope", got, err)
				}
				// The token was not consumed.
				h.refresh(t, r.RefreshToken, "")
				return
			}
			if err != nil || !slices.Equal(got.Scope, tc.want) {
				t.Fatalf("RefreshGrant = %+v, %v; want scope %q", got, err, tc.want)
			}
			c, err := h.keys.Verify(got.AccessToken)
			if err != nil || !slices.Equal(c.Scopes, tc.want) {
				t.Fatalf("access token scopes = %v, %v; want %q", c, err, tc.want)
			}
		})
	}
}

// TestRefreshFollowsRoles: the user's current roles bound a refresh, so a
// demotion shows at the next refresh.
func TestRefreshFollowsRoles(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u, err := h.svc.CreateUser(ctx, "root@example.com", goodPass, []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	r := h.grant(t, "root@example.com", goodPass, "")
	if !slices.Equal(r.Scope, []string{"admin", "read", "write"}) {
		t.Fatalf("scope = %q", r.Scope)
	}
	if err := h.svc.SetRoles(ctx, u.ID, []string{"user"}, meta); err != nil {
		t.Fatal(err)
	}
	r = h.refresh(t, r.RefreshToken, "")
	if !slices.Equal(r.Scope, []string{"read", "write"}) {
		t.Fatalf("scope after demotion = %q", r.Scope)
	}
	if c, err := h.keys.Verify(r.AccessToken); err != nil || !slices.Equal(c.Roles, []string{"user"}) {
		t.Fatalf("access token roles = %+v, %v", c, err)
	}
	if err := h.svc.SetRoles(ctx, u.ID, nil, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.RefreshGrant(ctx, r.RefreshToken, "", meta); !errors.Is(err, auth.ErrInvalidScope) {
		t.Fatalf("refresh without any role: %v", err)
	}
}

// TestRefreshDisabledUser: a family started before its account was
// disabled cannot refresh.
func TestRefreshDisabledUser(t *testing.T) {
	h := newHarness(t)
	u := h.insertUser(t, "disabled@example.com", h.hash(t, goodPass), false)
	c, err := h.svc.SignInForTest(context.Background(), u, auth.FinishTokens, auth.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Tokens
	if err := h.db.SetDisabled(context.Background(), u.ID, true, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.refuseRefresh(t, r.RefreshToken)
}

func TestRevokeRefresh(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u := h.register(t, "alice@example.com", goodPass)
	other := h.grant(t, "alice@example.com", goodPass, "")
	r1 := h.grant(t, "alice@example.com", goodPass, "")
	r2 := h.refresh(t, r1.RefreshToken, "")

	for name, tok := range map[string]string{
		"empty":          "",
		"unknown":        "ghr_" + strings.Repeat("B", 43),
		"garbage":        "not a token",
		"over 512 bytes": strings.Repeat("x", 600),
		"access token":   r2.AccessToken,
	} {
		t.Run("unknown token: "+name, func(t *testing.T) {
			if err := h.svc.RevokeRefresh(ctx, tok, meta); err != nil {
				t.Fatalf("RevokeRefresh = %v, want nil", err)
			}
		})
	}
	other = h.refresh(t, other.RefreshToken, "")

	// Revoking by an older member of the family revokes all of it, even a
	// replay inside the grace window.
	if err := h.svc.RevokeRefresh(ctx, r1.RefreshToken, meta); err != nil {
		t.Fatalf("RevokeRefresh: %v", err)
	}
	h.refuseRefresh(t, r2.RefreshToken)
	h.refuseRefresh(t, r1.RefreshToken)
	if err := h.svc.RevokeRefresh(ctx, r2.RefreshToken, meta); err != nil {
		t.Fatalf("second RevokeRefresh: %v", err)
	}
	evs := h.audit(t, auth.AuditFilter{Type: auth.EventRefreshRevoked, UserID: u.ID})
	if len(evs) == 0 || evs[0].Details["family_id"] == nil {
		t.Fatalf("refresh.revoked events = %+v", evs)
	}
	// Other families of the user are untouched.
	h.refresh(t, other.RefreshToken, "")
	h.assertAuditClean(t, r1.RefreshToken, r2.RefreshToken)
}

// TestAccessTokenSID: an access token's sid is its refresh family's id
// (SPEC §15): a refresh keeps it, another sign-in (another family) gets
// another, and a second factor's tokens carry their new family's.
func TestAccessTokenSID(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.register(t, "sid@example.com", goodPass)
	first := h.grant(t, "sid@example.com", goodPass, "")
	sid := h.claimsOf(t, first.AccessToken).SID
	if sid == "" {
		t.Fatal("the password grant's access token has no sid")
	}
	r, err := h.svc.RefreshGrant(ctx, first.RefreshToken, "", meta)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.claimsOf(t, r.AccessToken).SID; got != sid {
		t.Fatalf("a refresh changed sid from %q to %q", sid, got)
	}
	second := h.grant(t, "sid@example.com", goodPass, "")
	if got := h.claimsOf(t, second.AccessToken).SID; got == "" || got == sid {
		t.Fatalf("a second sign-in's sid %q, want a new one (not %q)", got, sid)
	}
}
