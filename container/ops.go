package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
)

// Refresh asks the sandbox for the container's status and records it. A
// sandbox that is gone means the container is stopped.
func (c *Container) Refresh() error {
	status := boot.StatusStopped
	if c.Sandbox.Alive() {
		var res boot.StateResult
		err := c.call(boot.MethodState, &boot.CIDArgs{CID: c.ID}, &res)
		switch {
		case err == nil:
			status = res.Status
		case !c.Sandbox.Alive():
			// The sandbox went away meanwhile: stopped.
		case strings.Contains(err.Error(), "not in this sandbox"):
			// Removed from the sandbox: stopped.
		default:
			return err
		}
	}
	if status == c.Status {
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
	if err := c.call(boot.MethodStart, &boot.CIDArgs{CID: c.ID}, &boot.Empty{}); err != nil {
		return err
	}
	c.Status = boot.StatusRunning
	return c.save()
}

// Kill sends sig to the container's init, or to all its processes.
func (c *Container) Kill(sig int, all bool) error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if c.Status == boot.StatusStopped {
		return fmt.Errorf("container %q is not running", c.ID)
	}
	return c.call(boot.MethodSignal, &boot.SignalArgs{CID: c.ID, Signal: sig, All: all}, &boot.Empty{})
}

// Wait waits for the container's init to exit and returns its exit code.
// The container's lock is released first, so that waiting does not
// block other commands on the container.
func (c *Container) Wait() (int, error) {
	if !c.Sandbox.Alive() {
		return 0, fmt.Errorf("container %q: sandbox is gone, exit status unknown", c.ID)
	}
	return c.waitCall(boot.MethodWait, &boot.CIDArgs{CID: c.ID}, fmt.Sprintf("container %q", c.ID))
}

// waitCall makes a blocking wait call on its own connection after
// releasing the lock, and returns the exit code.
func (c *Container) waitCall(method string, arg any, what string) (int, error) {
	cl, err := c.controller()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	c.Close()
	var res boot.WaitResult
	if err := cl.Call(method, arg, &res); err != nil {
		return 0, fmt.Errorf("waiting for %s: %w", what, err)
	}
	return res.ExitStatus, nil
}

// Delete removes a stopped (or, with force, any) container: its sandbox
// and gofer are killed and its state directory removed.
func (c *Container) Delete(force bool) error {
	if !force {
		// With force the status does not matter: everything goes.
		if err := c.Refresh(); err != nil {
			return err
		}
		if c.Status == boot.StatusRunning {
			return fmt.Errorf("cannot delete container %q: it is running (stop it first or use --force)", c.ID)
		}
	}
	if c.IsSubcontainer() {
		// Only this container leaves the sandbox.
		if c.Sandbox.Alive() {
			if err := c.call(boot.MethodDestroy, &boot.CIDArgs{CID: c.ID}, &boot.Empty{}); err != nil && c.Sandbox.Alive() {
				return fmt.Errorf("deleting container %q: %w", c.ID, err)
			}
		}
		if err := c.Gofer.kill(killTimeout); err != nil {
			return fmt.Errorf("deleting container %q: %w", c.ID, err)
		}
	} else {
		// The sandbox and the gofer die together rather than one after
		// the other: each takes its namespaces down on exit.
		if err := killAll(killTimeout, c.Sandbox, c.Gofer); err != nil {
			return fmt.Errorf("deleting container %q: %w", c.ID, err)
		}
		c.deletePodMembers()
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("deleting container %q: %w", c.ID, err)
	}
	c.Close()
	return nil
}

// HostProcess is one process of a container, with host pids.
type HostProcess struct {
	PID, PPID int
	Cmd       string
}

// Processes lists the container's processes with host pids.
func (c *Container) Processes() ([]HostProcess, error) {
	var res boot.ProcessesResult
	if err := c.call(boot.MethodProcesses, &boot.CIDArgs{CID: c.ID}, &res); err != nil {
		return nil, err
	}
	var out []HostProcess
	for _, p := range res.Processes {
		pid := sandboxToHost(c.Sandbox.PID, p.PID)
		if pid == 0 {
			continue
		}
		ppid := sandboxToHost(c.Sandbox.PID, p.PPID)
		out = append(out, HostProcess{PID: pid, PPID: ppid, Cmd: p.Cmd})
	}
	return out, nil
}

// sandboxToHost translates a sandbox pid to a host pid by finding the
// descendant of the sandbox process whose second NSpid entry matches.
func sandboxToHost(sandbox, nsPID int) int {
	if nsPID == 1 {
		return sandbox
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns := nsPIDs(pid); len(ns) >= 2 && ns[1] == nsPID && descendsFrom(pid, sandbox) {
			return pid
		}
	}
	return 0
}

// descendsFrom reports whether pid is a descendant of ancestor.
func descendsFrom(pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			return false
		}
		pid, _ = strconv.Atoi(f[1])
		if pid == ancestor {
			return true
		}
	}
	return false
}
