package conformance

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc/runsc/tests/internal/e2e"
)

// The runtime-tools module and the pseudo-version the suite is built from.
const (
	suiteModule  = "github.com/opencontainers/runtime-tools"
	suiteVersion = "v0.9.1-0.20251205004911-5e639034dcdc"
)

// programTimeout bounds one validation program's run (the longest, the
// cpu cgroup one, takes about a minute here).
const programTimeout = 4 * time.Minute

//go:embed differences.txt
var differencesFile string

// buildSuite returns the directory holding the suite, built once per
// version: runtimetest (static, copied into each container), the busybox
// root file system tarball the programs unpack, and one binary per
// validation program under validation/.
func buildSuite(t *testing.T) string {
	return e2e.BuildModule(t, suiteModule, suiteVersion, "runsc-runtime-tools-cache", "suite", func(gocmd e2e.GoCmd, src, out string) {
		if err := os.MkdirAll(filepath.Join(out, "validation"), 0o755); err != nil {
			t.Fatal(err)
		}
		gocmd(src, "build", "-trimpath", "-tags", "netgo osusergo", "-o", filepath.Join(out, "runtimetest"), "./cmd/runtimetest")
		gocmd(src, "build", "-trimpath", "-o", filepath.Join(out, "validation")+"/", "./validation/...")
		tarball, err := os.ReadFile(filepath.Join(src, "rootfs-amd64.tar.gz"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "rootfs-amd64.tar.gz"), tarball, 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// programs lists the validation programs of the suite.
func programs(t *testing.T, suite string) []string {
	entries, err := os.ReadDir(filepath.Join(suite, "validation"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// wrapper writes a script that runs runtime with a private state root:
// the suite's RUNTIME names a command, not a command line.
func wrapper(t *testing.T, dir, name, runtime string) string {
	root := filepath.Join(dir, name+"-root")
	path := filepath.Join(dir, name)
	script := fmt.Sprintf("#!/bin/sh\nexec %q --root %q \"$@\"\n", runtime, root)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// runSuite runs every program with RUNTIME=runtime, one after the other,
// and returns the results; each program's output goes to logDir.
func runSuite(t *testing.T, suite, runtime, logDir string) map[Key]Result {
	res := map[Key]Result{}
	for _, p := range programs(t, suite) {
		for k, r := range runProgram(t, suite, runtime, logDir, p) {
			res[k] = r
		}
	}
	return res
}

// runProgram runs validation program p with RUNTIME=runtime and returns
// its results; its output goes to logDir (p.tap, p.err, p.code).
func runProgram(t *testing.T, suite, runtime, logDir, p string) map[Key]Result {
	ctx, cancel := context.WithTimeout(context.Background(), programTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(suite, "validation", p))
	// The programs find runtimetest and the rootfs tarball in their
	// working directory.
	cmd.Dir = suite
	cmd.Env = append(os.Environ(), "RUNTIME="+runtime)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", p, err)
	}
	if timedOut {
		code = -1
		fmt.Fprintf(&stderr, "\nkilled after %v\n", programTimeout)
	}
	os.WriteFile(filepath.Join(logDir, p+".tap"), stdout.Bytes(), 0o644)
	os.WriteFile(filepath.Join(logDir, p+".err"), stderr.Bytes(), 0o644)
	os.WriteFile(filepath.Join(logDir, p+".code"), []byte(strconv.Itoa(code)), 0o644)
	return ParseTAP(p, stdout.String(), code)
}

// excerpt returns what program p printed in logDir that explains its
// failures: its stderr and the TAP lines from each "not ok" on, at most
// max lines.
func excerpt(logDir, p string, max int) string {
	var lines []string
	errOut, _ := os.ReadFile(filepath.Join(logDir, p+".err"))
	for _, l := range strings.Split(strings.TrimSpace(string(errOut)), "\n") {
		if l != "" {
			lines = append(lines, "stderr: "+l)
		}
	}
	tap, _ := os.ReadFile(filepath.Join(logDir, p+".tap"))
	tapLines := strings.Split(string(tap), "\n")
	for i, l := range tapLines {
		if strings.HasPrefix(strings.TrimSpace(l), "not ok") {
			lines = append(lines, tapLines[i:min(i+12, len(tapLines))]...)
		}
	}
	if len(lines) > max {
		lines = append(lines[:max], "...")
	}
	if len(lines) == 0 {
		code, _ := os.ReadFile(filepath.Join(logDir, p+".code"))
		return fmt.Sprintf("(nothing: no TAP, no stderr; exit status %s)", code)
	}
	return strings.Join(lines, "\n")
}

// cleanRoot deletes what a runtime's failed runs left under its root.
func cleanRoot(runtime string) {
	out, _ := exec.Command(runtime, "list", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command(runtime, "delete", "--force", id).Run()
	}
}

// TestRuntimeTools runs the suite against runc and runsc, one after the
// other, and compares them test by test.
func TestRuntimeTools(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the OCI runtime-tools suite creates containers: needs root")
	}
	runsc := os.Getenv("RUNSC_BINARY")
	if runsc == "" {
		t.Skip("RUNSC_BINARY is not set (make integration sets it)")
	}
	if missing := e2e.Missing("runc", "tar"); len(missing) > 0 {
		t.Skipf("missing %v (scripts/deps.sh installs them)", missing)
	}
	diffs, err := ParseDifferences(differencesFile)
	if err != nil {
		t.Fatalf("differences.txt: %v", err)
	}
	suite := buildSuite(t)
	work := t.TempDir()
	logs := os.Getenv("CONFORMANCE_LOGS")
	if logs == "" {
		logs = filepath.Join(os.TempDir(), "runsc-conformance-logs")
	}
	results := map[string]map[Key]Result{}
	for _, rt := range []struct{ name, bin string }{{"runc", "runc"}, {"runsc", runsc}} {
		w := wrapper(t, work, rt.name, rt.bin)
		dir := filepath.Join(logs, rt.name)
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		results[rt.name] = runSuite(t, suite, w, dir)
		cleanRoot(w)
		p, f, s := Counts(results[rt.name])
		t.Logf("%s: %d passed, %d failed, %d skipped (%v; output in %s)", rt.name, p, f, s, time.Since(start).Round(time.Second), dir)
	}
	var unexpected []Key
	used := map[int]bool{}
	for _, k := range Regressions(results["runc"], results["runsc"]) {
		known := false
		for i, d := range diffs {
			if d.Matches(k) {
				known, used[i] = true, true
				break
			}
		}
		if !known {
			unexpected = append(unexpected, k)
		}
	}
	for i, d := range diffs {
		if used[i] {
			t.Logf("deliberate difference: %s: %s: %s", d.Program, d.Test, d.Reason)
		} else {
			t.Logf("listed difference not seen in this run: %s: %s", d.Program, d.Test)
		}
	}
	// A program runsc fails where runc passes runs once more: a
	// failure that does not come back is reported with what the first
	// run printed, for the next look, but does not fail the suite.
	reruns := map[string]map[Key]Result{}
	rerunDir := filepath.Join(logs, "runsc-rerun")
	os.RemoveAll(rerunDir)
	os.MkdirAll(rerunDir, 0o755)
	rerunner := wrapper(t, work, "runsc", runsc)
	sort.Slice(unexpected, func(i, j int) bool { return unexpected[i].String() < unexpected[j].String() })
	for _, k := range unexpected {
		if reruns[k.Program] == nil {
			reruns[k.Program] = runProgram(t, suite, rerunner, rerunDir, k.Program)
			cleanRoot(rerunner)
		}
		if reruns[k.Program][k] == Pass {
			t.Logf("runsc failed %s once and passed it on a rerun; the first run printed:\n%s", k, excerpt(filepath.Join(logs, "runsc"), k.Program, 60))
			continue
		}
		t.Errorf("runsc fails a test runc passes: %s", k)
	}
}
