package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// podmanEnv is the run's private podman set-up: everything podman
// writes (storage, state, locks, events, configuration) lives under dir.
type podmanEnv struct {
	dir string
	// runtimeSrc is the runtime named by the environment; runtime is the
	// private copy podman runs (same base name, so podman treats it the
	// same), so that processes whose /proc/PID/exe is runtime are this
	// run's, even while other suites run the same binary.
	runtimeSrc, runtime string
	// stateDir is where the runtime keeps container state: podman passes
	// no --root to a runtime given by path, so it is the runtime's
	// default; stateDirHow says how it was found.
	stateDir, stateDirHow string
	runsc                 bool
	driver                string
	stepTimeout           time.Duration
	// environ is podman's environment: the caller's, pointed at files
	// under dir.
	environ []string
	seq     atomic.Int64
}

// configure writes the private configuration under e.dir, copies the
// runtime and finds its state directory.
func (e *podmanEnv) configure() error {
	for _, d := range []string{"bin", "image", "out", "tmp", "vartmp", "networks", "xdg/config", "xdg/data", "xdg/run"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o700); err != nil {
			return err
		}
	}
	e.runtime = filepath.Join(e.dir, "bin", filepath.Base(e.runtimeSrc))
	if out, err := exec.Command("cp", e.runtimeSrc, e.runtime).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the runtime: %v: %s", err, out)
	}
	help, _ := exec.Command(e.runtime, "--help").CombinedOutput()
	e.runsc = strings.Contains(filepath.Base(e.runtimeSrc), "runsc") || strings.Contains(string(help), "gofer")
	e.stateDir, e.stateDirHow = defaultStateDir(filepath.Base(e.runtimeSrc), string(help))

	// containers.conf: the only one podman reads when CONTAINERS_CONF is
	// set. default_ulimits also covers pod infra containers (which take
	// no --ulimit): podman's default nofile exceeds this machine's hard
	// limit and root here lacks CAP_SYS_RESOURCE. lock_type=file keeps
	// podman's locks out of the shared /dev/shm/libpod_lock.
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:4096", "nproc=4096:4096"]

[engine]
tmp_dir = %[1]q
events_logger = "file"
events_logfile_path = %[2]q
lock_type = "file"
image_copy_tmp_dir = %[3]q
volume_path = %[4]q
static_dir = %[5]q

[network]
network_config_dir = %[6]q
`, filepath.Join(e.dir, "tmp"), e.eventsLog(), filepath.Join(e.dir, "vartmp"),
		filepath.Join(e.dir, "root", "volumes"), filepath.Join(e.dir, "root", "libpod"), filepath.Join(e.dir, "networks"))
	storage := fmt.Sprintf("[storage]\ndriver = %q\ngraphroot = %q\nrunroot = %q\n",
		e.driver, filepath.Join(e.dir, "root"), filepath.Join(e.dir, "runroot"))
	files := map[string]string{
		"containers.conf": conf,
		"storage.conf":    storage,
		"registries.conf": "unqualified-search-registries = []\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	e.environ = append(os.Environ(),
		"CONTAINERS_CONF="+filepath.Join(e.dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(e.dir, "storage.conf"),
		"REGISTRIES_CONFIG_PATH="+filepath.Join(e.dir, "registries.conf"),
		"XDG_CONFIG_HOME="+filepath.Join(e.dir, "xdg/config"),
		"XDG_DATA_HOME="+filepath.Join(e.dir, "xdg/data"),
		"XDG_RUNTIME_DIR="+filepath.Join(e.dir, "xdg/run"),
		"TMPDIR="+filepath.Join(e.dir, "vartmp"),
	)
	return nil
}

// defaultStateDir finds the runtime's default --root from its --help
// (runc: `(default: "/run/runc")`, runsc: `(default "/var/run/runsc")`),
// else guesses /run/NAME.
func defaultStateDir(name, help string) (dir, how string) {
	if loc := regexp.MustCompile(`-root\b`).FindStringIndex(help); loc != nil {
		rest := help[loc[1]:]
		// The default is on the flag's line or the next one.
		lines := strings.SplitN(rest, "\n", 3)
		if len(lines) > 2 {
			rest = lines[0] + "\n" + lines[1]
		}
		if m := regexp.MustCompile(`\(default:? "([^"]+)"\)`).FindStringSubmatch(rest); m != nil {
			return m[1], "the runtime's default --root, from its --help; podman passes no --root to a runtime given by path"
		}
	}
	return "/run/" + name, "guessed: the runtime's --help shows no default --root"
}

// isRunsc says whether the runtime under test is runsc.
func (e *podmanEnv) isRunsc() bool { return e.runsc }

