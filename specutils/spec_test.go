package specutils

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// minimalSpec is the smallest spec ParseSpec accepts.
const minimalSpec = `{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["sh"], "cwd": "/"}}`

func minimal(t *testing.T) *specs.Spec {
	t.Helper()
	s, err := ParseSpec([]byte(minimalSpec))
	if err != nil {
		t.Fatalf("ParseSpec(minimal): %v", err)
	}
	return s
}

func TestParseSpecMinimal(t *testing.T) {
	s := minimal(t)
	if s.Root.Path != "rootfs" || !reflect.DeepEqual(s.Process.Args, []string{"sh"}) {
		t.Errorf("got root %q args %q", s.Root.Path, s.Process.Args)
	}
	// Unknown fields are allowed.
	if _, err := ParseSpec([]byte(`{"ociVersion": "1.9.0", "future": {"x": 1}, "root": {"path": "r", "more": true}, "process": {"args": ["a"], "cwd": "/", "new": []}}`)); err != nil {
		t.Errorf("unknown fields: %v", err)
	}
}

func TestDefaultSpecValid(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		s := DefaultSpec()
		if rootless {
			ToRootless(s)
		}
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseSpec(data)
		if err != nil {
			t.Fatalf("rootless=%v: ParseSpec(DefaultSpec()): %v", rootless, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("rootless=%v: round trip changed the spec", rootless)
		}
	}
	s := DefaultSpec()
	if s.Version != specs.Version || s.Hostname != "runsc" || !s.Process.Terminal || !s.Root.Readonly {
		t.Errorf("unexpected default spec: %+v", s)
	}
	// Each call returns a new spec.
	s.Process.Capabilities.Bounding[0] = "changed"
	if DefaultSpec().Process.Capabilities.Bounding[0] != "CAP_AUDIT_WRITE" {
		t.Errorf("DefaultSpec shares its slices")
	}
	r := DefaultSpec()
	ToRootless(r)
	var hasUser, hasNet bool
	for _, ns := range r.Linux.Namespaces {
		hasUser = hasUser || ns.Type == specs.UserNamespace
		hasNet = hasNet || ns.Type == specs.NetworkNamespace
	}
	if !hasUser || hasNet || r.Linux.Resources != nil || len(r.Linux.UIDMappings) != 1 {
		t.Errorf("ToRootless: namespaces %v, resources %v, uid mappings %v", r.Linux.Namespaces, r.Linux.Resources, r.Linux.UIDMappings)
	}
	for _, m := range r.Mounts {
		for _, o := range m.Options {
			if strings.HasPrefix(o, "gid=") {
				t.Errorf("ToRootless kept %q on %s", o, m.Destination)
			}
		}
		if m.Destination == "/sys" && !IsBindMount(m) {
			t.Errorf("ToRootless: /sys is not a bind mount: %+v", m)
		}
	}
}

