// Package seccomp provides a pure Go compiler and loader for OCI seccomp
// profiles (spec.Linux.Seccomp): Compile turns a profile into a classic BPF
// program for the native architecture, Flags converts the profile's filter
// flags, and Install loads the program on the calling thread.
//
// The semantics follow runc with libseccomp where they are observable:
//
//   - SCMP_ACT_KILL means SCMP_ACT_KILL_THREAD. SCMP_ACT_ERRNO and
//     SCMP_ACT_TRACE carry errnoRet (defaultErrnoRet for the default action),
//     or EPERM when it is unset. SCMP_ACT_NOTIFY is not supported.
//   - The native ABI is always filtered, and so is each other ABI the
//     profile's architectures list that this machine runs (x86 and x32 on
//     x86_64, arm on aarch64), with that ABI's syscall numbers (and, for a
//     32-bit ABI, arguments compared as 32-bit values). A system call made
//     through any other ABI kills the process, as libseccomp's bad-arch
//     action does: a deny-list profile is no bypass for `int 0x80`.
//   - Syscall names this architecture does not know are ignored, so that one
//     profile serves several architectures.
//   - A rule whose action (with its errno) equals the default action is
//     skipped, as runc does.
//   - The conditions of one rule are ANDed, except that a rule with two or
//     more conditions on the same argument is split into one rule per
//     condition (ORed), as runc does. Rules for the same syscall are tried in
//     profile order and the first match decides.
//   - Arguments are compared as unsigned 64-bit values; SCMP_CMP_MASKED_EQ
//     matches when arg&value == valueTwo.
//
// The program dispatches on the syscall number with a binary search, so
// large allow-lists (Docker's default profile) stay short and fast.
package seccomp

import (
	"fmt"
	"runtime"
	"slices"
	"sort"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32Bit marks system calls made through the x32 ABI on x86_64.
const x32Bit = 0x40000000

// maxArgs is the number of system call arguments in struct seccomp_data.
const maxArgs = 6

// leafSize is the number of syscalls compared linearly at the bottom of the
// dispatch tree.
const leafSize = 4

// nativeArches maps GOARCH to the architecture's libseccomp name.
var nativeArches = map[string]specs.Arch{
	"amd64": specs.ArchX86_64,
	"arm64": specs.ArchAARCH64,
	"386":   specs.ArchX86,
	"arm":   specs.ArchARM,
}

// compatABIs are, by GOARCH, the other ABIs a process may use on that
// architecture, by libseccomp name.
var compatABIs = map[string]map[specs.Arch]*arch.Info{
	"amd64": {specs.ArchX86: arch.I386, specs.ArchX32: arch.X32},
	"arm64": {specs.ArchARM: arch.ARM},
}

// abi32 are the ABIs whose arguments are 32-bit values.
var abi32 = map[*arch.Info]bool{arch.I386: true, arch.ARM: true}

// knownArches are the architecture names a profile may list.
var knownArches = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true,
	specs.ArchARM: true, specs.ArchAARCH64: true,
	specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true,
	specs.ArchPPC: true, specs.ArchPPC64: true, specs.ArchPPC64LE: true,
	specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true,
	specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true,
	specs.ArchM68K: true, specs.ArchSH: true, specs.ArchSHEB: true,
}

// rule is one compiled syscall rule: when all conds hold, return ret.
type rule struct {
	conds []specs.LinuxSeccompArg
	ret   uint32
}

// syscallRules are the rules for one syscall number, in profile order.
type syscallRules struct {
	nr    uint32
	rules []rule
}

