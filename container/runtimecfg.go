package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runsc/runsc/cleanup"
	"github.com/runsc/runsc/network"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// nsfsMagic is NSFS_MAGIC, the file system of namespace files.
const nsfsMagic = 0x6e736673

// NSID identifies a namespace: its file's device and inode.
type NSID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// nsIDOf returns the identity of a namespace file's stat.
func nsIDOf(st unix.Stat_t) NSID { return NSID{Dev: st.Dev, Ino: st.Ino} }

// NSBind is a namespace of a container bound at a host path (a runtime
// config's bindNS), as state records it: delete unmounts it if it is
// still that namespace, and removes the file if create made it.
type NSBind struct {
	Path    string `json:"path"`
	Created bool   `json:"created,omitempty"`
	NS      NSID   `json:"ns"`
}

// applyRuntimeConfig puts rc's links in the network namespace of the
// container's init (pid) and binds its namespaces at the paths rc names
// (the init makes rc's directories). Each step is recorded in the state
// before it is taken, so that a create killed half-way leaves what
// delete --force undoes; undoing it on failure goes on cu.
func (c *Container) applyRuntimeConfig(cfg Config, rc *specutils.RuntimeConfig, pid int, cu *cleanup.Cleanup) error {
	if len(rc.Interfaces) > 0 {
		if err := c.addInterfaces(cfg, rc.Interfaces, pid, cu); err != nil {
			return fmt.Errorf("runtime config %w", err)
		}
	}
	for _, b := range rc.BindNS.List() {
		if err := c.bindNamespace(pid, b, cu); err != nil {
			return fmt.Errorf("runtime config bindNS.%s %q: %w", b.NS, b.Path, err)
		}
	}
	return nil
}

// addInterfaces puts ifs in the network namespace of process pid, which
// must be the sandbox's own, recording each link made.
func (c *Container) addInterfaces(cfg Config, ifs []specutils.Interface, pid int, cu *cleanup.Cleanup) error {
	if cfg.Network == NetworkNone {
		return errors.New("interfaces: --network=none gives the sandbox no links")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	if network.IsHostNS(st) {
		return errors.New("interfaces: the container shares the host's network namespace")
	}
	ns, err := network.Open(nil, f)
	if err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	defer ns.Close()
	id := nsIDOf(st)
	c.NetNS = &id
	cu.Add(func() {
		if ns, err := c.openPodNetNS(); err == nil {
			defer ns.Close()
			ns.RemoveLinks(c.Interfaces)
		}
	})
	for i, ifc := range ifs {
		link, err := ns.AddInterface(fmt.Sprintf("interfaces[%d]", i), ifc)
		if err != nil {
			return err
		}
		c.Interfaces = append(c.Interfaces, link)
		if err := c.saveCreating(); err != nil {
			return err
		}
	}
	return nil
}

// openPodNetNS opens the pod's network namespace the container's links
// are in, if it is still there: the sandbox's while it lives, else the
// one the spec names by path; either must be the namespace recorded at
// create, and never the host's.
func (c *State) openPodNetNS() (*network.Namespaces, error) {
	if c.NetNS == nil {
		return nil, errors.New("no network namespace recorded")
	}
	var f *os.File
	var err error
	switch {
	case c.Sandbox.Alive():
		f, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", c.Sandbox.PID))
	case c.NetNSPath != "":
		// Not blocking on a FIFO someone put there.
		f, err = os.OpenFile(c.NetNSPath, os.O_RDONLY|unix.O_NONBLOCK, 0)
	default:
		return nil, errors.New("the pod's network namespace is gone")
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if nsIDOf(st) != *c.NetNS || network.IsHostNS(st) {
		return nil, errors.New("not the pod's network namespace any more")
	}
	return network.Open(nil, f)
}

// removeInterfaces takes the links the container's runtime config added
// out of the pod's network namespace, while it is there (see
// openPodNetNS): a namespace runsc made takes what is left with it.
func (c *State) removeInterfaces() {
	if len(c.Interfaces) == 0 {
		return
	}
	if ns, err := c.openPodNetNS(); err == nil {
		ns.RemoveLinks(c.Interfaces)
		ns.Close()
	}
}

// bindNamespace binds namespace b.NS of process pid at b.Path, making
// the file (and its directory) if missing; an existing file must be an
// empty one (a placeholder such as `ip netns add` makes).
func (c *Container) bindNamespace(pid int, b specutils.NSBind, cu *cleanup.Cleanup) error {
	src := fmt.Sprintf("/proc/%d/ns/%s", pid, b.NS)
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return err
	}
	made := NSBind{Path: b.Path, NS: nsIDOf(st)}
	if err := os.MkdirAll(filepath.Dir(b.Path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(b.Path, os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o444)
	switch {
	case err == nil:
		made.Created = true
	case errors.Is(err, os.ErrExist):
		// Over an empty file only: not through a symlink, not on a
		// directory or a file with content.
		f, err = os.OpenFile(b.Path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
			f.Close()
			return errors.New("exists and is not an empty file")
		}
	default:
		return err
	}
	defer f.Close()
	c.NSBinds = append(c.NSBinds, made)
	cu.Add(func() { made.remove() })
	if err := c.saveCreating(); err != nil {
		return err
	}
	// Onto the file opened, whatever its path names by now.
	if err := unix.Mount(src, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s: %w", src, err)
	}
	return nil
}

// remove undoes bindNamespace: unmounts the path if the namespace is
// still bound there, and removes the file if create made it and it is
// an empty file again.
func (b NSBind) remove() error {
	var st unix.Stat_t
	var fs unix.Statfs_t
	if unix.Lstat(b.Path, &st) == nil && unix.Statfs(b.Path, &fs) == nil && fs.Type == nsfsMagic && nsIDOf(st) == b.NS {
		if err := unix.Unmount(b.Path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmounting namespace binding %s: %w", b.Path, err)
		}
	}
	if !b.Created {
		return nil
	}
	if fi, err := os.Lstat(b.Path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		if err := os.Remove(b.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing namespace binding %s: %w", b.Path, err)
		}
	}
	return nil
}
