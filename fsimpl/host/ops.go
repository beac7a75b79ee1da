package host

import (
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// dupFD duplicates fd with close-on-exec set.
func dupFD(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

// clone returns a new, unopened file naming the same node as f.
func (f *file) clone() (*file, error) {
	c := &file{a: f.a, parent: f.parent, name: f.name, fd: -1, openFD: -1, isDir: f.isDir, qid: f.qid}
	if f.fd >= 0 {
		fd, err := dupFD(f.fd)
		if err != nil {
			return nil, err
		}
		c.fd = fd
	}
	if f.ownParent {
		// The parent belongs to f alone (a single-file root, or the end
		// of a multi-component walk): give the clone its own.
		pfd, err := dupFD(f.parent.fd)
		if err != nil {
			if c.fd >= 0 {
				unix.Close(c.fd)
			}
			return nil, err
		}
		c.parent = &file{a: f.a, fd: pfd, openFD: -1, isDir: true}
		c.ownParent = true
	}
	return c, nil
}

// lookup opens the child name of directory f without following a symbolic
// link. The child's type is taken from the opened descriptor, so it cannot
// change between the check and the use: a directory keeps its O_PATH
// descriptor, anything else is named by (f, name).
func (f *file) lookup(name string) (*file, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := checkName(name); err != nil {
		return nil, st, err
	}
	if !f.isDir {
		return nil, st, unix.ENOTDIR
	}
	fd, err := unix.Openat(f.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, st, err
	}
	c := &file{a: f.a, parent: f, name: name, fd: -1, openFD: -1, qid: qidOf(&st)}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		c.fd = fd
		c.isDir = true
	} else {
		unix.Close(fd)
	}
	return c, st, nil
}

// walk implements Walk and WalkGetAttr. The p9 server walks one
// component at a time; several are handled too. Intermediate directories
// are released, except the last one when the result is not a directory: a
// non-directory is named by its parent's descriptor, so it then owns that
// parent.
func (f *file) walk(names []string) ([]p9.QID, *file, unix.Stat_t, error) {
	var st unix.Stat_t
	if len(names) == 0 {
		c, err := f.clone()
		if err != nil {
			return nil, nil, st, err
		}
		st, err = c.stat()
		if err != nil {
			c.Close()
			return nil, nil, st, err
		}
		return nil, c, st, nil
	}
	qids := make([]p9.QID, 0, len(names))
	cur := f
	release := func() {
		if cur != f {
			cur.Close()
		}
	}
	for _, name := range names {
		next, nst, err := cur.lookup(name)
		if err != nil {
			release()
			return nil, nil, st, err
		}
		if cur != f {
			if next.isDir {
				cur.Close()
				next.parent = nil
			} else {
				next.ownParent = true
			}
		}
		qids = append(qids, next.qid)
		cur, st = next, nst
	}
	return qids, cur, st, nil
}

// Walk implements p9.File.Walk.
func (f *file) Walk(names []string) (_ []p9.QID, _ p9.File, err error) {
	defer fixErrno(&err)
	qids, c, _, err := f.walk(names)
	if err != nil {
		return nil, nil, err
	}
	return qids, c, nil
}

// WalkGetAttr implements p9.File.WalkGetAttr.
func (f *file) WalkGetAttr(names []string) (_ []p9.QID, _ p9.File, _ p9.AttrMask, _ p9.Attr, err error) {
	defer fixErrno(&err)
	qids, c, st, err := f.walk(names)
	if err != nil {
		return nil, nil, p9.AttrMask{}, p9.Attr{}, err
	}
	mask, attr := attrOf(&st)
	return qids, c, mask, attr, nil
}

// GetAttr implements p9.File.GetAttr.
func (f *file) GetAttr(req p9.AttrMask) (_ p9.QID, _ p9.AttrMask, _ p9.Attr, err error) {
	defer fixErrno(&err)
	st, err := f.stat()
	if err != nil {
		return p9.QID{}, p9.AttrMask{}, p9.Attr{}, err
	}
	mask, attr := attrOf(&st)
	return qidOf(&st), mask, attr, nil
}

// StatFS implements p9.File.StatFS.
func (f *file) StatFS() (_ p9.FSStat, err error) {
	defer fixErrno(&err)
	fd := f.fd
	if fd < 0 {
		fd = f.parent.fd
	}
	var s unix.Statfs_t
	if err := unix.Fstatfs(fd, &s); err != nil {
		return p9.FSStat{}, err
	}
	return p9.FSStat{
		Type:            uint32(s.Type),
		BlockSize:       uint32(s.Bsize),
		Blocks:          s.Blocks,
		BlocksFree:      s.Bfree,
		BlocksAvailable: s.Bavail,
		Files:           s.Files,
		FilesFree:       s.Ffree,
		FSID:            uint64(uint32(s.Fsid.Val[0])) | uint64(uint32(s.Fsid.Val[1]))<<32,
		NameLength:      uint32(s.Namelen),
	}, nil
}

// SetAttr implements p9.File.SetAttr. Every change is made on f itself,
// never through a symbolic link: chmod/chown/utimes use AT_SYMLINK_NOFOLLOW
// or AT_EMPTY_PATH, and a size change opens the file with O_NOFOLLOW and
// checks that it is a regular file before truncating it.
func (f *file) SetAttr(valid p9.SetAttrMask, attr p9.SetAttr) (err error) {
	defer fixErrno(&err)
	if valid.Empty() {
		return nil
	}
	if f.readOnly() {
		return unix.EROFS
	}
	dirfd, name, flags := f.at()
	if valid.Size {
		if err := f.truncate(attr.Size); err != nil {
			return err
		}
	}
	if valid.Permissions {
		if err := fchmodat2(dirfd, name, uint32(attr.Permissions.Permissions()), flags); err != nil {
			return err
		}
	}
	if valid.UID || valid.GID {
		uid, gid := -1, -1
		if valid.UID {
			uid = int(attr.UID)
		}
		if valid.GID {
			gid = int(attr.GID)
		}
		if err := unix.Fchownat(dirfd, name, uid, gid, flags); err != nil {
			return err
		}
	}
	if valid.ATime || valid.MTime {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if valid.ATime {
			ts[0] = setTime(valid.ATimeNotSystemTime, attr.ATimeSeconds, attr.ATimeNanoSeconds)
		}
		if valid.MTime {
			ts[1] = setTime(valid.MTimeNotSystemTime, attr.MTimeSeconds, attr.MTimeNanoSeconds)
		}
		if err := unix.UtimesNanoAt(dirfd, name, ts, flags); err != nil {
			return err
		}
	}
	return nil
}

// setTime returns the timespec for a time change: the given time, or now.
func setTime(given bool, sec, nsec uint64) unix.Timespec {
	if !given {
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	}
	return unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
}

// truncate sets the size of regular file f.
func (f *file) truncate(size uint64) error {
	if f.isDir {
		return unix.EISDIR
	}
	f.mu.Lock()
	ofd, oflags := f.openFD, f.openFlags
	f.mu.Unlock()
	if ofd >= 0 && oflags.Mode() != p9.ReadOnly {
		return unix.Ftruncate(ofd, int64(size))
	}
	fd, err := f.openRegular(unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Ftruncate(fd, int64(size))
}

// openRegular opens non-directory f with flags, never following a
// symbolic link, and refuses anything that is not a regular file. The
// open is non-blocking so that a FIFO swapped in cannot stall the server.
func (f *file) openRegular(flags int) (int, error) {
	fd, err := unix.Openat(f.parent.fd, f.name, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, unix.EINVAL
	}
	// Regular files ignore O_NONBLOCK, but clear it so that the
	// descriptor behaves as the client asked.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^(unix.O_ACCMODE|unix.O_TRUNC|unix.O_CREAT|unix.O_EXCL)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Open implements p9.File.Open.
func (f *file) Open(mode p9.OpenFlags) (_ p9.QID, _ uint32, err error) {
	defer fixErrno(&err)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openFD >= 0 {
		return p9.QID{}, 0, unix.EBUSY
	}
	trunc := uint32(mode)&unix.O_TRUNC != 0
	if f.readOnly() && (mode.Mode() != p9.ReadOnly || trunc) {
		return p9.QID{}, 0, unix.EROFS
	}
	var fd int
	if f.isDir {
		if mode.Mode() != p9.ReadOnly {
			return p9.QID{}, 0, unix.EISDIR
		}
		fd, err = unix.Openat(f.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	} else {
		flags := mode.OSFlags()
		if trunc {
			flags |= unix.O_TRUNC
		}
		fd, err = f.openRegular(flags)
	}
	if err != nil {
		return p9.QID{}, 0, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return p9.QID{}, 0, err
	}
	f.openFD = fd
	f.openFlags = mode
	return qidOf(&st), 0, nil
}

// openedFD returns the descriptor from Open, or EBADF.
func (f *file) openedFD() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openFD < 0 {
		return -1, unix.EBADF
	}
	return f.openFD, nil
}

// ReadAt implements p9.File.ReadAt.
func (f *file) ReadAt(p []byte, offset int64) (_ int, err error) {
	defer fixErrno(&err)
	fd, err := f.openedFD()
	if err != nil {
		return 0, err
	}
	if f.isDir {
		return 0, unix.EISDIR
	}
	n, err := unix.Pread(fd, p, offset)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// WriteAt implements p9.File.WriteAt.
func (f *file) WriteAt(p []byte, offset int64) (_ int, err error) {
	defer fixErrno(&err)
	if f.readOnly() {
		return 0, unix.EROFS
	}
	fd, err := f.openedFD()
	if err != nil {
		return 0, err
	}
	total := 0
	for total < len(p) {
		n, err := unix.Pwrite(fd, p[total:], offset+int64(total))
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, unix.EIO
		}
		total += n
	}
	return total, nil
}

// FSync implements p9.File.FSync.
func (f *file) FSync() (err error) {
	defer fixErrno(&err)
	fd, err := f.openedFD()
	if err != nil {
		return err
	}
	return unix.Fsync(fd)
}

// Readlink implements p9.File.Readlink.
func (f *file) Readlink() (_ string, err error) {
	defer fixErrno(&err)
	if f.isDir {
		return "", unix.EINVAL
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(f.parent.fd, f.name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Allocate implements p9.Allocator: fallocate(2) on the open file, with
// the client's mode bits; the host file system accepts or refuses them.
func (f *file) Allocate(mode uint32, offset, length uint64) (err error) {
	defer fixErrno(&err)
	if f.readOnly() {
		return unix.EROFS
	}
	fd, err := f.openedFD()
	if err != nil {
		return err
	}
	if offset > 1<<63-1 || length > 1<<63-1 {
		return unix.EINVAL
	}
	return unix.Fallocate(fd, mode, int64(offset), int64(length))
}

// Lseek implements p9.Seeker: SEEK_DATA or SEEK_HOLE on the open file.
// The descriptor's offset is never used otherwise (reads and writes are
// positional).
func (f *file) Lseek(offset uint64, whence uint32) (_ uint64, err error) {
	defer fixErrno(&err)
	fd, err := f.openedFD()
	if err != nil {
		return 0, err
	}
	if offset > 1<<63-1 {
		return 0, unix.ENXIO
	}
	off, err := unix.Seek(fd, int64(offset), int(whence))
	if err != nil {
		return 0, err
	}
	return uint64(off), nil
}
