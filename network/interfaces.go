package network

import (
	"fmt"

	"github.com/runsc/runsc/specutils"
	"github.com/vishvananda/netlink"
)

// AddInterfaces puts a runtime config's links (validated by
// specutils.ParseRuntimeConfig) in the sandbox's namespace, in order. On
// failure what it did is undone (see RemoveInterfaces).
func (n *Namespaces) AddInterfaces(ifs []specutils.Interface) error {
	for i, ifc := range ifs {
		if err := n.addInterface(fmt.Sprintf("interfaces[%d]", i), ifc); err != nil {
			n.RemoveInterfaces(ifs[:i])
			return err
		}
	}
	return nil
}

// RemoveInterfaces undoes AddInterfaces(ifs), last first: links made
// are removed (a veth's peer with it), links moved in are moved back to
// the host's namespace. Links already gone are skipped.
func (n *Namespaces) RemoveInterfaces(ifs []specutils.Interface) {
	for i := len(ifs) - 1; i >= 0; i-- {
		if ifs[i].Add == "" {
			n.moveBack(ifs[i].Name)
		} else {
			n.remove(ifs[i].Name)
		}
	}
}

// addInterface does one interface, field naming it in errors.
func (n *Namespaces) addInterface(field string, ifc specutils.Interface) error {
	la := netlink.NewLinkAttrs()
	la.Name = ifc.Name
	var link netlink.Link = &netlink.GenericLink{LinkAttrs: la, LinkType: ifc.Add}
	switch {
	case ifc.Add == "":
		// An existing link of the host's.
		host, err := n.host.LinkByName(ifc.Name)
		if err != nil {
			return fmt.Errorf("%s.name %q: no such link in the host's network namespace", field, ifc.Name)
		}
		if err := n.host.LinkSetNsFd(host, int(n.sandboxNS)); err != nil {
			return linkErr(field+".name", ifc.Name, "moving it into the sandbox", err)
		}
		return nil
	case ifc.Add == "veth" || ifc.CreateInRoot:
		if ifc.Add == "veth" {
			link = &netlink.Veth{LinkAttrs: la, PeerName: ifc.Peer}
		}
		if err := n.host.LinkAdd(link); err != nil {
			if ifc.Add == "veth" {
				return linkErr(field, ifc.Name+"/"+ifc.Peer, "making the veth pair in the host's namespace", err)
			}
			return linkErr(field+".add", ifc.Add, "making "+ifc.Name+" in the host's namespace", err)
		}
		made, err := n.host.LinkByName(ifc.Name)
		if err == nil {
			err = n.host.LinkSetNsFd(made, int(n.sandboxNS))
		}
		if err != nil {
			n.host.LinkDel(link)
			return linkErr(field+".name", ifc.Name, "moving it into the sandbox", err)
		}
	default:
		if err := n.sandbox.LinkAdd(link); err != nil {
			return linkErr(field+".add", ifc.Add, "making "+ifc.Name, err)
		}
	}
	return nil
}

// remove deletes the sandbox's link name, if it is there (a veth's
// peer goes with it).
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