// Compile turns an OCI seccomp profile into a BPF program for the native
// architecture (runtime.GOARCH: amd64, arm64, 386 or arm). Errors name the
// offending field of the profile, e.g. linux.seccomp.syscalls[3].action.
func Compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if s == nil {
		return nil, fmt.Errorf("linux.seccomp: no profile")
	}
	info, err := nativeInfo()
	if err != nil {
		return nil, err
	}
	def, err := actionRet(s.DefaultAction, s.DefaultErrnoRet, "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet")
	if err != nil {
		return nil, err
	}
	for i, a := range s.Architectures {
		if !knownArches[a] {
			return nil, fmt.Errorf("linux.seccomp.architectures[%d] %q: unknown architecture", i, a)
		}
	}

	type entry struct {
		names []string
		rules []rule
	}
	var entries []entry
	for i, sc := range s.Syscalls {
		field := fmt.Sprintf("linux.seccomp.syscalls[%d]", i)
		ret, err := actionRet(sc.Action, sc.ErrnoRet, field+".action", field+".errnoRet")
		if err != nil {
			return nil, err
		}
		rules, err := compileArgs(sc.Args, ret, field)
		if err != nil {
			return nil, err
		}
		for j, name := range sc.Names {
			if name == "" {
				return nil, fmt.Errorf("%s.names[%d]: empty syscall name", field, j)
			}
		}
		if ret == def {
			continue // redundant; runc skips it too
		}
		entries = append(entries, entry{sc.Names, rules})
	}

	abis := []*arch.Info{info}
	for _, a := range s.Architectures {
		if c := compatABIs[runtime.GOARCH][a]; c != nil && !slices.Contains(abis, c) {
			abis = append(abis, c)
		}
	}
	tables := make([]abiCalls, len(abis))
	for i, abi := range abis {
		bySyscall := map[uint32]*syscallRules{}
		for _, e := range entries {
			rules := e.rules
			if abi32[abi] {
				rules = truncated(rules)
			}
			for _, name := range e.names {
				nr, ok := abi.SyscallNames[name]
				if !ok {
					continue // not a syscall of this ABI
				}
				n := uint32(nr | abi.SeccompMask)
				r := bySyscall[n]
				if r == nil {
					r = &syscallRules{nr: n}
					bySyscall[n] = r
				}
				r.rules = append(r.rules, rules...)
			}
		}
		calls := make([]syscallRules, 0, len(bySyscall))
		for _, r := range bySyscall {
			calls = append(calls, *r)
		}
		sort.Slice(calls, func(i, j int) bool { return calls[i].nr < calls[j].nr })
		tables[i] = abiCalls{abi, calls}
	}

	a := generate(tables, def)
	if len(a.insns) > unix.BPF_MAXINSNS {
		return nil, tooLong(len(a.insns))
	}
	prog, err := a.assemble()
	if err != nil {
		return nil, err
	}
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, tooLong(len(prog))
	}
	return prog, nil
}

// tooLong is the error for a program beyond the kernel's limit.
func tooLong(n int) error {
	return fmt.Errorf("linux.seccomp.syscalls: filter too long: %d instructions, the kernel allows %d", n, unix.BPF_MAXINSNS)
}

// nativeInfo returns the syscall table and audit architecture of GOARCH.
func nativeInfo() (*arch.Info, error) {
	if _, ok := nativeArches[runtime.GOARCH]; !ok {
		return nil, fmt.Errorf("linux.seccomp: architecture %s is not supported", runtime.GOARCH)
	}
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: architecture %s: %w", runtime.GOARCH, err)
	}
	return info, nil
}

// actionRet converts an action and its errno to a seccomp return value.
func actionRet(a specs.LinuxSeccompAction, errnoRet *uint, field, errnoField string) (uint32, error) {
	data := func() (uint32, error) {
		if errnoRet == nil {
			return uint32(unix.EPERM), nil
		}
		if *errnoRet > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("%s %d: must be at most %d", errnoField, *errnoRet, unix.SECCOMP_RET_DATA)
		}
		return uint32(*errnoRet), nil
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		d, err := data()
		return unix.SECCOMP_RET_ERRNO | d, err
	case specs.ActTrace:
		d, err := data()
		return unix.SECCOMP_RET_TRACE | d, err
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("%s %q: not supported", field, a)
	}
	return 0, fmt.Errorf("%s %q: unknown action", field, a)
}

