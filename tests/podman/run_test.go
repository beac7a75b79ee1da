package podman

import (
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

// TestRunForeground: `podman run` prints the container's stdout and
// stderr and exits 0.
func TestRunForeground(t *testing.T) {
	requireEnv(t)
	name := ctrName(t, "fg")
	r := pm(t, "run in the foreground", runArgs("--name", name, image, "sh", "-c", "echo hello from the container; echo to-stderr >&2")...)
	wantCode(t, "foreground run", r, 0)
	wantOutput(t, "foreground stdout", r.Stdout, "hello from the container")
	if !strings.Contains(r.Stderr, "to-stderr") {
		t.Fatalf("the container's stderr did not reach podman's stderr: %q", r.Stderr)
	}
	t.Logf("checked the container's stderr reached podman's stderr")
	wantOutput(t, "status after the run", inspect(t, name, "{{.State.Status}}"), "exited")
}

// TestExitCodes: podman exits with the container's status, and 128+N
// for a container killed by signal N.
func TestExitCodes(t *testing.T) {
	requireEnv(t)
	r := pm(t, "exit 7", runArgs("--rm", image, "sh", "-c", "exit 7")...)
	wantCode(t, "sh -c 'exit 7'", r, 7)
	// A foreground container killed by `podman kill` (SIGKILL): the
	// foreground podman exits 128+9. (A container cannot kill itself
	// that way: its pid 1 is immune to SIGKILL from inside.)
	name := ctrName(t, "killed")
	done := make(chan struct{})
	var fg result
	var fgErr error
	go func() {
		defer close(done)
		fg, fgErr = env.podman(invocation{Step: "foreground sleep 1000", Args: runArgs("--name", name, image, "sleep", "1000")})
	}()
	waitFor(t, "the foreground container to run", 20*time.Second, func() bool {
		return pm(t, "inspect", "inspect", "--format", "{{.State.Running}}", name).Stdout == "true\n"
	})
	mustPM(t, "kill the foreground container", "kill", name)
	<-done
	if fgErr != nil {
		t.Fatal(fgErr)
	}
	t.Logf("foreground run returned %v after it started", fg.Dur.Round(time.Millisecond))
	wantCode(t, "foreground podman run killed by SIGKILL", fg, 137)
	wantOutput(t, "exit code in inspect", inspect(t, name, "{{.State.ExitCode}}"), "137")
}

// TestRunRm: `podman run --rm` returns once the process exits and the
// container is gone. The duration is logged, never asserted (the step's
// timeout is the failure criterion).
func TestRunRm(t *testing.T) {
	requireEnv(t)
	name := ctrName(t, "rm")
	r := pmInv(t, invocation{Step: "run --rm true", Args: runArgs("--rm", "--name", name, image, "true"), Timeout: 30 * time.Second})
	wantCode(t, "run --rm true", r, 0)
	t.Logf("run --rm of `true` returned in %v (not asserted)", r.Dur.Round(time.Millisecond))
	r = pmInv(t, invocation{Step: "run --rm sleep 1", Args: runArgs("--rm", image, "sleep", "1"), Timeout: 30 * time.Second})
	wantCode(t, "run --rm sleep 1", r, 0)
	t.Logf("run --rm of `sleep 1` returned in %v (not asserted)", r.Dur.Round(time.Millisecond))
	wantCode(t, "container exists after --rm (1: it does not)", pm(t, "container exists", "container", "exists", name), 1)
}

// TestDetached: a detached container's logs, exec, top, kill, wait, a
// restart with `podman start`, stop (SIGTERM honoured; SIGTERM ignored
// then SIGKILL) and rm.
func TestDetached(t *testing.T) {
	requireEnv(t)
	name := ctrName(t, "det")
	id := mustPM(t, "run -d", runArgs("-d", "--name", name, image, "sh", "-c", "echo started-detached; echo err-detached >&2; exec sleep 1000")...)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("run -d printed %q, want a container ID", id)
	}
	t.Logf("checked run -d printed the container ID %s", id)
	wantOutput(t, "running after run -d", inspect(t, name, "{{.State.Running}}"), "true")
	env.logStateEntry(t, id)

	waitFor(t, "`podman logs` to show the container's stdout and stderr", 20*time.Second, func() bool {
		r := pm(t, "logs", "logs", name)
		return strings.Contains(r.Stdout, "started-detached") && strings.Contains(r.Stdout+r.Stderr, "err-detached")
	})

	r := pm(t, "exec echo", "exec", name, "sh", "-c", "echo exec-output; cat /proc/1/cmdline | tr '\\0' ' '")
	wantCode(t, "exec", r, 0)
	wantOutput(t, "exec output (and the container's pid 1)", r.Stdout, "exec-output\nsleep 1000")
	wantCode(t, "exec sh -c 'exit 5'", pm(t, "exec exit 5", "exec", name, "sh", "-c", "exit 5"), 5)
	r = pm(t, "exec -w -e", "exec", "-w", "/tmp", "-e", "EXECVAR=xv", name, "sh", "-c", "echo $PWD $EXECVAR")
	wantCode(t, "exec -w -e", r, 0)
	wantOutput(t, "exec -w /tmp -e EXECVAR=xv", r.Stdout, "/tmp xv")

	top := mustPM(t, "top", "top", name)
	if !strings.Contains(top, "sleep 1000") {
		t.Fatalf("podman top does not list `sleep 1000`:\n%s", top)
	}
	t.Logf("checked podman top lists `sleep 1000`:\n%s", top)

	mustPM(t, "kill", "kill", name)
	wantOutput(t, "podman wait after kill (SIGKILL: 128+9)", mustPM(t, "wait", "wait", name), "137")
	wantOutput(t, "exit code in inspect after kill", inspect(t, name, "{{.State.ExitCode}}"), "137")

	mustPM(t, "start the stopped container again", "start", name)
	wantOutput(t, "running again after start", inspect(t, name, "{{.State.Running}}"), "true")
	waitFor(t, "the restarted container's output in `podman logs` (twice)", 20*time.Second, func() bool {
		return strings.Count(pm(t, "logs", "logs", name).Stdout, "started-detached") == 2
	})
	wantOutput(t, "exec in the restarted container", mustPM(t, "exec after restart", "exec", name, "echo", "again"), "again")

	r = pm(t, "stop (SIGTERM, timeout 2s)", "stop", "--time", "2", name)
	wantCode(t, "stop", r, 0)
	// `exec sleep` as pid 1 has no SIGTERM handler: pid 1 of a pid
	// namespace ignores it, so stop must end in SIGKILL.
	wantOutput(t, "exit code after stop of a pid 1 without a TERM handler", inspect(t, name, "{{.State.ExitCode}}"), "137")
	t.Logf("stop took %v (not asserted)", r.Dur.Round(time.Millisecond))

	// SIGTERM honoured.
	term := ctrName(t, "term")
	mustPM(t, "run -d (TERM handler)", runArgs("-d", "--name", term, image, "sh", "-c", "trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done")...)
	waitFor(t, "the TERM handler to be installed", 20*time.Second, func() bool {
		return strings.Contains(pm(t, "logs", "logs", term).Stdout, "ready")
	})
	r = pm(t, "stop --time 10 (TERM handled)", "stop", "--time", "10", term)
	wantCode(t, "stop", r, 0)
	wantOutput(t, "exit code after stop (the TERM handler's exit 3)", inspect(t, term, "{{.State.ExitCode}}"), "3")
	t.Logf("stop of a container that handles SIGTERM took %v (not asserted)", r.Dur.Round(time.Millisecond))

	// SIGTERM ignored: SIGKILL after --time.
	stubborn := ctrName(t, "stubborn")
	mustPM(t, "run -d (ignoring TERM)", runArgs("-d", "--name", stubborn, image, "sh", "-c", `trap "" TERM; echo ready; sleep 1000`)...)
	waitFor(t, "the container to ignore TERM", 20*time.Second, func() bool {
		return strings.Contains(pm(t, "logs", "logs", stubborn).Stdout, "ready")
	})
	r = pm(t, "stop --time 2 (TERM ignored)", "stop", "--time", "2", stubborn)
	wantCode(t, "stop", r, 0)
	wantOutput(t, "exit code after stop of a container ignoring TERM (SIGKILL)", inspect(t, stubborn, "{{.State.ExitCode}}"), "137")
	t.Logf("stop --time 2 of a container ignoring SIGTERM took %v (not asserted)", r.Dur.Round(time.Millisecond))

	mustPM(t, "rm", "rm", name, term, stubborn)
	for _, n := range []string{name, term, stubborn} {
		wantCode(t, "container exists after rm (1: it does not): "+n, pm(t, "container exists", "container", "exists", n), 1)
	}
}

