package boot

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/fsimpl/fuse9p"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// Status is a container's status, as the OCI state reports it.
type Status string

// Container statuses.
const (
	// StatusCreating is recorded while create runs: if create is killed
	// half-way, the state names what to clean up.
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusStopped  Status = "stopped"
	// StatusPaused is recorded by runsc pause: the container's cgroup
	// is frozen (the sandbox does not know of it).
	StatusPaused Status = "paused"
)

// CodeNotInSandbox is the urpc error code of a call naming a container
// the sandbox does not hold (removed from it, or never created there).
const CodeNotInSandbox = "not-in-sandbox"

// notInSandboxError is the error of a call naming a container the
// sandbox does not hold.
type notInSandboxError struct{ cid string }

func (e *notInSandboxError) Error() string {
	return fmt.Sprintf("container %q not in this sandbox", e.cid)
}

// ErrorCode implements urpc.CodedError.
func (e *notInSandboxError) ErrorCode() string { return CodeNotInSandbox }

// sandbox is the state of the sandbox process: its containers.
type sandbox struct {
	mu         sync.Mutex
	containers map[string]*ctr
	// rootCID is the pod's sandbox container, the first one created.
	rootCID string
}

// ctr is one container of the sandbox.
type ctr struct {
	cid  string
	spec *specs.Spec
	// initPID is the container's init in the sandbox's pid namespace.
	initPID int
	// initFD is a pidfd of the init: its exit is watched, and it is
	// signalled, through it, never by a pid that could be reused.
	initFD *os.File
	// start releases the blocked init; nil once started.
	start *os.File
	// execStatus reports the init's exec of the process: EOF once
	// done, or why it failed.
	execStatus *os.File
	// status is created, running or stopped.
	status Status
	// exitStatus is the init's wait status once stopped, if exitKnown:
	// the init is its creator's child, and the sandbox reads its status
	// only if it is still a zombie when the sandbox looks.
	exitStatus syscall.WaitStatus
	exitKnown  bool
	// stopped is closed when the init has exited.
	stopped chan struct{}
	// trees are the 9P connections of its gofer trees.
	trees []*fuse9p.Tree
	// watchers stop the hang-up watches of its gofer connections.
	watchers []func()
}

func newSandbox() *sandbox {
	return &sandbox{containers: map[string]*ctr{}}
}

// reap collects any child of the sandbox that exits. Containers'
// processes are not its children (their creators are), but as pid 1 of
// the pod's pid namespace it inherits orphans of that namespace.
func (s *sandbox) reap() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD)
	for {
		for {
			var st unix.WaitStatus
			pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
		}
		<-sigs
	}
}

// get returns the container cid.
func (s *sandbox) get(cid string) (*ctr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[cid]
	if !ok {
		return nil, &notInSandboxError{cid: cid}
	}
	return c, nil
}

// watchInit takes the container's init, given as a pidfd, and records
// its exit once it happens.
func (s *sandbox) watchInit(c *ctr, pidfd *os.File) error {
	pid := pidfdPID(pidfd)
	switch {
	case pid == 0:
		return fmt.Errorf("init pidfd: the process is not in the sandbox's pid namespace")
	case pid < 0:
		return fmt.Errorf("init pidfd: not a pidfd of a live process")
	}
	s.mu.Lock()
	c.initPID, c.initFD = pid, pidfd
	s.mu.Unlock()
	go func() {
		fds := []unix.PollFd{{Fd: int32(pidfd.Fd()), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		s.initExited(c)
	}()
	return nil
}

// pidfdPID returns the pid, in the sandbox's pid namespace, of the
// process pidfd names: -1 once it has been reaped (or on error), 0 if it
// is outside the namespace.
func pidfdPID(pidfd *os.File) int {
	pid, err := procfs.PidfdPid(int(pidfd.Fd()))
	if err != nil {
		return -1
	}
	return pid
}

// initExited records the exit of c's init, with its exit status if it
// is still a zombie (its parent, outside the sandbox, reaps it).
func (s *sandbox) initExited(c *ctr) {
	st, err := procfs.ReadStat("/proc", c.initPID)
	// The stat is the init's only if its pid was still allocated after
	// the read (not reaped, so not reused): the pidfd tells.
	if err == nil && pidfdPID(c.initFD) != c.initPID {
		err = fmt.Errorf("reaped")
	}
	s.mu.Lock()
	c.status = StatusStopped
	if err == nil && st.Zombie() {
		c.exitStatus, c.exitKnown = syscall.WaitStatus(st.ExitCode), true
	}
	s.mu.Unlock()
	close(c.stopped)
	slog.Debug("container init exited", "cid", c.cid, "known", c.exitKnown, "status", ExitCode(c.exitStatus))
}

// kill sends sig to c's init, unless it has stopped.
func (c *ctr) kill(sig unix.Signal) error {
	select {
	case <-c.stopped:
		return nil
	default:
	}
	if c.initFD == nil {
		return nil
	}
	err := unix.PidfdSendSignal(int(c.initFD.Fd()), sig, nil, 0)
	if err == unix.ESRCH {
		return nil
	}
	return err
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
	s.mu.Unlock()
	slog.Warn("gofer connection lost: stopping containers", "cid", c.cid, "pod", c.cid == s.rootCID)
	for _, v := range victims {
		v.kill(unix.SIGKILL)
	}
}

// WaitExec reads a container process's exec-status pipe, whose write
// end the init holds open until it execs the process (close-on-exec):
// nil once it has, otherwise the init's reason. It closes f.
func WaitExec(f *os.File) error {
	msg, _ := io.ReadAll(f)
	f.Close()
	if len(msg) > 0 {
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// ExitCode converts a wait status to a shell-style exit code: the exit
// status, or 128+signal for a process killed by a signal.
func ExitCode(st syscall.WaitStatus) int {
	if st.Signaled() {
		return 128 + int(st.Signal())
	}
	return st.ExitStatus()
}

// closeFiles closes files.
func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
