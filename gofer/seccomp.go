package gofer

import (
	"fmt"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/runsc/runsc/fsimpl/host"
	runscseccomp "github.com/runsc/runsc/seccomp"
	"golang.org/x/sys/unix"
)

// allowedSyscalls is the gofer's seccomp allowlist: what the Go runtime,
// the 9P server and the host file system (fsimpl/host) need once the
// gofer is confined. Notably absent: execve, mount, pivot_root, ptrace,
// open/openat2 with paths from the client (openat is needed, always
// relative to a held descriptor), socket, connect, bind, kill of other
// processes, and every namespace or capability call.
var allowedSyscalls = []string{
	// Go runtime: memory, threads, signals, time, scheduling.
	"mmap", "munmap", "mprotect", "madvise", "mremap", "brk",
	"futex", "set_robust_list", "rseq", "exit", "exit_group",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"tgkill", "gettid", "getpid", "sched_yield", "sched_getaffinity",
	"nanosleep", "clock_gettime", "clock_nanosleep", "gettimeofday",
	"getrandom", "restart_syscall", "getrlimit", "prlimit64",
	// Event loop for the sockets.
	"epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "eventfd2", "pipe2",
	// Socket I/O on the donated connections.
	"read", "write", "readv", "writev", "recvmsg", "sendmsg", "recvfrom", "sendto",
	"shutdown", "getsockopt",
	// Descriptors.
	"close", "dup", "dup3", "fcntl",
	// File system operations, always relative to a held descriptor.
	"openat", "newfstatat", "fstat", "fstatfs", "statx",
	// Extended attributes, by directory descriptor and name.
	"getxattrat", "setxattrat", "listxattrat", "removexattrat",
	"pread64", "pwrite64", "preadv", "pwritev", "lseek", "getdents64", "fallocate",
	"ftruncate", "fsync", "fdatasync",
	"fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "utimensat",
	"mkdirat", "symlinkat", "linkat", "readlinkat",
	"renameat", "renameat2", "unlinkat",
}

// conditionalSyscalls are allowed only with the arguments given: clone
// for threads (no process, no namespace), mknodat for anything but a device node (S_IFCHR's bit is
// set in both device types, clear in FIFO, socket and regular file).
var conditionalSyscalls = []seccomp.NameWithConditions{
	{Name: "clone", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.Equal, Value: runscseccomp.ThreadCloneFlags}}},
	{Name: "clone", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.Equal, Value: runscseccomp.ThreadCloneFlags | unix.CLONE_SETTLS}}},
	{Name: "mknodat", Conditions: seccomp.ArgumentConditions{{Argument: 2, Operation: seccomp.BitsNotSet, Value: unix.S_IFCHR}}},
}

// installSeccomp loads the allowlist on every thread (TSYNC) with
// no_new_privs set. A call outside the list fails with EPERM rather than
// killing the gofer, so a path the list missed degrades to an I/O error
// in the sandbox instead of taking every file away.
//
// go-seccomp-bpf's ActionErrno returns EPERM. no_new_privs is set on the
// calling thread and the kernel sets it on the others when TSYNC
// synchronizes their filters.
//
// fuseFDs are the /dev/fuse descriptors passthrough files are registered
// on (-1 for none): ioctl is allowed on them with the backing open and
// close requests only, and then on any descriptor to read inode flags
// (FS_IOC_GETFLAGS, see host.OpenBacking).
func installSeccomp(fuseFDs []int) error {
	group := seccomp.SyscallGroup{Action: seccomp.ActionAllow, Names: allowedSyscalls}
	group.NamesWithCondtions = append(group.NamesWithCondtions, conditionalSyscalls...)
	for _, fd := range fuseFDs {
		if fd < 0 {
			continue
		}
		if len(group.NamesWithCondtions) == len(conditionalSyscalls) {
			group.NamesWithCondtions = append(group.NamesWithCondtions, seccomp.NameWithConditions{
				Name:       "ioctl",
				Conditions: seccomp.ArgumentConditions{{Argument: 1, Operation: seccomp.Equal, Value: unix.FS_IOC_GETFLAGS}},
			})
		}
		for _, req := range []uint64{host.FUSEDevIocBackingOpen, host.FUSEDevIocBackingClose} {
			group.NamesWithCondtions = append(group.NamesWithCondtions, seccomp.NameWithConditions{
				Name: "ioctl",
				Conditions: seccomp.ArgumentConditions{
					{Argument: 0, Operation: seccomp.Equal, Value: uint64(fd)},
					{Argument: 1, Operation: seccomp.Equal, Value: req},
				},
			})
		}
	}
	filter := seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync,
		Policy: seccomp.Policy{
			DefaultAction: seccomp.ActionErrno,
			Syscalls:      []seccomp.SyscallGroup{group},
		},
	}
	if err := seccomp.LoadFilter(filter); err != nil {
		return fmt.Errorf("installing seccomp filter: %w", err)
	}
	return nil
}
