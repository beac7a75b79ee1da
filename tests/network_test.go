package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// testNet is a network namespace a test makes, held by a sleeping
// process: the test's stand-in for the host's, with addresses in
// 169.254.77.0/24 that exist only there.
type testNet struct {
	t    *testing.T
	path string
}

// newTestNet makes a network namespace with lo up and 169.254.77.1/32
// on it, removed with its holder at the end of the test.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	requireRoot(t)
	holder := exec.Command("sleep", "100000")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	n := &testNet{t: t, path: fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)}
	n.must("ip", "link", "set", "lo", "up")
	n.must("ip", "addr", "add", "169.254.77.1/32", "dev", "lo")
	return n
}

// cmd returns a command run in the namespace.
func (n *testNet) cmd(args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + n.path, "--"}, args...)...)
}

// must runs a command in the namespace and returns its output.
func (n *testNet) must(args ...string) string {
	n.t.Helper()
	out, err := n.cmd(args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%v: %v: %s", args, err, out)
	}
	return string(out)
}

// env returns a runsc env whose commands run in the namespace.
func (n *testNet) env(extra ...string) *runscEnv {
	e := newEnv(n.t, extra...)
	e.wrap = []string{"nsenter", "--net=" + n.path, "--"}
	return e
}

// links returns the namespace's link names (without @peer suffixes).
func (n *testNet) links() []string {
	n.t.Helper()
	var names []string
	for _, line := range strings.Split(n.must("ip", "-o", "link", "show"), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return names
}

// waitOnly waits until the namespace holds only the links want (lo and
// what the test made), and no route to 169.254.77.2: links of a
// namespace that went away are removed by the kernel a moment later.
func (n *testNet) waitOnly(want ...string) {
	n.t.Helper()
	want = append([]string{"lo"}, want...)
	var got []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = n.links()
		if strings.Join(got, " ") == strings.Join(want, " ") && !strings.Contains(n.must("ip", "route", "show"), "169.254.77.2") {
			return
		}
	}
	n.t.Fatalf("links %v (want %v), routes %q", got, want, n.must("ip", "route", "show"))
}

// serveHTTP serves dir at 169.254.77.1:8080 in the namespace until the
// end of the test.
func (n *testNet) serveHTTP(dir string) {
	n.t.Helper()
	srv := n.cmd("busybox", "httpd", "-f", "-p", "169.254.77.1:8080", "-h", dir)
	if err := srv.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := n.cmd("busybox", "wget", "-q", "-O", "/dev/null", "http://169.254.77.1:8080/").Run(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatal("the test's HTTP server did not come up")
		}
	}
}

// TestDoVeth runs a sandbox wired to the test's namespace by a veth pair:
// it fetches a page served there (TCP there and back), then everything
// goes with it.
func TestDoVeth(t *testing.T) {
	n := newTestNet(t)
	e := n.env()
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "index.html"), []byte("served from the peer\n"), 0o644)
	n.serveHTTP(www)
	rootfs := busyboxRootfs(t)
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"named host end", []string{"--veth-host", "vh-test0"}},
		{"default host end", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer e.sub(t)()
			args := append([]string{"do", "--network=veth", "--address", "169.254.77.2/32", "--root-dir", rootfs}, c.flags...)
			// Up (the operstate follows a moment later).
			script := "ip -o link show eth0 | grep -q '[<,]UP[,>]' && echo up; wget -qO- http://169.254.77.1:8080/"
			r := e.exec("", append(args, "--", "sh", "-c", script)...)
			if r.code != 0 || r.stdout != "up\nserved from the peer\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			n.waitOnly()
		})
	}
	t.Run("host end seen from the host", func(t *testing.T) {
		defer e.sub(t)()
		// Pid 1 of its namespace: SIGTERM only through a handler, set
		// before it says it is ready.
		cmd := e.cmd("do", "--network=veth", "--veth-host", "vh-test1", "--address", "169.254.77.2/32", "--root-dir", rootfs, "--",
			"sh", "-c", "trap 'exit 0' TERM; echo ready; sleep 1000 & wait")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// SIGTERM, forwarded to the command, ends it; do then deletes
		// the sandbox and the pair.
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Error("runsc do did not end on SIGTERM")
			}
		}()
		ready := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(out).ReadString('\n')
			ready <- line
		}()
		select {
		case line := <-ready:
			if line != "ready\n" {
				t.Fatalf("the command printed %q", line)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the command never got ready")
		}
		if !strings.Contains(strings.Join(n.links(), " "), "vh-test1") {
			t.Fatalf("no host end: %v", n.links())
		}
		if route := n.must("ip", "route", "show", "169.254.77.2"); !strings.Contains(route, "dev vh-test1 scope link") {
			t.Errorf("host route %q", route)
		}
	})
	n.waitOnly()
}

