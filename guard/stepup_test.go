package guard_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"gatehouse/guard"
)

const (
	aal2Challenge = `Bearer realm="gatehouse", error="insufficient_user_authentication", ` +
		`error_description="this action requires a sign-in with two factors (aal2)", acr_values="aal2"`
	fresh10mChallenge = `Bearer realm="gatehouse", error="insufficient_user_authentication", ` +
		`error_description="this action requires a sign-in within the last 10 minutes", max_age=600`
)

// checkStepUp asserts a step-up refusal: 401, the exact challenge, and a
// problem body with code step_up_required.
func checkStepUp(t *testing.T, res *httptestResult, wantChallenge string) {
	t.Helper()
	if res.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", res.Code, res.Body)
	}
	if got := res.Header.Get("WWW-Authenticate"); got != wantChallenge {
		t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, wantChallenge)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	if res.Problem["code"] != "step_up_required" || res.Problem["status"] != float64(401) {
		t.Errorf("body %s: want a problem with code step_up_required and status 401", res.Body)
	}
	if d, _ := res.Problem["detail"].(string); d == "" || !strings.Contains(wantChallenge, d) {
		t.Errorf("detail %q is not the error_description of %s", d, wantChallenge)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestRequireAAL2(t *testing.T) {
	h := guard.RequireAAL2()(okHandler())
	tests := []struct {
		name   string
		p      *guard.Principal
		status int
	}{
		{"aal2", &guard.Principal{Subject: "alice", Kind: guard.KindAccessToken, ACR: "aal2", AMR: []string{"pwd", "otp", "mfa"}}, 200},
		{"aal1", &guard.Principal{Subject: "alice", Kind: guard.KindAccessToken, ACR: "aal1", AMR: []string{"pwd"}}, 401},
		{"no acr", &guard.Principal{Subject: "alice", Kind: guard.KindAccessToken}, 401},
		{"amr says mfa but acr is aal1", &guard.Principal{Subject: "alice", ACR: "aal1", AMR: []string{"mfa"}}, 401},
		{"letter case matters", &guard.Principal{Subject: "alice", ACR: "AAL2"}, 401},
		{"API key (no level)", &guard.Principal{Subject: "alice", Kind: guard.KindAPIKey, Scopes: []string{"write"}}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := as(tt.p, h, "POST")
			if tt.status == 200 {
				if res.Code != 200 || res.Body != "alice" {
					t.Fatalf("status %d %s, want 200 alice", res.Code, res.Body)
				}
				return
			}
			checkStepUp(t, res, aal2Challenge)
			if res.Problem["acr_values"] != "aal2" {
				t.Errorf("acr_values member: %s", res.Body)
			}
			if _, ok := res.Problem["max_age"]; ok {
				t.Errorf("RequireAAL2 sets no max_age: %s", res.Body)
			}
		})
	}
	t.Run("no principal (middleware missing)", func(t *testing.T) {
		res := as(nil, h, "POST")
		if res.Code != 401 || res.Header.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` || res.Problem["code"] != nil {
			t.Fatalf("%d %q %s; want a plain 401", res.Code, res.Header.Get("WWW-Authenticate"), res.Body)
		}
	})
}

func TestRequireFreshAuth(t *testing.T) {
	// Without Guard.Middleware in front, the clock is time.Now.
	h := guard.RequireFreshAuth(10 * time.Minute)(okHandler())
	now := time.Now()
	tests := []struct {
		name     string
		authTime time.Time
		status   int
	}{
		{"a minute ago", now.Add(-time.Minute), 200},
		{"9 minutes ago", now.Add(-9 * time.Minute), 200},
		{"11 minutes ago", now.Add(-11 * time.Minute), 401},
		{"yesterday", now.Add(-24 * time.Hour), 401},
		{"unknown (zero)", time.Time{}, 401},
		{"1970 (auth_time 0 misread)", time.Unix(0, 0), 401},
		{"a little in the future (clock skew)", now.Add(2 * time.Second), 200},
		{"an hour in the future", now.Add(time.Hour), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := as(&guard.Principal{Subject: "alice", ACR: "aal2", AuthTime: tt.authTime}, h, "DELETE")
			if tt.status == 200 {
				if res.Code != 200 || res.Body != "alice" {
					t.Fatalf("status %d %s, want 200 alice", res.Code, res.Body)
				}
				return
			}
			checkStepUp(t, res, fresh10mChallenge)
			if res.Problem["max_age"] != float64(600) {
				t.Errorf("max_age member: %s", res.Body)
			}
			if _, ok := res.Problem["acr_values"]; ok {
				t.Errorf("RequireFreshAuth asks for no acr: %s", res.Body)
			}
		})
	}
	t.Run("no principal (middleware missing)", func(t *testing.T) {
		res := as(nil, h, "DELETE")
		if res.Code != 401 || res.Header.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` {
			t.Fatalf("%d %q %s; want a plain 401", res.Code, res.Header.Get("WWW-Authenticate"), res.Body)
		}
	})
	t.Run("max_age and detail follow the duration", func(t *testing.T) {
		for d, want := range map[time.Duration]string{
			90 * time.Second: `error_description="this action requires a sign-in within the last 90 seconds", max_age=90`,
			time.Hour:        `error_description="this action requires a sign-in within the last 1 hour", max_age=3600`,
			time.Minute:      `error_description="this action requires a sign-in within the last 1 minute", max_age=60`,
		} {
			res := as(&guard.Principal{Subject: "alice"}, guard.RequireFreshAuth(d)(okHandler()), "POST")
			if got := res.Header.Get("WWW-Authenticate"); res.Code != 401 || !strings.HasSuffix(got, want) {
				t.Errorf("%v: %d %q, want it to end with %q", d, res.Code, got, want)
			}
		}
	})
	for _, d := range []time.Duration{0, -time.Minute} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RequireFreshAuth(%v) did not panic", d)
				}
			}()
			guard.RequireFreshAuth(d)
		}()
	}
}

