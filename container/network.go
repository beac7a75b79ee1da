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

// NetworkMode is the network namespace a new sandbox gets (--network).
type NetworkMode string

// The network modes.
const (
	// NetworkSandbox does what the spec says: a new namespace (lo up)
	// if it lists one without a path, the path's if it names one, the
	// host's if it lists none.
	NetworkSandbox NetworkMode = "sandbox"
	// NetworkNone always gives a new namespace with lo only, whatever
	// the spec says; no link may be added to it.
	NetworkNone NetworkMode = "none"
	// NetworkHost always shares the host's namespace.
	NetworkHost NetworkMode = "host"
	// NetworkVeth gives a new namespace wired to the host by a veth
	// pair (CreateOpts.Veth; runsc do).
	NetworkVeth NetworkMode = "veth"
)

// Validate checks the mode is one of the modes.
func (m NetworkMode) Validate() error {
	switch m {
	case "", NetworkSandbox, NetworkNone, NetworkHost, NetworkVeth:
		return nil
	}
	return fmt.Errorf("--network %q: want sandbox, none, host or veth", string(m))
}

// private says the sandbox gets a new namespace whatever the spec says.
func (m NetworkMode) private() bool { return m == NetworkNone || m == NetworkVeth }

// NSBind is a namespace of a container bound at a host path (a runtime
// config's bindNS), as state records it: delete unmounts it, and
// removes the file if create made it.
type NSBind struct {
	Path    string `json:"path"`
	Created bool   `json:"created,omitempty"`
}

// bindNamespace binds namespace b.NS of process pid at b.Path, making
// the file (and its directory) if missing.
func bindNamespace(pid int, b specutils.NSBind) (NSBind, error) {
	made := NSBind{Path: b.Path}
	if err := os.MkdirAll(filepath.Dir(b.Path), 0o755); err != nil {
		return made, err
	}
	f, err := os.OpenFile(b.Path, os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o444)
	switch {
	case err == nil:
		made.Created = true
		f.Close()
	case !errors.Is(err, os.ErrExist):
		return made, err
	default:
		// Only over a file: not through a symlink, not on a
		// directory.
		if fi, err := os.Lstat(b.Path); err != nil || !fi.Mode().IsRegular() {
			return made, errors.New("exists and is not a regular file")
		}
	}
	src := fmt.Sprintf("/proc/%d/ns/%s", pid, b.NS)
	if err := unix.Mount(src, b.Path, "", unix.MS_BIND, ""); err != nil {
		made.remove()
		return made, fmt.Errorf("binding %s: %w", src, err)
	}
	return made, nil
}

// remove undoes bindNamespace; a binding already gone is not an error.
func (b NSBind) remove() error {
	if err := unix.Unmount(b.Path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting namespace binding %s: %w", b.Path, err)
	}
	if b.Created {
		if err := os.Remove(b.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing namespace binding %s: %w", b.Path, err)
		}
	}
	return nil
}

// openNetNS returns handles in the host's network namespace and in
// process pid's.
func openNetNS(pid int) (*network.Namespaces, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("opening the sandbox's network namespace: %w", err)
	}
	defer f.Close()
	return network.Open(nil, f)
}

// addVeth wires the sandbox (pid) to the host with v; undoing it goes on
// cu.
func (c *Container) addVeth(v network.Veth, cu *cleanup.Cleanup) error {
	ns, err := openNetNS(c.Sandbox.PID)
	if err != nil {
		return err
	}
	defer ns.Close()
	link, err := ns.AddVeth(v)
	if err != nil {
		return err
	}
	c.Veth = link
	cu.Add(func() { link.Remove() })
	return nil
}

// applyRuntimeConfig puts rc's links in the network namespace of the
// container's init (pid) and binds its namespaces at the paths rc names
// (the init makes rc's directories). Undoing it goes on cu.
func (c *Container) applyRuntimeConfig(cfg Config, rc *specutils.RuntimeConfig, pid int, cu *cleanup.Cleanup) error {
	if len(rc.Interfaces) > 0 {
		if err := addInterfaces(cfg, rc.Interfaces, pid, cu); err != nil {
			return fmt.Errorf("runtime config %w", err)
		}
		c.Interfaces = rc.Interfaces
	}
	for _, b := range rc.BindNS.List() {
		made, err := bindNamespace(pid, b)
		if err != nil {
			return fmt.Errorf("runtime config bindNS.%s %q: %w", b.NS, b.Path, err)
		}
		c.NSBinds = append(c.NSBinds, made)
		cu.Add(func() { made.remove() })
	}
	return nil
}

// addInterfaces puts ifs in the network namespace of process pid, which
// must be the sandbox's own.
func addInterfaces(cfg Config, ifs []specutils.Interface, pid int, cu *cleanup.Cleanup) error {
	if cfg.Network == NetworkNone {
		return errors.New("interfaces: --network=none gives the sandbox no links")
	}
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	if isRuntimeNS(st, "net") {
		return errors.New("interfaces: the container shares the host's network namespace")
	}
	ns, err := openNetNS(pid)
	if err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	defer ns.Close()
	if err := ns.AddInterfaces(ifs); err != nil {
		return err
	}
	cu.Add(func() {
		if ns, err := openNetNS(pid); err == nil {
			defer ns.Close()
			ns.RemoveInterfaces(ifs)
		}
	})
	return nil
}

// removeInterfaces takes the links the container's runtime config added
// out of the pod's network namespace, if it is still there: the
// sandbox's while it lives (a pod member leaving), else the one the spec
// names by path. A namespace runsc made takes them with it.
func (c *Container) removeInterfaces() {
	if len(c.Interfaces) == 0 {
		return
	}
	var f *os.File
	if c.Sandbox.Alive() {
		f, _ = os.Open(fmt.Sprintf("/proc/%d/ns/net", c.Sandbox.PID))
		if f != nil && !c.Sandbox.Alive() {
			// The pid was reused meanwhile.
			f.Close()
			f = nil
		}
	} else if c.NetNSPath != "" {
		f, _ = os.Open(c.NetNSPath)
	}
	if f == nil {
		return
	}
	defer f.Close()
	if ns, err := network.Open(nil, f); err == nil {
		ns.RemoveInterfaces(c.Interfaces)
		ns.Close()
	}
}

// removeNetwork removes what create made on the host for the container:
// its namespace bindings and its veth's host end.
func (c *Container) removeNetwork() error {
	var errs []error
	for _, b := range c.NSBinds {
		errs = append(errs, b.remove())
	}
	if c.Veth != nil {
		errs = append(errs, c.Veth.Remove())
	}
	return errors.Join(errs...)
}
