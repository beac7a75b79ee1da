package fuse9p

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// node is one inode of the mount. It holds an unopened 9P fid naming the
// file, used to walk, stat and change it; opening clones the fid.
type node struct {
	fs.Inode

	mu sync.Mutex
	// file is nil until first needed for a node made from a directory
	// listing (see lazyChild): fid walks to it by name from the parent.
	file p9.File
	// ino is the file's QID path, checked when file is walked lazily.
	ino   uint64
	isDir bool
	// forgotten is set once the kernel has forgotten the inode.
	forgotten bool
	// ahead is the directory's listing being read ahead (prefetch.go).
	ahead *listing
	// pt is the mount's passthrough state, nil without passthrough.
	pt *passthrough
	// ids is the mount's id mapping, nil for none (see IDMap).
	ids *IDMap
	// noCaps records that the file has no security.capability (see
	// Getxattr).
	noCaps atomic.Bool
	// unnamed is set for an O_TMPFILE file until it is linked (see
	// Tmpfile and Link).
	unnamed atomic.Bool
	// backing is readFile's passthrough backing id: 0 before it is
	// asked for, -1 if the gofer could not register the file.
	backing int32
	// pts is the passthrough bookkeeping of a regular file (with pt).
	pts ptState
	// keepCache keeps file pages across opens: set when the tree is
	// exclusive to this mount (Options.Timeout > 0).
	keepCache bool
	// lower is set on the lower layer of an overlayfs (see
	// Options.OverlayLower).
	lower bool
	// readFile is an opened read-only fid shared by the read-only opens
	// of an exclusive tree's file (every exec of a binary opens it):
	// opened once, closed when the kernel forgets the inode.
	readFile p9.File
	// retired are walked fids whose name went away (see retire),
	// closed when the kernel forgets the inode.
	retired []p9.File
}

// openFlags returns the FUSE open flags for a file of this mount.
func (n *node) fuseOpenFlags() uint32 {
	if n.keepCache {
		return fuse.FOPEN_KEEP_CACHE
	}
	return 0
}

var (
	_ fs.NodeLookuper    = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeMkdirer     = (*node)(nil)
	_ fs.NodeMknoder     = (*node)(nil)
	_ fs.NodeSymlinker   = (*node)(nil)
	_ fs.NodeLinker      = (*node)(nil)
	_ fs.NodeReadlinker  = (*node)(nil)
	_ fs.NodeUnlinker    = (*node)(nil)
	_ fs.NodeRmdirer     = (*node)(nil)
	_ fs.NodeRenamer     = (*node)(nil)
	_ fs.NodeStatfser    = (*node)(nil)
	_ fs.NodeOnForgetter = (*node)(nil)
)

// fid returns the node's fid, walking to it from the parent's by name
// if the node was made from a directory listing and has not been used
// since. A file that is no longer the one listed (replaced behind the
// sandbox's back) is ESTALE.
func (n *node) fid() (p9.File, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.file != nil {
		return n.file, 0
	}
	if n.forgotten {
		return nil, syscall.ESTALE
	}
	name, parent := n.Parent()
	if parent == nil {
		return nil, syscall.ESTALE
	}
	pn, ok := parent.Operations().(*node)
	if !ok {
		return nil, syscall.ESTALE
	}
	pf, errno := pn.fid()
	if errno != 0 {
		return nil, errno
	}
	qids, f, err := pf.Walk([]string{name})
	if err != nil {
		return nil, toErrno(err)
	}
	if len(qids) != 1 || qids[0].Path != n.ino {
		f.Close()
		return nil, syscall.ESTALE
	}
	n.file = f
	return f, 0
}

// OnForget releases the fid once the kernel has forgotten the inode.
func (n *node) OnForget() {
	n.mu.Lock()
	f, r, old := n.file, n.readFile, n.retired
	n.file, n.readFile, n.forgotten, n.ahead, n.retired = nil, nil, true, nil, nil
	n.mu.Unlock()
	for _, f := range append(old, f, r) {
		if f != nil {
			f.Close()
		}
	}
}

