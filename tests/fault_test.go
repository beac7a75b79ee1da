package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/faultpoint"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// readFaultState reads the saved state of id, if there is one.
func (e *runscEnv) readFaultState(id string) (savedState, bool) {
	var s savedState
	b, err := os.ReadFile(filepath.Join(e.root, id, "state.json"))
	if err != nil || json.Unmarshal(b, &s) != nil {
		return s, false
	}
	return s, true
}

// stoppedAt runs runsc args with the fault point step and returns the
// command once it has stopped there.
func (e *runscEnv) stoppedAt(step string, args ...string) *exec.Cmd {
	e.t.Helper()
	cmd := e.cmd(args...)
	cmd.Env = append(os.Environ(), faultpoint.Env+"="+step)
	// Files, not pipes: a container keeps its creator's stdio.
	out, err := os.Create(filepath.Join(e.t.TempDir(), "out"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	e.faultOut = out.Name()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		st, err := procfs.ReadStat("/proc", cmd.Process.Pid)
		if err != nil || st.Zombie() {
			cmd.Wait()
			b, _ := os.ReadFile(out.Name())
			e.t.Fatalf("runsc %v ended before reaching %s: %s", args, step, b)
		}
		if st.State == 'T' {
			return cmd
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	e.t.Fatalf("runsc %v never reached %s", args, step)
	return nil
}

// childrenOf lists the children of pid.
func childrenOf(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// victimPID returns the pid of victim ("sandbox", "gofer" or "init") of
// container id while cli is stopped, or 0 if it does not exist yet.
func (e *runscEnv) victimPID(id, victim string, cli int) int {
	s, _ := e.readFaultState(id)
	switch victim {
	case "sandbox":
		return s.Sandbox.PID
	case "gofer":
		return s.Gofer.PID
	}
	if s.InitPID > 0 {
		return s.InitPID
	}
	// Not saved yet: the init is the one child of the stopped command
	// that is neither its sandbox nor its gofer.
	for _, c := range childrenOf(cli) {
		if c != s.Sandbox.PID && c != s.Gofer.PID {
			return c
		}
	}
	return 0
}

// faultCase is one fault: a step a command stops at and the process
// killed there.
type faultCase struct {
	step, victim string
}

// faultVictims are the processes a fault kills.
var faultVictims = []string{"cli", "sandbox", "gofer", "init"}

// TestFaults kills, at each step of create, start, exec and delete, the
// runsc command itself, the sandbox, the gofer or the container's init,
// then checks that the command ends, that state answers and tells the
// truth (a container whose sandbox, gofer or init was killed is
// stopped), and that delete --force leaves no process, cgroup, state or
// mount.
func TestFaults(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sleep", "100000"))
	var cases []faultCase
	for _, step := range []string{faultpoint.CreateSandbox, faultpoint.CreateGofer, faultpoint.CreateInit, faultpoint.CreateCgroup,
		faultpoint.CreateReady, faultpoint.CreateSaved, faultpoint.Start, faultpoint.ExecForked, faultpoint.ExecCgroup} {
		for _, v := range faultVictims {
			if (step == faultpoint.CreateSandbox && (v == "gofer" || v == "init")) || (step == faultpoint.CreateGofer && v == "init") {
				continue // not there yet
			}
			cases = append(cases, faultCase{step, v})
		}
	}
	cases = append(cases, faultCase{faultpoint.DeleteKilled, "cli"})
	for i, c := range cases {
		t.Run(c.step+"/"+c.victim, func(t *testing.T) {
			defer e.sub(t)()
			id := "fault" + strconv.Itoa(i)
			var args []string
			switch {
			case strings.HasPrefix(c.step, "create:"):
				args = []string{"create", "--bundle", b.dir, id}
			case c.step == faultpoint.Start:
				e.must("create", "--bundle", b.dir, id)
				args = []string{"start", id}
			case strings.HasPrefix(c.step, "exec:"):
				e.must("run", "-d", "--bundle", b.dir, id)
				args = []string{"exec", id, "true"}
			default:
				e.must("run", "-d", "--bundle", b.dir, id)
				args = []string{"delete", "--force", id}
			}
			cli := e.stoppedAt(c.step, args...)
			before, _ := e.readFaultState(id)
			if c.victim == "cli" {
				cli.Process.Kill()
			} else {
				pid := e.victimPID(id, c.victim, cli.Process.Pid)
				if pid <= 0 {
					t.Fatalf("no %s to kill at %s", c.victim, c.step)
				}
				unix.Kill(pid, unix.SIGKILL)
				cli.Process.Signal(syscall.SIGCONT)
			}
			e.waitAfterFault(cli, args)
			after, _ := e.readFaultState(id)
			e.checkAfterFault(id, c.victim, before, after)
		})
	}
}

// waitAfterFault waits for the command a fault struck (args, for the
// report) to end. If it hangs, it fails the test with the command's
// goroutines, kills it, and returns false.
func (e *runscEnv) waitAfterFault(cli *exec.Cmd, args []string) bool {
	ended := make(chan struct{})
	go func() { cli.Wait(); close(ended) }()
	select {
	case <-ended:
		return true
	case <-time.After(20 * time.Second):
	}
	// Its goroutines, for the report.
	cli.Process.Signal(syscall.SIGQUIT)
	time.Sleep(time.Second)
	cli.Process.Kill()
	<-ended
	dump, _ := os.ReadFile(e.faultOut)
	e.t.Errorf("runsc %v hung after the fault:\n%s", args, dump)
	return false
}

// checkAfterFault checks state and delete --force of id after victim
// was killed; before and after are the states saved when the fault
// struck and once the command had ended.
func (e *runscEnv) checkAfterFault(id, victim string, before, after savedState) {
	t := e.t
	t.Helper()
	if _, ok := e.readFaultState(id); ok {
		// state answers, and a container that lost a process is
		// stopped (once the sandbox has noticed).
		var last result
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			last = e.exec("", "state", id)
			if strings.Contains(last.stderr, "panic") {
				t.Fatalf("state panicked: %s", last.stderr)
			}
			if victim == "cli" || strings.Contains(last.stdout, `"status": "stopped"`) || strings.Contains(last.stdout, `"status":"stopped"`) || last.code != 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("state after the %s was killed: %s %s", victim, last.stdout, last.stderr)
			}
		}
		if last.code != 0 && !strings.Contains(last.stderr, "does not exist") {
			t.Fatalf("state: exit %d: %s", last.code, last.stderr)
		}
	}
	if r := e.exec("", "delete", "--force", id); r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("delete --force: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
		t.Fatalf("state of %s left: %v", id, err)
	}
	for _, s := range []savedState{before, after} {
		for _, pid := range []int{s.Sandbox.PID, s.Gofer.PID, s.InitPID} {
			if pid > 0 {
				waitGone(t, pid)
			}
		}
		if s.Cgroup != nil {
			for _, dir := range s.Cgroup.Paths {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("cgroup %s left: %v", dir, err)
				}
			}
		}
	}
	if leaks := findLeaks(); len(leaks) > 0 {
		t.Fatalf("left after the fault: %s", strings.Join(slices.Compact(leaks), "\n"))
	}
}

// TestFsyncedDataSurvivesFaults writes and syncs a file into a
// write-through root (--overlay2=none: the writes go through the gofer
// to root.path), kills the sandbox, the gofer or the container's init,
// and checks that the file is on the host.
func TestFsyncedDataSurvivesFaults(t *testing.T) {
	e := newEnv(t, "--overlay2=none")
	for _, victim := range []string{"sandbox", "gofer", "init"} {
		t.Run(victim, func(t *testing.T) {
			defer e.sub(t)()
			spec := testSpec("sleep", "100000")
			spec.Root.Readonly = false
			b := newBundle(t, spec)
			id := "durable-" + victim
			e.must("run", "-d", "--bundle", b.dir, id)
			e.must("exec", id, "sh", "-c", "echo durable > /written && dd if=/dev/zero of=/big bs=64k count=16 conv=fsync 2>/dev/null && sync")
			s, _ := e.readFaultState(id)
			pid := map[string]int{"sandbox": s.Sandbox.PID, "gofer": s.Gofer.PID, "init": s.InitPID}[victim]
			unix.Kill(pid, unix.SIGKILL)
			waitGone(t, pid)
			if got, err := os.ReadFile(filepath.Join(b.rootfs, "written")); err != nil || string(got) != "durable\n" {
				t.Errorf("after the %s was killed the host has %q, %v", victim, got, err)
			}
			if fi, err := os.Stat(filepath.Join(b.rootfs, "big")); err != nil || fi.Size() != 1<<20 {
				t.Errorf("after the %s was killed the host's /big: %v %v", victim, fi, err)
			}
			e.must("delete", "--force", id)
		})
	}
}

// soakCycles is how many create/start/exec/kill/delete cycles TestSoak
// runs: RUNSC_SOAK_CYCLES (make soak sets 1000), 20 by default.
func soakCycles() int {
	if n, err := strconv.Atoi(os.Getenv("RUNSC_SOAK_CYCLES")); err == nil && n > 0 {
		return n
	}
	return 20
}

// soakCounts are what must not grow over a soak: runsc processes, host
// mounts, this process's descriptors, state entries under --root and
// cgroups under runsc's parent cgroups.
func soakCounts(t *testing.T, root string) map[string]int {
	t.Helper()
	count := func(dir string) int {
		ents, _ := os.ReadDir(dir)
		return len(ents)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	cgroups := 0
	for _, base := range []string{"/sys/fs/cgroup/memory/runsc", "/sys/fs/cgroup/pids/runsc", "/sys/fs/cgroup/unified/runsc", "/sys/fs/cgroup/runsc"} {
		filepath.WalkDir(base, func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				cgroups++
			}
			return nil
		})
	}
	return map[string]int{
		"runsc processes": len(findLeaks()),
		"host mounts":     strings.Count(string(mi), "\n"),
		"descriptors":     count("/proc/self/fd"),
		"state entries":   count(root),
		"cgroups":         cgroups,
	}
}