func TestValidateSpecErrors(t *testing.T) {
	intp := func(i int) *int { return &i }
	tests := []struct {
		name   string
		mutate func(s *specs.Spec)
		want   string
	}{
		{"no version", func(s *specs.Spec) { s.Version = "" }, "config.json: ociVersion: must not be empty"},
		{"major 2", func(s *specs.Spec) { s.Version = "2.0.0" }, `config.json: ociVersion "2.0.0": unsupported major version`},
		{"major 10", func(s *specs.Spec) { s.Version = "10.0.0" }, `ociVersion "10.0.0"`},
		{"no root", func(s *specs.Spec) { s.Root = nil }, "config.json: root: must be set"},
		{"relative hook", func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "bin/true"}}} }, `config.json: hooks.poststop[0].path "bin/true": must be absolute`},
		{"zero hook timeout", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}, {Path: "/bin/true", Timeout: intp(0)}}}
		}, "config.json: hooks.createRuntime[1].timeout 0: must be positive"},
		{"empty root path", func(s *specs.Spec) { s.Root.Path = "" }, "config.json: root.path: must not be empty"},
		{"no process", func(s *specs.Spec) { s.Process = nil }, "config.json: process: must be set"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "config.json: process.args: must not be empty"},
		{"empty arg0", func(s *specs.Spec) { s.Process.Args = []string{""} }, "config.json: process.args[0]: must not be empty"},
		{"nul arg", func(s *specs.Spec) { s.Process.Args = []string{"a", "b\x00"} }, "config.json: process.args[1]"},
		{"no cwd", func(s *specs.Spec) { s.Process.Cwd = "" }, "config.json: process.cwd: must not be empty"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, `config.json: process.cwd "tmp": must be absolute`},
		{"env no =", func(s *specs.Spec) { s.Process.Env = []string{"A=1", "B"} }, `config.json: process.env[1] "B": must be of the form KEY=VALUE`},
		{"env empty key", func(s *specs.Spec) { s.Process.Env = []string{"=1"} }, `config.json: process.env[0] "=1"`},
		{"console without terminal", func(s *specs.Spec) { s.Process.ConsoleSize = &specs.Box{Height: 1, Width: 1} }, "config.json: process.consoleSize: only allowed when process.terminal is true"},
		{"rlimit type", func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_FOO"}} }, `config.json: process.rlimits[0].type "RLIMIT_FOO": unknown rlimit type`},
		{"rlimit soft > hard", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_CPU", Soft: 1, Hard: 1}, {Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		}, "config.json: process.rlimits[1] (RLIMIT_NOFILE): soft limit 2048 exceeds hard limit 1024"},
		{"rlimit duplicate", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_CPU"}, {Type: "RLIMIT_CPU"}}
		}, `config.json: process.rlimits[1].type "RLIMIT_CPU": duplicate`},
		{"capability", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL", "CAP_FLY"}}
		}, `config.json: process.capabilities.ambient[1] "CAP_FLY": unknown capability`},
		{"capability lowercase", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Effective: []string{"cap_kill"}}
		}, `config.json: process.capabilities.effective[0] "cap_kill": unknown capability`},
		{"oom low", func(s *specs.Spec) { s.Process.OOMScoreAdj = intp(-1001) }, "config.json: process.oomScoreAdj -1001: must be in [-1000, 1000]"},
		{"oom high", func(s *specs.Spec) { s.Process.OOMScoreAdj = intp(1001) }, "config.json: process.oomScoreAdj 1001"},
		{"hostname char", func(s *specs.Spec) { s.Hostname = "a b" }, `config.json: hostname "a b": invalid character ' '`},
		{"hostname long", func(s *specs.Spec) { s.Hostname = strings.Repeat("a", 65) }, "config.json: hostname"},
		{"mount no destination", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Type: "tmpfs"}} }, "config.json: mounts[0].destination: must not be empty"},
		{"mount relative", func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Destination: "/a", Type: "tmpfs"}, {Destination: "/b", Type: "proc"}, {Destination: "rel/path", Type: "tmpfs"}}
		}, `config.json: mounts[2].destination "rel/path": must be absolute`},
		{"mount dotdot", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/a/../b", Type: "tmpfs"}} }, `config.json: mounts[0].destination "/a/../b": must not contain ".." components`},
		{"mount root", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "//", Type: "tmpfs"}} }, `config.json: mounts[0].destination "//": must not be the root`},
		{"mount type", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/a", Type: "nfs"}} }, `config.json: mounts[0].type "nfs": unsupported mount type`},
		{"mount none not bind", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/a", Type: "none", Source: "/x"}} }, `config.json: mounts[0].type "none": unsupported mount type`},
		{"mount no type", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/a", Source: "x"}} }, "config.json: mounts[0].type: must not be empty unless the mount is a bind mount"},
		{"bind no source", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/a", Type: "bind"}} }, "config.json: mounts[0].source: must not be empty for a bind mount"},
		{"mount option", func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Destination: "/a", Type: "tmpfs", Options: []string{"nosuid", "bogus"}}}
		}, `config.json: mounts[0].options[1] "bogus": unknown mount option`},
		{"mount option comma", func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Destination: "/a", Type: "tmpfs", Options: []string{"mode=1,ro"}}}
		}, `config.json: mounts[0].options[0] "mode=1,ro"`},
		{"namespace type", func(s *specs.Spec) {
			s.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "foo"}}}
		}, `config.json: linux.namespaces[1].type "foo": unknown namespace type`},
		{"namespace duplicate", func(s *specs.Spec) {
			s.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "mount"}, {Type: "pid"}}}
		}, `config.json: linux.namespaces[2].type "pid": duplicate namespace`},
		{"namespace path", func(s *specs.Spec) {
			s.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "network", Path: "proc/1/ns/net"}}}
		}, `config.json: linux.namespaces[0].path "proc/1/ns/net": must be absolute`},
		{"masked path", func(s *specs.Spec) { s.Linux = &specs.Linux{MaskedPaths: []string{"/proc/kcore", "proc/keys"}} }, `config.json: linux.maskedPaths[1] "proc/keys": must be absolute`},
		{"readonly path", func(s *specs.Spec) { s.Linux = &specs.Linux{ReadonlyPaths: []string{"sys"}} }, `config.json: linux.readonlyPaths[0] "sys": must be absolute`},
		{"sysctl key", func(s *specs.Spec) { s.Linux = &specs.Linux{Sysctl: map[string]string{"": "1"}} }, "config.json: linux.sysctl: keys must not be empty"},
		{"hostname without uts", func(s *specs.Spec) {
			s.Hostname = "box"
			s.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}}}
		}, `config.json: hostname "box": needs a uts namespace in linux.namespaces`},
		{"sysctl of the host", func(s *specs.Spec) {
			s.Linux = &specs.Linux{Sysctl: map[string]string{"kernel.panic": "1"}}
		}, `config.json: linux.sysctl["kernel.panic"]: not a namespaced sysctl: it would change the host's`},
		{"sysctl without its namespace", func(s *specs.Spec) {
			s.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "ipc"}}, Sysctl: map[string]string{"net.ipv4.ping_group_range": "0 0"}}
		}, `config.json: linux.sysctl["net.ipv4.ping_group_range"]: the container has no network namespace of its own`},
		{"sysctl traversal", func(s *specs.Spec) {
			s.Linux = &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "network"}}, Sysctl: map[string]string{"net/../../kernel/panic": "1"}}
		}, `config.json: linux.sysctl["net/../../kernel/panic"]: not a sysctl name`},
		{"seccomp default", func(s *specs.Spec) { s.Linux = &specs.Linux{Seccomp: &specs.LinuxSeccomp{}} }, "config.json: linux.seccomp.defaultAction: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := minimal(t)
			tt.mutate(s)
			err := ValidateSpec(s)
			if err == nil {
				t.Fatalf("ValidateSpec: no error, want %q", tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("ValidateSpec: %q, want it to contain %q", msg, tt.want)
			}
			if strings.ContainsAny(msg, "\n") {
				t.Errorf("ValidateSpec: %q is not one line", msg)
			}
			// ParseSpec gives the same error.
			data, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseSpec(data); err == nil || err.Error() != msg {
				t.Errorf("ParseSpec: %v, want %q", err, msg)
			}
		})
	}
}

