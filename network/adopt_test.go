package network

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// cidr parses s or fails the test.
func cidr(t *testing.T, s string) *net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return n
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// handle returns a netlink handle in namespace file ns.
func handle(t *testing.T, ns interface{ Fd() uintptr }) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(int(ns.Fd())), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// sysctl reads (value "") or writes a network sysctl (a path under
// /proc/sys/net) in namespace ns.
func sysctl(t *testing.T, ns *os.File, path, value string) string {
	t.Helper()
	var out []byte
	err := onThreadIn(ns, func() (err error) {
		full := "/proc/sys/net/" + path
		if value != "" {
			return os.WriteFile(full, []byte(value), 0)
		}
		out, err = os.ReadFile(full)
		return err
	})
	if err != nil {
		t.Fatalf("sysctl %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// TestAdopt moves a CNI-like set-up (a veth pair, a plain link, v4 and v6
// addresses, a gateway, an onlink route, a route in another table, a
// route whose gateway only another route reaches, v4 and v6 blackhole
// routes, a permanent neighbour, a policy rule, per-link and
// namespace-wide sysctls) into a namespace where other links hold their
// indexes, and checks all of it arrives.
func TestAdopt(t *testing.T) {
	needRoot(t)
	from, to := sandboxNS(t), sandboxNS(t)
	src, dst := handle(t, from), handle(t, to)
	kind := plainKind(t)
	for _, name := range []string{"occ0", "occ1", "occ2", "occ3"} {
		must(t, "occupying an index", dst.LinkAdd(&netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: name}, LinkType: kind}))
	}
	must(t, "veth", src.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "va"}, PeerName: "vb"}))
	must(t, kind, src.LinkAdd(&netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: "pl0"}, LinkType: kind}))
	va, err := src.LinkByName("va")
	must(t, "va", err)
	pl0, err := src.LinkByName("pl0")
	must(t, "pl0", err)
	for _, l := range []netlink.Link{va, pl0} {
		must(t, "up", src.LinkSetUp(l))
	}
	must(t, "v4", src.AddrAdd(va, &netlink.Addr{IPNet: cidr(t, "10.1.0.2/24")}))
	must(t, "v6", src.AddrAdd(va, &netlink.Addr{IPNet: cidr(t, "fd01::2/64"), Flags: unix.IFA_F_NODAD}))
	must(t, "pl0 v4", src.AddrAdd(pl0, &netlink.Addr{IPNet: cidr(t, "10.2.0.2/32"), Flags: unix.IFA_F_NOPREFIXROUTE}))
	routes := []netlink.Route{
		{Dst: cidr(t, "0.0.0.0/0"), Gw: net.ParseIP("10.1.0.1"), LinkIndex: va.Attrs().Index},
		{Dst: cidr(t, "10.3.0.0/16"), Gw: net.ParseIP("10.9.9.9"), LinkIndex: pl0.Attrs().Index, Flags: int(netlink.FLAG_ONLINK)},
		{Dst: cidr(t, "10.4.0.0/16"), LinkIndex: va.Attrs().Index, Table: 100},
		{Dst: cidr(t, "10.5.0.0/16"), Type: unix.RTN_BLACKHOLE},
		{Dst: cidr(t, "fd02::/64"), Gw: net.ParseIP("fd01::1"), LinkIndex: va.Attrs().Index},
		{Dst: cidr(t, "fd03::/64"), Type: unix.RTN_BLACKHOLE},
		{Dst: cidr(t, "10.7.0.0/24"), LinkIndex: va.Attrs().Index, Protocol: 4, Scope: netlink.SCOPE_LINK},
		{Dst: cidr(t, "10.6.0.0/16"), Gw: net.ParseIP("10.7.0.1"), LinkIndex: va.Attrs().Index},
	}
	for i := range routes {
		must(t, "route "+routes[i].String(), src.RouteAdd(&routes[i]))
	}
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	must(t, "neigh", src.NeighAdd(&netlink.Neigh{LinkIndex: va.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: net.ParseIP("10.1.0.1"), HardwareAddr: mac}))

	rule := netlink.NewRule()
	rule.Priority, rule.Table, rule.Src, rule.Family = 100, 100, cidr(t, "10.1.0.0/24"), unix.AF_INET
	must(t, "rule", src.RuleAdd(rule))
	sysctl(t, from, "ipv4/conf/va/arp_notify", "1")
	sysctl(t, from, "ipv6/conf/va/accept_dad", "0")
	// The kernel checks the range against the unprivileged port
	// start, which sorts after it.
	sysctl(t, from, "ipv4/ip_unprivileged_port_start", "0")
	sysctl(t, from, "ipv4/ip_local_port_range", "500\t60000")

	must(t, "CanAdopt", CanAdopt(from))
	must(t, "Adopt", Adopt(from, to))

	for name := range links(t, src) {
		if name == "va" || name == "vb" || name == "pl0" {
			t.Errorf("%s is still in the old namespace", name)
		}
	}
	got := links(t, dst)
	for _, name := range []string{"va", "vb", "pl0"} {
		if !got[name] {
			t.Fatalf("%s is not in the new namespace: %v", name, got)
		}
	}
	va, _ = dst.LinkByName("va")
	pl0, _ = dst.LinkByName("pl0")
	if vb, _ := dst.LinkByName("vb"); va.Attrs().Flags&net.FlagUp == 0 || vb.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("up states: va %v, vb %v; want va up, vb down as they were", va.Attrs().Flags, vb.Attrs().Flags)
	}
	addrs, err := dst.AddrList(va, netlink.FAMILY_ALL)
	must(t, "addresses", err)
	var have []string
	for _, a := range addrs {
		have = append(have, a.IPNet.String())
	}
	for _, want := range []string{"10.1.0.2/24", "fd01::2/64"} {
		if !strings.Contains(strings.Join(have, " "), want) {
			t.Errorf("va's addresses %v lack %s", have, want)
		}
	}
	if addrs, _ := dst.AddrList(pl0, netlink.FAMILY_V4); len(addrs) != 1 || addrs[0].Flags&unix.IFA_F_NOPREFIXROUTE == 0 {
		t.Errorf("pl0's addresses %+v: want 10.2.0.2/32 noprefixroute", addrs)
	}
	all, err := dst.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	must(t, "routes", err)
	for _, want := range routes {
		typ := want.Type
		if typ == 0 {
			typ = unix.RTN_UNICAST
		}
		found := false
		for _, r := range all {
			if r.Dst != nil && r.Dst.String() == want.Dst.String() && r.Gw.Equal(want.Gw) && (want.Table == 0 || r.Table == want.Table) && r.Type == typ && (typ == unix.RTN_BLACKHOLE || (want.LinkIndex == 0) == (r.LinkIndex == 0)) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("route %s not in the new namespace: %v", want, all)
		}
	}
	for path, want := range map[string]string{"ipv4/conf/va/arp_notify": "1", "ipv6/conf/va/accept_dad": "0", "ipv4/ip_unprivileged_port_start": "0", "ipv4/ip_local_port_range": "500\t60000"} {
		if got := sysctl(t, to, path, ""); got != want {
			t.Errorf("sysctl %s = %q in the new namespace, want %q", path, got, want)
		}
	}
	rules, err := dst.RuleList(unix.AF_INET)
	must(t, "rules", err)
	found := false
	for _, r := range rules {
		found = found || (r.Priority == 100 && r.Table == 100 && r.Src != nil && r.Src.String() == "10.1.0.0/24")
	}
	if !found {
		t.Errorf("rule %s not in the new namespace: %v", rule, rules)
	}
	neigh, err := dst.NeighList(va.Attrs().Index, unix.AF_INET)
	must(t, "neighbours", err)
	if len(neigh) != 1 || neigh[0].State&netlink.NUD_PERMANENT == 0 || neigh[0].HardwareAddr.String() != mac.String() {
		t.Errorf("neighbours %+v: want 10.1.0.1 at %s, permanent", neigh, mac)
	}
}

