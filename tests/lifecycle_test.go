package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/internal/testhelp"
	"golang.org/x/sys/unix"
)

// alive reports whether host process pid exists and is not a zombie.
func alive(pid int) bool { return testhelp.Alive(pid) }

// waitGone waits until pid no longer runs.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	testhelp.WaitFor(t, fmt.Sprintf("process %d to be gone", pid), 10*time.Second, func() bool { return !testhelp.Alive(pid) })
}

// savedState reads a container's state file as runsc wrote it.
type savedState struct {
	Status  string `json:"status"`
	InitPID int    `json:"initPid"`
	Sandbox struct {
		PID int `json:"pid"`
	} `json:"sandbox"`
	Gofer struct {
		PID int `json:"pid"`
	} `json:"gofer"`
	Cgroup *struct {
		Paths map[string]string `json:"paths"`
	} `json:"cgroup"`
}

func (e *runscEnv) saved(id string) savedState {
	e.t.Helper()
	var s savedState
	b, err := os.ReadFile(filepath.Join(e.root, id, "state.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sleep", "1000"))
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.must("create", "--bundle", b.dir, "--pid-file", pidFile, "life")

	st := e.state("life")
	if st.Status != specs.StateCreated || st.Pid <= 0 || st.ID != "life" || st.Bundle != b.dir {
		t.Fatalf("after create: %+v", st)
	}
	pidData, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(pidData)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q (%v), state pid %d", pidData, err, st.Pid)
	}
	if !alive(st.Pid) {
		t.Fatalf("init %d not alive after create", st.Pid)
	}
	saved := e.saved("life")

	e.must("start", "life")
	if st = e.state("life"); st.Status != specs.StateRunning {
		t.Fatalf("after start: %+v", st)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.Pid))
	if !strings.HasPrefix(string(cmdline), "sleep\x001000") {
		t.Fatalf("init runs %q, want sleep 1000", cmdline)
	}
	if _, err := e.run("start", "life"); err == nil {
		t.Fatal("second start succeeded")
	}
	if _, err := e.run("delete", "life"); err == nil {
		t.Fatal("delete of a running container without --force succeeded")
	}

	e.must("kill", "life", "KILL")
	waitGone(t, st.Pid)
	if st = e.state("life"); st.Status != specs.StateStopped {
		t.Fatalf("after kill: %+v", st)
	}
	if _, err := e.run("kill", "life"); err == nil {
		t.Fatal("kill of a stopped container succeeded")
	}
	e.must("delete", "life")
	if _, err := e.run("state", "life"); err == nil {
		t.Fatal("state after delete succeeded")
	}
	if _, err := os.Stat(filepath.Join(e.root, "life")); !os.IsNotExist(err) {
		t.Fatalf("state directory left: %v", err)
	}
	for _, pid := range []int{saved.Sandbox.PID, saved.Gofer.PID, saved.InitPID} {
		waitGone(t, pid)
	}
}

func TestRunExitCodeAndStdio(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name  string
		args  []string
		stdin string
		out   string
		code  int
	}{
		{"exit 0", []string{"true"}, "", "", 0},
		{"exit 7", []string{"sh", "-c", "exit 7"}, "", "", 7},
		{"stdout", []string{"echo", "hello sandbox"}, "", "hello sandbox\n", 0},
		{"stdin", []string{"cat"}, "piped through\n", "piped through\n", 0},
		{"killed", []string{"sh", "-c", "sleep 100 & kill -9 $!; wait $!"}, "", "", 137},
		{"not found", []string{"no-such-binary"}, "", "", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBundle(t, testSpec(c.args...))
			r := e.exec(c.stdin, "run", "--bundle", b.dir, "exit-"+strings.ReplaceAll(c.name, " ", "-"))
			if r.code != c.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, c.code, r.stderr)
			}
			if r.stdout != c.out {
				t.Fatalf("stdout %q, want %q", r.stdout, c.out)
			}
		})
	}
}

