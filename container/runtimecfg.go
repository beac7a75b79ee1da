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

// plainFile returns the stat of the file fd names and whether it is a
// regular file and not a namespace bound there (a placeholder a
// namespace may be bound on).
func plainFile(fd int) (unix.Stat_t, bool) {
	var st unix.Stat_t
	var fs unix.Statfs_t
	ok := unix.Fstat(fd, &st) == nil && unix.Fstatfs(fd, &fs) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && fs.Type != nsfsMagic
	return st, ok
}

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
	ns, err := openNetNS(pid, nil)
	if err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	defer ns.Close()
	cu.Add(c.removeInterfaces)
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

// removeInterfaces removes the links the container's runtime config made
// (see network.Link): veths through their host ends, always; links made
// in the pod's namespace while the sandbox lives (a pod member leaving),
// found through it. A namespace that outlives the sandbox (one the spec
// names by path) keeps those, as with runc.
func (c *State) removeInterfaces() {
	if len(c.Interfaces) == 0 {
		return
	}
	if c.Sandbox.Alive() {
		if ns, err := openNetNS(c.Sandbox.PID, c.Sandbox.Alive); err == nil {
			ns.RemoveLinks(c.Interfaces)
			ns.Close()
			return
		}
	}
	network.RemoveHostEnds(c.Interfaces)
}

// bindNamespace binds namespace b.NS of process pid at b.Path, making
// the file (and its directory) if missing; an existing file must be an
// empty one (a placeholder such as `ip netns add` makes), not already a
// namespace binding.
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
	fd, err := unix.Open(b.Path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o444)
	switch {
	case err == nil:
		made.Created = true
	case errors.Is(err, unix.EEXIST):
		// Looked at, not opened for reading: it may be a device.
		if fd, err = unix.Open(b.Path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
		if st, ok := plainFile(fd); !ok || st.Size != 0 {
			unix.Close(fd)
			return errors.New("exists and is not an empty file (nor a namespace already bound there)")
		}
	default:
		return err
	}
	defer unix.Close(fd)
	c.NSBinds = append(c.NSBinds, made)
	cu.Add(func() { made.remove() })
	if err := c.saveCreating(); err != nil {
		return err
	}
	// Onto the file opened, whatever its path names by now.
	if err := unix.Mount(src, fmt.Sprintf("/proc/self/fd/%d", fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s: %w", src, err)
	}
	return nil
}

// remove undoes bindNamespace: unmounts the path while our namespace is
// bound there (state from before namespaces were recorded: any
// namespace), and removes the file if create made it and it is an empty
// file again, not someone else's binding.
func (b NSBind) remove() error {
	for i := 0; i < 8; i++ {
		var st unix.Stat_t
		var fs unix.Statfs_t
		if unix.Lstat(b.Path, &st) != nil || unix.Statfs(b.Path, &fs) != nil || fs.Type != nsfsMagic {
			break
		}
		if b.NS != (NSID{}) && nsIDOf(st) != b.NS {
			break
		}
		if err := unix.Unmount(b.Path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break
			}
			return fmt.Errorf("unmounting namespace binding %s: %w", b.Path, err)
		}
	}
	if !b.Created {
		return nil
	}
	var fs unix.Statfs_t
	if fi, err := os.Lstat(b.Path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 && unix.Statfs(b.Path, &fs) == nil && fs.Type != nsfsMagic {
		if err := os.Remove(b.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing namespace binding %s: %w", b.Path, err)
		}
	}
	return nil
}
