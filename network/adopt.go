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

// CanAdopt reports why network namespace ns (a namespace file) cannot be
// adopted (see Adopt), or nil when it can: a bridge, bond, team, Open
// vSwitch or VRF device stays in its namespace, and firewall tables
// (which a service mesh's CNI plugin may have set up there) are not
// copied.
func CanAdopt(ns *os.File) error {
	var fw string
	if err := onThreadIn(ns, func() (err error) { fw, err = firewallState(); return err }); err != nil {
		return err
	}
	if fw != "" {
		return fmt.Errorf("it holds firewall state (%s), which would not follow its links", fw)
	}
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
// makes for addresses), its permanent neighbour entries, its up state,
// and its sysctls (net.ipv4.conf.DEV.*, ...); and it copies the
// namespace's own sysctls and policy rules that differ from to's. lo,
// and the links the kernel makes in every namespace (the fallback
// tunnel devices, found in to by name), stay. Firewall tables are not
// copied: CanAdopt refuses a namespace holding any.
//
// Every link is moved before any is configured. If a move fails, the
// links moved so far are moved back, configured again, and from is left
// as it was (the error is ErrLinksStayed); if configuring fails, the
// links stay in to.
func Adopt(from, to *os.File) error {
	err := adopt(from, to)
	var moved *movedError
	if err != nil && !errors.As(err, &moved) {
		return fmt.Errorf("%w (%w)", err, ErrLinksStayed)
	}
	return err
}

// ErrLinksStayed marks an Adopt error after which every link is still
// where it was.
var ErrLinksStayed = errors.New("the links stayed where they were")

// movedError is an error of Adopt after the links moved.
type movedError struct{ err error }

func (e *movedError) Error() string { return e.err.Error() }
func (e *movedError) Unwrap() error { return e.err }

// adopt is Adopt; its errors once the links moved are movedErrors.
func adopt(from, to *os.File) error {
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
	dstLinks, err := dst.LinkList()
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	present := map[string]netlink.Link{}
	for _, l := range dstLinks {
		present[l.Attrs().Name] = l
	}
	links, err := src.LinkList()
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	index := map[int]int{} // index in from -> index in to
	var moving []*linkConfig
	for _, l := range links {
		if same, ok := present[l.Attrs().Name]; ok {
			// lo and the fallback tunnels: routes through them
			// (IPv6 reject routes use lo) go to to's.
			index[l.Attrs().Index] = same.Attrs().Index
			continue
		}
		lc, err := readLinkConfig(src, l)
		if err != nil {
			return err
		}
		moving = append(moving, lc)
	}
	routes, err := listRoutes(src)
	if err != nil {
		return err
	}
	rules, err := src.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing policy rules: %w", err)
	}
	var sysctls map[string]string
	if err := onThreadIn(from, func() (err error) { sysctls, err = readSysctls(); return err }); err != nil {
		return fmt.Errorf("reading sysctls: %w", err)
	}
	nsSysctls, devSysctls := splitSysctls(sysctls)
	// The namespace's own first: if the kernel refuses one, nothing
	// has moved yet.
	if err := onThreadIn(to, func() error { return copySysctls(nsSysctls) }); err != nil {
		return err
	}
	if back, err := moveLinks(src, dst, int(to.Fd()), int(from.Fd()), moving, index); err != nil {
		var moved *movedError
		if errors.As(err, &moved) {
			return err
		}
		if rerr := restore(src, from, links, back, devSysctls, routes); rerr != nil {
			err = errors.Join(err, fmt.Errorf("configuring the links moved back: %w", rerr))
		}
		return err
	}
	if err := configure(dst, to, devSysctls, moving, rules, adoptedRoutes(routes, index)); err != nil {
		return &movedError{err}
	}
	return nil
}

// configure gives the links moved into namespace to (handle dst) what
// they lost, and the namespace the sysctls and policy rules of the old.
func configure(dst *netlink.Handle, to *os.File, sysctls map[string]string, moved []*linkConfig, rules []netlink.Rule, routes []netlink.Route) error {
	if err := onThreadIn(to, func() error { return copySysctls(sysctls) }); err != nil {
		return err
	}
	for _, lc := range moved {
		if err := lc.apply(dst); err != nil {
			return err
		}
	}
	for _, r := range rules {
		if defaultRule(r) {
			continue
		}
		if err := dst.RuleAdd(&r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding policy rule %s: %w", r, err)
		}
	}
	return addRoutes(dst, routes)
}