func TestNothingOfTheHostAppears(t *testing.T) {
	// The container's / is the gofer's FUSE mount (write-through, the
	// default) or the memory overlay on it.
	t.Run("write-through", func(t *testing.T) { checkNothingOfTheHost(t, "fuse.runsc") })
	t.Run("memory overlay", func(t *testing.T) { checkNothingOfTheHost(t, "overlay", "--overlay2=root:memory") })
}

// checkNothingOfTheHost runs a container with the global flags given
// and checks that no host path appears in what it sees, and that its
// root is a mount of type rootType.
func checkNothingOfTheHost(t *testing.T, rootType string, flags ...string) {
	e := newEnv(t, flags...)
	b := newBundle(t, testSpec("sh", "-c", "echo hi; ls /; cat /proc/self/mountinfo"))
	out := e.must("run", "--bundle", b.dir, "hostless")
	if !strings.HasPrefix(out, "hi\n") {
		t.Fatalf("output %q", out)
	}
	wd, _ := os.Getwd()
	for _, host := range []string{b.dir, e.root, wd, "/tmp/"} {
		if strings.Contains(out, host) {
			t.Fatalf("container output names %q:\n%s", host, out)
		}
	}
	// The last mount on / (the one the container sees) must be found,
	// and be the root.
	root := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 8 && f[4] == "/" {
			root = line
		}
	}
	if root == "" {
		t.Fatalf("no mount on / in the container's mountinfo:\n%s", out)
	}
	if f := strings.Fields(root); indexOf(f, "-") < 0 || indexOf(f, "-")+1 >= len(f) || f[indexOf(f, "-")+1] != rootType {
		t.Fatalf("container root is not of type %s: %s", rootType, root)
	}
}

func indexOf(f []string, s string) int {
	for i, x := range f {
		if x == s {
			return i
		}
	}
	return -1
}

func TestSandboxRootHoldsNoHostFile(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sleep", "1000"))
	e.must("run", "-d", "--bundle", b.dir, "probe")
	saved := e.saved("probe")
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root", saved.Sandbox.PID))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "__containers__ __mounts__ dev proc sys" {
		t.Fatalf("sandbox root holds %v", names)
	}
	var devNames []string
	devs, _ := os.ReadDir(fmt.Sprintf("/proc/%d/root/dev", saved.Sandbox.PID))
	for _, d := range devs {
		devNames = append(devNames, d.Name())
	}
	sort.Strings(devNames)
	if strings.Join(devNames, " ") != "full null random tty urandom zero" {
		t.Fatalf("sandbox /dev holds %v, want only the harmless character devices", devNames)
	}
	// The root allows no device, setuid or executable file; /dev only
	// its own nodes; /sys is a read-only sysfs, /proc the pod's.
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", saved.Sandbox.PID))
	if err != nil {
		t.Fatal(err)
	}
	opts := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(mi)), "\n") {
		if f := strings.Fields(l); len(f) > 5 {
			opts[f[4]] = f[5]
		}
	}
	for point, want := range map[string][]string{"/": {"nosuid", "nodev", "noexec"}, "/dev": {"nosuid", "noexec"}, "/sys": {"ro", "nosuid", "nodev", "noexec"}, "/proc": {"nosuid", "nodev", "noexec"}} {
		for _, o := range want {
			if !slices.Contains(strings.Split(opts[point], ","), o) {
				t.Errorf("sandbox %s mounted %q, without %s", point, opts[point], o)
			}
		}
	}
	for _, pid := range []int{saved.Sandbox.PID, saved.InitPID} {
		mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{b.dir, e.root, "/work/", "/tmp/"} {
			if strings.Contains(string(mi), host) {
				t.Fatalf("mountinfo of %d names host path %q:\n%s", pid, host, mi)
			}
		}
	}
}

