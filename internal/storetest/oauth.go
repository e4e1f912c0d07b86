package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// OAuthBackend is an OAuth2 / OpenID Connect provider store under test:
// clients, consents and authorization codes, plus the refresh store whose
// families a redemption creates and a client's deletion revokes (to read
// them back), and CreateUser to make the owners exist (see userMaker).
type OAuthBackend interface {
	auth.ClientStore
	auth.ConsentStore
	auth.AuthCodeStore
	auth.RefreshStore
	userMaker
}

// RunOAuthProvider runs the provider contract (SPEC §14). open must return
// a fresh, empty backend each time it is called (once per subtest) and
// arrange its cleanup with t.Cleanup.
//
// Nothing in it expires by the wall clock: "now" is always an argument.
func RunOAuthProvider(t *testing.T, open func(t *testing.T) OAuthBackend) {
	t.Helper()
	t.Run("ClientRoundTrip", func(t *testing.T) { testClientRoundTrip(t, open) })
	t.Run("ClientDuplicate", func(t *testing.T) { testClientDuplicate(t, open) })
	t.Run("ClientUnknown", func(t *testing.T) { testClientUnknown(t, open) })
	t.Run("ClientUpdate", func(t *testing.T) { testClientUpdate(t, open) })
	t.Run("ClientRotateSecret", func(t *testing.T) { testClientRotate(t, open) })
	t.Run("ClientList", func(t *testing.T) { testClientList(t, open) })
	t.Run("ClientDelete", func(t *testing.T) { testClientDelete(t, open) })
	t.Run("ConsentRoundTrip", func(t *testing.T) { testConsentRoundTrip(t, open) })
	t.Run("ConsentReplace", func(t *testing.T) { testConsentReplace(t, open) })
	t.Run("ConsentList", func(t *testing.T) { testConsentList(t, open) })
	t.Run("ConsentDelete", func(t *testing.T) { testConsentDelete(t, open) })
	t.Run("CodeRoundTrip", func(t *testing.T) { testCodeRoundTrip(t, open) })
	t.Run("CodeRedeem", func(t *testing.T) { testCodeRedeem(t, open) })
	t.Run("CodeRedeemRefused", func(t *testing.T) { testCodeRedeemRefused(t, open) })
	t.Run("CodeRedeemFamilyAtomic", func(t *testing.T) { testCodeRedeemAtomic(t, open) })
	t.Run("CodeConcurrentRedeem", func(t *testing.T) { testCodeConcurrentRedeem(t, open) })
	t.Run("CodePurge", func(t *testing.T) { testCodePurge(t, open) })
	t.Run("DeleteUserCascades", func(t *testing.T) { testOAuthDeleteUser(t, open) })
}

// ---- clients ----

// fullClient sets every field, the booleans to the opposite of what a
// store that dropped them would read (require_pkce defaults to true), and
// lists in no particular order with characters a space- or comma-joined
// encoding, or an HTML-escaping one, would not give back: redirect URIs
// are compared as exact strings.
func fullClient(id, name string) *auth.Client {
	prev := at(24*time.Hour + 5*time.Microsecond)
	return &auth.Client{
		ID:   id,
		Name: name,
		Type: auth.ClientConfidential,
		RedirectURIs: []string{
			"https://rp.example.com/cb?x=1&y=%3C2%3E",
			"http://127.0.0.1/callback",
			"com.example.app:/oauth2redirect",
			`https://rp.example.com/odd path/"quoted",comma\back<tag>&amp;`,
			"https://rp.example.com/ünïcode/☃",
		},
		PostLogoutRedirectURIs:  []string{"https://rp.example.com/bye", "http://[::1]:8080/logged-out?a=b c"},
		GrantTypes:              []string{auth.GrantRefreshToken, auth.GrantAuthorizationCode, auth.GrantClientCredentials},
		Scopes:                  []string{"openid", "profile", "email", "offline_access", "posts:write"},
		FirstParty:              true,
		RequirePKCE:             false,
		TokenEndpointAuthMethod: auth.ClientAuthPost,
		IDTokenAlg:              "ES256",
		IDTokenClaims:           true,
		LogoURL:                 "https://cdn.example.com/logo.png?v=2&s=64",
		SecretHash:              hashOf("secret-" + id),
		PreviousSecretHash:      hashOf("old-secret-" + id),
		PreviousSecretExpiresAt: &prev,
		FromConfig:              true,
		CreatedAt:               at(0),
		UpdatedAt:               at(time.Hour + 7*time.Microsecond),
	}
}

// publicClient is a public client with the other value of every boolean
// and nothing optional.
func publicClient(id, name string) *auth.Client {
	return &auth.Client{
		ID:                      id,
		Name:                    name,
		Type:                    auth.ClientPublic,
		RedirectURIs:            []string{"https://spa.example.com/cb"},
		GrantTypes:              []string{auth.GrantAuthorizationCode},
		Scopes:                  []string{"openid"},
		RequirePKCE:             true,
		TokenEndpointAuthMethod: auth.ClientAuthNone,
		CreatedAt:               at(time.Second),
		UpdatedAt:               at(time.Second),
	}
}

func cloneClient(c *auth.Client) *auth.Client {
	out := *c
	out.RedirectURIs = slices.Clone(c.RedirectURIs)
	out.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	out.GrantTypes = slices.Clone(c.GrantTypes)
	out.Scopes = slices.Clone(c.Scopes)
	if c.PreviousSecretExpiresAt != nil {
		e := *c.PreviousSecretExpiresAt
		out.PreviousSecretExpiresAt = &e
	}
	return &out
}

