package revfeed

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxEntries bounds a Set: about 120 MB at most (~120 bytes a revocation). Past it the oldest
// revocations are forgotten first (they are the first to expire anyway).
// The feed's snapshot is one access-token lifetime of revocations, far
// fewer in any real deployment.
const maxEntries = 1 << 20

// Claims are what Set.Revoked looks at in an access token.
type Claims struct {
	SID      string    // sid: the refresh family or session the token came from
	Sub      string    // sub
	ClientID string    // client_id
	KID      string    // kid of the header: the key that signed it
	IssuedAt time.Time // iat; zero counts as older than any not_before
}

// Reasons Set.Revoked gives.
const (
	ReasonSession = "session revoked"
	ReasonSubject = "subject revoked"
	ReasonClient  = "client revoked"
	ReasonKey     = "signing key revoked"
)

// Set is the in-memory state of the revocation feed: revoked sids and kids,
// and per-subject and per-client not_before times. Apply feeds it events;
// Revoked is asked on every request.
//
// Revoked takes a read lock once, and nothing at all while the Set is
// empty; writers hold the lock for one event at a time (and, rarely, to
// shrink the maps). The maps hold their entries by value, so that the
// garbage collector has one object per revocation to mark, the key's
// bytes: 10,000 revocations are about 1.2 MB and 10,000 objects. A Set is
// safe for concurrent use; set OnCredential and Now before sharing it.
type Set struct {
	// OnCredential, when set, is called for every credential.revoked event
	// with its Kind and SHA256 (guard evicts its introspection cache entry).
	// The Set keeps nothing for such events. It is called without locks
	// held, from the goroutine calling Apply.
	OnCredential func(kind, sha256 string)
	// Now is the clock entries expire by. Default time.Now.
	Now func() time.Time

	retain time.Duration
	max    int

	n atomic.Int64 // entries in the four maps: Revoked skips the lock at 0

	mu       sync.RWMutex
	tables   [4]map[string]entry // guarded by mu; indexed by kind
	earliest int64               // guarded by mu: no entry expires before (Unix ns)
	lastScan int64               // guarded by mu: when Apply last pruned (Unix ns)
	peak     int64               // guarded by mu: the most entries since the maps were made
}

type entry struct {
	notBefore int64 // Unix seconds; subjects and clients only
	expires   int64 // Unix nanoseconds
}

// kind of revocation, the map an entry sits in.
type kind uint8

const (
	kindSID kind = iota
	kindSub
	kindClient
	kindKID
)

// pruneEvery spaces the prunes Apply makes: an entry may outlive its
// retention by that much, never be dropped before it.
const pruneEvery = 10 * time.Second

// NewSet returns an empty Set that keeps each revocation for retain after
// its event's At: at least the access-token lifetime, so that no token a
// revocation applies to outlives it (Gatehouse keeps events for the
// lifetime + 5 minutes).
func NewSet(retain time.Duration) *Set {
	s := &Set{retain: retain, max: maxEntries, earliest: math.MaxInt64}
	for k := range s.tables {
		s.tables[k] = make(map[string]entry)
	}
	return s
}

