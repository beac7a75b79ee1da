package gofer

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileCaps are the capabilities the gofer keeps: those needed to act on
// files owned by any user of the container. Everything else, from the
// bounding set too, is dropped; CAP_MKNOD among them: the gofer never
// makes a device node (FIFOs and sockets need no capability).
var fileCaps = []uintptr{
	unix.CAP_CHOWN,
	unix.CAP_DAC_OVERRIDE,
	unix.CAP_DAC_READ_SEARCH,
	unix.CAP_FOWNER,
	unix.CAP_FSETID,
}

// lastCap is the highest capability number the kernel knows, from
// /proc/sys/kernel/cap_last_cap (read before the pivot), or CAP_LAST_CAP.
func lastCap() uintptr {
	b := make([]byte, 16)
	fd, err := unix.Open("/proc/sys/kernel/cap_last_cap", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	defer unix.Close(fd)
	n, _ := unix.Read(fd, b)
	var v uintptr
	for _, c := range b[:max(n, 0)] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + uintptr(c-'0')
	}
	if v == 0 {
		return unix.CAP_LAST_CAP
	}
	return v
}

// dropCapabilities drops, on every thread of the process, every
// capability but fileCaps (and CAP_SYS_ADMIN with passthrough, which
// registering a FUSE backing file needs; seccomp then allows no call that
// could use it but those ioctls and the file calls) from the bounding,
// effective, permitted, inheritable and ambient sets. last is the highest
// capability number.
func dropCapabilities(last uintptr, passthrough bool) error {
	keep := map[uintptr]bool{}
	for _, c := range fileCaps {
		keep[c] = true
	}
	if passthrough {
		keep[unix.CAP_SYS_ADMIN] = true
	}
	for c := uintptr(0); c <= last; c++ {
		if keep[c] {
			continue
		}
		// Every thread has the bounding set the gofer was exec'd with
		// (see Start): skip what it lacks already.
		if in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0); err == nil && in == 0 {
			continue
		}
		if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0); errno != 0 {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, errno)
		}
	}
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); errno != 0 {
		return fmt.Errorf("clearing ambient capabilities: %w", errno)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for c := range keep {
		data[c/32].Effective |= 1 << (c % 32)
		data[c/32].Permitted |= 1 << (c % 32)
	}
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
		return fmt.Errorf("setting capabilities: %w", errno)
	}
	runtime.KeepAlive(&hdr)
	runtime.KeepAlive(&data)
	return nil
}
