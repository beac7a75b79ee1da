package container

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// procOf records pid with its start time.
func procOf(pid int) Proc {
	st, _ := procfs.ReadStat("/proc", pid)
	return Proc{PID: pid, Start: st.StartTime}
}

// Alive reports whether the process still exists (and is the same
// process, not a reused pid). A zombie counts as gone.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, err := procfs.ReadStat("/proc", p.PID)
	return err == nil && !st.Zombie() && st.StartTime == p.Start
}

// dying reports whether p (the same process, not a reused pid) has
// SIGKILL pending: it is on its way out, though a thread waiting
// uninterruptibly (see fuseConnections) may hold it there.
func (p Proc) dying() bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/status")
	if err != nil {
		return false
	}
	pending, err := procfs.PendingSignals(data)
	if err != nil || pending&(1<<(unix.SIGKILL-1)) == 0 {
		return false
	}
	st, err := procfs.ReadStat("/proc", p.PID)
	return err == nil && st.StartTime == p.Start
}

// zombieLeader reports whether p (the same process, not a reused pid)
// has exited but still has threads: its thread group leader is a zombie
// with other threads alive.
func (p Proc) zombieLeader() bool {
	st, err := procfs.ReadStat("/proc", p.PID)
	if err != nil || !st.Zombie() || st.StartTime != p.Start {
		return false
	}
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(p.PID) + "/task")
	return len(tasks) > 1
}

// open returns a pidfd of p if it is alive, checked against its start
// time once the pidfd pins it; nil (and no error) if it is gone.
func (p Proc) open() (*os.File, error) {
	if !p.Alive() {
		return nil, nil
	}
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err == unix.ESRCH {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pidfd of %d: %w", p.PID, err)
	}
	if !p.Alive() {
		unix.Close(fd)
		return nil, nil
	}
	return os.NewFile(uintptr(fd), "pidfd-"+strconv.Itoa(p.PID)), nil
}

// Signal sends sig to p; a process that is gone is not an error.
func (p Proc) Signal(sig unix.Signal) error {
	f, err := p.open()
	if f == nil {
		return err
	}
	defer f.Close()
	if err := unix.PidfdSendSignal(int(f.Fd()), sig, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("signalling %d: %w", p.PID, err)
	}
	return nil
}

// kill sends SIGKILL to p if it is alive and waits (without polling, on a
// pidfd) until it has exited, up to timeout.
func (p Proc) kill(timeout time.Duration) error { return killAll(timeout, p) }

// killAll sends SIGKILL to every process of procs that is alive, then
// waits (without polling, on pidfds) until all have exited, up to
// timeout; a sandbox (see Proc.fuseServer) that does not exit at once
// has its FUSE connections aborted. The processes die concurrently:
// tearing down one's namespaces does not wait for another's.
func killAll(timeout time.Duration, procs ...Proc) error {
	// fds[i] is a pidfd of live[i].
	var fds []unix.PollFd
	var live []Proc
	defer func() {
		for _, f := range fds {
			unix.Close(int(f.Fd))
		}
	}()
	for _, p := range procs {
		f, err := p.open()
		if err != nil {
			return err
		}
		if f == nil {
			if p.servesFUSE && p.zombieLeader() {
				// Its main thread is gone, not all of it.
				if err := abortFUSE(p.PID); err != nil {
					return fmt.Errorf("killing %d: %w", p.PID, err)
				}
			}
			continue
		}
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			return fmt.Errorf("pidfd of %d: %w", p.PID, err)
		}
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		live = append(live, p)
	}
	for i, f := range fds {
		if err := unix.PidfdSendSignal(int(f.Fd), unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
			return fmt.Errorf("killing %d: %w", live[i].PID, err)
		}
	}
	deadline := time.Now().Add(timeout)
	for i, p := range live {
		// A sandbox still there after a moment may be stuck on its own
		// FUSE server: its connections are aborted.
		wait := max(time.Until(deadline), 0)
		if p.servesFUSE {
			wait = min(fuseGrace, wait)
		}
		exited, err := waitExit(fds[i:i+1], wait)
		if err == nil && !exited && p.servesFUSE {
			if err := abortFUSE(p.PID); err != nil {
				return fmt.Errorf("killing %d: %w", p.PID, err)
			}
			exited, err = waitExit(fds[i:i+1], max(time.Until(deadline), 0))
		}
		if err != nil {
			return fmt.Errorf("waiting for %d: %w", p.PID, err)
		}
		if !exited {
			return fmt.Errorf("process %d did not exit within %v of SIGKILL", p.PID, timeout)
		}
	}
	return nil
}

// fuseGrace is how long a killed process may take to exit before runsc
// looks for FUSE connections that hold it (see abortFUSE).
const fuseGrace = 500 * time.Millisecond

// waitExit waits up to timeout for the pidfd in fd to report its
// process's exit.
func waitExit(fd []unix.PollFd, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll(fd, int(max(time.Until(deadline), 0)/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		return n > 0, err
	}
}

// sameNamespace reports whether host processes a and b are in the same
// namespace of type ns ("pid", "mnt", ...).
func sameNamespace(a, b int, ns string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat("/proc/"+strconv.Itoa(a)+"/ns/"+ns, &sa) != nil || unix.Stat("/proc/"+strconv.Itoa(b)+"/ns/"+ns, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
