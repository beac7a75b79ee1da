package gofer

import (
	"github.com/runsc/runsc/caps"
	"golang.org/x/sys/unix"
)

// fileCaps are the capabilities the gofer keeps: those needed to act on
// files owned by any user of the container, and CAP_SETFCAP to write a
// file capability the container's kernel allowed it to set. Everything
// else, from the bounding set too, is dropped; CAP_MKNOD among them: the
// gofer never makes a device node (FIFOs and sockets need no capability).
var fileCaps = []uintptr{
	unix.CAP_CHOWN,
	unix.CAP_DAC_OVERRIDE,
	unix.CAP_DAC_READ_SEARCH,
	unix.CAP_FOWNER,
	unix.CAP_FSETID,
	unix.CAP_SETFCAP,
}

// dropCapabilities drops every capability but fileCaps (and
// CAP_SYS_ADMIN with passthrough, which registering a FUSE backing file
// needs; seccomp then allows no call that could use it but those ioctls
// and the file calls) on every thread. last is the highest capability
// number.
func dropCapabilities(last int, passthrough bool) error {
	keep := append([]uintptr{}, fileCaps...)
	if passthrough {
		keep = append(keep, unix.CAP_SYS_ADMIN)
	}
	return caps.KeepOnly(last, keep...)
}