// scribble overwrites a client's lists in place: what a backend keeps must
// not change when the caller reuses its slices.
func scribble(c *auth.Client) {
	for _, l := range [][]string{c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes, c.Scopes} {
		for i := range l {
			l[i] = "scribbled"
		}
	}
}

// createClient stores a copy of c (scribbled over afterwards) and returns c.
func createClient(t *testing.T, s OAuthBackend, c *auth.Client) *auth.Client {
	t.Helper()
	in := cloneClient(c)
	if err := s.CreateClient(t.Context(), in); err != nil {
		t.Fatalf("CreateClient(%s): %v", c.ID, err)
	}
	scribble(in)
	return c
}

func getClient(t *testing.T, s OAuthBackend, id string) *auth.Client {
	t.Helper()
	c, err := s.ClientByID(t.Context(), id)
	if err != nil {
		t.Fatalf("ClientByID(%s): %v", id, err)
	}
	if c == nil {
		t.Fatalf("ClientByID(%s): nil client", id)
	}
	return c
}

// checkClient compares every field; a nil and an empty list are equal.
func checkClient(t *testing.T, got, want *auth.Client) {
	t.Helper()
	if got == nil {
		t.Fatalf("client %s: got nil", want.ID)
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"ID", got.ID, want.ID},
		{"Name", got.Name, want.Name},
		{"Type", got.Type, want.Type},
		{"FirstParty", got.FirstParty, want.FirstParty},
		{"RequirePKCE", got.RequirePKCE, want.RequirePKCE},
		{"TokenEndpointAuthMethod", got.TokenEndpointAuthMethod, want.TokenEndpointAuthMethod},
		{"IDTokenAlg", got.IDTokenAlg, want.IDTokenAlg},
		{"IDTokenClaims", got.IDTokenClaims, want.IDTokenClaims},
		{"LogoURL", got.LogoURL, want.LogoURL},
		{"SecretHash", got.SecretHash, want.SecretHash},
		{"PreviousSecretHash", got.PreviousSecretHash, want.PreviousSecretHash},
		{"FromConfig", got.FromConfig, want.FromConfig},
	} {
		if f.got != f.want {
			t.Errorf("client %s: %s = %#v, want %#v", want.ID, f.name, f.got, f.want)
		}
	}
	for _, l := range []struct {
		name      string
		got, want []string
	}{
		{"RedirectURIs", got.RedirectURIs, want.RedirectURIs},
		{"PostLogoutRedirectURIs", got.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs},
		{"GrantTypes", got.GrantTypes, want.GrantTypes},
		{"Scopes", got.Scopes, want.Scopes},
	} {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("client %s: %s = %q, want %q", want.ID, l.name, l.got, l.want)
		}
	}
	if !equalTimePtr(got.PreviousSecretExpiresAt, want.PreviousSecretExpiresAt) {
		t.Errorf("client %s: PreviousSecretExpiresAt = %s, want %s", want.ID, fmtTimePtr(got.PreviousSecretExpiresAt), fmtTimePtr(want.PreviousSecretExpiresAt))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("client %s: CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("client %s: UpdatedAt = %v, want %v", want.ID, got.UpdatedAt, want.UpdatedAt)
	}
}

func wantNoClient(t *testing.T, s OAuthBackend, id, why string) {
	t.Helper()
	got, err := s.ClientByID(t.Context(), id)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ClientByID(%s) %s = %+v, %v; want ErrNotFound", id, why, got, err)
	}
}

func testClientRoundTrip(t *testing.T, open func(t *testing.T) OAuthBackend) {
	for _, tc := range []struct {
		name   string
		client *auth.Client
	}{
		{"EveryField", fullClient("c-full", "Zoë's Client 🙂")},
		{"Public", publicClient("c-public", "Single-page app")},
		{"ZeroValues", &auth.Client{ID: "c-zero", Type: auth.ClientPublic, CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}},
		{"EmptyLists", func() *auth.Client {
			c := publicClient("c-empty", "Empty lists")
			c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes, c.Scopes = []string{}, []string{}, []string{}, []string{}
			return c
		}()},
		{"OneEmptyString", func() *auth.Client {
			// A list of one empty string is not an empty list.
			c := publicClient("c-blank", "Blank")
			c.PostLogoutRedirectURIs = []string{""}
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			createClient(t, s, tc.client)
			checkClient(t, getClient(t, s, tc.client.ID), tc.client)
		})
	}
}

func testClientDuplicate(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	first := createClient(t, s, fullClient("c-1", "First"))
	second := publicClient("c-1", "Intruder")
	second.RedirectURIs = []string{"https://attacker.example/cb"}
	wantCode(t, "CreateClient with a taken id", s.CreateClient(t.Context(), second), auth.ECONFLICT)
	checkClient(t, getClient(t, s, "c-1"), first)
}

func testClientUnknown(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	known := createClient(t, s, fullClient("c-1", "Known"))
	now := at(2 * time.Hour)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"ClientByID", func() error { _, err := s.ClientByID(t.Context(), "nobody"); return err }},
		{"UpdateClient", func() error { return s.UpdateClient(t.Context(), publicClient("nobody", "x")) }},
		{"RotateClientSecret", func() error {
			return s.RotateClientSecret(t.Context(), "nobody", hashOf("x"), now.Add(24*time.Hour), now)
		}},
		{"DeleteClient", func() error { return s.DeleteClient(t.Context(), "nobody", now) }},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.name, tc.call(), auth.ErrNotFound) })
	}
	// Nothing was created by the update of an unknown client, and the
	// known one is untouched.
	wantNoClient(t, s, "nobody", "after the refused calls")
	checkClient(t, getClient(t, s, "c-1"), known)
}

