package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// podSpec returns a spec for a container of the pod whose sandbox
// container is sandboxID, with containerd's annotations ("" makes the
// sandbox container itself).
func podSpec(sandboxID string, args ...string) *specs.Spec {
	spec := testSpec(args...)
	if sandboxID == "" {
		spec.Annotations = map[string]string{"io.kubernetes.cri.container-type": "sandbox"}
	} else {
		spec.Annotations = map[string]string{
			"io.kubernetes.cri.container-type": "container",
			"io.kubernetes.cri.sandbox-id":     sandboxID,
		}
	}
	return spec
}

// startPod runs a pause-like sandbox container "pod".
func startPod(t *testing.T, e *runscEnv) savedState {
	t.Helper()
	b := newBundle(t, podSpec("", "sleep", "100000"))
	e.must("run", "-d", "--bundle", b.dir, "pod")
	return e.saved("pod")
}

// psPIDs returns the host pids `runsc ps` lists for a container.
func (e *runscEnv) psPIDs(id string) []int {
	e.t.Helper()
	var pids []int
	if err := json.Unmarshal([]byte(e.must("ps", "--format", "json", id)), &pids); err != nil {
		e.t.Fatalf("ps %s: %v", id, err)
	}
	return pids
}

func TestPod(t *testing.T) {
	e := newEnv(t)
	pod := startPod(t, e)
	b1 := newBundle(t, podSpec("pod", "sh", "-c", "echo one > /marker; sleep 100000 & wait"))
	b2 := newBundle(t, podSpec("pod", "sh", "-c", "sleep 100000"))
	e.must("create", "--bundle", b1.dir, "one")
	if st := e.state("one"); st.Status != specs.StateCreated {
		t.Fatalf("subcontainer after create: %s", st.Status)
	}
	e.must("start", "one")
	e.must("create", "--bundle", b2.dir, "two")
	e.must("start", "two")
	one, two := e.saved("one"), e.saved("two")
	if one.Sandbox.PID != pod.Sandbox.PID || two.Sandbox.PID != pod.Sandbox.PID {
		t.Fatalf("subcontainers in sandboxes %d and %d, pod in %d", one.Sandbox.PID, two.Sandbox.PID, pod.Sandbox.PID)
	}
	if one.Gofer.PID == pod.Gofer.PID || one.Gofer.PID == two.Gofer.PID {
		t.Fatal("subcontainers share a gofer")
	}
	if out := e.must("list", "--quiet"); strings.Join(strings.Fields(out), " ") != "one pod two" {
		t.Fatalf("list: %q", out)
	}

	t.Run("own processes and roots", func(t *testing.T) {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if len(e.psPIDs("one")) == 2 {
				break
			}
		}
		if p := e.psPIDs("one"); len(p) != 2 {
			t.Fatalf("ps one: %v, want sh and sleep", p)
		}
		if p := e.psPIDs("pod"); len(p) != 1 || p[0] != pod.InitPID {
			t.Fatalf("ps pod: %v, want only its sleep %d", p, pod.InitPID)
		}
		// Each container sees only its own processes and its own root.
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/proc", one.InitPID))
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for _, d := range ents {
			if d.Name()[0] >= '0' && d.Name()[0] <= '9' {
				seen = append(seen, d.Name())
			}
		}
		if len(seen) != 2 {
			t.Fatalf("container one's /proc shows processes %v, want only its own two", seen)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/marker", two.InitPID)); !os.IsNotExist(err) {
			t.Fatalf("container two sees container one's file: %v", err)
		}
		// Write-through: the write is in one's root on the host,
		// never in two's.
		if b, err := os.ReadFile(filepath.Join(b1.rootfs, "marker")); err != nil || string(b) != "one\n" {
			t.Fatalf("one's write is not in its root on the host: %q %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(b2.rootfs, "marker")); !os.IsNotExist(err) {
			t.Fatalf("one's write reached two's root: %v", err)
		}
	})
	t.Run("signal one container", func(t *testing.T) {
		e.must("kill", "one", "KILL")
		waitGone(t, one.InitPID)
		if st := e.state("one"); st.Status != specs.StateStopped {
			t.Fatalf("one: %s", st.Status)
		}
		for _, id := range []string{"pod", "two"} {
			if st := e.state(id); st.Status != specs.StateRunning {
				t.Fatalf("%s after killing one: %s", id, st.Status)
			}
		}
		e.must("delete", "one")
		if !alive(pod.InitPID) || !alive(two.InitPID) {
			t.Fatal("deleting one stopped another container")
		}
	})
	t.Run("kill --all", func(t *testing.T) {
		pids := e.psPIDs("two")
		e.must("kill", "--all", "two", "KILL")
		for _, p := range pids {
			waitGone(t, p)
		}
		if !alive(pod.InitPID) {
			t.Fatal("kill --all two killed the pod")
		}
	})
	t.Run("delete the sandbox container tears the pod down", func(t *testing.T) {
		b3 := newBundle(t, podSpec("pod", "sleep", "100000"))
		e.must("create", "--bundle", b3.dir, "three")
		e.must("start", "three")
		three := e.saved("three")
		e.must("delete", "--force", "pod")
		for _, p := range []int{pod.Sandbox.PID, pod.Gofer.PID, pod.InitPID, two.Gofer.PID, three.Gofer.PID, three.InitPID} {
			waitGone(t, p)
		}
		if out := e.must("list", "--quiet"); strings.TrimSpace(out) != "" {
			t.Fatalf("left after deleting the pod: %q", out)
		}
	})
}

