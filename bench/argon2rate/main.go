// Command argon2rate measures the raw argon2id rate on this machine: N
// goroutines (default: the CPU count, Gatehouse's default hash concurrency)
// hashing with the given parameters for a fixed time, outside any server.
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

func main() {
	var (
		workers = flag.Int("workers", runtime.NumCPU(), "concurrent hashes")
		mem     = flag.Uint("m", 19456, "memory (KiB)")
		iters   = flag.Uint("t", 2, "iterations")
		par     = flag.Uint("p", 1, "parallelism")
		dur     = flag.Duration("d", 10*time.Second, "duration")
	)
	flag.Parse()
	var n atomic.Int64
	deadline := time.Now().Add(*dur)
	var wg sync.WaitGroup
	start := time.Now()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			salt := make([]byte, 16)
			_, _ = rand.Read(salt)
			for time.Now().Before(deadline) {
				argon2.IDKey([]byte("correct horse battery staple"), salt, uint32(*iters), uint32(*mem), uint8(*par), 32)
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("%.2f\n", float64(n.Load())/el)
}