func testClientUpdate(t *testing.T, open func(t *testing.T) OAuthBackend) {
	now := at(3*time.Hour + 11*time.Microsecond)
	for _, tc := range []struct {
		name   string
		change func(c *auth.Client) // the new settings
	}{
		{"EverySetting", func(c *auth.Client) {
			c.Name = "Renamed"
			c.Type = auth.ClientPublic
			c.RedirectURIs = []string{"https://new.example.com/cb", "http://localhost/cb"}
			c.PostLogoutRedirectURIs = []string{"https://new.example.com/bye"}
			c.GrantTypes = []string{auth.GrantAuthorizationCode}
			c.Scopes = []string{"openid", "email"}
			c.FirstParty, c.RequirePKCE, c.IDTokenClaims, c.FromConfig = false, true, false, false
			c.TokenEndpointAuthMethod = auth.ClientAuthNone
			c.IDTokenAlg = "RS256"
			c.LogoURL = "https://new.example.com/logo.svg"
		}},
		{"ToEmpty", func(c *auth.Client) {
			c.Name, c.LogoURL, c.IDTokenAlg = "", "", ""
			c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes, c.Scopes = nil, []string{}, nil, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			before := createClient(t, s, fullClient("c-1", "Original"))
			other := createClient(t, s, fullClient("c-2", "Other"))

			in := cloneClient(before)
			tc.change(in)
			in.UpdatedAt = now
			// UpdateClient leaves the secrets and CreatedAt alone,
			// whatever the struct says.
			in.SecretHash, in.PreviousSecretHash, in.PreviousSecretExpiresAt = hashOf("forged"), "", nil
			in.CreatedAt = now
			if err := s.UpdateClient(t.Context(), cloneClient(in)); err != nil {
				t.Fatalf("UpdateClient: %v", err)
			}

			want := cloneClient(before)
			tc.change(want)
			want.UpdatedAt = now
			checkClient(t, getClient(t, s, "c-1"), want)
			checkClient(t, getClient(t, s, "c-2"), other)
		})
	}
}

func testClientRotate(t *testing.T, open func(t *testing.T) OAuthBackend) {
	t.Run("Confidential", func(t *testing.T) {
		s := open(t)
		c := fullClient("c-1", "Confidential")
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = "", nil
		createClient(t, s, c)
		other := createClient(t, s, fullClient("c-2", "Other"))

		now1, until1 := at(5*time.Hour+1*time.Microsecond), at(29*time.Hour+2*time.Microsecond)
		if err := s.RotateClientSecret(t.Context(), "c-1", hashOf("second"), until1, now1); err != nil {
			t.Fatalf("RotateClientSecret: %v", err)
		}
		want := cloneClient(c)
		want.SecretHash, want.PreviousSecretHash, want.PreviousSecretExpiresAt, want.UpdatedAt = hashOf("second"), c.SecretHash, &until1, now1
		checkClient(t, getClient(t, s, "c-1"), want)

		// A second rotation replaces the previous secret and its expiry.
		now2, until2 := at(6*time.Hour+3*time.Microsecond), at(30*time.Hour+4*time.Microsecond)
		if err := s.RotateClientSecret(t.Context(), "c-1", hashOf("third"), until2, now2); err != nil {
			t.Fatalf("second RotateClientSecret: %v", err)
		}
		want.SecretHash, want.PreviousSecretHash, want.PreviousSecretExpiresAt, want.UpdatedAt = hashOf("third"), hashOf("second"), &until2, now2
		checkClient(t, getClient(t, s, "c-1"), want)
		checkClient(t, getClient(t, s, "c-2"), other)
	})

	t.Run("FirstSecret", func(t *testing.T) {
		// A client without a secret gets one; there is no previous
		// secret to keep.
		s := open(t)
		createClient(t, s, publicClient("c-1", "No secret yet"))
		now, until := at(5*time.Hour), at(29*time.Hour)
		if err := s.RotateClientSecret(t.Context(), "c-1", hashOf("first"), until, now); err != nil {
			t.Fatalf("RotateClientSecret: %v", err)
		}
		got := getClient(t, s, "c-1")
		if got.SecretHash != hashOf("first") || got.PreviousSecretHash != "" {
			t.Errorf("after the first rotation: SecretHash %q, PreviousSecretHash %q; want %q, \"\"", got.SecretHash, got.PreviousSecretHash, hashOf("first"))
		}
		if !got.UpdatedAt.Equal(now) {
			t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, now)
		}
	})
}

func testClientList(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	got, err := s.ListClients(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("ListClients of an empty store = %d clients, %v; want none", len(got), err)
	}
	// Made in neither name nor id order, and the id order is not the
	// name order; two share a name (then the id decides).
	made := map[string]*auth.Client{}
	for _, c := range []*auth.Client{
		fullClient("c-3", "Bravo"),
		publicClient("c-5", "Alpha"),
		fullClient("c-1", "Charlie"),
		publicClient("c-2", "Alpha"),
		publicClient("c-4", ""),
	} {
		made[c.ID] = createClient(t, s, c)
	}
	got, err = s.ListClients(t.Context())
	if err != nil {
		t.Fatalf("ListClients: %v", err)
	}
	want := []string{"c-4", "c-2", "c-5", "c-3", "c-1"}
	ids := make([]string, len(got))
	for i, c := range got {
		ids[i] = c.ID
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("ListClients = %q, want %q (by name, then id)", ids, want)
	}
	for _, c := range got {
		checkClient(t, c, made[c.ID])
	}
}

// ---- refresh families of provider clients ----

// clientFamily creates family id of userID for clientID; its first token
// is "tok-" + id.
func clientFamily(t *testing.T, s auth.RefreshStore, id, userID, clientID string) *auth.RefreshFamily {
	t.Helper()
	f := newFamily(id, userID)
	f.ClientID = clientID
	if err := s.CreateFamily(t.Context(), f, newToken("tok-"+id, id, f.CreatedAt)); err != nil {
		t.Fatalf("CreateFamily(%s): %v", id, err)
	}
	return f
}

