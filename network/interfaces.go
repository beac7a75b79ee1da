package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/runsc/runsc/specutils"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link records a link a runtime config put in a sandbox's namespace. The
// container is root in that namespace and may rename, replace or move
// links there, so nothing is looked up there again by name, and nothing
// ever goes from there into the host's namespace: a veth is removed
// through its peer in the host's namespace, by the index it got there; a
// link made in the sandbox's namespace is removed there by index and
// kind (at worst a link of the container's own, in its own namespace); a
// host link moved in stays until the namespace goes, when the kernel
// returns a physical one and destroys a virtual one, as with runc.
type Link struct {
	// Kind is its type ("veth", "dummy", ...); Index its index in the
	// sandbox's namespace when runsc made it there (0: not made there).
	Kind  string `json:"kind"`
	Index int    `json:"index,omitempty"`
	// HostIndex and HostName name a veth's peer in the host's
	// namespace.
	HostIndex int    `json:"hostIndex,omitempty"`
	HostName  string `json:"hostName,omitempty"`
	// Moved marks a host link moved in (nothing to remove).
	Moved bool `json:"moved,omitempty"`
}

// AddInterface puts one runtime-config link (validated by
// specutils.ParseRuntimeConfig) in the sandbox's namespace; field names
// it in errors. A veth is made with its peer (Peer) in the host's
// namespace and its end (Name) in the sandbox's; a link made with
// CreateInRoot is made in the host's under a temporary name, moved in,
// then renamed. On failure nothing of it is left.
func (n *Namespaces) AddInterface(field string, ifc specutils.Interface) (Link, error) {
	switch {
	case ifc.Add == "":
		host, err := n.host.LinkByName(ifc.Name)
		if err != nil {
			return Link{}, fmt.Errorf("%s.name %q: no such link in the host's network namespace", field, ifc.Name)
		}
		if err := n.host.LinkSetNsFd(host, int(n.sandboxNS)); err != nil {
			return Link{}, linkErr(field+".name", ifc.Name, "moving it into the sandbox", err)
		}
		return Link{Kind: host.Type(), Moved: true}, nil
	case ifc.Add == "veth":
		la := netlink.NewLinkAttrs()
		la.Name = ifc.Peer
		la.HardwareAddr = hostMAC(ifc.Peer)
		pair := &netlink.Veth{LinkAttrs: la, PeerName: ifc.Name, PeerNamespace: netlink.NsFd(int(n.sandboxNS))}
		if err := n.host.LinkAdd(pair); err != nil {
			if _, lerr := n.host.LinkByName(ifc.Peer); lerr == nil {
				return Link{}, linkErr(field+".peer", ifc.Peer, "making the veth pair", err)
			}
			return Link{}, linkErr(field+".name", ifc.Name, "making the veth pair", err)
		}
		// Found in the host's namespace, which the container cannot
		// touch.
		peer, err := n.host.LinkByName(ifc.Peer)
		if err != nil {
			return Link{}, fmt.Errorf("%s.peer %q: finding it: %w", field, ifc.Peer, err)
		}
		return Link{Kind: "veth", HostIndex: peer.Attrs().Index, HostName: ifc.Peer}, nil
	case ifc.CreateInRoot:
		tmp, err := tempLinkName()
		if err != nil {
			return Link{}, err
		}
		la := netlink.NewLinkAttrs()
		la.Name = tmp
		if err := n.host.LinkAdd(&netlink.GenericLink{LinkAttrs: la, LinkType: ifc.Add}); err != nil {
			return Link{}, linkErr(field+".add", ifc.Add, "making "+ifc.Name+" in the host's namespace", err)
		}
		made, err := n.host.LinkByName(tmp)
		if err == nil {
			if err = n.host.LinkSetNsFd(made, int(n.sandboxNS)); err != nil {
				n.host.LinkDel(made)
			}
		}
		if err != nil {
			return Link{}, linkErr(field+".name", ifc.Name, "moving it into the sandbox", err)
		}
		// Its temporary name is runsc's alone; the container may
		// race the rename, making it keep that name.
		in, err := n.sandbox.LinkByName(tmp)
		if err != nil {
			return Link{}, fmt.Errorf("%s.name %q: finding it in the sandbox: %w", field, ifc.Name, err)
		}
		if err := n.sandbox.LinkSetName(in, ifc.Name); err != nil {
			n.sandbox.LinkDel(in)
			return Link{}, linkErr(field+".name", ifc.Name, "naming it in the sandbox", err)
		}
		return Link{Kind: ifc.Add, Index: in.Attrs().Index}, nil
	default:
		la := netlink.NewLinkAttrs()
		la.Name = ifc.Name
		if err := n.sandbox.LinkAdd(&netlink.GenericLink{LinkAttrs: la, LinkType: ifc.Add}); err != nil {
			return Link{}, linkErr(field+".add", ifc.Add, "making "+ifc.Name, err)
		}
		l, err := n.sandbox.LinkByName(ifc.Name)
		if err != nil {
			return Link{}, fmt.Errorf("%s.name %q: finding it in the sandbox: %w", field, ifc.Name, err)
		}
		return Link{Kind: ifc.Add, Index: l.Attrs().Index}, nil
	}
}

// RemoveHostEnds removes, from the host's namespace (the one this process
// started in), the peers of the veths in links that are still there
// (same index, name and kind): their sandbox ends go with them.
func RemoveHostEnds(links []Link) error {
	h, err := hostHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	return removeHostEnds(h, links)
}

// removeHostEnds is RemoveHostEnds through handle h. A pair gone
// meanwhile (its namespace went) is not an error; every one is tried.
func removeHostEnds(h *netlink.Handle, links []Link) error {
	var errs []error
	for _, rec := range links {
		if rec.HostIndex == 0 {
			continue
		}
		l, err := h.LinkByIndex(rec.HostIndex)
		if err != nil || l.Attrs().Name != rec.HostName || l.Type() != "veth" {
			continue
		}
		if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("removing veth %q: %w", rec.HostName, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveLinks removes what AddInterface recorded: the veths through
// their host ends (see RemoveHostEnds), the links made in the sandbox's
// namespace there, by index and kind. Links moved in are left.
func (n *Namespaces) RemoveLinks(links []Link) error {
	err := removeHostEnds(n.host, links)
	for i := len(links) - 1; i >= 0; i-- {
		if links[i].Index == 0 {
			continue
		}
		if l, lerr := n.sandbox.LinkByIndex(links[i].Index); lerr == nil && l.Type() == links[i].Kind {
			n.sandbox.LinkDel(l)
		}
	}
	return err
}

// tempLinkName returns a link name no one else picks.
func tempLinkName() (string, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "rstmp" + hex.EncodeToString(b[:]), nil
}
