package fuse9p

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

// passthrough is a mount's FUSE passthrough state. The gofer, which holds
// the mount's /dev/fuse descriptor too, registers an opened file's host
// descriptor as a backing file (Tbackingopen); opens of the inode are
// answered with that id and the kernel reads and writes the host file
// itself. The sandbox never holds the host descriptor.
//
// The first open of an inode registers a fid opened with its own mode:
// an open for reading the shared read fid, an open for writing a fid
// opened for writing. The kernel lets an inode use one backing file at a
// time, and no other open while it does (see ptState): later opens share
// it until the last is released.
type passthrough struct {
	// off is set once the gofer refused a registration for a reason
	// every file of the tree shares (no support, no capability): none
	// is asked for again.
	off atomic.Bool
	// pending maps an open request in flight (by its cancel channel,
	// unique while the request lasts) to the backing id its reply
	// carries: go-fuse's node API has no way to return one.
	pending sync.Map
}

// ptState is a regular file's passthrough bookkeeping, mirroring the
// kernel's io mode of the inode: while any handle uses a backing file
// (open > 0) every new one must use the same one, and while any handle
// uses the page cache (cached > 0) none may use a backing file.
type ptState struct {
	mu sync.Mutex
	// open counts the handles answered with a backing id; write tells
	// whether that is writeID (else the node's backing, of readFile).
	open  int
	write bool
	// writeFile is the fid opened for writing that the write handles
	// share, registered as writeID; closed (and so unregistered) when
	// the last of them is released.
	writeFile p9.File
	writeID   int32
	// cached counts handles using the page cache.
	cached int
	// used is set once a handle used a backing file: the page cache
	// of the inode may since be stale, so a page-cache open then
	// drops it (no FOPEN_KEEP_CACHE).
	used bool
}

// use marks the open request of ctx to be answered with backing id id,
// if it is one.
func (p *passthrough) use(ctx context.Context, id int32) bool {
	c, ok := ctx.(*fuse.Context)
	if id <= 0 || !ok || c.Cancel == nil {
		return false
	}
	p.pending.Store(c.Cancel, id)
	return true
}

// register asks the gofer for the backing id of opened fid f, noting a
// refusal every file of the tree shares; -1 if there is none.
func (p *passthrough) register(f p9.File) int32 {
	bo, ok := f.(interface{ OpenBacking() (uint32, error) })
	if !ok {
		p.off.Store(true)
		return -1
	}
	id, err := bo.OpenBacking()
	if err != nil {
		switch toErrno(err) {
		case syscall.EPERM, syscall.ENOSYS, syscall.ENOTTY:
			// No passthrough on this connection, or no
			// capability: the same for every file of the tree.
			// (A file stacked too deep, ELOOP, or without the
			// operations passthrough needs, EOPNOTSUPP, may sit
			// on a mount of its own inside the tree.)
			p.off.Store(true)
		}
		return -1
	}
	return int32(id)
}

// backingID returns the node's backing id for its shared read fid f,
// asking the gofer on first use; -1 if there is none.
func (n *node) backingID(f p9.File) int32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.backing == 0 && !n.pt.off.Load() {
		n.backing = n.pt.register(f)
	}
	return n.backing
}

// openPassthrough opens a regular file of a passthrough mount (see
// ptState). While the inode's backing file is in use every open shares
// it, as the kernel requires; one of the other mode still opens a fid of
// its own with its mode, so the gofer checks that open as any other.
func (n *node) openPassthrough(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	s := &n.pts
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.open > 0:
		id, f := n.sharedID()
		h := &handle{file: f, shared: true, node: n, pt: true}
		if s.write != write {
			own, errno := n.openFid(flags)
			if errno != 0 {
				return nil, 0, errno
			}
			h.file, h.shared = own.file, false
		}
		if !n.pt.use(ctx, id) {
			if !h.shared {
				h.file.Close()
			}
			return nil, 0, syscall.EIO
		}
		s.open++
		return h, 0, 0
	case s.cached == 0 && !n.pt.off.Load():
		h, fl, errno := n.startPassthrough(ctx, flags, write)
		if errno != 0 {
			return nil, 0, errno
		}
		if !h.pt {
			s.cached++
			fl = s.cacheFlags(fl)
		}
		return h, fl, 0
	}
	h, fl, errno := n.openCached(flags)
	if errno != 0 {
		return nil, 0, errno
	}
	h.node, s.cached = n, s.cached+1
	return h, s.cacheFlags(fl), 0
}

// cacheFlags returns the open flags fl of a page-cache handle, without
// FOPEN_KEEP_CACHE once a backing file was used. s.mu is held.
func (s *ptState) cacheFlags(fl uint32) uint32 {
	if s.used {
		return fl &^ fuse.FOPEN_KEEP_CACHE
	}
	return fl
}