// familyRevokedAt reads family id (made by clientFamily) and returns when
// it was revoked (nil: it was not).
func familyRevokedAt(t *testing.T, s auth.RefreshStore, id string) *time.Time {
	t.Helper()
	_, f, err := s.RefreshTokenByHash(t.Context(), hashOf("tok-"+id))
	if err != nil {
		t.Fatalf("RefreshTokenByHash(tok-%s): %v", id, err)
	}
	return f.RevokedAt
}

// wantRevoked requires family id to be revoked at when (nil: live).
func wantRevoked(t *testing.T, s auth.RefreshStore, id string, when *time.Time, why string) {
	t.Helper()
	if got := familyRevokedAt(t, s, id); !equalTimePtr(got, when) {
		t.Errorf("family %s %s: RevokedAt = %s, want %s", id, why, fmtTimePtr(got), fmtTimePtr(when))
	}
}

func testClientDelete(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	createClient(t, s, fullClient("c-1", "Going"))
	stays := createClient(t, s, fullClient("c-2", "Staying"))
	putConsent(t, s, newConsent("u-1", "c-1", at(0)))
	putConsent(t, s, newConsent("u-2", "c-1", at(0)))
	keptConsent := putConsent(t, s, newConsent("u-1", "c-2", at(0)))
	goneCode := createAuthCode(t, s, newAuthCode("gone", "c-1", "u-1", at(0)))
	keptCode := createAuthCode(t, s, newAuthCode("kept", "c-2", "u-1", at(0)))
	clientFamily(t, s, "f-1", "u-1", "c-1")
	clientFamily(t, s, "f-2", "u-2", "c-1")
	clientFamily(t, s, "f-3", "u-1", "c-2")
	clientFamily(t, s, "f-4", "u-1", "")
	clientFamily(t, s, "f-old", "u-1", "c-1")
	earlier := at(10 * time.Minute)
	if err := s.RevokeFamily(t.Context(), "f-old", earlier); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}

	now := at(time.Hour + 5*time.Microsecond)
	if err := s.DeleteClient(t.Context(), "c-1", now); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	wantNoClient(t, s, "c-1", "after DeleteClient")
	checkClient(t, getClient(t, s, "c-2"), stays)
	wantNoConsent(t, s, "u-1", "c-1", "after DeleteClient")
	wantNoConsent(t, s, "u-2", "c-1", "after DeleteClient")
	checkConsent(t, getConsent(t, s, "u-1", "c-2"), keptConsent)
	wantNoAuthCode(t, s, goneCode.Hash, "after DeleteClient")
	checkAuthCode(t, getAuthCode(t, s, keptCode.Hash), keptCode)
	wantRevoked(t, s, "f-1", &now, "of the deleted client")
	wantRevoked(t, s, "f-2", &now, "of the deleted client, another user's")
	wantRevoked(t, s, "f-old", &earlier, "revoked before the deletion")
	wantRevoked(t, s, "f-3", nil, "of another client")
	wantRevoked(t, s, "f-4", nil, "of no client")
	wantErr(t, "second DeleteClient", s.DeleteClient(t.Context(), "c-1", now), auth.ErrNotFound)

	// The id is free again, and what the old client had does not come
	// back with it.
	again := createClient(t, s, publicClient("c-1", "Again"))
	checkClient(t, getClient(t, s, "c-1"), again)
	wantNoConsent(t, s, "u-1", "c-1", "of the re-created client")
	wantNoAuthCode(t, s, goneCode.Hash, "of the re-created client")
}

// ---- consents ----

func newConsent(userID, clientID string, created time.Time) *auth.Consent {
	exp := created.Add(90*24*time.Hour + 3*time.Microsecond)
	return &auth.Consent{
		UserID:    userID,
		ClientID:  clientID,
		Scopes:    []string{"openid", "profile", "offline_access", "posts:read"},
		CreatedAt: created,
		UpdatedAt: created.Add(time.Minute + time.Microsecond),
		ExpiresAt: &exp,
	}
}

func cloneConsent(c *auth.Consent) *auth.Consent {
	out := *c
	out.Scopes = slices.Clone(c.Scopes)
	if c.ExpiresAt != nil {
		e := *c.ExpiresAt
		out.ExpiresAt = &e
	}
	return &out
}

// putConsent stores a copy of c (scribbled over afterwards) and returns c.
func putConsent(t *testing.T, s OAuthBackend, c *auth.Consent) *auth.Consent {
	t.Helper()
	in := cloneConsent(c)
	if err := s.PutConsent(t.Context(), in); err != nil {
		t.Fatalf("PutConsent(%s, %s): %v", c.UserID, c.ClientID, err)
	}
	for i := range in.Scopes {
		in.Scopes[i] = "scribbled"
	}
	return c
}

func getConsent(t *testing.T, s OAuthBackend, userID, clientID string) *auth.Consent {
	t.Helper()
	c, err := s.Consent(t.Context(), userID, clientID)
	if err != nil {
		t.Fatalf("Consent(%s, %s): %v", userID, clientID, err)
	}
	return c
}

