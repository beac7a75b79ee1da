package podman

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runsc/runsc/tests/internal/e2e"
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
	// runner runs podman with globalFlags, bounded by the step timeout,
	// in podman's environment: the caller's, pointed at files under dir.
	runner *e2e.Runner
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
	if err := e2e.Copy(e.runtimeSrc, e.runtime); err != nil {
		return fmt.Errorf("copying the runtime: %v", err)
	}
	var help string
	e.runsc, help = e2e.Probe(e.runtime, e.runtimeSrc)
	e.stateDir, e.stateDirHow = defaultStateDir(filepath.Base(e.runtimeSrc), help)

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
	e.runner.Env = append(os.Environ(),
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

// invocation is one podman command; result a finished one.
type (
	invocation = e2e.Invocation
	result     = e2e.Result
)

// podman runs one podman command in its own process group, bounded by
// its timeout (see e2e.Runner.Run).
func (e *podmanEnv) podman(inv invocation) (result, error) { return e.runner.Run(inv) }

// pm runs podman for a test: a timeout or a failure to run podman fails
// the test; the command, its exit status and its duration are logged.
func pm(t *testing.T, step string, args ...string) result {
	t.Helper()
	return env.runner.Test(t, invocation{Step: step, Args: args})
}

// pmInv is pm for a full invocation.
func pmInv(t *testing.T, inv invocation) result {
	t.Helper()
	return env.runner.Test(t, inv)
}

// mustPM runs podman for a test, requires exit status 0 and returns its
// trimmed stdout.
func mustPM(t *testing.T, step string, args ...string) string {
	t.Helper()
	return env.runner.Must(t, step, args...)
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
		r, err := env.podman(invocation{Step: "cleanup " + name, Args: []string{"rm", "--force", "--ignore", "--time", "0", name}})
		if err != nil {
			t.Error(err)
		} else if r.Code != 0 {
			t.Logf("cleanup: podman rm %s exited %d: %s", name, r.Code, r.Stderr)
		}
	})
	return name
}

// wantOutput fails the test unless got (trimmed) equals want, and logs
// the check; wantCode the same for an exit status; waitFor polls cond
// until it holds or timeout passes and logs the check.
var (
	wantOutput = e2e.WantOutput
	wantCode   = e2e.WantCode
	waitFor    = e2e.WaitFor
)

// inspect returns a container's field by Go template, e.g.
// "{{.State.Status}}".
func inspect(t *testing.T, name, format string) string {
	t.Helper()
	return mustPM(t, "inspect "+name+" "+format, "inspect", "--format", format, name)
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
		r, err := e.podman(invocation{Step: "teardown: podman " + strings.Join(args, " "), Args: args})
		if err != nil {
			problems = append(problems, err.Error())
		} else if r.Code != 0 {
			problems = append(problems, fmt.Sprintf("teardown: podman %s exited %d: %s", strings.Join(args, " "), r.Code, r.Stderr))
		}
	}
	ids := e.containerIDs()
	logf("teardown: %d containers were created in this run; runtime state dir %s (%s)", len(ids), e.stateDir, e.stateDirHow)

	// Processes may take a moment to go once their containers are removed.
	problems = append(problems, e2e.PollLeaks(10*time.Second, func() []string {
		leaks := append(e2e.ProcessLeaks(e.isOfRun), e.leakedState(ids)...)
		return append(leaks, e.leakedMounts(filepath.Join(e.dir, "root", e.driver))...)
	})...)

	// Remove the private storage; podman unmounts its storage driver.
	if r, err := e.podman(invocation{Step: "teardown: podman system reset", Args: []string{"system", "reset", "--force"}}); err != nil {
		problems = append(problems, err.Error())
	} else if r.Code != 0 {
		problems = append(problems, fmt.Sprintf("teardown: podman system reset exited %d: %s", r.Code, r.Stderr))
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

// isOfRun says whether p is of this run: a process of the private
// runtime copy, or a conmon or podman started for this run (a conmon's
// exit command, `podman container cleanup`, is a podman) whose command
// line names the run's directory.
func (e *podmanEnv) isOfRun(p e2e.Proc) bool {
	base := filepath.Base(p.Exe)
	return e2e.IsRuntime(p, e.runtime) || (base == "conmon" || base == "podman") && strings.Contains(p.Cmdline, e.dir)
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
	return e2e.MountLeaks(func(m e2e.Mount) bool {
		return m.Point != except && (strings.Contains(m.Line, "fuse.runsc") || strings.Contains(m.Line, e.dir))
	})
}

// forceCleanup kills and removes what the run left (after the leak
// check has reported it): this run's conmons and runtime processes, the
// runtime state of its containers and mounts under its directory.
func (e *podmanEnv) forceCleanup(ids []string) {
	// Conmons first: a conmon outliving its runtime would start its exit
	// command (a podman) which writes to the storage being removed.
	// Then the runtime, then any podman of the run, until none is left.
	e2e.KillAll(e.isOfRun, func(p e2e.Proc) bool { return filepath.Base(p.Exe) == "conmon" })
	for _, id := range ids {
		for _, ent := range e.leakedState([]string{id}) {
			path := strings.TrimPrefix(ent, "runtime state: ")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			exec.CommandContext(ctx, e.runtime, "--root", e.stateDir, "delete", "--force", id).Run()
			cancel()
			os.RemoveAll(path)
		}
	}
	e2e.UnmountUnder(e.dir)
}
