package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// label names a position in a program under construction. Jumps refer to
// labels; the assembler turns them into offsets once the layout is known.
type label int

// next is a jump target meaning "the instruction after this jump".
const next label = -1

// insn is one classic BPF instruction whose jump targets are still labels.
type insn struct {
	code   uint16
	k      uint32
	jt, jf label // targets of a conditional jump
}

// assembler builds a forward-only BPF program with symbolic jump targets.
// Conditional jumps whose target lies more than 255 instructions ahead get a
// trampoline: an unconditional jump (or a copy of the target's return) placed
// right after them.
type assembler struct {
	insns  []insn
	labels []int // label -> index in insns it is bound to, -1 while unbound
}

// newLabel returns a fresh, unbound label.
func (a *assembler) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// bind attaches l to the next instruction to be emitted.
func (a *assembler) bind(l label) {
	a.labels[l] = len(a.insns)
}

// emit appends an instruction, resolving next targets of jumps.
func (a *assembler) emit(in insn) {
	a.insns = append(a.insns, in)
	if in.code&0x07 != unix.BPF_JMP {
		return
	}
	for _, t := range []*label{&a.insns[len(a.insns)-1].jt, &a.insns[len(a.insns)-1].jf} {
		if *t == next {
			*t = a.newLabel()
			a.bind(*t)
		}
	}
}

// load loads the 32-bit word at off in struct seccomp_data into A.
func (a *assembler) load(off uint32) {
	a.emit(insn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off})
}

// and masks A with k.
func (a *assembler) and(k uint32) {
	a.emit(insn{code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, k: k})
}

// ret returns k.
func (a *assembler) ret(k uint32) {
	a.emit(insn{code: unix.BPF_RET | unix.BPF_K, k: k})
}

// jump compares A with k using op (BPF_JEQ, BPF_JGT, BPF_JGE) and continues
// at jt when true, jf when false. Unconditional jumps are only ever created
// by the assembler itself, as trampolines.
func (a *assembler) jump(op uint16, k uint32, jt, jf label) {
	a.emit(insn{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
}

// isCondJump reports whether in is a conditional jump.
func (in insn) isCondJump() bool {
	return in.code&0x07 == unix.BPF_JMP && in.code&0xf0 != unix.BPF_JA
}

// isRet reports whether in is a return.
func (in insn) isRet() bool {
	return in.code&0x07 == unix.BPF_RET
}

// assemble resolves labels and returns the finished program.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	n := len(a.insns)
	if n == 0 || !a.insns[n-1].isRet() {
		return nil, fmt.Errorf("internal error: program does not end with a return")
	}
	target := func(i int, l label) (int, error) {
		if l < 0 || int(l) >= len(a.labels) || a.labels[l] < 0 || a.labels[l] >= n {
			return 0, fmt.Errorf("internal error: instruction %d jumps to unbound label %d", i, l)
		}
		if a.labels[l] <= i {
			return 0, fmt.Errorf("internal error: instruction %d jumps backwards", i)
		}
		return a.labels[l], nil
	}
	// Validate the targets once; the layout loop below can then index freely.
	for i, in := range a.insns {
		if in.code&0x07 == unix.BPF_JMP && !in.isCondJump() {
			return nil, fmt.Errorf("internal error: instruction %d is an unconditional jump", i)
		}
		if in.isCondJump() {
			for _, l := range []label{in.jt, in.jf} {
				if _, err := target(i, l); err != nil {
					return nil, err
				}
			}
		}
	}

	farT := make([]bool, n)
	farF := make([]bool, n)
	pos := make([]int, n+1)
	layout := func() {
		p := 0
		for i := range a.insns {
			pos[i] = p
			p++
			if farT[i] {
				p++
			}
			if farF[i] {
				p++
			}
		}
		pos[n] = p
	}
	dist := func(i int, l label) int { return pos[a.labels[l]] - pos[i] - 1 }
	// Far flags only ever go from false to true, so this terminates.
	for {
		layout()
		changed := false
		for i, in := range a.insns {
			if !in.isCondJump() {
				continue
			}
			if !farT[i] && dist(i, in.jt) > 255 {
				farT[i], changed = true, true
			}
			if !farF[i] && dist(i, in.jf) > 255 {
				farF[i], changed = true, true
			}
		}
		if !changed {
			break
		}
	}

	out := make([]unix.SockFilter, 0, pos[n])
	// long emits an unconditional transfer to l from the current position:
	// a copy of the target if it is a return, a BPF_JA otherwise.
	long := func(l label) {
		t := a.insns[a.labels[l]]
		if t.isRet() {
			out = append(out, unix.SockFilter{Code: t.code, K: t.k})
			return
		}
		off := pos[a.labels[l]] - len(out) - 1
		out = append(out, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(off)})
	}
	for i, in := range a.insns {
		switch {
		case in.isCondJump():
			f := unix.SockFilter{Code: in.code, K: in.k}
			if farT[i] {
				f.Jt = 0
			} else {
				f.Jt = uint8(dist(i, in.jt))
			}
			switch {
			case farF[i] && farT[i]:
				f.Jf = 1
			case farF[i]:
				f.Jf = 0
			default:
				f.Jf = uint8(dist(i, in.jf))
			}
			out = append(out, f)
			if farT[i] {
				long(in.jt)
			}
			if farF[i] {
				long(in.jf)
			}
		default:
			out = append(out, unix.SockFilter{Code: in.code, K: in.k})
		}
	}
	return out, nil
}
