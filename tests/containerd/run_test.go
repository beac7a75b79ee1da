package containerd

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc/runsc/procfs"
	"github.com/runsc/runsc/tests/internal/e2e"
)

// TestRunForeground: `ctr run --rm` in the foreground prints the
// container's stdout and stderr, exits with the container's status and
// returns once the process exits (the step's timeout catches a hang: the
// container's process must be the shim's child for the shim to see the
// exit), and the container is gone afterwards.
func TestRunForeground(t *testing.T) {
	forEachShim(t, func(t *testing.T, m *shimMode) {
		name := ctrName(t, "fg")
		r := run(t, "run --rm in the foreground", runArgs(m, "--rm", imageRef, name, "sh", "-c", "echo hello from the container; echo to-stderr >&2")...)
		wantCode(t, "foreground run", r, 0)
		wantOutput(t, "foreground stdout", r.Stdout, "hello from the container")
		if !strings.Contains(r.Stderr, "to-stderr") {
			t.Fatalf("the container's stderr did not reach ctr's stderr: %q", r.Stderr)
		}
		t.Logf("checked the container's stderr reached ctr's stderr")
		t.Logf("run --rm returned in %v (not asserted)", r.Dur.Round(time.Millisecond))

		exit3 := ctrName(t, "exit3")
		r = run(t, "run --rm sh -c 'exit 3'", runArgs(m, "--rm", imageRef, exit3, "sh", "-c", "exit 3")...)
		wantCode(t, "ctr run --rm of sh -c 'exit 3'", r, 3)
		wantExitEvent(t, exit3, exit3, 3)
		t.Logf("run --rm of `exit 3` returned in %v (not asserted)", r.Dur.Round(time.Millisecond))

		containers := mustRun(t, "container ls -q", "container", "ls", "-q")
		for _, n := range []string{name, exit3} {
			if containsLine(containers, n) {
				t.Fatalf("container %s still listed after run --rm: %q", n, containers)
			}
		}
		t.Logf("checked run --rm removed both containers (`ctr container ls -q`: %q)", containers)
		if ti, ok := tasks(t)[exit3]; ok {
			t.Fatalf("task %s still listed after run --rm: %+v", exit3, ti)
		}
		t.Logf("checked `ctr task ls` lists neither task")
	})
}

