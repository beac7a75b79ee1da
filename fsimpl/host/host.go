// Package host provides the gofer's host file system: a p9.Attacher and
// p9.File implementation that serves one host directory tree (or a single
// file) over 9P2000.L without ever resolving a host path string.
//
// Every directory is held as an O_PATH file descriptor. Every operation is a
// single-component *at() system call relative to such a descriptor, with
// O_NOFOLLOW or AT_SYMLINK_NOFOLLOW, so a symbolic link is never followed and
// ".." is never interpreted: names "", ".", ".." and names containing "/" are
// refused. Files that are not directories are named by their parent
// directory's descriptor and their name; descriptors are held only for
// directories and open files, so a client walking a large tree does not
// exhaust the process's descriptor limit.
//
// Opening a file verifies, on the opened descriptor, that it is a regular
// file or a directory: device nodes, FIFOs and sockets are never opened by
// the server (the gofer additionally mounts served trees nodev).
package host

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// Options controls how a tree is served.
type Options struct {
	// ReadOnly makes every mutation fail with EROFS.
	ReadOnly bool
	// AllowDevices permits Mknod of character and block devices. Without
	// it, Mknod creates only regular files, FIFOs and sockets.
	AllowDevices bool
	// FUSEDev, when not 0, is a /dev/fuse descriptor of the mount the
	// client serves this tree on: opened read-only files may then be
	// registered on it as passthrough backing files (p9.BackingOpener).
	// Registering needs CAP_SYS_ADMIN.
	FUSEDev int
}

// Attacher serves one host tree. It implements p9.Attacher.
type Attacher struct {
	opts Options
	// rootFD is an O_PATH descriptor of the root directory, or of the
	// parent directory of a root that is not a directory.
	rootFD int
	// rootName is "" when the root is a directory, otherwise the root
	// file's name within rootFD.
	rootName string

	mu     sync.Mutex
	closed bool
}

var _ p9.Attacher = (*Attacher)(nil)

// Open returns an Attacher serving the tree at path. The path itself is
// resolved once, here, by the host (it is configuration, not client
// input); nothing below it is ever resolved by path again. A path naming a
// regular file serves that single file.
func Open(path string, opts Options) (*Attacher, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening served root %q: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat of served root %q: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return &Attacher{opts: opts, rootFD: fd}, nil
	}
	unix.Close(fd)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("served root %q: not a directory or regular file", path)
	}
	dir, name := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening parent of served file %q: %w", path, err)
	}
	return &Attacher{opts: opts, rootFD: dfd, rootName: name}, nil
}

// NewAttacher returns an Attacher serving the directory held by dirFD, an
// O_PATH (or any) descriptor of a directory. The Attacher takes ownership
// of dirFD.
func NewAttacher(dirFD int, opts Options) (*Attacher, error) {
	var st unix.Stat_t
	if err := unix.Fstat(dirFD, &st); err != nil {
		return nil, fmt.Errorf("stat of served root fd %d: %w", dirFD, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("served root fd %d: %w", dirFD, unix.ENOTDIR)
	}
	return &Attacher{opts: opts, rootFD: dirFD}, nil
}

// Close releases the root descriptor. Files already attached keep their
// own descriptors and stay usable.
func (a *Attacher) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	return unix.Close(a.rootFD)
}

// Attach implements p9.Attacher.Attach.
func (a *Attacher) Attach() (p9.File, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, unix.EBADF
	}
	fd, err := unix.FcntlInt(uintptr(a.rootFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicating root fd: %w", err)
	}
	if a.rootName == "" {
		f := &file{a: a, fd: fd, openFD: -1, isDir: true}
		st, err := f.stat()
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		f.qid = qidOf(&st)
		return f, nil
	}
	// A single-file root: its parent is a synthetic directory that is
	// never visible to the client (".." is never walked).
	parent := &file{a: a, fd: fd, openFD: -1, isDir: true}
	f := &file{a: a, parent: parent, ownParent: true, name: a.rootName, fd: -1, openFD: -1}
	st, err := f.stat()
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("served file %q is no longer a regular file: %w", a.rootName, unix.EINVAL)
	}
	f.qid = qidOf(&st)
	return f, nil
}

