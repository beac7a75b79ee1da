// Package nsfork starts a process that joins an existing user namespace
// before it execs, which a Go program cannot do for itself: setns into
// a user namespace needs a single-threaded caller, and a Go process has
// several threads before main runs. Go's own fork (syscall.ForkExec)
// offers no such step, so nsfork forks by hand: the child of a plain
// clone is single-threaded, joins the namespace, sets up its
// descriptors and execs, making only raw system calls on memory the
// parent prepared (it may not allocate, grow its stack or take a lock).
//
// The other namespaces the child needs (pid for children, net, ipc,
// uts, mount) are joined by the calling thread before Start, as with
// os.StartProcess: the child inherits them. New namespaces owned by the
// joined user namespace are made by the child once it is there (see
// Attr.Unshare).
package nsfork

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Attr says how to start the process.
type Attr struct {
	// UserNS is a user namespace (an open /proc/<pid>/ns/user, or a
	// pidfd) the child joins first; it then takes UID and GID there.
	UserNS *os.File
	UID    uint32
	GID    uint32
	// Files are the child's descriptors: Files[i] becomes descriptor
	// i. Every other descriptor is closed at exec.
	Files []*os.File
	// Setsid makes the child lead a session of its own.
	Setsid bool
	// Unshare are the namespaces (CLONE_NEW* flags, not
	// CLONE_NEWUSER) the child makes once it is in UserNS, so that
	// UserNS owns them. With CLONE_NEWPID the child forks once more,
	// as a child of the caller (CLONE_PARENT), so that what execs is
	// pid 1 of the new pid namespace; the fork in between exits. (The
	// pid Start returns is then the one the first child sees, so the
	// calling thread must not have joined another pid namespace.)
	Unshare uintptr
}

// child is what the forked child works from: numbers and pointers only,
// prepared by the parent (see forkChild).
type child struct {
	userns       uintptr
	uid, gid     uintptr
	exe          uintptr
	argv, envv   unsafe.Pointer
	empty        unsafe.Pointer
	fds          []int
	next         int
	setsid       bool
	unshare      uintptr
	errPipe      uintptr
	mask, oldSet uint64
}

// Start starts exe (an open executable: a memfd, say) with argv and env
// as a child of the calling thread, per attr, and returns its pid once it
// has exec'd (or why it could not: the child then is reaped). The calling
// goroutine should be locked to its thread when that thread has joined
// namespaces for the child.
func Start(exe *os.File, argv, env []string, attr Attr) (int, error) {
	if attr.UserNS == nil {
		return 0, errors.New("nsfork: no user namespace")
	}
	if attr.Unshare&unix.CLONE_NEWUSER != 0 {
		return 0, errors.New("nsfork: Unshare may not make a user namespace")
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return 0, fmt.Errorf("nsfork: argv: %w", err)
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return 0, fmt.Errorf("nsfork: env: %w", err)
	}
	empty, _ := syscall.BytePtrFromString("")
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("nsfork: status pipe: %w", err)
	}
	r, w := os.NewFile(uintptr(p[0]), "nsfork-status"), p[1]
	defer r.Close()
	c := &child{
		userns: attr.UserNS.Fd(), uid: uintptr(attr.UID), gid: uintptr(attr.GID),
		exe: exe.Fd(), argv: unsafe.Pointer(&argvp[0]), envv: unsafe.Pointer(&envp[0]), empty: unsafe.Pointer(empty),
		setsid: attr.Setsid, unshare: attr.Unshare, errPipe: uintptr(w), mask: ^uint64(0),
	}

	// The child moves descriptors about from the first number above
	// every one it is given or keeps.
	c.next = len(attr.Files)
	for _, f := range attr.Files {
		c.fds = append(c.fds, int(f.Fd()))
		c.next = max(c.next, int(f.Fd())+1)
	}
	c.next = max(c.next, int(c.exe)+1, w+1, int(c.userns)+1)

	runtime.LockOSThread()
	pid, errno := forkChild(c)
	runtime.UnlockOSThread()
	unix.Close(w)
	runtime.KeepAlive(argvp)
	runtime.KeepAlive(envp)
	runtime.KeepAlive(empty)
	runtime.KeepAlive(attr)
	runtime.KeepAlive(exe)
	if errno != 0 {
		return 0, fmt.Errorf("nsfork: clone: %w", errno)
	}
	// EOF once every child has exec'd or exited. Before it, in either
	// order (each write is atomic): a fork report (see stepForked) if
	// the child forked, and an error report if what was to exec failed.
	reports, _ := io.ReadAll(r)
	var report []byte
	forked := false
	for len(reports) >= 2 {
		if reports[0] == stepForked && len(reports) >= 5 {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
			pid = int(binary.LittleEndian.Uint32(reports[1:5]))
			reports, forked = reports[5:], true
			continue
		}
		report, reports = reports[:2], reports[2:]
	}
	if report == nil && len(reports) == 0 {
		if attr.Unshare&unix.CLONE_NEWPID != 0 && !forked {
			// The fork in between died (killed) before it said
			// whom it forked: that process, if any, is unknown
			// here, and the one named by pid is not it.
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
			return 0, fmt.Errorf("nsfork: child: died (%v) before it reported its fork into the new pid namespace", ws)
		}
		return pid, nil
	}
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
	if report == nil {
		return 0, fmt.Errorf("nsfork: child: short report %v", reports)
	}
	step := "setns"
	switch report[0] {
	case stepIDs:
		step = "setting uid and gid"
	case stepUnshare:
		step = "making namespaces"
	case stepFork:
		step = "forking into the new pid namespace"
	case stepFDs:
		step = "setting up descriptors"
	case stepSetsid:
		step = "setsid"
	case stepExec:
		step = "exec"
	}
	return 0, fmt.Errorf("nsfork: child: %s: %w", step, syscall.Errno(report[1]))
}

