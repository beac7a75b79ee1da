package boot

import (
	"os"
	"syscall"
	"testing"
)

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		name string
		st   syscall.WaitStatus
		want int
	}{
		{"exit 0", 0, 0},
		{"exit 1", 1 << 8, 1},
		{"exit 42", 42 << 8, 42},
		{"exit 255", 255 << 8, 255},
		{"SIGKILL", syscall.WaitStatus(syscall.SIGKILL), 128 + 9},
		{"SIGTERM", syscall.WaitStatus(syscall.SIGTERM), 128 + 15},
		{"SIGSEGV with core dump", syscall.WaitStatus(syscall.SIGSEGV) | 0x80, 128 + 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ExitCode(c.st); got != c.want {
				t.Fatalf("ExitCode(%#x) = %d, want %d", uint32(c.st), got, c.want)
			}
		})
	}
}

func TestWaitExec(t *testing.T) {
	for _, c := range []struct {
		name, msg string
	}{
		{"exec'd", ""},
		{"failed", "exec \"/bin/nope\": no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			w.WriteString(c.msg)
			w.Close()
			err = WaitExec(r)
			switch {
			case c.msg == "" && err != nil:
				t.Fatalf("WaitExec: %v, want nil on an empty pipe", err)
			case c.msg != "" && (err == nil || err.Error() != c.msg):
				t.Fatalf("WaitExec: %v, want %q", err, c.msg)
			}
			if err := r.Close(); err == nil {
				t.Error("WaitExec left its pipe open")
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"one line":               "one line",
		"two\nlines\n":           "two lines",
		"  tabs\tand\r\n  gaps ": "tabs and gaps",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
