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
		// Twice: serve may start more than once in a process (tests), and
		// the spare P is added to the starting count, not on top again.
		defer tuneRuntime(cfg, func(string) string { return "" })()
		if got, want := runtime.GOMAXPROCS(0), config.CPUs()+1; got != want {
			t.Errorf("GOMAXPROCS = %d, want %d (one spare P)", got, want)
		}
		// 400 to start with, and still 400 if the pacer already ran: this
		// process's heap is far below a fifth of the 139 MiB target.
		if got := debug.SetGCPercent(400); got != 400 {
			t.Errorf("GOGC = %d, want 400", got)
		}
		if got, want := debug.SetMemoryLimit(-1), int64(3*19456*1024+112<<20); got != want {
			t.Errorf("memory limit = %d, want %d", got, want)
		}
	})
	t.Run("environment wins", func(t *testing.T) {
		restoreRuntime(t)
		runtime.GOMAXPROCS(config.CPUs())
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(1 << 40)
		env := map[string]string{"GOMAXPROCS": "1", "GOGC": "100"}
		defer tuneRuntime(cfg, func(k string) string { return env[k] })()
		if got := runtime.GOMAXPROCS(0); got != config.CPUs() {
			t.Errorf("GOMAXPROCS = %d, want %d left alone", got, config.CPUs())
		}
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
	// Two collections: each cycle arms the next one.
	for i := range 2 {
		runtime.GC()
		select {
		case <-cycled:
		case <-time.After(time.Minute):
			t.Fatalf("collection %d: the pacer did not run", i+1)
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
