package hook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func sh(script string, timeout ...int) specs.Hook {
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: []string{"HOOKVAR=set"}}
	if len(timeout) > 0 {
		h.Timeout = &timeout[0]
	}
	return h
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	state := specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: 42, Bundle: "/b", Annotations: map[string]string{"k": "v"}}

	t.Run("in order with state, args and env", func(t *testing.T) {
		spec := &specs.Spec{Hooks: &specs.Hooks{CreateRuntime: []specs.Hook{
			sh("cat > " + out + ".state; echo one:$HOOKVAR:$0 >> " + out),
			sh("echo two >> " + out),
		}}}
		if err := Run(spec, CreateRuntime, state, nil); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(out)
		if string(got) != "one:set:sh\ntwo\n" {
			t.Fatalf("hooks wrote %q", got)
		}
		var st specs.State
		data, _ := os.ReadFile(out + ".state")
		if err := json.Unmarshal(data, &st); err != nil || st.ID != "c1" || st.Pid != 42 || st.Status != specs.StateCreating || st.Annotations["k"] != "v" {
			t.Fatalf("state on stdin %q (%v)", data, err)
		}
	})
	t.Run("only the kind asked for", func(t *testing.T) {
		spec := &specs.Spec{Hooks: &specs.Hooks{Poststop: []specs.Hook{sh("exit 1")}}}
		if err := Run(spec, Poststart, state, nil); err != nil {
			t.Fatal(err)
		}
		if err := Run(&specs.Spec{}, Poststop, state, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failure names the hook and stops the list", func(t *testing.T) {
		os.Remove(out)
		spec := &specs.Spec{Hooks: &specs.Hooks{Prestart: []specs.Hook{
			sh("true"), sh("echo broken >&2; exit 3"), sh("echo ran >> " + out),
		}}}
		err := Run(spec, Prestart, state, nil)
		if err == nil || !strings.Contains(err.Error(), `hooks.prestart[1] "/bin/sh"`) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "broken") {
			t.Fatalf("error %v", err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatal("a hook after the failed one ran")
		}
	})
	t.Run("timeout kills the hook and what it started", func(t *testing.T) {
		pidFile := filepath.Join(dir, "bgpid")
		spec := &specs.Spec{Hooks: &specs.Hooks{Poststart: []specs.Hook{sh("sleep 100 & echo $! > "+pidFile+"; sleep 100", 1)}}}
		err := Run(spec, Poststart, state, nil)
		if err == nil || !strings.Contains(err.Error(), "timed out after 1s") {
			t.Fatalf("error %v", err)
		}
		data, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if pid <= 0 {
			t.Fatalf("no background pid: %q", data)
		}
		for i := 0; syscall.Kill(pid, 0) == nil; i++ {
			// Killed, not reaped yet by its parent's parent (init).
			if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(st), ") Z") || i > 200 {
				if i > 200 {
					t.Fatalf("the hook's background process %d survived the timeout", pid)
				}
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("a process left holding the output does not hang", func(t *testing.T) {
		spec := &specs.Spec{Hooks: &specs.Hooks{Poststop: []specs.Hook{sh("setsid sleep 30 & exit 0")}}}
		start := time.Now()
		if err := Run(spec, Poststop, state, nil); err != nil {
			t.Fatalf("error %v", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("Run waited %v for a process the hook left behind", d)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		spec := &specs.Spec{Hooks: &specs.Hooks{StartContainer: []specs.Hook{{Path: filepath.Join(dir, "nope")}}}}
		err := Run(spec, StartContainer, state, nil)
		if err == nil || !strings.Contains(err.Error(), "hooks.startContainer[0]") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestRunWarningGoesOn(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	spec := &specs.Spec{Hooks: &specs.Hooks{Poststart: []specs.Hook{sh("exit 1"), sh("echo second >> " + out)}}}
	RunWarning(spec, Poststart, specs.State{ID: "c"})
	if got, _ := os.ReadFile(out); string(got) != "second\n" {
		t.Fatalf("the hook after a failed poststart hook wrote %q", got)
	}
}