// checkConsent compares every field; nil and empty Scopes are equal.
func checkConsent(t *testing.T, got, want *auth.Consent) {
	t.Helper()
	if got == nil {
		t.Fatalf("consent of %s to %s: got nil", want.UserID, want.ClientID)
	}
	if got.UserID != want.UserID || got.ClientID != want.ClientID {
		t.Errorf("consent = {UserID %q, ClientID %q}, want {%q, %q}", got.UserID, got.ClientID, want.UserID, want.ClientID)
	}
	if !slices.Equal(got.Scopes, want.Scopes) {
		t.Errorf("consent of %s to %s: Scopes = %q, want %q", want.UserID, want.ClientID, got.Scopes, want.Scopes)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("consent of %s to %s: CreatedAt %v, UpdatedAt %v; want %v, %v", want.UserID, want.ClientID, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
	if !equalTimePtr(got.ExpiresAt, want.ExpiresAt) {
		t.Errorf("consent of %s to %s: ExpiresAt = %s, want %s", want.UserID, want.ClientID, fmtTimePtr(got.ExpiresAt), fmtTimePtr(want.ExpiresAt))
	}
}

func wantNoConsent(t *testing.T, s OAuthBackend, userID, clientID, why string) {
	t.Helper()
	got, err := s.Consent(t.Context(), userID, clientID)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Consent(%s, %s) %s = %+v, %v; want ErrNotFound", userID, clientID, why, got, err)
	}
}

func testConsentRoundTrip(t *testing.T, open func(t *testing.T) OAuthBackend) {
	for _, tc := range []struct {
		name    string
		consent *auth.Consent
	}{
		{"EveryField", newConsent("u-1", "c-1", at(0))},
		{"UntilRevoked", func() *auth.Consent {
			c := newConsent("u-1", "c-1", at(0))
			c.ExpiresAt = nil
			return c
		}()},
		{"NoScopes", func() *auth.Consent {
			c := newConsent("u-1", "c-1", at(0))
			c.Scopes = nil
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1", "u-2")
			createClient(t, s, publicClient("c-1", "One"))
			createClient(t, s, publicClient("c-2", "Two"))
			putConsent(t, s, tc.consent)
			checkConsent(t, getConsent(t, s, "u-1", "c-1"), tc.consent)
			wantNoConsent(t, s, "u-2", "c-1", "of another user")
			wantNoConsent(t, s, "u-1", "c-2", "to another client")
			wantNoConsent(t, s, "nobody", "c-1", "of an unknown user")
		})
	}
}

func testConsentReplace(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	createClient(t, s, publicClient("c-1", "One"))
	putConsent(t, s, newConsent("u-1", "c-1", at(0)))
	theirs := putConsent(t, s, newConsent("u-2", "c-1", at(0)))

	// Every field is replaced: the caller decides what CreatedAt stays.
	v2 := &auth.Consent{UserID: "u-1", ClientID: "c-1", Scopes: []string{"email", "openid"},
		CreatedAt: at(time.Hour), UpdatedAt: at(2*time.Hour + 3*time.Microsecond)}
	putConsent(t, s, v2)
	checkConsent(t, getConsent(t, s, "u-1", "c-1"), v2)

	v3 := newConsent("u-1", "c-1", at(5*time.Hour))
	v3.Scopes = []string{"openid"}
	putConsent(t, s, v3)
	checkConsent(t, getConsent(t, s, "u-1", "c-1"), v3)
	checkConsent(t, getConsent(t, s, "u-2", "c-1"), theirs)

	list, err := s.ListConsents(t.Context(), "u-1")
	if err != nil || len(list) != 1 {
		t.Fatalf("ListConsents after replacing = %d consents, %v; want 1", len(list), err)
	}
}

func testConsentList(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2", "u-3")
	for _, id := range []string{"c-b", "c-a", "c-c"} {
		createClient(t, s, publicClient(id, "Client "+id))
	}
	made := map[string]*auth.Consent{}
	for i, id := range []string{"c-b", "c-c", "c-a"} { // not in client-id order
		c := newConsent("u-1", id, at(time.Duration(i)*time.Hour))
		if i == 1 {
			c.ExpiresAt = nil
		}
		made[id] = putConsent(t, s, c)
	}
	theirs := putConsent(t, s, newConsent("u-2", "c-b", at(0)))

	for _, tc := range []struct {
		user string
		want []*auth.Consent
	}{
		{"u-1", []*auth.Consent{made["c-a"], made["c-b"], made["c-c"]}},
		{"u-2", []*auth.Consent{theirs}},
		{"u-3", nil},
	} {
		got, err := s.ListConsents(t.Context(), tc.user)
		if err != nil {
			t.Fatalf("ListConsents(%s): %v", tc.user, err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("ListConsents(%s) = %d consents, want %d", tc.user, len(got), len(tc.want))
			continue
		}
		for i := range got {
			checkConsent(t, got[i], tc.want[i])
		}
	}
}

func testConsentDelete(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	createClient(t, s, publicClient("c-1", "One"))
	createClient(t, s, publicClient("c-2", "Two"))
	putConsent(t, s, newConsent("u-1", "c-1", at(0)))
	other := putConsent(t, s, newConsent("u-1", "c-2", at(0)))
	theirs := putConsent(t, s, newConsent("u-2", "c-1", at(0)))
	clientFamily(t, s, "f-11", "u-1", "c-1")
	clientFamily(t, s, "f-11b", "u-1", "c-1")
	clientFamily(t, s, "f-11-old", "u-1", "c-1")
	clientFamily(t, s, "f-12", "u-1", "c-2")
	clientFamily(t, s, "f-21", "u-2", "c-1")
	clientFamily(t, s, "f-10", "u-1", "")
	earlier := at(10 * time.Minute)
	if err := s.RevokeFamily(t.Context(), "f-11-old", earlier); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}

	now := at(time.Hour + 9*time.Microsecond)
	if err := s.DeleteConsent(t.Context(), "u-1", "c-1", now); err != nil {
		t.Fatalf("DeleteConsent: %v", err)
	}
	wantNoConsent(t, s, "u-1", "c-1", "after DeleteConsent")
	checkConsent(t, getConsent(t, s, "u-1", "c-2"), other)
	checkConsent(t, getConsent(t, s, "u-2", "c-1"), theirs)
	wantRevoked(t, s, "f-11", &now, "of the user and client")
	wantRevoked(t, s, "f-11b", &now, "of the user and client")
	wantRevoked(t, s, "f-11-old", &earlier, "revoked before")
	wantRevoked(t, s, "f-12", nil, "of another client")
	wantRevoked(t, s, "f-21", nil, "of another user")
	wantRevoked(t, s, "f-10", nil, "of no client")
	// The client itself stays.
	getClient(t, s, "c-1")

	wantErr(t, "second DeleteConsent", s.DeleteConsent(t.Context(), "u-1", "c-1", now), auth.ErrNotFound)
	wantErr(t, "DeleteConsent of an unknown client", s.DeleteConsent(t.Context(), "u-1", "nobody", now), auth.ErrNotFound)
}

// ---- authorization codes ----

// newAuthCode is code tag of userID for clientID, made at created and live
// for a minute; every field is set.
func newAuthCode(tag, clientID, userID string, created time.Time) *auth.AuthCode {
	return &auth.AuthCode{
		Hash:          hashOf("code-" + tag),
		ClientID:      clientID,
		UserID:        userID,
		RedirectURI:   "https://rp.example.com/cb?x=1&y=%3C2%3E",
		Scope:         "openid profile offline_access",
		Nonce:         "n-0S6_WzA2Mj-" + tag,
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		SessionID:     "sess-" + tag,
		ACR:           auth.ACR2,
		AMR:           []string{"pwd", "otp", "mfa"},
		AuthTime:      created.Add(-2*time.Minute + 13*time.Microsecond),
		CreatedAt:     created,
		ExpiresAt:     created.Add(time.Minute + 9*time.Microsecond),
	}
}

// createAuthCode stores a copy of c and returns c.
func createAuthCode(t *testing.T, s OAuthBackend, c *auth.AuthCode) *auth.AuthCode {
	t.Helper()
	in := *c
	in.AMR = slices.Clone(c.AMR)
	if err := s.CreateAuthCode(t.Context(), &in); err != nil {
		t.Fatalf("CreateAuthCode(%s): %v", c.SessionID, err)
	}
	for i := range in.AMR {
		in.AMR[i] = "scribbled"
	}
	return c
}

func getAuthCode(t *testing.T, s OAuthBackend, hash string) *auth.AuthCode {
	t.Helper()
	c, err := s.AuthCodeByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("AuthCodeByHash(%s): %v", hash, err)
	}
	if c == nil {
		t.Fatalf("AuthCodeByHash(%s): nil code", hash)
	}
	return c
}