// TestSandboxConfinement checks what the sandbox runs with once it
// serves: a reduced capability set (none of it inheritable or ambient)
// and a seccomp filter on every thread with no_new_privs, under which it
// still mounts, runs and deletes a pod's containers.
func TestSandboxConfinement(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, podSpec("", "sleep", "1000"))
	e.must("run", "-d", "--bundle", b.dir, "confined")
	pid := e.saved("confined").Sandbox.PID
	st := procStatus(t, pid)
	var want uint64
	for _, c := range []uint{unix.CAP_SYS_ADMIN, unix.CAP_KILL, unix.CAP_SYS_PTRACE, unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER, unix.CAP_FSETID} {
		want |= 1 << c
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if got, err := strconv.ParseUint(st[k], 16, 64); err != nil || got != want {
			t.Errorf("sandbox %s = %s, want %#x", k, st[k], want)
		}
	}
	if st["CapInh"] != "0000000000000000" || st["CapAmb"] != "0000000000000000" {
		t.Errorf("sandbox CapInh %s CapAmb %s, want none", st["CapInh"], st["CapAmb"])
	}
	if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
		t.Errorf("sandbox Seccomp %q NoNewPrivs %q, want 2 and 1", st["Seccomp"], st["NoNewPrivs"])
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err == nil && !strings.Contains(string(b), "Seccomp:\t2") {
			t.Errorf("sandbox thread %s has no seccomp filter", task.Name())
		}
	}
	// The sandbox still does its work under the filter: another
	// container of its pod (mounted, run, waited for, deleted), an exec.
	b2 := newBundle(t, podSpec("confined", "sleep", "1000"))
	e.must("run", "-d", "--bundle", b2.dir, "second")
	if e.saved("second").Sandbox.PID != pid {
		t.Fatalf("the second container is not in the pod's sandbox")
	}
	if out := e.must("exec", "second", "sh", "-c", "echo second > /f; cat /f"); out != "second\n" {
		t.Fatalf("second container: %q", out)
	}
	e.must("kill", "second", "KILL")
	e.must("wait", "second")
	e.must("delete", "second")
	if out := e.must("exec", "confined", "echo", "exec"); out != "exec\n" {
		t.Fatalf("exec: %q", out)
	}
}

func TestWritesStayInTheOverlay(t *testing.T) {
	// Each step reports itself: the test checks that every one worked
	// inside the container, not only what reached the host.
	script := "echo data > /written && cat /written && mkdir -p /etc/new && test -d /etc/new && echo mkdir-ok && rm /bin/true && { test -e /bin/true || echo rm-ok; }"
	const wantOut = "data\nmkdir-ok\nrm-ok\n"
	t.Run("memory overlay", func(t *testing.T) {
		e := newEnv(t, "--overlay2=root:memory")
		b := newBundle(t, testSpec("sh", "-c", script))
		out := e.must("run", "--bundle", b.dir, "overlay")
		if out != wantOut {
			t.Fatalf("output %q, want %q", out, wantOut)
		}
		for _, p := range []string{"written", "etc/new"} {
			if _, err := os.Lstat(filepath.Join(b.rootfs, p)); !os.IsNotExist(err) {
				t.Fatalf("%s reached the host rootfs: %v", p, err)
			}
		}
		if _, err := os.Lstat(filepath.Join(b.rootfs, "bin/true")); err != nil {
			t.Fatalf("removing /bin/true in the container removed it on the host: %v", err)
		}
	})
	// Write-through is the default for bundles.
	t.Run("write-through by default", func(t *testing.T) {
		e := newEnv(t)
		b := newBundle(t, testSpec("sh", "-c", script))
		out := e.must("run", "--bundle", b.dir, "through")
		if out != wantOut {
			t.Fatalf("output %q, want %q", out, wantOut)
		}
		if got, err := os.ReadFile(filepath.Join(b.rootfs, "written")); err != nil || string(got) != "data\n" {
			t.Fatalf("host rootfs /written: %q %v", got, err)
		}
		if _, err := os.Lstat(filepath.Join(b.rootfs, "bin/true")); !os.IsNotExist(err) {
			t.Fatalf("rm /bin/true did not reach the host: %v", err)
		}
	})
	t.Run("readonly root", func(t *testing.T) {
		for _, overlay := range []string{"root:memory", "none"} {
			e := newEnv(t, "--overlay2="+overlay)
			spec := testSpec("sh", "-c", "touch /x 2>&1; echo status=$?")
			spec.Root.Readonly = true
			b := newBundle(t, spec)
			out := e.must("run", "--bundle", b.dir, "ro")
			if !strings.Contains(out, "Read-only file system") || strings.Contains(out, "status=0") {
				t.Fatalf("overlay %s: write to read-only root: %q", overlay, out)
			}
			if _, err := os.Lstat(filepath.Join(b.rootfs, "x")); !os.IsNotExist(err) {
				t.Fatalf("file reached the host: %v", err)
			}
		}
	})
}

