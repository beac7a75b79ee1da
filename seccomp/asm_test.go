package seccomp

import (
	"math/rand"
	"testing"

	"golang.org/x/sys/unix"
)

// interpret runs the unassembled program, following labels directly.
func interpret(a *assembler, d seccompData) uint32 {
	var words [16]uint32
	words[0], words[1] = d.nr, d.arch
	for i, arg := range d.args {
		words[4+2*i], words[5+2*i] = uint32(arg), uint32(arg>>32)
	}
	var acc uint32
	for i := 0; ; {
		in := a.insns[i]
		switch {
		case in.isRet():
			return in.k
		case in.isCondJump():
			var ok bool
			switch in.code & 0xf0 {
			case unix.BPF_JEQ:
				ok = acc == in.k
			case unix.BPF_JGT:
				ok = acc > in.k
			case unix.BPF_JGE:
				ok = acc >= in.k
			}
			if ok {
				i = a.labels[in.jt]
			} else {
				i = a.labels[in.jf]
			}
			continue
		case in.code == unix.BPF_ALU|unix.BPF_AND|unix.BPF_K:
			acc &= in.k
		default:
			acc = words[in.k/4]
		}
		i++
	}
}

// TestAssemblerRandom assembles random forward-jumping programs, many with
// jumps far beyond 255 instructions, and checks that the result behaves like
// the symbolic program.
func TestAssemblerRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	ops := []uint16{unix.BPF_JEQ, unix.BPF_JGT, unix.BPF_JGE}
	trampolines := 0
	for iter := range 200 {
		n := 10 + rng.Intn(1500)
		a := &assembler{}
		// Labels at random positions, bound in order as the code is emitted.
		at := map[int][]label{}
		target := func(i int) label {
			span := 4
			if rng.Intn(3) > 0 {
				span = 700
			}
			p := i + 1 + rng.Intn(span)
			if p >= n {
				p = n - 1
			}
			l := a.newLabel()
			at[p] = append(at[p], l)
			return l
		}
		for i := range n {
			for _, l := range at[i] {
				a.bind(l)
			}
			switch r := rng.Intn(10); {
			case i == n-1 || r == 0:
				a.ret(uint32(i))
			case r < 3:
				a.load(uint32(4 * rng.Intn(16)))
			case r == 3:
				a.and(rng.Uint32())
			default:
				a.jump(ops[rng.Intn(len(ops))], rng.Uint32()>>uint(rng.Intn(32)), target(i), target(i))
			}
		}
		prog, err := a.assemble()
		if err != nil {
			t.Fatal(err)
		}
		if len(prog) > unix.BPF_MAXINSNS {
			continue
		}
		for _, f := range prog {
			if f.Code == unix.BPF_JMP|unix.BPF_JA {
				trampolines++
			}
		}
		vm, err := newFilterVM(prog)
		if err != nil {
			t.Fatalf("program %d: %v", iter, err)
		}
		for range 20 {
			d := seccompData{nr: rng.Uint32() >> uint(rng.Intn(32)), arch: rng.Uint32()}
			for i := range d.args {
				d.args[i] = rng.Uint64() >> uint(rng.Intn(64))
			}
			want := interpret(a, d)
			got, err := vm.run(d)
			if err != nil || got != want {
				t.Fatalf("program %d (%d instructions, %d assembled): got %d, %v; want %d", iter, n, len(prog), got, err, want)
			}
		}
	}
	if trampolines == 0 {
		t.Error("no program needed a trampoline")
	}
	t.Logf("%d trampolines", trampolines)
}