func wantNoAuthCode(t *testing.T, s OAuthBackend, hash, why string) {
	t.Helper()
	got, err := s.AuthCodeByHash(t.Context(), hash)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("AuthCodeByHash(%s) %s = %+v, %v; want ErrNotFound", hash, why, got, err)
	}
}

// checkAuthCode compares every field; nil and empty AMR are equal.
func checkAuthCode(t *testing.T, got, want *auth.AuthCode) {
	t.Helper()
	if got == nil {
		t.Fatalf("code %s: got nil", want.Hash)
	}
	for _, f := range []struct {
		name      string
		got, want string
	}{
		{"Hash", got.Hash, want.Hash},
		{"ClientID", got.ClientID, want.ClientID},
		{"UserID", got.UserID, want.UserID},
		{"RedirectURI", got.RedirectURI, want.RedirectURI},
		{"Scope", got.Scope, want.Scope},
		{"Nonce", got.Nonce, want.Nonce},
		{"CodeChallenge", got.CodeChallenge, want.CodeChallenge},
		{"SessionID", got.SessionID, want.SessionID},
		{"ACR", got.ACR, want.ACR},
		{"FamilyID", got.FamilyID, want.FamilyID},
	} {
		if f.got != f.want {
			t.Errorf("code %s: %s = %q, want %q", want.SessionID, f.name, f.got, f.want)
		}
	}
	if !slices.Equal(got.AMR, want.AMR) {
		t.Errorf("code %s: AMR = %q, want %q", want.SessionID, got.AMR, want.AMR)
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"AuthTime", got.AuthTime, want.AuthTime},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
	} {
		if !f.got.Equal(f.want) {
			t.Errorf("code %s: %s = %v, want %v", want.SessionID, f.name, f.got, f.want)
		}
	}
	if !equalTimePtr(got.UsedAt, want.UsedAt) {
		t.Errorf("code %s: UsedAt = %s, want %s", want.SessionID, fmtTimePtr(got.UsedAt), fmtTimePtr(want.UsedAt))
	}
}

// codeFamily is the family (and first token, "tok-" + id) a redemption of
// a code of userID for clientID at now creates.
func codeFamily(id, userID, clientID string, now time.Time) (*auth.RefreshFamily, *auth.RefreshToken) {
	f := newFamily(id, userID)
	f.ClientID, f.CreatedAt, f.ExpiresAt = clientID, now, now.Add(30*24*time.Hour)
	return f, newToken("tok-"+id, id, now)
}

// wantFamily requires family f with first token tok to exist as made.
func wantFamily(t *testing.T, s auth.RefreshStore, f *auth.RefreshFamily, tok *auth.RefreshToken) {
	t.Helper()
	gotTok, gotFam, err := s.RefreshTokenByHash(t.Context(), tok.Hash)
	if err != nil {
		t.Fatalf("family %s: RefreshTokenByHash: %v", f.ID, err)
	}
	checkToken(t, gotTok, tok)
	checkFamily(t, gotFam, f)
}

