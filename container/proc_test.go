package container

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/internal/testhelp"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// waitZombie waits until the child pid has exited (it stays a zombie:
// nobody reaps it meanwhile).
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	testhelp.WaitFor(t, fmt.Sprintf("child %d to exit", pid), 10*time.Second, func() bool {
		st, err := procfs.ReadStat("/proc", pid)
		return err == nil && st.Zombie()
	})
}

// exitSignal reaps cmd and returns the signal that ended it, or -1.
func exitSignal(t *testing.T, cmd *exec.Cmd) syscall.Signal {
	t.Helper()
	cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return -1
	}
	return ws.Signal()
}

func TestProc(t *testing.T) {
	t.Run("alive", func(t *testing.T) {
		cmd := startSleep(t, 0)
		p := procOf(cmd.Process.Pid)
		if p.PID != cmd.Process.Pid || p.Start == 0 {
			t.Fatalf("procOf(%d) = %+v", cmd.Process.Pid, p)
		}
		for _, c := range []struct {
			name string
			p    Proc
			want bool
		}{
			{"running child", p, true},
			{"pid reused by another process", Proc{PID: p.PID, Start: p.Start + 1}, false},
			{"no start time recorded", Proc{PID: p.PID}, false},
			{"zero pid", Proc{}, false},
			{"negative pid", Proc{PID: -1, Start: p.Start}, false},
			{"self", procOf(os.Getpid()), true},
		} {
			t.Run(c.name, func(t *testing.T) {
				if got := c.p.Alive(); got != c.want {
					t.Fatalf("%+v.Alive() = %v, want %v", c.p, got, c.want)
				}
				f, err := c.p.open()
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if (f != nil) != c.want {
					t.Fatalf("open gave %v, want a pidfd: %v", f, c.want)
				}
				if f != nil {
					defer f.Close()
					// The pidfd names this very process.
					fdinfo, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", f.Fd()))
					if err != nil {
						t.Fatal(err)
					}
					if pid, err := procfs.FDInfoPid(fdinfo); err != nil || pid != c.p.PID {
						t.Fatalf("pidfd names pid %d, %v; want %d", pid, err, c.p.PID)
					}
				}
			})
		}
	})
	t.Run("zombie is gone", func(t *testing.T) {
		cmd := startSleep(t, 0)
		p := procOf(cmd.Process.Pid)
		unix.Kill(p.PID, unix.SIGKILL)
		waitZombie(t, p.PID)
		if p.Alive() {
			t.Fatal("an unreaped zombie is alive")
		}
		if f, err := p.open(); f != nil || err != nil {
			t.Fatalf("open of a zombie: %v, %v; want nil, nil", f, err)
		}
		if err := p.Signal(unix.SIGTERM); err != nil {
			t.Fatalf("Signal of a zombie: %v, want nil", err)
		}
		if err := p.kill(time.Second); err != nil {
			t.Fatalf("kill of a zombie: %v, want nil", err)
		}
	})
	t.Run("reaped is gone", func(t *testing.T) {
		cmd := startSleep(t, 0)
		p := procOf(cmd.Process.Pid)
		cmd.Process.Kill()
		cmd.Wait()
		if p.Alive() {
			t.Fatal("a reaped process is alive")
		}
		if err := p.Signal(unix.SIGKILL); err != nil {
			t.Fatalf("Signal of a reaped process: %v, want nil", err)
		}
	})
	t.Run("signal", func(t *testing.T) {
		cmd := startSleep(t, 0)
		p := procOf(cmd.Process.Pid)
		if err := p.Signal(0); err != nil {
			t.Fatalf("Signal(0): %v", err)
		}
		if !p.Alive() {
			t.Fatal("signal 0 ended the process")
		}
		if err := p.Signal(unix.SIGTERM); err != nil {
			t.Fatalf("Signal(TERM): %v", err)
		}
		if sig := exitSignal(t, cmd); sig != unix.SIGTERM {
			t.Fatalf("child ended by signal %d, want TERM", sig)
		}
	})
	t.Run("signal spares a reused pid", func(t *testing.T) {
		cmd := startSleep(t, 0)
		p := procOf(cmd.Process.Pid)
		stale := Proc{PID: p.PID, Start: p.Start - 1}
		if err := stale.Signal(unix.SIGKILL); err != nil {
			t.Fatalf("Signal: %v", err)
		}
		if err := stale.kill(time.Second); err != nil {
			t.Fatalf("kill: %v", err)
		}
		if !p.Alive() {
			t.Fatal("signalling a stale Proc killed the process that now has its pid")
		}
	})
}

