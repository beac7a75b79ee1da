package fuse9p

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

// passthrough is a mount's FUSE passthrough state. The gofer, which holds
// the mount's /dev/fuse descriptor too, registers a file's host
// descriptor as a backing file (Tbackingopen) once per inode, keeping it
// registered until the inode's shared read fid is clunked; opens of the
// inode are answered with that id and the kernel reads the host file
// itself. The sandbox never holds the host descriptor.
type passthrough struct {
	// off is set once the gofer refused a registration for a reason
	// every file of the tree shares (no support, no capability, host
	// files on a file system stacked too deep): none is asked for
	// again.
	off atomic.Bool
	// pending maps an open request in flight (by its cancel channel,
	// unique while the request lasts) to the backing id its reply
	// carries: go-fuse's node API has no way to return one.
	pending sync.Map
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

// backingID returns the node's backing id for its shared read fid f,
// asking the gofer on first use; -1 if there is none.
func (n *node) backingID(f p9.File) int32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.backing != 0 {
		return n.backing
	}
	n.backing = -1
	if n.pt.off.Load() {
		return -1
	}
	bo, ok := f.(interface{ OpenBacking() (uint32, error) })
	if !ok {
		n.pt.off.Store(true)
		return -1
	}
	id, err := bo.OpenBacking()
	if err != nil {
		switch toErrno(err) {
		case syscall.EPERM, syscall.ENOSYS, syscall.ENOTTY, syscall.EOPNOTSUPP, syscall.ELOOP:
			// No passthrough on this connection, no capability,
			// or host files stacked too deep: the same for every
			// file of the tree.
			n.pt.off.Store(true)
		}
		return -1
	}
	n.backing = int32(id)
	return n.backing
}

// passthroughFS puts the backing ids chosen by node.Open into the replies
// of the open requests.
type passthroughFS struct {
	fuse.RawFileSystem
	pt *passthrough
}

// Open implements fuse.RawFileSystem. FOPEN_KEEP_CACHE may not go with
// passthrough: the page cache used is the host file's.
func (p *passthroughFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := p.RawFileSystem.Open(cancel, in, out)
	if v, ok := p.pt.pending.LoadAndDelete(cancel); ok && st == fuse.OK {
		out.BackingID = v.(int32)
		out.OpenFlags = out.OpenFlags&^fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_PASSTHROUGH
	}
	return st
}
