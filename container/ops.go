package container

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/cgroup"
	"github.com/runsc/runsc/faultpoint"
	"github.com/runsc/runsc/procfs"
	"github.com/runsc/runsc/urpc"
	"golang.org/x/sys/unix"
)

// Refresh finds out the container's status and records it: stopped once
// its init or its sandbox is gone, otherwise what the sandbox says.
func (c *Container) Refresh() error {
	status := boot.StatusStopped
	if c.Sandbox.Alive() && c.Init().Alive() {
		var res boot.StateResult
		err := c.call(boot.MethodState, &boot.CIDArgs{CID: c.ID}, &res)
		switch {
		case err == nil:
			status = res.Status
		case !c.Sandbox.Alive():
			// The sandbox went away meanwhile: stopped.
		case urpc.HasCode(err, boot.CodeNotInSandbox):
			// Removed from the sandbox: stopped.
		default:
			return err
		}
	}
	if status == c.Status || status == boot.StatusRunning && c.Status == boot.StatusPaused {
		// Frozen: the sandbox sees it running.
		return nil
	}
	c.Status = status
	return c.save()
}

// OCIState returns the container's state as the OCI runtime spec defines
// it, after a Refresh.
func (c *Container) OCIState() (specs.State, error) {
	if err := c.Refresh(); err != nil {
		return specs.State{}, err
	}
	st := specs.State{
		Version:     specs.Version,
		ID:          c.ID,
		Status:      specs.ContainerState(c.Status),
		Bundle:      c.Bundle,
		Annotations: c.Annotations,
	}
	if c.Status != boot.StatusStopped {
		st.Pid = c.InitPID
	}
	return st, nil
}

// Start lets a created container's process run.
func (c *Container) Start() error {
	if !c.fresh {
		if err := c.Refresh(); err != nil {
			return err
		}
	}
	if c.Status != boot.StatusCreated {
		return fmt.Errorf("cannot start container %q: it is %s, not created", c.ID, c.Status)
	}
	c.fresh = false
	faultpoint.Reach(faultpoint.Start)
	if err := c.call(boot.MethodStart, &boot.CIDArgs{CID: c.ID}, &boot.Empty{}); err != nil {
		return err
	}
	c.Status = boot.StatusRunning
	if err := c.save(); err != nil {
		return err
	}
	c.runPoststart()
	return nil
}

// Kill sends sig to the container's init, or to all its processes. The
// signals go from this process, through pidfds: the init and every
// process of the container are in the sandbox, but none is the
// sandbox's child.
func (c *Container) Kill(sig unix.Signal, all bool) error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if all && c.Cgroup != nil && c.Status == boot.StatusStopped {
		// Its init is gone, but not necessarily the rest (a pid
		// namespace it shares outlives it): as runc, every process
		// in its cgroup.
		c.Cgroup.Signal(sig)
		return nil
	}
	if c.Status == boot.StatusStopped {
		if all {
			// Nothing left to signal: done, as runc does
			// (containerd's task delete --force sends this).
			return nil
		}
		// runc's wording: containerd's shim recognises it as "the
		// process is gone".
		return fmt.Errorf("kill %q: container not running", c.ID)
	}
	if c.Status == boot.StatusPaused && sig == unix.SIGKILL && c.Cgroup != nil {
		// As runc: a frozen process dies of SIGKILL only once thawed.
		defer c.thawKilled()
	}
	if !all {
		return c.Init().Signal(sig)
	}
	if c.Cgroup != nil {
		// Every process of the container is in its cgroup, whatever
		// namespaces it has since made.
		c.Cgroup.Signal(sig)
		return nil
	}
	for _, p := range c.hostPIDs() {
		if err := p.Signal(sig); err != nil {
			return err
		}
	}
	return nil
}

// ExitStatus is what Wait learns of a container's exit.
type ExitStatus struct {
	// Code is the exit code, 128+signal for a killed process.
	Code int
	// Known is false when runsc could not learn the status: the
	// container's init is the child of the command that created it (as
	// with runc), and once that command has exited only the caller that
	// reaps the init gets its status. The sandbox reads it if the
	// process is still unreaped when it exits.
	Known bool
}

// Wait waits for the container's init to exit. The container's lock is
// released first, so that waiting does not block other commands on the
// container. If this process created the container, the init is its
// child and Wait reaps it.
func (c *Container) Wait() (ExitStatus, error) {
	if c.child != nil {
		child := c.child
		c.child = nil
		c.Close()
		ps, err := child.Wait()
		if err != nil {
			return ExitStatus{}, fmt.Errorf("waiting for container %q: %w", c.ID, err)
		}
		return ExitStatus{Code: boot.ExitCode(ps.Sys().(syscall.WaitStatus)), Known: true}, nil
	}
	if !c.Sandbox.Alive() {
		c.Close()
		return ExitStatus{}, nil
	}
	cl, err := c.controller()
	if err != nil {
		return ExitStatus{}, err
	}
	defer cl.Close()
	defer watchSandbox(c.Sandbox, cl)()
	c.Close()
	var res boot.WaitResult
	if err := cl.Call(boot.MethodWait, &boot.CIDArgs{CID: c.ID}, &res); err != nil {
		if urpc.HasCode(err, boot.CodeNotInSandbox) {
			return ExitStatus{}, nil
		}
		return ExitStatus{}, fmt.Errorf("waiting for container %q: %w", c.ID, err)
	}
	return ExitStatus{Code: res.ExitStatus, Known: res.Known}, nil
}