// compileArgs validates a rule's argument conditions and returns the rules
// they make: one rule with all conditions, or, when an argument index repeats,
// one rule per condition (runc's behaviour).
func compileArgs(args []specs.LinuxSeccompArg, ret uint32, field string) ([]rule, error) {
	var seen [maxArgs]bool
	repeated := false
	for j, arg := range args {
		if arg.Index >= maxArgs {
			return nil, fmt.Errorf("%s.args[%d].index %d: must be less than %d", field, j, arg.Index, maxArgs)
		}
		switch arg.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
			specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		default:
			return nil, fmt.Errorf("%s.args[%d].op %q: unknown operator", field, j, arg.Op)
		}
		repeated = repeated || seen[arg.Index]
		seen[arg.Index] = true
	}
	if !repeated {
		return []rule{{conds: args, ret: ret}}, nil
	}
	rules := make([]rule, len(args))
	for j := range args {
		rules[j] = rule{conds: args[j : j+1], ret: ret}
	}
	return rules, nil
}

// abiCalls are the compiled rules of one ABI, sorted by syscall number.
type abiCalls struct {
	abi   *arch.Info
	calls []syscallRules
}

// truncated returns rules with their condition values cut to 32 bits, as
// a 32-bit ABI's arguments are (libseccomp does the same).
func truncated(rules []rule) []rule {
	out := make([]rule, len(rules))
	for i, r := range rules {
		conds := make([]specs.LinuxSeccompArg, len(r.conds))
		for j, c := range r.conds {
			c.Value, c.ValueTwo = uint64(uint32(c.Value)), uint64(uint32(c.ValueTwo))
			conds[j] = c
		}
		out[i] = rule{conds: conds, ret: r.ret}
	}
	return out
}

// generate emits the filter: dispatch on the audit architecture, load the
// syscall number, then search the ABI's calls (sorted by number) for the
// syscall's rules. tables[0] is the native ABI. An architecture no table
// covers, and the x32 ABI unless a table covers it, kill the process.
func generate(tables []abiCalls, def uint32) *assembler {
	a := &assembler{}
	kill := a.newLabel()
	a.load(offArch)
	byID := map[uint32]label{}
	var x32 *abiCalls
	for i := range tables {
		t := &tables[i]
		if t.abi == arch.X32 {
			x32 = t
			continue
		}
		id := uint32(t.abi.ID)
		byID[id] = a.newLabel()
		a.jump(unix.BPF_JEQ, id, byID[id], next)
	}
	a.ret(unix.SECCOMP_RET_KILL_PROCESS)
	for i := range tables {
		t := &tables[i]
		if t.abi == arch.X32 {
			continue
		}
		a.bind(byID[uint32(t.abi.ID)])
		a.load(offNr)
		if t.abi == arch.X86_64 {
			x32Label := kill
			if x32 != nil {
				x32Label = a.newLabel()
			}
			a.jump(unix.BPF_JGE, x32Bit, x32Label, next)
			a.tree(t.calls, def)
			if x32 != nil {
				a.bind(x32Label)
				a.tree(x32.calls, def)
			}
			continue
		}
		a.tree(t.calls, def)
	}
	// Labels jump forward only: the x32 ABI, unless listed, ends here.
	a.bind(kill)
	a.ret(unix.SECCOMP_RET_KILL_PROCESS)
	return a
}

// tree emits a binary search over calls, sorted by number, with A holding
// the syscall number. Every path through it ends in a return.
func (a *assembler) tree(calls []syscallRules, def uint32) {
	if len(calls) <= leafSize {
		a.leaf(calls, def)
		return
	}
	mid := len(calls) / 2
	right := a.newLabel()
	a.jump(unix.BPF_JGE, calls[mid].nr, right, next)
	a.tree(calls[:mid], def)
	a.bind(right)
	a.tree(calls[mid:], def)
}

// leaf compares A with each syscall number in calls in turn and runs the
// matching syscall's rules. Syscalls whose first rule is unconditional share
// one return per action.
func (a *assembler) leaf(calls []syscallRules, def uint32) {
	targets := make([]label, len(calls))
	shared := map[uint32]label{}
	var order []uint32
	for i, c := range calls {
		if len(c.rules[0].conds) == 0 {
			l, ok := shared[c.rules[0].ret]
			if !ok {
				l = a.newLabel()
				shared[c.rules[0].ret] = l
				order = append(order, c.rules[0].ret)
			}
			targets[i] = l
		} else {
			targets[i] = a.newLabel()
		}
		a.jump(unix.BPF_JEQ, c.nr, targets[i], next)
	}
	a.ret(def)
	for _, ret := range order {
		a.bind(shared[ret])
		a.ret(ret)
	}
	for i, c := range calls {
		if len(c.rules[0].conds) != 0 {
			a.bind(targets[i])
			a.rules(c.rules, def)
		}
	}
}

