package fuse9p

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

// dirHandle is an open directory. Its listing is read from the gofer on
// the first readdir, not at opendir (a directory opened only to be
// walked, as by openat(dirfd) callers, costs nothing), and, for a cached
// tree, the kernel keeps it (FOPEN_CACHE_DIR) until the directory
// changes.
//
// The kernel reads directories with READDIRPLUS: it wants every entry's
// attributes with the listing. The gofer sends them with the entries
// (Treaddirattr), and the entries' inodes are made without fids
// (lazyChild), so listing a directory costs a few round trips whatever
// its size.
type dirHandle struct {
	n      *node
	ents   []fuse.DirEntry
	attrs  map[string]*p9.DirentAttr
	loaded bool
	pos    int
}

var (
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.FileReaddirenter   = (*dirHandle)(nil)
	_ fs.FileSeekdirer      = (*dirHandle)(nil)
	_ fs.FileLookuper       = (*dirHandle)(nil)
	_ fs.FileFsyncdirer     = (*dirHandle)(nil)
)

// Fsyncdir implements fs.FileFsyncdirer: the gofer opens the directory
// and fsyncs it (a database's rename then survives a crash).
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	f, errno := d.n.fid()
	if errno != 0 {
		return errno
	}
	_, clone, err := f.Walk(nil)
	if err != nil {
		return toErrno(err)
	}
	defer clone.Close()
	if _, _, err := clone.Open(p9.ReadOnly); err != nil {
		return toErrno(err)
	}
	return toErrno(clone.FSync())
}

// OpendirHandle implements fs.NodeOpendirHandler.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	var fuseFlags uint32
	if n.keepCache {
		fuseFlags = fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	return &dirHandle{n: n}, fuseFlags, 0
}

// load reads the listing once.
func (d *dirHandle) load() syscall.Errno {
	if d.loaded {
		return 0
	}
	ents, errno := d.n.takeListing()
	if errno != 0 {
		return errno
	}
	d.ents = make([]fuse.DirEntry, 0, len(ents))
	d.attrs = make(map[string]*p9.DirentAttr, len(ents))
	for i := range ents {
		e := &ents[i]
		mode := qidMode(e.Type)
		if e.Valid.Mode {
			mode = uint32(e.Attr.Mode.FileType())
			d.attrs[e.Name] = e
		}
		d.ents = append(d.ents, fuse.DirEntry{Name: e.Name, Ino: e.QID.Path, Mode: mode})
	}
	d.loaded = true
	return 0
}

// Lookup implements fs.FileLookuper: READDIRPLUS takes the attributes
// that came with the listing.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e, ok := d.attrs[name]; ok {
		return d.n.lazyChild(ctx, e.QID, &e.Attr, out), 0
	}
	return d.n.walkChild(ctx, name, out)
}

// Readdirent implements fs.FileReaddirenter.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := d.load(); errno != 0 {
		return nil, errno
	}
	if d.pos >= len(d.ents) {
		return nil, 0
	}
	e := d.ents[d.pos]
	d.pos++
	return &e, 0
}

// Seekdir implements fs.FileSeekdirer: offsets are entry indexes.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if errno := d.load(); errno != 0 {
		return errno
	}
	if off > uint64(len(d.ents)) {
		off = uint64(len(d.ents))
	}
	d.pos = int(off)
	return 0
}

// readdirAttrer is the client side of the gofer's Treaddirattr.
type readdirAttrer interface {
	ReaddirAttr(offset uint64, count uint32) ([]p9.DirentAttr, error)
}

// list reads the whole directory with each entry's attributes
// (Treaddirattr on the node's own unopened fid: one round trip per batch
// of entries), paging with the gofer's stable offsets. The gofer is the
// same runsc binary, so it always has the extension.
func (n *node) list() ([]p9.DirentAttr, syscall.Errno) {
	file, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	ra, ok := file.(readdirAttrer)
	if !ok {
		return nil, syscall.ENOSYS
	}
	var out []p9.DirentAttr
	offset := uint64(0)
	for {
		ents, err := ra.ReaddirAttr(offset, maxWrite)
		if err != nil {
			return nil, toErrno(err)
		}
		if len(ents) == 0 {
			return out, 0
		}
		out = append(out, ents...)
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
