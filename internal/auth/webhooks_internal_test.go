package auth

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// scrubDetails drops every key and value that could be a secret, at any
// depth, and keeps identifiers and plain facts.
func TestScrubDetails(t *testing.T) {
	in := map[string]any{
		"key_id": "k-1", "session_id": "s-1", "client_id": "c-1", "family_id": "f-1", "scopes": []string{"read", "gth_x"},
		"method": "password", "count": 3, "reason": "wrong_password", "disabled": true, "at": time.Unix(0, 0).UTC(),
		"token": "t", "refresh_token": "r", "client_secret": "s", "password": "p", "password_hash": "h", "new_password": "n",
		"api_key": "gth_abc", "secret_id": "x", "code": "123456", "recovery_codes": []string{"a"}, "totp_seed": "s",
		"value":  "ghr_live-refresh-token",
		"note":   "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA",
		"jwt":    "eyJhbGciOiJFZERTQSJ9.e30.sig",
		"nested": map[string]any{"ok": "yes", "secret": "no", "deep": []any{"fine", "whsec_abc", map[string]any{"token": "x", "n": 1}}},
		"struct": struct{ Password, Name string }{"p", "n"},
	}
	out := scrubDetails(in)
	b, _ := json.Marshal(out)
	for _, leak := range []string{`"token"`, "refresh_token", "client_secret", `"password":`, "password_hash", "new_password", "api_key",
		"secret_id", `"code"`, "recovery_codes", "totp_seed", "ghr_", "argon2", "eyJ", "whsec_", "gth_", `"p"`} {
		if strings.Contains(string(b), leak) {
			t.Errorf("scrubbed details %s still hold %s", b, leak)
		}
	}
	for _, keep := range []string{`"key_id":"k-1"`, `"session_id":"s-1"`, `"client_id":"c-1"`, `"family_id":"f-1"`, `"method":"password"`,
		`"count":3`, `"reason":"wrong_password"`, `"disabled":true`, `"ok":"yes"`, `"fine"`, `"n":1`, `"Name":"n"`, `["read"]`} {
		if !strings.Contains(string(b), keep) {
			t.Errorf("scrubbed details %s lost %s", b, keep)
		}
	}
	if scrubDetails(nil) != nil {
		t.Error("scrubDetails(nil) is not nil")
	}
}

func TestWebhookTypes(t *testing.T) {
	for _, tc := range []struct {
		typ     string
		details map[string]any
		want    []string
	}{
		{EventUserRegistered, nil, []string{WebhookUserCreated}},
		{EventLoginSucceeded, nil, []string{EventLoginSucceeded}},
		{EventLoginFailed, nil, []string{EventLoginFailed}},
		{EventUserDisabled, map[string]any{"actor": "a"}, []string{WebhookUserDisabled}},
		{EventUserEnabled, map[string]any{"actor": "a"}, []string{WebhookUserEnabled}},
		{EventUserUpdated, map[string]any{"actor": "a", "email_verified": true}, []string{EventUserUpdated}},
		{EventUserRevoked, nil, []string{EventSessionRevoked}},
		{EventConsentGranted, nil, []string{EventConsentGranted}},
		{EventRefreshReused, nil, nil},
		{EventMFAChallengeSucceeded, nil, nil},
		{EventWebhookEndpointCreated, nil, nil},
	} {
		if got := webhookTypes(&AuditEvent{Type: tc.typ, Details: tc.details}); !slices.Equal(got, tc.want) {
			t.Errorf("webhookTypes(%s %v) = %v, want %v", tc.typ, tc.details, got, tc.want)
		}
	}
	// Every type of the catalogue is a valid subscription.
	for _, typ := range WebhookCatalogue {
		if !validWebhookEvent(typ) {
			t.Errorf("%s is not a valid subscription", typ)
		}
	}
}

// The schedule of SPEC §16 with ±20 % jitter; attempts past its end wait
// the last step.
func TestRetryWait(t *testing.T) {
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	for i, d := range want {
		lo, hi := time.Duration(float64(d)*0.8), time.Duration(float64(d)*1.2)
		seen := map[time.Duration]bool{}
		for range 50 {
			w := retryWait(i + 1)
			if w < lo || w > hi {
				t.Fatalf("retryWait(%d) = %v, want within %v..%v", i+1, w, lo, hi)
			}
			seen[w] = true
		}
		if len(seen) < 10 {
			t.Errorf("retryWait(%d) took %d values in 50 draws: no jitter", i+1, len(seen))
		}
	}
}
