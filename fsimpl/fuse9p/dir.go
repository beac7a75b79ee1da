package fuse9p

import (
	"context"
	"errors"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/linux"
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
)

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

// list reads the whole directory, paging with the gofer's stable offsets,
// with each entry's attributes (Treaddirattr, on the node's own unopened
// fid: one round trip per batch). A gofer without that extension is read
// through an opened clone of the fid, without attributes (Valid empty).
func (n *node) list() ([]p9.DirentAttr, syscall.Errno) {
	file, errno := n.fid()
	if errno != 0 {
		return nil, errno
	}
	ra, ok := file.(readdirAttrer)
	if !ok {
		return listOpened(file)
	}
	return readAll(func(offset uint64) ([]p9.DirentAttr, error) {
		ents, err := ra.ReaddirAttr(offset, maxWrite)
		if offset == 0 && errors.Is(err, linux.ENOSYS) {
			return nil, errNoReaddirAttr
		}
		return ents, err
	}, func() ([]p9.DirentAttr, syscall.Errno) { return listOpened(file) })
}

// errNoReaddirAttr is a gofer without Treaddirattr.
var errNoReaddirAttr = errors.New("no Treaddirattr")

// listOpened reads the directory through an opened clone of its fid,
// without attributes.
func listOpened(file p9.File) ([]p9.DirentAttr, syscall.Errno) {
	_, d, err := file.Walk(nil)
	if err != nil {
		return nil, toErrno(err)
	}
	// Nobody waits for the clunk.
	defer func() { go d.Close() }()
	if _, _, err := d.Open(p9.ReadOnly); err != nil {
		return nil, toErrno(err)
	}
	return readAll(func(offset uint64) ([]p9.DirentAttr, error) {
		plain, err := d.Readdir(offset, maxWrite)
		ents := make([]p9.DirentAttr, len(plain))
		for i, e := range plain {
			ents[i].Dirent = e
		}
		return ents, err
	}, nil)
}

// readAll pages through a directory with read; if the first read is
// errNoReaddirAttr, fallback lists it instead.
func readAll(read func(offset uint64) ([]p9.DirentAttr, error), fallback func() ([]p9.DirentAttr, syscall.Errno)) ([]p9.DirentAttr, syscall.Errno) {
	var out []p9.DirentAttr
	offset := uint64(0)
	for {
		ents, err := read(offset)
		if err == errNoReaddirAttr && fallback != nil {
			return fallback()
		}
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
