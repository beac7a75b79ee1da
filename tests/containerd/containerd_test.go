package containerd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/tests/internal/ctrdenv"
	"github.com/runsc/runsc/tests/internal/e2e"
)

// shimRunDir is where the shims keep their sockets (s), ctr its fifos
// (fifo) and the runtime its state (runc/<namespace> for the runc v2
// shim, runsc/<namespace> for runsc's), whatever containerd's state dir.
const shimRunDir = "/run/containerd"

// shimMode is one way ctr runs a container with the runtime under test:
// through the runc v2 shim with the runtime as its runc binary, or
// through runsc's own shim.
type shimMode struct {
	// name names the mode's subtests.
	name string
	// shim is the base name of the shim binary containerd starts.
	shim string
	// flags are the `ctr run` flags that select the mode.
	flags []string
	// stateDir is the runtime's state directory (--root) the shim
	// uses for the run's namespace.
	stateDir string
	// skip, when set, makes the mode's subtests skip with it.
	skip string
}

// ctrEnv is the run's private containerd: its configuration, root, state
// and sockets live under dir; its containers live in namespace ns.
type ctrEnv struct {
	dir string
	// ns is the containerd namespace of the run: the shim's paths under
	// /run/containerd are per namespace, not per containerd.
	ns string
	// runtimeSrc is the runtime named by the environment; runtime is the
	// private copy given to ctr (same base name), so that processes whose
	// /proc/PID/exe is runtime are this run's, even while other suites
	// run the same binary.
	runtimeSrc, runtime string
	runsc               bool
	// modes are the shims the tests run each scenario through: the runc
	// v2 shim (--runc-binary) and runsc's shim (--runtime
	// io.containerd.runsc.v1, found on containerd's PATH in bin/, next
	// to the private runsc copy it runs by default).
	modes []*shimMode
	// sock is containerd's gRPC socket, given to every ctr.
	sock string
	// daemon is the private containerd; events is a `ctr events`
	// recording every event of the run.
	daemon *ctrdenv.Containerd
	events *exec.Cmd
	// runner runs ctr with globalFlags, bounded by the step timeout.
	runner *e2e.Runner
}

// runscShim is the base name of runsc's containerd shim.
const runscShim = "containerd-shim-runsc-v1"

