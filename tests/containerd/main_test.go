// Package containerd holds end-to-end tests that drive Debian's containerd
// (1.6) with ctr against a private containerd started for the run (its
// own configuration, root, state and sockets under a temp dir, in a
// private network namespace when unshare(1) is there; see
// tests/internal/ctrdenv). Every scenario runs twice, as subtests:
//
//   - runc-shim: containerd's runc v2 shim with the runtime under test as
//     its runc binary, as users do with `ctr run --runc-binary $RUNSC`;
//   - runsc-shim: runsc's own shim, `ctr run --runtime
//     io.containerd.runsc.v1`: containerd-shim-runsc-v1 (a private copy of
//     the one next to $RUNSC_BINARY, as `make build` puts it) is found on
//     containerd's PATH next to the private runsc copy, which it runs by
//     default.
//
// They need root and containerd; otherwise they skip with a message.
//
// The runtime under test is $CONTAINERD_TEST_RUNTIME, else $RUNSC_BINARY.
// CONTAINERD_TEST_RUNTIME=/usr/sbin/runc validates the harness itself (the
// runsc-only checks and the runsc-shim subtests then skip).
// CONTAINERD_TEST_STEP_TIMEOUT (a Go duration, default 30s) bounds every
// ctr invocation: a hung step fails its test with the step's name and its
// process group is killed.
//
// There is no registry: the suite builds an OCI image archive of a busybox
// root file system (scripts/mkrootfs.sh) and imports it with `ctr images
// import`.
//
// The shims keep their sockets, fifos and the runtime's state under
// hard-coded /run/containerd/{s,fifo,runc/<namespace>,runsc/<namespace>}
// whatever containerd's state dir, so every run uses its own containerd
// namespace and removes only its own state directories afterwards.
//
// After the suite, TestMain checks that nothing is left behind: no
// process of the run's private copy of the runtime, no shim of the run's
// containerd, no containerd or ctr of the run, no mount of runsc's FUSE or
// under the run's directory, and nothing in the run's state directories.
package containerd

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/runsc/runsc/tests/internal/e2e"
)

// Names of the environment variables that configure the suite.
const (
	envRuntime     = "CONTAINERD_TEST_RUNTIME"
	envRunsc       = "RUNSC_BINARY"
	envStepTimeout = "CONTAINERD_TEST_STEP_TIMEOUT"
)

// imageRef is the busybox image every test runs, imported once per run.
const imageRef = "localhost/busybox:latest"

// skipReason, when set, makes every test skip with it.
var skipReason string

// env is the suite's containerd set-up; nil when the suite skips.
var env *ctrEnv

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	runtime := os.Getenv(envRuntime)
	if runtime == "" {
		runtime = os.Getenv(envRunsc)
	}
	missing := e2e.Missing("containerd", "ctr")
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root (a private containerd and its shim): run `make test` as root"
	case runtime == "":
		skipReason = "no runtime to test: set " + envRunsc + " (as `make integration` does) or " + envRuntime
	case len(missing) > 0:
		skipReason = strings.Join(missing, ", ") + " not found: install containerd (scripts/deps.sh)"
	}
	if skipReason != "" {
		return m.Run()
	}

	stepTimeout, err := e2e.StepTimeout(envStepTimeout, 30*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return e2e.Main(m, "containerd tests", func() (func() []string, error) {
		var err error
		if env, err = setup(runtime, stepTimeout); env == nil {
			return nil, err
		}
		return env.teardown, err
	})
}

// logf prints a suite-level message (outside any test).
func logf(format string, args ...any) {
	fmt.Printf("containerd tests: "+format+"\n", args...)
}

// requireEnv skips a test when the suite cannot run (not root, no
// runtime named, no containerd).
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
	if !env.runsc {
		t.Skipf("runsc-only check; the runtime under test is %s", env.runtimeSrc)
	}
}
