package fuse9p

import (
	"context"
	"sync"
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

	mu    sync.Mutex
	file  p9.File
	isDir bool
	// keepCache keeps file pages across opens: set when the tree is
	// exclusive to this mount (Options.Timeout > 0).
	keepCache bool
	// readFile is an opened read-only fid shared by the read-only opens
	// of an exclusive tree's file (every exec of a binary opens it):
	// opened once, closed when the kernel forgets the inode.
	readFile p9.File
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

// fid returns the node's fid.
func (n *node) fid() p9.File {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.file
}

// OnForget releases the fid once the kernel has forgotten the inode.
func (n *node) OnForget() {
	n.mu.Lock()
	f, r := n.file, n.readFile
	n.file, n.readFile = nil, nil
	n.mu.Unlock()
	if f != nil {
		f.Close()
	}
	if r != nil {
		r.Close()
	}
}

// newChild makes (or finds) the inode for a walked child fid. If the
// kernel already knows the inode (a hard link, or a racing lookup) the
// existing one is returned and the new fid is closed.
func (n *node) newChild(ctx context.Context, f p9.File, qid p9.QID, attr *p9.Attr, out *fuse.EntryOut) *fs.Inode {
	child := &node{file: f, isDir: attr.Mode.IsDir(), keepCache: n.keepCache}
	ino := n.NewInode(ctx, child, fs.StableAttr{Mode: uint32(attr.Mode.FileType()), Ino: qid.Path})
	if ino.Operations() != child {
		f.Close()
	}
	fillAttr(qid, attr, &out.Attr)
	return ino
}

// walkChild walks to name and returns its inode.
func (n *node) walkChild(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	qids, f, _, attr, err := n.fid().WalkGetAttr([]string{name})
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
	qid, _, attr, err := n.fid().GetAttr(p9.AttrMaskAll)
	if err != nil {
		return toErrno(err)
	}
	fillAttr(qid, &attr, &out.Attr)
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
		valid.UID, attr.UID = true, p9.UID(u)
	}
	if g, ok := in.GetGID(); ok {
		valid.GID, attr.GID = true, p9.GID(g)
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
	if err := n.fid().SetAttr(valid, attr); err != nil {
		return toErrno(err)
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
	if n.keepCache && !n.isDir && openFlags(flags) == p9.ReadOnly {
		f, errno := n.sharedReadFile()
		if errno != 0 {
			return nil, 0, errno
		}
		return &handle{file: f, shared: true}, n.fuseOpenFlags(), 0
	}
	_, f, err := n.fid().Walk(nil)
	if err != nil {
		return nil, 0, toErrno(err)
	}
	if _, _, err := f.Open(openFlags(flags)); err != nil {
		f.Close()
		return nil, 0, toErrno(err)
	}
	return &handle{file: f}, n.fuseOpenFlags(), 0
}

// sharedReadFile returns the node's shared read-only fid, opening it on
// first use.
func (n *node) sharedReadFile() (p9.File, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.readFile != nil {
		return n.readFile, 0
	}
	if n.file == nil {
		return nil, syscall.ESTALE
	}
	_, f, err := n.file.Walk(nil)
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
	_, dir, err := n.fid().Walk(nil)
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	uid, gid := caller(ctx)
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
	return ino, &handle{file: opened}, n.fuseOpenFlags(), 0
}

// Mkdir implements fs.NodeMkdirer.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid := caller(ctx)
	if _, err := n.fid().Mkdir(name, p9.FileMode(mode&07777), uid, gid); err != nil {
		return nil, toErrno(err)
	}
	return n.walkChild(ctx, name, out)
}

// Mknod implements fs.NodeMknoder.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid := caller(ctx)
	major, minor := unix.Major(uint64(dev)), unix.Minor(uint64(dev))
	if _, err := n.fid().Mknod(name, p9.FileMode(mode), major, minor, uid, gid); err != nil {
		return nil, toErrno(err)
	}
	return n.walkChild(ctx, name, out)
}

// Symlink implements fs.NodeSymlinker.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	uid, gid := caller(ctx)
	if _, err := n.fid().Symlink(target, name, uid, gid); err != nil {
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
	if err := n.fid().Link(t.fid(), name); err != nil {
		return nil, toErrno(err)
	}
	return n.walkChild(ctx, name, out)
}

// Readlink implements fs.NodeReadlinker.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	s, err := n.fid().Readlink()
	if err != nil {
		return nil, toErrno(err)
	}
	return []byte(s), 0
}

// Unlink implements fs.NodeUnlinker.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return toErrno(n.fid().UnlinkAt(name, 0))
}

// Rmdir implements fs.NodeRmdirer.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return toErrno(n.fid().UnlinkAt(name, unix.AT_REMOVEDIR))
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
	return toErrno(n.fid().RenameAt(name, np.fid(), newName))
}

// Statfs implements fs.NodeStatfser.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.fid().StatFS()
	if err != nil {
		return toErrno(err)
	}
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.BlocksFree, st.BlocksAvailable
	out.Files, out.Ffree = st.Files, st.FilesFree
	out.Bsize, out.NameLen, out.Frsize = st.BlockSize, st.NameLength, st.BlockSize
	return 0
}

// list reads the whole directory through a freshly opened fid, paging
// with the gofer's stable offsets.
func (n *node) list(ctx context.Context) ([]fuse.DirEntry, syscall.Errno) {
	_, d, err := n.fid().Walk(nil)
	if err != nil {
		return nil, toErrno(err)
	}
	defer d.Close()
	if _, _, err := d.Open(p9.ReadOnly); err != nil {
		return nil, toErrno(err)
	}
	var out []fuse.DirEntry
	offset := uint64(0)
	for {
		ents, err := d.Readdir(offset, maxWrite)
		if err != nil {
			return nil, toErrno(err)
		}
		if len(ents) == 0 {
			return out, 0
		}
		for _, e := range ents {
			out = append(out, fuse.DirEntry{Name: e.Name, Ino: e.QID.Path, Mode: qidMode(e.Type)})
		}
		next := ents[len(ents)-1].Offset
		if next == offset || len(out) > maxDirEntries {
			// A gofer that does not advance, or a directory larger
			// than any real one: stop rather than loop or grow.
			return nil, syscall.EIO
		}
		offset = next
	}
}

// maxDirEntries bounds one directory listing.
const maxDirEntries = 10_000_000

// qidMode returns the file type bits for a dirent's QID type.
func qidMode(t p9.QIDType) uint32 {
	switch {
	case t&p9.TypeDir != 0:
		return syscall.S_IFDIR
	case t&p9.TypeSymlink != 0:
		return syscall.S_IFLNK
	}
	return syscall.S_IFREG
}
