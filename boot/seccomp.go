package boot

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/seccomp"
	"golang.org/x/sys/unix"
)

// sandboxSyscalls are the system calls the sandbox makes once it is set
// up, as its own seccomp allowlist: what the Go runtime, the urpc
// server, the FUSE servers (go-fuse over /dev/fuse), the 9P clients (on
// donated sockets), the mounts of the containers' trees and the watch of
// their processes need. Notably absent: execve, ptrace, pivot_root,
// setns, unshare, mknod, socket, connect, bind, ioctl, bpf, keyctl,
// the mount API calls that open trees or make file systems (open_tree,
// fsopen, fsmount), and every uid, capability or namespace call.
var sandboxSyscalls = []string{
	// Go runtime: memory, threads (clone: see sandboxProfile), signals,
	// time, scheduling.
	"mmap", "munmap", "mprotect", "madvise", "mremap", "brk",
	"futex", "set_robust_list", "rseq", "exit", "exit_group",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"tgkill", "gettid", "getpid", "getppid", "sched_yield", "sched_getaffinity",
	"nanosleep", "clock_gettime", "clock_nanosleep", "gettimeofday",
	"getrandom", "restart_syscall", "getrlimit", "prlimit64", "uname",
	// Event loop and pipes.
	"epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "eventfd2",
	"pipe2", "ppoll", "poll", "splice",
	// The urpc listener and the donated sockets.
	"accept4", "read", "write", "readv", "writev", "pread64", "pwrite64",
	"recvmsg", "sendmsg", "recvfrom", "sendto", "shutdown",
	"getsockname", "getpeername", "getsockopt", "setsockopt",
	// Descriptors and the sandbox's own tmpfs (mount points, overlay
	// layers).
	"close", "dup", "dup3", "fcntl", "lseek",
	"openat", "newfstatat", "fstat", "statx", "fstatfs", "statfs", "getdents64",
	"mkdirat", "unlinkat", "fchmodat", "fchownat", "readlinkat",
	// A volatile root's merged-/usr links (see volatileUsr).
	"symlinkat",
	// The containers' trees (FUSE mounts made by the creator, attached
	// here) and overlays.
	"mount", "umount2", "move_mount",
	// The containers' processes: signals through pidfds, their exit
	// status, orphans of a shared pid namespace reaped.
	"pidfd_open", "pidfd_send_signal", "kill", "waitid", "wait4",
}

// sandboxProfile is the sandbox's filter as an OCI profile: anything
// not listed fails with EPERM (a call the list missed degrades into an
// error rather than killing the pod), a call through a foreign ABI kills
// it.
func sandboxProfile() *specs.LinuxSeccomp {
	errno := uint(unix.EPERM)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &errno,
		Syscalls:        []specs.LinuxSyscall{{Names: sandboxSyscalls, Action: specs.ActAllow}},
	}
	for _, flags := range []uint64{seccomp.ThreadCloneFlags, seccomp.ThreadCloneFlags | unix.CLONE_SETTLS} {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names: []string{"clone"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: flags, Op: specs.OpEqualTo}},
		})
	}
	return p
}

// confineSyscalls installs the sandbox's filter on all its threads.
func confineSyscalls() error {
	prog, err := seccomp.Compile(sandboxProfile())
	if err != nil {
		return fmt.Errorf("sandbox seccomp filter: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox no_new_privs: %w", err)
	}
	return seccomp.InstallAllThreads(prog)
}
