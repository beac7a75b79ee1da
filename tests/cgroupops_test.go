package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// procState returns the state letter of host process pid (R, S, D...).
func procState(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])[0]
}

// TestPauseResume checks that pause freezes every process of the
// container (the state says paused), resume thaws them, delete refuses a
// paused container without --force, and delete --force removes one.
func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", "while :; do echo x > /dev/null; done")
	spec.Linux.CgroupsPath = "/runsc-test/pause"
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "pausing")
	init := e.saved("pausing").InitPID
	freezer := cgroupDir(t, init, "freezer")
	e.must("pause", "pausing")
	if st := e.state("pausing").Status; st != "paused" {
		t.Fatalf("state after pause: %s", st)
	}
	if got := readCgroup(t, freezer, "freezer.state"); got != "FROZEN" {
		t.Fatalf("freezer.state %s after pause", got)
	}
	r := e.exec("", "pause", "pausing")
	if r.code != 1 || !strings.Contains(r.stderr, "not running") {
		t.Fatalf("second pause: exit %d, %q", r.code, r.stderr)
	}
	r = e.exec("", "delete", "pausing")
	if r.code != 1 || !strings.Contains(r.stderr, "paused") {
		t.Fatalf("delete of a paused container: exit %d, %q", r.code, r.stderr)
	}
	e.must("resume", "pausing")
	if st := e.state("pausing").Status; st != "running" {
		t.Fatalf("state after resume: %s", st)
	}
	if got := readCgroup(t, freezer, "freezer.state"); got != "THAWED" {
		t.Fatalf("freezer.state %s after resume", got)
	}
	if s := procState(t, init); s != "R" && s != "S" {
		t.Fatalf("init in state %s after resume", s)
	}
	r = e.exec("", "resume", "pausing")
	if r.code != 1 || !strings.Contains(r.stderr, "not paused") {
		t.Fatalf("resume of a running container: exit %d, %q", r.code, r.stderr)
	}
	e.must("pause", "pausing")
	e.must("delete", "--force", "pausing")
	if _, err := os.Stat(freezer); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s left after delete --force: %v", freezer, err)
	}
}

// TestUpdate checks runc's update flags and -r (linux.resources JSON from
// a file or stdin), and that bad values get one-line errors.
func TestUpdate(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sleep", "1000")
	spec.Linux.CgroupsPath = "/runsc-test/update"
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "updating")
	init := e.saved("updating").InitPID
	mem, pids := cgroupDir(t, init, "memory"), cgroupDir(t, init, "pids")
	e.must("update", "--memory", "128m", "--pids-limit", "50", "updating")
	if got := readCgroup(t, mem, "memory.limit_in_bytes"); got != strconv.Itoa(128<<20) {
		t.Fatalf("memory limit %s after --memory 128m", got)
	}
	if got := readCgroup(t, pids, "pids.max"); got != "50" {
		t.Fatalf("pids.max %s after --pids-limit 50", got)
	}
	// containerd's shim sends the resources on stdin.
	if r := e.exec(`{"pids":{"limit":77},"memory":{"limit":100663296}}`, "update", "-r", "-", "updating"); r.code != 0 {
		t.Fatalf("update -r -: %q", r.stderr)
	}
	if got := readCgroup(t, pids, "pids.max"); got != "77" {
		t.Fatalf("pids.max %s after -r", got)
	}
	if got := readCgroup(t, mem, "memory.limit_in_bytes"); got != "100663296" {
		t.Fatalf("memory limit %s after -r", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "lots"}, `--memory "lots"`},
		{[]string{"--cpu-share", "-5"}, `--cpu-share "-5"`},
		{[]string{"-r", "-", "--memory", "1m"}, "--resources: no other resource flag"},
		{[]string{"--blkio-weight", "5"}, "--blkio-weight 5"},
	} {
		wantOneLineError(t, e.exec("", append(append([]string{"update"}, c.args...), "updating")...), c.want)
	}
	if r := e.exec("not json", "update", "-r", "-", "updating"); r.code != 1 || !strings.Contains(r.stderr, "not linux.resources JSON") {
		t.Errorf("update -r with bad JSON: exit %d, %q", r.code, r.stderr)
	}
}

