package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/internal/testhelp"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// The caller is what conmon and containerd's shim are to a runtime: a
// child subreaper that runs a runsc command with a --pid-file, then
// waits for the process the pid file names (which, once runsc has
// exited, is reparented to it) and records how it ended. The test binary
// plays it when callerEnv is set (see TestMain).
const (
	callerEnv       = "RUNSC_TEST_CALLER"
	callerPIDFile   = "RUNSC_TEST_CALLER_PIDFILE"
	callerStatusEnv = "RUNSC_TEST_CALLER_STATUS"
	// callerHoldEnv, if set, names a file: the caller leaves the
	// exited process unreaped (a zombie) until that file exists, and
	// says "zombie" meanwhile.
	callerHoldEnv = "RUNSC_TEST_CALLER_HOLD"
)

// callerMain runs os.Args[1:] as a child subreaper, then waits for the
// pid file's process. The status file gets "pid N\n" once the command
// has exited, then "exited CODE\n" or "signaled SIG\n".
func callerMain() int {
	status, err := os.OpenFile(os.Getenv(callerStatusEnv), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "caller:", err)
		return 100
	}
	defer status.Close()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "caller: subreaper:", err)
		return 100
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(status, "command failed: %v\n", err)
		return 101
	}
	data, err := os.ReadFile(os.Getenv(callerPIDFile))
	pid, perr := strconv.Atoi(string(data))
	if err != nil || perr != nil {
		fmt.Fprintf(status, "pid file: %v %v\n", err, perr)
		return 102
	}
	fmt.Fprintf(status, "pid %d\n", pid)
	if hold := os.Getenv(callerHoldEnv); hold != "" {
		var info unix.Siginfo
		for {
			err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		fmt.Fprintf(status, "zombie\n")
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(hold); err == nil {
				break
			}
		}
	}
	var ws unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(status, "wait: %v\n", err)
	case ws.Signaled():
		fmt.Fprintf(status, "signaled %d\n", ws.Signal())
	default:
		fmt.Fprintf(status, "exited %d\n", ws.ExitStatus())
	}
	// Reap whatever else was reparented here.
	for {
		if _, err := unix.Wait4(-1, nil, 0, nil); err == unix.ECHILD {
			return 0
		}
	}
}

// caller is a running caller process.
type caller struct {
	t      *testing.T
	cmd    *exec.Cmd
	status string
	// stdin is the write end of the command's stdin, a pipe: closing
	// it (release) ends a container's `read`.
	stdin *os.File
}

// release closes the command's stdin.
func (c *caller) release() { c.stdin.Close() }

// startCaller runs runsc args under a caller; pidFile is the --pid-file
// the args name. stdout, if not nil, is the command's stdout.
func (e *runscEnv) startCaller(pidFile string, stdout *os.File, args ...string) *caller {
	return e.startCallerEnv(pidFile, stdout, nil, args...)
}

// startCallerEnv is startCaller with more environment for the caller.
func (e *runscEnv) startCallerEnv(pidFile string, stdout *os.File, env []string, args ...string) *caller {
	e.t.Helper()
	status := filepath.Join(e.t.TempDir(), "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
	all := append([]string{runscBin, "--root", e.root}, append(e.extra, args...)...)
	cmd := exec.Command(os.Args[0], all...)
	cmd.Env = append(append(os.Environ(), callerEnv+"=1", callerPIDFile+"="+pidFile, callerStatusEnv+"="+status), env...)
	cmd.Stdout = stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	r.Close()
	c := &caller{t: e.t, cmd: cmd, status: status, stdin: w}
	e.t.Cleanup(func() {
		w.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return c
}

// line waits for the status line starting with prefix and returns the
// rest of it.
func (c *caller) line(prefix string) string {
	c.t.Helper()
	var data []byte
	var rest string
	found := false
	defer func() {
		if !found {
			c.t.Logf("caller status so far: %q", data)
		}
	}()
	testhelp.WaitFor(c.t, fmt.Sprintf("the caller's %q line", prefix), 30*time.Second, func() bool {
		data, _ = os.ReadFile(c.status)
		for _, l := range strings.Split(string(data), "\n") {
			if rest, found = strings.CutPrefix(l, prefix); found {
				return true
			}
			if strings.HasPrefix(l, "command failed") || strings.HasPrefix(l, "pid file") || strings.HasPrefix(l, "wait:") {
				c.t.Fatalf("caller: %s", l)
			}
		}
		return false
	})
	return rest
}

// pid waits for the pid the caller read from the pid file.
func (c *caller) pid() int {
	c.t.Helper()
	pid, err := strconv.Atoi(c.line("pid "))
	if err != nil {
		c.t.Fatal(err)
	}
	return pid
}

// end waits for how the process ended: "exited N" or "signaled N".
func (c *caller) end() string {
	c.t.Helper()
	var data []byte
	var end string
	defer func() {
		if end == "" {
			c.t.Logf("caller status so far: %q", data)
		}
	}()
	testhelp.WaitFor(c.t, "the caller to see the process end", 30*time.Second, func() bool {
		data, _ = os.ReadFile(c.status)
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "exited ") || strings.HasPrefix(l, "signaled ") || strings.HasPrefix(l, "wait:") {
				end = l
				return true
			}
		}
		return false
	})
	return end
}

// ppid returns the parent of host process pid.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	st, err := procfs.ReadStat("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	return st.PPID
}

