// Package podman holds end-to-end tests that drive Debian's podman (4.3)
// with runsc as its OCI runtime (`podman --runtime`), the way a user
// would, against a private podman storage, configuration and state made
// for the run. They need root and podman; otherwise they skip with a
// message.
//
// The runtime under test is $PODMAN_TEST_RUNTIME, else $RUNSC_BINARY.
// PODMAN_TEST_RUNTIME=/usr/sbin/runc validates the harness itself (the
// runsc-only checks then skip). PODMAN_TEST_STEP_TIMEOUT (a Go duration,
// default 30s) bounds every podman invocation: a hung step fails its test
// with the step's name and its process group is killed.
//
// After the suite, TestMain checks that nothing is left behind: no
// process of the runtime binary, no conmon of this run, no mount of the
// run's directory or of runsc's FUSE, and no state of this run's
// containers in the runtime's state directory.
package podman

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"testing"
)

// Names of the environment variables that configure the suite.
const (
	envRuntime     = "PODMAN_TEST_RUNTIME"
	envRunsc       = "RUNSC_BINARY"
	envStepTimeout = "PODMAN_TEST_STEP_TIMEOUT"
	envDriver      = "PODMAN_TEST_STORAGE_DRIVER"
)

// image is the busybox image every test runs, imported once per run.
const image = "localhost/busybox"

// skipReason, when set, makes every test skip with it.
var skipReason string

// env is the suite's podman set-up; nil when the suite skips.
var env *podmanEnv

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	runtime := os.Getenv(envRuntime)
	if runtime == "" {
		runtime = os.Getenv(envRunsc)
	}
	_, podmanErr := exec.LookPath("podman")
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root (podman with cgroupfs and private storage): run `make test` as root"
	case runtime == "":
		skipReason = "no runtime to test: set " + envRunsc + " (as `make integration` does) or " + envRuntime
	case podmanErr != nil:
		skipReason = "podman not found: install podman (scripts/deps.sh)"
	}
	if skipReason != "" {
		return m.Run()
	}

	stepTimeout := 30 * time.Second
	if s := os.Getenv(envStepTimeout); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s=%q: %v\n", envStepTimeout, s, err)
			return 1
		}
		stepTimeout = d
	}
	var err error
	env, err = setup(runtime, stepTimeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "podman tests: set-up failed: %v\n", err)
		if env != nil {
			env.teardown()
		}
		return 1
	}
	code := m.Run()
	if problems := env.teardown(); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "podman tests: left behind after the suite:\n  %s\n", strings.Join(problems, "\n  "))
		code = 1
	}
	return code
}

// setup makes the run's directory, podman configuration and busybox
// image. On error, the returned environment (if any) still needs a
// teardown.
func setup(runtime string, stepTimeout time.Duration) (*podmanEnv, error) {
	src, err := filepath.Abs(runtime)
	if err != nil {
		return nil, err
	}
	if src, err = filepath.EvalSymlinks(src); err != nil {
		return nil, fmt.Errorf("runtime %s: %v", runtime, err)
	}
	dir, err := os.MkdirTemp("", "podman-e2e-")
	if err != nil {
		return nil, err
	}
	e := &podmanEnv{dir: dir, runtimeSrc: src, stepTimeout: stepTimeout, driver: os.Getenv(envDriver)}
	if e.driver == "" {
		e.driver = "overlay"
	}
	if err := e.configure(); err != nil {
		return e, err
	}
	logf("run directory %s; runtime %s (a private copy of %s, so that only this run's runtime processes carry its path); runtime state dir %s (%s); storage driver %s",
		dir, e.runtime, src, e.stateDir, e.stateDirHow, e.driver)

	// The busybox image: scripts/mkrootfs.sh, tarred, podman import.
	rootfs := filepath.Join(dir, "image", "rootfs")
	tarball := filepath.Join(dir, "image", "busybox.tar")
	if out, err := exec.Command("../../scripts/mkrootfs.sh", rootfs).CombinedOutput(); err != nil {
		return e, fmt.Errorf("mkrootfs.sh: %v: %s", err, out)
	}
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		return e, fmt.Errorf("tar: %v: %s", err, out)
	}
	r, err := e.podman(invocation{step: "import busybox image", args: []string{"import", tarball, image}, timeout: 2 * stepTimeout})
	if err == nil && r.code != 0 && e.driver == "overlay" && os.Getenv(envDriver) == "" {
		logf("import with the overlay storage driver failed (%s); retrying with vfs", strings.TrimSpace(r.stderr))
		e.podman(invocation{step: "reset overlay storage", args: []string{"system", "reset", "--force"}})
		e.driver = "vfs"
		r, err = e.podman(invocation{step: "import busybox image (vfs)", args: []string{"import", tarball, image}, timeout: 2 * stepTimeout})
	}
	if err != nil {
		return e, err
	}
	if r.code != 0 {
		return e, fmt.Errorf("podman import: exit %d: %s", r.code, r.stderr)
	}
	logf("imported %s from a busybox rootfs (scripts/mkrootfs.sh) as %s", image, strings.TrimSpace(r.stdout))
	return e, nil
}

// logf prints a suite-level message (outside any test).
func logf(format string, args ...any) {
	fmt.Printf("podman tests: "+format+"\n", args...)
}

// requireEnv skips a test when the suite cannot run (not root, no
// runtime named, no podman).
func requireEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// requireRunsc skips a check that only means something for runsc.
func requireRunsc(t *testing.T) {
	t.Helper()
	requireEnv(t)
	if !env.isRunsc() {
		t.Skipf("runsc-only check; the runtime under test is %s", env.runtimeSrc)
	}
}