func (s *Set) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Apply records ev. Applying an event twice, or an older event after a
// newer one, changes nothing: not_before times only move forward. Events
// of unknown types, or without the field their type needs, are ignored;
// so are events already older than the retention.
func (s *Set) Apply(ev Event) {
	now := s.now()
	if ev.Type == TypeCredentialRevoked {
		if s.OnCredential != nil && ev.SHA256 != "" {
			s.OnCredential(ev.Kind, ev.SHA256)
		}
		return
	}
	at := ev.At
	if at.IsZero() {
		at = now
	}
	expires := at.Add(s.retain).UnixNano()
	var (
		k         kind
		key       string
		notBefore int64
	)
	switch ev.Type {
	case TypeSessionRevoked:
		k, key = kindSID, ev.SID
	case TypeKeyRevoked:
		k, key = kindKID, ev.KID
	case TypeSubjectRevoked, TypeClientRevoked:
		k, key, notBefore = kindSub, ev.Sub, ev.NotBefore
		if ev.Type == TypeClientRevoked {
			k, key = kindClient, ev.ClientID
		}
		if notBefore <= 0 {
			// Not sent: every token issued before the revocation is dead.
			notBefore = at.Unix()
		}
	default:
		return
	}
	nowNS := now.UnixNano()
	if key == "" || expires <= nowNS {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if nowNS >= s.earliest && nowNS-s.lastScan >= int64(pruneEvery) {
		s.pruneLocked(nowNS)
		s.lastScan = nowNS
	}
	m := s.tables[k]
	old, ok := m[key]
	if ok && notBefore <= old.notBefore && expires <= old.expires {
		return // nothing new: a replayed or older event
	}
	m[key] = entry{notBefore: max(old.notBefore, notBefore), expires: max(old.expires, expires)}
	s.earliest = min(s.earliest, expires)
	if ok {
		return
	}
	s.peak = max(s.peak, s.n.Add(1))
	if s.n.Load() > int64(s.max) {
		s.dropOldestLocked()
	}
}

// Revoked reports whether an access token with claims c is revoked, and
// why: its sid is revoked, it was issued before its subject's or its
// client's not_before, or the key that signed it is revoked.
func (s *Set) Revoked(c Claims) (reason string, revoked bool) {
	if s.n.Load() == 0 {
		return "", false
	}
	iat := c.IssuedAt.Unix()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.tables[kindSID][c.SID]; ok && c.SID != "" {
		return ReasonSession, true
	}
	if e, ok := s.tables[kindSub][c.Sub]; ok && iat < e.notBefore {
		return ReasonSubject, true
	}
	if e, ok := s.tables[kindClient][c.ClientID]; ok && iat < e.notBefore {
		return ReasonClient, true
	}
	if _, ok := s.tables[kindKID][c.KID]; ok && c.KID != "" {
		return ReasonKey, true
	}
	return "", false
}

// SubjectNotBefore returns sub's not_before (Unix seconds), 0 when it has
// none: a token for sub issued before it would be born revoked.
func (s *Set) SubjectNotBefore(sub string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tables[kindSub][sub].notBefore
}

// Len is the number of revocations held.
func (s *Set) Len() int { return int(s.n.Load()) }

// Prune drops the revocations that expired at now, and returns how many.
// Apply prunes too (every 10 seconds at most), so that a Set fed
// regularly needs no other call.
func (s *Set) Prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pruneLocked(now.UnixNano())
}

// pruneLocked deletes the entries expired at now: a scan of the maps,
// skipped while nothing can have expired.
func (s *Set) pruneLocked(now int64) int {
	if now < s.earliest {
		return 0
	}
	dropped := 0
	s.earliest = math.MaxInt64
	for _, m := range s.tables {
		for key, e := range m {
			if e.expires <= now {
				delete(m, key)
				dropped++
			} else {
				s.earliest = min(s.earliest, e.expires)
			}
		}
	}
	s.n.Add(-int64(dropped))
	s.shrinkLocked()
	return dropped
}

// dropOldestLocked makes room when the Set is full: it forgets the tenth
// of the revocations that expire first. They are the oldest, the first to
// expire anyway, but the tokens they name may still be alive: a Set this
// full is a deployment larger than maxEntries was sized for.
func (s *Set) dropOldestLocked() {
	var exps []int64
	for _, m := range s.tables {
		for _, e := range m {
			exps = append(exps, e.expires)
		}
	}
	slices.Sort(exps)
	cutoff := exps[len(exps)-s.max*9/10-1] // the last one to go
	dropped := 0
	s.earliest = math.MaxInt64
	for _, m := range s.tables {
		for key, e := range m {
			if e.expires <= cutoff {
				delete(m, key)
				dropped++
			} else {
				s.earliest = min(s.earliest, e.expires)
			}
		}
	}
	s.n.Add(-int64(dropped))
}

// shrinkLocked makes the maps again once most of their entries are gone:
// Go maps do not shrink, and a burst of revocations must not keep its
// memory after it has expired.
func (s *Set) shrinkLocked() {
	n := s.n.Load()
	if s.peak <= 4096 || n >= s.peak/4 {
		return
	}
	for k, m := range s.tables {
		s.tables[k] = make(map[string]entry, len(m))
		for key, e := range m {
			s.tables[k][key] = e
		}
	}
	s.peak = n
}
