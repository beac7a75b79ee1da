package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Environment of the child scenario run by TestMain.
const (
	envChild   = "SECCOMP_TEST_CHILD"   // set: run the child scenario
	envProfile = "SECCOMP_TEST_PROFILE" // the profile, as JSON
	envSyscall = "SECCOMP_TEST_SYSCALL" // the syscall to make after Install
	envArgs    = "SECCOMP_TEST_ARGS"    // its arguments: numbers, "buf" or "fd"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child installs the profile from the environment on a locked thread, makes
// one raw system call and prints its errno. Argument "buf" is a pointer to a
// 4 KiB buffer, "fd" a descriptor of a regular file.
func child() int {
	runtime.LockOSThread()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		return 3
	}
	var s specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(envProfile)), &s); err != nil {
		return fail("profile: %v", err)
	}
	prog, err := Compile(&s)
	if err != nil {
		return fail("Compile: %v", err)
	}
	flags, err := Flags(&s)
	if err != nil {
		return fail("Flags: %v", err)
	}
	info, err := nativeInfo()
	if err != nil {
		return fail("%v", err)
	}
	name := os.Getenv(envSyscall)
	sysno, ok := info.SyscallNames[name]
	if !ok {
		return fail("unknown syscall %q", name)
	}
	buf := make([]byte, 4096)
	f, err := os.Open(os.Args[0])
	if err != nil {
		return fail("%v", err)
	}
	var args [6]uintptr
	for i, a := range strings.Fields(os.Getenv(envArgs)) {
		switch a {
		case "buf":
			args[i] = uintptr(unsafe.Pointer(&buf[0]))
		case "fd":
			args[i] = f.Fd()
		default:
			v, err := strconv.ParseUint(a, 0, 64)
			if err != nil {
				return fail("argument %d: %v", i, err)
			}
			args[i] = uintptr(v)
		}
	}
	// No core file from SIGSYS.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fail("setrlimit: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("no_new_privs: %v", err)
	}
	if err := Install(prog, flags); err != nil {
		return fail("Install: %v", err)
	}
	_, _, errno := unix.Syscall6(uintptr(sysno), args[0], args[1], args[2], args[3], args[4], args[5])
	runtime.KeepAlive(buf)
	runtime.KeepAlive(f)
	fmt.Printf("errno=%d\n", errno)
	return 0
}

// result is how a child ended.
type result struct {
	errno  int // -1 unless the child printed one
	status syscall.WaitStatus
	stderr string
}

// runChild runs the child scenario: profile installed, then one call.
func runChild(t *testing.T, profile, call string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envChild+"=1", envProfile+"="+profile, envSyscall+"="+call, envArgs+"="+strings.Join(args, " "))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running child: %v", err)
	}
	r := result{errno: -1, status: cmd.ProcessState.Sys().(syscall.WaitStatus), stderr: stderr.String()}
	if r.status.Exited() && r.status.ExitStatus() == 3 {
		t.Fatalf("child failed: %s", r.stderr)
	}
	if v, ok := strings.CutPrefix(strings.TrimSpace(stdout.String()), "errno="); ok {
		if r.errno, err = strconv.Atoi(v); err != nil {
			t.Fatalf("child printed %q", stdout.String())
		}
	}
	return r
}

// expectErrno runs a child and checks the errno of its call.
func expectErrno(t *testing.T, profile string, want unix.Errno, call string, args ...string) {
	t.Helper()
	r := runChild(t, profile, call, args...)
	if r.errno != int(want) {
		t.Errorf("%s(%s): errno %d, want %d (%v); status %#x, stderr %q",
			call, strings.Join(args, ", "), r.errno, int(want), want, r.status, r.stderr)
	}
}