// eventsLog is podman's events file (file events backend).
func (e *podmanEnv) eventsLog() string { return filepath.Join(e.dir, "tmp", "events.log") }

// globalFlags are given to every podman command.
func (e *podmanEnv) globalFlags() []string {
	return []string{
		"--root", filepath.Join(e.dir, "root"),
		"--runroot", filepath.Join(e.dir, "runroot"),
		"--tmpdir", filepath.Join(e.dir, "tmp"),
		"--storage-driver", e.driver,
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		"--runtime", e.runtime,
	}
}

// containerFlags are given to every `podman create` and `podman run`:
// no network (nothing to reach offline) and limits within this
// machine's hard limits.
var containerFlags = []string{"--network", "none", "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=4096:4096"}

// invocation is one podman command.
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

// result is a finished podman command.
type result struct {
	stdout, stderr string
	code           int
	dur            time.Duration
}

// errTimeout marks a podman command killed at its timeout.
var errTimeout = errors.New("timed out")

// podman runs one podman command in its own process group, bounded by
// its timeout: on expiry the whole group is killed and an error wrapping
// errTimeout names the step. Output goes to files, not pipes, so that
// a daemon inheriting them cannot make the wait hang.
func (e *podmanEnv) podman(inv invocation) (result, error) {
	timeout := inv.timeout
	if timeout == 0 {
		timeout = e.stepTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append(e.globalFlags(), inv.args...)
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Env = e.environ
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
		// Whatever podman started outside its group is left to the
		// suite's teardown.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return r, fmt.Errorf("step %q: `podman %s` %w after %v (its process group was killed); stderr: %s",
			inv.step, strings.Join(inv.args, " "), errTimeout, timeout, strings.TrimSpace(r.stderr))
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	case errors.As(err, &ee):
		return r, fmt.Errorf("step %q: `podman %s` died: %v", inv.step, strings.Join(inv.args, " "), err)
	default:
		return r, fmt.Errorf("step %q: `podman %s`: %v", inv.step, strings.Join(inv.args, " "), err)
	}
	return r, nil
}

// pm runs podman for a test: a timeout or a failure to run podman fails
// the test; the command, its exit status and its duration are logged.
func pm(t *testing.T, step string, args ...string) result {
	t.Helper()
	return pmInv(t, invocation{step: step, args: args})
}

// pmInv is pm for a full invocation.
func pmInv(t *testing.T, inv invocation) result {
	t.Helper()
	r, err := env.podman(inv)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: `podman %s` exited %d in %v", inv.step, strings.Join(inv.args, " "), r.code, r.dur.Round(time.Millisecond))
	return r
}

