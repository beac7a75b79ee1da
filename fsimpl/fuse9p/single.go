package fuse9p

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

// FileName is the name under which a single-file tree appears: go-fuse
// roots are always directories, so such a tree is mounted as a read-only
// directory holding the file alone, and the file is bind-mounted from
// there.
const FileName = "file"

// fileHolder is the synthetic root directory of a single-file tree.
type fileHolder struct {
	fs.Inode
	file      p9.File
	qid       p9.QID
	attr      p9.Attr
	keepCache bool
	ids       *IDMap
}

var (
	_ fs.NodeLookuper  = (*fileHolder)(nil)
	_ fs.NodeReaddirer = (*fileHolder)(nil)
	_ fs.NodeGetattrer = (*fileHolder)(nil)
)

// Getattr implements fs.NodeGetattrer: a directory only root may list.
func (h *fileHolder) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	out.Uid, out.Gid = h.ids.owner(0, 0)
	return 0
}

// Lookup implements fs.NodeLookuper.
func (h *fileHolder) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name != FileName {
		return nil, syscall.ENOENT
	}
	qid, _, attr, err := h.file.GetAttr(p9.AttrMaskAll)
	if err != nil {
		return nil, toErrno(err)
	}
	if !attr.Mode.IsRegular() {
		// Only a regular file may stand for a single-file tree: the
		// sandbox bind-mounts it by path.
		return nil, syscall.EIO
	}
	if ch := h.GetChild(FileName); ch != nil {
		h.ids.fillAttr(qid, &attr, &out.Attr)
		return ch, 0
	}
	_, clone, err := h.file.Walk(nil)
	if err != nil {
		return nil, toErrno(err)
	}
	n := &node{file: clone, keepCache: h.keepCache, ids: h.ids}
	ch := h.NewPersistentInode(ctx, n, fs.StableAttr{Mode: uint32(attr.Mode.FileType()), Ino: qid.Path})
	h.AddChild(FileName, ch, true)
	h.ids.fillAttr(qid, &attr, &out.Attr)
	return ch, 0
}

// Readdir implements fs.NodeReaddirer.
func (h *fileHolder) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	return fs.NewListDirStream([]fuse.DirEntry{{Name: FileName, Mode: uint32(h.attr.Mode.FileType()), Ino: h.qid.Path}}), 0
}

// holderIno is the inode number of a dirHolder, and treeRootIno that
// of the tree root it holds: numbers no file system gives a directory.
// Not the tree root's own number: the gofer numbers files by their host
// inode, and a file system mounted under the tree (a bind's submounts)
// has a root of the same number (often 1), which go-fuse would take for
// the same inode. (As the FUSE root, the tree root never met that.)
// The tree root's stays within 32 bits: a 32-bit stat of the bind's
// mount point would fail on a larger one.
const (
	holderIno   = ^uint64(0) - 1
	treeRootIno = 0xfffffffd
)

// dirHolder is the synthetic root directory of a directory tree mounted
// with Options.Entry: it holds the tree's root alone, under that name.
type dirHolder struct {
	fs.Inode
	name string
	// tree is the tree's root node.
	tree fs.InodeEmbedder
	ids  *IDMap
}

var (
	_ fs.NodeOnAdder   = (*dirHolder)(nil)
	_ fs.NodeGetattrer = (*dirHolder)(nil)
)

// OnAdd implements fs.NodeOnAdder: the tree's root is its one child,
// which go-fuse then looks up and lists.
func (h *dirHolder) OnAdd(ctx context.Context) {
	ch := h.NewPersistentInode(ctx, h.tree, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: treeRootIno})
	h.AddChild(h.name, ch, true)
}

// Getattr implements fs.NodeGetattrer: a directory anyone may search.
func (h *dirHolder) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 3
	out.Uid, out.Gid = h.ids.owner(0, 0)
	return 0
}