// moveLinks moves the links of moving from src's namespace to the one
// toFD names, recording their new indexes in index and the links as they
// are in dst in moving. If a move fails, the ones moved go back (to the
// namespace fromFD names), and are returned.
func moveLinks(src, dst *netlink.Handle, toFD, fromFD int, moving []*linkConfig, index map[int]int) ([]*linkConfig, error) {
	for i, lc := range moving {
		if err := src.LinkSetNsFd(lc.link, toFD); err != nil {
			return moving[:i], errors.Join(fmt.Errorf("moving link %q: %w", lc.name, err), moveBack(dst, fromFD, moving[:i]))
		}
		moved, err := dst.LinkByName(lc.name)
		if err != nil {
			// It moved: the links are not all where they were.
			return nil, &movedError{fmt.Errorf("finding link %q after the move: %w", lc.name, err)}
		}
		index[lc.link.Attrs().Index] = moved.Attrs().Index
		lc.link = moved
	}
	return nil, nil
}

// moveBack moves links (as they are in dst) back to the namespace fromFD
// names; if one cannot go back, the links did not all stay.
func moveBack(dst *netlink.Handle, fromFD int, links []*linkConfig) error {
	var errs []error
	for _, lc := range links {
		if err := dst.LinkSetNsFd(lc.link, fromFD); err != nil {
			errs = append(errs, fmt.Errorf("moving link %q back: %w", lc.name, err))
		}
	}
	if len(errs) > 0 {
		return &movedError{errors.Join(errs...)}
	}
	return nil
}

// restore configures again, through src in namespace from, the links
// back there after a failed move (a move loses their configuration):
// links were from's links before, sysctls and routes its configuration.
func restore(src *netlink.Handle, from *os.File, links []netlink.Link, back []*linkConfig, sysctls map[string]string, routes []netlink.Route) error {
	if len(back) == 0 {
		return nil
	}
	index := map[int]int{}
	for _, l := range links {
		if now, err := src.LinkByName(l.Attrs().Name); err == nil {
			index[l.Attrs().Index] = now.Attrs().Index
		}
	}
	var found []*linkConfig
	var errs []error
	for _, lc := range back {
		l, err := src.LinkByName(lc.name)
		if err != nil {
			errs = append(errs, fmt.Errorf("finding link %q: %w", lc.name, err))
			continue
		}
		lc.link = l
		found = append(found, lc)
	}
	return errors.Join(append(errs, configure(src, from, sysctls, found, nil, adoptedRoutes(routes, index)))...)
}

// listRoutes lists the routes of every table through h, again if the
// kernel interrupted the dump.
func listRoutes(h *netlink.Handle) ([]netlink.Route, error) {
	for try := 0; ; try++ {
		routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if errors.Is(err, netlink.ErrDumpInterrupted) && try < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing routes: %w", err)
		}
		return routes, nil
	}
}

// defaultRule reports whether r is one of the policy rules every
// namespace starts with (local, main and default tables).
func defaultRule(r netlink.Rule) bool {
	plain := r.Src == nil && r.Dst == nil && r.Mark == 0 && r.Mask == nil && r.IifName == "" && r.OifName == "" && !r.Invert && r.Goto <= 0 && r.Tos == 0 && r.IPProto == 0 && r.Dport == nil && r.Sport == nil && r.UIDRange == nil
	switch {
	case !plain:
		return false
	case r.Priority == 0 && r.Table == unix.RT_TABLE_LOCAL,
		r.Priority == 32766 && r.Table == unix.RT_TABLE_MAIN,
		r.Priority == 32767 && r.Table == unix.RT_TABLE_DEFAULT:
		return true
	}
	return false
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
		if a.Flags&unix.IFA_F_DADFAILED != 0 {
			// Another host has it.
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
			c.Flags &= unix.RTNH_F_ONLINK | unix.RTNH_F_PERVASIVE
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
			case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EHOSTUNREACH):
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