// retire drops the node's walked fid once a name of the inode went away
// (unlinked, or replaced by a rename): the gofer names a file by its
// directory and a name, so a fid walked by that name no longer reaches
// the inode, though another hard link may still. The next use walks
// again by a name the inode still has (see fid). The old fid is closed
// when the kernel forgets the inode, as a request in flight may hold it.
func (n *node) retire() {
	n.mu.Lock()
	if n.file != nil {
		n.retired = append(n.retired, n.file)
		n.file = nil
	}
	n.mu.Unlock()
}

// retireInode retires the walked fid of ch, a child inode whose name
// went away (nil if the kernel did not know it). A directory has one
// name, and a renamed one keeps its fid (the gofer follows renames).
func retireInode(ch *fs.Inode) {
	if ch == nil {
		return
	}
	if cn, ok := ch.Operations().(*node); ok && !cn.isDir {
		cn.retire()
	}
}

// newChild makes (or finds) the inode for a walked child fid. If the
// kernel already knows the inode (a hard link, or a racing lookup) the
// existing one is returned and the new fid is closed.
func (n *node) newChild(ctx context.Context, f p9.File, qid p9.QID, attr *p9.Attr, out *fuse.EntryOut) *fs.Inode {
	child := &node{file: f, ino: qid.Path, isDir: attr.Mode.IsDir(), keepCache: n.keepCache, lower: n.lower, pt: n.pt, ids: n.ids}
	ino := n.NewInode(ctx, child, fs.StableAttr{Mode: uint32(attr.Mode.FileType()), Ino: qid.Path})
	if ino.Operations() != child {
		f.Close()
	}
	n.ids.fillAttr(qid, attr, &out.Attr)
	return ino
}

// lazyChild makes (or finds) the inode for a listed directory entry whose
// attributes came with the listing, without a fid: one is walked on
// first use. A cold walk of a tree then costs a round trip per
// directory, not per entry.
func (n *node) lazyChild(ctx context.Context, qid p9.QID, attr *p9.Attr, out *fuse.EntryOut) *fs.Inode {
	child := &node{ino: qid.Path, isDir: attr.Mode.IsDir(), keepCache: n.keepCache, lower: n.lower, pt: n.pt, ids: n.ids}
	ino := n.NewInode(ctx, child, fs.StableAttr{Mode: uint32(attr.Mode.FileType()), Ino: qid.Path})
	if ino.Operations() == child && child.isDir && child.keepCache {
		child.readAhead()
	}
	n.ids.fillAttr(qid, attr, &out.Attr)
	return ino
}

// walkChild walks to name and returns its inode.
func (n *node) walkChild(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	dir, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	qids, f, _, attr, err := dir.WalkGetAttr([]string{name})
	if err != nil {
		return nil, toErrno(err)
	}
	if len(qids) != 1 {
		f.Close()
		return nil, syscall.EIO
	}
	return n.newChild(ctx, f, qids[0], &attr, out), 0
}

// Lookup implements fs.NodeLookuper.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.walkChild(ctx, name, out)
}

// Getattr implements fs.NodeGetattrer.
func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	// An open file is stated through its own fid: it may have been
	// unlinked since.
	f, ok := fileOf(fh)
	if !ok {
		var errno syscall.Errno
		if f, errno = n.fid(); errno != 0 {
			return errno
		}
	}
	qid, _, attr, err := f.GetAttr(p9.AttrMaskAll)
	if err != nil {
		return toErrno(err)
	}
	n.ids.fillAttr(qid, &attr, &out.Attr)
	return 0
}

