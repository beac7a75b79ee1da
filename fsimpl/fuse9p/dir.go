package fuse9p

import (
	"context"
	"sync"
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
type dirHandle struct {
	n      *node
	ents   []fuse.DirEntry
	loaded bool
	pos    int

	// The kernel reads directories with READDIRPLUS: it wants every
	// entry's attributes with the listing. They are fetched for all
	// entries at once, concurrently, as soon as the listing is read, so
	// a cold walk costs one round trip's latency per directory, not per
	// entry.
	mu       sync.Mutex
	prefetch map[string]*walked
}

// walked is one entry's prefetched walk.
type walked struct {
	done chan struct{}
	file p9.File
	qid  p9.QID
	attr p9.Attr
	err  error
}

// prefetchWorkers bounds the concurrent walks of one directory.
const prefetchWorkers = 16

var (
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.FileReaddirenter   = (*dirHandle)(nil)
	_ fs.FileSeekdirer      = (*dirHandle)(nil)
	_ fs.FileLookuper       = (*dirHandle)(nil)
	_ fs.FileReleasedirer   = (*dirHandle)(nil)
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
	d.startPrefetch()
	return 0
}

// startPrefetch walks every entry concurrently.
func (d *dirHandle) startPrefetch() {
	dir := d.n.fid()
	if dir == nil || len(d.ents) == 0 {
		return
	}
	type job struct {
		name string
		w    *walked
	}
	d.mu.Lock()
	d.prefetch = make(map[string]*walked, len(d.ents))
	jobs := make(chan job, len(d.ents))
	for _, e := range d.ents {
		if _, dup := d.prefetch[e.Name]; dup {
			continue
		}
		w := &walked{done: make(chan struct{})}
		d.prefetch[e.Name] = w
		jobs <- job{e.Name, w}
	}
	close(jobs)
	n := min(prefetchWorkers, len(jobs))
	d.mu.Unlock()
	for i := 0; i < n; i++ {
		go func() {
			for j := range jobs {
				w := j.w
				qids, f, _, attr, err := dir.WalkGetAttr([]string{j.name})
				if err == nil && len(qids) != 1 {
					f.Close()
					err = syscall.EIO
				}
				if err == nil {
					w.file, w.qid, w.attr = f, qids[0], attr
				}
				w.err = err
				close(w.done)
			}
		}()
	}
}

// Lookup implements fs.FileLookuper: READDIRPLUS takes the prefetched
// walk of the entry.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.mu.Lock()
	w, ok := d.prefetch[name]
	if ok {
		delete(d.prefetch, name)
	}
	d.mu.Unlock()
	if !ok {
		return d.n.walkChild(ctx, name, out)
	}
	<-w.done
	if w.err != nil {
		return nil, toErrno(w.err)
	}
	return d.n.newChild(ctx, w.file, w.qid, &w.attr, out), 0
}

// Releasedir implements fs.FileReleasedirer: walks nobody took are
// dropped.
func (d *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	d.mu.Lock()
	left := d.prefetch
	d.prefetch = nil
	d.mu.Unlock()
	for _, w := range left {
		go func() {
			<-w.done
			if w.file != nil {
				w.file.Close()
			}
		}()
	}
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
