// Package redisstore keeps the state that must be shared by every node and
// changes on almost every request in Redis (or Valkey): cookie sessions,
// rate-limit counters (go-redis/redis_rate, GCRA), login lockouts, one-time
// tokens and ceremony challenges. It
// implements the same auth interfaces as the SQL store and passes the same
// contract suite (internal/storetest).
//
// When Redis is unreachable every call fails, so requests that need it fail
// closed (the server answers 503) and /readyz turns red; go-redis reconnects
// by itself when Redis comes back.
//
// A Store is safe for concurrent use.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"gatehouse/internal/auth"
	"gatehouse/internal/revfeed"
)

// Store is the Redis backend.
type Store struct {
	rdb    *redis.Client
	rl     *redis_rate.Limiter
	prefix string
	// sink records the revocation events of deleted sessions (SPEC §15);
	// nil records nothing.
	sink atomic.Pointer[func(context.Context, []revfeed.Event) error]
}

// SetRevocationSink sets where the revocation events of the sessions this
// store deletes are recorded (the SQL database's revocation_events).
// Redis and SQL share no transaction, so the events are recorded first:
// a failure to record them leaves the session alive (the delete fails),
// never a revocation without its event.
func (s *Store) SetRevocationSink(f func(context.Context, []revfeed.Event) error) {
	if f == nil {
		s.sink.Store(nil)
		return
	}
	s.sink.Store(&f)
}

var (
	_ auth.SessionStore = (*Store)(nil)
	_ auth.RateLimiter  = (*Store)(nil)
	_ auth.LockoutStore = (*Store)(nil)
)

// Options tune a Store.
type Options struct {
	// Prefix starts every key (default "gatehouse:"); tests use a random one.
	// Except the rate-limit counters: redis_rate puts its fixed "rate:"
	// before the key it is given, so they are "rate:" + Prefix + "rl:…"
	// (mind it in a Redis ACL key pattern).
	Prefix string
}

// Open connects to the Redis named by a redis:// or rediss:// URL and
// checks that it answers.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("redisstore: invalid Redis URL")
	}
	// Short timeouts: a request must fail fast (503), not hang, when Redis
	// is gone.
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	if o.Prefix == "" {
		o.Prefix = "gatehouse:"
	}
	rdb := redis.NewClient(opt)
	s := &Store{rdb: rdb, rl: redis_rate.NewLimiter(rdb), prefix: o.Prefix}
	if err := s.Ping(ctx); err != nil {
		rdb.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.rdb.Close() }

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

func parseTS(v string) time.Time {
	n, _ := strconv.ParseInt(v, 10, 64)
	return time.UnixMicro(n).UTC()
}

// ---------------------------------------------------------------------------
// Sessions. Keys:
//   s:<hash>      hash with the session's fields, expiring at its absolute end
//   sid:<id>      the token hash of session id, same expiry
//   us:<user id>  set of the user's session ids

func (s *Store) kSess(hash string) string { return s.prefix + "s:" + hash }
func (s *Store) kSID(id string) string    { return s.prefix + "sid:" + id }
func (s *Store) kUser(uid string) string  { return s.prefix + "us:" + uid }

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, x *auth.Session) error {
	ttl := time.Until(x.ExpiresAt)
	if ttl <= 0 {
		ttl = time.Second
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.kSess(x.Hash), map[string]any{
			"id": x.ID, "user_id": x.UserID, "created_at": ms(x.CreatedAt), "last_seen_at": ms(x.LastSeenAt),
			"expires_at": ms(x.ExpiresAt), "ip": x.IP, "user_agent": x.UserAgent,
			"acr": acrOrDefault(x.ACR), "amr": auth.JoinAMR(x.AMR), "auth_time": authTS(x.AuthTime),
		})
		p.PExpire(ctx, s.kSess(x.Hash), ttl)
		p.Set(ctx, s.kSID(x.ID), x.Hash, ttl)
		p.SAdd(ctx, s.kUser(x.UserID), x.ID)
		p.Expire(ctx, s.kUser(x.UserID), 400*24*time.Hour)
		return nil
	})
	return err
}