// Setattr implements fs.NodeSetattrer.
func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var (
		valid p9.SetAttrMask
		attr  p9.SetAttr
	)
	if m, ok := in.GetMode(); ok {
		valid.Permissions, attr.Permissions = true, p9.FileMode(m)
	}
	if u, ok := in.GetUID(); ok {
		valid.UID, attr.UID = true, n.ids.uid(u)
	}
	if g, ok := in.GetGID(); ok {
		valid.GID, attr.GID = true, n.ids.gid(g)
	}
	if s, ok := in.GetSize(); ok {
		valid.Size, attr.Size = true, s
	}
	if in.Valid&fuse.FATTR_ATIME != 0 {
		valid.ATime = true
		if in.Valid&fuse.FATTR_ATIME_NOW == 0 {
			valid.ATimeNotSystemTime = true
			attr.ATimeSeconds, attr.ATimeNanoSeconds = in.Atime, uint64(in.Atimensec)
		}
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		valid.MTime = true
		if in.Valid&fuse.FATTR_MTIME_NOW == 0 {
			valid.MTimeNotSystemTime = true
			attr.MTimeSeconds, attr.MTimeNanoSeconds = in.Mtime, uint64(in.Mtimensec)
		}
	}
	f, ok := fileOf(fh)
	if !ok {
		var errno syscall.Errno
		if f, errno = n.fid(); errno != 0 {
			return errno
		}
	}
	if in.Valid&fuse.FATTR_KILL_SUIDGID != 0 {
		if errno := killSUIDGID(f, &valid, &attr); errno != 0 {
			return errno
		}
	}
	if err := f.SetAttr(valid, attr); err != nil {
		return toErrno(err)
	}
	if valid.Permissions && attr.Permissions&(syscall.S_ISUID|syscall.S_ISGID) != 0 {
		n.setIDChanged()
	}
	return n.Getattr(ctx, fh, out)
}

// openFlags converts open(2) flags to 9P open flags.
func openFlags(flags uint32) p9.OpenFlags {
	o := p9.OpenFlags(flags & syscall.O_ACCMODE)
	if flags&syscall.O_TRUNC != 0 {
		o |= p9.OpenFlags(syscall.O_TRUNC)
	}
	return o
}

// Open implements fs.NodeOpener.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.pt != nil && n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFREG {
		return n.openPassthrough(ctx, flags)
	}
	h, fl, errno := n.openCached(flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return h, fl, 0
}

// openCached opens the file for a handle using the page cache: the
// read-only opens of a cached tree's regular file share one fid.
func (n *node) openCached(flags uint32) (*handle, uint32, syscall.Errno) {
	if n.keepCache && n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFREG && openFlags(flags) == p9.ReadOnly {
		f, errno := n.sharedReadFile()
		if errno != 0 {
			return nil, 0, errno
		}
		return &handle{file: f, shared: true}, n.fuseOpenFlags(), 0
	}
	h, errno := n.openFid(flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return h, n.fuseOpenFlags(), 0
}

// openFid opens a new fid of the file with flags for a handle of its own.
func (n *node) openFid(flags uint32) (*handle, syscall.Errno) {
	file, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	_, f, err := file.Walk(nil)
	if err != nil {
		return nil, toErrno(err)
	}
	if _, _, err := f.Open(openFlags(flags)); err != nil {
		f.Close()
		return nil, toErrno(err)
	}
	return &handle{file: f}, 0
}

// sharedReadFile returns the node's shared read-only fid, opening it on
// first use.
func (n *node) sharedReadFile() (p9.File, syscall.Errno) {
	file, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.readFile != nil {
		return n.readFile, 0
	}
	if n.forgotten {
		return nil, syscall.ESTALE
	}
	_, f, err := file.Walk(nil)
	if err != nil {
		return nil, toErrno(err)
	}
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		f.Close()
		return nil, toErrno(err)
	}
	n.readFile = f
	return f, 0
}

// Create implements fs.NodeCreater.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	uid, gid, errno := n.ids.caller(ctx)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	file, errno := n.fid()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	_, dir, err := file.Walk(nil)
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	// On success the client's dir fid becomes the new, open file.
	opened, _, _, err := dir.Create(name, openFlags(flags), p9.FileMode(mode&07777), uid, gid)
	if err != nil {
		dir.Close()
		return nil, nil, 0, toErrno(err)
	}
	ino, errno := n.walkChild(ctx, name, out)
	if errno != 0 {
		opened.Close()
		return nil, nil, 0, errno
	}
	h := &handle{file: opened}
	if cn, ok := ino.Operations().(*node); ok && cn.pt != nil {
		return ino, h, cn.adoptCreated(ctx, h, flags), 0
	}
	return ino, h, n.fuseOpenFlags(), 0
}

