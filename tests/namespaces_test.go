package tests

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withoutNamespace returns spec's namespaces without type typ.
func withoutNamespace(spec *specs.Spec, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	return out
}

// TestNamespaceRules checks the namespaces a sandboxed container cannot
// have (refused, one line naming the field, nothing left), a new cgroup
// namespace, and a uts namespace joined by path, named by the spec.
func TestNamespaceRules(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name   string
		mutate func(s *specs.Spec)
		want   string
	}{
		{"no mount namespace", func(s *specs.Spec) { s.Linux.Namespaces = withoutNamespace(s, specs.MountNamespace) }, "a mount namespace is required"},
		{"mount namespace by path", func(s *specs.Spec) {
			s.Linux.Namespaces = append(withoutNamespace(s, specs.MountNamespace), specs.LinuxNamespace{Type: specs.MountNamespace, Path: "/proc/self/ns/mnt"})
		}, `linux.namespaces mount path "/proc/self/ns/mnt": a sandboxed container cannot join another mount namespace`},
		{"uts path of another type", func(s *specs.Spec) {
			s.Linux.Namespaces = append(withoutNamespace(s, specs.UTSNamespace), specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/proc/self/ns/net"})
		}, `linux.namespaces uts path "/proc/self/ns/net": not a uts namespace`},
		{"cgroup path of another type", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace, Path: "/proc/self/ns/ipc"})
		}, `linux.namespaces cgroup path "/proc/self/ns/ipc": not a cgroup namespace`},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer e.sub(t)()
			spec := testSpec("true")
			c.mutate(spec)
			b := newBundle(t, spec)
			wantOneLineError(t, e.exec("", "create", "--bundle", b.dir, "refused"), c.want)
			if out := e.must("list", "-q"); strings.TrimSpace(out) != "" {
				t.Fatalf("left %q", out)
			}
		})
	}
	t.Run("new cgroup namespace", func(t *testing.T) {
		defer e.sub(t)()
		spec := testSpec("sh", "-c", "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup")
		spec.Linux.CgroupsPath = "/runsc-test/cgroupns"
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		b := newBundle(t, spec)
		out := e.must("run", "--bundle", b.dir, "cgroupns")
		host, _ := os.Readlink("/proc/self/ns/cgroup")
		if strings.Contains(out, host) || strings.Contains(out, "runsc-test") || !strings.Contains(out, ":/\n") {
			t.Fatalf("container's cgroup view %q (host's namespace %s): want its own, rooted at its cgroup", out, host)
		}
	})
	t.Run("uts namespace by path", func(t *testing.T) {
		defer e.sub(t)()
		holder := exec.Command("unshare", "--uts", "sleep", "1000")
		if err := holder.Start(); err != nil {
			t.Skipf("unshare: %v", err)
		}
		defer func() { holder.Process.Kill(); holder.Wait() }()
		path := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/uts"
		host, _ := os.Readlink("/proc/self/ns/uts")
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if ns, _ := os.Readlink(path); ns != host || time.Now().After(deadline) {
				break
			}
		}
		spec := testSpec("hostname")
		spec.Hostname = "joined-uts"
		spec.Linux.Namespaces = append(withoutNamespace(spec, specs.UTSNamespace), specs.LinuxNamespace{Type: specs.UTSNamespace, Path: path})
		b := newBundle(t, spec)
		if out := e.must("run", "--bundle", b.dir, "utsjoin"); strings.TrimSpace(out) != "joined-uts" {
			t.Fatalf("container's hostname %q", out)
		}
		out, err := exec.Command("nsenter", "--uts="+path, "hostname").Output()
		if err != nil || strings.TrimSpace(string(out)) != "joined-uts" {
			t.Fatalf("hostname in the joined namespace %q (%v)", out, err)
		}
	})
}

// TestUmask checks process.user.umask, and runc's 0022 without one.
func TestUmask(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		umask *uint32
		want  string
	}{{nil, "644"}, {func() *uint32 { u := uint32(0o077); return &u }(), "600"}} {
		spec := testSpec("sh", "-c", "touch /tmp/f && stat -c %a /tmp/f")
		spec.Process.User.Umask = c.umask
		b := newBundle(t, spec)
		if out := strings.TrimSpace(e.must("run", "--bundle", b.dir, "umask")); out != c.want {
			t.Errorf("umask %v: new file mode %s, want %s", c.umask, out, c.want)
		}
	}
}