func TestInstall(t *testing.T) {
	if _, err := nativeInfo(); err != nil {
		t.Skip(err)
	}
	t.Run("errno", func(t *testing.T) {
		p := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["uname"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`
		expectErrno(t, p, unix.EACCES, "uname", "buf")
		expectErrno(t, p, 0, "getcwd", "buf", "4096")
	})
	t.Run("errno defaults to EPERM", func(t *testing.T) {
		expectErrno(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["uname"],"action":"SCMP_ACT_ERRNO"}]}`,
			unix.EPERM, "uname", "buf")
	})
	t.Run("args EQ", func(t *testing.T) {
		p := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
			"args":[{"index":0,"value":18,"op":"SCMP_CMP_EQ"}]}]}`
		expectErrno(t, p, unix.EACCES, "umask", "0o22")
		expectErrno(t, p, 0, "umask", "0o77")
	})
	t.Run("args MASKED_EQ", func(t *testing.T) {
		// Block masks that leave group-write open: (mask & 0o020) == 0.
		p := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
			"args":[{"index":0,"value":16,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}`
		expectErrno(t, p, unix.EACCES, "umask", "0o002")
		expectErrno(t, p, unix.EACCES, "umask", "0o707")
		expectErrno(t, p, 0, "umask", "0o022")
	})
	t.Run("args 64-bit", func(t *testing.T) {
		// 1<<33 and 0 share their low word; only the high word differs.
		p := fmt.Sprintf(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["lseek"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
			"args":[{"index":1,"value":%d,"op":"SCMP_CMP_EQ"}]}]}`, uint64(1)<<33)
		expectErrno(t, p, unix.EACCES, "lseek", "fd", strconv.FormatUint(1<<33, 10), "0")
		expectErrno(t, p, 0, "lseek", "fd", "0", "0")
		expectErrno(t, p, 0, "lseek", "fd", strconv.FormatUint(1<<34, 10), "0")
		expectErrno(t, p, 0, "lseek", "fd", strconv.FormatUint(1<<33+1, 10), "0")
	})
	t.Run("trace without tracer", func(t *testing.T) {
		// With no tracer attached the kernel fails the call with ENOSYS.
		expectErrno(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["uname"],"action":"SCMP_ACT_TRACE"}]}`,
			unix.ENOSYS, "uname", "buf")
	})
	t.Run("log flag", func(t *testing.T) {
		expectErrno(t, `{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],
			"syscalls":[{"names":["uname"],"action":"SCMP_ACT_LOG"},{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`,
			0, "uname", "buf")
	})
	t.Run("kill process", func(t *testing.T) {
		r := runChild(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_KILL_PROCESS"}]}`,
			"getcwd", "buf", "4096")
		if !r.status.Signaled() || r.status.Signal() != unix.SIGSYS {
			t.Errorf("status %#x (errno %d, stderr %q), want killed by SIGSYS", r.status, r.errno, r.stderr)
		}
	})
	t.Run("trap", func(t *testing.T) {
		// The Go runtime turns the SIGSYS into a crash.
		r := runChild(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_TRAP"}]}`,
			"getcwd", "buf", "4096")
		if r.errno != -1 || !strings.Contains(r.stderr, "SIGSYS") {
			t.Errorf("status %#x, errno %d, stderr %q; want a SIGSYS crash", r.status, r.errno, r.stderr)
		}
	})
	t.Run("docker-like allow-list", func(t *testing.T) {
		// Default ERRNO(ENOSYS) and 400 names: every native syscall but
		// uname and getcwd, plus names this architecture lacks; uname gets
		// its own ERRNO rule.
		info := native(t)
		var names []string
		for name := range info.SyscallNames {
			if name != "uname" && name != "getcwd" {
				names = append(names, name)
			}
		}
		for i := 0; len(names) < 400; i++ {
			names = append(names, fmt.Sprintf("not_a_syscall_%d", i))
		}
		s := specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, DefaultErrnoRet: ptr(uint(unix.ENOSYS)),
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM},
			Syscalls: []specs.LinuxSyscall{
				{Names: names[:200], Action: specs.ActAllow},
				{Names: []string{"uname"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EACCES))},
			},
		}
		for _, name := range names[200:] {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow})
		}
		prog, err := Compile(&s)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d names: %d instructions", len(names), len(prog))
		p, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		expectErrno(t, string(p), unix.EACCES, "uname", "buf")
		expectErrno(t, string(p), unix.ENOSYS, "getcwd", "buf", "4096")
		expectErrno(t, string(p), 0, "umask", "0o22")
	})
}