// Mkdir implements fs.NodeMkdirer.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid, errno := n.ids.caller(ctx)
	if errno != 0 {
		return nil, errno
	}
	dir, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	if _, err := dir.Mkdir(name, p9.FileMode(mode&07777), uid, gid); err != nil {
		return nil, toErrno(err)
	}
	return n.walkChild(ctx, name, out)
}

// Mknod implements fs.NodeMknoder.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid, errno := n.ids.caller(ctx)
	if errno != 0 {
		return nil, errno
	}
	major, minor := unix.Major(uint64(dev)), unix.Minor(uint64(dev))
	dir, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	if _, err := dir.Mknod(name, p9.FileMode(mode), major, minor, uid, gid); err != nil {
		return nil, toErrno(err)
	}
	return n.walkChild(ctx, name, out)
}

// Symlink implements fs.NodeSymlinker.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid, errno := n.ids.caller(ctx)
	if errno != 0 {
		return nil, errno
	}
	dir, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	if _, err := dir.Symlink(target, name, uid, gid); err != nil {
		return nil, toErrno(err)
	}
	return n.walkChild(ctx, name, out)
}

// Link implements fs.NodeLinker.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	dir, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	tf, errno := t.fid()
	if errno != 0 {
		return nil, errno
	}
	if err := dir.Link(tf, name); err != nil {
		return nil, toErrno(err)
	}
	if t.unnamed.Load() {
		// An O_TMPFILE file linked into place: its fid is the open,
		// unnamed one, which no walk can clone; it takes a fid walked
		// by its new name.
		qids, f, _, attr, err := dir.WalkGetAttr([]string{name})
		if err != nil {
			return nil, toErrno(err)
		}
		if len(qids) != 1 || qids[0].Path != t.ino {
			f.Close()
			return nil, syscall.ESTALE
		}
		t.mu.Lock()
		if t.file != nil {
			t.retired = append(t.retired, t.file)
		}
		t.file = f
		t.mu.Unlock()
		t.unnamed.Store(false)
		n.ids.fillAttr(qids[0], &attr, &out.Attr)
		return t.EmbeddedInode(), 0
	}
	return n.walkChild(ctx, name, out)
}

// Readlink implements fs.NodeReadlinker.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	f, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	s, err := f.Readlink()
	if err != nil {
		return nil, toErrno(err)
	}
	return []byte(s), 0
}

// Unlink implements fs.NodeUnlinker.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	dir, errno := n.fid()
	if errno != 0 {
		return errno
	}
	if err := dir.UnlinkAt(name, 0); err != nil {
		return toErrno(err)
	}
	retireInode(n.GetChild(name))
	return 0
}

// Rmdir implements fs.NodeRmdirer.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	dir, errno := n.fid()
	if errno != 0 {
		return errno
	}
	return toErrno(dir.UnlinkAt(name, unix.AT_REMOVEDIR))
}

// Rename implements fs.NodeRenamer. RENAME_EXCHANGE and RENAME_NOREPLACE
// are not supported by 9P2000.L.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	dir, errno := n.fid()
	if errno != 0 {
		return errno
	}
	newDir, errno := np.fid()
	if errno != 0 {
		return errno
	}
	victim, moved := np.GetChild(newName), n.GetChild(name)
	if err := dir.RenameAt(name, newDir, newName); err != nil {
		return toErrno(err)
	}
	if victim != moved {
		retireInode(victim)
	}
	return 0
}

// Statfs implements fs.NodeStatfser.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	f, errno := n.fid()
	if errno != 0 {
		return errno
	}
	st, err := f.StatFS()
	if err != nil {
		return toErrno(err)
	}
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.BlocksFree, st.BlocksAvailable
	out.Files, out.Ffree = st.Files, st.FilesFree
	out.Bsize, out.NameLen, out.Frsize = st.BlockSize, st.NameLength, st.BlockSize
	return 0
}