// TestPodShortLivedAndWait checks runsc wait on a pod member: the
// member's init is its caller's child (here a caller that holds it as a
// zombie for a while, as a busy conmon might), and the sandbox reads its
// exit status while it is unreaped; the caller gets the same status.
func TestPodShortLivedAndWait(t *testing.T) {
	e := newEnv(t)
	pod := startPod(t, e)
	b := newBundle(t, podSpec("pod", "sh", "-c", "exit 3"))
	dir := t.TempDir()
	pidFile, hold := filepath.Join(dir, "pid"), filepath.Join(dir, "reap")
	c := e.startCallerEnv(pidFile, nil, []string{callerHoldEnv + "=" + hold}, "create", "--bundle", b.dir, "--pid-file", pidFile, "short")
	c.pid()
	e.must("start", "short")
	c.line("zombie")
	var w struct{ ExitStatus int }
	if err := json.Unmarshal([]byte(e.must("wait", "short")), &w); err != nil || w.ExitStatus != 3 {
		t.Fatalf("wait: %+v %v", w, err)
	}
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if end := c.end(); end != "exited 3" {
		t.Fatalf("the caller reaped %q", end)
	}
	// Waiting again on an exited container answers at once, with the
	// status the sandbox kept.
	if err := json.Unmarshal([]byte(e.must("wait", "short")), &w); err != nil || w.ExitStatus != 3 {
		t.Fatalf("second wait: %+v %v", w, err)
	}
	if !alive(pod.InitPID) {
		t.Fatal("the pod stopped with its short-lived container")
	}
	e.must("delete", "short")
}

func TestPodCreatedNeverStarted(t *testing.T) {
	e := newEnv(t)
	startPod(t, e)
	b := newBundle(t, podSpec("pod", "sleep", "100"))
	e.must("create", "--bundle", b.dir, "idle")
	e.must("delete", "idle")
	if _, err := e.run("state", "idle"); err == nil {
		t.Fatal("state of a deleted container succeeded")
	}
	t.Run("start after the sandbox is gone", func(t *testing.T) {
		e.must("create", "--bundle", b.dir, "orphan")
		e.must("delete", "--force", "pod")
		r := e.exec("", "start", "orphan")
		if r.code == 0 || strings.Contains(r.stderr, "panic") || !strings.Contains(r.stderr, "orphan") {
			t.Fatalf("start after the pod was deleted: exit %d %q", r.code, r.stderr)
		}
	})
}

func TestPodCreateErrors(t *testing.T) {
	e := newEnv(t)
	startPod(t, e)
	for _, c := range []struct {
		name, id, sandbox, want string
	}{
		{"unknown sandbox", "x1", "nosuch", "nosuch"},
		{"sandbox id traversal", "x2", "../pod", "io.kubernetes.cri.sandbox-id"},
		{"dotdot id", "..", "pod", "container ID"},
		{"slash id", "a/b", "pod", "container ID"},
		{"dot id", ".", "pod", "container ID"},
		{"duplicate", "pod", "pod", "pod"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBundle(t, podSpec(c.sandbox, "true"))
			r := e.exec("", "create", "--bundle", b.dir, c.id)
			if r.code == 0 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Fatalf("exit %d stderr %q, want a one-line error naming %q", r.code, r.stderr, c.want)
			}
		})
	}
	if out := e.must("list", "--quiet"); strings.TrimSpace(out) != "pod" {
		t.Fatalf("containers after refused creates: %q", out)
	}
	t.Run("cri-o annotations", func(t *testing.T) {
		spec := testSpec("sleep", "100000")
		spec.Annotations = map[string]string{"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri-o.SandboxID": "pod"}
		b := newBundle(t, spec)
		e.must("create", "--bundle", b.dir, "crio")
		e.must("start", "crio")
		if e.saved("crio").Sandbox.PID != e.saved("pod").Sandbox.PID {
			t.Fatal("CRI-O container not in the pod's sandbox")
		}
	})
}