// TestCanAdopt: a bridge cannot leave its namespace, and firewall tables
// would not follow the links, so a namespace holding either is not
// adopted.
func TestCanAdopt(t *testing.T) {
	needRoot(t)
	t.Run("bridge", func(t *testing.T) {
		ns := sandboxNS(t)
		if err := handle(t, ns).LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br9"}}); err != nil {
			t.Skipf("this kernel makes no bridge: %v", err)
		}
		if err := CanAdopt(ns); err == nil || !strings.Contains(err.Error(), `link "br9" is a bridge`) {
			t.Errorf("CanAdopt with a bridge: %v", err)
		}
	})
	t.Run("nftables", func(t *testing.T) {
		ns := sandboxNS(t)
		must(t, "CanAdopt of an empty namespace", CanAdopt(ns))
		nft, err := exec.LookPath("nft")
		if err != nil {
			t.Skip("no nft to make a table with")
		}
		if out, err := exec.Command("nsenter", "--net="+fdPathOf(ns), nft, "add", "table", "inet", "mesh").CombinedOutput(); err != nil {
			t.Fatalf("nft add table: %v: %s", err, out)
		}
		if err := CanAdopt(ns); err == nil || !strings.Contains(err.Error(), "firewall state (1 nftables table(s))") {
			t.Errorf("CanAdopt with an nftables table: %v", err)
		}
	})
}

