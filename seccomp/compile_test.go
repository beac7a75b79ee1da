package seccomp

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	retAllow uint32 = unix.SECCOMP_RET_ALLOW
	retBlock uint32 = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
)

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, profile, want string
	}{
		{"unknown default action", `{"defaultAction":"SCMP_ACT_NOPE"}`,
			`linux.seccomp.defaultAction "SCMP_ACT_NOPE": unknown action`},
		{"empty default action", `{}`,
			`linux.seccomp.defaultAction "": unknown action`},
		{"unknown action", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
			{"names":["uname"],"action":"SCMP_ACT_ERRNO"},
			{"names":["uname"],"action":"SCMP_ACT_BLOCK"}]}`,
			`linux.seccomp.syscalls[1].action "SCMP_ACT_BLOCK": unknown action`},
		{"notify", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["uname"],"action":"SCMP_ACT_NOTIFY"}]}`,
			`linux.seccomp.syscalls[0].action "SCMP_ACT_NOTIFY": not supported`},
		{"notify default", `{"defaultAction":"SCMP_ACT_NOTIFY"}`,
			`linux.seccomp.defaultAction "SCMP_ACT_NOTIFY": not supported`},
		{"bad arg index", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["umask"],"action":"SCMP_ACT_ERRNO",
			"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
			`linux.seccomp.syscalls[0].args[1].index 6: must be less than 6`},
		{"bad op", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["umask"],"action":"SCMP_ACT_ERRNO",
			"args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}`,
			`linux.seccomp.syscalls[0].args[0].op "SCMP_CMP_ABOUT": unknown operator`},
		{"empty op", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["umask"],"action":"SCMP_ACT_ERRNO",
			"args":[{"index":0,"value":1}]}]}`,
			`linux.seccomp.syscalls[0].args[0].op "": unknown operator`},
		{"empty name", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["uname",""],"action":"SCMP_ACT_ERRNO"}]}`,
			`linux.seccomp.syscalls[0].names[1]: empty syscall name`},
		{"empty name in redundant rule", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[""],"action":"SCMP_ACT_ALLOW"}]}`,
			`linux.seccomp.syscalls[0].names[0]: empty syscall name`},
		{"unknown architecture", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_VAX"]}`,
			`linux.seccomp.architectures[1] "SCMP_ARCH_VAX": unknown architecture`},
		{"errnoRet too large", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["uname"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}`,
			`linux.seccomp.syscalls[0].errnoRet 70000: must be at most 65535`},
		{"defaultErrnoRet too large", `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":65536}`,
			`linux.seccomp.defaultErrnoRet 65536: must be at most 65535`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s specs.LinuxSeccomp
			if err := json.Unmarshal([]byte(tc.profile), &s); err != nil {
				t.Fatal(err)
			}
			prog, err := Compile(&s)
			if err == nil {
				t.Fatalf("Compile succeeded with %d instructions, want error %q", len(prog), tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("Compile error %q, want %q", err, tc.want)
			}
		})
	}
	t.Run("nil profile", func(t *testing.T) {
		if _, err := Compile(nil); err == nil || !strings.Contains(err.Error(), "linux.seccomp") {
			t.Fatalf("Compile(nil) = %v, want an error naming linux.seccomp", err)
		}
	})
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []specs.LinuxSeccompFlag
		want  uint
		err   string
	}{
		{"none", nil, 0, ""},
		{"log", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG"}, unix.SECCOMP_FILTER_FLAG_LOG, ""},
		{"log and spec allow", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"},
			unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, ""},
		{"tsync ignored", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}, 0, ""},
		{"wait killable dropped", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}, 0, ""},
		{"unknown", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FAST"}, 0,
			`linux.seccomp.flags[1] "SECCOMP_FILTER_FLAG_FAST": unknown flag`},
		{"empty", []specs.LinuxSeccompFlag{""}, 0, `linux.seccomp.flags[0] "": unknown flag`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Flags(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tc.flags})
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Flags = %#x, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Flags = %#x, %v; want %#x", got, err, tc.want)
			}
		})
	}
	if got, err := Flags(nil); got != 0 || err != nil {
		t.Errorf("Flags(nil) = %#x, %v", got, err)
	}
}

