// Package tests holds runsc's integration tests: they run the real runsc
// binary, need root, and skip with a message otherwise.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// runscBin is the runsc binary under test: $RUNSC_BINARY, or one built
// static for this run.
var runscBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	runscBin = os.Getenv("RUNSC_BINARY")
	if runscBin == "" {
		dir, err := os.MkdirTemp("", "runsc-test-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		runscBin = filepath.Join(dir, "runsc")
		cmd := exec.Command("go", "build", "-o", runscBin, "../runsc")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building runsc: %v\n", err)
			return 1
		}
	}
	return m.Run()
}

// requireRoot skips a test that needs root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, mounts, pivot_root): run `make test` as root")
	}
}
