package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvFlags checks the global flags containerd-shim-runsc-v1 passes
// in RUNSC_FLAGS: applied unless given on the command line, passed on
// to child processes, and refused when unknown or malformed.
func TestEnvFlags(t *testing.T) {
	root := t.TempDir()
	t.Run("applied, command line wins", func(t *testing.T) {
		t.Setenv(flagsEnv, `{"overlay2":"none","root":"/nonexistent"}`)
		var stderr bytes.Buffer
		// list with --root given: the env's root must not apply.
		if st := runMain([]string{"--root", root, "list", "--quiet"}, &stderr); st != 0 {
			t.Fatalf("list: status %d, %q", st, stderr.String())
		}
		if current.Overlay2 != "none" || current.Root != root {
			t.Fatalf("overlay2 %q root %q", current.Overlay2, current.Root)
		}
		if got := strings.Join(current.args, " "); !strings.Contains(got, "--overlay2=none") || strings.Contains(got, "/nonexistent") {
			t.Fatalf("flags passed on: %q", got)
		}
	})
	for _, c := range []struct{ env, want string }{
		{`{"no-such-flag":"1"}`, `unknown global flag "no-such-flag"`},
		{`{"debug":"maybe"}`, `flag "debug"`},
		{`not json`, "want a JSON object"},
		{`{"version":"true"}`, `unknown global flag "version"`},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(flagsEnv, c.env)
			var stderr bytes.Buffer
			if st := runMain([]string{"--root", root, "list"}, &stderr); st != 1 || !strings.Contains(stderr.String(), c.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("status %d, stderr %q, want one line with %q", st, stderr.String(), c.want)
			}
		})
	}
}

// TestDebugLogPerContainer checks --debug-log=DIR/%ID%/: the command's
// container ID names the directory, and each command logs to a file of
// its own in it.
func TestDebugLogPerContainer(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	// state of a missing container fails, after its ID is known.
	runMain([]string{"--root", t.TempDir(), "--debug", "--debug-log", dir + "/%ID%/", "state", "box1"}, &stderr)
	if _, err := os.Stat(filepath.Join(dir, "box1", "runsc.state.log")); err != nil {
		t.Fatalf("no per-container debug log: %v (stderr %q)", err, stderr.String())
	}
	for _, a := range current.args {
		if strings.Contains(a, idPattern) {
			t.Fatalf("the flags passed on still name %s: %q", idPattern, current.args)
		}
	}
	// An ID that is not a container ID does not name a directory.
	runMain([]string{"--root", t.TempDir(), "--debug-log", dir + "/%ID%/", "state", "../x"}, &stderr)
	if _, err := os.Stat(filepath.Join(dir, "..", "x")); err == nil {
		t.Fatal("a bad ID made a directory outside the log directory")
	}
}

// TestErrorInJSONLog checks that a failing command leaves runc's error
// record in a --log-format json log: containerd's runc client reads the
// last {"level":"error","msg":...} to say why the runtime failed.
func TestErrorInJSONLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log.json")
	var stderr bytes.Buffer
	if st := runMain([]string{"--root", t.TempDir(), "--log", log, "--log-format", "json", "state", "nope"}, &stderr); st != 1 {
		t.Fatalf("state of a missing container: status %d", st)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Level, Msg string }
	if err := json.Unmarshal(bytes.TrimSpace(data), &rec); err != nil || rec.Level != "error" || !strings.Contains(rec.Msg, `"nope" does not exist`) {
		t.Fatalf("log %q: %+v %v", data, rec, err)
	}
}
