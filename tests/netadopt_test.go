package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/faultpoint"
	"github.com/runsc/runsc/internal/testhelp"
	"golang.org/x/sys/unix"
)

// cniNet makes, in the test's network namespace n, what CNI makes for a
// pod: a network namespace bound at a file (no process in it) holding
// eth0, a veth to n with 10.98.0.2/24 and a default route via n's end,
// 10.98.0.1. It returns the file.
func (n *testNet) cniNet(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "cni-netns")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := n.cmd("unshare", "--net="+file, "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare --net=%s: %v: %s", file, err, out)
	}
	t.Cleanup(func() { unix.Unmount(file, unix.MNT_DETACH) })
	// ip moves a link into a namespace by name or pid: a process is in
	// the new one until the link is there.
	pid, release := holdNetNS(t, file)
	run := func(ns string, args ...string) {
		t.Helper()
		if out, err := exec.Command("nsenter", append([]string{"--net=" + ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	n.cmd("ip", "link", "del", "vad0").Run()
	run(n.path, "ip", "link", "add", "vad0", "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(pid))
	release()
	run(n.path, "ip", "addr", "add", "10.98.0.1/24", "dev", "vad0")
	run(n.path, "ip", "link", "set", "vad0", "up")
	in := func(args ...string) { t.Helper(); run(file, args...) }
	in("ip", "link", "set", "lo", "up")
	in("ip", "addr", "add", "10.98.0.2/24", "dev", "eth0")
	in("ip", "link", "set", "eth0", "up")
	in("ip", "route", "add", "default", "via", "10.98.0.1")
	return file
}

// holdNetNS starts a process in the network namespace bound at file and
// returns once it is there, with its pid and a function that ends it
// (also called at the end of the test).
func holdNetNS(t *testing.T, file string) (pid int, release func()) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("nsenter", "--net="+file, "sleep", "100000")
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { holder.Process.Kill(); holder.Wait() }) }
	t.Cleanup(release)
	testhelp.WaitFor(t, "a process in "+file, 10*time.Second, func() bool {
		var got unix.Stat_t
		return unix.Stat(fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid), &got) == nil && got.Dev == st.Dev && got.Ino == st.Ino
	})
	return holder.Process.Pid, release
}

// netAdminScript prints the container's network namespace, its eth0
// address and routes, then
// uses CAP_NET_ADMIN over its network namespace (an MTU, a route) and
// pings the host's end.
const netAdminScript = `readlink /proc/self/ns/net; ip -o -4 addr show eth0; ip route
ip link set eth0 mtu 1400 && ip route add 10.97.0.0/16 via 10.98.0.1 && echo admin-ok || echo admin-refused
ping -c1 -W5 10.98.0.1 >/dev/null && echo pinged; true`

// nsLine returns the line of a netAdminScript's output naming its
// network namespace.
func nsLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "net:[") {
			return l
		}
	}
	return ""
}

// netAdminSpec returns spec running netAdminScript with CAP_NET_ADMIN and
// CAP_NET_RAW, in the network namespace bound at file.
func netAdminSpec(spec *specs.Spec, file string) *specs.Spec {
	spec.Process.Args = []string{"sh", "-c", netAdminScript}
	c := spec.Process.Capabilities
	for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted} {
		*set = append(*set, "CAP_NET_ADMIN", "CAP_NET_RAW")
	}
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = file
		}
	}
	return spec
}

