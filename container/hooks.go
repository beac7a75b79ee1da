package container

import (
	"encoding/json"
	"fmt"
	"os/exec"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/hook"
	"golang.org/x/sys/unix"
)

// hookNamespaces are the container namespaces a createContainer hook
// runs in: the init's pid (for the hook, a child), network, ipc and uts
// namespaces. Not its mount namespace: a sandbox's holds no host path,
// and the hook's path resolves in the runtime's (as the spec says); not
// its user namespace, in which host files would be out of the hook's
// reach.
const hookNamespaces = unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS

// ociState is the container's state as hooks get it on stdin.
func (c *Container) ociState(status specs.ContainerState, pid int) specs.State {
	return specs.State{
		Version:     specs.Version,
		ID:          c.ID,
		Status:      status,
		Pid:         pid,
		Bundle:      c.Bundle,
		Annotations: c.Annotations,
	}
}

// runCreateHooks runs the hooks of the create operation, once the
// container's namespaces, cgroup, root and mounts exist and before its
// init pivots into the root: prestart and
// createRuntime in the runtime's namespaces, then createContainer in
// the container's (see hookNamespaces). A failed hook fails the create,
// which then undoes everything.
func (c *Container) runCreateHooks(spec *specs.Spec, p *initProc) error {
	state := c.ociState(specs.StateCreating, p.pid())
	for _, k := range []hook.Kind{hook.Prestart, hook.CreateRuntime} {
		if err := hook.Run(spec, k, state, nil); err != nil {
			return fmt.Errorf("create %q: %w", c.ID, err)
		}
	}
	inContainer := func(cmd *exec.Cmd) error {
		return onDiscardedThread(func() error {
			if err := unix.Setns(int(p.pidfd.Fd()), hookNamespaces); err != nil {
				return fmt.Errorf("joining the container's namespaces: %w", err)
			}
			return cmd.Start()
		})
	}
	if err := hook.Run(spec, hook.CreateContainer, state, inContainer); err != nil {
		return fmt.Errorf("create %q: %w", c.ID, err)
	}
	return nil
}

// releaseInit lets the init set the container up: the root-ready byte
// (the sandbox has mounted the root); with create hooks, once the init
// reports its mounts made (before it pivots), the hooks, whose failure
// fails the create; then the state for its startContainer hooks, and
// EOF.
func (c *Container) releaseInit(spec *specs.Spec, p *initProc) error {
	if _, err := p.rootReady.Write([]byte{1}); err != nil {
		return c.initGone(p, err)
	}
	if hook.HasCreateHooks(spec) {
		if err := p.waitMounted(); err != nil {
			return fmt.Errorf("create %q: %w", c.ID, err)
		}
		if err := c.runCreateHooks(spec, p); err != nil {
			return err
		}
	}
	if len(hook.List(spec, hook.StartContainer)) > 0 {
		data, err := json.Marshal(c.ociState(specs.StateCreated, p.pid()))
		if err != nil {
			return fmt.Errorf("create %q: %w", c.ID, err)
		}
		if _, err := p.rootReady.Write(data); err != nil {
			return c.initGone(p, err)
		}
	}
	p.rootReady.Close()
	p.rootReady = nil
	return nil
}

// initGone is the error of a create whose init went away: its own
// report says why.
func (c *Container) initGone(p *initProc, err error) error {
	if rerr := p.waitReady(); rerr != nil {
		return fmt.Errorf("create %q: %w", c.ID, rerr)
	}
	return fmt.Errorf("create %q: releasing the init: %w", c.ID, err)
}

// runPoststart runs the poststart hooks once the container's process
// runs: a failed one is logged as a warning.
func (c *Container) runPoststart() {
	spec, err := c.Spec()
	if err != nil || len(hook.List(spec, hook.Poststart)) == 0 {
		return
	}
	hook.RunWarning(spec, hook.Poststart, c.ociState(specs.StateRunning, c.InitPID))
}

// poststop returns a function that runs the poststop hooks of the
// container, to be called once it is deleted (its saved spec is read
// now, while it exists): a failed hook is logged as a warning.
func (c *Container) poststop() func() {
	spec, err := c.Spec()
	if err != nil || len(hook.List(spec, hook.Poststop)) == 0 {
		return func() {}
	}
	state := c.ociState(specs.StateStopped, 0)
	return func() { hook.RunWarning(spec, hook.Poststop, state) }
}
