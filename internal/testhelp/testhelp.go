// Package testhelp holds helpers shared by runsc's tests: connected unix
// socket pairs, polling for a condition, and whether a host process is
// alive. It is imported only by _test.go files.
package testhelp

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// SocketPair returns the two ends of a connected unix stream socket pair
// as files, both close-on-exec and blocking. Both are closed when the
// test ends; closing either earlier is fine.
func SocketPair(t testing.TB) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "socketpair-0"), os.NewFile(uintptr(fds[1]), "socketpair-1")
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// ConnPair returns two connected unix stream sockets. Both are closed
// when the test ends; closing either earlier is fine.
func ConnPair(t testing.TB) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fa, fb := SocketPair(t)
	var conns [2]*net.UnixConn
	for i, f := range []*os.File{fa, fb} {
		c, err := net.FileConn(f)
		// FileConn holds its own descriptor: the file is not needed.
		f.Close()
		if err != nil {
			t.Fatalf("socket pair as a connection: %v", err)
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			c.Close()
			t.Fatalf("socket pair as a connection: got a %T, want a *net.UnixConn", c)
		}
		conns[i] = uc
	}
	t.Cleanup(func() {
		conns[0].Close()
		conns[1].Close()
	})
	return conns[0], conns[1]
}

// minPoll and maxPoll bound the pause between two checks of WaitFor's
// condition: it starts at minPoll and doubles up to maxPoll.
const (
	minPoll = 5 * time.Millisecond
	maxPoll = 100 * time.Millisecond
)

// WaitFor calls cond until it returns true, pausing between calls, and
// fails the test, naming what it waited for, if cond has not held within
// timeout. cond is always called at least once, and the call whose
// false result fails the test starts after the timeout has passed, so a
// test whose condition came true during the last pause does not fail. cond runs on the test's
// goroutine and may itself fail the test.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for pause := minPoll; ; pause = min(2*pause, maxPoll) {
		// Read the clock before cond: the call that fails the test
		// started after the deadline.
		expired := !time.Now().Before(deadline)
		if cond() {
			return
		}
		if expired {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(min(pause, max(time.Until(deadline), 0)))
	}
}

// Alive reports whether host process pid exists and is not a zombie (a
// process that exited and waits to be reaped counts as gone).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := procfs.ReadStat("/proc", pid)
	return err == nil && !st.Zombie()
}
