// Command flood fires N concurrent password logins at a running Gatehouse
// while polling /healthz, and reports the outcome: statuses, the slowest
// /healthz answer during the flood, and the server's peak RSS (VmHWM of
// -pid, read from /proc).
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	var (
		base  = flag.String("url", "http://127.0.0.1:18080", "Gatehouse base URL")
		n     = flag.Int("n", 500, "concurrent logins")
		users = flag.String("users", "", "comma-separated email:password pairs, used round-robin")
		pid   = flag.Int("pid", 0, "server process id, for peak RSS")
	)
	flag.Parse()
	creds := strings.Split(*users, ",")
	tr := &http.Transport{MaxIdleConnsPerHost: *n, MaxConnsPerHost: 0}
	client := &http.Client{Transport: tr, Timeout: 120 * time.Second}

	stop := make(chan struct{})
	var hmu sync.Mutex
	var healthMax time.Duration
	healthFails := 0
	go func() {
		hc := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			t := time.Now()
			resp, err := hc.Get(*base + "/healthz")
			d := time.Since(t)
			hmu.Lock()
			if err != nil || resp.StatusCode != 200 {
				healthFails++
			}
			if d > healthMax {
				healthMax = d
			}
			hmu.Unlock()
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()

	var mu sync.Mutex
	statuses := map[int]int{}
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	gate := make(chan struct{})
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			email, pw, _ := strings.Cut(creds[i%len(creds)], ":")
			form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {pw}}
			<-gate
			t := time.Now()
			resp, err := client.PostForm(*base+"/oauth2/token", form)
			d := time.Since(t)
			code := -1
			if err == nil {
				code = resp.StatusCode
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			statuses[code]++
			lat = append(lat, d)
			mu.Unlock()
		}(i)
	}
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("logins=%d elapsed=%s statuses=%v p50=%s max=%s\n", *n, elapsed.Round(time.Millisecond), statuses,
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	hmu.Lock()
	fmt.Printf("healthz_max=%s healthz_failures=%d\n", healthMax.Round(time.Millisecond), healthFails)
	hmu.Unlock()
	if *pid > 0 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", *pid))
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "VmHWM:") || strings.HasPrefix(line, "VmRSS:") {
					fmt.Println(strings.Join(strings.Fields(line), " "))
				}
			}
		}
	}
}
