package cli

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"gatehouse/internal/config"
)

// restoreRuntime puts back what tuneRuntime changes.
func restoreRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	})
}

func TestTuneRuntime(t *testing.T) {
	cfg := &config.Config{HashConcurrency: 3, Argon2: config.Argon2Config{Memory: 19456}}
	t.Run("defaults", func(t *testing.T) {
		restoreRuntime(t)
		runtime.GOMAXPROCS(config.CPUs())
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(1 << 40)
		defer tuneRuntime(cfg, func(string) string { return "" })()
		// One P per CPU: a spare P cost the password grant 11–13 points
		// (docs/BENCHMARKS.md), so serve leaves GOMAXPROCS alone.
		if got, want := runtime.GOMAXPROCS(0), config.CPUs(); got != want {
			t.Errorf("GOMAXPROCS = %d, want %d (one P per CPU)", got, want)
		}
		// 400 to start with, and still 400 if the pacer already ran: this
		// process's heap is far below a fifth of the 123 MiB target.
		if got := debug.SetGCPercent(400); got != 400 {
			t.Errorf("GOGC = %d, want 400", got)
		}
		if got, want := debug.SetMemoryLimit(-1), int64(3*19456*1024+96<<20); got != want {
			t.Errorf("memory limit = %d, want %d", got, want)
		}
	})
	t.Run("environment wins", func(t *testing.T) {
		restoreRuntime(t)
		runtime.GOMAXPROCS(config.CPUs())
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(1 << 40)
		env := map[string]string{"GOGC": "100"}
		defer tuneRuntime(cfg, func(k string) string { return env[k] })()
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("GOGC = %d, want 100 left alone", got)
		}
		if got := debug.SetMemoryLimit(-1); got != 1<<40 {
			t.Errorf("memory limit = %d, want left alone", got)
		}
	})
}

func TestGCPercentFor(t *testing.T) {
	const MiB = 1 << 20
	tests := []struct {
		name   string
		target int64
		live   uint64
		want   int
	}{
		{"two argon2 buffers live", 120 * MiB, 40 * MiB, 200},
		{"three buffers live", 120 * MiB, 60 * MiB, 100},
		{"small heap: at most 400", 120 * MiB, 2 * MiB, maxGCPercent},
		{"no collection yet", 120 * MiB, 0, maxGCPercent},
		{"just under the target: at least 25", 120 * MiB, 110 * MiB, minGCPercent},
		{"past the target", 120 * MiB, 130 * MiB, minGCPercent},
	}
	for _, tt := range tests {
		if got := gcPercentFor(tt.target, tt.live); got != tt.want {
			t.Errorf("%s: gcPercentFor(%d, %d) = %d, want %d", tt.name, tt.target, tt.live, got, tt.want)
		}
	}
}

// The pacer sets GOGC after every collection, from the live heap that
// collection found, until it is stopped.
func TestGCPacer(t *testing.T) {
	restoreRuntime(t)
	debug.SetGCPercent(100)
	reads := 0 // guarded by p.mu: cycle holds it while it calls live
	cycled := make(chan struct{}, 1)
	p := &gcPacer{target: 100 << 20, live: func() uint64 {
		reads++
		select {
		case cycled <- struct{}{}:
		default:
		}
		return 40 << 20
	}}
	p.arm()
	// Two cycles: each arms the next one. A cycle reads the live heap
	// before it re-arms, so a collection that starts as soon as that read
	// is seen can run before the next gcCycle exists; collect again until
	// the cycle runs, as a server's steady allocation would.
	for i := range 2 {
		deadline := time.After(time.Minute)
	wait:
		for {
			runtime.GC()
			select {
			case <-cycled:
				break wait
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("cycle %d: the pacer did not run", i+1)
			}
		}
	}
	p.mu.Lock() // a cycle has set GOGC by the time it releases the lock
	got, n := debug.SetGCPercent(100), reads
	p.mu.Unlock()
	if want := gcPercentFor(100<<20, 40<<20); got != want || n < 2 {
		t.Errorf("after two collections: GOGC = %d after %d cycles, want %d after at least 2", got, n, want)
	}

	p.stop()
	p.mu.Lock()
	n = reads
	p.mu.Unlock()
	p.cycle() // what the armed cleanup does after the next collection
	p.mu.Lock()
	if reads != n {
		t.Errorf("a stopped pacer read the live heap")
	}
	p.mu.Unlock()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC = %d after stop, want 100 left alone", got)
	}
}
