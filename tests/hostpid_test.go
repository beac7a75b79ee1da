package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/procfs"
)

// TestHostPIDNamespace runs containers whose spec lists no pid namespace
// (podman's --pid=host), with the pod's user namespace and with the
// host's: the container's processes are in the host's pid namespace (the
// state's pid is the pid the process has for itself, its /proc is the
// host's), exec joins it, and deleting the container kills what its init
// left behind, since nothing dies with the sandbox there. So does a pid
// namespace the spec names by path. A pod member
// that shares the host's pid namespace while its pod has one of its own
// is refused.
func TestHostPIDNamespace(t *testing.T) {
	hostNS, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	for _, userns := range []string{"pod", "host"} {
		t.Run("userns="+userns, func(t *testing.T) {
			e := newEnv(t, "--userns="+userns)
			spec := testSpec("sh", "-c", "sleep 100001 & exec sleep 100000")
			spec.Linux.Namespaces = withoutNamespace(spec, specs.PIDNamespace)
			b := newBundle(t, spec)
			e.must("run", "-d", "--bundle", b.dir, "hostpid")
			pid := e.state("hostpid").Pid
			out := e.must("exec", "hostpid", "sh", "-c", fmt.Sprintf("readlink /proc/self/ns/pid; cat /proc/%d/comm; echo $$", pid))
			lines := strings.Fields(out)
			if len(lines) != 3 || lines[0] != hostNS || lines[1] != "sleep" {
				t.Fatalf("exec in a host-pid container printed %q: want the host's pid namespace %s and the init (pid %d) seen as sleep", out, hostNS, pid)
			}
			execPID, _ := strconv.Atoi(lines[2])
			if execPID <= 0 || execPID == pid {
				t.Fatalf("exec'd process reports pid %q", lines[2])
			}
			pids := e.psPIDs("hostpid")
			var child int
			for _, p := range pids {
				if st, err := procfs.ReadStat("/proc", p); err == nil && st.PPID == pid {
					child = p
				}
			}
			if child == 0 {
				t.Fatalf("ps %v: no child of the init %d", pids, pid)
			}
			e.must("kill", "hostpid", "KILL")
			waitGone(t, pid)
			if !alive(child) {
				t.Fatalf("the init's child %d died with the init: want it alive until delete (shared pid namespace)", child)
			}
			e.must("delete", "--force", "hostpid")
			waitGone(t, child)
		})
	}
	t.Run("by path", func(t *testing.T) {
		// A process that is pid 1 of a pid namespace of its own.
		holder := exec.Command("sleep", "100000")
		holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { holder.Process.Kill(); holder.Wait() }()
		path := fmt.Sprintf("/proc/%d/ns/pid", holder.Process.Pid)
		want, _ := os.Readlink(path)
		for _, userns := range []string{"pod", "host"} {
			e := newEnv(t, "--userns="+userns)
			spec := testSpec("sh", "-c", "readlink /proc/self/ns/pid; cat /proc/1/comm")
			spec.Linux.Namespaces = append(withoutNamespace(spec, specs.PIDNamespace), specs.LinuxNamespace{Type: specs.PIDNamespace, Path: path})
			out := e.must("run", "--bundle", newBundle(t, spec).dir, "bypath")
			if f := strings.Fields(out); len(f) != 2 || f[0] != want || f[1] != "sleep" {
				t.Fatalf("--userns=%s: container in pid namespace %s printed %q: want that namespace, whose pid 1 is sleep", userns, path, out)
			}
		}
	})
	t.Run("member of a pod with its own", func(t *testing.T) {
		e := newEnv(t)
		startPod(t, e)
		spec := podSpec("pod", "true")
		spec.Linux.Namespaces = withoutNamespace(spec, specs.PIDNamespace)
		b := newBundle(t, spec)
		wantOneLineError(t, e.exec("", "create", "--bundle", b.dir, "member"), "shares the host's pid namespace, but its pod has a pid namespace of its own")
		if _, err := os.Stat(e.root + "/member"); !os.IsNotExist(err) {
			t.Fatalf("refused member left state: %v", err)
		}
	})
	t.Run("pod in the host's", func(t *testing.T) {
		e := newEnv(t)
		spec := podSpec("", "sleep", "100000")
		spec.Linux.Namespaces = withoutNamespace(spec, specs.PIDNamespace)
		e.must("run", "-d", "--bundle", newBundle(t, spec).dir, "pod")
		for _, c := range []struct {
			id     string
			own    bool
			wantNS func(string) bool
		}{
			{"shared", false, func(ns string) bool { return ns == hostNS }},
			{"own", true, func(ns string) bool { return ns != hostNS && strings.HasPrefix(ns, "pid:") }},
		} {
			spec := podSpec("pod", "readlink", "/proc/self/ns/pid")
			if !c.own {
				spec.Linux.Namespaces = withoutNamespace(spec, specs.PIDNamespace)
			}
			out := strings.TrimSpace(e.must("run", "--bundle", newBundle(t, spec).dir, c.id))
			if !c.wantNS(out) {
				t.Fatalf("member %s (own pid namespace: %v) is in %q (host's %s)", c.id, c.own, out, hostNS)
			}
		}
	})
}