// TestDoVethSandboxKilled: kill -9 of the sandbox takes the pair and the
// route with it.
func TestDoVethSandboxKilled(t *testing.T) {
	n := newTestNet(t)
	e := n.env()
	cmd := e.cmd("do", "--network=veth", "--veth-host", "vh-kill", "--address", "169.254.77.2/32", "--root-dir", busyboxRootfs(t), "--", "sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var sandbox int
	for deadline := time.Now().Add(20 * time.Second); sandbox == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no running sandbox")
		}
		matches, _ := filepath.Glob(filepath.Join(e.root, "*", "state.json"))
		for _, m := range matches {
			var st struct {
				Status  string            `json:"status"`
				Sandbox struct{ PID int } `json:"sandbox"`
			}
			if data, err := os.ReadFile(m); err == nil && json.Unmarshal(data, &st) == nil && st.Status == "running" {
				sandbox = st.Sandbox.PID
			}
		}
	}
	if err := unix.Kill(sandbox, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("runsc do did not return after its sandbox was killed")
	}
	n.waitOnly()
	if out := e.must("list", "--quiet"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
}

// TestNetworkModes: runsc runs in one test namespace (holding mark-a),
// the spec names another (holding mark-b): sandbox joins the spec's (and
// so does its pod), host shares the one runsc runs in, none makes a new
// one whatever the spec says.
func TestNetworkModes(t *testing.T) {
	runIn, named := newTestNet(t), newTestNet(t)
	runIn.must("ip", "link", "add", "mark-a", "type", plainLinkKind(t, runIn))
	named.must("ip", "link", "add", "mark-b", "type", plainLinkKind(t, named))
	links := []string{"sh", "-c", "cut -d: -f1 /proc/net/dev | tr -d ' ' | grep -v '|' | sort | tr '\\n' ' '"}
	withPath := func(spec *specs.Spec) *specs.Spec {
		for i, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				spec.Linux.Namespaces[i].Path = named.path
			}
		}
		return spec
	}
	for _, c := range []struct {
		mode string
		spec *specs.Spec
		want string
	}{
		{"sandbox", withPath(testSpec(links...)), "lo mark-b "},
		{"none", withPath(testSpec(links...)), "lo "},
		{"host", withPath(testSpec(links...)), "lo mark-a "},
	} {
		t.Run(c.mode, func(t *testing.T) {
			e := runIn.env("--network=" + c.mode)
			if out := e.must("run", "--bundle", newBundle(t, c.spec).dir, "net-"+c.mode); out != c.want {
				t.Errorf("links %q, want %q", out, c.want)
			}
		})
	}
	t.Run("pod on a joined namespace", func(t *testing.T) {
		// CNI's way: the pod's sandbox container names the namespace,
		// its members share the sandbox's.
		e := runIn.env()
		pod := podSpec("", "sleep", "100000")
		pod.Linux = withPath(testSpec()).Linux
		e.must("run", "-d", "--bundle", newBundle(t, pod).dir, "pod")
		if out := e.must("run", "--bundle", newBundle(t, podSpec("pod", links...)).dir, "member"); out != "lo mark-b " {
			t.Errorf("the pod's member sees links %q", out)
		}
		e.must("delete", "--force", "pod")
	})
	b := newBundle(t, testSpec("true"))
	wantOneLineError(t, runIn.env("--network=bridge").exec("", "run", "--bundle", b.dir, "net-bad"), `--network "bridge": want sandbox, none, host or veth`)
	wantOneLineError(t, runIn.env("--network=veth").exec("", "run", "--bundle", b.dir, "net-veth"), "--network=veth: only runsc do")
}

// plainLinkKind returns a link type the kernel makes without options
// and that moves between namespaces: dummy, or ifb where the kernel was
// built without dummy.
func plainLinkKind(t *testing.T, n *testNet) string {
	t.Helper()
	for _, kind := range []string{"dummy", "ifb"} {
		if n.cmd("ip", "link", "add", "probe0", "type", kind).Run() == nil {
			n.must("ip", "link", "del", "probe0")
			return kind
		}
	}
	t.Fatal("the kernel makes neither dummy nor ifb links")
	return ""
}
