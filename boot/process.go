package boot

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"
)

// Descriptors of `runsc init`, the container's init before it execs the
// container's process.
const (
	// initSpecFD holds the spec JSON (a memfd).
	initSpecFD = 3
	// initReadyFD is a pipe: init writes one zero byte when the
	// container is set up and waits for start, or an error message
	// before it exits.
	initReadyFD = 4
	// initStartFD is a pipe: a byte (or EOF) on it lets init exec the
	// container's process.
	initStartFD = 5
	// initExecFD is a pipe, close-on-exec in the init: EOF on it means
	// the container's process was exec'd; otherwise the init writes why
	// exec failed.
	initExecFD = 6
	// initConsoleFD is the console socket, when the process has a
	// terminal.
	initConsoleFD = 7
)

// forkInit forks the container's init (`runsc init`) into a new pid
// namespace, before the container's root is mounted: the init starts up
// (a Go runtime, its spec) while the sandbox mounts the root, then waits
// on its --root-fd pipe. releaseInit lets it go on, abandonInit ends it.
// stdio is the container's stdin, stdout and stderr, or a single console
// socket when the process has a terminal.
func (s *sandbox) forkInit(c *ctr, stdio []*os.File) (*spawned, error) {
	p, err := s.spawn(c, c.spec, stdio, false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	c.initPID = p.pid
	c.start = p.start
	c.execStatus = p.execStatus
	s.mu.Unlock()
	s.onExit(p.pid, func(st unix.WaitStatus) { s.initExited(c, st) })
	return p, nil
}

// releaseInit tells the init forked by forkInit that the container's
// root is mounted: it takes its own mount namespace (a copy of the
// sandbox's, with the root in it), sets the container up and waits for
// Start. It returns the init's pid once it is ready; if the init fails
// it returns its error.
func (s *sandbox) releaseInit(c *ctr, p *spawned) (int, error) {
	p.rootReady.Write([]byte{1})
	p.rootReady.Close()
	return p.handshake(func() unix.WaitStatus { <-c.stopped; return c.exitStatus })
}

// abandonInit ends an init forked by forkInit whose root could not be
// mounted, and waits for its exit.
func (s *sandbox) abandonInit(c *ctr, p *spawned) {
	p.rootReady.Close()
	p.ready.Close()
	s.mu.Lock()
	if c.start != nil {
		c.start.Close()
		c.start = nil
	}
	if c.execStatus != nil {
		c.execStatus.Close()
		c.execStatus = nil
	}
	s.mu.Unlock()
	unix.Kill(p.pid, unix.SIGKILL)
	<-c.stopped
}

// spawned is a `runsc init` just forked.
type spawned struct {
	pid int
	// start releases it (nil in exec mode, which does not wait).
	start *os.File
	// ready reports its setup: one zero byte, or an error message.
	ready *os.File
	// execStatus reports the exec: EOF once done, or an error message.
	execStatus *os.File
	// rootReady, in create mode, releases the init once the container's
	// root is mounted (a byte), or has it exit (EOF).
	rootReady *os.File
}

// waitExec waits until the process has exec'd, or returns why it could
// not.
func waitExec(f *os.File) error {
	msg, _ := io.ReadAll(f)
	f.Close()
	if len(msg) > 0 {
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// handshake waits for the spawned init's report. On failure the init is
// killed and status (which waits for its exit) gives its exit status.
func (p *spawned) handshake(status func() unix.WaitStatus) (int, error) {
	msg, _ := io.ReadAll(p.ready)
	p.ready.Close()
	if len(msg) == 1 && msg[0] == 0 {
		return p.pid, nil
	}
	if p.start != nil {
		p.start.Close()
	}
	unix.Kill(p.pid, unix.SIGKILL)
	st := status()
	if len(msg) == 0 {
		return 0, fmt.Errorf("container init exited with status %d before it was ready", exitCode(st))
	}
	return 0, fmt.Errorf("container init: %s", msg)
}

// spawn forks `runsc init` with spec. In create mode (exec false) it gets
// a new pid namespace (or c.pidPeer's) and makes its own mount namespace
// once released through rootReady; in exec mode it enters the mount and
// pid namespaces of c's init (and its network namespace) and execs
// spec.Process once set up.
//
// The fork runs on a goroutine of its own, locked to its thread: joining
// a network namespace, or c's namespaces, is done on that thread only,
// whose children inherit them; the thread is discarded with the
// goroutine, so no other goroutine ever runs in those namespaces.
func (s *sandbox) spawn(c *ctr, spec *specs.Spec, stdio []*os.File, exec bool) (*spawned, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encoding spec: %w", err)
	}
	memfd, err := unix.MemfdCreate("runsc-spec", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd for spec: %w", err)
	}
	specFile := os.NewFile(uintptr(memfd), "spec")
	defer specFile.Close()
	if _, err := specFile.Write(specJSON); err != nil {
		return nil, fmt.Errorf("writing spec: %w", err)
	}
	if _, err := specFile.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyW.Close()
	startR, startW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		return nil, err
	}
	defer startR.Close()
	execR, execW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		startW.Close()
		return nil, err
	}
	defer execW.Close()
	files := make([]*os.File, 0, 8)
	var console *os.File
	if len(stdio) == 3 {
		files = append(files, stdio...)
	} else {
		devNull, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		defer devNull.Close()
		files = append(files, devNull, devNull, devNull)
		console = stdio[0]
	}
	files = append(files, specFile, readyW, startR, execW)
	args := []string{"runsc", "init", "--cid=" + c.cid}
	if console != nil {
		files = append(files, console)
		args = append(args, "--console")
	}
	var rootR, rootW *os.File
	if exec {
		args = append(args, "--exec")
	} else {
		if rootR, rootW, err = os.Pipe(); err != nil {
			readyR.Close()
			startW.Close()
			execR.Close()
			return nil, err
		}
		defer rootR.Close()
		files = append(files, rootR)
		args = append(args, "--root-fd="+strconv.Itoa(len(files)-1))
	}
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		pid, err := s.fork(c, args, files, exec)
		done <- result{pid, err}
	}()
	r := <-done
	if r.err != nil {
		readyR.Close()
		startW.Close()
		execR.Close()
		if rootW != nil {
			rootW.Close()
		}
		return nil, r.err
	}
	p := &spawned{pid: r.pid, ready: readyR, start: startW, execStatus: execR, rootReady: rootW}
	if exec {
		startW.Close()
		p.start = nil
	}
	return p, nil
}