// setup makes the run's directory, copies the runtime, starts containerd
// and an event recorder, and imports the busybox image. On error, the
// returned environment (if any) still needs a teardown.
func setup(runtime string, stepTimeout time.Duration) (*ctrEnv, error) {
	src, err := e2e.Resolve(runtime)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "containerd-e2e-")
	if err != nil {
		return nil, err
	}
	e := &ctrEnv{
		dir:        dir,
		ns:         fmt.Sprintf("runsc-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6),
		runtimeSrc: src,
	}
	e.runner = &e2e.Runner{Program: "ctr", Flags: e.globalFlags, OutDir: filepath.Join(dir, "out"), StepTimeout: stepTimeout}
	for _, d := range []string{"bin", "image", "out", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return e, err
		}
	}
	e.runtime = filepath.Join(dir, "bin", filepath.Base(src))
	if err := e2e.Copy(src, e.runtime); err != nil {
		return e, fmt.Errorf("copying the runtime: %v", err)
	}
	e.runsc, _ = e2e.Probe(e.runtime, src)
	runcMode := &shimMode{name: "runc-shim", shim: "containerd-shim-runc-v2", flags: []string{"--runc-binary", e.runtime},
		stateDir: filepath.Join(shimRunDir, "runc", e.ns)}
	runscMode := &shimMode{name: "runsc-shim", shim: runscShim, flags: []string{"--runtime", "io.containerd.runsc.v1"},
		stateDir: filepath.Join(shimRunDir, "runsc", e.ns)}
	if _, err := exec.LookPath(runcMode.shim); err != nil {
		runcMode.skip = runcMode.shim + " not found: install containerd (scripts/deps.sh)"
	}
	shimSrc := filepath.Join(filepath.Dir(src), runscShim)
	switch {
	case !e.runsc:
		runscMode.skip = "runsc's shim runs runsc; the runtime under test is " + src
	default:
		if _, err := os.Stat(shimSrc); err != nil {
			runscMode.skip = fmt.Sprintf("%s is not next to %s: run `make build`", runscShim, src)
			break
		}
		// A private copy next to the private runsc, which it runs by
		// default; containerd finds it on its PATH.
		if err := e2e.Copy(shimSrc, filepath.Join(dir, "bin", runscShim)); err != nil {
			return e, fmt.Errorf("copying the shim: %v", err)
		}
	}
	e.modes = []*shimMode{runcMode, runscMode}

	d, err := ctrdenv.Start(ctrdenv.Config{Dir: dir, Path: []string{filepath.Join(dir, "bin")}, Timeout: 2 * stepTimeout})
	if err != nil {
		return e, err
	}
	e.daemon, e.sock = d, d.Socket
	logf("containerd (pid %d) %s answered: %s", d.Pid(), d.Netns, d.Version)
	logf("run directory %s; containerd namespace %s; runtime %s (a private copy of %s, so that only this run's runtime processes carry its path); containerd's PATH starts with %s",
		dir, e.ns, e.runtime, src, filepath.Join(dir, "bin"))
	for _, m := range e.modes {
		if m.skip != "" {
			logf("mode %s (ctr run %s) skips: %s", m.name, strings.Join(m.flags, " "), m.skip)
		} else {
			logf("mode %s: ctr run %s, shim %s, runtime state %s", m.name, strings.Join(m.flags, " "), m.shim, m.stateDir)
		}
	}
	if err := e.startEvents(); err != nil {
		return e, err
	}
	archive := filepath.Join(dir, "image", "busybox-oci.tar")
	rootfs := filepath.Join(dir, "image", "rootfs")
	if err := e2e.MakeRootfs(rootfs); err != nil {
		return e, err
	}
	digest, err := ctrdenv.WriteImage(archive, ctrdenv.Image{Rootfs: rootfs, Cmd: []string{"sh"}})
	if err != nil {
		return e, fmt.Errorf("building the busybox OCI archive: %v", err)
	}
	r, err := e.ctr(invocation{Step: "import busybox image", Args: []string{"images", "import", "--base-name", "localhost/busybox", archive}, Timeout: 2 * stepTimeout})
	if err != nil {
		return e, err
	}
	if r.Code != 0 {
		return e, fmt.Errorf("ctr images import: exit %d: %s", r.Code, r.Stderr)
	}
	r, err = e.ctr(invocation{Step: "list images", Args: []string{"images", "ls", "-q"}})
	if err != nil {
		return e, err
	}
	if !containsLine(r.Stdout, imageRef) {
		return e, fmt.Errorf("ctr images ls -q after the import: %q, want %s", r.Stdout, imageRef)
	}
	logf("imported %s (manifest %s) from an OCI archive of a busybox rootfs (scripts/mkrootfs.sh); `ctr images ls -q` lists it", imageRef, digest)
	return e, nil
}

// containerdLog is the private containerd's log.
func (e *ctrEnv) containerdLog() string { return filepath.Join(e.dir, "containerd.log") }

// eventsLog is where `ctr events` records the run's events.
func (e *ctrEnv) eventsLog() string { return filepath.Join(e.dir, "logs", "events.log") }

// startEvents starts `ctr events`, which records every event of the
// namespace (task exits with their status among them) in eventsLog.
func (e *ctrEnv) startEvents() error {
	f, err := os.Create(e.eventsLog())
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("ctr", append(e.globalFlags(), "events")...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting ctr events: %v", err)
	}
	e.events = cmd
	return nil
}

// stopEvents ends the event recorder.
func (e *ctrEnv) stopEvents() {
	if e.events == nil {
		return
	}
	syscall.Kill(-e.events.Process.Pid, syscall.SIGKILL)
	e.events.Wait()
	e.events = nil
}

// globalFlags are given to every ctr command.
func (e *ctrEnv) globalFlags() []string {
	return e.daemon.CtrArgs(e.ns)
}

// invocation is one ctr command; result a finished one.
type (
	invocation = e2e.Invocation
	result     = e2e.Result
)

// ctr runs one ctr command in its own process group, bounded by its
// timeout (see e2e.Runner.Run); whatever ctr had started outside its
// group (the shim, the runtime) is left to the test's cleanup and the
// suite's teardown.
func (e *ctrEnv) ctr(inv invocation) (result, error) { return e.runner.Run(inv) }

// run runs ctr for a test: a timeout or a failure to run ctr fails the
// test; the command, its exit status and its duration are logged.
func run(t *testing.T, step string, args ...string) result {
	t.Helper()
	return env.runner.Test(t, invocation{Step: step, Args: args})
}

// mustRun runs ctr for a test, requires exit status 0 and returns its
// trimmed stdout.
func mustRun(t *testing.T, step string, args ...string) string {
	t.Helper()
	return env.runner.Must(t, step, args...)
}