// TestSoak runs create, start, exec, kill and delete over and over and
// checks that nothing accumulates (see soakCounts).
func TestSoak(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sleep", "100000"))
	// One cycle first: the cgroup parents exist from then on.
	e.must("run", "-d", "--bundle", b.dir, "warmup")
	e.must("delete", "--force", "warmup")
	start := soakCounts(t, e.root)
	n := soakCycles()
	for i := range n {
		id := "soak" + strconv.Itoa(i)
		e.must("create", "--bundle", b.dir, id)
		e.must("start", id)
		e.must("exec", id, "true")
		e.must("kill", id, "KILL")
		e.must("wait", id)
		e.must("delete", id)
	}
	end := soakCounts(t, e.root)
	for k, v := range start {
		if end[k] > v {
			t.Errorf("%s: %d before %d cycles, %d after", k, v, n, end[k])
		}
	}
	t.Logf("%d cycles: %v", n, end)
}

// TestSandboxKilledWhileMounting kills the sandbox, many times over,
// right after create has forked the init, while the sandbox mounts the
// root: a thread of it may then wait on its own FUSE server (statfs of
// an overlay's lower layer) and never exit, holding the create's call
// and every sync(2) on the host, unless runsc aborts its FUSE
// connections.
func TestSandboxKilledWhileMounting(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sleep", "100000"))
	n := 15
	if v, err := strconv.Atoi(os.Getenv("RUNSC_MOUNT_KILLS")); err == nil && v > 0 {
		n = v
	}
	for i := range n {
		id := "mountkill" + strconv.Itoa(i)
		cli := e.stoppedAt(faultpoint.CreateInit, "create", "--bundle", b.dir, id)
		before, _ := e.readFaultState(id)
		unix.Kill(before.Sandbox.PID, unix.SIGKILL)
		cli.Process.Signal(syscall.SIGCONT)
		if !e.waitAfterFault(cli, []string{"create", id}) {
			t.Fatalf("round %d", i)
		}
		after, _ := e.readFaultState(id)
		e.checkAfterFault(id, "sandbox", before, after)
	}
}