func sessionFrom(hash string, m map[string]string) (*auth.Session, error) {
	if len(m) == 0 || m["id"] == "" {
		return nil, auth.ErrNotFound
	}
	x := &auth.Session{ID: m["id"], UserID: m["user_id"], Hash: hash, CreatedAt: parseTS(m["created_at"]),
		LastSeenAt: parseTS(m["last_seen_at"]), ExpiresAt: parseTS(m["expires_at"]), IP: m["ip"], UserAgent: m["user_agent"],
		ACR: acrOrDefault(m["acr"]), AMR: auth.SplitAMR(m["amr"]), AuthTime: parseTS(m["auth_time"])}
	// A session stored before the authentication level was (or without an
	// authentication time) was signed in to when it was created.
	if m["auth_time"] == "" || m["auth_time"] == "0" {
		x.AuthTime = x.CreatedAt
	}
	return x, nil
}

// acrOrDefault is the level a session is stored with: none given (or a
// session stored before levels were) is one factor, like the SQL store's.
func acrOrDefault(acr string) string {
	if acr == "" {
		return auth.ACR1
	}
	return acr
}

// authTS is an authentication time as stored: "0" for the zero time,
// which reads back as the creation time.
func authTS(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return ms(t)
}

// SessionByHash returns a session by token hash.
func (s *Store) SessionByHash(ctx context.Context, hash string) (*auth.Session, error) {
	m, err := s.rdb.HGetAll(ctx, s.kSess(hash)).Result()
	if err != nil {
		return nil, err
	}
	return sessionFrom(hash, m)
}

// TouchSession records use (only while the session still exists).
func (s *Store) TouchSession(ctx context.Context, x *auth.Session, t time.Time) error {
	// HSET on a missing key would resurrect a revoked session without an
	// expiry: only update an existing one.
	return touchScript.Run(ctx, s.rdb, []string{s.kSess(x.Hash)}, ms(t)).Err()
}

var touchScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1])
end
return 0`)

// ElevateSession records a step-up on a live session (only while it still
// exists, like TouchSession; its expiry stays) and updates x.
func (s *Store) ElevateSession(ctx context.Context, x *auth.Session, acr string, amr []string, authTime time.Time) error {
	acr = acrOrDefault(acr)
	// By id and owner (the caller knows the session by its id, as the
	// principal carries it), only while the session exists.
	n, err := elevateScript.Run(ctx, s.rdb, []string{s.kSID(x.ID)}, acr, auth.JoinAMR(amr), authTS(authTime), x.UserID, s.prefix+"s:").Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return auth.ErrNotFound
	}
	x.ACR, x.AMR, x.AuthTime = acr, slices.Clone(amr), authTime
	if authTime.IsZero() {
		x.AuthTime = x.CreatedAt
	}
	return nil
}

var elevateScript = redis.NewScript(`
local hash = redis.call('GET', KEYS[1])
if not hash then return 0 end
local skey = ARGV[5] .. hash
if redis.call('EXISTS', skey) == 0 then return 0 end
if redis.call('HGET', skey, 'user_id') ~= ARGV[4] then return 0 end
redis.call('HSET', skey, 'acr', ARGV[1], 'amr', ARGV[2], 'auth_time', ARGV[3])
return 1`)

// ListSessions returns the user's sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]*auth.Session, error) {
	ids, err := s.rdb.SMembers(ctx, s.kUser(userID)).Result()
	if err != nil {
		return nil, err
	}
	var out []*auth.Session
	for _, id := range ids {
		hash, err := s.rdb.Get(ctx, s.kSID(id)).Result()
		if errors.Is(err, redis.Nil) {
			s.rdb.SRem(ctx, s.kUser(userID), id)
			continue
		}
		if err != nil {
			return nil, err
		}
		x, err := s.SessionByHash(ctx, hash)
		if errors.Is(err, auth.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if x.UserID == userID {
			out = append(out, x)
		}
	}
	// Newest first, ties by id.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (out[j].CreatedAt.After(out[j-1].CreatedAt) ||
			(out[j].CreatedAt.Equal(out[j-1].CreatedAt) && out[j].ID < out[j-1].ID)); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// deleteScript removes a session by id if it belongs to the user; it
// returns 1 when it did.
var deleteScript = redis.NewScript(`
local hash = redis.call('GET', KEYS[1])
if not hash then
  redis.call('SREM', KEYS[2], ARGV[2])
  return 0