func TestBindMounts(t *testing.T) {
	e := newEnv(t)
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ro, "given"), []byte("from host"), 0o644)
	file := filepath.Join(t.TempDir(), "single")
	os.WriteFile(file, []byte("one file\n"), 0o644)
	spec := testSpec("sh", "-c", "cat /ro/given; echo; echo out > /rw/made; touch /ro/nope 2>&1; cat /etc/single")
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/rw", Type: "bind", Source: rw, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/ro", Type: "bind", Source: ro, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/etc/single", Type: "bind", Source: file, Options: []string{"bind", "ro"}},
	)
	b := newBundle(t, spec)
	out := e.must("run", "--bundle", b.dir, "binds")
	if !strings.HasPrefix(out, "from host\n") || !strings.Contains(out, "Read-only file system") || !strings.HasSuffix(out, "one file\n") {
		t.Fatalf("output %q", out)
	}
	if got, err := os.ReadFile(filepath.Join(rw, "made")); err != nil || string(got) != "out\n" {
		t.Fatalf("rw bind: host got %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "nope")); !os.IsNotExist(err) {
		t.Fatalf("ro bind was written: %v", err)
	}
}

// TestReadOnlyBindOverSubmount checks runc's two read-only binds of a
// tree holding another mount: "ro" on an rbind makes only the source's
// own mount read-only (Kubernetes' non-recursive read-only volume), "rro"
// all of it. Writes that are refused reach nothing on the host.
func TestReadOnlyBindOverSubmount(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	sub := filepath.Join(src, "tmpfs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	spec := testSpec("sh", "-c", "for d in /top /all; do touch $d/top-file 2>/dev/null; echo $d top=$?; touch $d/tmpfs/sub-file 2>/dev/null; echo $d sub=$?; done")
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/top", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/all", Type: "bind", Source: src, Options: []string{"rbind", "rro"}},
	)
	b := newBundle(t, spec)
	out := e.must("run", "--bundle", b.dir, "robind")
	if want := "/top top=1\n/top sub=0\n/all top=1\n/all sub=1\n"; out != want {
		t.Fatalf("writes: %q, want %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(src, "top-file")); !os.IsNotExist(err) {
		t.Fatalf("the read-only top was written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(sub, "sub-file")); err != nil {
		t.Fatalf("the write below the non-recursive read-only bind did not reach the host: %v", err)
	}
}

func TestSymlinkToShadowStaysInside(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("cat", "/etc/link"))
	os.WriteFile(filepath.Join(b.rootfs, "etc/shadow"), []byte("container shadow\n"), 0o600)
	os.Symlink("/etc/shadow", filepath.Join(b.rootfs, "etc/link"))
	out := e.must("run", "--bundle", b.dir, "shadow")
	if out != "container shadow\n" {
		t.Fatalf("/etc/link -> /etc/shadow read %q", out)
	}
	// Also when the link is relative and climbs above the root.
	os.Remove(filepath.Join(b.rootfs, "etc/link"))
	os.Symlink("../../../../../../etc/shadow", filepath.Join(b.rootfs, "etc/link"))
	if out := e.must("run", "--bundle", b.dir, "shadow2"); out != "container shadow\n" {
		t.Fatalf("relative link read %q", out)
	}
}

