package host

import (
	"errors"

	"github.com/hugelgupf/p9/linux"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysFchmodat2 is fchmodat2(2), the same number on every architecture.
const sysFchmodat2 = 452

// fchmodat2 changes the mode of name in dirfd. Unlike fchmodat(2) it
// honours AT_SYMLINK_NOFOLLOW (a symbolic link gets EOPNOTSUPP) and
// AT_EMPTY_PATH (the O_PATH descriptor dirfd itself is changed).
//
// Kernels before 6.6 lack fchmodat2: there the file is opened with
// O_NOFOLLOW (so a symbolic link fails with ELOOP) and changed with
// fchmod on the opened descriptor, which also cannot follow a link.
func fchmodat2(dirfd int, name string, mode uint32, flags int) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(sysFchmodat2, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(mode), uintptr(flags), 0, 0)
	if errno == 0 {
		return nil
	}
	if errno != unix.ENOSYS {
		return errno
	}
	var fd int
	if name == "" {
		fd, err = unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	} else {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if err == unix.ELOOP {
			return unix.EOPNOTSUPP
		}
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, mode)
}

// fixErrno converts a host errno in *err to the p9 package's own Errno
// type. The p9 server maps errors with errors.Is against os.ErrPermission
// and os.ErrExist before it looks at the errno, which would turn EPERM
// into EACCES and ENOTEMPTY into EEXIST; its own type passes unchanged.
func fixErrno(err *error) {
	var e unix.Errno
	if *err != nil && errors.As(*err, &e) {
		*err = linux.Errno(e)
	}
}
