package network

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// unmovable are the kinds of link the kernel keeps in their namespace
// (NETIF_F_NETNS_LOCAL): a namespace holding one cannot be adopted.
var unmovable = map[string]bool{"bridge": true, "bond": true, "team": true, "openvswitch": true, "vrf": true}

// CanAdopt reports why the links of network namespace ns (a namespace
// file) cannot all be moved into another namespace, or nil when they
// can: a bridge, bond, team, Open vSwitch or VRF device stays in its
// namespace.
func CanAdopt(ns *os.File) error {
	h, closeH, err := handleIn(ns)
	if err != nil {
		return err
	}
	defer closeH()
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	for _, l := range links {
		if unmovable[l.Type()] {
			return fmt.Errorf("link %q is a %s, which cannot leave its namespace", l.Attrs().Name, l.Type())
		}
	}
	return nil
}

// Adopt moves the links of network namespace from into namespace to
// (both namespace files), with what a link loses in a move: its
// addresses, its routes (every table but local; not the ones the kernel
// makes for addresses), its permanent neighbour entries and its up
// state. lo, and the links the kernel makes in every namespace (the
// fallback tunnel devices, found in to by name), stay. Nothing else of
// from is copied: sysctls, rules, firewall and traffic-control state.
//
// A link is moved before any is configured; if Adopt fails half-way,
// the links moved so far are in to, possibly unconfigured.
func Adopt(from, to *os.File) error {
	src, closeSrc, err := handleIn(from)
	if err != nil {
		return err
	}
	defer closeSrc()
	dst, closeDst, err := handleIn(to)
	if err != nil {
		return err
	}
	defer closeDst()
	present := map[string]bool{}
	dstLinks, err := dst.LinkList()
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	for _, l := range dstLinks {
		present[l.Attrs().Name] = true
	}
	links, err := src.LinkList()
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	var moving []*linkConfig
	for _, l := range links {
		if present[l.Attrs().Name] || l.Attrs().Flags&net.FlagLoopback != 0 {
			continue
		}
		lc, err := readLinkConfig(src, l)
		if err != nil {
			return err
		}
		moving = append(moving, lc)
	}
	routes, err := src.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("listing routes: %w", err)
	}
	toFD := int(to.Fd())
	index := map[int]int{} // old index -> index in to
	for _, lc := range moving {
		if err := src.LinkSetNsFd(lc.link, toFD); err != nil {
			return fmt.Errorf("moving link %q: %w", lc.name, err)
		}
		moved, err := dst.LinkByName(lc.name)
		if err != nil {
			return fmt.Errorf("finding moved link %q: %w", lc.name, err)
		}
		index[lc.link.Attrs().Index] = moved.Attrs().Index
		lc.link = moved
	}
	for _, lc := range moving {
		if err := lc.apply(dst); err != nil {
			return err
		}
	}
	return addRoutes(dst, adoptedRoutes(routes, index))
}

// handleIn returns a netlink handle in namespace ns and its closer.
func handleIn(ns *os.File) (*netlink.Handle, func(), error) {
	fd, err := dupNS(ns)
	if err != nil {
		return nil, nil, fmt.Errorf("opening network namespace: %w", err)
	}
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
	if err != nil {
		fd.Close()
		return nil, nil, fmt.Errorf("netlink in network namespace: %w", err)
	}
	return h, func() { h.Close(); fd.Close() }, nil
}

// linkConfig is what a link loses when it moves to another namespace.
type linkConfig struct {
	link  netlink.Link
	name  string
	up    bool
	addrs []netlink.Addr
	neigh []netlink.Neigh
}

// addrFlags are the address flags that are settings (the rest are
// state: tentative, deprecated, ...).
const addrFlags = unix.IFA_F_NODAD | unix.IFA_F_HOMEADDRESS | unix.IFA_F_MANAGETEMPADDR | unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_MCAUTOJOIN

