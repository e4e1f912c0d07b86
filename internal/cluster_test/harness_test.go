package clustertest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"gatehouse/internal/storetest"
	"gatehouse/internal/testserver"
)

// publicURL is the one external URL of both nodes, as behind a load
// balancer: the token issuer, and the origin the CSRF check trusts.
const publicURL = "http://gatehouse.test"

// fastArgon2 keeps password hashing cheap, under -race too.
const fastArgon2 = "argon2: {memory: 1024, iterations: 1, parallelism: 1}\n"

// cluster is two gatehouse nodes sharing one PostgreSQL database, one Redis
// and one secret.
type cluster struct {
	A, B  *node
	Redis *redisServer
	env   []string // the shared GATEHOUSE_* settings, KEY=VALUE
}

// newCluster starts two nodes on a fresh database and a private Redis.
// settings are added to (or override) the shared configuration of both.
func newCluster(t *testing.T, settings map[string]string) *cluster {
	t.Helper()
	dbURL := newDatabase(t)
	rd := startRedis(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte(fastArgon2), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := map[string]string{
		"GATEHOUSE_DATABASE_URL":    dbURL,
		"GATEHOUSE_REDIS_URL":       rd.URL(),
		"GATEHOUSE_SECRET":          randomHex(t, 32),
		"GATEHOUSE_PUBLIC_URL":      publicURL,
		"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1/32", // lets tests choose the client IP with X-Forwarded-For
		"GATEHOUSE_LOG_FORMAT":      "json",
		"GATEHOUSE_CONFIG":          cfg,
	}
	for k, v := range settings {
		shared[k] = v
	}
	cl := &cluster{Redis: rd}
	for k, v := range shared {
		cl.env = append(cl.env, k+"="+v)
	}
	// One node after the other: the first start on an empty database
	// generates the first signing key, and two nodes doing that at once
	// would each make one.
	cl.A = cl.startNode(t, "A")
	cl.B = cl.startNode(t, "B")
	return cl
}

// processEnv is this process's environment without any GATEHOUSE_*
// variable, plus extra: the nodes see exactly the settings a test gives.
func processEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// gatehouse runs one gatehouse command (not serve) with the cluster's
// configuration and returns its standard output.
func (cl *cluster) gatehouse(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatehouseBin, args...)
	cmd.Env = processEnv(append(cl.env, "GATEHOUSE_DATA_DIR="+t.TempDir())...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// node is one running `gatehouse serve`.
type node struct {
	Name    string
	URL     string    // http://127.0.0.1:port
	Started time.Time // when /healthz first answered: the node had loaded its keys

	log     string // path of the node's combined output
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

func (cl *cluster) startNode(t *testing.T, name string) *node {
	t.Helper()
	dir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t)))
	n := &node{Name: name, URL: "http://" + addr, log: filepath.Join(dir, "gatehouse.log"), exited: make(chan struct{})}
	logf, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child keeps its own descriptor
	n.cmd = exec.Command(gatehouseBin, "serve")
	n.cmd.Env = processEnv(append(cl.env, "GATEHOUSE_ADDR="+addr, "GATEHOUSE_DATA_DIR="+filepath.Join(dir, "data"))...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting node %s: %v", name, err)
	}
	go func() { n.waitErr = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("node %s (%s), last lines of its log:\n%s", n.Name, n.URL, tail(n.log, 40))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(n.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				n.Started = time.Now()
				return n
			}
		}
		select {
		case <-n.exited:
			t.Fatalf("node %s exited before answering /healthz: %v", name, n.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: /healthz did not answer 200 within 30 s (last error: %v)", name, err)
		}
	}
}

// stop ends the node: SIGTERM (graceful shutdown), SIGKILL if that takes
// more than ten seconds.
func (n *node) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// newDatabase creates an empty PostgreSQL database, dropped when t ends,
// and returns its URL.
func newDatabase(t *testing.T) string {
	t.Helper()
	return storetest.PostgresServer(t).NewDatabase(t, "gh_cluster_")
}

// redisServer is a private redis-server process that keeps nothing on
// disk.
type redisServer struct {
	Port int

	dir     string
	log     string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// startRedis starts a redis-server on a free port, killed when t ends.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		storetest.Unavailable(t, "redis-server (install Redis so that redis-server is on PATH)", err)
	}
	dir := t.TempDir()
	r := &redisServer{Port: testserver.FreePort(t), dir: dir, log: filepath.Join(dir, "redis.log")}
	t.Cleanup(func() {
		r.Stop(t)
		if t.Failed() {
			t.Logf("redis-server on port %d, last lines of its log:\n%s", r.Port, tail(r.log, 15))
		}
	})
	r.Start(t)
	return r
}

// URL is the redis:// URL of the server.
func (r *redisServer) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(r.Port) + "/0" }

// Start (re)starts the server on its port and waits until it answers PING.
func (r *redisServer) Start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(r.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		storetest.Unavailable(t, "redis-server", err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { r.waitErr = cmd.Wait(); close(exited) }(r.cmd, r.exited)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := pingRedis(r.Port)
		if err == nil {
			return
		}
		select {
		case <-r.exited:
			t.Fatalf("redis-server on port %d exited: %v\n%s", r.Port, r.waitErr, tail(r.log, 15))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d does not answer PING: %v", r.Port, err)
		}
	}
}

// Stop kills the server (SIGKILL: an outage, not a shutdown).
func (r *redisServer) Stop(t *testing.T) {
	t.Helper()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// pingRedis sends one RESP PING.
func pingRedis(port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New("PING answered " + strings.TrimSpace(line))
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// eventually polls cond until it holds, failing the test when it still does
// not after timeout, and returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start)
}
