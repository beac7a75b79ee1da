package fuse9p

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

var _ fs.NodeTmpfiler = (*node)(nil)

// tmpfiler is a 9P client file that can make an unnamed file
// (Ttmpfile).
type tmpfiler interface {
	Tmpfile(flags p9.OpenFlags, perm p9.FileMode, uid p9.UID, gid p9.GID) (p9.File, p9.QID, uint32, error)
}

// Tmpfile implements fs.NodeTmpfiler: open(2) with O_TMPFILE in this
// directory. The gofer makes the file and returns it open; that one fid
// is both the node's (attributes, a later link into place) and the
// handle's, which leaves it to the node (shared), closed when the
// kernel forgets the inode.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	uid, gid, errno := n.ids.caller(ctx)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	dir, errno := n.fid()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	tf, ok := dir.(tmpfiler)
	if !ok {
		return nil, nil, 0, syscall.EOPNOTSUPP
	}
	f, qid, _, err := tf.Tmpfile(openFlags(flags), p9.FileMode(mode&07777), uid, gid)
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	_, _, attr, err := f.GetAttr(p9.AttrMaskAll)
	if err != nil {
		f.Close()
		return nil, nil, 0, toErrno(err)
	}
	child := &node{file: f, ino: qid.Path, keepCache: n.keepCache, ids: n.ids}
	child.unnamed.Store(true)
	ino := n.NewInode(ctx, child, fs.StableAttr{Mode: syscall.S_IFREG, Ino: qid.Path})
	n.ids.fillAttr(qid, &attr, &out.Attr)
	return ino, &handle{file: f, shared: true}, n.fuseOpenFlags(), 0
}