// runArgs is `ctr run` with the flags of mode m, then args.
func runArgs(m *shimMode, args ...string) []string {
	return append(append([]string{"run"}, m.flags...), args...)
}

// forEachShim runs f as a subtest per shim mode (runc-shim, runsc-shim);
// a mode that cannot run here skips with its reason.
func forEachShim(t *testing.T, f func(t *testing.T, m *shimMode)) {
	t.Helper()
	requireEnv(t)
	for _, m := range env.modes {
		t.Run(m.name, func(t *testing.T) {
			if m.skip != "" {
				t.Skip(m.skip)
			}
			f(t, m)
		})
	}
}

// ctrName returns a container name unique to the test, and removes its
// task and the container when the test ends.
func ctrName(t *testing.T, suffix string) string {
	t.Helper()
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")) + "-" + suffix
	t.Cleanup(func() {
		for _, args := range [][]string{{"task", "delete", "--force", name}, {"container", "delete", name}} {
			r, err := env.ctr(invocation{Step: "cleanup " + name, Args: args})
			if err != nil {
				t.Error(err)
			} else if r.Code != 0 && !strings.Contains(r.Stderr, "not found") {
				t.Logf("cleanup: ctr %s exited %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
			}
		}
	})
	return name
}

// containsLine says whether out has a line equal to want.
func containsLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// wantOutput fails the test unless got (trimmed) equals want, and logs
// the check; wantCode the same for an exit status; waitFor polls cond
// until it holds or timeout passes and logs the check.
var (
	wantOutput = e2e.WantOutput
	wantCode   = e2e.WantCode
	waitFor    = e2e.WaitFor
)

// taskInfo is a row of `ctr task ls`.
type taskInfo struct {
	pid    int
	status string
}

// tasks returns the rows of `ctr task ls` by task name.
func tasks(t *testing.T) map[string]taskInfo {
	t.Helper()
	out := mustRun(t, "task ls", "task", "ls")
	m := map[string]taskInfo{}
	for _, l := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("ctr task ls: bad pid in %q", l)
		}
		m[f[0]] = taskInfo{pid: pid, status: f[2]}
	}
	return m
}

// task returns the `ctr task ls` row of task name, failing the test if
// there is none.
func task(t *testing.T, name string) taskInfo {
	t.Helper()
	ti, ok := tasks(t)[name]
	if !ok {
		t.Fatalf("ctr task ls does not list %s", name)
	}
	return ti
}

// exitEventRE matches a /tasks/exit event of `ctr events`; exit_status is
// left out of the JSON when it is 0.
var exitEventRE = regexp.MustCompile(`/tasks/exit (\{.*\})`)

// exitStatus returns the exit status of process id (the task's own
// process when id is the container's name, else an exec id) of container
// name, from the run's recorded /tasks/exit events, or false if it has not
// exited yet.
func (e *ctrEnv) exitStatus(name, id string) (int, bool) {
	data, _ := os.ReadFile(e.eventsLog())
	for _, m := range exitEventRE.FindAllStringSubmatch(string(data), -1) {
		ev := m[1]
		if !strings.Contains(ev, `"container_id":"`+name+`"`) || !strings.Contains(ev, `"id":"`+id+`"`) {
			continue
		}
		if s := regexp.MustCompile(`"exit_status":(\d+)`).FindStringSubmatch(ev); s != nil {
			n, _ := strconv.Atoi(s[1])
			return n, true
		}
		return 0, true
	}
	return 0, false
}

// wantExitEvent waits for the /tasks/exit event of process id of
// container name and fails the test unless its status is want.
func wantExitEvent(t *testing.T, name, id string, want int) {
	t.Helper()
	var got int
	waitFor(t, fmt.Sprintf("the /tasks/exit event of %s/%s", name, id), 20*time.Second, func() bool {
		var ok bool
		got, ok = env.exitStatus(name, id)
		return ok
	})
	if got != want {
		t.Fatalf("/tasks/exit event of %s/%s: exit_status %d, want %d", name, id, got, want)
	}
	t.Logf("checked the /tasks/exit event of %s/%s reports exit status %d", name, id, got)
}

