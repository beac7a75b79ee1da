package host

import (
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// idArgs converts 9P owner IDs to chown arguments (-1: leave unchanged).
func idArgs(uid p9.UID, gid p9.GID) (int, int) {
	u, g := -1, -1
	if uid.Ok() {
		u = int(uid)
	}
	if gid.Ok() {
		g = int(gid)
	}
	return u, g
}

// checkCreate validates a name about to be created in directory f.
func (f *file) checkCreate(name string) error {
	if f.readOnly() {
		return unix.EROFS
	}
	if !f.isDir {
		return unix.ENOTDIR
	}
	return checkName(name)
}

// finishCreate sets the owner of the new entry name and returns its QID;
// on failure it removes the entry again so nothing half-made remains.
func (f *file) finishCreate(name string, uid p9.UID, gid p9.GID, unlinkFlags int) (p9.QID, error) {
	u, g := idArgs(uid, gid)
	if u != -1 || g != -1 {
		if err := unix.Fchownat(f.fd, name, u, g, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			unix.Unlinkat(f.fd, name, unlinkFlags)
			return p9.QID{}, err
		}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(f.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return p9.QID{}, err
	}
	return qidOf(&st), nil
}

// Create implements p9.File.Create. The new file is opened in the same
// call that creates it (O_CREAT|O_EXCL|O_NOFOLLOW), so nothing can be
// swapped in between.
func (f *file) Create(name string, mode p9.OpenFlags, perm p9.FileMode, uid p9.UID, gid p9.GID) (_ p9.File, _ p9.QID, _ uint32, err error) {
	defer fixErrno(&err)
	if err := f.checkCreate(name); err != nil {
		return nil, p9.QID{}, 0, err
	}
	flags := mode.OSFlags() | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(f.fd, name, flags, uint32(perm.Permissions()))
	if err != nil {
		return nil, p9.QID{}, 0, err
	}
	c, err := f.newOpened(fd, name, mode, uid, gid)
	if err != nil {
		unix.Unlinkat(f.fd, name, 0)
		return nil, p9.QID{}, 0, err
	}
	return c, c.qid, 0, nil
}

// newOpened returns the file fd, just made in directory f as name ("" for
// an unnamed one) and opened with mode, once it has its owner. On error
// fd is closed; removing what was made is the caller's.
func (f *file) newOpened(fd int, name string, mode p9.OpenFlags, uid p9.UID, gid p9.GID) (*file, error) {
	u, g := idArgs(uid, gid)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if u != -1 || g != -1 {
		if err := unix.Fchown(fd, u, g); err != nil {
			unix.Close(fd)
			return nil, err
		}
		// The chown clears set-ID bits the new file was made with
		// (the client's kernel already applied the creation's
		// rules): give them back, as a create by that user keeps
		// them.
		if setID := st.Mode & (unix.S_ISUID | unix.S_ISGID); setID != 0 {
			if err := unix.Fchmod(fd, st.Mode&07777); err != nil {
				unix.Close(fd)
				return nil, err
			}
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return &file{a: f.a, parent: f, name: name, fd: -1, openFD: fd, openFlags: mode, qid: qidOf(&st)}, nil
}

// Mkdir implements p9.File.Mkdir.
func (f *file) Mkdir(name string, perm p9.FileMode, uid p9.UID, gid p9.GID) (_ p9.QID, err error) {
	defer fixErrno(&err)
	if err := f.checkCreate(name); err != nil {
		return p9.QID{}, err
	}
	if err := unix.Mkdirat(f.fd, name, uint32(perm.Permissions())); err != nil {
		return p9.QID{}, err
	}
	return f.finishCreate(name, uid, gid, unix.AT_REMOVEDIR)
}

// Symlink implements p9.File.Symlink. The target is stored as given; it
// is never resolved by the server.
func (f *file) Symlink(target, name string, uid p9.UID, gid p9.GID) (_ p9.QID, err error) {
	defer fixErrno(&err)
	if err := f.checkCreate(name); err != nil {
		return p9.QID{}, err
	}
	if err := unix.Symlinkat(target, f.fd, name); err != nil {
		return p9.QID{}, err
	}
	return f.finishCreate(name, uid, gid, 0)
}

// Link implements p9.File.Link. The target is a file of this server, so a
// link can only be made to a file inside a served tree; directories cannot
// be linked.
func (f *file) Link(target p9.File, name string) (err error) {
	defer fixErrno(&err)
	if err := f.checkCreate(name); err != nil {
		return err
	}
	t, ok := target.(*file)
	if !ok || t.a != f.a {
		return unix.EXDEV
	}
	if t.isDir {
		return unix.EPERM
	}
	if t.name == "" {
		// An unnamed file (Tmpfile): linked from its descriptor.
		fd, err := t.openedFD()
		if err != nil {
			return err
		}
		return unix.Linkat(fd, "", f.fd, name, unix.AT_EMPTY_PATH)
	}
	return unix.Linkat(t.parent.fd, t.name, f.fd, name, 0)
}

// Mknod implements p9.File.Mknod. Only regular files, FIFOs and sockets
// are made, unless Options.AllowDevices is set.
func (f *file) Mknod(name string, mode p9.FileMode, major, minor uint32, uid p9.UID, gid p9.GID) (_ p9.QID, err error) {
	defer fixErrno(&err)
	if err := f.checkCreate(name); err != nil {
		return p9.QID{}, err
	}
	var dev uint64
	switch {
	case mode.IsRegular(), mode.IsNamedPipe(), mode.IsSocket():
	case mode.IsCharacterDevice(), mode.IsBlockDevice():
		if !f.a.opts.AllowDevices {
			return p9.QID{}, unix.EPERM
		}
		dev = unix.Mkdev(major, minor)
	default:
		return p9.QID{}, unix.EINVAL
	}
	if err := unix.Mknodat(f.fd, name, uint32(mode.FileType()|mode.Permissions()), int(dev)); err != nil {
		return p9.QID{}, err
	}
	return f.finishCreate(name, uid, gid, 0)
}

// Rename implements p9.File.Rename (the p9 server uses RenameAt).
func (f *file) Rename(newDir p9.File, newName string) (err error) {
	defer fixErrno(&err)
	if f.parent == nil || f.ownParent {
		return unix.EBUSY
	}
	return f.parent.RenameAt(f.name, newDir, newName)
}

// RenameAt implements p9.File.RenameAt.
func (f *file) RenameAt(oldName string, newDir p9.File, newName string) (err error) {
	defer fixErrno(&err)
	if err := f.checkCreate(oldName); err != nil {
		return err
	}
	d, ok := newDir.(*file)
	if !ok || d.a != f.a {
		return unix.EXDEV
	}
	if err := d.checkCreate(newName); err != nil {
		return err
	}
	return unix.Renameat(f.fd, oldName, d.fd, newName)
}

// UnlinkAt implements p9.File.UnlinkAt.
func (f *file) UnlinkAt(name string, flags uint32) (err error) {
	defer fixErrno(&err)
	if err := f.checkCreate(name); err != nil {
		return err
	}
	return unix.Unlinkat(f.fd, name, int(flags)&unix.AT_REMOVEDIR)
}

// Tmpfile implements p9.TmpfileCreator: an unnamed regular file in this
// directory (O_TMPFILE), open with mode's access. It is named by no
// directory entry (name ""), so only its open descriptor reaches it,
// until Link gives it a name.
func (f *file) Tmpfile(mode p9.OpenFlags, perm p9.FileMode, uid p9.UID, gid p9.GID) (_ p9.File, _ p9.QID, _ uint32, err error) {
	defer fixErrno(&err)
	if f.readOnly() {
		return nil, p9.QID{}, 0, unix.EROFS
	}
	if !f.isDir || f.fd < 0 {
		return nil, p9.QID{}, 0, unix.ENOTDIR
	}
	fd, err := unix.Openat(f.fd, ".", mode.OSFlags()|unix.O_TMPFILE|unix.O_CLOEXEC, uint32(perm.Permissions()))
	if err != nil {
		return nil, p9.QID{}, 0, err
	}
	nf, err := f.newOpened(fd, "", mode, uid, gid)
	if err != nil {
		return nil, p9.QID{}, 0, err
	}
	return nf, nf.qid, 0, nil
}
