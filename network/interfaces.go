package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/runsc/runsc/specutils"
	"github.com/vishvananda/netlink"
)

// Link records a link a runtime config put in a sandbox's namespace, by
// the index it has there: the container is root in that namespace and
// may rename or replace links, so nothing is found again by name.
type Link struct {
	// Index is its index in the sandbox's namespace; Kind its type
	// ("veth", "dummy", ...).
	Index int    `json:"index"`
	Kind  string `json:"kind"`
	// Moved is set for a host link moved in, Name its name in the
	// host's namespace: it is moved back there under that name.
	Moved bool   `json:"moved,omitempty"`
	Name  string `json:"name,omitempty"`
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
		return n.moveIn(field, ifc.Name)
	case ifc.Add == "veth":
		la := netlink.NewLinkAttrs()
		la.Name = ifc.Peer
		pair := &netlink.Veth{LinkAttrs: la, PeerName: ifc.Name, PeerNamespace: netlink.NsFd(int(n.sandboxNS))}
		if err := n.host.LinkAdd(pair); err != nil {
			if _, lerr := n.host.LinkByName(ifc.Peer); lerr == nil {
				return Link{}, linkErr(field+".peer", ifc.Peer, "making the veth pair", err)
			}
			return Link{}, linkErr(field+".name", ifc.Name, "making the veth pair", err)
		}
		return n.made(field, ifc.Name, "veth", func() {
			if l, err := n.host.LinkByName(ifc.Peer); err == nil {
				n.host.LinkDel(l)
			}
		})
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
		in, err := n.sandbox.LinkByName(tmp)
		if err == nil {
			if err = n.sandbox.LinkSetName(in, ifc.Name); err != nil {
				n.sandbox.LinkDel(in)
			}
		}
		if err != nil {
			return Link{}, linkErr(field+".name", ifc.Name, "naming it in the sandbox", err)
		}
		return Link{Index: in.Attrs().Index, Kind: ifc.Add}, nil
	default:
		la := netlink.NewLinkAttrs()
		la.Name = ifc.Name
		if err := n.sandbox.LinkAdd(&netlink.GenericLink{LinkAttrs: la, LinkType: ifc.Add}); err != nil {
			return Link{}, linkErr(field+".add", ifc.Add, "making "+ifc.Name, err)
		}
		return n.made(field, ifc.Name, ifc.Add, nil)
	}
}

// made records the sandbox's link name, just made; if it cannot be
// found, undo removes what was made.
func (n *Namespaces) made(field, name, kind string, undo func()) (Link, error) {
	l, err := n.sandbox.LinkByName(name)
	if err != nil {
		if undo != nil {
			undo()
		}
		return Link{}, fmt.Errorf("%s.name %q: finding it in the sandbox: %w", field, name, err)
	}
	return Link{Index: l.Attrs().Index, Kind: kind}, nil
}

// moveIn moves the host's link name into the sandbox's namespace.
func (n *Namespaces) moveIn(field, name string) (Link, error) {
	host, err := n.host.LinkByName(name)
	if err != nil {
		return Link{}, fmt.Errorf("%s.name %q: no such link in the host's network namespace", field, name)
	}
	if err := n.host.LinkSetNsFd(host, int(n.sandboxNS)); err != nil {
		return Link{}, linkErr(field+".name", name, "moving it into the sandbox", err)
	}
	// The index stays unless the sandbox's namespace has it taken.
	in, err := n.sandbox.LinkByName(name)
	if err != nil {
		return Link{}, fmt.Errorf("%s.name %q: finding it in the sandbox: %w", field, name, err)
	}
	return Link{Index: in.Attrs().Index, Kind: in.Type(), Moved: true, Name: name}, nil
}

// RemoveLinks undoes what AddInterface recorded, last first: links made
// are removed (a veth's peer with it), links moved in go back to the
// host's namespace under their host name. A link whose index now names
// a link of another kind, or nothing, is left alone.
func (n *Namespaces) RemoveLinks(links []Link) {
	for i := len(links) - 1; i >= 0; i-- {
		rec := links[i]
		l, err := n.sandbox.LinkByIndex(rec.Index)
		if err != nil || l.Type() != rec.Kind {
			continue
		}
		if !rec.Moved {
			n.sandbox.LinkDel(l)
			continue
		}
		n.moveBack(l, rec.Name)
	}
}

// moveBack returns the sandbox's link l to the host's namespace as name.
// The name it has in the sandbox is the container's choice: it crosses
// under a temporary name and takes its host name in the host's
// namespace (kept temporary if that name is taken there).
func (n *Namespaces) moveBack(l netlink.Link, name string) {
	tmp, err := tempLinkName()
	if err != nil || n.sandbox.LinkSetName(l, tmp) != nil || n.sandbox.LinkSetNsFd(l, int(n.hostNS)) != nil {
		return
	}
	back, err := n.host.LinkByName(tmp)
	if err != nil {
		return
	}
	if _, err := n.host.LinkByName(name); errors.As(err, &netlink.LinkNotFoundError{}) {
		n.host.LinkSetName(back, name)
	}
}

// tempLinkName returns a link name no one else picks.
func tempLinkName() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "rstmp" + hex.EncodeToString(b[:5]), nil
}
