package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procStart returns the start time of host process pid (field 22 of
// /proc/pid/stat), or 0 if it does not exist.
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// Fields after ")" start at field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// procOf records pid with its start time.
func procOf(pid int) Proc { return Proc{PID: pid, Start: procStart(pid)} }

// Alive reports whether the process still exists (and is the same
// process, not a reused pid). A zombie counts as gone.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/stat")
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return procStart(p.PID) == p.Start
}

// kill sends SIGKILL to p if it is alive and waits (without polling, on a
// pidfd) until it has exited, up to timeout.
func (p Proc) kill(timeout time.Duration) error { return killAll(timeout, p) }

// killAll sends SIGKILL to every process of procs that is alive, then
// waits (without polling, on pidfds) until all have exited, up to
// timeout. The processes die concurrently: tearing down one's namespaces
// does not wait for another's.
func killAll(timeout time.Duration, procs ...Proc) error {
	var fds []unix.PollFd
	defer func() {
		for _, f := range fds {
			unix.Close(int(f.Fd))
		}
	}()
	var pids []int
	for _, p := range procs {
		if !p.Alive() {
			continue
		}
		fd, err := unix.PidfdOpen(p.PID, 0)
		if err != nil {
			if err == unix.ESRCH {
				continue
			}
			return fmt.Errorf("pidfd of %d: %w", p.PID, err)
		}
		// Check identity again now that the pidfd pins the process.
		if procStart(p.PID) != p.Start {
			unix.Close(fd)
			continue
		}
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		pids = append(pids, p.PID)
	}
	for i, f := range fds {
		if err := unix.PidfdSendSignal(int(f.Fd), unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
			return fmt.Errorf("killing %d: %w", pids[i], err)
		}
	}
	deadline := time.Now().Add(timeout)
	for i := range fds {
		for {
			left := time.Until(deadline)
			if left < 0 {
				left = 0
			}
			n, err := unix.Poll(fds[i:i+1], int(left/time.Millisecond))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("waiting for %d: %w", pids[i], err)
			}
			if n == 0 {
				return fmt.Errorf("process %d did not exit within %v of SIGKILL", pids[i], timeout)
			}
			break
		}
	}
	return nil
}

// hostPID translates nsPID, a pid in the pid namespace of the sandbox
// whose pid 1 is host process sandbox, into a host pid. The sandbox forks
// containers' inits itself, so the answer is among its children: each
// thread's children file is read directly (a glob would list every
// task's directory as well).
func hostPID(sandbox, nsPID int) (int, error) {
	taskDir := "/proc/" + strconv.Itoa(sandbox) + "/task/"
	d, err := os.Open(taskDir)
	if err != nil {
		return 0, fmt.Errorf("tasks of sandbox %d: %w", sandbox, err)
	}
	tids, _ := d.Readdirnames(-1)
	d.Close()
	for _, tid := range tids {
		b, err := os.ReadFile(taskDir + tid + "/children")
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(c)
			if err != nil {
				continue
			}
			if ns := nsPIDs(pid); len(ns) >= 2 && ns[1] == nsPID {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no child of sandbox %d has pid %d in its namespace", sandbox, nsPID)
}

// nsPIDs returns the NSpid line of /proc/pid/status: the pid in each pid
// namespace, outermost first.
func nsPIDs(pid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "NSpid:")
		if !ok {
			continue
		}
		var out []int
		for _, f := range strings.Fields(v) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
		return out
	}
	return nil
}
