package boot

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

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
	// initConsoleFD is the console socket, when the process has a
	// terminal.
	initConsoleFD = 6
)

// startInit forks the container's init (`runsc init`) into new mount and
// pid namespaces. It returns once the init has set the container up and
// waits for Start, with its pid; if the init fails it returns its error.
// stdio is the container's stdin, stdout and stderr, or a single console
// socket when the process has a terminal.
func (s *sandbox) startInit(c *ctr, stdio []*os.File) (int, error) {
	specJSON, err := json.Marshal(c.spec)
	if err != nil {
		return 0, fmt.Errorf("encoding spec: %w", err)
	}
	memfd, err := unix.MemfdCreate("runsc-spec", unix.MFD_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("memfd for spec: %w", err)
	}
	specFile := os.NewFile(uintptr(memfd), "spec")
	defer specFile.Close()
	if _, err := specFile.Write(specJSON); err != nil {
		return 0, fmt.Errorf("writing spec: %w", err)
	}
	if _, err := specFile.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer readyR.Close()
	startR, startW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return 0, err
	}
	files := make([]*os.File, 0, 7)
	var console *os.File
	if len(stdio) == 3 {
		files = append(files, stdio...)
	} else {
		devNull, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
		if err != nil {
			return 0, err
		}
		defer devNull.Close()
		files = append(files, devNull, devNull, devNull)
		console = stdio[0]
	}
	files = append(files, specFile, readyW, startR)
	args := []string{"runsc", "init", "--cid=" + c.cid}
	if console != nil {
		files = append(files, console)
		args = append(args, "--console")
	}
	if s.netnsFD >= 0 {
		// A child is forked into the network namespace of the thread
		// that forks it: join the namespace on this thread only. The
		// thread stays locked, and is discarded when its goroutine
		// ends, so no other goroutine runs in that namespace.
		runtime.LockOSThread()
		if err := unix.Setns(s.netnsFD, unix.CLONE_NEWNET); err != nil {
			startW.Close()
			return 0, fmt.Errorf("joining the network namespace: %w", err)
		}
	}
	proc, err := os.StartProcess("/proc/self/exe", args, &os.ProcAttr{
		Dir:   "/",
		Env:   []string{},
		Files: files,
		Sys:   &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID},
	})
	readyW.Close()
	startR.Close()
	if err != nil {
		startW.Close()
		return 0, fmt.Errorf("starting container init: %w", err)
	}
	pid := proc.Pid
	proc.Release()
	c.initPID = pid
	c.start = startW
	s.onExit(pid, func(st unix.WaitStatus) { s.initExited(c, st) })
	msg, _ := io.ReadAll(readyR)
	if len(msg) == 1 && msg[0] == 0 {
		return pid, nil
	}
	startW.Close()
	c.start = nil
	unix.Kill(pid, unix.SIGKILL)
	<-c.stopped
	if len(msg) == 0 {
		return 0, fmt.Errorf("container init exited with status %d before it was ready", exitCode(c.exitStatus))
	}
	return 0, fmt.Errorf("container init: %s", msg)
}
