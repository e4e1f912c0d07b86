package auth

import (
	"context"
	"slices"
	"sync"
	"time"
)

// userCacheTTL bounds how stale a cached account may be. Only requests
// authenticated by an access token read through the cache: a JWT may lag a
// role change or a disable until it expires anyway (SPEC §6), so a second of
// staleness on another node changes nothing, while sessions and API keys,
// which must see such changes on the next request, always read the store.
const userCacheTTL = time.Second

const userCacheMax = 100_000

type userCache struct {
	mu sync.RWMutex
	m  map[string]userCacheEntry
	// mfa caches MFAEnabled answers the same way: GET /v1/me shows the
	// flag on every call, and a query per request for it would cost more
	// than the rest of the request.
	mfa map[string]mfaCacheEntry
}

type mfaCacheEntry struct {
	on bool
	at time.Time
}

func (c *userCache) getMFA(id string, now time.Time) (on, ok bool) {
	c.mu.RLock()
	e, ok := c.mfa[id]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) > userCacheTTL || now.Before(e.at) {
		return false, false
	}
	return e.on, true
}

func (c *userCache) putMFA(id string, on bool, now time.Time) {
	c.mu.Lock()
	if c.mfa == nil || len(c.mfa) >= userCacheMax {
		c.mfa = make(map[string]mfaCacheEntry)
	}
	c.mfa[id] = mfaCacheEntry{on: on, at: now}
	c.mu.Unlock()
}

type userCacheEntry struct {
	u  User
	at time.Time
}

func (c *userCache) get(id string, now time.Time) (*User, bool) {
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) > userCacheTTL || now.Before(e.at) {
		return nil, false
	}
	u := e.u
	u.Roles = slices.Clone(e.u.Roles) // callers must not share the cached slice
	return &u, true
}

func (c *userCache) put(u *User, now time.Time) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= userCacheMax {
		c.m = make(map[string]userCacheEntry)
	}
	e := userCacheEntry{u: *u, at: now}
	e.u.Roles = slices.Clone(u.Roles)
	c.m[u.ID] = e
	c.mu.Unlock()
}

func (c *userCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	delete(c.mfa, id)
	c.mu.Unlock()
}

// TokenUser returns the account behind a verified access token, from a
// cache at most userCacheTTL old; writes through this Service invalidate it.
func (s *Service) TokenUser(ctx context.Context, id string) (*User, error) {
	now := s.now()
	if u, ok := s.users.get(id, now); ok {
		return u, nil
	}
	u, err := s.st.Users.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.users.put(u, now)
	return u, nil
}