// TestInteractive: `podman run -i` passes piped stdin through; the
// container ends at EOF.
func TestInteractive(t *testing.T) {
	requireEnv(t)
	var in strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&in, "line %d of the piped input\n", i)
	}
	r := pmInv(t, invocation{Step: "run -i cat", Args: runArgs("--rm", "-i", image, "cat"), Stdin: strings.NewReader(in.String())})
	wantCode(t, "run -i cat", r, 0)
	if r.Stdout != in.String() {
		t.Fatalf("cat echoed %d bytes, want the %d bytes of input (got %.200q...)", len(r.Stdout), in.Len(), r.Stdout)
	}
	t.Logf("checked cat echoed all %d bytes of piped stdin and ended at EOF", in.Len())
	r = pmInv(t, invocation{Step: "run -i wc", Args: runArgs("--rm", "-i", image, "wc", "-l"), Stdin: strings.NewReader("a\nb\nc\n")})
	wantCode(t, "run -i wc -l", r, 0)
	wantOutput(t, "wc -l of 3 piped lines", r.Stdout, "3")
}

// TestTTY: `podman run -it` from a terminal gives the container a
// terminal of the same size, carrying input and output.
func TestTTY(t *testing.T) {
	requireEnv(t)
	term := e2e.OpenTerminal(t, 40, 100)
	// Typed input, buffered by the terminal until the container reads it.
	term.Ptm.Write([]byte("typed-line\n"))
	script := `if [ -t 0 ] && [ -t 1 ]; then echo stdio-is-a-tty; fi; tty; stty size; read line; echo "got:$line"; exit 4`
	r := pmInv(t, invocation{Step: "run -it", Args: runArgs("--rm", "-it", image, "sh", "-c", script), TTY: term.Pts})
	got := term.Close()
	t.Logf("terminal output: %q", got)
	wantCode(t, "run -it", r, 4)
	for _, want := range []string{"stdio-is-a-tty\n", "/dev/pts/", "40 100\n", "got:typed-line\n"} {
		if !strings.Contains(got, want) {
			t.Fatalf("terminal output lacks %q: %q", want, got)
		}
	}
	t.Logf("checked the container's stdio is a terminal, its size is 40x100 as ours, typed input reached it and its exit status passed through")
}

