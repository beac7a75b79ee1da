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

func TestExec(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("sh", "-c", "echo marker > /marker; sleep 100000"))
	e.must("run", "-d", "--bundle", b.dir, "target")
	saved := e.saved("target")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(saved.InitPID), "root/marker")); err == nil {
			break
		}
	}

	t.Run("sees the container", func(t *testing.T) {
		r := e.exec("", "exec", "target", "sh", "-c", "cat /marker; cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; exit 5")
		if r.code != 5 {
			t.Fatalf("exit %d, want 5 (stderr %q)", r.code, r.stderr)
		}
		if r.stdout != "marker\nsleep 100000 \nrunsc-test\n" {
			t.Fatalf("stdout %q", r.stdout)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		r := e.exec("through exec\n", "exec", "target", "cat")
		if r.code != 0 || r.stdout != "through exec\n" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("user cwd env", func(t *testing.T) {
		out := e.must("exec", "--user", "1000:1000", "--additional-gids", "7", "--cwd", "/tmp", "--env", "X=y", "target", "sh", "-c", `id; pwd; echo $X`)
		if out != "uid=1000 gid=1000 groups=7\n/tmp\ny\n" {
			t.Fatalf("output %q", out)
		}
	})
	t.Run("process json", func(t *testing.T) {
		p := specs.Process{Args: []string{"sh", "-c", "echo from-json $V"}, Env: []string{"PATH=/bin", "V=1"}, Cwd: "/"}
		data, _ := json.Marshal(p)
		f := filepath.Join(t.TempDir(), "process.json")
		os.WriteFile(f, data, 0o644)
		if out := e.must("exec", "--process", f, "target"); out != "from-json 1\n" {
			t.Fatalf("output %q", out)
		}
	})
	t.Run("detach pid-file ps", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		e.must("exec", "--detach", "--pid-file", pidFile, "target", "sleep", "100000")
		data, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm")); string(comm) != "sleep\n" {
			t.Fatalf("pid-file %d is %q", pid, comm)
		}
		var pids []int
		json.Unmarshal([]byte(e.must("ps", "--format", "json", "target")), &pids)
		found := false
		for _, p := range pids {
			found = found || p == pid
		}
		if !found {
			t.Fatalf("ps %v lacks the exec'd process %d", pids, pid)
		}
		e.must("kill", "--all", "target", "KILL")
		waitGone(t, pid)
	})
	t.Run("not running", func(t *testing.T) {
		r := e.exec("", "exec", "target", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "target") {
			t.Fatalf("exec in a stopped container: exit %d %q", r.code, r.stderr)
		}
	})
}

func TestExecTerminalAndSubcontainer(t *testing.T) {
	e := newEnv(t)
	startPod(t, e)
	b := newBundle(t, podSpec("pod", "sh", "-c", "echo sub > /whoami; sleep 100000"))
	e.must("create", "--bundle", b.dir, "sub")
	e.must("start", "sub")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, _ := e.run("exec", "sub", "cat", "/whoami"); out == "sub\n" {
			break
		}
	}
	if out := e.must("exec", "sub", "cat", "/whoami"); out != "sub\n" {
		t.Fatalf("exec in the subcontainer read %q", out)
	}
	if r := e.exec("", "exec", "pod", "cat", "/whoami"); r.code == 0 {
		t.Fatal("the sandbox container sees the subcontainer's file")
	}
	r := e.exec("", "exec", "--tty", "sub", "sh", "-c", "tty; exit 4")
	if r.code != 4 || !strings.HasPrefix(r.stdout, "/dev/pts/") {
		t.Fatalf("exec --tty: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}