end
local skey = ARGV[3] .. hash
if redis.call('HGET', skey, 'user_id') ~= ARGV[1] then return 0 end
redis.call('DEL', skey, KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1`)

// DeleteSession removes one of the user's sessions.
func (s *Store) DeleteSession(ctx context.Context, userID, id string) error {
	if f := s.sink.Load(); f != nil {
		hash, err := s.rdb.Get(ctx, s.kSID(id)).Result()
		if errors.Is(err, redis.Nil) {
			return auth.ErrNotFound
		}
		if err != nil {
			return err
		}
		if owner, err := s.rdb.HGet(ctx, s.kSess(hash), "user_id").Result(); err != nil || owner != userID {
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			return auth.ErrNotFound
		}
		now := time.Now()
		if err := (*f)(ctx, []revfeed.Event{
			{Type: revfeed.TypeSessionRevoked, At: now, SID: id},
			{Type: revfeed.TypeCredentialRevoked, At: now, Kind: revfeed.KindSession, SHA256: hash},
		}); err != nil {
			return err
		}
	}
	n, err := deleteScript.Run(ctx, s.rdb, []string{s.kSID(id), s.kUser(userID)}, userID, id, s.prefix+"s:").Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// DeleteUserSessions removes every session of the user but exceptID.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, exceptID string) error {
	ids, err := s.rdb.SMembers(ctx, s.kUser(userID)).Result()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == exceptID {
			continue
		}
		if err := s.DeleteSession(ctx, userID, id); err != nil && !errors.Is(err, auth.ErrNotFound) {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Rate limits: redis_rate's GCRA, shared by every node.

// Allow counts one hit against key: at most limit hits per window.
func (s *Store) Allow(ctx context.Context, key string, limit int, window time.Duration, _ time.Time) (auth.Decision, error) {
	res, err := s.rl.Allow(ctx, s.prefix+"rl:"+key, redis_rate.Limit{Rate: limit, Burst: limit, Period: window})
	if err != nil {
		return auth.Decision{}, err
	}
	if res.Allowed > 0 {
		return auth.Decision{Allowed: true}, nil
	}
	// The first denial of a burst is audited once: a marker lives until
	// the limit would allow a hit again.
	first, err := s.rdb.SetNX(ctx, s.prefix+"rld:"+key, 1, max(res.RetryAfter, time.Second)).Result()
	if err != nil {
		return auth.Decision{}, err
	}
	return auth.Decision{RetryAfter: res.RetryAfter, FirstDenial: first}, nil
}

// ---------------------------------------------------------------------------
// Lockout.

// lockScript counts an attempt atomically; see auth.LockoutStore. It
// returns {milliseconds still locked, 1 if this call locked}.
var lockScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local lockfor = tonumber(ARGV[3])
local untilv = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if untilv > now then return {untilv - now, 0} end
local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if f > threshold then
  redis.call('HSET', KEYS[1], 'failures', 0, 'until', now + lockfor)
  redis.call('PEXPIRE', KEYS[1], lockfor + 86400000)
  return {lockfor, 1}
end
redis.call('PEXPIRE', KEYS[1], 86400000)
return {0, 0}`)

// BeginAttempt counts a login attempt before its password is checked.
func (s *Store) BeginAttempt(ctx context.Context, key string, threshold int, lockFor time.Duration, now time.Time) (time.Duration, bool, error) {
	v, err := lockScript.Run(ctx, s.rdb, []string{s.prefix + "lock:" + key}, now.UnixMilli(), threshold, lockFor.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, false, err
	}
	return time.Duration(v[0]) * time.Millisecond, v[1] == 1, nil
}

// ClearFailures resets the count and lifts any lock.
func (s *Store) ClearFailures(ctx context.Context, key string) error {
	return s.rdb.Del(ctx, s.prefix+"lock:"+key).Err()
}

// LockoutState reads a lockout counter without counting an attempt (the
// admin console's user page).
func (s *Store) LockoutState(ctx context.Context, key string) (auth.LockoutState, error) {
	v, err := s.rdb.HMGet(ctx, s.prefix+"lock:"+key, "failures", "until").Result()
	if err != nil {
		return auth.LockoutState{}, err
	}
	num := func(x any) int64 {
		str, _ := x.(string)
		n, _ := strconv.ParseInt(str, 10, 64)
		return n
	}
	st := auth.LockoutState{Failures: int(num(v[0]))}
	if until := num(v[1]); until > 0 {
		st.LockedUntil = time.UnixMilli(until).UTC()
	}
	return st, nil
}

// ---------------------------------------------------------------------------
// One-time tokens. Keys:
//   t:<hash>               hash with the token's fields, expiring with it
//   tu:<user>:<purpose>    the hash of the user's live token of that purpose

var _ auth.TokenStore = (*Store)(nil)