// runcEvent is a line of runc events.
type runcEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data struct {
		Memory struct {
			Usage struct{ Usage, Limit uint64 } `json:"usage"`
		} `json:"memory"`
		Pids struct{ Current uint64 } `json:"pids"`
		CPU  struct {
			Usage struct{ Total uint64 } `json:"usage"`
		} `json:"cpu"`
	} `json:"data"`
}

// TestEvents checks events --stats (runc's JSON) and that the event
// stream reports an OOM kill.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	limit := int64(32 << 20)
	spec := testSpec("sh", "-c", "sleep 1000 & wait")
	spec.Linux.CgroupsPath = "/runsc-test/events"
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "eventful")
	var ev runcEvent
	if err := json.Unmarshal([]byte(e.must("events", "--stats", "eventful")), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "stats" || ev.ID != "eventful" || ev.Data.Pids.Current < 2 || ev.Data.Memory.Usage.Usage == 0 || ev.Data.Memory.Usage.Limit != uint64(limit) || ev.Data.CPU.Usage.Total == 0 {
		t.Fatalf("events --stats: %+v", ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runscBin, "--root", e.root, "events", "--interval", "1s", "eventful")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	// tail buffers a line of /dev/zero that never ends, past the limit.
	e.must("exec", "-d", "eventful", "tail", "/dev/zero")
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var types []string
	for sc.Scan() {
		var ev runcEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		types = append(types, ev.Type)
		if ev.Type == "oom" {
			return
		}
	}
	t.Fatalf("no oom event in %v", types)
}

// TestSandboxCgroup checks that the sandbox and gofer are charged to a
// cgroup of their own beside the container's (under the pod's parent),
// not to the container's, and that delete removes it.
func TestSandboxCgroup(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sleep", "1000")
	spec.Linux.CgroupsPath = "/runsc-test/pod1/box"
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "box")
	s := e.saved("box")
	for name, pid := range map[string]int{"sandbox": s.Sandbox.PID, "gofer": s.Gofer.PID} {
		if dir := cgroupDir(t, pid, "memory"); !strings.HasSuffix(dir, "/runsc-test/pod1/runsc-sandbox@box") {
			t.Errorf("%s in memory cgroup %s, want /runsc-test/pod1/runsc-sandbox@box", name, dir)
		}
	}
	if dir := cgroupDir(t, s.InitPID, "memory"); !strings.HasSuffix(dir, "/runsc-test/pod1/box") {
		t.Errorf("container init in %s", dir)
	}
	sbDir := filepath.Dir(cgroupDir(t, s.InitPID, "memory")) + "/runsc-sandbox@box"
	e.must("delete", "--force", "box")
	if _, err := os.Stat(sbDir); !os.IsNotExist(err) {
		t.Fatalf("sandbox cgroup %s left after delete: %v", sbDir, err)
	}
}

// TestSystemdCgroupsPath checks --systemd-cgroup: linux.cgroupsPath in
// systemd's slice:prefix:name form names the unit's cgroup.
func TestSystemdCgroupsPath(t *testing.T) {
	e := newEnv(t, "--systemd-cgroup")
	spec := testSpec("sleep", "1000")
	spec.Linux.CgroupsPath = "runsctest-sub.slice:runsc:sysd"
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "sysd")
	dir := cgroupDir(t, e.saved("sysd").InitPID, "memory")
	t.Cleanup(func() {
		os.Remove(filepath.Dir(dir))
		os.Remove(filepath.Dir(filepath.Dir(dir)))
	})
	if !strings.HasSuffix(dir, "/runsctest.slice/runsctest-sub.slice/runsc-sysd.scope") {
		t.Fatalf("init in memory cgroup %s, want .../runsctest.slice/runsctest-sub.slice/runsc-sysd.scope", dir)
	}
	e.must("delete", "--force", "sysd")
	spec.Linux.CgroupsPath = "/not/systemd"
	b.writeSpec(t, spec)
	r := e.exec("", "create", "--bundle", b.dir, "notsysd")
	if r.code != 1 || !strings.Contains(r.stderr, "want slice:prefix:name") {
		t.Fatalf("a path with --systemd-cgroup: exit %d, %q", r.code, r.stderr)
	}
}