func TestValidateSpecAccepts(t *testing.T) {
	intp := func(i int) *int { return &i }
	s := minimal(t)
	s.Hostname = strings.Repeat("h", 64)
	s.Process.Terminal = true
	s.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
	s.Process.Env = []string{"A=", "B=c=d"}
	s.Process.OOMScoreAdj = intp(-1000)
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: Capabilities()}
	s.Mounts = []specs.Mount{
		{Destination: "/data", Type: "bind", Source: "data"},
		{Destination: "/etc/hosts", Source: "/etc/hosts", Options: []string{"rbind", "ro"}},
		{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "rprivate"}},
		{Destination: "/tmp/", Type: "tmpfs", Options: []string{"mode=1777", "tmpcopyup"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup2"},
	}
	s.Linux = &specs.Linux{
		Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network", Path: "/proc/1/ns/net"}, {Type: "user"}, {Type: "time"}, {Type: "cgroup"}, {Type: "uts"}},
		Sysctl:     map[string]string{"net.ipv4.ip_forward": "1"},
		Seccomp:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
		Resources:  &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: -5}},
	}
	if err := ValidateSpec(s); err != nil {
		t.Fatal(err)
	}
}

func TestParseSpecJSONErrors(t *testing.T) {
	tests := []struct {
		data string
		want string
	}{
		{``, "config.json: invalid JSON at offset 0: unexpected end of JSON input"},
		{`{"ociVersion": "1.0.0",`, "config.json: invalid JSON at offset 23: unexpected end of JSON input"},
		{`{"ociVersion": x}`, "config.json: invalid JSON at offset 16: invalid character 'x'"},
		{`{} {}`, "config.json: invalid JSON at offset 4: invalid character '{' after top-level value"},
		{`{"process": {"user": {"uid": "root"}}}`, "config.json: process.user.uid: cannot decode JSON string into uint32"},
		{`{"process": {"args": "sh"}}`, "config.json: process.args: cannot decode JSON string into []string"},
		{`[]`, "config.json: cannot decode JSON array into a spec"},
		{`null`, "config.json: ociVersion: must not be empty"},
	}
	for _, tt := range tests {
		_, err := ParseSpec([]byte(tt.data))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseSpec(%q): %v, want prefix %q", tt.data, err, tt.want)
		}
	}
}

