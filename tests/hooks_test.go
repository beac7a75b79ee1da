package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hookScript is a host script that appends one line to log: its name
// ($1), the status and pid of the state on its stdin, its network
// namespace, and how many mqueue mounts that pid's mount namespace has
// (the container's mounts are made before the create hooks run).
const hookScript = `#!/bin/sh
state=$(cat)
status=$(echo "$state" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
pid=$(echo "$state" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
mq=$(grep -c 'dev/mqueue ' /proc/$pid/mountinfo 2>/dev/null)
echo "$1 $status pid=$pid net=$(readlink /proc/self/ns/net) mq=$mq" >> "$2"
exit "${3:-0}"
`

// TestHooks checks every kind of hook: run in the lifecycle's order,
// with the state on stdin, createContainer in the container's network
// namespace, startContainer inside the container (its path resolved in
// the container's root), and the spec's failure rules.
func TestHooks(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte(hookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "log")
	h := func(name string, code ...string) specs.Hook {
		return specs.Hook{Path: script, Args: append([]string{"hook.sh", name, log}, code...)}
	}
	spec := testSpec("sh", "-c", "cat /started; sleep 1000")
	spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{h("prestart")},
		CreateRuntime:   []specs.Hook{h("createRuntime")},
		CreateContainer: []specs.Hook{h("createContainer")},
		// In the container: its own sh, writing into its root.
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /started"}}},
		Poststart:      []specs.Hook{h("poststart", "1"), h("poststart2")},
		Poststop:       []specs.Hook{h("poststop")},
	}
	b := newBundle(t, spec)
	e.must("create", "--bundle", b.dir, "hooked")
	init := e.saved("hooked").InitPID
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	ctrNet, _ := os.Readlink("/proc/" + strconv.Itoa(init) + "/ns/net")
	e.must("start", "hooked")
	e.must("kill", "hooked", "KILL")
	waitStopped(t, e, "hooked")
	e.must("delete", "hooked")
	data, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	pid := strconv.Itoa(init)
	want := []string{
		"prestart creating pid=" + pid + " net=" + hostNet + " mq=1",
		"createRuntime creating pid=" + pid + " net=" + hostNet + " mq=1",
		"createContainer creating pid=" + pid + " net=" + ctrNet + " mq=1",
		// A failing poststart hook is a warning; the next one runs.
		"poststart running pid=" + pid + " net=" + hostNet + " mq=1",
		"poststart2 running pid=" + pid + " net=" + hostNet + " mq=1",
		"poststop stopped pid= net=" + hostNet + " mq=",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("hooks ran:\n%s\nwant:\n%s", data, strings.Join(want, "\n"))
	}
	started, err := os.ReadFile(filepath.Join(b.rootfs, "started"))
	var st specs.State
	if err != nil || json.Unmarshal(started, &st) != nil || st.ID != "hooked" || st.Status != specs.StateCreated || st.Pid != init {
		t.Fatalf("startContainer hook's state in the container's root: %q (%v)", started, err)
	}

	t.Run("a failing create hook fails create, runs poststop, leaves nothing", func(t *testing.T) {
		defer e.sub(t)()
		for _, kind := range []string{"prestart", "createRuntime", "createContainer"} {
			os.Remove(log)
			spec := testSpec("true")
			fail := []specs.Hook{{Path: "/bin/false"}}
			switch kind {
			case "prestart":
				spec.Hooks = &specs.Hooks{Prestart: fail}
			case "createRuntime":
				spec.Hooks = &specs.Hooks{CreateRuntime: fail}
			default:
				spec.Hooks = &specs.Hooks{CreateContainer: fail}
			}
			spec.Hooks.Poststop = []specs.Hook{h("poststop")}
			b := newBundle(t, spec)
			wantOneLineError(t, e.exec("", "create", "--bundle", b.dir, "failing"), "hooks."+kind+`[0] "/bin/false"`)
			if out := e.must("list", "-q"); strings.TrimSpace(out) != "" {
				t.Fatalf("%s failing left %q", kind, out)
			}
			if data, _ := os.ReadFile(log); !strings.HasPrefix(string(data), "poststop stopped") {
				t.Fatalf("%s failing: poststop hooks ran: %q", kind, data)
			}
		}
	})
	t.Run("a failing startContainer hook fails start", func(t *testing.T) {
		defer e.sub(t)()
		spec := testSpec("true")
		spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/false"}}}
		b := newBundle(t, spec)
		e.must("create", "--bundle", b.dir, "startfail")
		r := e.exec("", "start", "startfail")
		if r.code == 0 || !strings.Contains(r.stderr, `hooks.startContainer[0] "/bin/false"`) {
			t.Fatalf("start: exit %d, stderr %q", r.code, r.stderr)
		}
		e.must("delete", "--force", "startfail")
	})
	t.Run("bad hooks are refused", func(t *testing.T) {
		defer e.sub(t)()
		spec := testSpec("true")
		spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "relative/hook"}}}
		b := newBundle(t, spec)
		r := e.exec("", "create", "--bundle", b.dir, "badhook")
		if r.code != 1 || !strings.Contains(r.stderr, `hooks.poststop[0].path "relative/hook": must be absolute`) {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// waitStopped waits until a container's state is stopped.
func waitStopped(t *testing.T, e *runscEnv, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if e.state(id).Status == specs.StateStopped {
			return
		}
	}
	t.Fatalf("container %q did not stop", id)
}