// TestCallerReapsTheContainer checks the process model clients rely on:
// the pid file names the container's process, which is reparented to
// the caller (a subreaper, like conmon or containerd's shim) once runsc
// has exited, and the caller gets its real exit status from waitpid,
// while it runs in the sandbox.
func TestCallerReapsTheContainer(t *testing.T) {
	e := newEnv(t)
	t.Run("exit code", func(t *testing.T) {
		b := newBundle(t, testSpec("sh", "-c", "read x; exit 42"))
		pidFile := filepath.Join(t.TempDir(), "pid")
		c := e.startCaller(pidFile, nil, "create", "--bundle", b.dir, "--pid-file", pidFile, "code")
		pid := c.pid()
		if st := e.state("code"); st.Pid != pid || st.Status != "created" {
			t.Fatalf("state: pid %d status %s, pid file %d", st.Pid, st.Status, pid)
		}
		if got := ppid(t, pid); got != c.cmd.Process.Pid {
			t.Fatalf("the container's init has parent %d, not the caller %d", got, c.cmd.Process.Pid)
		}
		saved := e.saved("code")
		if nsp := nspid(t, pid); len(nsp) != 3 || nsp[2] != 1 || nsp[1] == 1 {
			t.Fatalf("NSpid %v: want host, sandbox and container pids, 1 in the container", nsp)
		}
		if !sameNS(t, pid, saved.Sandbox.PID, "net") || !sameNS(t, pid, saved.Sandbox.PID, "ipc") || !sameNS(t, pid, saved.Sandbox.PID, "uts") {
			t.Fatal("the init is not in the sandbox's network, ipc and uts namespaces")
		}
		e.must("start", "code")
		c.release()
		if end := c.end(); end != "exited 42" {
			t.Fatalf("the caller saw %q, want exited 42", end)
		}
		t.Logf("pid file %d = state pid, parent is the caller, exit status 42 reaped by the caller", pid)
		if st := e.state("code"); st.Status != "stopped" {
			t.Fatalf("state after exit: %s", st.Status)
		}
		e.must("delete", "code")
	})
	t.Run("kill -9 from the host", func(t *testing.T) {
		b := newBundle(t, testSpec("sleep", "1000"))
		pidFile := filepath.Join(t.TempDir(), "pid")
		c := e.startCaller(pidFile, nil, "run", "-d", "--bundle", b.dir, "--pid-file", pidFile, "nine")
		pid := c.pid()
		if st := e.state("nine"); st.Pid != pid || st.Status != "running" {
			t.Fatalf("state: pid %d status %s, pid file %d", st.Pid, st.Status, pid)
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if end := c.end(); end != "signaled 9" {
			t.Fatalf("the caller saw %q, want signaled 9", end)
		}
		if st := e.state("nine"); st.Status != "stopped" {
			t.Fatalf("state after kill -9: %s", st.Status)
		}
		e.must("delete", "nine")
	})
	t.Run("own stdio", func(t *testing.T) {
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		b := newBundle(t, testSpec("sh", "-c", "echo to-the-file; exec sleep 1000"))
		pidFile := filepath.Join(t.TempDir(), "pid")
		c := e.startCaller(pidFile, out, "run", "-d", "--bundle", b.dir, "--pid-file", pidFile, "stdio")
		pid := c.pid()
		var want, got unix.Stat_t
		unix.Fstat(int(out.Fd()), &want)
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/1", pid), &got); err != nil || got.Ino != want.Ino || got.Dev != want.Dev {
			t.Fatalf("the container's stdout is not the file given to runsc (%v)", err)
		}
		e.must("kill", "stdio", "KILL")
		c.end()
		if data, _ := os.ReadFile(out.Name()); string(data) != "to-the-file\n" {
			t.Fatalf("stdout file holds %q", data)
		}
		e.must("delete", "stdio")
	})
	t.Run("exec", func(t *testing.T) {
		b := newBundle(t, testSpec("sleep", "1000"))
		e.must("run", "-d", "--bundle", b.dir, "execd")
		pidFile := filepath.Join(t.TempDir(), "pid")
		c := e.startCaller(pidFile, nil, "exec", "-d", "--pid-file", pidFile, "execd", "sh", "-c", "read x; exit 5")
		pid := c.pid()
		init := e.saved("execd").InitPID
		if !sameNS(t, pid, init, "pid") || !sameNS(t, pid, init, "mnt") {
			t.Fatal("the exec'd process is not in the container's pid and mount namespaces")
		}
		if got := ppid(t, pid); got != c.cmd.Process.Pid {
			t.Fatalf("the exec'd process has parent %d, not the caller %d", got, c.cmd.Process.Pid)
		}
		c.release()
		if end := c.end(); end != "exited 5" {
			t.Fatalf("the caller saw %q, want exited 5", end)
		}
		e.must("delete", "--force", "execd")
	})
	t.Run("sandbox killed", func(t *testing.T) {
		b := newBundle(t, testSpec("sleep", "1000"))
		pidFile := filepath.Join(t.TempDir(), "pid")
		c := e.startCaller(pidFile, nil, "run", "-d", "--bundle", b.dir, "--pid-file", pidFile, "sbdies")
		pid := c.pid()
		unix.Kill(e.saved("sbdies").Sandbox.PID, unix.SIGKILL)
		if end := c.end(); end != "signaled 9" {
			t.Fatalf("the container's process ended with %q when its sandbox was killed", end)
		}
		waitGone(t, pid)
		if st := e.state("sbdies"); st.Status != "stopped" {
			t.Fatalf("state after the sandbox died: %s", st.Status)
		}
		e.must("delete", "sbdies")
	})
}

// nspid returns the NSpid line of host process pid.
func nspid(t *testing.T, pid int) []int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	pids, err := procfs.ParseNSpid(b)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// sameNS reports whether host processes a and b share namespace ns.
func sameNS(t *testing.T, a, b int, ns string) bool {
	t.Helper()
	x, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", a, ns))
	y, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", b, ns))
	if err1 != nil || err2 != nil {
		t.Fatalf("namespaces of %d and %d: %v %v", a, b, err1, err2)
	}
	return x == y
}