// file is one node of the served tree. It implements p9.File.
//
// The p9 server holds a reference to a file's parent for as long as the
// file exists, and calls Renamed under its global lock, so parent and name
// are stable during every other operation.
type file struct {
	a *Attacher
	// parent is the directory containing this file; nil for a directory
	// root.
	parent *file
	// name is this file's name in parent.
	name string
	// fd is an O_PATH descriptor of this directory; -1 for non-directories.
	fd int
	// isDir is fixed at walk time.
	isDir bool
	// ownParent is set when parent belongs to this file alone and is
	// closed with it: the synthetic parent of a single-file root, or the
	// last directory of a multi-component walk.
	ownParent bool
	qid       p9.QID

	mu sync.Mutex
	// openFD is the descriptor returned by Open or Create, -1 before.
	openFD int
	// openFlags are the p9 flags openFD was opened with.
	openFlags p9.OpenFlags
	// backingID is openFD's passthrough backing id on Options.FUSEDev,
	// 0 before OpenBacking.
	backingID uint32
}

var _ p9.File = (*file)(nil)

// readOnly reports whether mutations are refused.
func (f *file) readOnly() bool { return f.a.opts.ReadOnly }

// at returns the (dirfd, name, flags) triple that names f in *at() calls
// without following a symbolic link: the file's own O_PATH descriptor with
// AT_EMPTY_PATH for directories, else its parent's descriptor and its name.
func (f *file) at() (int, string, int) {
	if f.fd >= 0 {
		return f.fd, "", unix.AT_EMPTY_PATH
	}
	return f.parent.fd, f.name, unix.AT_SYMLINK_NOFOLLOW
}

// stat returns the attributes of f without following symbolic links.
func (f *file) stat() (unix.Stat_t, error) {
	var st unix.Stat_t
	f.mu.Lock()
	ofd := f.openFD
	f.mu.Unlock()
	if ofd >= 0 {
		return st, unix.Fstat(ofd, &st)
	}
	if f.fd >= 0 {
		return st, unix.Fstat(f.fd, &st)
	}
	return st, unix.Fstatat(f.parent.fd, f.name, &st, unix.AT_SYMLINK_NOFOLLOW)
}

// Close implements p9.File.Close.
func (f *file) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backingID != 0 {
		closeBacking(f.a.opts.FUSEDev, f.backingID)
		f.backingID = 0
	}
	if f.openFD >= 0 {
		unix.Close(f.openFD)
		f.openFD = -1
	}
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
	if f.ownParent {
		f.ownParent = false
		f.parent.Close()
	}
	return nil
}

// Renamed implements p9.File.Renamed.
func (f *file) Renamed(newDir p9.File, newName string) {
	d, ok := newDir.(*file)
	if !ok {
		return
	}
	if f.ownParent {
		f.ownParent = false
		f.parent.Close()
	}
	f.parent = d
	f.name = newName
}

// checkName refuses names that are not a single path component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > unix.NAME_MAX {
		return unix.EINVAL
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return unix.EINVAL
		}
	}
	return nil
}

// qidOf returns the QID of a file with attributes st.
func qidOf(st *unix.Stat_t) p9.QID {
	return p9.QID{
		Type: p9.FileMode(st.Mode).QIDType(),
		Path: st.Ino,
	}
}

// attrOf converts host attributes to 9P attributes.
func attrOf(st *unix.Stat_t) (p9.AttrMask, p9.Attr) {
	mask := p9.AttrMask{
		Mode: true, NLink: true, UID: true, GID: true, RDev: true,
		ATime: true, MTime: true, CTime: true, INo: true, Size: true, Blocks: true,
	}
	return mask, p9.Attr{
		Mode:             p9.FileMode(st.Mode),
		UID:              p9.UID(st.Uid),
		GID:              p9.GID(st.Gid),
		NLink:            p9.NLink(st.Nlink),
		RDev:             p9.Dev(st.Rdev),
		Size:             uint64(st.Size),
		BlockSize:        uint64(st.Blksize),
		Blocks:           uint64(st.Blocks),
		ATimeSeconds:     uint64(st.Atim.Sec),
		ATimeNanoSeconds: uint64(st.Atim.Nsec),
		MTimeSeconds:     uint64(st.Mtim.Sec),
		MTimeNanoSeconds: uint64(st.Mtim.Nsec),
		CTimeSeconds:     uint64(st.Ctim.Sec),
		CTimeNanoSeconds: uint64(st.Ctim.Nsec),
	}
}