// TestDetached: `ctr run -d` of `sleep 1000`; `ctr task exec` (output and
// exit status); `ctr task ps` lists the task's pid; `ctr task kill -s
// SIGKILL` stops it with status 137; `ctr task delete` and `ctr container
// delete` remove it. Then a shell trapping TERM, run detached with its
// output to a file (--log-uri), ends with its trap's status on `ctr task
// kill` (SIGTERM).
func TestDetached(t *testing.T) {
	forEachShim(t, func(t *testing.T, m *shimMode) {
		name := ctrName(t, "det")
		r := run(t, "run -d sleep 1000", runArgs(m, "-d", imageRef, name, "sleep", "1000")...)
		wantCode(t, "run -d", r, 0)
		ti := task(t, name)
		if ti.status != "RUNNING" || ti.pid <= 0 {
			t.Fatalf("ctr task ls after run -d: %+v, want RUNNING with a pid", ti)
		}
		t.Logf("checked `ctr task ls` shows %s RUNNING with pid %d", name, ti.pid)

		r = run(t, "task exec echo", "task", "exec", "--exec-id", "e-echo", name, "sh", "-c", "echo exec-output; echo exec-stderr >&2")
		wantCode(t, "task exec", r, 0)
		wantOutput(t, "task exec stdout", r.Stdout, "exec-output")
		if !strings.Contains(r.Stderr, "exec-stderr") {
			t.Fatalf("the exec's stderr did not reach ctr's stderr: %q", r.Stderr)
		}
		t.Logf("checked the exec's stderr reached ctr's stderr")
		r = run(t, "task exec exit 5", "task", "exec", "--exec-id", "e-exit5", name, "sh", "-c", "exit 5")
		wantCode(t, "task exec of sh -c 'exit 5'", r, 5)
		wantExitEvent(t, name, "e-exit5", 5)
		r = run(t, "task exec ps", "task", "exec", "--exec-id", "e-ps", name, "ps")
		wantCode(t, "task exec ps", r, 0)
		if !strings.Contains(r.Stdout, "sleep 1000") {
			t.Fatalf("ps in the container does not show `sleep 1000`:\n%s", r.Stdout)
		}
		t.Logf("checked ps in the container shows `sleep 1000`:\n%s", strings.TrimRight(r.Stdout, "\n"))

		ps := mustRun(t, "task ps", "task", "ps", name)
		if !psListsPid(ps, ti.pid) {
			t.Fatalf("ctr task ps does not list the task's pid %d:\n%s", ti.pid, ps)
		}
		t.Logf("checked `ctr task ps` lists the task's pid %d:\n%s", ti.pid, ps)

		mustRun(t, "task kill -s SIGKILL", "task", "kill", "--signal", "SIGKILL", name)
		waitFor(t, "`ctr task ls` to show the task STOPPED", 20*time.Second, func() bool {
			return tasks(t)[name].status == "STOPPED"
		})
		wantExitEvent(t, name, name, 137)
		r = run(t, "task delete", "task", "delete", name)
		wantCode(t, "task delete", r, 0)
		// ctr 1.6 warns "task X exit with non-zero exit code N" on delete.
		if !strings.Contains(r.Stderr, "exit code 137") {
			t.Fatalf("ctr task delete does not report exit code 137: %q", r.Stderr)
		}
		t.Logf("checked ctr task delete reports the exit status: %s", strings.TrimSpace(r.Stderr))
		if _, ok := tasks(t)[name]; ok {
			t.Fatalf("task %s still listed after ctr task delete", name)
		}
		mustRun(t, "container delete", "container", "delete", name)
		if c := mustRun(t, "container ls -q", "container", "ls", "-q"); containsLine(c, name) {
			t.Fatalf("container %s still listed after ctr container delete: %q", name, c)
		}
		t.Logf("checked the task and the container are gone")

		// SIGTERM to a shell that traps it.
		term := ctrName(t, "term")
		logPath := filepath.Join(env.dir, "logs", term+".log")
		run(t, "run -d (TERM trap)", runArgs(m, "-d", "--log-uri", "file://"+logPath, imageRef, term,
			"sh", "-c", "trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done")...)
		waitFor(t, "the TERM trap to be installed (\"ready\" in the --log-uri file)", 20*time.Second, func() bool {
			data, _ := os.ReadFile(logPath)
			return strings.Contains(string(data), "ready")
		})
		mustRun(t, "task kill (SIGTERM)", "task", "kill", term)
		waitFor(t, "`ctr task ls` to show the TERM-trapping task STOPPED", 20*time.Second, func() bool {
			return tasks(t)[term].status == "STOPPED"
		})
		wantExitEvent(t, term, term, 3)
		r = run(t, "task delete (TERM trap)", "task", "delete", term)
		wantCode(t, "task delete", r, 0)
		t.Logf("ctr task delete said: %s", strings.TrimSpace(r.Stderr))
		mustRun(t, "container delete (TERM trap)", "container", "delete", term)
	})
}

// psListsPid says whether the output of `ctr task ps` lists pid.
func psListsPid(out string, pid int) bool {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}

// TestTTY: `ctr run -t` from a terminal gives the container a terminal of
// the same size, carrying input and output, and passes the exit status
// through.
func TestTTY(t *testing.T) {
	forEachShim(t, func(t *testing.T, m *shimMode) {
		name := ctrName(t, "tty")
		term := e2e.OpenTerminal(t, 40, 100)
		// ctr sizes the container's terminal after starting the task, so the
		// script waits (up to 5s) until the size is set before printing it.
		script := `if [ -t 0 ] && [ -t 1 ]; then echo stdio-is-a-tty; fi; tty
	i=0; while s=$(stty size 2>/dev/null); [ -z "$s" ] || [ "$s" = "0 0" ]; do i=$((i+1)); [ $i -ge 50 ] && break; sleep 0.1; done
	echo "size:$s"; echo waiting-for-input; read line; echo "got:$line"; exit 4`
		var r result
		var runErr error
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			r, runErr = env.ctr(invocation{Step: "run -t", Args: runArgs(m, "--rm", "-t", imageRef, name, "sh", "-c", script), TTY: term.Pts})
		}()
		// Type once the container reads (ctr makes our terminal raw first).
		waitFor(t, "the container to wait for input", 30*time.Second, func() bool {
			select {
			case <-ran:
				return true
			default:
			}
			return strings.Contains(term.Output(), "waiting-for-input")
		})
		term.Ptm.Write([]byte("typed-line\r"))
		<-ran
		got := term.Close()
		t.Logf("terminal output: %q", got)
		if runErr != nil {
			t.Fatal(runErr)
		}
		t.Logf("run -t: `ctr run --rm -t ...` exited %d in %v", r.Code, r.Dur.Round(time.Millisecond))
		wantCode(t, "run -t", r, 4)
		for _, want := range []string{"stdio-is-a-tty\n", "/dev/pts/", "size:40 100\n", "got:typed-line\n"} {
			if !strings.Contains(got, want) {
				t.Fatalf("terminal output lacks %q: %q", want, got)
			}
		}
		t.Logf("checked the container's stdio is a terminal (tty printed a /dev/pts name), its size is 40x100 as ours, typed input reached it and its exit status passed through")
	})
}