// writeBundle makes a bundle holding config.json with data.
func writeBundle(t *testing.T, data string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadSpec(t *testing.T) {
	dir := writeBundle(t, `{
		"ociVersion": "1.0.0",
		"root": {"path": "rootfs"},
		"process": {"args": ["sh"], "cwd": "/"},
		"mounts": [
			{"destination": "/a", "type": "bind", "source": "data/a"},
			{"destination": "/b", "source": "/abs/b", "options": ["rbind"]},
			{"destination": "/proc", "type": "proc", "source": "proc"}
		]
	}`)
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A relative bundle path works too.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, bundle := range []string{dir, rel} {
		s, err := LoadSpec(bundle)
		if err != nil {
			t.Fatalf("LoadSpec(%q): %v", bundle, err)
		}
		if want := filepath.Join(dir, "rootfs"); s.Root.Path != want {
			t.Errorf("root.path = %q, want %q", s.Root.Path, want)
		}
		if want := filepath.Join(dir, "data/a"); s.Mounts[0].Source != want {
			t.Errorf("mounts[0].source = %q, want %q", s.Mounts[0].Source, want)
		}
		if s.Mounts[1].Source != "/abs/b" || s.Mounts[2].Source != "proc" {
			t.Errorf("sources changed: %q %q", s.Mounts[1].Source, s.Mounts[2].Source)
		}
	}

	// An absolute root is kept.
	root := t.TempDir()
	dir = writeBundle(t, `{"ociVersion": "1.0.0", "root": {"path": "`+root+`"}, "process": {"args": ["sh"], "cwd": "/"}}`)
	if s, err := LoadSpec(dir); err != nil || s.Root.Path != root {
		t.Errorf("LoadSpec absolute root: %v, %v", s, err)
	}
}

func TestLoadSpecErrors(t *testing.T) {
	_, err := LoadSpec(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing config.json: %v", err)
	}

	dir := writeBundle(t, minimalSpec)
	_, err = LoadSpec(dir)
	if err == nil || !strings.HasPrefix(err.Error(), `config.json: root.path "rootfs":`) {
		t.Errorf("missing rootfs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rootfs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSpec(dir)
	if err == nil || !strings.HasPrefix(err.Error(), `config.json: root.path "rootfs":`) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("rootfs is a file: %v", err)
	}

	dir = writeBundle(t, `{"ociVersion": "1.0.0"}`)
	if _, err = LoadSpec(dir); err == nil || err.Error() != "config.json: root: must be set" {
		t.Errorf("invalid spec: %v", err)
	}
}

func TestMountFlags(t *testing.T) {
	tests := []struct {
		opts        []string
		flags, prop uintptr
		data        []string
	}{
		{nil, 0, 0, nil},
		{[]string{"ro"}, unix.MS_RDONLY, 0, nil},
		{[]string{"ro", "rw"}, 0, 0, nil},
		{[]string{"rw", "ro"}, unix.MS_RDONLY, 0, nil},
		{[]string{"nosuid", "nodev", "noexec"}, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, 0, nil},
		{[]string{"nosuid", "suid", "nodev", "dev", "noexec", "exec"}, 0, 0, nil},
		{[]string{"sync", "dirsync"}, unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC, 0, nil},
		{[]string{"sync", "async"}, 0, 0, nil},
		{[]string{"noatime", "nodiratime"}, unix.MS_NOATIME | unix.MS_NODIRATIME, 0, nil},
		{[]string{"noatime", "atime", "nodiratime", "diratime"}, 0, 0, nil},
		{[]string{"relatime", "strictatime"}, unix.MS_RELATIME | unix.MS_STRICTATIME, 0, nil},
		{[]string{"relatime", "norelatime", "strictatime", "nostrictatime"}, 0, 0, nil},
		{[]string{"mand", "remount"}, unix.MS_MANDLOCK | unix.MS_REMOUNT, 0, nil},
		{[]string{"mand", "nomand"}, 0, 0, nil},
		{[]string{"bind"}, unix.MS_BIND, 0, nil},
		{[]string{"rbind", "ro"}, unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, 0, nil},
		{[]string{"private"}, 0, unix.MS_PRIVATE, nil},
		{[]string{"rprivate"}, 0, unix.MS_PRIVATE | unix.MS_REC, nil},
		{[]string{"slave"}, 0, unix.MS_SLAVE, nil},
		{[]string{"rslave"}, 0, unix.MS_SLAVE | unix.MS_REC, nil},
		{[]string{"shared"}, 0, unix.MS_SHARED, nil},
		{[]string{"rshared"}, 0, unix.MS_SHARED | unix.MS_REC, nil},
		{[]string{"unbindable"}, 0, unix.MS_UNBINDABLE, nil},
		{[]string{"runbindable"}, 0, unix.MS_UNBINDABLE | unix.MS_REC, nil},
		{[]string{"rshared", "private"}, 0, unix.MS_PRIVATE, nil},
		{[]string{"tmpcopyup", "idmap", "ridmap", "defaults"}, 0, 0, nil},
		{[]string{"nosuid", "strictatime", "mode=755", "size=65536k"}, unix.MS_NOSUID | unix.MS_STRICTATIME, 0, []string{"mode=755", "size=65536k"}},
		{[]string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}, unix.MS_NOSUID | unix.MS_NOEXEC, 0, []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{[]string{"x-unknown=1", "opt="}, 0, 0, []string{"x-unknown=1", "opt="}},
	}
	for _, tt := range tests {
		flags, prop, data, err := MountFlags(tt.opts)
		if err != nil || flags != tt.flags || prop != tt.prop || !reflect.DeepEqual(data, tt.data) {
			t.Errorf("MountFlags(%q) = %#x, %#x, %q, %v; want %#x, %#x, %q", tt.opts, flags, prop, data, err, tt.flags, tt.prop, tt.data)
		}
	}
	for _, bad := range [][]string{{"bogus"}, {"ro", "RO"}, {"=x"}, {"a=b,c"}, {"a=\x00"}, {""}} {
		if _, _, _, err := MountFlags(bad); err == nil {
			t.Errorf("MountFlags(%q): no error", bad)
		}
	}
	// Every listed option is known.
	for _, o := range MountOptions() {
		if _, _, _, err := MountFlags([]string{o}); err != nil {
			t.Errorf("MountOptions lists %q: %v", o, err)
		}
	}
}

func TestIsBindMount(t *testing.T) {
	tests := []struct {
		m    specs.Mount
		want bool
	}{
		{specs.Mount{Type: "bind"}, true},
		{specs.Mount{Type: "none", Options: []string{"rbind"}}, true},
		{specs.Mount{Options: []string{"ro", "bind"}}, true},
		{specs.Mount{Type: "tmpfs", Options: []string{"ro"}}, false},
		{specs.Mount{Type: "none"}, false},
	}
	for _, tt := range tests {
		if got := IsBindMount(tt.m); got != tt.want {
			t.Errorf("IsBindMount(%+v) = %v", tt.m, got)
		}
	}
}

func TestHostBind(t *testing.T) {
	admin := &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_SYS_ADMIN"}}}
	plain := &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}}
	for _, c := range []struct {
		name string
		proc *specs.Process
		m    specs.Mount
		want bool
	}{
		{"rshared bind, may mount", admin, specs.Mount{Type: "bind", Options: []string{"rbind", "rshared"}}, true},
		{"shared bind option", admin, specs.Mount{Options: []string{"bind", "shared", "rw"}}, true},
		{"last propagation wins: private", admin, specs.Mount{Type: "bind", Options: []string{"rshared", "rprivate"}}, false},
		{"last propagation wins: shared", admin, specs.Mount{Type: "bind", Options: []string{"rslave", "rshared"}}, true},
		{"rslave", admin, specs.Mount{Type: "bind", Options: []string{"rbind", "rslave"}}, false},
		{"no propagation", admin, specs.Mount{Type: "bind", Options: []string{"rbind"}}, false},
		{"cannot mount", plain, specs.Mount{Type: "bind", Options: []string{"rbind", "rshared"}}, false},
		{"no capabilities", &specs.Process{}, specs.Mount{Type: "bind", Options: []string{"rbind", "rshared"}}, false},
		{"no process", nil, specs.Mount{Type: "bind", Options: []string{"rbind", "rshared"}}, false},
		{"not a bind", admin, specs.Mount{Type: "tmpfs", Options: []string{"rshared"}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := &specs.Spec{Process: c.proc}
			if got := HostBind(spec, c.m); got != c.want {
				t.Errorf("HostBind = %v, want %v", got, c.want)
			}
			if got, want := ServedBind(spec, c.m), IsBindMount(c.m) && !c.want; got != want {
				t.Errorf("ServedBind = %v, want %v", got, want)
			}
		})
	}
}

