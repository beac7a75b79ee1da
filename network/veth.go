package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/runsc/runsc/specutils"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SandboxLink is the name of the sandbox's end of a veth pair.
const SandboxLink = "eth0"

// Gateways are the link-local next hops of the sandbox's default routes:
// a permanent neighbour entry on eth0 maps them to the host end's
// address, so the host end needs no address of its own and nothing
// answers for them on the host.
var (
	Gateway4 = net.IPv4(169, 254, 0, 1).To4()
	Gateway6 = net.ParseIP("fe80::1")
)

// Veth is a veth pair from the host's network namespace into a
// sandbox's, as osctl's routed veths and systemd-nspawn --network-veth:
// the host end HostName, the sandbox end eth0 (up), with Address if not
// nil, a default route through a link-local gateway, and a host route
// to Address through the host end.
type Veth struct {
	HostName string
	Address  *net.IPNet
}

// DefaultVethName derives the host end's name from a sandbox ID: short
// enough for the kernel, the same for the same ID.
func DefaultVethName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "vrs" + hex.EncodeToString(sum[:6])
}

// ParseAddress parses --address A/prefix; the gateway may not be it.
func ParseAddress(s string) (*net.IPNet, error) {
	ip, ipnet, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("--address %q: want an address/prefix such as 169.254.77.2/32", s)
	}
	if ip.To4() != nil {
		ip = ip.To4()
	}
	if ip.Equal(Gateway4) || ip.Equal(Gateway6) {
		return nil, fmt.Errorf("--address %q: %s is the sandbox's gateway", s, ip)
	}
	if !ip.IsGlobalUnicast() && !ip.IsLinkLocalUnicast() {
		return nil, fmt.Errorf("--address %q: not a unicast address", s)
	}
	return &net.IPNet{IP: ip, Mask: ipnet.Mask}, nil
}

// hostMAC derives a locally administered unicast address from the host
// end's name.
func hostMAC(name string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("runsc-veth-host:" + name))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^1 | 2
	return mac
}

// HostLink is a link runsc made in the host's network namespace, as
// state records it.
type HostLink struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
}

// Remove deletes the link if it is still the one made (same name and
// index): when the sandbox's namespace went away first, the kernel has
// removed it, and its routes, already.
func (l *HostLink) Remove() error {
	h, err := hostHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(l.Name)
	if errors.As(err, &netlink.LinkNotFoundError{}) || (err == nil && link.Attrs().Index != l.Index) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finding link %q: %w", l.Name, err)
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("removing link %q: %w", l.Name, err)
	}
	return nil
}

// AddVeth makes v between the host and the sandbox. On failure nothing
// of it is left.
func (n *Namespaces) AddVeth(v Veth) (*HostLink, error) {
	if err := specutils.ValidateLinkName(v.HostName); err != nil {
		return nil, fmt.Errorf("--veth-host: %v", err)
	}
	la := netlink.NewLinkAttrs()
	la.Name = v.HostName
	// An address of its own, set at creation: udev rewrites the
	// kernel's random ones (MACAddressPolicy=persistent), which would
	// leave the sandbox's gateway entry stale.
	la.HardwareAddr = hostMAC(v.HostName)
	pair := &netlink.Veth{LinkAttrs: la, PeerName: SandboxLink, PeerNamespace: netlink.NsFd(int(n.sandboxNS))}
	if err := n.host.LinkAdd(pair); err != nil {
		return nil, linkErr("--veth-host", v.HostName, "making the veth pair", err)
	}
	host, err := n.host.LinkByName(v.HostName)
	if err != nil {
		// Made, yet gone: only the sandbox's end could say more.
		return nil, fmt.Errorf("veth %q: finding it: %w", v.HostName, err)
	}
	made := &HostLink{Name: v.HostName, Index: host.Attrs().Index}
	if err := n.wireVeth(host, v.Address); err != nil {
		n.host.LinkDel(host)
		return nil, err
	}
	return made, nil
}

// wireVeth brings both ends up and, with an address, sets the
// sandbox's address, gateway and default route and the host's route.
func (n *Namespaces) wireVeth(host netlink.Link, addr *net.IPNet) error {
	name := host.Attrs().Name
	if err := n.host.LinkSetUp(host); err != nil {
		return fmt.Errorf("veth %q: bringing it up: %w", name, err)
	}
	eth0, err := n.sandbox.LinkByName(SandboxLink)
	if err != nil {
		return fmt.Errorf("veth %q: finding the sandbox's %s: %w", name, SandboxLink, err)
	}
	if err := n.sandbox.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("veth %q: bringing the sandbox's %s up: %w", name, SandboxLink, err)
	}
	if addr == nil {
		return nil
	}
	family, gw, hostBits := netlink.FAMILY_V4, Gateway4, 32
	if addr.IP.To4() == nil {
		family, gw, hostBits = netlink.FAMILY_V6, Gateway6, 128
	}
	// No prefix route: every other address, in the prefix or not, is
	// reached through the gateway (the host end answers for nothing
	// else). No duplicate address detection: nothing else is on the
	// link, and the address is usable at once.
	a := &netlink.Addr{IPNet: addr, Flags: unix.IFA_F_NOPREFIXROUTE}
	if family == netlink.FAMILY_V6 {
		a.Flags |= unix.IFA_F_NODAD
	}
	if err := n.sandbox.AddrAdd(eth0, a); err != nil {
		return fmt.Errorf("--address %s: adding it to the sandbox's %s: %w", addr, SandboxLink, err)
	}
	neigh := &netlink.Neigh{LinkIndex: eth0.Attrs().Index, Family: family, State: netlink.NUD_PERMANENT, IP: gw, HardwareAddr: host.Attrs().HardwareAddr}
	if err := n.sandbox.NeighAdd(neigh); err != nil {
		return fmt.Errorf("veth %q: gateway %s in the sandbox: %w", name, gw, err)
	}
	def := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw, Flags: int(netlink.FLAG_ONLINK), Family: family}
	if err := n.sandbox.RouteAdd(def); err != nil {
		return fmt.Errorf("veth %q: default route in the sandbox: %w", name, err)
	}
	dst := &net.IPNet{IP: addr.IP, Mask: net.CIDRMask(hostBits, hostBits)}
	route := &netlink.Route{LinkIndex: host.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK, Family: family}
	if err := n.host.RouteAdd(route); err != nil {
		return fmt.Errorf("veth %q: route to %s on the host: %w", name, dst, err)
	}
	return nil
}