// mustPM runs podman for a test, requires exit status 0 and returns its
// trimmed stdout.
func mustPM(t *testing.T, step string, args ...string) string {
	t.Helper()
	r := pm(t, step, args...)
	if r.code != 0 {
		t.Fatalf("%s: `podman %s` exited %d, want 0\nstdout: %s\nstderr: %s", step, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// runArgs is `podman run` with containerFlags, then args.
func runArgs(args ...string) []string {
	return append(append([]string{"run"}, containerFlags...), args...)
}

// ctrName returns a container (or pod) name unique to the test, and
// removes it (and its pod's containers) when the test ends.
func ctrName(t *testing.T, suffix string) string {
	t.Helper()
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")) + "-" + suffix
	t.Cleanup(func() {
		r, err := env.podman(invocation{step: "cleanup " + name, args: []string{"rm", "--force", "--ignore", "--time", "0", name}})
		if err != nil {
			t.Error(err)
		} else if r.code != 0 {
			t.Logf("cleanup: podman rm %s exited %d: %s", name, r.code, r.stderr)
		}
	})
	return name
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

// inspect returns a container's field by Go template, e.g.
// "{{.State.Status}}".
func inspect(t *testing.T, name, format string) string {
	t.Helper()
	return mustPM(t, "inspect "+name+" "+format, "inspect", "--format", format, name)
}

// waitFor polls cond until it holds or timeout passes, fails the test
// naming what it waited for, and logs what it checked.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	testhelp.WaitFor(t, what, timeout, cond)
	t.Logf("checked %s (after %v)", what, time.Since(start).Round(time.Millisecond))
}

// teardown removes every container and pod of the run, checks that
// nothing is left behind, then removes the private storage and cleans up
// whatever was left. It returns what was left.
func (e *podmanEnv) teardown() []string {
	var problems []string
	for _, args := range [][]string{
		{"pod", "rm", "--all", "--force", "--time", "0"},
		{"rm", "--all", "--force", "--time", "0"},
	} {
		r, err := e.podman(invocation{step: "teardown: podman " + strings.Join(args, " "), args: args})
		if err != nil {
			problems = append(problems, err.Error())
		} else if r.code != 0 {
			problems = append(problems, fmt.Sprintf("teardown: podman %s exited %d: %s", strings.Join(args, " "), r.code, r.stderr))
		}
	}
	ids := e.containerIDs()
	logf("teardown: %d containers were created in this run; runtime state dir %s (%s)", len(ids), e.stateDir, e.stateDirHow)

	// Processes may take a moment to go once their containers are removed.
	var leaks []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		leaks = append(e.leakedProcesses(), e.leakedState(ids)...)
		leaks = append(leaks, e.leakedMounts(filepath.Join(e.dir, "root", e.driver))...)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
	}
	problems = append(problems, leaks...)

	// Remove the private storage; podman unmounts its storage driver.
	if r, err := e.podman(invocation{step: "teardown: podman system reset", args: []string{"system", "reset", "--force"}}); err != nil {
		problems = append(problems, err.Error())
	} else if r.code != 0 {
		problems = append(problems, fmt.Sprintf("teardown: podman system reset exited %d: %s", r.code, r.stderr))
	}
	problems = append(problems, e.leakedMounts("")...)

	// A late exit command may still write under dir: retry.
	var err error
	for i := 0; i < 5; i++ {
		e.forceCleanup(ids)
		if err = os.RemoveAll(e.dir); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		problems = append(problems, fmt.Sprintf("removing %s: %v", e.dir, err))
	}
	if len(problems) == 0 {
		logf("teardown: no runtime or conmon process, runtime state or mount left; removed %s", e.dir)
	}
	return problems
}

// containerIDs lists the IDs of every container of the run (pod infra
// containers included) from podman's events file.
func (e *podmanEnv) containerIDs() []string {
	data, _ := os.ReadFile(e.eventsLog())
	seen := map[string]bool{}
	var ids []string
	for _, m := range regexp.MustCompile(`"ID":"([0-9a-f]{64})"`).FindAllStringSubmatch(string(data), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			ids = append(ids, m[1])
		}
	}
	return ids
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

// isOfRun says whether p is a conmon or podman started for this run (a
// conmon's exit command, `podman container cleanup`, is a podman): its
// command line names the run's directory.
func (e *podmanEnv) isOfRun(p proc) bool {
	base := filepath.Base(p.exe)
	return (base == "conmon" || base == "podman") && strings.Contains(p.cmdline, e.dir)
}

// leakedProcesses lists runtime processes (the private copy's) and this
// run's conmons and podmans.
func (e *podmanEnv) leakedProcesses() []string {
	var leaks []string
	for _, p := range processes() {
		if p.exe == e.runtime || e.isOfRun(p) {
			leaks = append(leaks, fmt.Sprintf("process %d (%s): %s", p.pid, p.exe, p.cmdline))
		}
	}
	return leaks
}

// leakedState lists entries of the runtime's state directory that belong
// to the run's containers (others may be another user's).
func (e *podmanEnv) leakedState(ids []string) []string {
	var leaks []string
	ents, _ := os.ReadDir(e.stateDir)
	for _, ent := range ents {
		for _, id := range ids {
			if strings.Contains(ent.Name(), id) {
				leaks = append(leaks, "runtime state: "+filepath.Join(e.stateDir, ent.Name()))
				break
			}
		}
	}
	return leaks
}

// leakedMounts lists mounts of runsc's FUSE file system or under the
// run's directory, but except (the storage driver's own bind mount of
// its home while storage exists).
func (e *podmanEnv) leakedMounts(except string) []string {
	var leaks []string
	for _, m := range mounts() {
		if m.point == except {
			continue
		}
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

// forceCleanup kills and removes what the run left (after the leak
// check has reported it): this run's conmons and runtime processes, the
// runtime state of its containers and mounts under its directory.
func (e *podmanEnv) forceCleanup(ids []string) {
	// Conmons first: a conmon outliving its runtime would start its exit
	// command (a podman) which writes to the storage being removed.
	// Then the runtime, then any podman of the run, until none is left.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var left []proc
		for _, p := range processes() {
			if p.exe == e.runtime || e.isOfRun(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			break
		}
		for _, p := range left {
			if filepath.Base(p.exe) == "conmon" {
				syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
		for _, p := range left {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	for _, id := range ids {
		for _, ent := range e.leakedState([]string{id}) {
			path := strings.TrimPrefix(ent, "runtime state: ")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			exec.CommandContext(ctx, e.runtime, "--root", e.stateDir, "delete", "--force", id).Run()
			cancel()
			os.RemoveAll(path)
		}
	}
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