// teardown removes every task, container and image of the run, stops
// containerd, checks that nothing is left behind, then cleans up whatever
// was left and removes the run's directory. It returns what was left.
func (e *ctrEnv) teardown() []string {
	var problems []string
	if e.daemon != nil {
		select {
		case <-e.daemon.Done():
			problems = append(problems, fmt.Sprintf("containerd exited before the teardown (%v); its log ends:\n%s", e.daemon.ProcessState(), e2e.Tail(e.containerdLog(), 20)))
		default:
			problems = append(problems, e.removeAll()...)
		}
	}
	e.stopEvents()
	if err := e.daemon.Stop(); err != nil {
		problems = append(problems, err.Error())
	}

	// Processes may take a moment to go once their tasks are deleted.
	problems = append(problems, e2e.PollLeaks(10*time.Second, func() []string {
		leaks := append(e2e.ProcessLeaks(e.isOfRun), e.leakedState()...)
		return append(leaks, e.leakedMounts()...)
	})...)

	var err error
	for i := 0; i < 5; i++ {
		e.forceCleanup()
		if err = os.RemoveAll(e.dir); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		problems = append(problems, fmt.Sprintf("removing %s: %v", e.dir, err))
	}
	if len(problems) == 0 {
		logf("teardown: no runtime, shim, containerd or ctr process, runtime state or mount left; removed %s and %s", strings.Join(e.stateDirs(), ", "), e.dir)
	}
	return problems
}

// stateDirs are the runtime state directories of the run's namespace,
// one per shim mode.
func (e *ctrEnv) stateDirs() []string {
	var dirs []string
	for _, m := range e.modes {
		dirs = append(dirs, m.stateDir)
	}
	return dirs
}

// removeAll kills and deletes every task of the run's namespace, then
// deletes its containers and images, through containerd. It returns what
// failed.
func (e *ctrEnv) removeAll() []string {
	var problems []string
	do := func(args ...string) string {
		r, err := e.ctr(invocation{Step: "teardown: ctr " + strings.Join(args, " "), Args: args})
		if err != nil {
			problems = append(problems, err.Error())
		} else if r.Code != 0 {
			problems = append(problems, fmt.Sprintf("teardown: ctr %s exited %d: %s", strings.Join(args, " "), r.Code, r.Stderr))
		}
		return r.Stdout
	}
	taskList := strings.Fields(do("task", "ls", "-q"))
	for _, id := range taskList {
		do("task", "delete", "--force", id)
	}
	containers := strings.Fields(do("container", "ls", "-q"))
	for _, id := range containers {
		do("container", "delete", id)
	}
	if images := strings.Fields(do("images", "ls", "-q")); len(images) > 0 {
		do(append([]string{"images", "rm"}, images...)...)
	}
	logf("teardown: %d tasks and %d containers were left by the tests and removed", len(taskList), len(containers))
	return problems
}

// isShimOfRun says whether p is a shim of the run's containerd.
func (e *ctrEnv) isShimOfRun(p e2e.Proc) bool {
	return ctrdenv.IsShimOf(p, e.sock)
}

// isOfRun says whether p belongs to the run: the private runtime's
// processes, a shim of the run's containerd, or a containerd or ctr (or
// the unshare starting containerd) whose command line names the run's
// directory.
func (e *ctrEnv) isOfRun(p e2e.Proc) bool {
	if e2e.IsRuntime(p, e.runtime) || e.isShimOfRun(p) {
		return true
	}
	switch filepath.Base(p.Exe) {
	case "containerd", "ctr", "unshare":
		return strings.Contains(p.Cmdline, e.dir)
	}
	return false
}

// leakedState lists the entries of the runtime's state directories for
// the run's namespace.
func (e *ctrEnv) leakedState() []string {
	var leaks []string
	for _, dir := range e.stateDirs() {
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			leaks = append(leaks, "runtime state: "+filepath.Join(dir, ent.Name()))
		}
	}
	return leaks
}

// leakedMounts lists mounts of runsc's FUSE file system or under the
// run's directory.
func (e *ctrEnv) leakedMounts() []string {
	return e2e.MountLeaks(func(m e2e.Mount) bool {
		return strings.Contains(m.Line, "fuse.runsc") || strings.Contains(m.Line, e.dir)
	})
}

// forceCleanup kills and removes what the run left (after the leak check
// has reported it): its shims, runtime, containerd and ctr processes, the
// runtime state of its namespace (and the directories themselves) and
// mounts under its directory.
func (e *ctrEnv) forceCleanup() {
	// Shims first, so that none restarts or reaps anything meanwhile.
	e2e.KillAll(e.isOfRun, e.isShimOfRun)
	for _, dir := range e.stateDirs() {
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			exec.CommandContext(ctx, e.runtime, "--root", dir, "delete", "--force", ent.Name()).Run()
			cancel()
			os.RemoveAll(filepath.Join(dir, ent.Name()))
		}
		os.Remove(dir)
	}
	e2e.UnmountUnder(e.dir)
}