func wantNoFamily(t *testing.T, s auth.RefreshStore, tok *auth.RefreshToken, why string) {
	t.Helper()
	_, f, err := s.RefreshTokenByHash(t.Context(), tok.Hash)
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("RefreshTokenByHash(%s) %s = family %+v, %v; want ErrNotFound", tok.ID, why, f, err)
	}
}

func testCodeRoundTrip(t *testing.T, open func(t *testing.T) OAuthBackend) {
	for _, tc := range []struct {
		name string
		code *auth.AuthCode
	}{
		{"EveryField", newAuthCode("full", "c-1", "u-1", at(0))},
		{"Minimal", func() *auth.AuthCode {
			// No nonce, no PKCE, no methods: a confidential client's
			// plain OAuth2 request.
			c := newAuthCode("min", "c-1", "u-1", at(0))
			c.Nonce, c.CodeChallenge, c.SessionID, c.Scope, c.AMR = "", "", "", "", nil
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1")
			createClient(t, s, publicClient("c-1", "One"))
			createAuthCode(t, s, tc.code)
			checkAuthCode(t, getAuthCode(t, s, tc.code.Hash), tc.code)
			wantNoAuthCode(t, s, hashOf("never issued"), "of an unknown code")
		})
	}
}

func testCodeRedeem(t *testing.T, open func(t *testing.T) OAuthBackend) {
	t.Run("WithFamily", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		createClient(t, s, publicClient("c-1", "One"))
		code := createAuthCode(t, s, newAuthCode("a", "c-1", "u-1", at(0)))
		other := createAuthCode(t, s, newAuthCode("b", "c-1", "u-1", at(0)))

		now := at(20*time.Second + 3*time.Microsecond)
		f, tok := codeFamily("f-1", "u-1", "c-1", now)
		if err := s.RedeemAuthCode(t.Context(), code.Hash, now, f, tok); err != nil {
			t.Fatalf("RedeemAuthCode: %v", err)
		}
		want := *code
		want.UsedAt, want.FamilyID = &now, "f-1"
		checkAuthCode(t, getAuthCode(t, s, code.Hash), &want)
		wantFamily(t, s, f, tok)
		checkAuthCode(t, getAuthCode(t, s, other.Hash), other)

		// Presented again, live or expired: used, and the code still
		// names the family its redemption made (for its revocation).
		for _, later := range []time.Time{now.Add(time.Second), code.ExpiresAt.Add(time.Hour)} {
			f2, tok2 := codeFamily("f-2", "u-1", "c-1", later)
			wantErr(t, "second RedeemAuthCode", s.RedeemAuthCode(t.Context(), code.Hash, later, f2, tok2), auth.ErrAuthCodeUsed)
			checkAuthCode(t, getAuthCode(t, s, code.Hash), &want)
			wantNoFamily(t, s, tok2, "of a refused redemption")
			wantFamily(t, s, f, tok)
		}
	})

	t.Run("WithoutFamily", func(t *testing.T) {
		s := open(t)
		makeUsers(t, s, "u-1")
		createClient(t, s, publicClient("c-1", "One"))
		code := createAuthCode(t, s, newAuthCode("a", "c-1", "u-1", at(0)))
		now := at(time.Minute) // 9 µs before it expires
		if err := s.RedeemAuthCode(t.Context(), code.Hash, now, nil, nil); err != nil {
			t.Fatalf("RedeemAuthCode: %v", err)
		}
		want := *code
		want.UsedAt = &now
		checkAuthCode(t, getAuthCode(t, s, code.Hash), &want)
		wantErr(t, "second RedeemAuthCode", s.RedeemAuthCode(t.Context(), code.Hash, now, nil, nil), auth.ErrAuthCodeUsed)
		checkAuthCode(t, getAuthCode(t, s, code.Hash), &want)
	})
}

func testCodeRedeemRefused(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	createClient(t, s, publicClient("c-1", "One"))
	code := createAuthCode(t, s, newAuthCode("a", "c-1", "u-1", at(0)))
	for _, tc := range []struct {
		name string
		hash string
		now  time.Time
	}{
		{"Unknown", hashOf("never issued"), at(time.Second)},
		{"ExpiresNow", code.Hash, code.ExpiresAt},
		{"Expired", code.Hash, code.ExpiresAt.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, tok := codeFamily("f-"+tc.name, "u-1", "c-1", tc.now)
			wantErr(t, "RedeemAuthCode", s.RedeemAuthCode(t.Context(), tc.hash, tc.now, f, tok), auth.ErrNotFound)
			wantNoFamily(t, s, tok, "of a refused redemption")
			// Still unused: a refusal changes nothing.
			checkAuthCode(t, getAuthCode(t, s, code.Hash), code)
		})
	}
}

