package webhook

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Published test vector of the Standard Webhooks specification.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecMsgID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(t *testing.T, s string) []byte {
	t.Helper()
	k, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return k
}

func TestSignSpecVector(t *testing.T) {
	key := mustSecret(t, vecSecret)
	if got := Sign(key, vecMsgID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("Sign = %q, want %q", got, vecSig)
	}
	h := Headers([][]byte{key}, vecMsgID, time.Unix(vecTS, 0), []byte(vecBody))
	if err := Verify(key, h, []byte(vecBody), time.Minute, time.Unix(vecTS+30, 0)); err != nil {
		t.Fatalf("Verify(spec vector): %v", err)
	}
}

func TestSignMatchesReference(t *testing.T) {
	secret := NewSecret()
	key := mustSecret(t, secret)
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"user.created","timestamp":"2026-12-02T14:05:38Z","data":{"user":{"id":"u1"}}}`)
	ts := time.Unix(1764684338, 0)
	want, err := ref.Sign("msg_01JABCDEF", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(key, "msg_01JABCDEF", ts, body); got != want {
		t.Fatalf("Sign = %q, reference = %q", got, want)
	}
}

func TestOurHeadersVerifyWithReference(t *testing.T) {
	oldSecret, newSecret := NewSecret(), NewSecret()
	keys := [][]byte{mustSecret(t, oldSecret), mustSecret(t, newSecret)}
	body := []byte(`{"type":"password.changed"}`)
	now := time.Now()

	for _, n := range []int{1, 2} {
		h := Headers(keys[:n], "msg_rotation", now, body)
		if entries := strings.Fields(h.Get(HeaderSignature)); len(entries) != n {
			t.Fatalf("%d secrets: signature header has %d entries: %q", n, len(entries), h.Get(HeaderSignature))
		}
		for i, s := range []string{oldSecret, newSecret}[:n] {
			ref, err := standardwebhooks.NewWebhook(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := ref.Verify(body, h); err != nil {
				t.Errorf("%d secrets: reference Verify with secret %d: %v", n, i, err)
			}
			if err := Verify(keys[i], h, body, 0, now); err != nil {
				t.Errorf("%d secrets: Verify with secret %d: %v", n, i, err)
			}
		}
	}
	// A secret that is not in the header is refused by both.
	other := NewSecret()
	h := Headers(keys, "msg_rotation", now, body)
	ref, _ := standardwebhooks.NewWebhook(other)
	if err := ref.Verify(body, h); err == nil {
		t.Error("reference Verify accepted an unrelated secret")
	}
	if err := Verify(mustSecret(t, other), h, body, 0, now); !errors.Is(err, ErrNoMatchingSignature) {
		t.Errorf("Verify with unrelated secret = %v, want ErrNoMatchingSignature", err)
	}
}

func TestReferenceSignatureVerifiesWithOurs(t *testing.T) {
	secret := NewSecret()
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte(`{"type":"webhook.test"}`)
	sig, err := ref.Sign("msg_ref", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_ref")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, "v1,bm90LXRoaXM= "+sig) // a non-matching entry first
	if err := Verify(mustSecret(t, secret), h, body, 5*time.Minute, now); err != nil {
		t.Fatalf("Verify(reference signature): %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	key := mustSecret(t, NewSecret())
	body := []byte(`{"type":"user.deleted"}`)
	ts := time.Unix(1_800_000_000, 0)
	good := Headers([][]byte{key}, "msg_a", ts, body)
	if err := Verify(key, good, body, 5*time.Minute, ts); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	with := func(k, v string) http.Header {
		h := good.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	tol := 5 * time.Minute
	cases := []struct {
		name string
		h    http.Header
		body string
		now  time.Time
		want error
	}{
		{"tampered body", good, `{"type":"user.deleted","x":1}`, ts, ErrNoMatchingSignature},
		{"tampered id", with(HeaderID, "msg_b"), string(body), ts, ErrNoMatchingSignature},
		{"tampered timestamp", with(HeaderTimestamp, strconv.FormatInt(ts.Unix()+1, 10)), string(body), ts, ErrNoMatchingSignature},
		{"too old", good, string(body), ts.Add(tol + time.Second), ErrTimestampTooOld},
		{"too new", good, string(body), ts.Add(-tol - time.Second), ErrTimestampTooNew},
		{"default tolerance applies", good, string(body), ts.Add(DefaultTolerance + time.Second), ErrTimestampTooOld},
		{"missing id", with(HeaderID, ""), string(body), ts, ErrMissingHeaders},
		{"missing timestamp", with(HeaderTimestamp, ""), string(body), ts, ErrMissingHeaders},
		{"missing signature", with(HeaderSignature, ""), string(body), ts, ErrMissingHeaders},
		{"bad timestamp", with(HeaderTimestamp, "yesterday"), string(body), ts, ErrInvalidTimestamp},
		{"wrong version", with(HeaderSignature, "v2,"+strings.TrimPrefix(good.Get(HeaderSignature), "v1,")), string(body), ts, ErrNoMatchingSignature},
		{"garbage signature", with(HeaderSignature, "v1,!!!"), string(body), ts, ErrNoMatchingSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tolerance := tol
			if c.name == "default tolerance applies" {
				tolerance = 0
			}
			if err := Verify(key, c.h, []byte(c.body), tolerance, c.now); !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestHeadersTimestampIsUnixSeconds(t *testing.T) {
	ts := time.Date(2026, 12, 2, 14, 5, 38, 999_000_000, time.UTC)
	h := Headers([][]byte{[]byte("k")}, "msg_x", ts, nil)
	if got := h.Get(HeaderTimestamp); got != strconv.FormatInt(ts.Unix(), 10) {
		t.Fatalf("webhook-timestamp = %q", got)
	}
	if got := h.Get(HeaderID); got != "msg_x" {
		t.Fatalf("webhook-id = %q", got)
	}
}

func TestSecrets(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("NewSecret returned the same secret twice")
	}
	if !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("NewSecret = %q, want whsec_ prefix", a)
	}
	if k := mustSecret(t, a); len(k) != 32 {
		t.Fatalf("secret key has %d bytes, want 32", len(k))
	}
	if _, err := standardwebhooks.NewWebhook(a); err != nil {
		t.Fatalf("reference rejects our secret: %v", err)
	}
	for _, bad := range []string{
		"",
		"whsec_",
		base64.StdEncoding.EncodeToString([]byte("no prefix")),
		"whsec_not base64!",
	} {
		if _, err := ParseSecret(bad); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrInvalidSecret", bad, err)
		}
	}
}