func TestPodSubcontainerGoferDies(t *testing.T) {
	e := newEnv(t)
	pod := startPod(t, e)
	b := newBundle(t, podSpec("pod", "sh", "-c", "while true; do cat /etc/passwd >/dev/null; done"))
	e.must("create", "--bundle", b.dir, "fragile")
	e.must("start", "fragile")
	sub := e.saved("fragile")
	syscall.Kill(sub.Gofer.PID, syscall.SIGKILL)
	waitGone(t, sub.InitPID)
	if st := e.state("fragile"); st.Status != specs.StateStopped {
		t.Fatalf("subcontainer after its gofer died: %s", st.Status)
	}
	if st := e.state("pod"); st.Status != specs.StateRunning || !alive(pod.InitPID) {
		t.Fatalf("pod after a subcontainer's gofer died: %s", st.Status)
	}
	t.Run("the sandbox container's gofer stops the pod", func(t *testing.T) {
		b := newBundle(t, podSpec("pod", "sleep", "100000"))
		e.must("create", "--bundle", b.dir, "other")
		e.must("start", "other")
		other := e.saved("other")
		syscall.Kill(pod.Gofer.PID, syscall.SIGKILL)
		waitGone(t, pod.InitPID)
		waitGone(t, other.InitPID)
	})
}

func TestPodTenContainers(t *testing.T) {
	e := newEnv(t)
	pod := startPod(t, e)
	var ids []string
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("c%d", i)
		b := newBundle(t, podSpec("pod", "sh", "-c", fmt.Sprintf("echo %d > /id; sleep 100000", i)))
		e.must("create", "--bundle", b.dir, id)
		e.must("start", id)
		ids = append(ids, id)
	}
	var pids []int
	for _, id := range ids {
		s := e.saved(id)
		if s.Sandbox.PID != pod.Sandbox.PID {
			t.Fatalf("%s not in the pod's sandbox", id)
		}
		pids = append(pids, s.InitPID, s.Gofer.PID)
	}
	for _, id := range ids[:5] {
		e.must("delete", "--force", id)
	}
	e.must("delete", "--force", "pod")
	for _, p := range append(pids, pod.Sandbox.PID, pod.Gofer.PID) {
		waitGone(t, p)
	}
	if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
		t.Fatalf("state left: %v", ents)
	}
}

func TestPodSharedVolume(t *testing.T) {
	e := newEnv(t)
	startPod(t, e)
	vol := t.TempDir()
	withVolume := func(script string, ro bool) *bundle {
		spec := podSpec("pod", "sh", "-c", script)
		opts := []string{"rbind", "rw"}
		if ro {
			opts = []string{"rbind", "ro"}
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: vol, Options: opts})
		return newBundle(t, spec)
	}
	// Each container writes its turn and waits for the other's.
	a := withVolume(`echo ping > /shared/a; i=0; while [ ! -e /shared/b ]; do i=$((i+1)); [ $i -gt 500 ] && exit 9; sleep 0.02; done; cat /shared/b > /shared/a-saw; sleep 100000`, false)
	b := withVolume(`i=0; while [ ! -e /shared/a ]; do i=$((i+1)); [ $i -gt 500 ] && exit 9; sleep 0.02; done; cat /shared/a > /shared/b-saw; echo pong > /shared/b; sleep 100000`, false)
	e.must("create", "--bundle", a.dir, "va")
	e.must("start", "va")
	e.must("create", "--bundle", b.dir, "vb")
	e.must("start", "vb")
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(vol, "a-saw")); len(b) > 0 {
			break
		}
	}
	if got, _ := os.ReadFile(filepath.Join(vol, "b-saw")); string(got) != "ping\n" {
		t.Fatalf("b saw %q of a's write", got)
	}
	if got, _ := os.ReadFile(filepath.Join(vol, "a-saw")); string(got) != "pong\n" {
		t.Fatalf("a saw %q of b's write", got)
	}
	t.Run("read-only share", func(t *testing.T) {
		r := withVolume("echo x 2>/dev/null > /shared/ro-write; echo status=$?; cat /shared/a", true)
		res := e.exec("", "run", "--bundle", r.dir, "vr")
		// The write is refused, the read of the other member's file
		// works, the container exits 0 (cat's status).
		if res.code != 0 || strings.Contains(res.stdout, "status=0") || !strings.HasPrefix(res.stdout, "status=") || !strings.HasSuffix(res.stdout, "\nping\n") {
			t.Fatalf("read-only member: exit %d, %q %q; want the write refused and a's file read", res.code, res.stdout, res.stderr)
		}
		if _, err := os.Stat(filepath.Join(vol, "ro-write")); !os.IsNotExist(err) {
			t.Fatalf("read-only volume was written: %v", err)
		}
	})
}