func TestInvalidIDsRefused(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("true"))
	for _, id := range []string{"../x", "a/b", ".", "..", "", strings.Repeat("x", 2000), "bad id", "a\nb"} {
		t.Run(fmt.Sprintf("%.20q", id), func(t *testing.T) {
			r := e.exec("", "create", "--bundle", b.dir, id)
			if r.code == 0 {
				t.Fatal("create succeeded")
			}
			msg := strings.TrimSpace(r.stderr)
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "container ID") {
				t.Fatalf("error is not one line naming the ID: %q", msg)
			}
			ents, _ := os.ReadDir(e.root)
			if len(ents) != 0 {
				t.Fatalf("something was created: %v", ents)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(e.root), "x")); !os.IsNotExist(err) {
				t.Fatalf("../x escaped the root: %v", err)
			}
		})
	}
}

func TestDeleteForceLeavesNothing(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sh", "-c", "sleep 1000 & sleep 1000"))
	e.must("run", "-d", "--bundle", b.dir, "doomed")
	saved := e.saved("doomed")
	e.must("delete", "--force", "doomed")
	for _, pid := range []int{saved.Sandbox.PID, saved.Gofer.PID, saved.InitPID} {
		waitGone(t, pid)
	}
	if _, err := os.Stat(filepath.Join(e.root, "doomed")); !os.IsNotExist(err) {
		t.Fatalf("state left: %v", err)
	}
	// runsc's own mounts are fuse.runsc and tmpfs named runsc-*; other
	// tools' paths may contain "runsc" too.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, b.dir) || strings.Contains(line, "fuse.runsc") || strings.Contains(line, " runsc-") {
			t.Fatalf("host mount of the container: %s", line)
		}
	}
}

func TestGoferKilledStopsContainer(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sh", "-c", "i=0; while true; do i=$((i+1)); ls /no-such-$i >/dev/null 2>&1; cat /etc/passwd >/dev/null || exit 5; done"))
	e.must("run", "-d", "--bundle", b.dir, "gofer-dies")
	saved := e.saved("gofer-dies")
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(saved.Gofer.PID, syscall.SIGKILL)
	done := make(chan result, 1)
	go func() { done <- e.exec("", "wait", "gofer-dies") }()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("wait: %q", r.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("container still running 20s after its gofer was killed")
	}
	if st := e.state("gofer-dies"); st.Status != specs.StateStopped {
		t.Fatalf("state after the gofer died: %s", st.Status)
	}
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"missing executable", func(s *specs.Spec) { s.Process.Args = []string{"/no/such/binary"} }, "/no/such/binary"},
		{"missing bind source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/no/such/dir", Options: []string{"bind"}})
		}, "mounts[6]"},
		{"empty args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		{"relative mount destination", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "rel", Type: "tmpfs", Source: "tmpfs"})
		}, "mounts[6].destination"},
		{"unknown capability", func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_BOGUS"} }, "CAP_BOGUS"},
		{"bad rlimit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Hard: 1, Soft: 1}}
		}, "RLIMIT_BOGUS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := testSpec("true")
			c.edit(spec)
			b := newBundle(t, spec)
			r := e.exec("", "create", "--bundle", b.dir, "failing")
			if r.code != 1 {
				t.Fatalf("exit %d, want 1 (stderr %q)", r.code, r.stderr)
			}
			msg := strings.TrimSpace(r.stderr)
			if strings.Contains(msg, "\n") || !strings.Contains(msg, c.want) || strings.Contains(msg, "panic") {
				t.Fatalf("error %q: want one line naming %q", msg, c.want)
			}
			if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
				t.Fatalf("left in --root: %v", ents)
			}
		})
	}
	t.Run("malformed config.json", func(t *testing.T) {
		b := newBundle(t, testSpec("true"))
		os.WriteFile(filepath.Join(b.dir, "config.json"), []byte(`{"ociVersion": "1.0.2", "process": {"args": 5}}`), 0o644)
		r := e.exec("", "create", "--bundle", b.dir, "malformed")
		if r.code != 1 || !strings.Contains(r.stderr, "process.args") {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
	})
}

