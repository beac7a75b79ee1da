// Package network sets up the links of sandboxes' network namespaces
// through netlink: loopback, a veth pair wired to the host (runsc do
// --network=veth), the links a runtime config asks for, and the links of
// a namespace a pod adopts (Adopt).
package network

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LoopbackUp brings up lo in the calling thread's network namespace.
func LoopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

// Namespaces are netlink handles in the host's network namespace (this
// process's) and in a sandbox's.
type Namespaces struct {
	host, sandbox     *netlink.Handle
	hostNS, sandboxNS netns.NsHandle
}

// Open returns handles in the network namespaces that host and sandbox
// (namespace files, e.g. /proc/PID/ns/net) name; host nil is the one
// this process started in.
func Open(host, sandbox *os.File) (*Namespaces, error) {
	n := &Namespaces{hostNS: netns.None(), sandboxNS: netns.None()}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	var err error
	if host == nil {
		n.hostNS, err = hostNS()
	} else {
		n.hostNS, err = dupNS(host)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the host's network namespace: %w", err)
	}
	if n.sandboxNS, err = dupNS(sandbox); err != nil {
		return nil, fmt.Errorf("opening the sandbox's network namespace: %w", err)
	}
	if n.host, err = netlink.NewHandleAt(n.hostNS, unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("netlink in the host's network namespace: %w", err)
	}
	if n.sandbox, err = netlink.NewHandleAt(n.sandboxNS, unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("netlink in the sandbox's network namespace: %w", err)
	}
	ok = true
	return n, nil
}

// dupNS returns a handle of its own on the namespace f names.
func dupNS(f *os.File) (netns.NsHandle, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return netns.None(), err
	}
	return netns.NsHandle(fd), nil
}

// Close releases the handles.
func (n *Namespaces) Close() {
	for _, h := range []*netlink.Handle{n.host, n.sandbox} {
		if h != nil {
			h.Close()
		}
	}
	for _, ns := range []netns.NsHandle{n.hostNS, n.sandboxNS} {
		if ns.IsOpen() {
			ns.Close()
		}
	}
}

// startNS is the network namespace this process started in (see
// RecordStartNS).
var (
	startNS    = netns.None()
	startNSErr = errors.New("the start network namespace was not recorded")
)

// RecordStartNS records the network namespace this process started in as
// the host's. Call it early, before any thread may have switched
// namespaces: later no path names it reliably, as /proc/self/ns/net is
// the main thread's, which a goroutine that locked it and switched
// namespaces (nsfork) may have left elsewhere, and any other thread may
// sit in another namespace.
func RecordStartNS() {
	if startNSErr == nil {
		return
	}
	startNS, startNSErr = netns.GetFromPath("/proc/self/ns/net")
}

// hostNS returns a handle of its own on startNS.
func hostNS() (netns.NsHandle, error) {
	if startNSErr != nil {
		return netns.None(), startNSErr
	}
	fd, err := unix.FcntlInt(uintptr(startNS), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return netns.None(), err
	}
	return netns.NsHandle(fd), nil
}

// IsHostNS reports whether st (a namespace file's stat) is the network
// namespace this process started in; when that is unknown, it says so,
// so that callers refuse rather than act on the host's.
func IsHostNS(st unix.Stat_t) bool {
	var ours unix.Stat_t
	if startNSErr != nil || unix.Fstat(int(startNS), &ours) != nil {
		return true
	}
	return st.Dev == ours.Dev && st.Ino == ours.Ino
}

// hostHandle returns a netlink handle in this process's network
// namespace.
func hostHandle() (*netlink.Handle, error) {
	ns, err := hostNS()
	if err != nil {
		return nil, fmt.Errorf("opening the host's network namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in the host's network namespace: %w", err)
	}
	return h, nil
}

// linkErr turns the kernel's answer to op, a link operation, into an
// error naming field and its value.
func linkErr(field, value, op string, err error) error {
	switch {
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%s %q: %s: a link of that name exists", field, value, op)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%s %q: unknown link type", field, value)
	}
	return fmt.Errorf("%s %q: %s: %w", field, value, op, err)
}
