package host

import (
	"unsafe"

	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// The FUSE passthrough ioctls on /dev/fuse (linux/fuse.h).
const (
	// FUSEDevIocBackingOpen is FUSE_DEV_IOC_BACKING_OPEN,
	// _IOW(229, 1, struct fuse_backing_map).
	FUSEDevIocBackingOpen = 0x4010e501
	// FUSEDevIocBackingClose is FUSE_DEV_IOC_BACKING_CLOSE,
	// _IOW(229, 2, uint32_t).
	FUSEDevIocBackingClose = 0x4004e502
)

// fuseBackingMap is struct fuse_backing_map.
type fuseBackingMap struct {
	fd      int32
	flags   uint32
	padding uint64
}

var _ p9.BackingOpener = (*file)(nil)

// OpenBacking implements p9.BackingOpener: it registers the file's open,
// read-only descriptor on the tree's /dev/fuse (Options.FUSEDev) and
// returns the id, the same one for every call until the file is closed.
// The server checked that the fid is an opened, read-only regular file.
func (f *file) OpenBacking() (_ uint32, err error) {
	defer fixErrno(&err)
	dev := f.a.opts.FUSEDev
	if dev == 0 {
		return 0, unix.ENOSYS
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openFD < 0 || f.openFlags.Mode() != p9.ReadOnly {
		return 0, unix.EBADF
	}
	if f.backingID != 0 {
		return f.backingID, nil
	}
	m := fuseBackingMap{fd: int32(f.openFD)}
	id, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(dev), FUSEDevIocBackingOpen, uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return 0, errno
	}
	f.backingID = uint32(id)
	return f.backingID, nil
}

// closeBacking unregisters a backing id. Files the kernel opened with it
// keep their own reference to the host file.
func closeBacking(dev int, id uint32) {
	unix.Syscall(unix.SYS_IOCTL, uintptr(dev), FUSEDevIocBackingClose, uintptr(unsafe.Pointer(&id)))
}
