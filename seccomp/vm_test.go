package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData is the input of a seccomp filter.
type seccompData struct {
	nr   uint32
	arch uint32
	args [6]uint64
}

// filterVM runs a compiled filter in golang.org/x/net/bpf's interpreter, an
// implementation independent of the kernel's.
type filterVM struct {
	vm *bpf.VM
}

// newFilterVM checks prog (valid jumps, ends with a return, within the
// kernel's length limit and instruction set) and prepares it to run.
func newFilterVM(prog []unix.SockFilter) (*filterVM, error) {
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("program has %d instructions", len(prog))
	}
	insns := make([]bpf.Instruction, len(prog))
	for i, f := range prog {
		switch f.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if f.K%4 != 0 || f.K >= 64 {
				return nil, fmt.Errorf("instruction %d loads offset %d", i, f.K)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_RET | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JA, unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
		default:
			return nil, fmt.Errorf("instruction %d has unexpected code %#x", i, f.Code)
		}
		insns[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}.Disassemble()
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		return nil, err
	}
	return &filterVM{vm: vm}, nil
}

// run returns the filter's verdict for d.
func (v *filterVM) run(d seccompData) (uint32, error) {
	// The VM loads words big-endian; store each 32-bit word of
	// seccomp_data that way so a load sees the native value.
	buf := make([]byte, 64)
	binary.BigEndian.PutUint32(buf[0:], d.nr)
	binary.BigEndian.PutUint32(buf[4:], d.arch)
	for i, a := range d.args {
		binary.BigEndian.PutUint32(buf[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(buf[20+8*i:], uint32(a>>32))
	}
	n, err := v.vm.Run(buf)
	return uint32(n), err
}

// native returns the native architecture's syscall table.
func native(t testing.TB) *arch.Info {
	t.Helper()
	info, err := nativeInfo()
	if err != nil {
		t.Skip(err)
	}
	return info
}

// nr returns the native number of a syscall.
func nr(t testing.TB, name string) uint32 {
	t.Helper()
	n, ok := native(t).SyscallNames[name]
	if !ok {
		t.Fatalf("no syscall %q on this architecture", name)
	}
	return uint32(n)
}

// compileVM compiles a profile given as JSON and loads it into the VM.
func compileVM(t testing.TB, profile string) *filterVM {
	t.Helper()
	var s specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(profile), &s); err != nil {
		t.Fatalf("bad test profile: %v", err)
	}
	return compileSpecVM(t, &s)
}

// compileSpecVM compiles s and loads it into the VM.
func compileSpecVM(t testing.TB, s *specs.LinuxSeccomp) *filterVM {
	t.Helper()
	prog, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	vm, err := newFilterVM(prog)
	if err != nil {
		t.Fatalf("invalid program: %v", err)
	}
	return vm
}

// verdict runs the native syscall name with args through vm.
func verdict(t testing.TB, vm *filterVM, name string, args ...uint64) uint32 {
	t.Helper()
	d := seccompData{nr: nr(t, name), arch: uint32(native(t).ID)}
	copy(d.args[:], args)
	got, err := vm.run(d)
	if err != nil {
		t.Fatalf("running filter: %v", err)
	}
	return got
}
