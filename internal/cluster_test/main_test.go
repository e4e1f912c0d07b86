package clustertest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gatehouseBin is the gatehouse binary built once for the whole run.
var gatehouseBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatehouse-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	gatehouseBin = filepath.Join(dir, "gatehouse")
	if err := build(gatehouseBin); err != nil {
		fmt.Fprintln(os.Stderr, "clustertest: building gatehouse:", err)
		return 1
	}
	return m.Run()
}

// build compiles cmd/gatehouse of this module to out. go test puts its own
// Go toolchain first on PATH, so "go" is the one running the tests.
func build(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", out, "gatehouse/cmd/gatehouse")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, b)
	}
	return nil
}

// moduleRoot is the directory of the gatehouse go.mod: what `go env GOMOD`
// says, or ../.. from this package.
func moduleRoot() (string, error) {
	var stdout bytes.Buffer
	cmd := exec.Command("go", "env", "GOMOD")
	cmd.Stdout = &stdout
	if err := cmd.Run(); err == nil {
		if mod := strings.TrimSpace(stdout.String()); mod != "" && mod != os.DevNull {
			return filepath.Dir(mod), nil
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the module root: %w", err)
	}
	return root, nil
}
