package redisstore_test

import (
	"context"
	"testing"

	"gatehouse/internal/auth"
	"gatehouse/internal/redisstore"
	"gatehouse/internal/storetest"
)

// Redis keeps one-time tokens and challenges when configured (the SQL
// store does otherwise): the same contracts as the SQL store's.

// tokenStore is a Store as a storetest.TokenBackend: Redis keeps no users,
// so there is nothing to create (and the cascade test skips).
type tokenStore struct{ *redisstore.Store }

func (tokenStore) CreateUser(context.Context, *auth.User) error { return nil }

func TestRedisTokens(t *testing.T) {
	storetest.RunTokens(t, func(t *testing.T) storetest.TokenBackend {
		return tokenStore{openRedis(t)}
	})
}

func TestRedisChallenges(t *testing.T) {
	storetest.RunChallenges(t, func(t *testing.T) auth.ChallengeStore {
		return openRedis(t)
	})
}
