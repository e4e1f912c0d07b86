package cli

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/auth"
)

// benchTOTP is an authenticator app: the RFC 6238 code of a base32 secret.
func benchTOTP(b *testing.B, secret string, step int64) string {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		b.Fatal(err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	return fmt.Sprintf("%06d", v%1_000_000)
}

// BenchmarkMFAGrant is the second step of a sign-in at the token endpoint
// (grant_type=urn:gatehouse:grant-type:mfa with a TOTP code) through the
// whole handler chain, with the same parallelism as BenchmarkPasswordGrant:
// the step never hashes a password (SPEC §13), so it should run at least
// ten times the password grant's rate.
//
// A TOTP step works once per authenticator, so every iteration has its own
// account: b.N accounts with a confirmed authenticator and an open
// challenge are made before the timer starts (the accounts share one
// precomputed password hash; their challenges are stored directly, as the
// password step would store them).
func BenchmarkMFAGrant(b *testing.B) {
	srv, a := benchApp(b)
	ctx := context.Background()
	src, err := a.db.UserByEmail(ctx, "bench@example.com")
	if err != nil {
		b.Fatal(err)
	}
	type job struct{ form string }
	jobs := make(chan job, b.N)
	now := time.Now()
	for i := range b.N {
		u := &auth.User{ID: auth.NewID(), Email: fmt.Sprintf("mfa%d-%d@example.com", i, now.UnixNano()), EmailVerified: true,
			PasswordHash: src.PasswordHash, Roles: src.Roles, CreatedAt: now, UpdatedAt: now}
		if err := a.db.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		p := &auth.Principal{UserID: u.ID, Kind: auth.KindSession, Scopes: a.auth.KeyScopes(u), Roles: u.Roles, ACR: auth.ACR1, AuthTime: time.Now()}
		e, err := a.auth.BeginTOTP(ctx, p, auth.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		step := auth.TOTPStep(time.Now())
		if _, err := a.auth.ConfirmTOTP(ctx, p, e.ID, benchTOTP(b, e.Secret, step), auth.Meta{}); err != nil {
			b.Fatal(err)
		}
		tok := auth.MFATokenPrefix + fmt.Sprintf("%043d", i)
		if err := a.db.CreateMFAChallenge(ctx, &auth.MFAChallenge{Hash: auth.HashToken(tok), UserID: u.ID, AMR: []string{auth.AMRPassword},
			AuthTime: time.Now(), Finish: auth.FinishTokens, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		// The step after the confirmation's: accepted with the default
		// skew of one step.
		jobs <- job{url.Values{"grant_type": {auth.GrantTypeMFA}, "mfa_token": {tok}, "otp": {benchTOTP(b, e.Secret, step+1)}}.Encode()}
	}
	close(jobs)
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := <-jobs
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(j.form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}
