package container

import (
	"errors"
	"fmt"
	"os"

	"github.com/runsc/runsc/cleanup"
	"github.com/runsc/runsc/network"
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

// errHostNetNS is openNetNS's error for a process in the host's
// network namespace.
var errHostNetNS = errors.New("the container shares the host's network namespace")

// openNetNS returns handles in the host's network namespace and in
// process pid's, which must be another (errHostNetNS). still, if not
// nil, tells once the namespace file is open that pid still names the
// process meant (not a reused pid).
func openNetNS(pid int, still func() bool) (*network.Namespaces, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("opening the sandbox's network namespace: %w", err)
	}
	defer f.Close()
	if still != nil && !still() {
		return nil, errors.New("the sandbox is gone")
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("the sandbox's network namespace: %w", err)
	}
	if network.IsHostNS(st) {
		return nil, errHostNetNS
	}
	return network.Open(nil, f)
}

// addVeth wires the sandbox (pid) to the host with v; undoing it goes on
// cu.
func (c *Container) addVeth(v network.Veth, cu *cleanup.Cleanup) error {
	ns, err := openNetNS(c.Sandbox.PID, nil)
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