// TestNetNSAdopted: a pod in its own user namespace given a network
// namespace bound at a file, as CRI and podman give one, adopts it: its
// containers keep CNI's addresses and routes, CAP_NET_ADMIN reaches
// them, and the file names the pod's namespace afterwards. Where it may
// not adopt, it joins, and CAP_NET_ADMIN does not reach the links.
func TestNetNSAdopted(t *testing.T) {
	host := newTestNet(t)
	check := func(t *testing.T, out string, admin bool) {
		t.Helper()
		for _, want := range []string{"10.98.0.2/24", "default via 10.98.0.1"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		// Without capabilities over the namespace, ping has no raw
		// socket either.
		for _, want := range []string{"admin-ok", "pinged"} {
			if got := strings.Contains(out, want); got != admin {
				t.Errorf("%s: %v, want %v:\n%s", want, got, admin, out)
			}
		}
	}
	mtu := func(t *testing.T, file string) string {
		t.Helper()
		out, err := exec.Command("nsenter", "--net="+file, "ip", "-o", "link", "show", "eth0").CombinedOutput()
		f := strings.Fields(string(out))
		if i := indexOf(f, "mtu"); err == nil && i >= 0 && i+1 < len(f) {
			return f[i+1]
		}
		t.Fatalf("reading eth0's mtu through %s: %v: %s", file, err, out)
		return ""
	}
	nsOf := func(t *testing.T, file string) string {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(file, &st); err != nil {
			t.Fatal(err)
		}
		return "net:[" + strconv.FormatUint(st.Ino, 10) + "]"
	}
	t.Run("container", func(t *testing.T) {
		file := host.cniNet(t)
		before := nsOf(t, file)
		e := host.env()
		defer e.sub(t)()
		out := e.must("run", "--bundle", newBundle(t, netAdminSpec(testSpec(), file)).dir, "adopt")
		check(t, out, true)
		if got := nsLine(out); got == before || got != nsOf(t, file) {
			t.Errorf("the container was in %s, the file named %s before and %s after: want it adopted", got, before, nsOf(t, file))
		}
		if got := mtu(t, file); got != "1400" {
			t.Errorf("eth0's mtu through the file after the run: %s; want the container's 1400 (the file names the namespace it used)", got)
		}
	})
	t.Run("pod", func(t *testing.T) {
		file := host.cniNet(t)
		e := host.env()
		defer e.sub(t)()
		pod := netAdminSpec(podSpec("", "sleep", "100000"), file)
		pod.Process.Args = []string{"sleep", "100000"}
		e.must("run", "-d", "--bundle", newBundle(t, pod).dir, "pod")
		sandbox := e.saved("pod").Sandbox.PID
		var want, got unix.Stat_t
		if err := unix.Stat(file, &got); err != nil {
			t.Fatal(err)
		}
		if err := unix.Stat("/proc/"+strconv.Itoa(sandbox)+"/ns/net", &want); err != nil {
			t.Fatal(err)
		}
		if got.Ino != want.Ino || got.Dev != want.Dev {
			t.Errorf("the file names network namespace %d, the sandbox is in %d", got.Ino, want.Ino)
		}
		member := netAdminSpec(podSpec("pod"), file)
		check(t, e.must("run", "--bundle", newBundle(t, member).dir, "member"), true)
		e.must("delete", "--force", "pod")
		if got := mtu(t, file); got != "1400" {
			t.Errorf("eth0's mtu after the pod: %s, want 1400", got)
		}
	})
	t.Run("joined when it comes into use before the move", func(t *testing.T) {
		file := host.cniNet(t)
		before := nsOf(t, file)
		e := host.env()
		defer e.sub(t)()
		b := newBundle(t, netAdminSpec(testSpec(), file))
		cli := e.stoppedAt(faultpoint.CreateAdopt, "create", "--bundle", b.dir, "late")
		holdNetNS(t, file)
		cli.Process.Signal(syscall.SIGCONT)
		done := make(chan error, 1)
		go func() { done <- cli.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				out, _ := os.ReadFile(e.faultOut)
				t.Fatalf("create: %v: %s", err, out)
			}
		case <-time.After(60 * time.Second):
			cli.Process.Kill()
			t.Fatal("create hung")
		}
		e.must("start", "late")
		e.must("wait", "late")
		data, _ := os.ReadFile(e.faultOut)
		out := string(data)
		check(t, out, false)
		if got := nsLine(out); got != before || nsOf(t, file) != before {
			t.Errorf("the container was in %s, the file named %s before and %s after: want it joined", got, before, nsOf(t, file))
		}
	})
	// Where the pod may not adopt the namespace, it joins it: the
	// container is in the file's namespace, which stays, and its
	// capabilities (but with --userns=host) do not reach the links.
	for _, c := range []struct {
		name  string
		flags []string
		prep  func(t *testing.T, file string) (undo func())
		admin bool
	}{
		{name: "--adopt-netns=false", flags: []string{"--adopt-netns=false"}},
		{name: "--userns=host", flags: []string{"--userns=host"}, admin: true},
		{name: "a process in it", prep: func(t *testing.T, file string) func() {
			_, release := holdNetNS(t, file)
			return release
		}},
		{name: "a bridge in it", prep: func(t *testing.T, file string) func() {
			if out, err := exec.Command("nsenter", "--net="+file, "ip", "link", "add", "br9", "type", "bridge").CombinedOutput(); err != nil {
				t.Skipf("this kernel makes no bridge: %v: %s", err, out)
			}
			return func() {}
		}},
		{name: "a firewall table in it", prep: func(t *testing.T, file string) func() {
			if _, err := exec.LookPath("nft"); err != nil {
				t.Skip("no nft to make a table with")
			}
			if out, err := exec.Command("nsenter", "--net="+file, "nft", "add", "table", "inet", "mesh").CombinedOutput(); err != nil {
				t.Fatalf("nft add table: %v: %s", err, out)
			}
			return func() {}
		}},
	} {
		t.Run("joined with "+c.name, func(t *testing.T) {
			file := host.cniNet(t)
			if c.prep != nil {
				defer c.prep(t, file)()
			}
			before := nsOf(t, file)
			e := host.env(c.flags...)
			defer e.sub(t)()
			out := e.must("run", "--bundle", newBundle(t, netAdminSpec(testSpec(), file)).dir, "joined")
			check(t, out, c.admin)
			if got := nsLine(out); got != before || nsOf(t, file) != before {
				t.Errorf("the container was in %s, the file named %s before and %s after: want it joined", got, before, nsOf(t, file))
			}
			if want := map[bool]string{true: "1400", false: "1500"}[c.admin]; mtu(t, file) != want {
				t.Errorf("eth0's mtu through the file %s, want %s", mtu(t, file), want)
			}
		})
	}
}
