package network

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/specutils"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// privateNetEnv marks the test process that runs in a network namespace
// of its own.
const privateNetEnv = "RUNSC_NETWORK_TEST_PRIVATE"

// TestMain runs the tests, as root, in a network namespace of their own:
// what they take for the host's namespace is never the machine's.
func TestMain(m *testing.M) {
	if os.Geteuid() != 0 || os.Getenv(privateNetEnv) != "" {
		RecordStartNS()
		os.Exit(m.Run())
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), privateNetEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("makes network namespaces and links: needs root")
	}
}

// sandboxNS returns a new network namespace, as a file.
func sandboxNS(t *testing.T) *os.File {
	t.Helper()
	ch := make(chan any)
	go func() {
		// The thread is left in the new namespace and dies with
		// the goroutine (the main thread is parked for good).
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- err
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- err
			return
		}
		ch <- f
	}()
	switch v := (<-ch).(type) {
	case error:
		t.Fatal(v)
	case *os.File:
		t.Cleanup(func() { v.Close() })
		return v
	}
	return nil
}

func openNS(t *testing.T, sandbox *os.File) *Namespaces {
	t.Helper()
	n, err := Open(nil, sandbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// links returns the names of the links of a handle's namespace.
func links(t *testing.T, h *netlink.Handle) map[string]bool {
	t.Helper()
	ls, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range ls {
		out[l.Attrs().Name] = true
	}
	return out
}

// plainKind returns a link type that needs no options: dummy, or, on
// kernels built without it (as some VMs' are), ifb: both move between namespaces.
func plainKind(t *testing.T) string {
	t.Helper()
	ns := sandboxNS(t)
	n := openNS(t, ns)
	for _, kind := range []string{"dummy", "ifb"} {
		if err := n.sandbox.LinkAdd(&netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}, LinkType: kind}); err == nil {
			if l, err := n.sandbox.LinkByName("probe0"); err == nil {
				n.sandbox.LinkDel(l)
			}
			return kind
		}
	}
	t.Fatal("the kernel makes neither dummy nor ifb links")
	return ""
}

