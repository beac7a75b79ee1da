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
	"testing"
	"time"

	"github.com/runsc/runsc/tests/internal/e2e"
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

	stepTimeout, err := e2e.StepTimeout(envStepTimeout, 30*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return e2e.Main(m, "podman tests", func() (func() []string, error) {
		var err error
		if env, err = setup(runtime, stepTimeout); env == nil {
			return nil, err
		}
		return env.teardown, err
	})
}

// setup makes the run's directory, podman configuration and busybox
// image. On error, the returned environment (if any) still needs a
// teardown.
func setup(runtime string, stepTimeout time.Duration) (*podmanEnv, error) {
	src, err := e2e.Resolve(runtime)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "podman-e2e-")
	if err != nil {
		return nil, err
	}
	e := &podmanEnv{dir: dir, runtimeSrc: src, driver: os.Getenv(envDriver)}
	e.runner = &e2e.Runner{Program: "podman", Flags: e.globalFlags, OutDir: filepath.Join(dir, "out"), StepTimeout: stepTimeout}
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
	if err := e2e.MakeRootfs(rootfs); err != nil {
		return e, err
	}
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		return e, fmt.Errorf("tar: %v: %s", err, out)
	}
	r, err := e.podman(invocation{Step: "import busybox image", Args: []string{"import", tarball, image}, Timeout: 2 * stepTimeout})
	if err == nil && r.Code != 0 && e.driver == "overlay" && os.Getenv(envDriver) == "" {
		logf("import with the overlay storage driver failed (%s); retrying with vfs", strings.TrimSpace(r.Stderr))
		e.podman(invocation{Step: "reset overlay storage", Args: []string{"system", "reset", "--force"}})
		e.driver = "vfs"
		r, err = e.podman(invocation{Step: "import busybox image (vfs)", Args: []string{"import", tarball, image}, Timeout: 2 * stepTimeout})
	}
	if err != nil {
		return e, err
	}
	if r.Code != 0 {
		return e, fmt.Errorf("podman import: exit %d: %s", r.Code, r.Stderr)
	}
	logf("imported %s from a busybox rootfs (scripts/mkrootfs.sh) as %s", image, strings.TrimSpace(r.Stdout))
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
