package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc/runsc/faultpoint"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// writeRuntimeConfig writes rc as the bundle's runtime.json.
func (b *bundle) writeRuntimeConfig(t *testing.T, rc any) {
	t.Helper()
	data, err := json.Marshal(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, specutils.RuntimeConfigFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRuntimeConfig applies a runtime config at create: directories in
// the container's root, a veth pair and two moved links in its network
// namespace, its net and uts namespaces bound on the host (nsenter sees
// the sandbox's links and hostname there); delete undoes it all.
func TestRuntimeConfig(t *testing.T) {
	n := newTestNet(t)
	kind := plainLinkKind(t, n)
	n.must("ip", "link", "add", "moved0", "type", kind)
	e := n.env()
	pins := filepath.Join(t.TempDir(), "pins")
	spec := testSpec("sh", "-c", "ls -d /made/here /tmp/also && cut -d: -f1 /proc/net/dev | tr -d ' ' | grep -v '|' | sort | tr '\\n' ' '")
	b := newBundle(t, spec)
	b.writeRuntimeConfig(t, specutils.RuntimeConfig{
		Mkdir: []string{"/made/here", "/tmp/also"},
		Interfaces: []specutils.Interface{
			{Name: "eth1", Add: "veth", Peer: "vh-rc0"},
			{Name: "made0", Add: kind, CreateInRoot: true},
			{Name: "moved0"},
		},
		BindNS: &specutils.BindNS{Net: filepath.Join(pins, "net"), UTS: filepath.Join(pins, "uts")},
	})
	e.must("create", "--bundle", b.dir, "rc")
	if links := strings.Join(n.links(), " "); links != "lo vh-rc0" {
		t.Errorf("the test's namespace has %q, want lo and the veth's peer", links)
	}
	out, err := combined("nsenter", "--net="+filepath.Join(pins, "net"), "--", "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"lo", "eth1", "made0", "moved0"} {
		if !strings.Contains(out, ": "+l+"") {
			t.Errorf("the bound network namespace lacks %s: %s", l, out)
		}
	}
	if out, err := combined("nsenter", "--uts="+filepath.Join(pins, "uts"), "--", "hostname"); err != nil || out != "runsc-test\n" {
		t.Errorf("hostname in the bound uts namespace: %q, %v", out, err)
	}
	e.must("start", "rc")
	e.must("wait", "rc")
	e.must("delete", "rc")
	if _, err := os.Stat(filepath.Join(b.rootfs, "made", "here")); err != nil {
		t.Errorf("mkdir did not reach the root: %v", err)
	}
	for _, p := range []string{"net", "uts"} {
		if _, err := os.Lstat(filepath.Join(pins, p)); !os.IsNotExist(err) {
			t.Errorf("binding %s left after delete: %v", p, err)
		}
	}
	// Made links are gone; the moved one, a virtual link, went with
	// the sandbox's namespace, as it does with runc.
	n.waitOnly()
}

// TestRuntimeConfigOutput checks what the container saw.
func TestRuntimeConfigOutput(t *testing.T) {
	n := newTestNet(t)
	e := n.env()
	spec := testSpec("sh", "-c", "ls -d /made/here && cut -d: -f1 /proc/net/dev | tr -d ' ' | grep -v '|' | sort | tr '\\n' ' '")
	spec.Annotations = map[string]string{specutils.RuntimeConfigAnnotation: `{"mkdir":["/made/here"],"interfaces":[{"name":"eth1","peer":"vh-rc1"}]}`}
	b := newBundle(t, spec)
	// The annotation wins over a runtime.json.
	b.writeRuntimeConfig(t, specutils.RuntimeConfig{Mkdir: []string{"/not/this"}})
	if out := e.must("run", "--bundle", b.dir, "rc-out"); out != "/made/here\neth1 lo " {
		t.Errorf("container printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(b.rootfs, "not")); !os.IsNotExist(err) {
		t.Errorf("runtime.json was used over the annotation: %v", err)
	}
	n.waitOnly()
}

// TestRuntimeConfigErrors: a bad runtime config is a one-line error
// naming the field, and leaves no container, link or file behind.
func TestRuntimeConfigErrors(t *testing.T) {
	n := newTestNet(t)
	kind := plainLinkKind(t, n)
	e := n.env()
	ro := filepath.Join(t.TempDir(), "ro")
	os.Mkdir(ro, 0o755)
	if err := unix.Mount("tmpfs", ro, "tmpfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(ro, unix.MNT_DETACH) })
	pins := t.TempDir()
	// A namespace bound already (as `ip netns add` leaves one).
	bound := filepath.Join(t.TempDir(), "bound")
	os.WriteFile(bound, nil, 0o444)
	if err := unix.Mount("/proc/self/ns/uts", bound, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(bound, unix.MNT_DETACH) })
	b := newBundle(t, testSpec("true"))
	for _, c := range []struct {
		name, rc, want string
	}{
		{"unknown link type", `{"interfaces":[{"name":"eth1","peer":"vh-e0"},{"name":"x0","add":"nosuchkind"}]}`, `interfaces[1].add "nosuchkind": unknown link type`},
		{"missing peer", `{"interfaces":[{"name":"eth1","add":"veth"}]}`, "interfaces[0].peer: a veth needs a peer"},
		{"long name", `{"interfaces":[{"name":"abcdefghijklmnop","add":"` + kind + `"}]}`, `interfaces[0].name: "abcdefghijklmnop" is longer than 15 bytes`},
		{"no such link", `{"interfaces":[{"name":"nosuch0"}]}`, `interfaces[0].name "nosuch0": no such link`},
		{"read-only bind path", `{"interfaces":[{"name":"eth1","peer":"vh-e1"}],"bindNS":{"net":"` + pins + `/net","uts":"` + ro + `/uts"}}`, `bindNS.uts "` + ro + `/uts": read-only file system`},
		{"bind over a binding", `{"bindNS":{"uts":"` + bound + `"}}`, `bindNS.uts "` + bound + `": exists and is not an empty file (nor a namespace already bound there)`},
		{"mkdir on a read-only root", `{"mkdir":["/x/y"]}`, `runtime config mkdir[0] "/x/y": mkdir /x: read-only file system`},
		{"bad JSON", `{"mkdir":`, "runtime.json: invalid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer e.sub(t)()
			spec := testSpec("true")
			spec.Root.Readonly = c.name == "mkdir on a read-only root"
			b.writeSpec(t, spec)
			os.WriteFile(filepath.Join(b.dir, specutils.RuntimeConfigFile), []byte(c.rc), 0o644)
			wantOneLineError(t, e.exec("", "create", "--bundle", b.dir, "rc-bad"), c.want)
			if out := e.must("list", "--quiet"); strings.TrimSpace(out) != "" {
				t.Errorf("containers left: %q", out)
			}
			if left, _ := os.ReadDir(pins); len(left) > 0 {
				t.Errorf("left in the bindings' directory: %v", left)
			}
			n.waitOnly()
		})
	}
	t.Run("interfaces with the host's network", func(t *testing.T) {
		defer e.sub(t)()
		spec := testSpec("true")
		spec.Linux.Namespaces = withoutNamespace(spec, "network")
		b.writeSpec(t, spec)
		os.WriteFile(filepath.Join(b.dir, specutils.RuntimeConfigFile), []byte(`{"interfaces":[{"name":"eth1","peer":"vh-e2"}]}`), 0o644)
		wantOneLineError(t, e.exec("", "create", "--bundle", b.dir, "rc-host"), "interfaces: the container shares the host's network namespace")
		n.waitOnly()
	})
}

// combined runs a command and returns its combined output.
func combined(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestRuntimeConfigPodMember: links a pod member's runtime config added
// leave the pod's namespace with the member; the pod stays.
func TestRuntimeConfigPodMember(t *testing.T) {
	n := newTestNet(t)
	e := n.env()
	e.must("run", "-d", "--bundle", newBundle(t, podSpec("", "sleep", "100000")).dir, "pod")
	member := podSpec("pod", "sleep", "100000")
	member.Annotations[specutils.RuntimeConfigAnnotation] = `{"interfaces":[{"name":"eth1","peer":"vh-m0"}]}`
	e.must("run", "-d", "--bundle", newBundle(t, member).dir, "member")
	podNet := fmt.Sprintf("--net=/proc/%d/ns/net", e.saved("pod").Sandbox.PID)
	if out, err := combined("nsenter", podNet, "--", "ip", "-o", "link", "show", "eth1"); err != nil {
		t.Fatalf("the pod lacks the member's eth1: %v %s", err, out)
	}
	e.must("delete", "--force", "member")
	if out, err := combined("nsenter", podNet, "--", "ip", "-o", "link", "show"); err != nil || strings.Contains(out, "eth1") {
		t.Errorf("after the member left the pod has %q (%v)", out, err)
	}
	n.waitOnly()
	e.must("delete", "--force", "pod")
}

// TestRuntimeConfigCreateKilled: runsc create killed once the runtime
// config is applied, or runsc do once its veth is made, leaves state
// that delete --force undoes: no link, binding or file stays.
func TestRuntimeConfigCreateKilled(t *testing.T) {
	n := newTestNet(t)
	e := n.env()
	pins := filepath.Join(t.TempDir(), "pins")
	spec := testSpec("sleep", "100000")
	spec.Annotations = map[string]string{specutils.RuntimeConfigAnnotation: `{"interfaces":[{"name":"eth1","peer":"vh-k0"}],"bindNS":{"net":"` + pins + `/net","uts":"` + pins + `/uts"}}`}
	b := newBundle(t, spec)
	for _, c := range []struct {
		name, step string
		args       []string
	}{
		{"create", faultpoint.CreateNetwork, []string{"create", "--bundle", b.dir, "rc-killed"}},
		{"do", faultpoint.CreateSandbox, []string{"do", "--network=veth", "--veth-host", "vh-k1", "--root-dir", busyboxRootfs(t), "--", "sleep", "100000"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer e.sub(t)()
			cli := e.stoppedAt(c.step, c.args...)
			cli.Process.Kill()
			cli.Wait()
			out := e.must("list", "--quiet")
			for _, id := range strings.Fields(out) {
				e.must("delete", "--force", id)
			}
			if left, _ := os.ReadDir(pins); len(left) > 0 {
				t.Errorf("left in the bindings' directory: %v", left)
			}
			n.waitOnly()
		})
	}
}

// TestRuntimeConfigPodDeleted: deleting a pod takes its members' links
// and namespace bindings with it (the bound namespace would otherwise
// keep the pod's links alive).
func TestRuntimeConfigPodDeleted(t *testing.T) {
	n := newTestNet(t)
	kind := plainLinkKind(t, n)
	n.must("ip", "link", "add", "given0", "type", kind)
	e := n.env()
	pins := filepath.Join(t.TempDir(), "pins")
	e.must("run", "-d", "--bundle", newBundle(t, podSpec("", "sleep", "100000")).dir, "pod")
	member := podSpec("pod", "sleep", "100000")
	member.Annotations[specutils.RuntimeConfigAnnotation] = `{"interfaces":[{"name":"eth1","peer":"vh-p0"},{"name":"given0"}],"bindNS":{"net":"` + pins + `/net"}}`
	e.must("run", "-d", "--bundle", newBundle(t, member).dir, "member")
	if _, err := os.Stat(filepath.Join(pins, "net")); err != nil {
		t.Fatal(err)
	}
	e.must("delete", "--force", "pod")
	if left, _ := os.ReadDir(pins); len(left) > 0 {
		t.Errorf("left in the bindings' directory: %v", left)
	}
	// The host's link lent to the member, virtual, went with the pod.
	n.waitOnly()
}
