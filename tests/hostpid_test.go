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
// (podman's --pid=host): the container's processes are in the host's pid
// namespace (the state's pid is the pid the process has for itself, its
// /proc is the host's), exec joins it, and kill --all reaches what its
// init left behind, since nothing dies with the sandbox there. With
// --userns=host it is refused: the sandbox would be host root among the
// host's processes. So does a pid
// namespace the spec names by path. A pod member
// that shares the host's pid namespace while its pod has one of its own
// is refused.
func TestHostPIDNamespace(t *testing.T) {
	hostNS, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("userns=host", func(t *testing.T) {
		e := newEnv(t, "--userns=host")
		spec := testSpec("true")
		spec.Linux.Namespaces = withoutNamespace(spec, specs.PIDNamespace)
		wantOneLineError(t, e.exec("", "create", "--bundle", newBundle(t, spec).dir, "refused"), "sharing an existing pid namespace needs the pod's user namespace")
		if out := e.must("list", "-q"); strings.TrimSpace(out) != "" {
			t.Fatalf("left %q", out)
		}
	})
	t.Run("userns=pod", func(t *testing.T) {
		e := newEnv(t)
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
			t.Fatalf("the init's child %d died with the init: want it alive until killed (shared pid namespace)", child)
		}
		e.must("kill", "--all", "hostpid", "KILL")
		waitGone(t, child)
		e.must("delete", "hostpid")
	})
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
		e := newEnv(t)
		spec := testSpecWithPIDPath(path, "sh", "-c", "readlink /proc/self/ns/pid; cat /proc/1/comm")
		out := e.must("run", "--bundle", newBundle(t, spec).dir, "bypath")
		if f := strings.Fields(out); len(f) != 2 || f[0] != want || f[1] != "sleep" {
			t.Fatalf("container in pid namespace %s printed %q: want that namespace, whose pid 1 is sleep", path, out)
		}
		// A second, unrelated container naming it is not put in the
		// first one's pod (that namespace is not the pod's).
		e.must("run", "-d", "--bundle", newBundle(t, testSpecWithPIDPath(path, "sleep", "100000")).dir, "first")
		e.must("run", "-d", "--bundle", newBundle(t, testSpecWithPIDPath(path, "sleep", "100000")).dir, "second")
		if a, b := e.saved("first"), e.saved("second"); a.Sandbox.PID == b.Sandbox.PID {
			t.Fatalf("two containers naming the same outside pid namespace share sandbox %d", a.Sandbox.PID)
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

// testSpecWithPIDPath is testSpec(args...) joining the pid namespace at
// path.
func testSpecWithPIDPath(path string, args ...string) *specs.Spec {
	spec := testSpec(args...)
	spec.Linux.Namespaces = append(withoutNamespace(spec, specs.PIDNamespace), specs.LinuxNamespace{Type: specs.PIDNamespace, Path: path})
	return spec
}