// TestReadOnly: with --read-only the root refuses writes, a --tmpfs path
// takes them.
func TestReadOnly(t *testing.T) {
	requireEnv(t)
	r := pm(t, "write to a read-only root", runArgs("--rm", "--read-only", "--tmpfs", "/scratch", image, "sh", "-c", "echo x > /written")...)
	if r.Code == 0 {
		t.Fatalf("writing /written on a --read-only root succeeded")
	}
	t.Logf("checked writing / fails on --read-only (exit %d: %s)", r.Code, strings.TrimSpace(r.Stderr))
	r = pm(t, "write to a tmpfs on a read-only root", runArgs("--rm", "--read-only", "--tmpfs", "/scratch", image, "sh", "-c", "echo data > /scratch/f && cat /scratch/f")...)
	wantCode(t, "write to --tmpfs /scratch under --read-only", r, 0)
	wantOutput(t, "read back from /scratch", r.Stdout, "data")
}

// TestWritesPersist: the container's writes land in its snapshot, as
// with runc: `podman diff` lists them, a restart of the stopped
// container sees them, and `podman commit` keeps them in an image.
func TestWritesPersist(t *testing.T) {
	requireEnv(t)
	name := ctrName(t, "persist")
	r := pm(t, "run writing /persist", runArgs("--name", name, image, "sh", "-c", "cat /persist 2>/dev/null; echo data >> /persist")...)
	wantCode(t, "run writing /persist", r, 0)
	wantOutput(t, "first run finds no /persist", r.Stdout, "")
	diff := mustPM(t, "diff", "diff", name)
	if !regexp.MustCompile(`(?m)^A /persist$`).MatchString(diff) {
		t.Fatalf("podman diff does not list the added /persist:\n%s", diff)
	}
	t.Logf("checked podman diff lists the container's write:\n%s", diff)
	r = pm(t, "start -a the stopped container", "start", "-a", name)
	wantCode(t, "start -a", r, 0)
	wantOutput(t, "the restarted container reads its first run's write", r.Stdout, "data")
	img := "localhost/" + name + "-img"
	mustPM(t, "commit", "commit", "-q", name, img)
	t.Cleanup(func() { env.podman(invocation{Step: "rmi " + img, Args: []string{"rmi", "--force", img}}) })
	r = pm(t, "run the committed image", runArgs("--rm", img, "cat", "/persist")...)
	wantCode(t, "run the committed image", r, 0)
	wantOutput(t, "the committed image holds both writes", r.Stdout, "data\ndata")
}

