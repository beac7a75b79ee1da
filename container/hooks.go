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
// container's namespaces, cgroup and root exist and before its init
// sets up its mounts and pivots into the root: prestart and
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

// rootReadyMessage is what the creator writes on the init's root-ready
// pipe: one byte, then, if the spec has startContainer hooks (which the
// init runs), the state they get on stdin, as JSON.
func rootReadyMessage(spec *specs.Spec, state specs.State) []byte {
	msg := []byte{1}
	if len(hook.List(spec, hook.StartContainer)) == 0 {
		return msg
	}
	data, err := json.Marshal(state)
	if err != nil {
		return msg
	}
	return append(msg, data...)
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
