package boot

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/urpc"
	"golang.org/x/sys/unix"
)

// Exec controller methods.
const (
	// MethodExec starts a process in a running container.
	MethodExec = "containerManager.Exec"
	// MethodWaitPID waits for a process started by MethodExec.
	MethodWaitPID = "containerManager.WaitPID"
)

// ExecArgs are the arguments of MethodExec.
//
// FilePayload carries the process's stdin, stdout and stderr, or, when
// Process.Terminal is set, a single connected console socket on which
// the pty master is sent.
type ExecArgs struct {
	CID string
	// Process is the process to start; the container's seccomp profile
	// applies to it too.
	Process *specs.Process
	urpc.FilePayload
}

// PIDArgs name a process of a container (pid in the sandbox's pid
// namespace); the argument of MethodWaitPID.
type PIDArgs struct {
	CID string
	PID int
}

// execProc is a process started by MethodExec.
type execProc struct {
	done   chan struct{}
	status unix.WaitStatus
}

// Exec implements MethodExec.
func (m *containerManager) Exec(args *ExecArgs, res *CreateResult) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	if args.Process == nil || len(args.Process.Args) == 0 {
		return fmt.Errorf("exec in %q: process.args must not be empty", args.CID)
	}
	want := 3
	if args.Process.Terminal {
		want = 1
	}
	if len(args.Files) != want {
		return fmt.Errorf("exec in %q: got %d files, want %d", args.CID, len(args.Files), want)
	}
	m.s.mu.Lock()
	status := c.status
	spec := *c.spec
	m.s.mu.Unlock()
	if status != StatusRunning {
		return fmt.Errorf("cannot exec in container %q: it is %s", args.CID, status)
	}
	spec.Process = args.Process
	p, err := m.s.spawn(c, &spec, args.Files, true)
	if err != nil {
		return fmt.Errorf("exec in %q: %w", args.CID, err)
	}
	e := &execProc{done: make(chan struct{})}
	m.s.mu.Lock()
	if c.execs == nil {
		c.execs = map[int]*execProc{}
	}
	c.execs[p.pid] = e
	m.s.mu.Unlock()
	m.s.onExit(p.pid, func(st unix.WaitStatus) {
		e.status = st
		close(e.done)
	})
	pid, err := p.handshake(func() unix.WaitStatus { <-e.done; return e.status })
	if err != nil {
		p.execStatus.Close()
		return fmt.Errorf("exec in %q: %w", args.CID, err)
	}
	if err := waitExec(p.execStatus); err != nil {
		return fmt.Errorf("exec in %q: %w", args.CID, err)
	}
	res.PID = pid
	return nil
}

// WaitPID implements MethodWaitPID.
func (m *containerManager) WaitPID(args *PIDArgs, res *WaitResult) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	e, ok := c.execs[args.PID]
	m.s.mu.Unlock()
	if !ok {
		if args.PID == c.initPID {
			return m.Wait(&CIDArgs{CID: args.CID}, res)
		}
		return fmt.Errorf("no process %d started in container %q", args.PID, args.CID)
	}
	<-e.done
	res.ExitStatus = exitCode(e.status)
	return nil
}
