package seccomp

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// FuzzCompile compiles arbitrary profiles: Compile must not panic, and a
// program it returns must be valid, within the kernel's length limit, and
// return only verdicts the profile could produce.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},` +
		`{"names":["lseek"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":8589934592,"op":"SCMP_CMP_LE"}]}]}`))
	info, err := nativeInfo()
	if err != nil {
		f.Skip(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.LinuxSeccomp
		if json.Unmarshal(data, &s) != nil {
			return
		}
		_, _ = Flags(&s)
		prog, err := Compile(&s)
		if err != nil {
			if len(prog) != 0 {
				t.Fatalf("Compile returned %d instructions and error %v", len(prog), err)
			}
			return
		}
		if len(prog) > unix.BPF_MAXINSNS {
			t.Fatalf("program has %d instructions", len(prog))
		}
		vm, err := newFilterVM(prog)
		if err != nil {
			t.Fatalf("invalid program: %v", err)
		}
		verdicts := map[uint32]bool{}
		def, _ := actionRet(s.DefaultAction, s.DefaultErrnoRet, "", "")
		verdicts[def] = true
		// A foreign ABI kills the process (see generate).
		verdicts[unix.SECCOMP_RET_KILL_PROCESS] = true
		for _, sc := range s.Syscalls {
			ret, _ := actionRet(sc.Action, sc.ErrnoRet, "", "")
			verdicts[ret] = true
		}
		// Run every syscall the profile names, with arguments taken from its
		// conditions, plus a foreign architecture.
		inputs := []seccompData{{nr: 0, arch: unix.AUDIT_ARCH_PPC64LE}}
		for _, sc := range s.Syscalls {
			for _, name := range sc.Names {
				n, ok := info.SyscallNames[name]
				if !ok {
					continue
				}
				d := seccompData{nr: uint32(n), arch: uint32(info.ID)}
				inputs = append(inputs, d)
				for _, a := range sc.Args {
					if a.Index < maxArgs {
						d.args[a.Index] = a.Value
					}
				}
				inputs = append(inputs, d)
				if len(inputs) > 64 {
					break
				}
			}
		}
		for _, d := range inputs {
			got, err := vm.run(d)
			if err != nil {
				t.Fatalf("running %+v: %v", d, err)
			}
			if !verdicts[got] {
				t.Fatalf("%+v: verdict %#x is no action of the profile", d, got)
			}
		}
		// The exact verdicts: a syscall one rule alone names, without
		// argument conditions, gets that rule's action; a syscall no
		// rule names gets the default action.
		named := map[string]int{}
		for _, sc := range s.Syscalls {
			for _, name := range sc.Names {
				named[name]++
			}
		}
		check := func(name string, want uint32) {
			n, ok := info.SyscallNames[name]
			if !ok {
				return
			}
			got, err := vm.run(seccompData{nr: uint32(n), arch: uint32(info.ID)})
			if err != nil {
				t.Fatalf("running %s: %v", name, err)
			}
			if got != want {
				t.Fatalf("%s: verdict %#x, want %#x", name, got, want)
			}
		}
		for _, sc := range s.Syscalls {
			if len(sc.Args) > 0 {
				continue
			}
			want, _ := actionRet(sc.Action, sc.ErrnoRet, "", "")
			for _, name := range sc.Names {
				if named[name] == 1 {
					check(name, want)
				}
			}
		}
		for _, name := range []string{"getpid", "uname", "sched_yield", "ptrace"} {
			if named[name] == 0 {
				check(name, def)
			}
		}
	})
}
