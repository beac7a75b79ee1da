package critest

import (
	"testing"

	"github.com/runsc/runsc/tests/internal/e2e"
)

// critestModule and critestVersion name the cri-tools release whose
// critest the test runs.
const (
	critestModule  = "sigs.k8s.io/cri-tools"
	critestVersion = "v1.37.0"
)

// buildCritest returns the path of critest, built once per version and
// cached under $TMPDIR/runsc-critest-cache: critest is a Ginkgo suite
// (cmd/critest holds only _test.go files), so it is `go test -c` of
// cri-tools' own module.
func buildCritest(t *testing.T) string {
	t.Helper()
	return e2e.BuildModule(t, critestModule, critestVersion, "runsc-critest-cache", "critest", func(gocmd e2e.GoCmd, src, out string) {
		gocmd(src, "test", "-c", "-trimpath", "-o", out, "./cmd/critest")
	})
}
