package tests

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootfsOnce builds one busybox root file system for the whole run.
var (
	rootfsOnce sync.Once
	rootfsDir  string
	rootfsErr  error
)

// busyboxRootfs returns a pristine busybox root file system made by
// scripts/mkrootfs.sh. Tests that write to it copy it first.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	rootfsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "runsc-test-rootfs-")
		if err != nil {
			rootfsErr = err
			return
		}
		rootfsDir = filepath.Join(dir, "rootfs")
		out, err := exec.Command("../scripts/mkrootfs.sh", rootfsDir).CombinedOutput()
		if err != nil {
			rootfsErr = errors.New(string(out))
		}
	})
	if rootfsErr != nil {
		t.Fatalf("making busybox rootfs: %v", rootfsErr)
	}
	return rootfsDir
}

// testSpec returns a spec like `runsc spec` makes, without a terminal,
// running args.
func testSpec(args ...string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Effective: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Permitted: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "runsc-test",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// bundle is a test bundle directory.
type bundle struct {
	dir    string
	rootfs string
}

// newBundle makes a bundle whose rootfs is a copy of the busybox rootfs
// (so tests may check what was written to it), with spec.
func newBundle(t *testing.T, spec *specs.Spec) *bundle {
	t.Helper()
	src := busyboxRootfs(t)
	dir := t.TempDir()
	b := &bundle{dir: dir, rootfs: filepath.Join(dir, "rootfs")}
	if out, err := exec.Command("cp", "-a", src, b.rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copying rootfs: %v: %s", err, out)
	}
	b.writeSpec(t, spec)
	return b
}

// writeSpec writes config.json.
func (b *bundle) writeSpec(t *testing.T, spec *specs.Spec) {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runscEnv is a --root for one test, with helpers to run runsc in it.
type runscEnv struct {
	t    *testing.T
	root string
	// extra are global flags added to every command.
	extra []string
	// wrap, if set, is the command runsc runs under (e.g. nsenter into
	// a test's network namespace).
	wrap []string
	// faultOut is where the last command stoppedAt started writes.
	faultOut string
}

// newEnv makes a fresh --root and, at the end of the test, deletes every
// container left in it and checks that nothing leaked.
func newEnv(t *testing.T, extra ...string) *runscEnv {
	t.Helper()
	requireRoot(t)
	e := &runscEnv{t: t, root: t.TempDir(), extra: extra}
	t.Cleanup(func() {
		out, _ := e.run("list", "--quiet")
		for _, id := range strings.Fields(out) {
			e.run("delete", "--force", id)
		}
	})
	return e
}

// sub makes the env's helpers report to subtest t until the returned
// function restores the parent.
func (e *runscEnv) sub(t *testing.T) (restore func()) {
	parent := e.t
	e.t = t
	return func() { e.t = parent }
}

// result is a finished runsc command.
type result struct {
	stdout, stderr string
	code           int
}

// cmd returns the runsc command for args.
func (e *runscEnv) cmd(args ...string) *exec.Cmd {
	all := append(append([]string{"--root", e.root}, e.extra...), args...)
	if len(e.wrap) > 0 {
		return exec.Command(e.wrap[0], append(append(e.wrap[1:len(e.wrap):len(e.wrap)], runscBin), all...)...)
	}
	return exec.Command(runscBin, all...)
}

// exec runs runsc with stdin and returns what it printed and its status.
// Output goes to files, not pipes: a detached container keeps its
// creator's stdio open, as with runc.
func (e *runscEnv) exec(stdin string, args ...string) result {
	e.t.Helper()
	c := e.cmd(args...)
	dir := e.t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer errF.Close()
	inF, err := os.Create(filepath.Join(dir, "stdin"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer inF.Close()
	inF.WriteString(stdin)
	inF.Seek(0, 0)
	c.Stdin, c.Stdout, c.Stderr = inF, outF, errF
	done := make(chan error, 1)
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { done <- c.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		c.Process.Kill()
		e.t.Fatalf("runsc %v did not finish in 60s", args)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	return result{string(stdout), string(stderr), code}
}

// run runs runsc and returns stdout, or an error with stderr.
func (e *runscEnv) run(args ...string) (string, error) {
	r := e.exec("", args...)
	if r.code != 0 {
		return r.stdout, errors.New(strings.TrimSpace(r.stderr))
	}
	return r.stdout, nil
}

// must runs runsc and fails the test on error.
func (e *runscEnv) must(args ...string) string {
	e.t.Helper()
	out, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("runsc %v: %v", args, err)
	}
	return out
}

// wantOneLineError fails t unless r is a runsc error: exit status 1 and
// a one-line message holding want.
func wantOneLineError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q: want exit 1 and one line with %q", r.code, r.stderr, want)
	}
}

// state returns a container's OCI state.
func (e *runscEnv) state(id string) specs.State {
	e.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(e.must("state", id)), &st); err != nil {
		e.t.Fatalf("state %s: %v", id, err)
	}
	return st
}

// modeEnv returns a runsc environment whose containers' roots are of the
// named mode: "memory overlay" (--overlay2=root:memory), otherwise the
// default, write-through.
func modeEnv(t *testing.T, mode string) *runscEnv {
	if mode == "memory overlay" {
		return newEnv(t, "--overlay2=root:memory")
	}
	return newEnv(t)
}