// putTokenScript stores a token and deletes the user's previous one of the
// same purpose, atomically.
var putTokenScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[2])
if prev then redis.call('DEL', ARGV[1] .. prev) end
redis.call('HSET', KEYS[1], 'user_id', ARGV[2], 'purpose', ARGV[3], 'email', ARGV[4], 'created_at', ARGV[5], 'expires_at', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SET', KEYS[2], ARGV[8], 'PX', ARGV[7])
return 1`)

// PutToken stores t, superseding the user's older token of that purpose.
func (s *Store) PutToken(ctx context.Context, t *auth.OneTimeToken) error {
	ttl := time.Until(t.ExpiresAt).Milliseconds()
	if ttl < 1 {
		ttl = 1
	}
	return putTokenScript.Run(ctx, s.rdb, []string{s.prefix + "t:" + t.Hash, s.prefix + "tu:" + t.UserID + ":" + t.Purpose},
		s.prefix+"t:", t.UserID, t.Purpose, t.Email, ms(t.CreatedAt), ms(t.ExpiresAt), ttl, t.Hash).Err()
}

func tokenFrom(hash string, m map[string]string, purpose string, now time.Time) (*auth.OneTimeToken, error) {
	if len(m) == 0 || m["purpose"] != purpose {
		return nil, auth.ErrNotFound
	}
	t := &auth.OneTimeToken{Hash: hash, UserID: m["user_id"], Purpose: m["purpose"], Email: m["email"],
		CreatedAt: parseTS(m["created_at"]), ExpiresAt: parseTS(m["expires_at"])}
	if !now.Before(t.ExpiresAt) {
		return nil, auth.ErrNotFound
	}
	return t, nil
}

// PeekToken returns a live token without using it.
func (s *Store) PeekToken(ctx context.Context, hash, purpose string, now time.Time) (*auth.OneTimeToken, error) {
	m, err := s.rdb.HGetAll(ctx, s.prefix+"t:"+hash).Result()
	if err != nil {
		return nil, err
	}
	return tokenFrom(hash, m, purpose, now)
}

// consumeScript reads and deletes a token in one step: of concurrent
// redemptions exactly one gets its fields.
var consumeScript = redis.NewScript(`
local v = redis.call('HGETALL', KEYS[1])
if #v == 0 then return v end
local purpose
for i = 1, #v, 2 do if v[i] == 'purpose' then purpose = v[i+1] end end
if purpose ~= ARGV[1] then return {} end
redis.call('DEL', KEYS[1])
return v`)

// ConsumeToken uses a live token atomically.
func (s *Store) ConsumeToken(ctx context.Context, hash, purpose string, now time.Time) (*auth.OneTimeToken, error) {
	v, err := consumeScript.Run(ctx, s.rdb, []string{s.prefix + "t:" + hash}, purpose).StringSlice()
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		m[v[i]] = v[i+1]
	}
	return tokenFrom(hash, m, purpose, now)
}

// ---------------------------------------------------------------------------
// Challenges. Key ch2:<key>: a hash of the value (v) and its expiry (e,
// Unix microseconds), the key expiring at the same time. TakeChallenge reads
// and deletes it in one MULTI, so a challenge is taken once, and checks the
// expiry against the now it is passed, as ConsumeToken does. (The first
// format, ch:<key>, held the bare value and expired by its TTL alone, so a
// challenge was live until Redis's clock said otherwise, whatever now the
// caller passed; such keys are no longer read and expire within minutes.)

var _ auth.ChallengeStore = (*Store)(nil)

func (s *Store) kChallenge(key string) string { return s.prefix + "ch2:" + key }

// PutChallenge stores a challenge until expires.
func (s *Store) PutChallenge(ctx context.Context, key string, value []byte, expires time.Time) error {
	ttl := time.Until(expires)
	if ttl <= 0 {
		ttl = time.Millisecond
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.kChallenge(key), "v", value, "e", ms(expires))
		p.PExpire(ctx, s.kChallenge(key), ttl)
		return nil
	})
	return err
}

// TakeChallenge returns and deletes a challenge live at now.
func (s *Store) TakeChallenge(ctx context.Context, key string, now time.Time) ([]byte, error) {
	var get *redis.SliceCmd
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.HMGet(ctx, s.kChallenge(key), "v", "e")
		p.Del(ctx, s.kChallenge(key))
		return nil
	}); err != nil {
		return nil, err
	}
	f := get.Val()
	v, ok := f[0].(string)
	e, ok2 := f[1].(string)
	if !ok || !ok2 || !now.Before(parseTS(e)) {
		return nil, auth.ErrNotFound
	}
	return []byte(v), nil
}

// Name is "Redis", for the admin console's health panel.
func (s *Store) Name() string { return "Redis" }
