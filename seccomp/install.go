package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// installFlags are the filter flags Install accepts.
const installFlags = unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW

// Install loads prog as a seccomp filter on the calling thread only; it never
// synchronises the filter to other threads (no SECCOMP_FILTER_FLAG_TSYNC). The
// caller must have locked its OS thread and should execve next. flags is a
// mask from Flags: SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW
// are accepted, any other bit is an error.
//
// The kernel accepts the filter only if the thread has no_new_privs set or
// holds CAP_SYS_ADMIN in its user namespace. Install uses seccomp(2) and falls
// back to prctl(PR_SET_SECCOMP) on kernels without it when flags is 0.
func Install(prog []unix.SockFilter, flags uint) error {
	if len(prog) == 0 {
		return errors.New("seccomp filter is empty")
	}
	if len(prog) > unix.BPF_MAXINSNS {
		return fmt.Errorf("seccomp filter too long: %d instructions, the kernel allows %d", len(prog), unix.BPF_MAXINSNS)
	}
	if flags&^installFlags != 0 {
		return fmt.Errorf("seccomp filter flags %#x: unsupported (only SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW)", flags)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	if errno == unix.ENOSYS && flags == 0 {
		_, _, errno = unix.Syscall6(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0, 0)
	}
	runtime.KeepAlive(prog)
	runtime.KeepAlive(&fprog)
	switch errno {
	case 0:
		return nil
	case unix.EACCES:
		return fmt.Errorf("loading seccomp filter: %w (needs no_new_privs or CAP_SYS_ADMIN)", errno)
	}
	return fmt.Errorf("loading seccomp filter: %w", errno)
}

// InstallAllThreads loads prog on every thread of the process at once
// (SECCOMP_FILTER_FLAG_TSYNC), for a process that confines itself, such
// as the sandbox. It fails if a thread has a filter the caller's is not
// an ancestor of.
func InstallAllThreads(prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > unix.BPF_MAXINSNS {
		return fmt.Errorf("seccomp filter of %d instructions: want 1 to %d", len(prog), unix.BPF_MAXINSNS)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(&fprog)
	if errno != 0 {
		return fmt.Errorf("loading seccomp filter on all threads: %w", errno)
	}
	if r != 0 {
		return fmt.Errorf("loading seccomp filter on all threads: thread %d has an unrelated filter", r)
	}
	return nil
}

// ThreadCloneFlags are the flags the Go runtime creates threads with
// (runtime.cloneFlags; on amd64 its clone adds CLONE_SETTLS, so a filter
// allows both): a confined runsc process allows clone with these only.
const ThreadCloneFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD
