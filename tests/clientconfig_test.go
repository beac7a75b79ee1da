package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// clientConfigs are the configs real clients sent to a runtime, captured
// byte for byte (specutils/testdata/clients/README.md says how).
const clientConfigs = "../specutils/testdata/clients"

// adaptClientSpec makes a captured config runnable here, changing only
// what names the capture machine: the root becomes a copy of the busybox
// root, bind sources that do not exist here are made in the bundle
// (files or directories, as the destination suggests), and namespace
// paths, which named processes of the capture, are dropped. Everything
// else (capabilities, seccomp profile, rlimits, mounts and their options,
// sysctls, masked and read-only paths) is kept. The process runs args,
// without a terminal.
func adaptClientSpec(t *testing.T, spec *specs.Spec, dir string, args ...string) {
	t.Helper()
	spec.Root.Path = "rootfs"
	spec.Process.Args = args
	spec.Process.Terminal = false
	spec.Process.ConsoleSize = nil
	for i, m := range spec.Mounts {
		bind := m.Type == "bind"
		for _, o := range m.Options {
			bind = bind || o == "bind" || o == "rbind"
		}
		if !bind {
			continue
		}
		if _, err := os.Stat(m.Source); err == nil {
			continue
		}
		src := filepath.Join(dir, "binds", strings.ReplaceAll(strings.Trim(m.Destination, "/"), "/", "_"))
		file := filepath.Ext(m.Destination) != "" || strings.HasPrefix(m.Destination, "/etc/")
		var err error
		if file {
			if err = os.MkdirAll(filepath.Dir(src), 0o755); err == nil {
				err = os.WriteFile(src, []byte("from the test\n"), 0o644)
			}
		} else {
			err = os.MkdirAll(src, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		spec.Mounts[i].Source = src
	}
	if spec.Linux != nil {
		for i := range spec.Linux.Namespaces {
			spec.Linux.Namespaces[i].Path = ""
		}
	}
}

// loadClientSpec reads a captured config.
func loadClientSpec(t *testing.T, name string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(clientConfigs, name))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &spec
}

// TestClientConfigs runs the configs runc spec, podman and containerd
// really write: every one must start its process (runc accepts them all).
func TestClientConfigs(t *testing.T) {
	e := newEnv(t)
	names, err := filepath.Glob(filepath.Join(clientConfigs, "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no captured configs in %s: %v", clientConfigs, err)
	}
	ran := 0
	for _, path := range names {
		name := filepath.Base(path)
		if strings.Contains(name, "-process") || name == "podman-pod-member.json" {
			continue
		}
		ran++
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			spec := loadClientSpec(t, name)
			b := newBundle(t, testSpec("true"))
			adaptClientSpec(t, spec, b.dir, "sh", "-c", "echo client-config-ok; id -u")
			b.writeSpec(t, spec)
			r := e.exec("", "run", "--bundle", b.dir, "cc-"+strings.TrimSuffix(name, ".json"))
			if r.code != 0 || !strings.HasPrefix(r.stdout, "client-config-ok\n") {
				t.Fatalf("run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if want := spec.Process.User.UID; strings.TrimSpace(strings.TrimPrefix(r.stdout, "client-config-ok\n")) != strconv.Itoa(int(want)) {
				t.Fatalf("process runs as uid %q, want %d", r.stdout, want)
			}
			t.Logf("%s: started, ran as uid %d, exit 0", name, spec.Process.User.UID)
		})
	}
	if ran < 5 {
		t.Fatalf("only %d configs found", ran)
	}
}

// TestClientExecProcesses runs the process files podman and containerd
// pass to `exec --process` in a container made from the same client's
// config.
func TestClientExecProcesses(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ run, process string }{
		{"podman-run-detached.json", "podman-exec-process.json"},
		{"podman-run-detached.json", "podman-exec-tty-process.json"},
		{"containerd-run.json", "containerd-exec-process.json"},
		{"containerd-run.json", "containerd-exec-tty-process.json"},
	} {
		t.Run(strings.TrimSuffix(c.process, ".json"), func(t *testing.T) {
			spec := loadClientSpec(t, c.run)
			b := newBundle(t, testSpec("true"))
			adaptClientSpec(t, spec, b.dir, "sleep", "1000")
			b.writeSpec(t, spec)
			id := "ce-" + strings.TrimSuffix(c.process, ".json")
			e.must("run", "-d", "--bundle", b.dir, id)
			defer e.run("delete", "--force", id)
			data, err := os.ReadFile(filepath.Join(clientConfigs, c.process))
			if err != nil {
				t.Fatal(err)
			}
			proc := &specs.Process{}
			if err := json.Unmarshal(data, proc); err != nil {
				t.Fatalf("%s: %v", c.process, err)
			}
			proc.Args = []string{"sh", "-c", "echo exec-ok"}
			proc.Terminal = false
			proc.ConsoleSize = nil
			data, _ = json.Marshal(proc)
			pf := filepath.Join(b.dir, "process.json")
			if err := os.WriteFile(pf, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out := e.must("exec", "--process", pf, id); out != "exec-ok\n" {
				t.Fatalf("exec printed %q", out)
			}
		})
	}
}

// TestClientPodConfigs runs podman's pod configs: the infra container,
// then a member, which joins the infra's sandbox, named either by the
// CRI-O annotations podman adds or only by its namespace paths
// (/proc/<infra pid>/ns/{net,ipc,uts}).
func TestClientPodConfigs(t *testing.T) {
	for _, byPath := range []bool{false, true} {
		name := "annotations"
		if byPath {
			name = "namespace paths"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			member := loadClientSpec(t, "podman-pod-member.json")
			infraID := member.Annotations["io.kubernetes.cri-o.SandboxID"]
			if infraID == "" {
				t.Fatal("the captured member has no io.kubernetes.cri-o.SandboxID")
			}
			infra := loadClientSpec(t, "podman-pod-infra.json")
			ib := newBundle(t, testSpec("true"))
			adaptClientSpec(t, infra, ib.dir, "sleep", "1000")
			ib.writeSpec(t, infra)
			e.must("run", "-d", "--bundle", ib.dir, infraID)
			pod := e.saved(infraID)
			var paths []specs.LinuxNamespace
			for _, ns := range member.Linux.Namespaces {
				if ns.Path != "" {
					paths = append(paths, ns)
				}
			}
			mb := newBundle(t, testSpec("true"))
			adaptClientSpec(t, member, mb.dir, "sh", "-c", "hostname")
			if byPath {
				delete(member.Annotations, "io.kubernetes.cri-o.SandboxID")
				delete(member.Annotations, "io.kubernetes.cri-o.ContainerType")
				for i, ns := range member.Linux.Namespaces {
					for _, p := range paths {
						if p.Type == ns.Type {
							member.Linux.Namespaces[i].Path = "/proc/" + strconv.Itoa(pod.InitPID) + "/ns/" + filepath.Base(p.Path)
						}
					}
				}
			}
			mb.writeSpec(t, member)
			e.must("create", "--bundle", mb.dir, "member")
			if got := e.saved("member").Sandbox.PID; got != pod.Sandbox.PID {
				t.Fatalf("the member runs in sandbox %d, not the infra's %d", got, pod.Sandbox.PID)
			}
			e.must("start", "member")
			e.must("delete", "--force", "member")
			e.must("delete", "--force", infraID)
		})
	}
}