// fdPathOf names f through /proc/<this process>/fd (for another process).
func fdPathOf(f *os.File) string {
	return "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(f.Fd()))
}

// TestAdoptMovesBack: when a link cannot move (a bridge), the ones moved
// before it come back with their configuration, and the error says the
// links stayed.
func TestAdoptMovesBack(t *testing.T) {
	needRoot(t)
	from, to := sandboxNS(t), sandboxNS(t)
	src := handle(t, from)
	must(t, "veth", src.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "va"}, PeerName: "vb"}))
	if err := src.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br9"}}); err != nil {
		t.Skipf("this kernel makes no bridge: %v", err)
	}
	va, _ := src.LinkByName("va")
	must(t, "up", src.LinkSetUp(va))
	must(t, "v4", src.AddrAdd(va, &netlink.Addr{IPNet: cidr(t, "10.1.0.2/24")}))
	must(t, "route", src.RouteAdd(&netlink.Route{Dst: cidr(t, "10.6.0.0/16"), Gw: net.ParseIP("10.1.0.1"), LinkIndex: va.Attrs().Index}))
	err := Adopt(from, to)
	if !errors.Is(err, ErrLinksStayed) || !strings.Contains(err.Error(), `moving link "br9"`) {
		t.Fatalf("Adopt with a bridge: %v; want an error moving br9 with ErrLinksStayed", err)
	}
	if got := links(t, handle(t, to)); got["va"] || got["vb"] {
		t.Errorf("links left in the new namespace: %v", got)
	}
	va, err = src.LinkByName("va")
	must(t, "va back", err)
	addrs, _ := src.AddrList(va, unix.AF_INET)
	routes, _ := src.RouteList(va, unix.AF_INET)
	var dsts []string
	for _, r := range routes {
		if r.Dst != nil {
			dsts = append(dsts, r.Dst.String())
		}
	}
	if va.Attrs().Flags&net.FlagUp == 0 || len(addrs) != 1 || addrs[0].IPNet.String() != "10.1.0.2/24" || !strings.Contains(strings.Join(dsts, " "), "10.6.0.0/16") {
		t.Errorf("va back: flags %v, addresses %v, routes %v; want up with 10.1.0.2/24 and the route to 10.6.0.0/16", va.Attrs().Flags, addrs, dsts)
	}
}