// A redemption and its family are one transaction: when the family cannot
// be made, the code stays unused, and can be redeemed afterwards.
func testCodeRedeemAtomic(t *testing.T, open func(t *testing.T) OAuthBackend) {
	now := at(10 * time.Second)
	for _, tc := range []struct {
		name string
		bad  func() (*auth.RefreshFamily, *auth.RefreshToken)
	}{
		{"DuplicateFamilyID", func() (*auth.RefreshFamily, *auth.RefreshToken) {
			f, _ := codeFamily("f-taken", "u-1", "c-1", now)
			return f, newToken("tok-new", "f-taken", now)
		}},
		{"DuplicateTokenHash", func() (*auth.RefreshFamily, *auth.RefreshToken) {
			f, _ := codeFamily("f-new", "u-1", "c-1", now)
			tok := newToken("tok-new", "f-new", now)
			tok.Hash = hashOf("tok-f-taken")
			return f, tok
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			makeUsers(t, s, "u-1")
			createClient(t, s, publicClient("c-1", "One"))
			taken := clientFamily(t, s, "f-taken", "u-1", "")
			code := createAuthCode(t, s, newAuthCode("a", "c-1", "u-1", at(0)))

			f, tok := tc.bad()
			err := s.RedeemAuthCode(t.Context(), code.Hash, now, f, tok)
			if err == nil || errors.Is(err, auth.ErrAuthCodeUsed) || errors.Is(err, auth.ErrNotFound) {
				t.Fatalf("RedeemAuthCode with a family that cannot be made: %v; want a failure", err)
			}
			checkAuthCode(t, getAuthCode(t, s, code.Hash), code)
			if tok.Hash != hashOf("tok-f-taken") {
				wantNoFamily(t, s, tok, "of the failed redemption")
			}
			// The family that was there is untouched.
			wantFamily(t, s, taken, newToken("tok-f-taken", "f-taken", taken.CreatedAt))

			good, goodTok := codeFamily("f-good", "u-1", "c-1", now)
			if err := s.RedeemAuthCode(t.Context(), code.Hash, now, good, goodTok); err != nil {
				t.Fatalf("RedeemAuthCode after the failed one: %v", err)
			}
			want := *code
			want.UsedAt, want.FamilyID = &now, "f-good"
			checkAuthCode(t, getAuthCode(t, s, code.Hash), &want)
			wantFamily(t, s, good, goodTok)
		})
	}
}

func testCodeConcurrentRedeem(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	createClient(t, s, publicClient("c-1", "One"))
	code := createAuthCode(t, s, newAuthCode("a", "c-1", "u-1", at(0)))
	now := at(5 * time.Second)
	fams := make([]*auth.RefreshFamily, racers)
	toks := make([]*auth.RefreshToken, racers)
	for i := range racers {
		fams[i], toks[i] = codeFamily(fmt.Sprintf("f-%02d", i), "u-1", "c-1", now)
	}
	// Warm up: a pooled backend opens its connections now rather than
	// during the race.
	race(racers, func(int) { _, _ = s.AuthCodeByHash(t.Context(), hashOf("warm-up")) })
	errs := make([]error, racers)
	race(racers, func(i int) { errs[i] = s.RedeemAuthCode(t.Context(), code.Hash, now, fams[i], toks[i]) })
	w := oneWinner(t, "RedeemAuthCode", errs, auth.ErrAuthCodeUsed)

	want := *code
	want.UsedAt, want.FamilyID = &now, fams[w].ID
	checkAuthCode(t, getAuthCode(t, s, code.Hash), &want)
	for i := range racers {
		if i == w {
			wantFamily(t, s, fams[i], toks[i])
			continue
		}
		wantNoFamily(t, s, toks[i], "of a losing redemption")
	}
}

func testCodePurge(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	makeUsers(t, s, "u-1")
	createClient(t, s, publicClient("c-1", "One"))
	now := at(time.Hour)
	oldUnused := createAuthCode(t, s, newAuthCode("old-unused", "c-1", "u-1", now.Add(-10*time.Minute)))
	oldUsed := createAuthCode(t, s, newAuthCode("old-used", "c-1", "u-1", now.Add(-10*time.Minute)))
	if err := s.RedeemAuthCode(t.Context(), oldUsed.Hash, oldUsed.CreatedAt, nil, nil); err != nil {
		t.Fatalf("RedeemAuthCode: %v", err)
	}
	live := createAuthCode(t, s, newAuthCode("live", "c-1", "u-1", now.Add(-30*time.Second)))
	liveUsed := createAuthCode(t, s, newAuthCode("live-used", "c-1", "u-1", now.Add(-30*time.Second)))
	usedAt := liveUsed.CreatedAt.Add(time.Second)
	if err := s.RedeemAuthCode(t.Context(), liveUsed.Hash, usedAt, nil, nil); err != nil {
		t.Fatalf("RedeemAuthCode: %v", err)
	}

	if err := s.PurgeAuthCodes(t.Context(), now); err != nil {
		t.Fatalf("PurgeAuthCodes: %v", err)
	}
	wantNoAuthCode(t, s, oldUnused.Hash, "expired, after the purge")
	wantNoAuthCode(t, s, oldUsed.Hash, "used and expired, after the purge")
	checkAuthCode(t, getAuthCode(t, s, live.Hash), live)
	wantUsed := *liveUsed
	wantUsed.UsedAt = &usedAt
	checkAuthCode(t, getAuthCode(t, s, liveUsed.Hash), &wantUsed)
}

func testOAuthDeleteUser(t *testing.T, open func(t *testing.T) OAuthBackend) {
	s := open(t)
	makeUsers(t, s, "u-1", "u-2")
	client := createClient(t, s, fullClient("c-1", "One"))
	putConsent(t, s, newConsent("u-1", "c-1", at(0)))
	theirConsent := putConsent(t, s, newConsent("u-2", "c-1", at(0)))
	mine := createAuthCode(t, s, newAuthCode("mine", "c-1", "u-1", at(0)))
	theirs := createAuthCode(t, s, newAuthCode("theirs", "c-1", "u-2", at(0)))

	deleteUser(t, s, "u-1")
	wantNoConsent(t, s, "u-1", "c-1", "after DeleteUser")
	wantNoAuthCode(t, s, mine.Hash, "after DeleteUser")
	checkConsent(t, getConsent(t, s, "u-2", "c-1"), theirConsent)
	checkAuthCode(t, getAuthCode(t, s, theirs.Hash), theirs)
	checkClient(t, getClient(t, s, "c-1"), client)
	if list, err := s.ListConsents(t.Context(), "u-1"); err != nil || len(list) != 0 {
		t.Errorf("ListConsents of the deleted user = %d consents, %v; want none", len(list), err)
	}
}
