package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostIDs returns the real, effective, saved and filesystem uids (or
// gids, with key "Gid") of pid as the host sees them.
func hostIDs(t *testing.T, pid int, key string) []int {
	t.Helper()
	var ids []int
	for _, f := range strings.Fields(procStatus(t, pid)[key]) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("/proc/%d/status %s: %q", pid, key, f)
		}
		ids = append(ids, n)
	}
	if len(ids) != 4 {
		t.Fatalf("/proc/%d/status %s: %v", pid, key, ids)
	}
	return ids
}

// uidMap returns the first line of pid's uid_map, as fields.
func uidMap(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
}

// TestPodUserNamespace checks the default: a pod's sandbox and
// containers share a user namespace that maps the container's ids to an
// unprivileged host range, file owners mean the same inside and on the
// host, and breaking out (setuid binaries, capabilities) gains nothing
// on the host.
func TestPodUserNamespace(t *testing.T) {
	e := newEnv(t, "--overlay2=none")
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "owned"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(vol, "owned"), 1234, 2345); err != nil {
		t.Fatal(err)
	}
	spec := podSpec("", "sleep", "1000")
	for _, set := range []*[]string{&spec.Process.Capabilities.Bounding, &spec.Process.Capabilities.Effective, &spec.Process.Capabilities.Permitted} {
		*set = append(*set, "CAP_CHOWN")
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "userns")
	s := e.saved("userns")
	m := uidMap(t, s.InitPID)
	if len(m) != 3 || m[0] != "0" || m[2] != "65536" {
		t.Fatalf("container uid_map %v, want 0 BASE 65536", m)
	}
	base, _ := strconv.Atoi(m[1])
	if base == 0 {
		t.Fatalf("container root is host root: uid_map %v", m)
	}

	t.Run("container root is an unprivileged host uid", func(t *testing.T) {
		defer e.sub(t)()
		for _, pid := range []int{s.InitPID, s.Sandbox.PID} {
			for _, key := range []string{"Uid", "Gid"} {
				for _, id := range hostIDs(t, pid, key) {
					if id != base {
						t.Fatalf("process %d: host %s %v, want all %d", pid, key, hostIDs(t, pid, key), base)
					}
				}
			}
		}
		if got := uidMap(t, s.Sandbox.PID); strings.Join(got, " ") != strings.Join(m, " ") {
			t.Fatalf("sandbox uid_map %v, container's %v: not the pod's one namespace", got, m)
		}
		if out := e.must("exec", "userns", "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(out), " ") != strings.Join(m, " ") {
			t.Fatalf("/proc/self/uid_map inside: %q, want %v", out, m)
		}
		if out := e.must("exec", "userns", "id", "-u"); out != "0\n" {
			t.Fatalf("id -u inside: %q", out)
		}
	})

	t.Run("file owners are the same inside and on the host", func(t *testing.T) {
		defer e.sub(t)()
		out := e.must("exec", "userns", "sh", "-c", "stat -c %u:%g /vol/owned /etc/passwd; echo made > /vol/new; mkdir /made-in-root; chown 42:43 /vol/new")
		if out != "1234:2345\n0:0\n" {
			t.Fatalf("owners inside: %q, want 1234:2345 and 0:0 as on the host", out)
		}
		for path, want := range map[string][2]uint32{filepath.Join(vol, "new"): {42, 43}, filepath.Join(b.rootfs, "made-in-root"): {0, 0}} {
			var st unix.Stat_t
			if err := unix.Lstat(path, &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid != want[0] || st.Gid != want[1] {
				t.Fatalf("%s on the host owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, want[0], want[1])
			}
		}
	})

	t.Run("a setuid binary gains nothing on the host", func(t *testing.T) {
		defer e.sub(t)()
		spec := podSpec("userns", "/suid/busybox", "sleep", "1000")
		spec.Process.User = specs.User{UID: 1000, GID: 1000}
		spec.Process.NoNewPrivileges = false
		b2 := newBundle(t, spec)
		// A setuid-root binary in the image.
		if err := os.Mkdir(filepath.Join(b2.rootfs, "suid"), 0o755); err != nil {
			t.Fatal(err)
		}
		suid := filepath.Join(b2.rootfs, "suid", "busybox")
		if out, err := exec.Command("cp", filepath.Join(b2.rootfs, "bin", "busybox"), suid).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if err := os.Chown(suid, 0, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(suid, 0o4755); err != nil {
			t.Fatal(err)
		}
		e.must("run", "-d", "--bundle", b2.dir, "setuid")
		pid := e.saved("setuid").InitPID
		ids := hostIDs(t, pid, "Uid")
		for _, id := range ids {
			if id < base {
				t.Fatalf("setuid process %d: host uids %v, want none below the pod's base %d", pid, ids, base)
			}
		}
		t.Logf("setuid-root binary run by uid 1000: host uids %v (the pod's root is %d)", ids, base)
		e.must("delete", "--force", "setuid")
	})

	t.Run("an init is out of the pod's reach before it execs", func(t *testing.T) {
		defer e.sub(t)()
		b2 := newBundle(t, podSpec("userns", "true"))
		e.must("create", "--bundle", b2.dir, "waiting")
		pid := e.saved("waiting").InitPID
		// Started from an execute-only copy of runsc, the init
		// belongs to the host's user namespace: its /proc files are
		// the host root's, not the pod root's, so no process of the
		// pod (whatever its capabilities there) may ptrace it or
		// open them.
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/environ", pid), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 {
			t.Fatalf("/proc/%d/environ of the waiting init owned by %d, want 0 (not the pod's root %d)", pid, st.Uid, base)
		}
		e.must("delete", "--force", "waiting")
	})

	t.Run("capabilities stop at the pod", func(t *testing.T) {
		defer e.sub(t)()
		// Setting the clock to its own second is harmless should it
		// work; with CAP_SYS_TIME in the pod only, it must not
		// (busybox's date then says so, and exits 0).
		spec := podSpec("userns", "sh", "-c", "mkdir -p /m && mount -t tmpfs none /m && echo mounted; date -s @$(date +%s) 2>&1 | grep -q 'not permitted' && echo clock-denied")
		for _, set := range []*[]string{&spec.Process.Capabilities.Bounding, &spec.Process.Capabilities.Effective, &spec.Process.Capabilities.Permitted} {
			*set = append(*set, "CAP_SYS_ADMIN", "CAP_SYS_TIME")
		}
		spec.Linux.ReadonlyPaths = nil
		b2 := newBundle(t, spec)
		r := e.exec("", "run", "--bundle", b2.dir, "admin")
		if r.code != 0 || r.stdout != "mounted\nclock-denied\n" {
			t.Fatalf("exit %d: %q %q: want CAP_SYS_ADMIN to mount a tmpfs in the pod and CAP_SYS_TIME not to set the host's clock", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("a member joins the pod's user namespace only", func(t *testing.T) {
		defer e.sub(t)()
		userNS := specs.LinuxNamespace{Type: specs.UserNamespace}
		for name, c := range map[string]struct {
			path     string
			mappings []specs.LinuxIDMapping
			ok       bool
		}{
			"by the sandbox's path":    {path: fmt.Sprintf("/proc/%d/ns/user", s.Sandbox.PID), ok: true},
			"by the pod's mappings":    {mappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(base), Size: 65536}}, ok: true},
			"by another path":          {path: "/proc/self/ns/user"},
			"with mappings of its own": {mappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 3000000, Size: 65536}}},
		} {
			spec := podSpec("userns", "cat", "/proc/self/uid_map")
			ns := userNS
			ns.Path = c.path
			spec.Linux.Namespaces = append(spec.Linux.Namespaces, ns)
			spec.Linux.UIDMappings, spec.Linux.GIDMappings = c.mappings, c.mappings
			b2 := newBundle(t, spec)
			r := e.exec("", "run", "--bundle", b2.dir, "member")
			if c.ok && (r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != strings.Join(m, " ")) {
				t.Fatalf("%s: exit %d, %q %q; want the pod's uid_map %v", name, r.code, r.stdout, r.stderr, m)
			}
			if !c.ok && (r.code == 0 || !strings.Contains(r.stderr, "config.json: linux.")) {
				t.Fatalf("%s: exit %d, %q: want refused, naming the field", name, r.code, r.stderr)
			}
			e.run("delete", "--force", "member")
		}
	})

	t.Run("pods get disjoint ranges, freed when they go", func(t *testing.T) {
		defer e.sub(t)()
		b3 := newBundle(t, podSpec("", "sleep", "1000"))
		e.must("run", "-d", "--bundle", b3.dir, "other")
		m2 := uidMap(t, e.saved("other").InitPID)
		base2, _ := strconv.Atoi(m2[1])
		if base2 < base+65536 && base < base2+65536 {
			t.Fatalf("two pods' ranges overlap: %v and %v", m, m2)
		}
		e.must("delete", "--force", "other")
		e.must("run", "-d", "--bundle", b3.dir, "again")
		if m3 := uidMap(t, e.saved("again").InitPID); m3[1] != m2[1] {
			t.Logf("range of a deleted pod not reused at once: %v then %v", m2, m3)
		}
		e.must("delete", "--force", "again")
	})
}

// TestUserNamespaceChoices checks --userns=host (the old, weaker mode),
// a spec's own user namespace and mappings, and the refusals.
func TestUserNamespaceChoices(t *testing.T) {
	t.Run("--userns=host keeps host root", func(t *testing.T) {
		e := newEnv(t, "--userns=host")
		b := newBundle(t, testSpec("sleep", "1000"))
		e.must("run", "-d", "--bundle", b.dir, "hostns")
		if ids := hostIDs(t, e.saved("hostns").InitPID, "Uid"); ids[0] != 0 {
			t.Fatalf("--userns=host: container root is host uid %v", ids)
		}
	})
	t.Run("the spec's mappings are used as given", func(t *testing.T) {
		e := newEnv(t)
		spec := testSpec("sleep", "1000")
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 3000000, Size: 65536}}
		spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 3100000, Size: 65536}}
		b := newBundle(t, spec)
		e.must("run", "-d", "--bundle", b.dir, "mapped")
		pid := e.saved("mapped").InitPID
		if got := strings.Join(uidMap(t, pid), " "); got != "0 3000000 65536" {
			t.Fatalf("uid_map %q, want the spec's", got)
		}
		if ids := hostIDs(t, pid, "Gid"); ids[0] != 3100000 {
			t.Fatalf("host gids %v, want the spec's 3100000", ids)
		}
	})
	t.Run("a bind mount's own mappings", func(t *testing.T) {
		e := newEnv(t)
		vol := t.TempDir()
		if err := os.WriteFile(filepath.Join(vol, "f"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{vol, filepath.Join(vol, "f")} {
			if err := os.Chown(p, 1234, 1234); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(vol, 0o777); err != nil {
			t.Fatal(err)
		}
		// Root (3000000 to the kernel) is outside the bind's
		// mapping: its file would have no owner on disk.
		spec := testSpec("sh", "-c", "stat -c %u:%g /vol/f /plain/f; touch /vol/by-root 2>&1 | grep -c 'too large'")
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 3000000, Size: 65536}}
		spec.Linux.GIDMappings = spec.Linux.UIDMappings
		// On-disk 1234..1235 are 3005000..3005001 to the kernel: 5000
		// and 5001 in the container.
		idmap := []specs.LinuxIDMapping{{ContainerID: 1234, HostID: 3005000, Size: 2}}
		spec.Mounts = append(spec.Mounts,
			specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "idmap"}, UIDMappings: idmap, GIDMappings: idmap},
			specs.Mount{Destination: "/plain", Type: "bind", Source: vol, Options: []string{"rbind"}})
		b := newBundle(t, spec)
		if out := e.must("run", "--bundle", b.dir, "idmapped"); out != "5000:5000\n1234:1234\n1\n" {
			t.Fatalf("owners inside: %q, want 5000:5000 through the idmapped bind, 1234:1234 through the plain one, EOVERFLOW for root's new file", out)
		}
		spec.Process.User = specs.User{UID: 5001, GID: 5001}
		spec.Process.Args = []string{"touch", "/vol/new"}
		b.writeSpec(t, spec)
		e.must("run", "--bundle", b.dir, "idmapped-user")
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(vol, "new"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 1235 || st.Gid != 1235 {
			t.Fatalf("file made by uid 5001 through the idmapped bind: on the host %d:%d, want 1235:1235", st.Uid, st.Gid)
		}
	})
	for name, edit := range map[string]func(*specs.Spec){
		"mappings on a tmpfs are refused": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"idmap"}})
		},
		"a bind's uidMappings without gidMappings are refused": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/t", Type: "bind", Source: "/tmp", Options: []string{"rbind"},
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: 1}}})
		},
		"a user namespace path is refused": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
		},
		"a user namespace without mappings is refused": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		},
		"mappings without id 0 are refused": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 1, HostID: 3000000, Size: 10}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 1, HostID: 3000000, Size: 10}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			spec := testSpec("true")
			edit(spec)
			b := newBundle(t, spec)
			wantOneLineError(t, e.exec("", "create", "--bundle", b.dir, "refused"), "config.json: ")
			if out, _ := e.run("list", "--quiet"); strings.TrimSpace(out) != "" {
				t.Fatalf("left behind: %q", out)
			}
		})
	}
}