// rules emits one syscall's rules in order; the first whose conditions all
// hold returns its action, and the default action ends the list.
func (a *assembler) rules(rules []rule, def uint32) {
	for _, r := range rules {
		if len(r.conds) == 0 {
			a.ret(r.ret)
			return // later rules are unreachable
		}
		fail := a.newLabel()
		for _, c := range r.conds {
			a.cond(c, fail)
		}
		a.ret(r.ret)
		a.bind(fail)
	}
	a.ret(def)
}

// cond emits a 64-bit comparison of a syscall argument that falls through
// when it holds and jumps to fail when it does not. The argument's low word
// comes first in seccomp_data (all supported architectures are little-endian).
func (a *assembler) cond(c specs.LinuxSeccompArg, fail label) {
	lo := uint32(offArgs + 8*c.Index)
	hi := lo + 4
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	pass := a.newLabel()
	switch c.Op {
	case specs.OpEqualTo:
		a.load(hi)
		a.jump(unix.BPF_JEQ, vhi, next, fail)
		a.load(lo)
		a.jump(unix.BPF_JEQ, vlo, pass, fail)
	case specs.OpNotEqual:
		a.load(hi)
		a.jump(unix.BPF_JEQ, vhi, next, pass)
		a.load(lo)
		a.jump(unix.BPF_JEQ, vlo, fail, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.load(hi)
		a.jump(unix.BPF_JGT, vhi, pass, next)
		a.jump(unix.BPF_JEQ, vhi, next, fail)
		a.load(lo)
		op := uint16(unix.BPF_JGT)
		if c.Op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		a.jump(op, vlo, pass, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		// arg < v is !(arg >= v); arg <= v is !(arg > v).
		a.load(hi)
		a.jump(unix.BPF_JGT, vhi, fail, next)
		a.jump(unix.BPF_JEQ, vhi, next, pass)
		a.load(lo)
		op := uint16(unix.BPF_JGE)
		if c.Op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		a.jump(op, vlo, fail, pass)
	case specs.OpMaskedEqual:
		mlo, mhi := uint32(c.Value), uint32(c.Value>>32)
		dlo, dhi := uint32(c.ValueTwo), uint32(c.ValueTwo>>32)
		a.load(hi)
		a.and(mhi)
		a.jump(unix.BPF_JEQ, dhi, next, fail)
		a.load(lo)
		a.and(mlo)
		a.jump(unix.BPF_JEQ, dlo, pass, fail)
	default:
		panic("seccomp: unvalidated operator " + string(c.Op)) // compileArgs checks ops
	}
	a.bind(pass)
}

// flagBits maps filter flag names to the bits Install passes to seccomp(2).
// SECCOMP_FILTER_FLAG_TSYNC is accepted and ignored, as runc does: the filter
// is installed on one thread right before execve. The wait-killable flag only
// matters with a notification listener, which is not supported, so it is
// accepted and dropped (libseccomp also sets it only with a listener).
var flagBits = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: 0,
	"SECCOMP_FILTER_FLAG_TSYNC":            0,
}

// Flags converts s.Flags (names like "SECCOMP_FILTER_FLAG_LOG") to the bit
// mask for Install. It returns an error naming the field for unknown names.
// A nil profile has no flags.
func Flags(s *specs.LinuxSeccomp) (uint, error) {
	if s == nil {
		return 0, nil
	}
	var mask uint
	for i, f := range s.Flags {
		bit, ok := flagBits[f]
		if !ok {
			return 0, fmt.Errorf("linux.seccomp.flags[%d] %q: unknown flag", i, f)
		}
		mask |= bit
	}
	return mask, nil
}
