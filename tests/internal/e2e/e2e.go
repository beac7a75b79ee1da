// Package e2e is the harness shared by the end-to-end test suites under
// tests/ that drive a real container engine with the runtime under test
// (tests/podman, tests/containerd, tests/cri, tests/critest): a runner
// that bounds every command by a timeout and kills its process group on
// expiry, a pseudo-terminal for `-t` runs, a private copy of the runtime
// so that the run's processes are told apart by their executable, the
// suite's TestMain life cycle (set-up, run, teardown that reports what was
// left), and the process and mount scans of the leak checks.
//
// The API:
//
//	r := &e2e.Runner{Program: "ctr", Flags: func() []string {...}, OutDir: dir, StepTimeout: 30 * time.Second}
//	res, err := r.Run(e2e.Invocation{Step: "list", Args: []string{"task", "ls"}})
//	res = r.Test(t, inv); out := r.Must(t, step, args...)   // for a test: fatal on error, logged
//	e2e.WantCode(t, what, res, 0); e2e.WantOutput(t, what, got, want); e2e.WaitFor(t, what, timeout, cond)
//	term := e2e.OpenTerminal(t, 40, 100); ... term.Output(); got := term.Close()
//	src, _ := e2e.Resolve(path); e2e.Copy(src, dst); runsc, help := e2e.Probe(dst, src)
//	e2e.Main(m, "podman tests", setup)     // set-up, m.Run, teardown's problems fail the run
//	e2e.Processes(), e2e.Mounts(), e2e.Sandboxes(runtime), e2e.ProcessLeaks(match), e2e.PollLeaks(10*time.Second, scan)
//	e2e.KillAll(match, first), e2e.UnmountUnder(dir), e2e.MakeRootfs(dir)
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StepTimeout returns the duration in the environment variable name (a
// positive Go duration), or def when it is unset.
func StepTimeout(name string, def time.Duration) (time.Duration, error) {
	s := os.Getenv(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive Go duration (%v)", name, s, err)
	}
	return d, nil
}

// Missing returns those of bins that are not on $PATH.
func Missing(bins ...string) []string {
	var missing []string
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	return missing
}

// Main runs a suite that needs a set-up, for TestMain: it calls setup,
// which returns the teardown of what it made (nil if nothing) and its
// error; on error it reports both (what the teardown found left behind
// included) and returns 1. Otherwise it runs the tests, then the
// teardown, whose problems (what was left behind) it reports and fail the
// run. name prefixes the messages, e.g. "podman tests". It returns the
// exit code.
func Main(m *testing.M, name string, setup func() (teardown func() []string, err error)) int {
	teardown, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: set-up failed: %v\n", name, err)
		if teardown != nil {
			if problems := teardown(); len(problems) > 0 {
				fmt.Fprintf(os.Stderr, "%s: left behind after a failed set-up:\n  %s\n", name, strings.Join(problems, "\n  "))
			}
		}
		return 1
	}
	code := m.Run()
	if problems := teardown(); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "%s: left behind after the suite:\n  %s\n", name, strings.Join(problems, "\n  "))
		code = 1
	}
	return code
}

// Resolve returns the absolute path of the binary at path, symbolic
// links resolved.
func Resolve(path string) (string, error) {
	src, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if src, err = filepath.EvalSymlinks(src); err != nil {
		return "", fmt.Errorf("runtime %s: %v", path, err)
	}
	return src, nil
}

// Copy copies the file src to dst (a file or a directory) with cp(1).
// The suites run private copies of the binaries under test, so that the
// processes whose /proc/PID/exe is the copy are the run's, even while
// other suites run the same binary.
func Copy(src, dst string) error {
	if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// Probe says whether the runtime at path (a copy of src) is runsc: its
// name says so or its --help lists the gofer. It also returns that
// --help.
func Probe(path, src string) (runsc bool, help string) {
	out, _ := exec.Command(path, "--help").CombinedOutput()
	return strings.Contains(filepath.Base(src), "runsc") || strings.Contains(string(out), "gofer"), string(out)
}

// MakeRootfs makes dir a busybox root file system with the module's
// scripts/mkrootfs.sh (found by walking up from the working directory to
// go.mod, so it works from any test package).
func MakeRootfs(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if out, err := exec.Command(filepath.Join(root, "scripts", "mkrootfs.sh"), dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mkrootfs.sh: %v: %s", err, out)
	}
	return nil
}

// moduleRoot returns the nearest directory at or above the working
// directory that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