func TestCapabilityNumber(t *testing.T) {
	for name, want := range map[string]int{
		"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_NET_BIND_SERVICE": 10, "CAP_SYS_ADMIN": 21,
		"CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31, "CAP_AUDIT_READ": 37, "CAP_CHECKPOINT_RESTORE": 40,
	} {
		if got, ok := CapabilityNumber(name); !ok || got != want {
			t.Errorf("CapabilityNumber(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
	for _, bad := range []string{"", "CAP_FLY", "cap_kill", "KILL"} {
		if _, ok := CapabilityNumber(bad); ok {
			t.Errorf("CapabilityNumber(%q) ok", bad)
		}
	}
	names := Capabilities()
	if len(names) != 41 {
		t.Errorf("%d capabilities, want 41", len(names))
	}
	for i, n := range names {
		if got, ok := CapabilityNumber(n); !ok || got != i {
			t.Errorf("CapabilityNumber(%q) = %d, %v; want %d", n, got, ok, i)
		}
	}
}

func FuzzLoadSpec(f *testing.F) {
	f.Add([]byte(minimalSpec))
	if data, err := json.Marshal(DefaultSpec()); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			if s != nil {
				t.Fatalf("ParseSpec returned a spec with error %v", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "config.json: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not one line about config.json", msg)
			}
			return
		}
		if s.Process == nil || len(s.Process.Args) == 0 {
			t.Fatalf("accepted a spec without process.args")
		}
		if s.Root == nil || s.Root.Path == "" {
			t.Fatalf("accepted a spec without root.path")
		}
		if !path.IsAbs(s.Process.Cwd) {
			t.Fatalf("accepted relative process.cwd %q", s.Process.Cwd)
		}
		for i, m := range s.Mounts {
			if !path.IsAbs(m.Destination) {
				t.Fatalf("accepted relative mounts[%d].destination %q", i, m.Destination)
			}
			if _, _, _, err := MountFlags(m.Options); err != nil {
				t.Fatalf("accepted mounts[%d].options: %v", i, err)
			}
		}
		// A valid spec stays valid through a round trip.
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSpec(out); err != nil {
			t.Fatalf("re-encoded spec rejected: %v", err)
		}
	})
}