func TestConcurrentCommands(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sleep", "1000"))
	e.must("run", "-d", "--bundle", b.dir, "busy")
	saved := e.saved("busy")
	type tagged struct {
		cmd string
		r   result
	}
	results := make(chan tagged, 40)
	for i := 0; i < 30; i++ {
		args := []string{"state", "busy"}
		switch i % 3 {
		case 1:
			args = []string{"list", "--format", "json"}
		case 2:
			args = []string{"ps", "busy"}
		}
		go func() { results <- tagged{args[0], e.exec("", args...)} }()
	}
	go func() { results <- tagged{"delete", e.exec("", "delete", "--force", "busy")} }()
	// Each command either did its job, with output that says so, or
	// found the container gone (or going) and said that in one line.
	gone := regexp.MustCompile(`^runsc: .*"busy".*(does not exist|is not running|stopped)\n$`)
	for i := 0; i < 31; i++ {
		c := <-results
		r := c.r
		if r.code != 0 {
			if c.cmd == "delete" || !gone.MatchString(r.stderr) {
				t.Fatalf("%s failed: exit %d %q", c.cmd, r.code, r.stderr)
			}
			continue
		}
		switch c.cmd {
		case "state":
			var st specs.State
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.ID != "busy" || (st.Status != "running" && st.Status != "stopped") {
				t.Fatalf("state: %q (%v)", r.stdout, err)
			}
		case "list":
			var l []struct{ ID string }
			if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l) > 1 || len(l) == 1 && l[0].ID != "busy" {
				t.Fatalf("list: %q (%v)", r.stdout, err)
			}
		case "ps":
			if !strings.HasPrefix(r.stdout, "UID") && !strings.HasPrefix(r.stdout, "PID") {
				t.Fatalf("ps: %q", r.stdout)
			}
		}
	}
	for _, pid := range []int{saved.Sandbox.PID, saved.Gofer.PID, saved.InitPID} {
		waitGone(t, pid)
	}
	if _, err := os.Stat(filepath.Join(e.root, "busy")); !os.IsNotExist(err) {
		t.Fatalf("state left: %v", err)
	}
}

// TestKilledCreateCleanedByDeleteForce kills `runsc create` at several
// points (as containerd does when its create times out), then checks
// that `delete --force` of the ID leaves nothing: no process, state or
// mount (the suite's leak check runs at the end too).
func TestKilledCreateCleanedByDeleteForce(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sleep", "1000"))
	for i, delay := range []time.Duration{5, 20, 40, 80, 150} {
		id := "killed" + strconv.Itoa(i)
		cmd := e.cmd("create", "--bundle", b.dir, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		r := e.exec("", "delete", "--force", id)
		if r.code != 0 {
			t.Fatalf("delete --force after create was killed at %v: %q", delay*time.Millisecond, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
			t.Fatalf("state of %s left: %v", id, err)
		}
	}
	for _, l := range findLeaks() {
		t.Errorf("left: %s", l)
	}
}

// TestReadOnlyRootMountPoints runs a read-only, write-through root whose
// image lacks its mounts' destinations: runsc create makes them in the
// root on the host, as runc does, resolving every path inside the root
// (a symbolic link to an absolute path leads into the root, not out to
// the host's).
func TestReadOnlyRootMountPoints(t *testing.T) {
	e := newEnv(t)
	vol, outside := t.TempDir(), t.TempDir()
	src := filepath.Join(t.TempDir(), "file")
	os.WriteFile(src, []byte("bound file\n"), 0o644)
	spec := testSpec("sh", "-c", "ls /new/dir && cat /etc/bound && ls -d /escape/x && touch /y 2>/dev/null || echo ro")
	spec.Root.Readonly = true
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/new/dir", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/etc/bound", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/escape/x", Type: "tmpfs", Source: "tmpfs"},
	)
	b := newBundle(t, spec)
	if err := os.Symlink(outside, filepath.Join(b.rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	out := e.must("run", "--bundle", b.dir, "ro-points")
	if out != "bound file\n/escape/x\nro\n" {
		t.Fatalf("output %q", out)
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); !os.IsNotExist(err) {
		t.Fatalf("a mount point was made outside the root, through a symbolic link: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(b.rootfs, outside, "x")); err != nil || !fi.IsDir() {
		t.Fatalf("mount point behind the link not made inside the root: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(b.rootfs, "etc/bound")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("file mount point: %v %v", fi, err)
	}
}
