package guard

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// checkOpaque checks an API key or a session id by asking Gatehouse (RFC
// 7662), through a short cache keyed by a hash of the credential.
//
// It also returns the cache key, for WriteError to drop the entry after a
// step-up refusal.
func (g *Guard) checkOpaque(ctx context.Context, kind, cred string) (*Principal, *introKey, error) {
	if g.cfg.IntrospectionKey == "" {
		return nil, nil, invalid(kind + " sent, but no IntrospectionKey is configured to check it")
	}
	if !plausible(kind, cred) {
		return nil, nil, invalid("malformed " + kind) // never sent to Gatehouse
	}
	// The cache key is a hash: a memory dump does not reveal credentials.
	// It is the SHA-256 of the credential alone, the hash Gatehouse's
	// credential.revoked events name; the kind sits beside it, so an
	// answer about a cookie is never reused for an API key.
	h := introKey{sum: sha256.Sum256([]byte(cred)), kind: kindCode(kind)}
	if g.cfg.CacheTTL > 0 {
		if p, ok := g.intro.get(h, g.now()); ok {
			if p == nil {
				return nil, nil, invalid(kind + " refused by introspection (cached)")
			}
			return p.clone(), &h, nil
		}
	}
	p, err := g.flight.do(h, func() (*Principal, error) {
		gen := g.introGen.Load()
		p, err := g.introspect(ctx, kind, cred)
		if err != nil {
			return nil, err // not cached: the next request asks again
		}
		if g.cfg.CacheTTL > 0 && g.introGen.Load() == gen {
			now := g.now()
			if p == nil {
				// Refusals are cached too, briefly, so a flood of one bad
				// credential costs Gatehouse one call every few seconds.
				g.intro.put(h, nil, now.Add(min(negativeCacheTTL, g.cfg.CacheTTL)), now)
			} else {
				until := now.Add(g.cfg.CacheTTL)
				if !p.ExpiresAt.IsZero() && p.ExpiresAt.Before(until) {
					until = p.ExpiresAt
				}
				g.intro.put(h, p, until, now)
			}
		}
		return p, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if p == nil {
		return nil, nil, invalid(kind + " refused by introspection")
	}
	return p.clone(), &h, nil
}

// introKey is the key of the introspection cache: the SHA-256 of the
// credential and its kind.
type introKey struct {
	sum  [32]byte
	kind uint8
}

const (
	codeAPIKey uint8 = iota + 1
	codeSession
	codeAccessToken
)

func kindCode(kind string) uint8 {
	switch kind {
	case KindAPIKey:
		return codeAPIKey
	case KindSession:
		return codeSession
	}
	return codeAccessToken
}

// plausible refuses, without asking anyone, what cannot be a Gatehouse
// credential of that kind.
func plausible(kind, cred string) bool {
	if len(cred) > 512 {
		return false
	}
	for i := 0; i < len(cred); i++ {
		c := cred[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	if kind == KindAPIKey {
		return strings.HasPrefix(cred, "gth_")
	}
	return len(cred) >= 16
}

type introspection struct {
	Active    bool     `json:"active"`
	TokenType string   `json:"token_type"`
	Sub       string   `json:"sub"`
	Scope     string   `json:"scope"`
	Exp       int64    `json:"exp"`
	Username  string   `json:"username"`
	Roles     []string `json:"roles"`
	Iss       string   `json:"iss"`
	ClientID  string   `json:"client_id"`
	// How and when the user signed in (sessions; access tokens): the
	// members of the same name in an access token.
	ACR      string  `json:"acr"`
	AMR      amrList `json:"amr"`
	AuthTime int64   `json:"auth_time"`
}

// amrList is the amr member: a JSON array of strings, as in an access
// token, or one space-separated string (RFC 7662 leaves it open).
type amrList []string

func (l *amrList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*l = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = strings.Fields(s)
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("amr: %w", err)
	}
	*l = a
	return nil
}

// introspect asks Gatehouse about cred. It returns nil, nil when the
// credential is refused, and an error when no answer could be had.
func (g *Guard) introspect(ctx context.Context, kind, cred string) (*Principal, error) {
	// Shared by every request waiting on this credential: detached from
	// the one that started it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.IntrospectURL,
		strings.NewReader(url.Values{"token": {cred}}.Encode()))
	if err != nil {
		return nil, g.unavailable(ctx, "introspect", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-API-Key", g.cfg.IntrospectionKey)
	res, err := g.client.Do(req)
	if err != nil {
		return nil, g.unavailable(ctx, "introspect", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		// 401/403 mean the IntrospectionKey itself is refused: the
		// operator must fix it, and until then nothing passes.
		return nil, g.unavailable(ctx, "introspect", fmt.Errorf("POST %s: status %d", g.cfg.IntrospectURL, res.StatusCode))
	}
	var in introspection
	if err := json.NewDecoder(io.LimitReader(res.Body, maxBody)).Decode(&in); err != nil {
		return nil, g.unavailable(ctx, "introspect", fmt.Errorf("POST %s: bad answer: %v", g.cfg.IntrospectURL, err))
	}
	switch {
	case !in.Active:
		return nil, nil
	case in.TokenType != kind:
		// A refresh token or access token sent as a cookie, say: active,
		// but not the credential this channel carries.
		return nil, nil
	case in.Sub == "":
		return nil, nil
	case in.Iss != "" && strings.TrimRight(in.Iss, "/") != g.cfg.Issuer:
		return nil, nil
	}
	p := &Principal{Subject: in.Sub, Kind: kind, Scopes: strings.Fields(in.Scope), Roles: in.Roles,
		Email: in.Username, ClientID: in.ClientID, ACR: in.ACR, AMR: in.AMR, AuthTime: unixTime(in.AuthTime)}
	if in.Exp != 0 {
		p.ExpiresAt = time.Unix(in.Exp, 0)
		if !g.now().Before(p.ExpiresAt) {
			return nil, nil
		}
	}
	return p, nil
}
