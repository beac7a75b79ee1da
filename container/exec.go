package container

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/faultpoint"
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

// Exec starts a process in the running container, as a child of this
// process (so of its caller once this command exits, as with runc), and
// returns it once it has exec'd. It joins the namespaces of the
// container's init, its root included; the container's seccomp profile
// applies to it too.
func (c *Container) Exec(cfg Config, o ExecOpts) (*os.Process, error) {
	if err := c.Refresh(); err != nil {
		return nil, err
	}
	if c.Status != boot.StatusRunning {
		return nil, fmt.Errorf("cannot exec in container %q: it is %s", c.ID, c.Status)
	}
	if o.Process.Terminal && o.Console == nil {
		return nil, fmt.Errorf("exec in %q: a terminal needs a console socket", c.ID)
	}
	spec, err := c.Spec()
	if err != nil {
		return nil, err
	}
	spec.Process = o.Process
	initFD, err := c.Init().open()
	if err != nil {
		return nil, fmt.Errorf("exec in %q: %w", c.ID, err)
	}
	if initFD == nil {
		return nil, fmt.Errorf("cannot exec in container %q: it is stopped", c.ID)
	}
	defer initFD.Close()
	sandboxFD, err := c.Sandbox.open()
	if err != nil {
		return nil, fmt.Errorf("exec in %q: %w", c.ID, err)
	}
	if sandboxFD == nil {
		return nil, fmt.Errorf("cannot exec in container %q: its sandbox is gone", c.ID)
	}
	defer sandboxFD.Close()
	io := initOpts{exe: cfg.Exe, cid: c.ID, spec: spec, stdio: o.Stdio, join: initFD, sandbox: sandboxFD, exec: true}
	if o.Process.Terminal {
		io.stdio, io.console = nil, o.Console
	}
	p, err := forkInit(io)
	if err != nil {
		return nil, fmt.Errorf("exec in %q: %w", c.ID, err)
	}
	faultpoint.Reach(faultpoint.ExecForked)
	if c.Cgroup != nil {
		if err := c.Cgroup.Add(p.pid()); err != nil {
			p.abandon()
			return nil, fmt.Errorf("exec in %q: %w", c.ID, err)
		}
	}
	if err := p.waitReady(); err != nil {
		p.close()
		return nil, fmt.Errorf("exec in %q: %w", c.ID, err)
	}
	faultpoint.Reach(faultpoint.ExecCgroup)
	// In the container's cgroup: let it exec the process.
	if _, err := p.start.Write([]byte{1}); err != nil {
		p.abandon()
		return nil, fmt.Errorf("exec in %q: releasing the process: %w", c.ID, err)
	}
	if err := p.waitExec(); err != nil {
		p.abandon()
		return nil, fmt.Errorf("exec in %q: %w", c.ID, err)
	}
	p.close()
	return p.proc, nil
}