// A StepUpError from an Authorize rule is answered as such, not turned
// into the generic 403; WriteError puts both parameters in one challenge.
func TestStepUpErrorFromAuthorize(t *testing.T) {
	load := func(http.ResponseWriter, *http.Request) (string, bool) { return "doc", true }
	rule := func(p *guard.Principal, _ string) error {
		if p.ACR != guard.AAL2 || time.Since(p.AuthTime) > 5*time.Minute {
			return &guard.StepUpError{Detail: "confirm it is you", ACRValues: guard.AAL2, MaxAge: 5 * time.Minute}
		}
		return nil
	}
	h := guard.Authorize(load, rule, func(w http.ResponseWriter, _ *http.Request, doc string) { w.Write([]byte(doc)) })

	res := as(&guard.Principal{Subject: "alice", ACR: "aal1", AuthTime: time.Now()}, h, "DELETE")
	checkStepUp(t, res, `Bearer realm="gatehouse", error="insufficient_user_authentication", error_description="confirm it is you", acr_values="aal2", max_age=300`)
	if res.Problem["acr_values"] != "aal2" || res.Problem["max_age"] != float64(300) {
		t.Errorf("body %s", res.Body)
	}
	if res := as(&guard.Principal{Subject: "alice", ACR: "aal2", AuthTime: time.Now()}, h, "DELETE"); res.Code != 200 || res.Body != "doc" {
		t.Errorf("aal2 and recent: %d %s", res.Code, res.Body)
	}

	var se *guard.StepUpError
	if err := error(&guard.StepUpError{Detail: "x"}); !errors.As(err, &se) || !strings.Contains(err.Error(), "step-up") {
		t.Errorf("Error() = %q", err)
	}
	// A Detail cannot break out of the quoted-string.
	res = as(&guard.Principal{Subject: "alice"}, guard.Authorize(load, func(*guard.Principal, string) error {
		return &guard.StepUpError{Detail: "a \"quoted\"\r\nX-Injected: 1 é", ACRValues: "aal2"}
	}, nil), "POST")
	if got := res.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error_description="a quotedX-Injected: 1 "`) {
		t.Errorf("WWW-Authenticate %q", got)
	}
}

// Claims of an access token reach the Principal, and the step-up
// middlewares use the Guard's clock (Config.Now) behind Middleware.
func TestAccessTokenAssurance(t *testing.T) {
	clock := newClock()
	ed := newKey(t, "k1", "EdDSA")
	f := newFakeGatehouse(t, clock, ed)
	g := newGuard(t, f)
	signedIn := clock.Now().Add(-2 * time.Minute)
	withMFA := func(acr string, amr []string, authTime any) func(map[string]any, jwt.MapClaims) {
		return func(_ map[string]any, c jwt.MapClaims) {
			c["acr"], c["amr"], c["auth_time"] = acr, amr, authTime
		}
	}
	aal2 := sign(t, ed, f.claims("alice"), withMFA("aal2", []string{"pwd", "otp", "mfa"}, signedIn.Unix()))

	var got []*guard.Principal
	for i := range 3 { // verified, then from the cache
		p, err := g.Check(request("GET", bearer(aal2)))
		if err != nil {
			t.Fatal(err)
		}
		if p.ACR != guard.AAL2 || !slices.Equal(p.AMR, []string{"pwd", "otp", "mfa"}) || !p.AuthTime.Equal(signedIn) {
			t.Fatalf("call %d: ACR %q AMR %q AuthTime %v; want aal2 [pwd otp mfa] %v", i, p.ACR, p.AMR, p.AuthTime, signedIn)
		}
		got = append(got, p)
	}
	// Handlers appending to their copies must not write into each other's
	// (or the cache's) array.
	got[1].AMR = append(got[1].AMR, "hwk")
	got[2].AMR = append(got[2].AMR, "sms")
	if got[1].AMR[3] != "hwk" {
		t.Errorf("two cached copies share the AMR array: %q", got[1].AMR)
	}

	t.Run("absent claims", func(t *testing.T) {
		p, err := g.Check(request("GET", bearer(sign(t, ed, f.claims("bob")))))
		if err != nil {
			t.Fatal(err)
		}
		if p.ACR != "" || p.AMR != nil || !p.AuthTime.IsZero() {
			t.Errorf("ACR %q AMR %q AuthTime %v; want empty, nil, zero", p.ACR, p.AMR, p.AuthTime)
		}
	})
	t.Run("auth_time 0 is unknown", func(t *testing.T) {
		p, err := g.Check(request("GET", bearer(sign(t, ed, f.claims("bob"), withMFA("aal1", []string{"pwd"}, 0)))))
		if err != nil {
			t.Fatal(err)
		}
		if !p.AuthTime.IsZero() || p.ACR != "aal1" {
			t.Errorf("ACR %q AuthTime %v; want aal1, zero", p.ACR, p.AuthTime)
		}
	})
	t.Run("a malformed claim refuses the token", func(t *testing.T) {
		_, err := g.Check(request("GET", bearer(sign(t, ed, f.claims("bob"), withMFA("aal2", nil, "yesterday")))))
		if !errors.Is(err, guard.ErrInvalidToken) {
			t.Errorf("auth_time as a string: %v", err)
		}
	})

	t.Run("through Middleware", func(t *testing.T) {
		h := g.Middleware(guard.RequireAAL2()(guard.RequireFreshAuth(5 * time.Minute)(okHandler())))
		get := func(tok string) *httptestResult {
			rec := serve(h, request("GET", bearer(tok)))
			return &httptestResult{Code: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
		}
		if res := get(aal2); res.Code != 200 || res.Body != "alice" {
			t.Fatalf("aal2, signed in 2 minutes ago: %d %s", res.Code, res.Body)
		}
		aal1 := sign(t, ed, f.claims("carol"), withMFA("aal1", []string{"pwd"}, signedIn.Unix()))
		if res := get(aal1); res.Code != 401 || res.Header.Get("WWW-Authenticate") != aal2Challenge {
			t.Errorf("aal1: %d %q", res.Code, res.Header.Get("WWW-Authenticate"))
		}
		clock.Advance(3 * time.Minute) // auth_time exactly 5 minutes ago: still fresh
		if res := get(aal2); res.Code != 200 {
			t.Fatalf("5 minutes: %d %s", res.Code, res.Body)
		}
		clock.Advance(time.Second)
		res := get(aal2)
		want := `Bearer realm="gatehouse", error="insufficient_user_authentication", ` +
			`error_description="this action requires a sign-in within the last 5 minutes", max_age=300`
		if res.Code != 401 || res.Header.Get("WWW-Authenticate") != want {
			t.Errorf("5 minutes 1 second: %d %q", res.Code, res.Header.Get("WWW-Authenticate"))
		}
	})
}

// Introspection answers (sessions) fill ACR, AMR and AuthTime too.
func TestIntrospectionAssurance(t *testing.T) {
	clock := newClock()
	f := newFakeGatehouse(t, clock)
	const (
		session = "c2Vzc2lvbi1pZC1vZi1hbGljZS0wMTIzNDU2Nzg5"
		spaced  = "c2Vzc2lvbi1pZC1vZi1ib2ItMDEyMzQ1Njc4OQ"
		key     = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
	)
	signedIn := clock.Now().Add(-time.Minute)
	f.activate(session, "session", "alice", "read write", "user")
	f.activate(spaced, "session", "bob", "read", "user")
	f.activate(key, "api_key", "alice", "read write", "user")
	f.set(func(f *fakeGatehouse) {
		f.active[session]["acr"], f.active[session]["amr"], f.active[session]["auth_time"] = "aal2", []string{"pwd", "otp"}, signedIn.Unix()
		f.active[spaced]["acr"], f.active[spaced]["amr"], f.active[spaced]["auth_time"] = "aal1", "pwd", 0
		f.active[key]["amr"], f.active[key]["auth_time"] = nil, nil // null members: as absent
	})
	g := newGuard(t, f)
	cookie := func(v string) http.Header { return http.Header{"Cookie": {"gatehouse_session=" + v}} }

	for i := range 2 { // introspected, then from the cache
		p, err := g.Check(request("GET", cookie(session)))
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != guard.KindSession || p.ACR != "aal2" || !slices.Equal(p.AMR, []string{"pwd", "otp"}) || !p.AuthTime.Equal(signedIn) {
			t.Fatalf("call %d: %+v; want aal2 [pwd otp] %v", i, p, signedIn)
		}
		p.AMR = append(p.AMR, "hwk") // must not reach the cached Principal
	}
	if n := f.introHits.Load(); n != 1 {
		t.Errorf("%d introspections, want 1 (cached)", n)
	}

	p, err := g.Check(request("GET", cookie(spaced)))
	if err != nil {
		t.Fatal(err)
	}
	if p.ACR != "aal1" || !slices.Equal(p.AMR, []string{"pwd"}) || !p.AuthTime.IsZero() {
		t.Errorf("amr as a string, auth_time 0: ACR %q AMR %q AuthTime %v", p.ACR, p.AMR, p.AuthTime)
	}

	p, err = g.Check(request("GET", http.Header{"X-Api-Key": {key}}))
	if err != nil {
		t.Fatal(err)
	}
	if p.ACR != "" || p.AMR != nil || !p.AuthTime.IsZero() {
		t.Errorf("API key: ACR %q AMR %q AuthTime %v; want none", p.ACR, p.AMR, p.AuthTime)
	}
	res := serve(g.Middleware(guard.RequireAAL2()(okHandler())), request("GET", http.Header{"X-Api-Key": {key}}))
	if res.Code != 401 || res.Header().Get("WWW-Authenticate") != aal2Challenge {
		t.Errorf("API key on an aal2 route: %d %q", res.Code, res.Header().Get("WWW-Authenticate"))
	}

	t.Run("malformed amr fails closed", func(t *testing.T) {
		const odd = "c2Vzc2lvbi1vZGQtYW1yLTAxMjM0NTY3ODk"
		f.activate(odd, "session", "eve", "read", "user")
		f.set(func(f *fakeGatehouse) { f.active[odd]["amr"] = 42 })
		if _, err := g.Check(request("GET", cookie(odd))); !errors.Is(err, guard.ErrUnavailable) {
			t.Errorf("amr 42: %v", err)
		}
	})
}

// After a step-up refusal, the retry must see the session's new level,
// not the cached introspection answer.
func TestStepUpRefusalDropsCachedIntrospection(t *testing.T) {
	clock := newClock()
	f := newFakeGatehouse(t, clock)
	const session = "c2Vzc2lvbi1pZC1vZi1hbGljZS0wMTIzNDU2Nzg5"
	f.activate(session, "session", "alice", "read write", "user")
	f.set(func(f *fakeGatehouse) {
		f.active[session]["acr"], f.active[session]["auth_time"] = "aal1", clock.Now().Add(-time.Hour).Unix()
	})
	g := newGuard(t, f) // CacheTTL 30 s
	req := func() *http.Request { return request("GET", http.Header{"Cookie": {"gatehouse_session=" + session}}) }
	plain := g.Middleware(okHandler())
	sensitive := g.Middleware(guard.RequireAAL2()(guard.RequireFreshAuth(10 * time.Minute)(okHandler())))

	if rec := serve(plain, req()); rec.Code != 200 {
		t.Fatalf("plain route: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(plain, req()); rec.Code != 200 || f.introHits.Load() != 1 {
		t.Fatalf("plain route again: %d, %d introspections; want the cached answer", rec.Code, f.introHits.Load())
	}
	if rec := serve(sensitive, req()); rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != aal2Challenge {
		t.Fatalf("aal1 on the sensitive route: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	// The user steps up at Gatehouse: the session becomes aal2, signed in now.
	f.set(func(f *fakeGatehouse) {
		f.active[session]["acr"], f.active[session]["auth_time"] = "aal2", clock.Now().Unix()
	})
	clock.Advance(time.Second) // well within CacheTTL
	if rec := serve(sensitive, req()); rec.Code != 200 || rec.Body.String() != "alice" {
		t.Fatalf("retry after step-up: %d %s", rec.Code, rec.Body)
	}
	if n := f.introHits.Load(); n != 2 {
		t.Errorf("%d introspections, want 2 (the refusal dropped the cached answer once)", n)
	}
	if rec := serve(sensitive, req()); rec.Code != 200 || f.introHits.Load() != 2 {
		t.Errorf("passing again: %d, %d introspections; want the cached answer", rec.Code, f.introHits.Load())
	}

	// An API key can never step up: its refusals keep the cached answer.
	const key = "gth_aliceKey0123456789abcdefghijklmnopqrstuvwxyzAB"
	f.activate(key, "api_key", "alice", "read write", "user")
	for i := range 3 {
		if rec := serve(sensitive, request("GET", http.Header{"X-Api-Key": {key}})); rec.Code != 401 {
			t.Fatalf("API key, call %d: %d", i, rec.Code)
		}
	}
	if n := f.introHits.Load(); n != 3 {
		t.Errorf("%d introspections, want 3 (one for the API key)", n)
	}
}