// Delete removes a stopped (or, with force, any) container: its sandbox
// and gofer are killed and its state directory removed.
func (c *Container) Delete(force bool) error {
	if !force {
		// With force the status does not matter: everything goes.
		if err := c.Refresh(); err != nil {
			return err
		}
		if c.Status == boot.StatusRunning || c.Status == boot.StatusPaused {
			return fmt.Errorf("cannot delete container %q: it is %s (stop it first or use --force)", c.ID, c.Status)
		}
	}
	if c.Cgroup != nil {
		// Thawed, so that the kill below takes effect (a pod's
		// member's cgroups are thawed by their Destroy).
		c.Cgroup.Freeze(false)
	}
	poststop := c.poststop()
	// While the pod's namespace is reachable through its sandbox.
	c.removeInterfaces()
	if c.child != nil {
		// This process's child: it must be reaped for the sandbox, pid
		// 1 of its pid namespace, to finish exiting.
		go c.child.Wait()
		c.child = nil
	}
	if c.IsSubcontainer() {
		// Only this container leaves the sandbox. Its processes die
		// first: those of a pid namespace it shares (the host's)
		// outlive its init.
		if c.Cgroup != nil {
			c.Cgroup.Signal(unix.SIGKILL)
		}
		if c.Sandbox.Alive() {
			if err := c.call(boot.MethodDestroy, &boot.CIDArgs{CID: c.ID}, &boot.Empty{}); err != nil && c.Sandbox.Alive() && !urpc.HasCode(err, boot.CodeNotInSandbox) {
				return fmt.Errorf("deleting container %q: %w", c.ID, err)
			}
		}
		if err := killAll(killTimeout, c.Init(), c.Gofer); err != nil {
			return fmt.Errorf("deleting container %q: %w", c.ID, err)
		}
	} else {
		// The sandbox and the gofer die together rather than one after
		// the other: each takes its namespaces down on exit. Every
		// container process of the pod is in the sandbox's pid
		// namespace and dies with it, once thawed if paused (in a
		// pid namespace the pod joined, through their cgroups'
		// Destroy below and in deletePodMembers).
		c.thawPodMembers()
		c.removeMembersInterfaces()
		if err := killAll(killTimeout, c.Sandbox.fuseServer(), c.Gofer, c.Init()); err != nil {
			return fmt.Errorf("deleting container %q: %w", c.ID, err)
		}
		c.deletePodMembers()
	}
	faultpoint.Reach(faultpoint.DeleteKilled)
	errs := []error{c.removeNetwork()}
	for _, cg := range []*cgroup.Cgroup{c.Cgroup, c.SandboxCgroup} {
		if cg != nil {
			errs = append(errs, cg.Destroy())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting container %q: %w", c.ID, err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("deleting container %q: %w", c.ID, err)
	}
	c.Close()
	poststop()
	return nil
}

// HostProcess is one process of a container, with host pids.
type HostProcess struct {
	PID, PPID int
	Cmd       string
}

// Processes lists the container's processes with host pids, its init
// first.
func (c *Container) Processes() ([]HostProcess, error) {
	if err := c.Refresh(); err != nil {
		return nil, err
	}
	var out []HostProcess
	if c.Status == boot.StatusStopped {
		return out, nil
	}
	for _, p := range c.hostPIDs() {
		st, err := procfs.ReadStat("/proc", p.PID)
		if err != nil || st.StartTime != p.Start {
			continue
		}
		out = append(out, HostProcess{PID: p.PID, PPID: st.PPID, Cmd: st.Comm})
	}
	return out, nil
}

// hostPIDs lists the processes of the container, init first: those in
// its cgroup, or, for a container made before runsc used cgroups, those
// in its init's pid namespace and mount namespace (containers sharing a
// pid namespace still each have their own mount namespace).
func (c *Container) hostPIDs() []Proc {
	init := c.Init()
	if !init.Alive() {
		return nil
	}
	out := []Proc{init}
	if c.Cgroup != nil {
		for _, pid := range c.Cgroup.Pids() {
			if p := procOf(pid); pid != init.PID && p.Alive() {
				out = append(out, p)
			}
		}
		return out
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == init.PID {
			continue
		}
		if sameNamespace(pid, init.PID, "pid") && sameNamespace(pid, init.PID, "mnt") {
			if p := procOf(pid); p.Alive() {
				out = append(out, p)
			}
		}
	}
	return out
}
