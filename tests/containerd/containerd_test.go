package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/internal/testhelp"
)

// shimBinary is the runc v2 shim containerd starts for io.containerd.runc.v2.
const shimBinary = "containerd-shim-runc-v2"

// shimRunDir is where the runc v2 shim keeps its sockets (s), ctr its
// fifos (fifo) and the runtime its state (runc/<namespace>), whatever
// containerd's state dir.
const shimRunDir = "/run/containerd"

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
	stepTimeout         time.Duration
	// sock is containerd's gRPC socket, given to every ctr.
	sock string
	// daemon is the containerd process (or unshare, which execs it);
	// events is a `ctr events` recording every event of the run.
	daemon, events *exec.Cmd
	daemonDone     chan struct{}
	// netns says how containerd was isolated from the host network.
	netns string
	seq   atomic.Int64
}

// setup makes the run's directory, copies the runtime, starts containerd
// and an event recorder, and imports the busybox image. On error, the
// returned environment (if any) still needs a teardown.
func setup(runtime string, stepTimeout time.Duration) (*ctrEnv, error) {
	src, err := filepath.Abs(runtime)
	if err != nil {
		return nil, err
	}
	if src, err = filepath.EvalSymlinks(src); err != nil {
		return nil, fmt.Errorf("runtime %s: %v", runtime, err)
	}
	dir, err := os.MkdirTemp("", "containerd-e2e-")
	if err != nil {
		return nil, err
	}
	e := &ctrEnv{
		dir:         dir,
		ns:          fmt.Sprintf("runsc-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6),
		runtimeSrc:  src,
		stepTimeout: stepTimeout,
		sock:        filepath.Join(dir, "containerd.sock"),
	}
	for _, d := range []string{"bin", "image", "out", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return e, err
		}
	}
	e.runtime = filepath.Join(dir, "bin", filepath.Base(src))
	if out, err := exec.Command("cp", src, e.runtime).CombinedOutput(); err != nil {
		return e, fmt.Errorf("copying the runtime: %v: %s", err, out)
	}
	help, _ := exec.Command(e.runtime, "--help").CombinedOutput()
	e.runsc = strings.Contains(filepath.Base(src), "runsc") || strings.Contains(string(help), "gofer")

	if err := e.startDaemon(); err != nil {
		return e, err
	}
	logf("run directory %s; containerd namespace %s; runtime %s (a private copy of %s, so that only this run's runtime processes carry its path); runtime state %s; containerd %s",
		dir, e.ns, e.runtime, src, e.stateDir(), e.netns)
	if err := e.startEvents(); err != nil {
		return e, err
	}
	archive := filepath.Join(dir, "image", "busybox-oci.tar")
	digest, err := buildImage(filepath.Join(dir, "image", "rootfs"), archive)
	if err != nil {
		return e, fmt.Errorf("building the busybox OCI archive: %v", err)
	}
	r, err := e.ctr(invocation{step: "import busybox image", args: []string{"images", "import", "--base-name", "localhost/busybox", archive}, timeout: 2 * stepTimeout})
	if err != nil {
		return e, err
	}
	if r.code != 0 {
		return e, fmt.Errorf("ctr images import: exit %d: %s", r.code, r.stderr)
	}
	r, err = e.ctr(invocation{step: "list images", args: []string{"images", "ls", "-q"}})
	if err != nil {
		return e, err
	}
	if !containsLine(r.stdout, imageRef) {
		return e, fmt.Errorf("ctr images ls -q after the import: %q, want %s", r.stdout, imageRef)
	}
	logf("imported %s (manifest %s) from an OCI archive of a busybox rootfs (scripts/mkrootfs.sh); `ctr images ls -q` lists it", imageRef, digest)
	return e, nil
}

// stateDir is where the shim has the runtime keep its state (--root).
func (e *ctrEnv) stateDir() string { return filepath.Join(shimRunDir, "runc", e.ns) }

// containerdLog is the private containerd's log.
func (e *ctrEnv) containerdLog() string { return filepath.Join(e.dir, "logs", "containerd.log") }

// eventsLog is where `ctr events` records the run's events.
func (e *ctrEnv) eventsLog() string { return filepath.Join(e.dir, "logs", "events.log") }