func TestLoopbackUp(t *testing.T) {
	needRoot(t)
	ns := sandboxNS(t)
	err := onThreadIn(ns, func() error {
		if err := LoopbackUp(); err != nil {
			return err
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			return errors.New("lo is not up")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVeth serves TCP in the host's namespace and reaches it from the
// sandbox's through the veth, then removes the pair.
func TestVeth(t *testing.T) {
	needRoot(t)
	if err := LoopbackUp(); err != nil {
		t.Fatal(err)
	}
	lo, _ := netlink.LinkByName("lo")
	server := &net.IPNet{IP: net.IPv4(169, 254, 77, 1), Mask: net.CIDRMask(32, 32)}
	if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: server}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "169.254.77.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "pong %s from %s\n", strings.TrimSpace(line), c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
	ns := sandboxNS(t)
	n := openNS(t, ns)
	addr, err := ParseAddress("169.254.77.2/32")
	if err != nil {
		t.Fatal(err)
	}
	made, err := n.AddVeth(Veth{HostName: "vtest0", Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddVeth(Veth{HostName: "vtest0"}); err == nil || !strings.Contains(err.Error(), `--veth-host "vtest0": making the veth pair: a link of that name exists`) {
		t.Errorf("second veth of the same name: %v", err)
	}
	var reply string
	err = onThreadIn(ns, func() error {
		c, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintln(c, "ping")
		reply, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		for _, args := range [][]string{{"ip", "addr"}, {"ip", "route"}, {"ip", "neigh"}, {"nsenter", fmt.Sprintf("--net=/proc/%d/fd/%d", os.Getpid(), ns.Fd()), "sh", "-c", "ip addr; ip route; ip neigh"}} {
			out, _ := exec.Command(args[0], args[1:]...).CombinedOutput()
			t.Logf("%v:\n%s", args, out)
		}
		t.Fatalf("reaching the host from the sandbox: %v", err)
	}
	if reply != "pong ping from 169.254.77.2\n" {
		t.Errorf("reply %q", reply)
	}
	if routes, err := netlink.RouteGet(addr.IP); err != nil || len(routes) == 0 || routes[0].LinkIndex != made.Index {
		t.Errorf("no host route to %s through the host end: %+v, %v", addr.IP, routes, err)
	}
	if l, err := netlink.LinkByIndex(made.Index); err != nil || l.Attrs().HardwareAddr.String() != hostMAC("vtest0").String() {
		t.Errorf("host end %v (%v), want address %s", l, err, hostMAC("vtest0"))
	}
	if err := made.Remove(); err != nil {
		t.Fatal(err)
	}
	if links(t, n.host)["vtest0"] || links(t, n.sandbox)["eth0"] {
		t.Error("the pair is still there after Remove")
	}
	if err := made.Remove(); err != nil {
		t.Errorf("removing again: %v", err)
	}
}

// TestVethGoesWithNamespace: when the sandbox's namespace goes, so does
// the host end, and Remove has nothing left to do.
func TestVethGoesWithNamespace(t *testing.T) {
	needRoot(t)
	ns := sandboxNS(t)
	n, err := Open(nil, ns)
	if err != nil {
		t.Fatal(err)
	}
	made, err := n.AddVeth(Veth{HostName: "vtest1"})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	ns.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := netlink.LinkByName("vtest1"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the host end outlived the sandbox's namespace")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := made.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestAddInterfaces(t *testing.T) {
	needRoot(t)
	kind := plainKind(t)
	if err := netlink.LinkAdd(&netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: "hostdummy"}, LinkType: kind}); err != nil {
		t.Fatal(err)
	}
	ns := sandboxNS(t)
	n := openNS(t, ns)
	ifs := []specutils.Interface{
		{Name: "eth1", Add: "veth", Peer: "vpeer1"},
		{Name: "rootdummy", Add: kind, CreateInRoot: true},
		{Name: "nsdummy", Add: kind},
		{Name: "hostdummy"},
	}
	made, err := addAll(n, ifs)
	if err != nil {
		t.Fatal(err)
	}
	in, host := links(t, n.sandbox), links(t, n.host)
	for _, want := range []string{"eth1", "rootdummy", "nsdummy", "hostdummy"} {
		if !in[want] {
			t.Errorf("%s is not in the sandbox: %v", want, in)
		}
		if host[want] {
			t.Errorf("%s is still in the host's namespace", want)
		}
	}
	if !host["vpeer1"] {
		t.Errorf("the veth's peer is not in the host's namespace: %v", host)
	}
	if l, err := n.host.LinkByName("vpeer1"); err != nil || l.Attrs().HardwareAddr.String() != hostMAC("vpeer1").String() {
		t.Errorf("the peer %v (%v) lacks its fixed address", l, err)
	}
	if err := n.RemoveLinks(made); err != nil {
		t.Fatal(err)
	}
	in, host = links(t, n.sandbox), links(t, n.host)
	for _, gone := range []string{"eth1", "rootdummy", "nsdummy"} {
		if in[gone] {
			t.Errorf("%s is still in the sandbox after RemoveLinks", gone)
		}
	}
	// The host's link stays where it was lent, never moved back.
	if !in["hostdummy"] || host["vpeer1"] || host["rootdummy"] {
		t.Errorf("after RemoveLinks the sandbox has %v, the host %v", in, host)
	}
}

// addAll adds ifs in order, as runsc create does, removing what it made
// on failure.
func addAll(n *Namespaces, ifs []specutils.Interface) ([]Link, error) {
	var made []Link
	for i, ifc := range ifs {
		l, err := n.AddInterface(fmt.Sprintf("interfaces[%d]", i), ifc)
		if err != nil {
			n.RemoveLinks(made)
			return nil, err
		}
		made = append(made, l)
	}
	return made, nil
}

// TestRemoveLinksByIndex: the container is root in its namespace and
// may rename, replace or move away the links made there. A veth goes
// through its host end wherever its sandbox end went; a made link
// renamed is still found; nothing of the container's reaches the host.
func TestRemoveLinksByIndex(t *testing.T) {
	needRoot(t)
	kind := plainKind(t)
	ns := sandboxNS(t)
	n := openNS(t, ns)
	made, err := addAll(n, []specutils.Interface{{Name: "eth1", Add: "veth", Peer: "vp0"}, {Name: "made0", Add: kind}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := n.sandbox.LinkByName("made0")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.sandbox.LinkSetName(l, "kept"); err != nil {
		t.Fatal(err)
	}
	// The veth's end moves to a namespace of the container's own; a
	// veth of its own takes the end's name.
	inner := sandboxNS(t)
	eth1, err := n.sandbox.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.sandbox.LinkSetNsFd(eth1, int(inner.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := n.sandbox.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}, PeerName: "own1"}); err != nil {
		t.Fatal(err)
	}
	before := links(t, n.host)
	if err := n.RemoveLinks(made); err != nil {
		t.Fatal(err)
	}
	in, host := links(t, n.sandbox), links(t, n.host)
	if in["kept"] {
		t.Errorf("the made link, renamed, was not removed: %v", in)
	}
	if host["vp0"] {
		t.Errorf("the veth's host end is still there: %v", host)
	}
	if !in["eth1"] || !in["own1"] {
		t.Errorf("the container's own veth was touched: %v", in)
	}
	for name := range host {
		if !before[name] {
			t.Errorf("%s appeared in the host's namespace", name)
		}
	}
}

func TestAddInterfacesFails(t *testing.T) {
	needRoot(t)
	ns := sandboxNS(t)
	n := openNS(t, ns)
	kind := plainKind(t)
	before := links(t, n.host)
	for _, tc := range []struct {
		name string
		ifs  []specutils.Interface
		want string
	}{
		{"unknown type", []specutils.Interface{{Name: "d0", Add: kind}, {Name: "x0", Add: "nosuchkind"}}, `interfaces[1].add "nosuchkind": unknown link type`},
		{"unknown type in root", []specutils.Interface{{Name: "v0", Add: "veth", Peer: "vp0"}, {Name: "x0", Add: "nosuchkind", CreateInRoot: true}}, `interfaces[1].add "nosuchkind": unknown link type`},
		{"no such host link", []specutils.Interface{{Name: "d0", Add: kind}, {Name: "nosuchlink"}}, `interfaces[1].name "nosuchlink": no such link in the host's network namespace`},
		{"taken name", []specutils.Interface{{Name: "lo", Add: kind}}, `interfaces[0].add "` + kind + `": making lo: a link of that name exists`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := addAll(n, tc.ifs)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if in := links(t, n.sandbox); len(in) != 1 || !in["lo"] {
				t.Errorf("the sandbox has %v left", in)
			}
			if host := links(t, n.host); len(host) != len(before) {
				t.Errorf("the host has %v, had %v", host, before)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]string{
		"169.254.77.2/32": "169.254.77.2/32", "10.1.2.3/24": "10.1.2.3/24", "fd00::2/128": "fd00::2/128",
	} {
		got, err := ParseAddress(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseAddress(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"169.254.77.2", "x/32", "169.254.0.1/32", "224.0.0.1/32", "0.0.0.0/0"} {
		if _, err := ParseAddress(bad); err == nil || !strings.HasPrefix(err.Error(), "--address ") {
			t.Errorf("ParseAddress(%q): %v", bad, err)
		}
	}
	if n := DefaultVethName("some-container-id"); len(n) > specutils.LinkNameMax || specutils.ValidateLinkName(n) != nil || n != DefaultVethName("some-container-id") {
		t.Errorf("DefaultVethName gave %q", n)
	}
}