func TestKillAll(t *testing.T) {
	t.Run("kills every live process, spares the rest", func(t *testing.T) {
		a, b, spared := startSleep(t, 0), startSleep(t, 0), startSleep(t, 0)
		pa, pb := procOf(a.Process.Pid), procOf(b.Process.Pid)
		gone := startSleep(t, 0)
		pgone := procOf(gone.Process.Pid)
		gone.Process.Kill()
		gone.Wait()
		stale := procOf(spared.Process.Pid)
		stale.Start += 1000
		if err := killAll(10*time.Second, pa, pgone, stale, Proc{}, pb); err != nil {
			t.Fatalf("killAll: %v", err)
		}
		// killAll returns once they have exited: zombies, not reaped.
		for _, p := range []Proc{pa, pb} {
			st, err := procfs.ReadStat("/proc", p.PID)
			if err != nil || !st.Zombie() {
				t.Errorf("process %d after killAll: %+v, %v; want a zombie", p.PID, st, err)
			}
		}
		for _, cmd := range []*exec.Cmd{a, b} {
			if sig := exitSignal(t, cmd); sig != unix.SIGKILL {
				t.Errorf("process %d ended by signal %d, want KILL", cmd.Process.Pid, sig)
			}
		}
		if !testhelp.Alive(spared.Process.Pid) {
			t.Fatal("killAll killed the process now holding a stale Proc's pid")
		}
	})
	t.Run("nothing to kill", func(t *testing.T) {
		if err := killAll(time.Second); err != nil {
			t.Fatalf("killAll(): %v", err)
		}
	})
	t.Run("stopped process", func(t *testing.T) {
		cmd := startSleep(t, 0)
		p := procOf(cmd.Process.Pid)
		unix.Kill(p.PID, unix.SIGSTOP)
		if err := p.kill(10 * time.Second); err != nil {
			t.Fatalf("kill of a stopped process: %v", err)
		}
		if sig := exitSignal(t, cmd); sig != unix.SIGKILL {
			t.Fatalf("ended by signal %d, want KILL", sig)
		}
	})
}

func TestSameNamespace(t *testing.T) {
	self := os.Getpid()
	child := startSleep(t, 0).Process.Pid
	for _, c := range []struct {
		name string
		a, b int
		ns   string
		want bool
	}{
		{"self", self, self, "pid", true},
		{"child shares mnt", self, child, "mnt", true},
		{"child shares net", child, self, "net", true},
		{"missing process", self, 0, "pid", false},
		{"missing process first", -5, self, "pid", false},
		{"unknown namespace type", self, self, "nope", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := sameNamespace(c.a, c.b, c.ns); got != c.want {
				t.Fatalf("sameNamespace(%d, %d, %q) = %v, want %v", c.a, c.b, c.ns, got, c.want)
			}
		})
	}
	t.Run("own namespace", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to make a UTS namespace")
		}
		other := startSleep(t, syscall.CLONE_NEWUTS).Process.Pid
		if sameNamespace(self, other, "uts") {
			t.Error("a child in a new UTS namespace shares ours")
		}
		if !sameNamespace(self, other, "net") {
			t.Error("a child with only a new UTS namespace does not share our network namespace")
		}
	})
}

func TestHostPIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make pid and mount namespaces")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("needs sh(1) on PATH")
	}
	// An init in its own pid and mount namespaces with two children;
	// a process of ours outside them must not be listed.
	init := exec.Command(sh, "-c", "sleep 100 & sleep 100 & wait")
	init.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	if err := init.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Killing the pid namespace's init kills its children.
		init.Process.Kill()
		init.Wait()
	})
	outside := startSleep(t, 0).Process.Pid
	ip := procOf(init.Process.Pid)
	c := &Container{State: State{ID: "box", InitPID: ip.PID, InitStart: ip.Start}}
	var got []Proc
	testhelp.WaitFor(t, "the init's two children to exec sleep", 10*time.Second, func() bool {
		got = c.hostPIDs()
		if len(got) != 3 {
			return false
		}
		// Forked children are "sh" until they exec.
		for _, p := range got[1:] {
			if st, err := procfs.ReadStat("/proc", p.PID); err != nil || st.Comm != "sleep" {
				return false
			}
		}
		return true
	})
	if got[0] != ip {
		t.Errorf("hostPIDs()[0] = %+v, want the init %+v", got[0], ip)
	}
	for _, p := range got[1:] {
		st, err := procfs.ReadStat("/proc", p.PID)
		if err != nil || st.PPID != ip.PID || st.Comm != "sleep" || p.PID == outside {
			t.Errorf("listed %+v: %+v, %v; want a sleep child of the init", p, st, err)
		}
	}
	t.Run("init gone", func(t *testing.T) {
		stale := &Container{State: State{ID: "box", InitPID: ip.PID, InitStart: ip.Start + 1}}
		if got := stale.hostPIDs(); got != nil {
			t.Fatalf("hostPIDs of a container whose init is gone: %+v", got)
		}
	})
}