func TestInstallRejects(t *testing.T) {
	// None of these reach the kernel, so they are safe in the test process.
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	for _, tc := range []struct {
		name  string
		prog  []unix.SockFilter
		flags uint
	}{
		{"empty", nil, 0},
		{"too long", make([]unix.SockFilter, unix.BPF_MAXINSNS+1), 0},
		{"tsync", prog, unix.SECCOMP_FILTER_FLAG_TSYNC},
		{"new listener", prog, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Install(tc.prog, tc.flags); err == nil {
				t.Fatal("Install succeeded")
			}
		})
	}
}

func TestActions(t *testing.T) {
	errno := func(e uint) *uint { return &e }
	for _, tc := range []struct {
		action   specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActErrno, nil, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{specs.ActErrno, errno(38), unix.SECCOMP_RET_ERRNO | 38},
		{specs.ActErrno, errno(0), unix.SECCOMP_RET_ERRNO},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{specs.ActTrace, errno(7), unix.SECCOMP_RET_TRACE | 7},
		{specs.ActLog, errno(7), unix.SECCOMP_RET_LOG},
		{specs.ActAllow, nil, unix.SECCOMP_RET_ALLOW},
	} {
		name := string(tc.action)
		if tc.errnoRet != nil {
			name += fmt.Sprintf("/%d", *tc.errnoRet)
		}
		t.Run(name, func(t *testing.T) {
			// As a rule against a default that differs from every action.
			other := uint32(unix.SECCOMP_RET_ERRNO | 99)
			vm := compileSpecVM(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActErrno, DefaultErrnoRet: errno(99),
				Syscalls: []specs.LinuxSyscall{{Names: []string{"uname"}, Action: tc.action, ErrnoRet: tc.errnoRet}},
			})
			if got := verdict(t, vm, "uname"); got != tc.want {
				t.Errorf("uname: got %#x, want %#x", got, tc.want)
			}
			if got := verdict(t, vm, "getcwd"); got != other {
				t.Errorf("getcwd: got %#x, want default %#x", got, other)
			}
			// As the default action.
			vm = compileSpecVM(t, &specs.LinuxSeccomp{DefaultAction: tc.action, DefaultErrnoRet: tc.errnoRet})
			if got := verdict(t, vm, "getcwd"); got != tc.want {
				t.Errorf("default: got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestArchitectures(t *testing.T) {
	info := native(t)
	if info != arch.X86_64 {
		t.Skip("the compat ABIs checked here are x86_64's")
	}
	const all = `"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],`
	profile := func(archs string) string {
		return `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,` + archs + `
		"syscalls":[{"names":["read","write","uname"],"action":"SCMP_ACT_ALLOW"},
			{"names":["close"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":18446744073709551615,"op":"SCMP_CMP_EQ"}]}]}`
	}
	def := uint32(unix.SECCOMP_RET_ERRNO | 38)
	kill := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	i386 := func(name string) uint32 { return uint32(arch.I386.SyscallNames[name]) }
	x32 := func(name string) uint32 { return uint32(arch.X32.SyscallNames[name]) | x32Bit }
	for _, tc := range []struct {
		name, archs string
		d           seccompData
		want        uint32
	}{
		{"native", all, seccompData{nr: nr(t, "read"), arch: unix.AUDIT_ARCH_X86_64}, retAllow},
		{"native unlisted", all, seccompData{nr: nr(t, "getcwd"), arch: unix.AUDIT_ARCH_X86_64}, def},
		{"nr -1", all, seccompData{nr: math.MaxUint32, arch: unix.AUDIT_ARCH_X86_64}, def},
		{"i386 by its numbers", all, seccompData{nr: i386("read"), arch: unix.AUDIT_ARCH_I386}, retAllow},
		{"i386 unlisted", all, seccompData{nr: i386("getcwd"), arch: unix.AUDIT_ARCH_I386}, def},
		{"i386 argument as 32 bits", all, seccompData{nr: i386("close"), arch: unix.AUDIT_ARCH_I386, args: [6]uint64{0xffffffff}}, retAllow},
		{"native argument as 64 bits", all, seccompData{nr: nr(t, "close"), arch: unix.AUDIT_ARCH_X86_64, args: [6]uint64{0xffffffff}}, def},
		{"x32 by its numbers", all, seccompData{nr: x32("read"), arch: unix.AUDIT_ARCH_X86_64}, retAllow},
		{"x32 unlisted", all, seccompData{nr: x32("getcwd"), arch: unix.AUDIT_ARCH_X86_64}, def},
		{"arm on x86_64", all, seccompData{nr: 3, arch: unix.AUDIT_ARCH_ARM}, kill},
		{"other 64-bit", all, seccompData{nr: 0, arch: unix.AUDIT_ARCH_PPC64LE}, kill},
		{"i386 not listed", "", seccompData{nr: i386("read"), arch: unix.AUDIT_ARCH_I386}, kill},
		{"x32 not listed", "", seccompData{nr: x32("read"), arch: unix.AUDIT_ARCH_X86_64}, kill},
		{"native only listed", `"architectures":["SCMP_ARCH_X86_64"],`, seccompData{nr: i386("getcwd"), arch: unix.AUDIT_ARCH_I386}, kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := compileVM(t, profile(tc.archs)).run(tc.d)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

// interesting are argument values around 32-bit word boundaries.
var interesting = []uint64{
	0, 1, 2, 0x7f, 0xff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
	1 << 32, 1<<32 + 1, 1 << 33, 1<<33 + 1, 1<<33 - 1, 0x1_0000_ffff,
	0xffff_ffff_0000_0000, 0x8000_0000_0000_0000, math.MaxUint64 - 1, math.MaxUint64,
}

// holds evaluates a condition in Go.
func holds(op specs.LinuxSeccompOperator, arg, v, v2 uint64) bool {
	switch op {
	case specs.OpEqualTo:
		return arg == v
	case specs.OpNotEqual:
		return arg != v
	case specs.OpLessThan:
		return arg < v
	case specs.OpLessEqual:
		return arg <= v
	case specs.OpGreaterThan:
		return arg > v
	case specs.OpGreaterEqual:
		return arg >= v
	case specs.OpMaskedEqual:
		return arg&v == v2
	}
	panic(op)
}

var ops = []specs.LinuxSeccompOperator{
	specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
	specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual,
}

func TestOperators(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	values := append([]uint64(nil), interesting...)
	for range 20 {
		values = append(values, rng.Uint64(), uint64(rng.Uint32()), rng.Uint64()&0xffff_ffff_0000_0000)
	}
	for _, op := range ops {
		t.Run(string(op), func(t *testing.T) {
			for _, v := range values {
				for idx := uint(0); idx < maxArgs; idx += 5 { // first and last argument
					v2 := v & 0x0f0f_0f0f_f0f0_f0f0
					vm := compileSpecVM(t, &specs.LinuxSeccomp{
						DefaultAction: specs.ActAllow,
						Syscalls: []specs.LinuxSyscall{{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.EACCES)),
							Args: []specs.LinuxSeccompArg{{Index: idx, Op: op, Value: v, ValueTwo: v2}}}},
					})
					for _, arg := range values {
						var args [6]uint64
						args[idx] = arg
						args[5-idx] = v // the other argument must not matter
						want := retAllow
						if holds(op, arg, v, v2) {
							want = retBlock
						}
						if got := verdict(t, vm, "lseek", args[:]...); got != want {
							t.Fatalf("arg%d=%#x %s %#x (valueTwo %#x): got %#x, want %#x", idx, arg, op, v, v2, got, want)
						}
					}
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRuleSemantics(t *testing.T) {
	t.Run("conditions are ANDed", func(t *testing.T) {
		vm := compileVM(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["lseek"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
			"args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"},{"index":2,"value":1,"op":"SCMP_CMP_GE"}]}]}`)
		for _, tc := range []struct {
			fd, whence uint64
			want       uint32
		}{{3, 1, retBlock}, {3, 2, retBlock}, {3, 0, retAllow}, {4, 1, retAllow}} {
			if got := verdict(t, vm, "lseek", tc.fd, 0, tc.whence); got != tc.want {
				t.Errorf("lseek(%d, 0, %d): got %#x, want %#x", tc.fd, tc.whence, got, tc.want)
			}
		}
	})
	t.Run("repeated argument is ORed like runc", func(t *testing.T) {
		vm := compileVM(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
			"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}]}`)
		for arg, want := range map[uint64]uint32{0: retAllow, 1: retBlock, 2: retBlock, 3: retAllow} {
			if got := verdict(t, vm, "umask", arg); got != want {
				t.Errorf("umask(%d): got %#x, want %#x", arg, got, want)
			}
		}
	})
	t.Run("rules are tried in profile order", func(t *testing.T) {
		vm := compileVM(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
			{"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
			{"names":["getcwd","umask"],"action":"SCMP_ACT_ERRNO","errnoRet":2,"args":[{"index":0,"value":8,"op":"SCMP_CMP_LT"}]},
			{"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":3},
			{"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":4}]}`)
		for arg, want := range map[uint64]uint32{1: 1, 0: 2, 7: 2, 8: 3, 1 << 40: 3} {
			if got := verdict(t, vm, "umask", arg); got != unix.SECCOMP_RET_ERRNO|want {
				t.Errorf("umask(%d): got %#x, want errno %d", arg, got, want)
			}
		}
		if got := verdict(t, vm, "getcwd", 9); got != retAllow {
			t.Errorf("getcwd(9): got %#x, want allow", got)
		}
	})
	t.Run("rule equal to the default is skipped like runc", func(t *testing.T) {
		vm := compileVM(t, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
			{"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
			{"names":["umask"],"action":"SCMP_ACT_ALLOW"}]}`)
		if got := verdict(t, vm, "umask", 1); got != retAllow {
			t.Errorf("umask(1): got %#x, want allow", got)
		}
	})
	t.Run("unknown names are ignored", func(t *testing.T) {
		vm := compileVM(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
			{"names":["no_such_syscall","socketcall","uname"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`)
		if got := verdict(t, vm, "uname"); got != retBlock {
			t.Errorf("uname: got %#x, want %#x", got, retBlock)
		}
	})
	t.Run("rule without names", func(t *testing.T) {
		vm := compileVM(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_KILL"}]}`)
		if got := verdict(t, vm, "uname"); got != retAllow {
			t.Errorf("uname: got %#x, want allow", got)
		}
	})
}

// TestLongPrograms checks programs whose jumps need trampolines: every
// syscall of the native table, each with a conditional rule, and one
// syscall with a block of rules far longer than a conditional jump reaches.
func TestLongPrograms(t *testing.T) {
	info := native(t)
	var names []string
	for name := range info.SyscallNames {
		names = append(names, name)
	}
	sort.Strings(names)

	t.Run("every syscall conditional", func(t *testing.T) {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: ptr(uint(38))}
		for i, name := range names {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
				Names: []string{name}, Action: specs.ActErrno, ErrnoRet: ptr(uint(i % 4000)),
				Args: []specs.LinuxSeccompArg{{Index: uint(i % 6), Value: uint64(i) << 20, Op: specs.OpEqualTo}},
			})
		}
		prog, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d syscalls: %d instructions", len(names), len(prog))
		vm, err := newFilterVM(prog)
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range names {
			var args [6]uint64
			args[i%6] = uint64(i) << 20
			if got := verdict(t, vm, name, args[:]...); got != unix.SECCOMP_RET_ERRNO|uint32(i%4000) {
				t.Fatalf("%s matching: got %#x, want errno %d", name, got, i%4000)
			}
			args[i%6]++
			if got := verdict(t, vm, name, args[:]...); got != unix.SECCOMP_RET_ERRNO|38 {
				t.Fatalf("%s not matching: got %#x, want default", name, got)
			}
		}
	})

	t.Run("long rule block", func(t *testing.T) {
		var others []string
		for _, name := range names {
			if name != "umask" {
				others = append(others, name)
			}
		}
		first, last := others[:50], others[len(others)-50:]
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		for _, name := range first {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActKillProcess})
		}
		for i := range 300 {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
				Names: []string{"umask"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(i + 1)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: uint64(i), Op: specs.OpEqualTo}},
			})
		}
		for _, name := range last {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActKillProcess})
		}
		vm := compileSpecVM(t, s)
		for i := range uint64(301) {
			want := unix.SECCOMP_RET_ERRNO | uint32(i+1)
			if i == 300 {
				want = retAllow
			}
			if got := verdict(t, vm, "umask", i); got != want {
				t.Fatalf("umask(%d): got %#x, want %#x", i, got, want)
			}
		}
		for _, name := range append(first[:50:50], last...) {
			if got := verdict(t, vm, name); got != unix.SECCOMP_RET_KILL_PROCESS {
				t.Fatalf("%s: got %#x, want kill", name, got)
			}
		}
	})

	t.Run("too long", func(t *testing.T) {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		for i := range 1000 {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
				Names: []string{"umask"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: uint64(i), Op: specs.OpLessThan}},
			})
		}
		_, err := Compile(s)
		if err == nil || !strings.Contains(err.Error(), "too long") {
			t.Fatalf("Compile = %v, want a too long error", err)
		}
	})
}