// startDaemon writes containerd's configuration and starts it, in a
// private network namespace when unshare(1) is there, then waits (bounded)
// until it answers on its socket.
func (e *ctrEnv) startDaemon() error {
	// Only the plugins the tests use: no CRI (it would want CNI), no
	// /opt/containerd, no snapshotters but overlayfs and native, no
	// tracing. runtime.v1.linux stays: the tasks service needs it.
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[ttrpc]
  address = %q
`, filepath.Join(e.dir, "root"), filepath.Join(e.dir, "state"), e.sock, e.sock+".ttrpc")
	confPath := filepath.Join(e.dir, "config.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	args := []string{"containerd", "--config", confPath, "--log-level", "info"}
	e.netns = "in the host's network namespace (no unshare(1))"
	if unshare, err := exec.LookPath("unshare"); err == nil {
		// unshare execs containerd: the child is containerd itself.
		args = append([]string{unshare, "--net"}, args...)
		e.netns = "in a private network namespace (unshare --net)"
	}
	logFile, err := os.Create(e.containerdLog())
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting containerd: %v", err)
	}
	e.daemon = cmd
	e.daemonDone = make(chan struct{})
	go func() { cmd.Wait(); close(e.daemonDone) }()

	start := time.Now()
	timeout := 2 * e.stepTimeout
	for deadline := start.Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-e.daemonDone:
			return fmt.Errorf("containerd exited at start-up (%v); its log:\n%s", cmd.ProcessState, tail(e.containerdLog(), 30))
		default:
		}
		if c, err := net.Dial("unix", e.sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not listen on %s within %v; its log:\n%s", e.sock, timeout, tail(e.containerdLog(), 30))
		}
	}
	r, err := e.ctr(invocation{step: "ctr version", args: []string{"version"}})
	if err != nil {
		return err
	}
	if r.code != 0 {
		return fmt.Errorf("ctr version: exit %d: %s", r.code, r.stderr)
	}
	logf("containerd (pid %d) answered after %v (not asserted): %s", cmd.Process.Pid, time.Since(start).Round(time.Millisecond),
		strings.Join(strings.Fields(r.stdout), " "))
	return nil
}

// stopDaemon stops containerd: SIGTERM, then SIGKILL to its process group
// if it has not exited within 10s.
func (e *ctrEnv) stopDaemon() error {
	if e.daemon == nil {
		return nil
	}
	e.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.daemonDone:
		return nil
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-e.daemon.Process.Pid, syscall.SIGKILL)
	<-e.daemonDone
	return fmt.Errorf("containerd ignored SIGTERM for 10s and was killed")
}

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
	return []string{"--address", e.sock, "--namespace", e.ns}
}

// invocation is one ctr command.
type invocation struct {
	// step names the command in logs and failures.
	step string
	args []string
	// stdin is the command's input; nil means /dev/null.
	stdin io.Reader
	// tty, when set, is the command's controlling terminal and its
	// stdin, stdout and stderr (a pty's replica side); the caller reads
	// the output from the other side.
	tty *os.File
	// timeout bounds the command; zero means the suite's step timeout.
	timeout time.Duration
}

// result is a finished ctr command.
type result struct {
	stdout, stderr string
	code           int
	dur            time.Duration
}

// errTimeout marks a ctr command killed at its timeout.
var errTimeout = errors.New("timed out")

// ctr runs one ctr command in its own process group, bounded by its
// timeout: on expiry the whole group is killed and an error wrapping
// errTimeout names the step. Output goes to files, not pipes, so that a
// process inheriting them cannot make the wait hang.
func (e *ctrEnv) ctr(inv invocation) (result, error) {
	timeout := inv.timeout
	if timeout == 0 {
		timeout = e.stepTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append(e.globalFlags(), inv.args...)...)
	base := filepath.Join(e.dir, "out", strconv.FormatInt(e.seq.Add(1), 10))
	var outF, errF *os.File
	if inv.tty != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inv.tty, inv.tty, inv.tty
		// A new session (so also a new process group) with the pty as
		// its controlling terminal.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	} else {
		var err error
		if outF, err = os.Create(base + ".stdout"); err != nil {
			return result{}, err
		}
		defer outF.Close()
		if errF, err = os.Create(base + ".stderr"); err != nil {
			return result{}, err
		}
		defer errF.Close()
		cmd.Stdout, cmd.Stderr = outF, errF
		cmd.Stdin = inv.stdin
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := result{dur: time.Since(start), code: -1}
	if outF != nil {
		out, _ := os.ReadFile(outF.Name())
		stderr, _ := os.ReadFile(errF.Name())
		r.stdout, r.stderr = string(out), string(stderr)
	}
	if ctx.Err() != nil {
		// Whatever ctr had started outside its group (the shim, the
		// runtime) is left to the test's cleanup and the suite's
		// teardown.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return r, fmt.Errorf("step %q: `ctr %s` %w after %v (its process group was killed); stderr: %s",
			inv.step, strings.Join(inv.args, " "), errTimeout, timeout, strings.TrimSpace(r.stderr))
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	case errors.As(err, &ee):
		return r, fmt.Errorf("step %q: `ctr %s` died: %v", inv.step, strings.Join(inv.args, " "), err)
	default:
		return r, fmt.Errorf("step %q: `ctr %s`: %v", inv.step, strings.Join(inv.args, " "), err)
	}
	return r, nil
}

// run runs ctr for a test: a timeout or a failure to run ctr fails the
// test; the command, its exit status and its duration are logged.
func run(t *testing.T, step string, args ...string) result {
	t.Helper()
	return runInv(t, invocation{step: step, args: args})
}

// runInv is run for a full invocation.
func runInv(t *testing.T, inv invocation) result {
	t.Helper()
	r, err := env.ctr(inv)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: `ctr %s` exited %d in %v", inv.step, strings.Join(inv.args, " "), r.code, r.dur.Round(time.Millisecond))
	return r
}

// mustRun runs ctr for a test, requires exit status 0 and returns its
// trimmed stdout.
func mustRun(t *testing.T, step string, args ...string) string {
	t.Helper()
	r := run(t, step, args...)
	if r.code != 0 {
		t.Fatalf("%s: `ctr %s` exited %d, want 0\nstdout: %s\nstderr: %s", step, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// runArgs is `ctr run` with the runtime under test as the runc binary,
// then args.
func runArgs(args ...string) []string {
	return append([]string{"run", "--runc-binary", env.runtime}, args...)
}

// ctrName returns a container name unique to the test, and removes its
// task and the container when the test ends.
func ctrName(t *testing.T, suffix string) string {
	t.Helper()
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")) + "-" + suffix
	t.Cleanup(func() {
		for _, args := range [][]string{{"task", "delete", "--force", name}, {"container", "delete", name}} {
			r, err := env.ctr(invocation{step: "cleanup " + name, args: args})
			if err != nil {
				t.Error(err)
			} else if r.code != 0 && !strings.Contains(r.stderr, "not found") {
				t.Logf("cleanup: ctr %s exited %d: %s", strings.Join(args, " "), r.code, r.stderr)
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
// the check.
func wantOutput(t *testing.T, what, got, want string) {
	t.Helper()
	got = strings.TrimSpace(got)
	if got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
	t.Logf("checked %s: %q", what, got)
}

// wantCode fails the test unless r exited with want, and logs the check.
func wantCode(t *testing.T, what string, r result, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("%s: exit status %d, want %d\nstdout: %s\nstderr: %s", what, r.code, want, r.stdout, r.stderr)
	}
	t.Logf("checked %s: exit status %d", what, r.code)
}

// waitFor polls cond until it holds or timeout passes, fails the test
// naming what it waited for, and logs what it checked.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	testhelp.WaitFor(t, what, timeout, cond)
	t.Logf("checked %s (after %v)", what, time.Since(start).Round(time.Millisecond))
}

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

// tail returns the last n lines of file path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// teardown removes every task, container and image of the run, stops
// containerd, checks that nothing is left behind, then cleans up whatever
// was left and removes the run's directory. It returns what was left.
func (e *ctrEnv) teardown() []string {
	var problems []string
	if e.daemon != nil {
		select {
		case <-e.daemonDone:
			problems = append(problems, fmt.Sprintf("containerd exited before the teardown (%v); its log ends:\n%s", e.daemon.ProcessState, tail(e.containerdLog(), 20)))
		default:
			problems = append(problems, e.removeAll()...)
		}
	}
	e.stopEvents()
	if err := e.stopDaemon(); err != nil {
		problems = append(problems, err.Error())
	}

	// Processes may take a moment to go once their tasks are deleted.
	var leaks []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		leaks = append(e.leakedProcesses(), e.leakedState()...)
		leaks = append(leaks, e.leakedMounts()...)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
	}
	problems = append(problems, leaks...)

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
		logf("teardown: no runtime, shim, containerd or ctr process, runtime state or mount left; removed %s and %s", e.stateDir(), e.dir)
	}
	return problems
}

// removeAll kills and deletes every task of the run's namespace, then
// deletes its containers and images, through containerd. It returns what
// failed.
func (e *ctrEnv) removeAll() []string {
	var problems []string
	do := func(args ...string) string {
		r, err := e.ctr(invocation{step: "teardown: ctr " + strings.Join(args, " "), args: args})
		if err != nil {
			problems = append(problems, err.Error())
		} else if r.code != 0 {
			problems = append(problems, fmt.Sprintf("teardown: ctr %s exited %d: %s", strings.Join(args, " "), r.code, r.stderr))
		}
		return r.stdout
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

// proc is a live (not zombie) process.
type proc struct {
	pid     int
	exe     string
	args    []string
	cmdline string
}

// processes lists live processes, but this one.
func processes() []proc {
	var ps []proc
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if !testhelp.Alive(pid) {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		ps = append(ps, proc{pid: pid, exe: exe, args: args, cmdline: strings.Join(args, " ")})
	}
	return ps
}

// isShimOfRun says whether p is a runc v2 shim of the run's namespace.
func (e *ctrEnv) isShimOfRun(p proc) bool {
	return filepath.Base(p.exe) == shimBinary && strings.Contains(p.cmdline, "-namespace "+e.ns+" ")
}

// isOfRun says whether p belongs to the run: the private runtime's
// processes, a shim of the run's namespace, or a containerd or ctr (or
// the unshare starting containerd) whose command line names the run's
// directory.
func (e *ctrEnv) isOfRun(p proc) bool {
	if p.exe == e.runtime || e.isShimOfRun(p) {
		return true
	}
	switch filepath.Base(p.exe) {
	case "containerd", "ctr", "unshare":
		return strings.Contains(p.cmdline, e.dir)
	}
	return false
}

// leakedProcesses lists the run's live processes.
func (e *ctrEnv) leakedProcesses() []string {
	var leaks []string
	for _, p := range processes() {
		if e.isOfRun(p) {
			leaks = append(leaks, fmt.Sprintf("process %d (%s): %s", p.pid, p.exe, p.cmdline))
		}
	}
	return leaks
}

// leakedState lists the entries of the runtime's state directory for the
// run's namespace.
func (e *ctrEnv) leakedState() []string {
	var leaks []string
	ents, _ := os.ReadDir(e.stateDir())
	for _, ent := range ents {
		leaks = append(leaks, "runtime state: "+filepath.Join(e.stateDir(), ent.Name()))
	}
	return leaks
}

// leakedMounts lists mounts of runsc's FUSE file system or under the
// run's directory.
func (e *ctrEnv) leakedMounts() []string {
	var leaks []string
	for _, m := range mounts() {
		if strings.Contains(m.line, "fuse.runsc") || strings.Contains(m.line, e.dir) {
			leaks = append(leaks, "mount: "+m.line)
		}
	}
	return leaks
}

// mount is a line of /proc/self/mountinfo.
type mount struct{ point, line string }

// mounts lists this mount namespace's mounts.
func mounts() []mount {
	var ms []mount
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			ms = append(ms, mount{point: unescapeMount(f[4]), line: line})
		}
	}
	return ms
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	return regexp.MustCompile(`\\[0-7]{3}`).ReplaceAllStringFunc(s, func(o string) string {
		n, _ := strconv.ParseUint(o[1:], 8, 8)
		return string(rune(n))
	})
}

// forceCleanup kills and removes what the run left (after the leak check
// has reported it): its shims, runtime, containerd and ctr processes, the
// runtime state of its namespace (and the directory itself) and mounts
// under its directory.
func (e *ctrEnv) forceCleanup() {
	// Shims first, so that none restarts or reaps anything meanwhile.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var left []proc
		for _, p := range processes() {
			if e.isOfRun(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			break
		}
		for _, p := range left {
			if e.isShimOfRun(p) {
				syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
		for _, p := range left {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	ents, _ := os.ReadDir(e.stateDir())
	for _, ent := range ents {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		exec.CommandContext(ctx, e.runtime, "--root", e.stateDir(), "delete", "--force", ent.Name()).Run()
		cancel()
		os.RemoveAll(filepath.Join(e.stateDir(), ent.Name()))
	}
	os.Remove(e.stateDir())
	var points []string
	for _, m := range mounts() {
		if strings.HasPrefix(m.point, e.dir) {
			points = append(points, m.point)
		}
	}
	// Deepest first.
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
