package guard

import (
	"errors"
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries expire. Reads take a shared lock
// only, so a hit costs a map lookup. When full, expired entries are swept
// and, if that is not enough, arbitrary ones dropped (map order is random):
// a dropped entry only costs one more verification or introspection.
type ttlCache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]ttlEntry[V]
	max int
}

type ttlEntry[V any] struct {
	v     V
	until time.Time
}

func newTTLCache[K comparable, V any](max int) *ttlCache[K, V] {
	return &ttlCache[K, V]{m: make(map[K]ttlEntry[V]), max: max}
}

// get returns the value stored for k unless it has expired at now.
func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put stores v for k until the given time.
func (c *ttlCache[K, V]) put(k K, v V, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for k2, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k2)
			}
		}
		for k2 := range c.m {
			if len(c.m) < c.max*9/10 {
				break
			}
			delete(c.m, k2)
		}
	}
	c.m[k] = ttlEntry[V]{v: v, until: until}
}

// delete forgets k.
func (c *ttlCache[K, V]) delete(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// flightGroup makes concurrent calls with one key share one execution, so a
// burst of requests with the same credential costs one introspection.
type flightGroup struct {
	mu sync.Mutex
	m  map[introKey]*flightCall
}

var errAborted = errors.New("guard: introspection aborted")

type flightCall struct {
	done chan struct{}
	p    *Principal
	err  error
}

func (f *flightGroup) do(k introKey, fn func() (*Principal, error)) (*Principal, error) {
	f.mu.Lock()
	if c, ok := f.m[k]; ok {
		f.mu.Unlock()
		<-c.done
		return c.p, c.err
	}
	if f.m == nil {
		f.m = make(map[introKey]*flightCall)
	}
	// Should fn panic, the waiters get an error, never a principal.
	c := &flightCall{done: make(chan struct{}), err: errAborted}
	f.m[k] = c
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		delete(f.m, k)
		f.mu.Unlock()
		close(c.done)
	}()
	c.p, c.err = fn()
	return c.p, c.err
}