func TestParseProcess(t *testing.T) {
	p, err := ParseProcess([]byte(`{"args":["sh","-c","true"],"cwd":"/","env":["A=b"],"user":{"uid":1000}}`))
	if err != nil || p.Args[0] != "sh" || p.User.UID != 1000 {
		t.Fatalf("ParseProcess = %+v, %v", p, err)
	}
	for _, c := range []struct{ in, want string }{
		{`{"args":["x"],"cwd":"/"`, "process.json: invalid JSON"},
		{`[]`, "process.json: cannot decode JSON array into a process"},
		{`{"args":"x","cwd":"/"}`, "process.json: args: cannot decode JSON string"},
		{`{"cwd":"/"}`, "process.json: process.args: must not be empty"},
		{`{"args":["a\u0000b"],"cwd":"/"}`, "process.json: process.args[0]"},
		{`{"args":["x"],"cwd":"rel"}`, "process.json: process.cwd \"rel\": must be absolute"},
		{`{"args":["x"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":2,"hard":1}]}`, "process.json: process.rlimits[0]"},
		{`{"args":["x"],"cwd":"/","capabilities":{"bounding":["CAP_NOPE"]}}`, "process.json: process.capabilities.bounding[0] \"CAP_NOPE\": unknown capability"},
	} {
		t.Run(c.in, func(t *testing.T) {
			p, err := ParseProcess([]byte(c.in))
			if err == nil || p != nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("ParseProcess = %v, %v; want error %q...", p, err, c.want)
			}
		})
	}
}