// The child's steps, reported with the errno of the one that failed.
// stepForked instead reports a fork into a new pid namespace, with the
// new process's pid (4 bytes, little-endian), from the one that forked
// it, which then exits.
const (
	stepSetns = iota
	stepIDs
	stepUnshare
	stepFork
	stepForked
	stepFDs
	stepSetsid
	stepExec
)

// forkChild forks; the child runs childMain and never returns. Signals
// are blocked on this thread across the fork, so that none runs a Go
// handler in the child.
//
//go:norace
//go:nosplit
func forkChild(c *child) (int, syscall.Errno) {
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.mask)), uintptr(unsafe.Pointer(&c.oldSet)), 8, 0, 0)
	r, _, errno := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno == 0 && r == 0 {
		childMain(c)
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.oldSet)), 0, 8, 0, 0)
	return int(r), errno
}

// childMain is the child: raw system calls only, then exec or exit.
//
//go:norace
//go:nosplit
func childMain(c *child) {
	step := uintptr(stepSetns)
	_, _, errno := syscall.RawSyscall(unix.SYS_SETNS, c.userns, unix.CLONE_NEWUSER, 0)
	if errno == 0 {
		step = stepIDs
		_, _, errno = syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
	}
	if errno == 0 {
		_, _, errno = syscall.RawSyscall(unix.SYS_SETRESGID, c.gid, c.gid, c.gid)
	}
	if errno == 0 {
		_, _, errno = syscall.RawSyscall(unix.SYS_SETRESUID, c.uid, c.uid, c.uid)
	}
	if errno == 0 && c.unshare != 0 {
		step = stepUnshare
		_, _, errno = syscall.RawSyscall(unix.SYS_UNSHARE, c.unshare, 0, 0)
	}
	if errno == 0 && c.unshare&unix.CLONE_NEWPID != 0 {
		step = stepFork
		var r uintptr
		r, _, errno = syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD|unix.CLONE_PARENT), 0, 0, 0, 0, 0)
		if errno == 0 && r != 0 {
			forked := [5]byte{stepForked, byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24)}
			syscall.RawSyscall(unix.SYS_WRITE, c.errPipe, uintptr(unsafe.Pointer(&forked[0])), 5)
			for {
				syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
			}
		}
	}
	if errno == 0 {
		step = stepFDs
		errno = childFDs(c)
	}
	if errno == 0 && c.setsid {
		step = stepSetsid
		_, _, errno = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0)
	}
	if errno == 0 {
		step = stepExec
		syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.oldSet)), 0, 8, 0, 0)
		_, _, errno = syscall.RawSyscall6(unix.SYS_EXECVEAT, c.exe, uintptr(c.empty), uintptr(c.argv), uintptr(c.envv), unix.AT_EMPTY_PATH, 0)
	}
	report := [2]byte{byte(step), byte(errno)}
	syscall.RawSyscall(unix.SYS_WRITE, c.errPipe, uintptr(unsafe.Pointer(&report[0])), 2)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// childFDs makes c.fds[i] descriptor i, not close-on-exec, and every
// other descriptor close-on-exec. The descriptors the child still needs
// (the executable, the status pipe) are moved above the range first.
//
//go:norace
//go:nosplit
func childFDs(c *child) syscall.Errno {
	n := len(c.fds)
	if int(c.exe) < n {
		r, _, errno := syscall.RawSyscall(unix.SYS_FCNTL, c.exe, unix.F_DUPFD_CLOEXEC, uintptr(c.next))
		if errno != 0 {
			return errno
		}
		c.exe, c.next = r, int(r)+1
	}
	if int(c.errPipe) < n {
		r, _, errno := syscall.RawSyscall(unix.SYS_FCNTL, c.errPipe, unix.F_DUPFD_CLOEXEC, uintptr(c.next))
		if errno != 0 {
			return errno
		}
		c.errPipe, c.next = r, int(r)+1
	}
	// A source below its target's range would be overwritten: move it
	// up first.
	for i := 0; i < n; i++ {
		if c.fds[i] < n && c.fds[i] != i {
			r, _, errno := syscall.RawSyscall(unix.SYS_FCNTL, uintptr(c.fds[i]), unix.F_DUPFD_CLOEXEC, uintptr(c.next))
			if errno != 0 {
				return errno
			}
			c.fds[i], c.next = int(r), int(r)+1
		}
	}
	for i := 0; i < n; i++ {
		var errno syscall.Errno
		if c.fds[i] == i {
			_, _, errno = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0)
		} else {
			_, _, errno = syscall.RawSyscall(unix.SYS_DUP3, uintptr(c.fds[i]), uintptr(i), 0)
		}
		if errno != 0 {
			return errno
		}
	}
	_, _, errno := syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(n), ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC)
	return errno
}
