package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDo checks `runsc do`: the command's exit status and output, and
// that the host's files are never written, with the memory overlay (the
// write lands in the sandbox) and without it (the root is read-only).
func TestDo(t *testing.T) {
	e := newEnv(t)
	b := newBundle(t, testSpec("true"))
	host := filepath.Join(b.rootfs, "etc", "from-do")
	const script = "echo written > /etc/from-do && cat /etc/from-do; exit 3"
	for _, c := range []struct {
		name   string
		global []string
		out    string
	}{
		{"memory overlay", nil, "written\n"},
		{"overlay none is read-only", []string{"--overlay2=none"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{}, c.global...), "do", "--root-dir", b.rootfs, "--cwd", "/", "--", "sh", "-c", script)
			r := e.exec("", args...)
			if r.code != 3 || r.stdout != c.out {
				t.Fatalf("exit %d stdout %q stderr %q; want 3 and %q", r.code, r.stdout, r.stderr, c.out)
			}
			if c.out == "" && !strings.Contains(r.stderr, "Read-only file system") {
				t.Fatalf("the write failed otherwise: %q", r.stderr)
			}
			if _, err := os.Stat(host); !os.IsNotExist(err) {
				t.Fatalf("do wrote %s on the host: %v", host, err)
			}
		})
	}
}