// TestProcessModel: while a detached task runs, its process (the pid
// `ctr task ls` shows) is a child of its runc v2 shim, which is what lets
// the shim reap it and report its exit; with runsc, exactly one sandbox
// (`runsc boot`) runs for it.
func TestProcessModel(t *testing.T) {
	forEachShim(t, func(t *testing.T, m *shimMode) {
		name := ctrName(t, "procs")
		mustRun(t, "run -d sleep 1000", runArgs(m, "-d", imageRef, name, "sleep", "1000")...)
		ti := task(t, name)
		t.Logf("`ctr task ls`: %s pid %d %s", name, ti.pid, ti.status)

		t.Run("ShimIsParent", func(t *testing.T) {
			st, err := procfs.ReadStat("/proc", ti.pid)
			if err != nil {
				t.Fatalf("reading /proc/%d/stat: %v", ti.pid, err)
			}
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", st.PPID))
			raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.PPID))
			cmdline := strings.ReplaceAll(strings.TrimRight(string(raw), "\x00"), "\x00", " ")
			if filepath.Base(exe) != m.shim || !strings.Contains(cmdline, "-namespace "+env.ns+" ") || !strings.Contains(cmdline, "-id "+name) ||
				!strings.Contains(cmdline+" ", "-address "+env.sock+" ") {
				t.Fatalf("the task's process %d (%s) has parent %d (%s: %s), want the %s of namespace %s, id %s, address %s",
					ti.pid, st.Comm, st.PPID, exe, cmdline, m.shim, env.ns, name, env.sock)
			}
			t.Logf("checked the task's process %d (%s) is a child of its shim %d: %s", ti.pid, st.Comm, st.PPID, cmdline)
		})

		t.Run("OneSandbox", func(t *testing.T) {
			requireRunsc(t)
			boots := e2e.Sandboxes(env.runtime)
			if len(boots) != 1 {
				t.Fatalf("%d sandbox (`runsc boot`) processes of this run's runsc while one task runs, want 1:\n%s", len(boots), strings.Join(boots, "\n"))
			}
			t.Logf("checked exactly one sandbox runs for the task: %s", boots[0])
		})

		mustRun(t, "task kill -s SIGKILL", "task", "kill", "--signal", "SIGKILL", name)
		wantExitEvent(t, name, name, 137)
	})
}

// TestDeleteForceStopped: `ctr task delete --force` (`ctr task rm -f`) of
// a task that has already stopped succeeds and removes it. containerd
// sends the runtime `kill --all ID SIGKILL` first, and the shim accepts
// only runc's answers for a stopped container: exit 0, or an error saying
// "container not running", "no such process" or "does not exist".
func TestDeleteForceStopped(t *testing.T) {
	forEachShim(t, func(t *testing.T, m *shimMode) {
		name := ctrName(t, "stopped")
		mustRun(t, "run -d sleep 1000", runArgs(m, "-d", imageRef, name, "sleep", "1000")...)
		mustRun(t, "task kill -s SIGKILL", "task", "kill", "--signal", "SIGKILL", name)
		waitFor(t, "`ctr task ls` to show the task STOPPED", 20*time.Second, func() bool {
			return tasks(t)[name].status == "STOPPED"
		})
		wantExitEvent(t, name, name, 137)
		r := run(t, "task delete --force of a stopped task", "task", "delete", "--force", name)
		wantCode(t, "ctr task delete --force of a stopped task", r, 0)
		if _, ok := tasks(t)[name]; ok {
			t.Fatalf("task %s still listed after ctr task delete --force", name)
		}
		t.Logf("checked the stopped task is gone: %s", strings.TrimSpace(r.Stderr))
		mustRun(t, "container delete", "container", "delete", name)
	})
}