// fork starts `runsc init` from the calling, locked thread after moving
// that thread into the namespaces the child must have.
func (s *sandbox) fork(c *ctr, args []string, files []*os.File, exec bool) (int, error) {
	exe := "/proc/self/exe"
	// The init makes its mount namespace itself, once released (see
	// forkInit).
	sys := &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}
	if exec {
		// After entering the container's mount namespace, /proc is the
		// container's: runsc is reached through a descriptor the child
		// inherits, by its own /proc/self.
		self, err := os.Open("/proc/self/exe")
		if err != nil {
			return 0, fmt.Errorf("opening runsc: %w", err)
		}
		defer self.Close()
		files = append(files, self)
		exe = "/proc/self/fd/" + strconv.Itoa(len(files)-1)
		pidfd, err := unix.PidfdOpen(c.initPID, 0)
		if err != nil {
			return 0, fmt.Errorf("container %q init: %w", c.cid, err)
		}
		defer unix.Close(pidfd)
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return 0, fmt.Errorf("unshare fs: %w", err)
		}
		if err := unix.Setns(pidfd, unix.CLONE_NEWNS|unix.CLONE_NEWPID|unix.CLONE_NEWNET); err != nil {
			return 0, fmt.Errorf("entering container %q: %w", c.cid, err)
		}
		// The child finds runsc through /proc/self: it must be a real
		// proc, not a directory of the image's.
		var st unix.Statfs_t
		if err := unix.Statfs("/proc", &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
			return 0, fmt.Errorf("container %q has no proc file system at /proc: exec needs one", c.cid)
		}
		sys = &syscall.SysProcAttr{}
	} else {
		if s.netnsFD >= 0 {
			if err := unix.Setns(s.netnsFD, unix.CLONE_NEWNET); err != nil {
				return 0, fmt.Errorf("joining the network namespace: %w", err)
			}
		}
		if c.pidPeer > 0 {
			// Children of this thread go into the peer's pid
			// namespace instead of a new one.
			pidfd, err := unix.PidfdOpen(c.pidPeer, 0)
			if err != nil {
				return 0, fmt.Errorf("pid namespace peer: %w", err)
			}
			defer unix.Close(pidfd)
			if err := unix.Setns(pidfd, unix.CLONE_NEWPID); err != nil {
				return 0, fmt.Errorf("joining the pid namespace: %w", err)
			}
			sys.Cloneflags = 0
		}
	}
	proc, err := os.StartProcess(exe, args, &os.ProcAttr{Dir: "/", Env: []string{}, Files: files, Sys: sys})
	if err != nil {
		return 0, fmt.Errorf("starting container init: %w", err)
	}
	pid := proc.Pid
	proc.Release()
	s.forked()
	return pid, nil
}
