package container

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/urpc"
)

// ExecOpts are the arguments of Exec.
type ExecOpts struct {
	// Process is the process to start.
	Process *specs.Process
	// Stdio is its stdin, stdout and stderr, unless it has a terminal.
	Stdio []*os.File
	// Console receives the pty master when Process.Terminal.
	Console *os.File
}

// Exec starts a process in the running container and returns its host
// pid and its pid in the sandbox (for WaitPID). The host pid is 0 if the
// process exited before it could be found.
func (c *Container) Exec(o ExecOpts) (int, int, error) {
	if err := c.Refresh(); err != nil {
		return 0, 0, err
	}
	if c.Status != boot.StatusRunning {
		return 0, 0, fmt.Errorf("cannot exec in container %q: it is %s", c.ID, c.Status)
	}
	files := o.Stdio
	if o.Process.Terminal {
		if o.Console == nil {
			return 0, 0, fmt.Errorf("exec in %q: a terminal needs a console socket", c.ID)
		}
		files = []*os.File{o.Console}
	}
	var res boot.CreateResult
	args := &boot.ExecArgs{CID: c.ID, Process: o.Process, FilePayload: urpc.FilePayload{Files: files}}
	if err := c.call(boot.MethodExec, args, &res); err != nil {
		return 0, 0, err
	}
	return sandboxToHost(c.Sandbox.PID, res.PID), res.PID, nil
}

// WaitPID waits for a process started by Exec (by its sandbox pid) and
// returns its exit code. The container's lock is released first.
func (c *Container) WaitPID(pid int) (int, error) {
	return c.waitCall(boot.MethodWaitPID, &boot.PIDArgs{CID: c.ID, PID: pid}, fmt.Sprintf("process %d of %q", pid, c.ID))
}
