package cli

import (
	"runtime"
	"runtime/debug"
	"testing"

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
		tuneRuntime(cfg, func(string) string { return "" })
		// Twice: serve may start more than once in a process (tests), and
		// the spare P is added to the starting count, not on top again.
		tuneRuntime(cfg, func(string) string { return "" })
		if got, want := runtime.GOMAXPROCS(0), config.CPUs()+1; got != want {
			t.Errorf("GOMAXPROCS = %d, want %d (one spare P)", got, want)
		}
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
		tuneRuntime(cfg, func(k string) string { return env[k] })
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
