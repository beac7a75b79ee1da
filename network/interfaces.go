package network

import (
	"fmt"

	"github.com/runsc/runsc/specutils"
	"github.com/vishvananda/netlink"
)

// AddInterfaces puts a runtime config's links (validated by
// specutils.ParseRuntimeConfig) in the sandbox's namespace, in order.
// On failure what it made is undone; on success undo undoes it all
// (links made are removed, links moved in are moved back).
func (n *Namespaces) AddInterfaces(ifs []specutils.Interface) (undo func(), err error) {
	var undos []func()
	undo = func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
	}
	for i, ifc := range ifs {
		u, err := n.addInterface(fmt.Sprintf("interfaces[%d]", i), ifc)
		if err != nil {
			undo()
			return nil, err
		}
		undos = append(undos, u)
	}
	return undo, nil
}

// addInterface does one interface, field naming it in errors, and
// returns how to undo it.
func (n *Namespaces) addInterface(field string, ifc specutils.Interface) (func(), error) {
	la := netlink.NewLinkAttrs()
	la.Name = ifc.Name
	var link netlink.Link = &netlink.GenericLink{LinkAttrs: la, LinkType: ifc.Add}
	switch {
	case ifc.Add == "":
		// An existing link of the host's.
		host, err := n.host.LinkByName(ifc.Name)
		if err != nil {
			return nil, fmt.Errorf("%s.name %q: no such link in the host's network namespace", field, ifc.Name)
		}
		if err := n.host.LinkSetNsFd(host, int(n.sandboxNS)); err != nil {
			return nil, linkErr(field+".name", ifc.Name, "moving it into the sandbox", err)
		}
		return func() { n.moveBack(ifc.Name) }, nil
	case ifc.Add == "veth" || ifc.CreateInRoot:
		if ifc.Add == "veth" {
			link = &netlink.Veth{LinkAttrs: la, PeerName: ifc.Peer}
		}
		if err := n.host.LinkAdd(link); err != nil {
			if ifc.Add == "veth" {
				return nil, linkErr(field, ifc.Name+"/"+ifc.Peer, "making the veth pair in the host's namespace", err)
			}
			return nil, linkErr(field+".add", ifc.Add, "making "+ifc.Name+" in the host's namespace", err)
		}
		made, err := n.host.LinkByName(ifc.Name)
		if err == nil {
			err = n.host.LinkSetNsFd(made, int(n.sandboxNS))
		}
		if err != nil {
			n.host.LinkDel(link)
			return nil, linkErr(field+".name", ifc.Name, "moving it into the sandbox", err)
		}
	default:
		if err := n.sandbox.LinkAdd(link); err != nil {
			return nil, linkErr(field+".add", ifc.Add, "making "+ifc.Name, err)
		}
	}
	// Removing a veth's end removes its peer too.
	return func() { n.remove(ifc.Name) }, nil
}

// remove deletes the sandbox's link name, if it is there.
func (n *Namespaces) remove(name string) {
	if l, err := n.sandbox.LinkByName(name); err == nil {
		n.sandbox.LinkDel(l)
	}
}

// moveBack returns the sandbox's link name to the host's namespace.
func (n *Namespaces) moveBack(name string) {
	if l, err := n.sandbox.LinkByName(name); err == nil {
		n.sandbox.LinkSetNsFd(l, int(n.hostNS))
	}
}
