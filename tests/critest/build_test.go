package critest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// critestModule and critestVersion name the cri-tools release whose
// critest the test runs.
const (
	critestModule  = "sigs.k8s.io/cri-tools"
	critestVersion = "v1.37.0"
)

// critestCache is where the built critest is kept between runs, keyed by
// the version.
func critestCache() string {
	return filepath.Join(os.TempDir(), "runsc-critest-cache", critestVersion)
}

// buildCritest returns the path of critest, building it once per version:
// critest is a Ginkgo suite (cmd/critest holds only _test.go files), so it
// is `go test -c` of cri-tools' own module, downloaded from the module
// proxy and copied out of the read-only module cache. cri-tools' go.mod
// and go.sum pin its dependencies; our go.mod is not involved.
func buildCritest(t *testing.T) string {
	t.Helper()
	dir := critestCache()
	bin := filepath.Join(dir, "critest")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		t.Logf("critest %s: cached %s", critestVersion, bin)
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if _, err2 := os.Stat("/usr/local/go/bin/go"); err2 != nil {
			t.Skipf("no go toolchain to build critest: %v", err)
		}
		goBin = "/usr/local/go/bin/go"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	goCmd := func(cwd string, args ...string) []byte {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = cwd
		// A module of its own: GOFLAGS=-mod=mod so that nothing of ours
		// (vendoring, workspace) applies; cgo off, as cri-tools' release
		// builds.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("building critest: go %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return out
	}
	out := goCmd(work, "mod", "download", "-json", critestModule+"@"+critestVersion)
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s@%s: %v %s: %s", critestModule, critestVersion, err, mod.Error, out)
	}
	src := filepath.Join(work, "src")
	if out, err := exec.CommandContext(ctx, "cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v: %s", mod.Dir, err, out)
	}
	if out, err := exec.CommandContext(ctx, "chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		t.Fatalf("chmod %s: %v: %s", src, err, out)
	}
	tmpBin := filepath.Join(work, "critest")
	goCmd(src, "test", "-c", "-trimpath", "-o", tmpBin, "./cmd/critest")
	if err := os.Rename(tmpBin, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("critest %s: built %s from %s in %v", critestVersion, bin, mod.Dir, time.Since(start).Round(time.Second))
	return bin
}
