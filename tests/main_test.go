// Package tests holds runsc's integration tests: they run the real runsc
// binary, need root, and skip with a message otherwise.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc/runsc/procfs"
)

// runscBin is the runsc binary under test: $RUNSC_BINARY, or one built
// static for this run.
var runscBin string

func TestMain(m *testing.M) {
	if os.Getenv(callerEnv) != "" {
		os.Exit(callerMain())
	}
	adoptOrphans()
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
	code := m.Run()
	if os.Geteuid() == 0 {
		if leaks := findLeaks(); len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "leaked after the suite:\n  %s\n", strings.Join(leaks, "\n  "))
			return 1
		}
	}
	return code
}

// findLeaks lists runsc processes (gofers, sandboxes, inits) still
// running and host mounts made by runsc, once every test has finished.
func findLeaks() []string {
	var leaks []string
	bin, _ := filepath.EvalSymlinks(runscBin)
	// Processes being killed by the last cleanups may take a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		leaks = nil
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
			if err != nil || exe != bin {
				continue
			}
			if st, err := procfs.ReadStat("/proc", pid); err == nil && st.Zombie() {
				continue
			}
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			leaks = append(leaks, fmt.Sprintf("process %s: %s", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, line := range strings.Split(string(mi), "\n") {
			if strings.Contains(line, "fuse.runsc") || strings.Contains(line, " runsc-") {
				leaks = append(leaks, "mount: "+line)
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
	}
}

// requireRoot skips a test that needs root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, mounts, pivot_root): run `make test` as root")
	}
}
