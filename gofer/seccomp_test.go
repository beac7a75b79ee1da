package gofer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// seccompChildEnv makes the test binary the child of TestSeccompFilter:
// it installs the gofer's filter on itself and reports what it could do.
const seccompChildEnv = "RUNSC_TEST_GOFER_SECCOMP_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(seccompChildEnv); dir != "" {
		os.Exit(seccompChild(dir))
	}
	os.Exit(m.Run())
}

// seccompChild installs the filter, then tries what it must allow and
// what it must refuse, printing one "name: result" line each.
func seccompChild(dir string) int {
	if err := installSeccomp(nil); err != nil {
		fmt.Println("install:", err)
		return 1
	}
	report := func(name string, err error) {
		if err == nil {
			fmt.Printf("%s: ok\n", name)
			return
		}
		fmt.Printf("%s: %v\n", name, err)
	}
	report("fifo", unix.Mknodat(unix.AT_FDCWD, filepath.Join(dir, "fifo"), unix.S_IFIFO|0o600, 0))
	report("socket", unix.Mknodat(unix.AT_FDCWD, filepath.Join(dir, "sock"), unix.S_IFSOCK|0o600, 0))
	report("regular", unix.Mknodat(unix.AT_FDCWD, filepath.Join(dir, "reg"), unix.S_IFREG|0o600, 0))
	report("char device", unix.Mknodat(unix.AT_FDCWD, filepath.Join(dir, "chr"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	report("block device", unix.Mknodat(unix.AT_FDCWD, filepath.Join(dir, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))
	_, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	report("fork", err)
	_, _, errno := unix.RawSyscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD|unix.CLONE_NEWNS), 0, 0)
	if errno == 0 {
		// The child, if any: gone at once.
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	report("clone newns", errnoErr(errno))
	// New threads: the runtime dies if it cannot make one.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			unix.Gettid()
		}()
	}
	wg.Wait()
	report("threads", nil)
	return 0
}

// errnoErr returns errno as an error, nil for 0.
func errnoErr(errno syscall.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

// TestSeccompFilter checks the gofer's filter in a child process (it
// applies to every thread): file nodes but no device nodes, threads but
// no process or namespace.
func TestSeccompFilter(t *testing.T) {
	if cgoBuild {
		t.Skip("built with cgo, whose pthread_create the gofer's filter refuses: run with CGO_ENABLED=0, as runsc is built (make unit does)")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), seccompChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := map[string]string{
		"fifo": "ok", "socket": "ok", "regular": "ok", "threads": "ok",
		"char device":  unix.EPERM.Error(),
		"block device": unix.EPERM.Error(),
		"fork":         unix.EPERM.Error(),
		"clone newns":  unix.EPERM.Error(),
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			got[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
