package fuse9p

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirHandle is an open directory. Its listing is read from the gofer on
// the first readdir, not at opendir (a directory opened only to be
// walked, as by openat(dirfd) callers, costs nothing), and, for a cached
// tree, the kernel keeps it (FOPEN_CACHE_DIR) until the directory
// changes.
type dirHandle struct {
	n      *node
	ents   []fuse.DirEntry
	loaded bool
	pos    int
}

var (
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.FileReaddirenter   = (*dirHandle)(nil)
	_ fs.FileSeekdirer      = (*dirHandle)(nil)
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
func (d *dirHandle) load(ctx context.Context) syscall.Errno {
	if d.loaded {
		return 0
	}
	ents, errno := d.n.list(ctx)
	if errno != 0 {
		return errno
	}
	d.ents, d.loaded = ents, true
	return 0
}

// Readdirent implements fs.FileReaddirenter.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := d.load(ctx); errno != 0 {
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
	if errno := d.load(ctx); errno != 0 {
		return errno
	}
	if off > uint64(len(d.ents)) {
		off = uint64(len(d.ents))
	}
	d.pos = int(off)
	return 0
}
