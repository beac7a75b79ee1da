package boot

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// RelayFlag is the `runsc init` flag that makes it the relay of a
// container's init: see RelayNewPIDNS.
const RelayFlag = "relay-fd"

// RelayNewPIDNS gives the container's init a pid namespace of its own,
// nested in the sandbox's, while keeping it the creator's child.
//
// A process can make a pid namespace only for children, and only below
// its own active one; the creator's thread joined the sandbox's for its
// children, which is not its active one. So the creator starts this
// relay in the sandbox's pid namespace; the relay unshares a new one and
// starts the real init in it (argv, with this flag removed, and the same
// descriptors: stdio and keep) with CLONE_PARENT, making it the
// creator's child, sends a pidfd of it on relayFD (SCM_RIGHTS) and exits.
func RelayNewPIDNS(argv []string, relayFD int, keep []int) error {
	relay := os.NewFile(uintptr(relayFD), "relay")
	defer relay.Close()
	if err := relayStart(argv, relayFD, keep); err != nil {
		relay.Write([]byte(oneLine(err.Error())))
		return err
	}
	return nil
}

// relayStart does RelayNewPIDNS's work.
func relayStart(argv []string, relayFD int, keep []int) error {
	// The new pid namespace is this thread's, for its children: the
	// fork must come from this thread.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWPID); err != nil {
		return fmt.Errorf("relay: new pid namespace: %w", err)
	}
	// The init gets stdio and keep at their numbers, nothing else.
	maxFD := 2
	for _, fd := range keep {
		maxFD = max(maxFD, fd)
	}
	files := make([]uintptr, maxFD+1)
	for fd := range files {
		files[fd] = ^uintptr(0)
	}
	for _, fd := range append([]int{0, 1, 2}, keep...) {
		if fd >= 0 && fd != relayFD {
			files[fd] = uintptr(fd)
		}
	}
	pidfd := -1
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{},
		Files: files,
		Sys: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_PARENT,
			// A session of its own, as runc's init.
			Setsid: true,
			PidFD:  &pidfd,
		},
	}
	if _, err := syscall.ForkExec("/proc/self/exe", argv, attr); err != nil {
		return fmt.Errorf("relay: starting the init: %w", err)
	}
	if pidfd < 0 {
		return fmt.Errorf("relay: no pidfd for the init")
	}
	defer unix.Close(pidfd)
	if err := unix.Sendmsg(relayFD, []byte{0}, unix.UnixRights(pidfd), nil, 0); err != nil {
		return fmt.Errorf("relay: sending the init's pidfd: %w", err)
	}
	return nil
}
