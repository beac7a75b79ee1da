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

// OpenBacking implements p9.BackingOpener: it registers the file's open
// descriptor, opened with the mode the client asked for, on the tree's
// /dev/fuse (Options.FUSEDev) and returns the id, the same one for every
// call until the file is closed.
//
// The kernel opens a backing file anew for every FUSE open answered with
// its id, with that open's flags, and checks only the backing file's
// mount (read-only, for writing) and the inode's write denials (a
// running binary, fs-verity): not its immutable or append-only flags,
// which only an open by name checks. An id can always be used for a
// write open (the kernel lets an inode use one backing file at a time,
// so all its opens share one). Each registration therefore grants no
// more than an open of the file through this server would: a
// read-only tree is mounted read-only in the gofer, and in a writable
// tree a file opened for reading that is immutable or append-only is
// not registered, nor is a set-user-ID or set-group-ID file (see
// noSetID). The checks are made on every call, so that a file that
// became one since its registration gets no id any more.
func (f *file) OpenBacking() (_ uint32, err error) {
	defer fixErrno(&err)
	dev := f.a.opts.FUSEDev
	if dev == 0 {
		return 0, unix.ENOSYS
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openFD < 0 || f.isDir {
		return 0, unix.EBADF
	}
	if !f.a.opts.ReadOnly {
		if f.openFlags.Mode() == p9.ReadOnly {
			if err := writableByName(f.openFD); err != nil {
				return 0, err
			}
		}
		if err := noSetID(f.openFD); err != nil {
			return 0, err
		}
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

// writableByName refuses (EACCES) a file, opened read-only as fd, that
// an open by name for writing would refuse but the kernel's reopen of a
// backing file would not: one whose inode is immutable or append-only.
// A file system without inode flags has neither.
func writableByName(fd int) error {
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	switch err {
	case nil:
	case unix.ENOTTY, unix.EOPNOTSUPP, unix.EINVAL:
		return nil
	default:
		return unix.EACCES
	}
	if flags&(fsImmutableFL|fsAppendFL) != 0 {
		return unix.EACCES
	}
	return nil
}

// noSetID refuses (EACCES) a file whose set-user-ID or set-group-ID bit
// a write may have to clear: the client clears them when the kernel asks
// it to on a write request, which a write through a backing file never
// makes (see fuse9p's killpriv.go), and any id may serve a write open.
func noSetID(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_ISUID != 0 || st.Mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP {
		return unix.EACCES
	}
	return nil
}

// The inode flags of FS_IOC_GETFLAGS (linux/fs.h) that only an open by
// name checks.
const (
	fsImmutableFL = 0x10
	fsAppendFL    = 0x20
)

// closeBacking unregisters a backing id. Files the kernel opened with it
// keep their own reference to the host file.
func closeBacking(dev int, id uint32) {
	unix.Syscall(unix.SYS_IOCTL, uintptr(dev), FUSEDevIocBackingClose, uintptr(unsafe.Pointer(&id)))
}