// readLinkConfig reads l's configuration through h.
func readLinkConfig(h *netlink.Handle, l netlink.Link) (*linkConfig, error) {
	lc := &linkConfig{link: l, name: l.Attrs().Name, up: l.Attrs().Flags&net.FlagUp != 0}
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %q: %w", lc.name, err)
	}
	for _, a := range addrs {
		// Link-local IPv6 addresses and autoconfigured ones come back
		// by themselves.
		if a.IP.To4() == nil && (a.IP.IsLinkLocalUnicast() || a.Flags&(unix.IFA_F_TEMPORARY|unix.IFA_F_PERMANENT) != unix.IFA_F_PERMANENT) {
			continue
		}
		a.Flags &= addrFlags
		if a.IP.To4() == nil {
			// Already checked where it was.
			a.Flags |= unix.IFA_F_NODAD
		}
		lc.addrs = append(lc.addrs, a)
	}
	neigh, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing neighbours of %q: %w", lc.name, err)
	}
	for _, n := range neigh {
		if n.State&netlink.NUD_PERMANENT != 0 && n.IP != nil {
			lc.neigh = append(lc.neigh, n)
		}
	}
	return lc, nil
}

// apply configures the moved link through h.
func (lc *linkConfig) apply(h *netlink.Handle) error {
	if lc.up {
		if err := h.LinkSetUp(lc.link); err != nil {
			return fmt.Errorf("bringing %q up: %w", lc.name, err)
		}
	}
	for i := range lc.addrs {
		a := lc.addrs[i]
		a.LinkIndex = lc.link.Attrs().Index
		if err := h.AddrAdd(lc.link, &a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding address %s to %q: %w", a.IPNet, lc.name, err)
		}
	}
	for _, n := range lc.neigh {
		n.LinkIndex = lc.link.Attrs().Index
		if err := h.NeighSet(&n); err != nil {
			return fmt.Errorf("adding neighbour %s to %q: %w", n.IP, lc.name, err)
		}
	}
	return nil
}

// Route protocols the kernel uses for routes it makes and takes back
// (rtnetlink.h).
const (
	rtprotKernel = 2
	rtprotRA     = 9
)

// adoptedRoutes returns the routes to make again after the links moved:
// the routes of moved links (renumbered by index) and the ones without a
// link (blackhole, unreachable, prohibit), but not the kernel's own (the
// local table, address prefixes, router advertisements).
func adoptedRoutes(routes []netlink.Route, index map[int]int) []netlink.Route {
	var out []netlink.Route
	for _, r := range routes {
		if r.Table == unix.RT_TABLE_LOCAL || r.Protocol == rtprotKernel || r.Protocol == rtprotRA {
			continue
		}
		ok := true
		if r.LinkIndex != 0 {
			r.LinkIndex, ok = index[r.LinkIndex]
		}
		var hops []*netlink.NexthopInfo
		for _, nh := range r.MultiPath {
			c := *nh
			var found bool
			if c.LinkIndex, found = index[nh.LinkIndex]; !found {
				ok = false
			}
			hops = append(hops, &c)
		}
		if !ok || (r.LinkIndex == 0 && len(hops) == 0 && r.Type == unix.RTN_UNICAST) {
			continue
		}
		r.MultiPath = hops
		r.ILinkIndex = 0
		r.Flags &= unix.RTNH_F_ONLINK | unix.RTNH_F_PERVASIVE
		out = append(out, r)
	}
	return out
}

// addRoutes adds routes through h; a route whose gateway is reachable
// only through another of them is retried once that one is in.
func addRoutes(h *netlink.Handle, routes []netlink.Route) error {
	for len(routes) > 0 {
		var left []netlink.Route
		var lastErr error
		for i := range routes {
			r := routes[i]
			err := h.RouteAdd(&r)
			switch {
			case err == nil, errors.Is(err, unix.EEXIST):
			case errors.Is(err, unix.ENETUNREACH):
				left, lastErr = append(left, r), err
			default:
				return fmt.Errorf("adding route %s: %w", r, err)
			}
		}
		if len(left) == len(routes) {
			return fmt.Errorf("adding route %s: %w", left[0], lastErr)
		}
		routes = left
	}
	return nil
}
