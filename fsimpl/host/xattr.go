package host

import (
	"runtime"
	"strings"
	"unsafe"

	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// Extended attributes are read and written with the *xattrat system
// calls (Linux 6.13), relative to the file's directory descriptor and
// never following a final symbolic link, like every other operation
// here. The sandbox's kernel has already checked the caller's right to
// the attribute's namespace (trusted.* needs CAP_SYS_ADMIN on the host,
// security.capability CAP_SETFCAP over the file's owner, user.* write
// access); the gofer then acts with its own file capabilities, and the
// host's file system decides the rest.

// xattrMax is the largest attribute value and list (XATTR_SIZE_MAX,
// XATTR_LIST_MAX).
const xattrMax = 64 << 10

// xattrAt returns the (dirfd, name, flags) naming f for an *xattrat
// call, and what to call when done: a file by its directory and name,
// without following a final symbolic link; a directory by a descriptor
// opened from its own O_PATH one (the calls take no O_PATH descriptor
// with an empty path).
func (f *file) xattrAt() (int, string, int, func(), error) {
	if f.fd < 0 {
		return f.parent.fd, f.name, unix.AT_SYMLINK_NOFOLLOW, func() {}, nil
	}
	fd, err := unix.Openat(f.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", 0, nil, err
	}
	return fd, "", unix.AT_EMPTY_PATH, func() { unix.Close(fd) }, nil
}

// xattrArgs is struct xattr_args.
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

// GetXattr implements p9.File.GetXattr.
func (f *file) GetXattr(attr string) (_ []byte, err error) {
	defer fixErrno(&err)
	dirfd, name, flags, done, err := f.xattrAt()
	if err != nil {
		return nil, err
	}
	defer done()
	buf := make([]byte, xattrMax)
	args := xattrArgs{value: uint64(uintptr(unsafe.Pointer(&buf[0]))), size: uint32(len(buf))}
	n, err := xattrat(unix.SYS_GETXATTRAT, dirfd, name, flags, attr, &args)
	runtime.KeepAlive(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// SetXattr implements p9.File.SetXattr.
func (f *file) SetXattr(attr string, data []byte, flags p9.XattrFlags) (err error) {
	defer fixErrno(&err)
	if f.readOnly() {
		return unix.EROFS
	}
	if len(data) > xattrMax {
		return unix.E2BIG
	}
	dirfd, name, atFlags, done, err := f.xattrAt()
	if err != nil {
		return err
	}
	defer done()
	args := xattrArgs{size: uint32(len(data)), flags: uint32(flags)}
	if len(data) > 0 {
		args.value = uint64(uintptr(unsafe.Pointer(&data[0])))
	}
	_, err = xattrat(unix.SYS_SETXATTRAT, dirfd, name, atFlags, attr, &args)
	runtime.KeepAlive(data)
	return err
}

// ListXattrs implements p9.File.ListXattrs.
func (f *file) ListXattrs() (_ []string, err error) {
	defer fixErrno(&err)
	dirfd, name, flags, done, err := f.xattrAt()
	if err != nil {
		return nil, err
	}
	defer done()
	path, err := unix.BytePtrFromString(name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, xattrMax)
	n, _, errno := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(path)), uintptr(flags),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
	if errno != 0 {
		return nil, errno
	}
	var out []string
	for _, a := range strings.Split(string(buf[:n]), "\x00") {
		if a != "" {
			out = append(out, a)
		}
	}
	return out, nil
}

// RemoveXattr implements p9.File.RemoveXattr.
func (f *file) RemoveXattr(attr string) (err error) {
	defer fixErrno(&err)
	if f.readOnly() {
		return unix.EROFS
	}
	dirfd, name, flags, done, err := f.xattrAt()
	if err != nil {
		return err
	}
	defer done()
	path, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	a, err := unix.BytePtrFromString(attr)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_REMOVEXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(path)), uintptr(flags),
		uintptr(unsafe.Pointer(a)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// xattrat makes getxattrat or setxattrat (nr) on (dirfd, name, flags).
func xattrat(nr uintptr, dirfd int, name string, flags int, attr string, args *xattrArgs) (int, error) {
	path, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	a, err := unix.BytePtrFromString(attr)
	if err != nil {
		return 0, err
	}
	n, _, errno := unix.Syscall6(nr, uintptr(dirfd), uintptr(unsafe.Pointer(path)), uintptr(flags),
		uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