// TestUser: --user sets the process's uid and gid.
func TestUser(t *testing.T) {
	requireEnv(t)
	r := pm(t, "run --user 1000:1000", runArgs("--rm", "--user", "1000:1000", image, "sh", "-c", "id -u; id -g; id")...)
	wantCode(t, "run --user", r, 0)
	lines := strings.SplitN(strings.TrimSpace(r.Stdout), "\n", 3)
	if len(lines) < 3 || lines[0] != "1000" || lines[1] != "1000" {
		t.Fatalf("id: got %q, want uid 1000 and gid 1000", r.Stdout)
	}
	t.Logf("checked id shows uid 1000 gid 1000: %s", lines[2])
}

// TestHostname: --hostname sets the UTS name.
func TestHostname(t *testing.T) {
	requireEnv(t)
	r := pm(t, "run --hostname", runArgs("--rm", "--hostname", "e2e-host", image, "sh", "-c", "hostname; cat /proc/sys/kernel/hostname")...)
	wantCode(t, "run --hostname", r, 0)
	wantOutput(t, "hostname and /proc/sys/kernel/hostname", r.Stdout, "e2e-host\ne2e-host")
}

// TestVolumes: -v binds a host directory read-write (a write shows on
// the host) or :ro (a write fails, reads work).
func TestVolumes(t *testing.T) {
	requireEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "from-host"), []byte("host-data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := pm(t, "run -v rw", runArgs("--rm", "-v", host+":/data", image, "sh", "-c", "cat /data/from-host; echo ctr-data > /data/from-ctr")...)
	wantCode(t, "run -v host:/data", r, 0)
	wantOutput(t, "host file read in the container", r.Stdout, "host-data")
	got, err := os.ReadFile(filepath.Join(host, "from-ctr"))
	if err != nil {
		t.Fatalf("the container's write did not reach the host: %v", err)
	}
	wantOutput(t, "the container's write, read on the host", string(got), "ctr-data")

	r = pm(t, "run -v ro", runArgs("--rm", "-v", host+":/data:ro", image, "sh", "-c", "cat /data/from-host; echo y > /data/ro-write")...)
	if r.Code == 0 {
		t.Fatalf("writing to a :ro volume succeeded")
	}
	wantOutput(t, "host file read through a :ro volume", r.Stdout, "host-data")
	if _, err := os.Stat(filepath.Join(host, "ro-write")); err == nil {
		t.Fatalf("a write to a :ro volume reached the host")
	}
	t.Logf("checked writing to a :ro volume fails (exit %d: %s) and nothing reached the host", r.Code, strings.TrimSpace(r.Stderr))
}

// TestTmpfs: --tmpfs mounts a writable tmpfs.
func TestTmpfs(t *testing.T) {
	requireEnv(t)
	r := pm(t, "run --tmpfs", runArgs("--rm", "--tmpfs", "/scratch", image, "sh", "-c", "echo t > /scratch/f && cat /scratch/f && grep ' /scratch ' /proc/mounts")...)
	wantCode(t, "run --tmpfs /scratch", r, 0)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) < 2 || lines[0] != "t" || !strings.Contains(lines[1], "tmpfs") {
		t.Fatalf("--tmpfs /scratch: got %q, want the file's content then a tmpfs mount line", r.Stdout)
	}
	t.Logf("checked /scratch is writable and a tmpfs: %s", lines[1])
}

// TestEnvAndWorkdir: -e sets variables, -w the working directory.
func TestEnvAndWorkdir(t *testing.T) {
	requireEnv(t)
	r := pm(t, "run -e", runArgs("--rm", "-e", "FOO=bar", "-e", "SPACED=a b", image, "sh", "-c", `echo "$FOO|$SPACED"`)...)
	wantCode(t, "run -e", r, 0)
	wantOutput(t, "-e FOO=bar -e 'SPACED=a b'", r.Stdout, "bar|a b")
	r = pm(t, "run -w", runArgs("--rm", "-w", "/tmp", image, "pwd")...)
	wantCode(t, "run -w /tmp", r, 0)
	wantOutput(t, "pwd with -w /tmp", r.Stdout, "/tmp")
}

