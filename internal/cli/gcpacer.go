package cli

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// GOGC bounds of the pacer: the lower one keeps a heap already past the
// target from collecting nonstop (the memory limit bounds it anyway), the
// upper one lets a small heap (an idle server) stay small.
const (
	minGCPercent = 25
	maxGCPercent = 400
)

// gcPacer holds the collector's heap goal near a fixed size: after every
// collection it sets GOGC so that the next goal, live heap × (1 + GOGC/100),
// is the target. GOGC alone would move the goal with whatever was live at
// the last collection — zero, one or two argon2 buffers of 19 MiB — and the
// runtime returns to the kernel whatever a lower goal no longer needs, which
// the next hashes then fault in again.
type gcPacer struct {
	target int64         // heap goal to hold, in bytes
	live   func() uint64 // bytes marked live by the last collection

	mu      sync.Mutex
	stopped bool
}

// startGCPacer starts pacing the collector towards target bytes of heap.
// stop ends it; GOGC keeps its last value.
func startGCPacer(target int64) (stop func()) {
	p := &gcPacer{target: target, live: liveHeap}
	p.arm()
	return p.stop
}

func (p *gcPacer) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

// gcCycle is garbage as soon as it is made, so the collection after arm
// finds it unreachable and runs its cleanup: p.cycle runs once after every
// collection. (The pointer keeps it out of the tiny allocator, whose blocks
// are freed together and late.)
type gcCycle struct{ _ *gcPacer }

func (p *gcPacer) arm() {
	runtime.AddCleanup(&gcCycle{}, func(p *gcPacer) { p.cycle() }, p)
}

// cycle sets GOGC for the live heap the last collection found and waits for
// the next collection.
func (p *gcPacer) cycle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	debug.SetGCPercent(gcPercentFor(p.target, p.live()))
	p.arm()
}

// gcPercentFor is the GOGC that makes live × (1 + GOGC/100) = target,
// within [minGCPercent, maxGCPercent].
func gcPercentFor(target int64, live uint64) int {
	switch {
	case live == 0: // no collection yet
		return maxGCPercent
	case int64(live) >= target:
		return minGCPercent
	}
	pct := (target - int64(live)) * 100 / int64(live)
	return int(min(max(pct, minGCPercent), maxGCPercent))
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
