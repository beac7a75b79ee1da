package boot

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/fsimpl/fuse9p"
	"golang.org/x/sys/unix"
)

// Container statuses, as the OCI state reports them.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// sandbox is the state of the sandbox process: its containers and the
// exit statuses its reaper collects.
type sandbox struct {
	mu         sync.Mutex
	containers map[string]*ctr
	// exits maps a child pid to the function that takes its wait status.
	exits map[int]func(unix.WaitStatus)
	// early holds statuses of children that exited before they were
	// registered.
	early map[int]unix.WaitStatus
	// netnsFD is the network namespace containers join, or -1 for the
	// sandbox's own.
	netnsFD int
	// rootCID is the pod's sandbox container, the first one created.
	rootCID string
	// forkedCh wakes reap, waiting for a first child, after a fork.
	forkedCh chan struct{}
}

// ctr is one container of the sandbox.
type ctr struct {
	cid  string
	spec *specs.Spec
	// initPID is the container's init in the sandbox's pid namespace.
	initPID int
	// start releases the blocked init; nil once started.
	start *os.File
	// execStatus reports the init's exec of the process (see
	// initExecFD).
	execStatus *os.File
	// status is created, running or stopped.
	status string
	// exitStatus is the init's wait status once stopped.
	exitStatus unix.WaitStatus
	// stopped is closed when the init has exited.
	stopped chan struct{}
	// trees are the 9P connections of its gofer trees.
	trees []*fuse9p.Tree
	// watchers stop the hang-up watches of its gofer connections.
	watchers []func()
	// execs are the processes exec'd into it, by pid.
	execs map[int]*execProc
	// pidPeer, if not 0, is the init of the container whose pid
	// namespace this one shares.
	pidPeer int
}

func newSandbox() *sandbox {
	return &sandbox{
		containers: map[string]*ctr{},
		exits:      map[int]func(unix.WaitStatus){},
		early:      map[int]unix.WaitStatus{},
		netnsFD:    -1,
		forkedCh:   make(chan struct{}, 1),
	}
}

// onExit registers fn to receive the wait status of child pid.
func (s *sandbox) onExit(pid int, fn func(unix.WaitStatus)) {
	s.mu.Lock()
	st, gone := s.early[pid]
	if gone {
		delete(s.early, pid)
	} else {
		s.exits[pid] = fn
	}
	s.mu.Unlock()
	if gone {
		fn(st)
	}
}

// reap collects every child that exits: the sandbox is pid 1 of its pid
// namespace, so orphans are reparented to it too. It blocks in waitid
// until a child has exited, rather than waiting for SIGCHLD, which
// reaches a goroutine only through the runtime's signal handler and
// os/signal's goroutine; with no child at all it waits for the next
// fork (see forked).
func (s *sandbox) reap() {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
		switch err {
		case nil:
			s.collect()
		case unix.EINTR:
		case unix.ECHILD:
			<-s.forkedCh
		default:
			slog.Warn("waitid failed: reaping on SIGCHLD instead", "err", err)
			s.reapOnSignal()
			return
		}
	}
}

// forked tells reap that a child was forked.
func (s *sandbox) forked() {
	select {
	case s.forkedCh <- struct{}{}:
	default:
	}
}

// reapOnSignal collects children as they exit, woken by SIGCHLD.
func (s *sandbox) reapOnSignal() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD)
	s.collect()
	for range sigs {
		s.collect()
	}
}

// collect reaps every child that has exited and hands each status to
// the function registered for that child.
func (s *sandbox) collect() {
	for {
		var st unix.WaitStatus
		pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		s.mu.Lock()
		fn, ok := s.exits[pid]
		if ok {
			delete(s.exits, pid)
		} else {
			s.early[pid] = st
		}
		s.mu.Unlock()
		if ok {
			fn(st)
		}
	}
}

// get returns the container cid.
func (s *sandbox) get(cid string) (*ctr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[cid]
	if !ok {
		return nil, fmt.Errorf("container %q not in this sandbox", cid)
	}
	return c, nil
}

// initExited records the exit of c's init.
func (s *sandbox) initExited(c *ctr, st unix.WaitStatus) {
	s.mu.Lock()
	c.status = StatusStopped
	c.exitStatus = st
	s.mu.Unlock()
	close(c.stopped)
	slog.Debug("container init exited", "cid", c.cid, "status", exitCode(st))
}

// goferLost handles the loss of one of c's gofer connections: the
// container cannot reach its files any more, so it is stopped (its pid
// namespace killed) rather than left running on broken files.
//
// Losing the gofer of the pod's sandbox container stops the whole pod.
func (s *sandbox) goferLost(c *ctr) {
	s.mu.Lock()
	victims := []*ctr{c}
	if c.cid == s.rootCID {
		victims = victims[:0]
		for _, o := range s.containers {
			victims = append(victims, o)
		}
	}
	var pids []int
	for _, v := range victims {
		if v.status != StatusStopped && v.initPID > 0 {
			pids = append(pids, v.initPID)
		}
	}
	s.mu.Unlock()
	if len(pids) > 0 {
		slog.Warn("gofer connection lost: stopping containers", "cid", c.cid, "pod", c.cid == s.rootCID)
	}
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
	}
}

// exitCode converts a wait status to a shell-style exit code.
func exitCode(st unix.WaitStatus) int {
	if st.Signaled() {
		return 128 + int(st.Signal())
	}
	return st.ExitStatus()
}
