package tests

import (
	"fmt"
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

// userNSHolder starts a process in a new user namespace with uid and
// gid mapping line mapping (written by this process, as root) and
// returns the path of its namespace.
func userNSHolder(t *testing.T, mapping string) string {
	t.Helper()
	holder := exec.Command("unshare", "--user", "sleep", "100000")
	if err := holder.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	dir := "/proc/" + strconv.Itoa(holder.Process.Pid)
	host, _ := os.Readlink("/proc/self/ns/user")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ns, _ := os.Readlink(dir + "/ns/user"); ns != host || time.Now().After(deadline) {
			break
		}
	}
	for _, f := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile(dir+"/"+f, []byte(mapping), 0); err != nil {
			t.Fatalf("mapping the holder's user namespace: %v", err)
		}
	}
	return dir + "/ns/user"
}

// TestUserNamespaceByPath starts a sandbox in a user namespace the spec
// names by path (podman's --userns=ns:PATH): the container runs as its
// root, with its mappings, and a pod member naming it joins the pod; one
// that does not map root is refused with nothing left.
func TestUserNamespaceByPath(t *testing.T) {
	e := newEnv(t)
	path := userNSHolder(t, "0 3100000 65536")
	want, _ := os.Readlink(path)
	withUser := func(s *specs.Spec, path string) {
		s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
		s.Linux.Namespaces = append(withoutNamespace(s, specs.UserNamespace), specs.LinuxNamespace{Type: specs.UserNamespace, Path: path})
	}
	spec := podSpec("", "sleep", "100000")
	withUser(spec, path)
	e.must("run", "-d", "--bundle", newBundle(t, spec).dir, "pod")
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.state("pod").Pid)); err != nil || !strings.Contains(string(st), "Uid:\t3100000\t3100000\t3100000") {
		t.Fatalf("the container's init on the host: %v\n%s", err, st)
	}
	member := podSpec("pod", "sh", "-c", "id -u; readlink /proc/self/ns/user; cat /proc/self/uid_map")
	withUser(member, path)
	out := e.must("run", "--bundle", newBundle(t, member).dir, "member")
	if f := strings.Fields(out); len(f) != 5 || f[0] != "0" || f[1] != want || strings.Join(f[2:], " ") != "0 3100000 65536" {
		t.Fatalf("member printed %q: want root in %s mapped 0 3100000 65536", out, want)
	}
	t.Run("root not mapped", func(t *testing.T) {
		defer e.sub(t)()
		spec := testSpec("true")
		withUser(spec, userNSHolder(t, "1000 3200000 1"))
		wantOneLineError(t, e.exec("", "create", "--bundle", newBundle(t, spec).dir, "unmapped"), "it must map uid and gid 0")
		if _, err := os.Stat(e.root + "/unmapped"); !os.IsNotExist(err) {
			t.Fatalf("refused container left state: %v", err)
		}
	})
}
