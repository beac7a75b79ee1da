package testhelp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

func TestSocketPair(t *testing.T) {
	var a, b *os.File
	t.Run("connected stream pair", func(t *testing.T) {
		a, b = SocketPair(t)
		for _, f := range []*os.File{a, b} {
			flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("%s: fd flags %#x, %v: want close-on-exec", f.Name(), flags, err)
			}
			typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
			if err != nil || typ != unix.SOCK_STREAM {
				t.Errorf("%s: socket type %d, %v: want SOCK_STREAM", f.Name(), typ, err)
			}
		}
		if _, err := a.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("read %q, %v: want ping", buf, err)
		}
		// Closing early is allowed; the cleanup then does nothing.
		b.Close()
	})
	t.Run("closed when the test ends", func(t *testing.T) {
		for _, f := range []*os.File{a, b} {
			if err := f.Close(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("%s: Close after the test: %v, want it already closed", f.Name(), err)
			}
		}
	})
}

func TestConnPair(t *testing.T) {
	var a, b *net.UnixConn
	t.Run("connected", func(t *testing.T) {
		a, b = ConnPair(t)
		if _, err := a.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		a.CloseWrite()
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "ping" {
			t.Fatalf("read %q, %v: want ping then end of stream", got, err)
		}
		// Both ends are unix stream sockets.
		f, err := b.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			t.Fatalf("socket type %d, %v: want SOCK_STREAM", typ, err)
		}
	})
	t.Run("closed when the test ends", func(t *testing.T) {
		for _, c := range []*net.UnixConn{a, b} {
			if err := c.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Close after the test: %v, want it already closed", err)
			}
		}
	})
}

// fatalTB records a test failure instead of failing the real test.
type fatalTB struct {
	testing.TB
	mu     sync.Mutex
	failed string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// runWaitFor runs WaitFor with a recording TB on its own goroutine (a
// failure ends that goroutine) and returns the failure message, if any.
func runWaitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) (failed string) {
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(ft, what, timeout, cond)
	}()
	<-done
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.failed
}

func TestWaitFor(t *testing.T) {
	t.Run("returns once the condition holds", func(t *testing.T) {
		calls := 0
		if msg := runWaitFor(t, "three calls", time.Minute, func() bool { calls++; return calls == 3 }); msg != "" {
			t.Fatalf("failed: %s", msg)
		}
		if calls != 3 {
			t.Fatalf("cond called %d times, want 3", calls)
		}
	})
	t.Run("zero timeout still checks once", func(t *testing.T) {
		calls := 0
		if msg := runWaitFor(t, "one call", 0, func() bool { calls++; return true }); msg != "" || calls != 1 {
			t.Fatalf("failed %q after %d calls, want success after 1", msg, calls)
		}
	})
	t.Run("timeout names what", func(t *testing.T) {
		calls := 0
		msg := runWaitFor(t, "the moon to turn blue", 200*time.Millisecond, func() bool { calls++; return false })
		if !strings.Contains(msg, "the moon to turn blue") {
			t.Fatalf("failure message %q does not name what it waited for", msg)
		}
		if calls < 2 {
			t.Fatalf("cond called %d times before the timeout, want a poll", calls)
		}
	})
	t.Run("checks again after the deadline", func(t *testing.T) {
		// The condition comes true exactly when the timeout passes: the
		// last check, made after it, must see it.
		const timeout = 30 * time.Millisecond
		due := time.Now().Add(timeout)
		if msg := runWaitFor(t, "the deadline", timeout, func() bool { return !time.Now().Before(due) }); msg != "" {
			t.Fatalf("failed although the condition held at the last check: %s", msg)
		}
	})
}

func TestAlive(t *testing.T) {
	pidMax, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	beyond, err := strconv.Atoi(strings.TrimSpace(string(pidMax)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		pid  int
		want bool
	}{
		{"self", os.Getpid(), true},
		{"zero", 0, false},
		{"negative", -1, false},
		{"beyond pid_max", beyond + 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Alive(c.pid); got != c.want {
				t.Fatalf("Alive(%d) = %v, want %v", c.pid, got, c.want)
			}
		})
	}
	t.Run("zombie is gone", func(t *testing.T) {
		sleep, err := exec.LookPath("sleep")
		if err != nil {
			t.Skip("needs sleep(1) on PATH")
		}
		cmd := exec.Command(sleep, "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		defer cmd.Wait()
		defer cmd.Process.Kill()
		if !Alive(pid) {
			t.Fatalf("running child %d not alive", pid)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		// Not reaped yet: the child stays a zombie, which is gone.
		WaitFor(t, "the killed child to be gone", 10*time.Second, func() bool { return !Alive(pid) })
		st, err := procfs.ReadStat("/proc", pid)
		if err != nil || !st.Zombie() {
			t.Fatalf("child %d: %+v, %v: want an unreaped zombie", pid, st, err)
		}
	})
}
