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
