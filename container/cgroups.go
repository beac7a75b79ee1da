package container

import (
	"errors"
	"fmt"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/cgroup"
)

// errNoCgroup is the error of a cgroup operation on a container that has
// none (created by a runsc that made none).
var errNoCgroup = errors.New("it has no cgroup")

// Pause freezes every process of a running container (its cgroup's).
func (c *Container) Pause() error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if c.Status != boot.StatusRunning {
		return fmt.Errorf("cannot pause container %q: it is %s, not running", c.ID, c.Status)
	}
	if c.Cgroup == nil {
		return fmt.Errorf("cannot pause container %q: %w", c.ID, errNoCgroup)
	}
	if err := c.Cgroup.Freeze(true); err != nil {
		return errors.Join(fmt.Errorf("pausing container %q: %w", c.ID, err), c.Cgroup.Freeze(false))
	}
	c.Status = boot.StatusPaused
	if err := c.save(); err != nil {
		// Not recorded: not left frozen either.
		c.Status = boot.StatusRunning
		return errors.Join(err, c.Cgroup.Freeze(false))
	}
	return nil
}

// thawKilled thaws a paused container after a SIGKILL, so that it dies,
// and records it running until it is seen stopped.
func (c *Container) thawKilled() {
	if err := c.Cgroup.Freeze(false); err != nil {
		return
	}
	c.Status = boot.StatusRunning
	c.save()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if c.Status != boot.StatusPaused {
		return fmt.Errorf("cannot resume container %q: it is %s, not paused", c.ID, c.Status)
	}
	if err := c.Cgroup.Freeze(false); err != nil {
		return fmt.Errorf("resuming container %q: %w", c.ID, err)
	}
	c.Status = boot.StatusRunning
	return c.save()
}

// Update applies new linux.resources to a container's cgroup; only the
// fields r sets change.
func (c *Container) Update(r *specs.LinuxResources) error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if c.Status == boot.StatusStopped {
		return fmt.Errorf("cannot update container %q: it is stopped", c.ID)
	}
	if c.Cgroup == nil {
		return fmt.Errorf("cannot update container %q: %w", c.ID, errNoCgroup)
	}
	if err := c.Cgroup.Set(r); err != nil {
		return fmt.Errorf("updating container %q: %w", c.ID, err)
	}
	return nil
}

// Stats returns the metrics of the container's cgroup.
func (c *Container) Stats() (*cgroup.Stats, error) {
	if c.Cgroup == nil {
		return nil, fmt.Errorf("container %q: %w", c.ID, errNoCgroup)
	}
	return c.Cgroup.Stats(), nil
}

// sandboxCgroup makes the cgroup of a new sandbox and its gofer (pids),
// so that what they cost is charged where the pod's limits are: a
// sibling of the sandbox container's cgroup named runsc-sandbox@<id>,
// in the same parent (for a Kubernetes pod, the pod's cgroup). It has no
// limits of its own: a container's limits (a pause container's tiny
// memory, its device rules) are for the container's processes, not for
// the sandbox that serves the whole pod. On failure nothing is left.
func sandboxCgroup(spec *specs.Spec, systemd bool, root, id string, pids ...int) (*cgroup.Cgroup, error) {
	// '@' is in no container ID: no container's default cgroup has
	// this name.
	name := "runsc-sandbox@" + id
	p, err := cgroupsPath(spec, systemd)
	if err != nil {
		return nil, err
	}
	if p != "" {
		p = path.Join(path.Dir(path.Clean(p)), name)
		name = ""
	}
	cg, err := cgroup.Resolve(p, instanceName(root), name)
	if err != nil {
		return nil, err
	}
	if err := cg.Create(); err != nil {
		cg.Destroy()
		return nil, fmt.Errorf("sandbox cgroup: %w", err)
	}
	if pids := cg.Pids(); len(pids) > 0 {
		// Not ours: another's processes, which Destroy would kill.
		return nil, fmt.Errorf("sandbox cgroup %v: already holds processes (%d of them)", cg.Paths, len(pids))
	}
	for _, pid := range pids {
		if err := cg.Add(pid); err != nil {
			// Its create fails: what was moved in dies with it.
			cg.Destroy()
			return nil, fmt.Errorf("sandbox cgroup: %w", err)
		}
	}
	return cg, nil
}

// cgroupsPath returns the spec's linux.cgroupsPath, in systemd's
// slice:prefix:name form converted to a path with --systemd-cgroup.
func cgroupsPath(spec *specs.Spec, systemd bool) (string, error) {
	if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return "", nil
	}
	if systemd {
		return cgroup.SystemdPath(spec.Linux.CgroupsPath)
	}
	return spec.Linux.CgroupsPath, nil
}