func TestPodSharedPIDNamespace(t *testing.T) {
	e := newEnv(t)
	pod := startPod(t, e)
	spec := podSpec("pod", "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline > /pid1; sleep 100000 & wait")
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", pod.InitPID)
		}
	}
	b := newBundle(t, spec)
	e.must("create", "--bundle", b.dir, "sharer")
	e.must("start", "sharer")
	sharer := e.saved("sharer")
	var seen string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root/pid1", sharer.InitPID))
		if seen = string(data); seen != "" {
			break
		}
	}
	if seen != "sleep 100000 " {
		t.Fatalf("pid 1 seen by the sharing container: %q, want the pod's sleep", seen)
	}
	for _, p := range e.psPIDs("sharer") {
		if p == pod.InitPID {
			t.Fatal("ps of the sharing container lists the pod's process")
		}
	}
	t.Run("pid namespace of a stranger", func(t *testing.T) {
		spec.Linux.Namespaces[0].Path = "/proc/1/ns/pid"
		b := newBundle(t, spec)
		r := e.exec("", "create", "--bundle", b.dir, "stranger")
		if r.code == 0 || !strings.Contains(r.stderr, "pid namespace") {
			t.Fatalf("joining the host's pid namespace: exit %d %q", r.code, r.stderr)
		}
	})
}

func TestPodDeleteRacingStart(t *testing.T) {
	e := newEnv(t)
	startPod(t, e)
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("race%d", i)
		b := newBundle(t, podSpec("pod", "sleep", "100000"))
		e.must("create", "--bundle", b.dir, id)
		saved := e.saved(id)
		done := make(chan result, 2)
		go func() { done <- e.exec("", "start", id) }()
		go func() { done <- e.exec("", "delete", "--force", id) }()
		for j := 0; j < 2; j++ {
			if r := <-done; strings.Contains(r.stderr, "panic") {
				t.Fatalf("racing start and delete: %q", r.stderr)
			}
		}
		waitGone(t, saved.InitPID)
		waitGone(t, saved.Gofer.PID)
		if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
			t.Fatalf("%s left state: %v", id, err)
		}
	}
	if st := e.state("pod"); st.Status != specs.StateRunning {
		t.Fatalf("pod after the races: %s", st.Status)
	}
}

func TestPodSharesSandboxContainerVolume(t *testing.T) {
	e := newEnv(t)
	shm := t.TempDir()
	withShm := func(spec *specs.Spec) *specs.Spec {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: shm, Options: []string{"rbind", "rw"}})
		return spec
	}
	b := newBundle(t, withShm(podSpec("", "sleep", "100000")))
	e.must("run", "-d", "--bundle", b.dir, "pod")
	pod := e.saved("pod")
	sub := newBundle(t, withShm(podSpec("pod", "sh", "-c", "echo from-sub > /dev/shm/note; sleep 100000")))
	e.must("create", "--bundle", sub.dir, "member")
	e.must("start", "member")
	member := e.saved("member")
	// The member binds the sandbox container's tree: no second tree for
	// the same source.
	args, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", member.Gofer.PID))
	if strings.Contains(string(args), shm) {
		t.Fatalf("member's gofer serves the pod's shared source again: %q", args)
	}
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root/dev/shm/note", pod.InitPID))
		if got = string(b); got != "" {
			break
		}
	}
	if got != "from-sub\n" {
		t.Fatalf("sandbox container sees %q in /dev/shm", got)
	}
}