// startPassthrough opens the file with a new backing id, or, if the
// gofer registers none, as a page-cache handle (not yet counted). s.mu
// is held and no handle of the node is open.
func (n *node) startPassthrough(ctx context.Context, flags uint32, write bool) (*handle, uint32, syscall.Errno) {
	if !write {
		f, errno := n.sharedReadFile()
		if errno != 0 {
			return nil, 0, errno
		}
		if n.pt.use(ctx, n.backingID(f)) {
			n.pts.open, n.pts.write, n.pts.used = 1, false, true
			return &handle{file: f, shared: true, node: n, pt: true}, 0, 0
		}
		n.dropReadFile()
		h, fl, errno := n.openCached(flags)
		if errno != 0 {
			return nil, 0, errno
		}
		h.node = n
		return h, fl, 0
	}
	h, errno := n.openFid(flags)
	if errno != 0 {
		return nil, 0, errno
	}
	h.node = n
	if n.startWriteBacking(ctx, h) {
		return h, 0, 0
	}
	return h, n.fuseOpenFlags(), 0
}

// startWriteBacking has the gofer register h's fid, opened for writing,
// as the node's write backing file and answers the open of ctx with it;
// h's fid then belongs to the node. It reports whether it did. n.pts.mu
// is held and no handle of the node is open.
func (n *node) startWriteBacking(ctx context.Context, h *handle) bool {
	id := n.pt.register(h.file)
	if !n.pt.use(ctx, id) {
		return false
	}
	s := &n.pts
	s.open, s.write, s.writeFile, s.writeID, s.used = 1, true, h.file, id, true
	h.shared, h.pt = true, true
	return true
}

// adoptCreated records handle h of a file just made by Create, opened
// with flags: one opened for writing is registered as the node's write
// backing file if the gofer will, otherwise h uses the page cache.
func (n *node) adoptCreated(ctx context.Context, h *handle, flags uint32) uint32 {
	s := &n.pts
	s.mu.Lock()
	defer s.mu.Unlock()
	h.node = n
	if s.open == 0 && s.cached == 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY && !n.pt.off.Load() && n.startWriteBacking(ctx, h) {
		return 0
	}
	if s.open > 0 {
		// Another open of the new name came first: share its
		// backing file.
		if id, _ := n.sharedID(); n.pt.use(ctx, id) {
			s.open++
			h.pt = true
			return 0
		}
	}
	s.cached++
	return s.cacheFlags(n.fuseOpenFlags())
}

// released updates the node's bookkeeping for handle h being released.
// The last write handle closes the shared write fid, and with it the
// gofer's registration; on a mount others may change (not cached), the
// last read handle drops the shared read fid, so the gofer does not keep
// a descriptor for every file ever read.
func (n *node) released(h *handle) {
	s := &n.pts
	s.mu.Lock()
	var done p9.File
	switch {
	case h.pt:
		s.open--
		if s.open == 0 && s.write {
			done, s.writeFile, s.writeID, s.write = s.writeFile, nil, 0, false
		} else if s.open == 0 && !n.keepCache {
			n.dropReadFile()
		}
	default:
		s.cached--
	}
	s.mu.Unlock()
	if done != nil {
		done.Close()
	}
}

// dropReadFile closes the shared read fid of a node on a mount others
// may change, with its backing id, when no handle uses it. n.pts.mu is
// held.
func (n *node) dropReadFile() {
	if n.keepCache {
		return
	}
	n.mu.Lock()
	f := n.readFile
	n.readFile, n.backing = nil, 0
	n.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// passthroughFS puts the backing ids chosen by node.Open and node.Create
// into the replies of the open and create requests.
type passthroughFS struct {
	fuse.RawFileSystem
	pt *passthrough
}

// Open implements fuse.RawFileSystem. FOPEN_KEEP_CACHE may not go with
// passthrough: the page cache used is the host file's.
func (p *passthroughFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := p.RawFileSystem.Open(cancel, in, out)
	p.mark(cancel, st, out)
	return st
}

// Create implements fuse.RawFileSystem.
func (p *passthroughFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	st := p.RawFileSystem.Create(cancel, in, name, out)
	p.mark(cancel, st, &out.OpenOut)
	return st
}

// mark sets the backing id chosen for request cancel in its reply.
func (p *passthroughFS) mark(cancel <-chan struct{}, st fuse.Status, out *fuse.OpenOut) {
	if v, ok := p.pt.pending.LoadAndDelete(cancel); ok && st == fuse.OK {
		out.BackingID = v.(int32)
		out.OpenFlags = out.OpenFlags&^(fuse.FOPEN_KEEP_CACHE|fuse.FOPEN_DIRECT_IO) | fuse.FOPEN_PASSTHROUGH
	}
}

// sharedID returns the backing id and fid the open handles of n share.
// n.pts.mu is held.
func (n *node) sharedID() (int32, p9.File) {
	if n.pts.write {
		return n.pts.writeID, n.pts.writeFile
	}
	return n.backing, n.readFile
}

// setIDChanged is called when the file's mode gains a set-user-ID or
// set-group-ID bit: the gofer registers no such file (its writes must
// reach the sandbox, see killpriv.go), so the read registration the node
// keeps is asked for again on the next open, once no handle uses it.
func (n *node) setIDChanged() {
	if n.pt == nil {
		return
	}
	n.pts.mu.Lock()
	defer n.pts.mu.Unlock()
	if n.pts.open > 0 {
		return
	}
	n.mu.Lock()
	n.backing = 0
	n.mu.Unlock()
}
