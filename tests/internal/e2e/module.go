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
	goBin := goTool(t, module)
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
	// A module of its own: GOFLAGS=-mod=mod so that nothing of ours
	// (vendoring, workspace) applies; cgo off, static.
	gocmd := goRunner(t, ctx, goBin, module, "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	modDir := moduleDir(t, gocmd, work, module, version)
	src := filepath.Join(work, "src")
	if out, err := exec.CommandContext(ctx, "cp", "-r", modDir, src).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v: %s", modDir, err, out)
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

// goTool returns the go command's path; without one the test skips.
func goTool(t testing.TB, module string) string {
	goBin, err := exec.LookPath("go")
	if err == nil {
		return goBin
	}
	if _, err2 := os.Stat("/usr/local/go/bin/go"); err2 != nil {
		t.Skipf("no go toolchain to fetch %s: %v", module, err)
	}
	return "/usr/local/go/bin/go"
}

// moduleDir downloads module@version through the module proxy and returns
// its directory in the (read-only) module cache.
func moduleDir(t testing.TB, gocmd GoCmd, work, module, version string) string {
	out := gocmd(work, "mod", "download", "-json", module+"@"+version)
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s@%s: %v %s: %s", module, version, err, mod.Error, out)
	}
	return mod.Dir
}

// ModuleFile returns the contents of file rel of Go module module@version,
// downloaded through the module proxy: data that real clients ship (a
// seccomp profile, say), read as they publish it.
func ModuleFile(t testing.TB, module, version, rel string) []byte {
	t.Helper()
	goBin := goTool(t, module)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gocmd := goRunner(t, ctx, goBin, module, "GOFLAGS=-mod=mod", "GOWORK=off")
	data, err := os.ReadFile(filepath.Join(moduleDir(t, gocmd, t.TempDir(), module, version), rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// goRunner returns a GoCmd running goBin with env added, for work on
// module; a failure is fatal.
func goRunner(t testing.TB, ctx context.Context, goBin, module string, env ...string) GoCmd {
	return func(cwd string, args ...string) []byte {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = cwd
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("%s: go %s: %v\n%s", module, strings.Join(args, " "), err, stderr)
		}
		return out
	}
}