func FuzzParseProcess(f *testing.F) {
	f.Add([]byte(`{"args":["sh"],"cwd":"/","env":["PATH=/bin"],"capabilities":{"bounding":["CAP_KILL"]},"rlimits":[{"type":"RLIMIT_NOFILE","soft":1,"hard":2}]}`))
	f.Add([]byte(`{"terminal":true,"consoleSize":{"height":1,"width":2},"args":["x"],"cwd":"/"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProcess(data)
		if err != nil {
			if p != nil {
				t.Fatalf("ParseProcess returned a process with error %v", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "process.json: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not one line about process.json", msg)
			}
			return
		}
		if len(p.Args) == 0 || p.Args[0] == "" || !path.IsAbs(p.Cwd) {
			t.Fatalf("accepted %+v", p)
		}
		for _, rl := range p.Rlimits {
			if rl.Soft > rl.Hard {
				t.Fatalf("accepted rlimit %+v", rl)
			}
		}
	})
}

func TestBindPropagates(t *testing.T) {
	for opts, want := range map[string]bool{
		"rbind": false, "rbind,rprivate": false, "rbind,rslave": true, "bind,slave": true,
		"rbind,rshared": true, "rbind,shared": true, "rbind,rshared,rprivate": false, "rbind,runbindable": false,
	} {
		if got := BindPropagates(specs.Mount{Type: "bind", Options: strings.Split(opts, ",")}); got != want {
			t.Errorf("BindPropagates(%s) = %v, want %v", opts, got, want)
		}
	}
}