// TestPod: two containers in a pod share its UTS and IPC namespaces;
// with runsc they share one sandbox.
func TestPod(t *testing.T) {
	requireEnv(t)
	pod := ctrName(t, "pod")
	t.Cleanup(func() {
		if _, err := env.podman(invocation{Step: "cleanup pod", Args: []string{"pod", "rm", "--force", "--ignore", "--time", "0", pod}}); err != nil {
			t.Error(err)
		}
	})
	// The default infra container runs catatonit from a local image
	// podman builds (localhost/podman-pause), so nothing is pulled.
	podID := mustPM(t, "pod create", "pod", "create", "--name", pod, "--network", "none")
	t.Logf("created pod %s", podID)
	// Members take the pod's network namespace: no --network.
	member := []string{"run", "--pod", pod, "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=4096:4096"}
	a := ctrName(t, "a")
	mustPM(t, "run -d first member", append(member, "-d", "--name", a, image, "sh", "-c", "echo shared-by-a > /dev/shm/marker; echo ready; exec sleep 1000")...)
	waitFor(t, "the first member to write /dev/shm/marker", 20*time.Second, func() bool {
		return strings.Contains(pm(t, "logs", "logs", a).Stdout, "ready")
	})
	infra := inspectPod(t, pod, "{{.InfraContainerID}}")
	t.Logf("pod infra container %s, image %s", infra, inspect(t, infra, "{{.ImageName}}"))
	wantOutput(t, "pod state", inspectPod(t, pod, "{{.State}}"), "Running")

	b := ctrName(t, "b")
	r := pm(t, "run second member", append(member, "--name", b, image, "sh", "-c", "hostname; cat /dev/shm/marker")...)
	wantCode(t, "second member", r, 0)
	hostA := mustPM(t, "hostname of the first member", "exec", a, "hostname")
	wantOutput(t, "second member's hostname (same as the first's: shared UTS) and /dev/shm/marker (shared IPC)", r.Stdout, hostA+"\nshared-by-a")

	t.Run("OneSandbox", func(t *testing.T) {
		requireRunsc(t)
		boots := e2e.Sandboxes(env.runtime)
		if len(boots) != 1 {
			t.Fatalf("%d sandbox (`runsc boot`) processes for the pod, want 1:\n%s", len(boots), strings.Join(boots, "\n"))
		}
		t.Logf("checked the pod runs in one sandbox: %s", boots[0])
	})

	mustPM(t, "pod stop", "pod", "stop", "--time", "2", pod)
	mustPM(t, "pod rm", "pod", "rm", pod)
	wantCode(t, "pod exists after pod rm (1: it does not)", pm(t, "pod exists", "pod", "exists", pod), 1)
}

// inspectPod returns a pod's field by Go template.
func inspectPod(t *testing.T, pod, format string) string {
	t.Helper()
	return mustPM(t, "pod inspect "+format, "pod", "inspect", "--format", format, pod)
}

// logStateEntry logs where the runtime keeps the container's state (a
// check of the teardown's state-directory leak check).
func (e *podmanEnv) logStateEntry(t *testing.T, id string) {
	t.Helper()
	if ents := e.leakedState([]string{id}); len(ents) > 0 {
		t.Logf("the runtime keeps the running container's state in %s", strings.Join(ents, ", "))
	} else {
		t.Logf("no entry named by the container's ID in the runtime state dir %s", e.stateDir)
	}
}

// TestHostNamespaces: --pid=host and --ipc=host share the host's pid and
// ipc namespaces (the container sees itself at its host pid), and
// --userns=ns:PATH runs the container in that user namespace.
func TestHostNamespaces(t *testing.T) {
	requireEnv(t)
	hostPID, _ := os.Readlink("/proc/self/ns/pid")
	hostIPC, _ := os.Readlink("/proc/self/ns/ipc")
	r := pm(t, "run --pid=host --ipc=host", runArgs("--rm", "--pid=host", "--ipc=host", image, "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; test -d /proc/$PPID")...)
	wantCode(t, "run --pid=host --ipc=host", r, 0)
	wantOutput(t, "the container's pid and ipc namespaces", r.Stdout, hostPID+"\n"+hostIPC)

	holder := exec.Command("unshare", "--user", "sleep", "100000")
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	dir := fmt.Sprintf("/proc/%d", holder.Process.Pid)
	own, _ := os.Readlink("/proc/self/ns/user")
	waitFor(t, "the holder's user namespace", 5*time.Second, func() bool {
		ns, _ := os.Readlink(dir + "/ns/user")
		return ns != "" && ns != own
	})
	for _, f := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile(dir+"/"+f, []byte("0 3400000 65536"), 0); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := os.Readlink(dir + "/ns/user")
	r = pm(t, "run --userns=ns:PATH", runArgs("--rm", "--userns=ns:"+dir+"/ns/user", image, "sh", "-c", "id -u; readlink /proc/self/ns/user; cat /proc/self/uid_map")...)
	wantCode(t, "run --userns=ns:PATH", r, 0)
	if f := strings.Fields(r.Stdout); len(f) != 5 || f[0] != "0" || f[1] != want || strings.Join(f[2:], " ") != "0 3400000 65536" {
		t.Fatalf("--userns=ns:%s/ns/user printed %q: want root in %s mapped 0 3400000 65536", dir, r.Stdout, want)
	}
}
