package e2e

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

// GoCmd runs the go command in directory cwd for a module build (see
// BuildModule) and returns its standard output; a failure is fatal.
type GoCmd func(cwd string, args ...string) []byte

// BuildModule returns the path of artifact (a file or a directory) that
// build makes from the source of Go module module@version, building it
// once per version: the result is kept under $TMPDIR/<cache>/<version>.
// The source is downloaded through the module proxy and copied out of the
// read-only module cache; build gets a writable copy (src) and the path
// to make the artifact at (out), which becomes the cached one only if
// build completes. The module's own go.mod and go.sum pin what it needs;
// ours is not involved. Without a go toolchain the test skips.
func BuildModule(t testing.TB, module, version, cache, artifact string, build func(gocmd GoCmd, src, out string)) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), cache, version)
	final := filepath.Join(dir, artifact)
	if _, err := os.Stat(final); err == nil {
		t.Logf("%s %s: cached %s", module, version, final)
		return final
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if _, err2 := os.Stat("/usr/local/go/bin/go"); err2 != nil {
			t.Skipf("no go toolchain to build %s: %v", module, err)
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
	gocmd := func(cwd string, args ...string) []byte {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = cwd
		// A module of its own: GOFLAGS=-mod=mod so that nothing of
		// ours (vendoring, workspace) applies; cgo off, static.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("building %s: go %s: %v\n%s", module, strings.Join(args, " "), err, stderr)
		}
		return out
	}
	out := gocmd(work, "mod", "download", "-json", module+"@"+version)
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s@%s: %v %s: %s", module, version, err, mod.Error, out)
	}
	src := filepath.Join(work, "src")
	if out, err := exec.CommandContext(ctx, "cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v: %s", mod.Dir, err, out)
	}
	if out, err := exec.CommandContext(ctx, "chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		t.Fatalf("chmod %s: %v: %s", src, err, out)
	}
	tmp := filepath.Join(work, "out-"+artifact)
	build(gocmd, src, tmp)
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s: built %s in %v", module, version, final, time.Since(start).Round(time.Second))
	return final
}
