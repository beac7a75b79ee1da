package fuse9p

import (
	"context"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

// handle is an open file: an opened 9P fid.
type handle struct {
	file p9.File
	// shared handles use a fid of their node (its read-only fid, or
	// the write fid of its passthrough handles), which outlives them.
	shared bool
	// node, if set, counts the handle in its passthrough bookkeeping
	// (see ptState): as a passthrough handle if pt, else as one
	// using the page cache.
	node *node
	pt   bool
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileAllocater = (*handle)(nil)
	_ fs.FileLseeker   = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
)

// Read implements fs.FileReader. A 9P read returns at most msize bytes, so
// it loops until dest is full or the file ends.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	total := 0
	for total < len(dest) {
		n, err := h.file.ReadAt(dest[total:], off+int64(total))
		total += n
		if err == io.EOF || (err == nil && n == 0) {
			break
		}
		if err != nil {
			if total > 0 {
				break
			}
			return nil, toErrno(err)
		}
	}
	return fuse.ReadResultData(dest[:total]), 0
}

// Write implements fs.FileWriter.
func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if mustKill(ctx) {
		if errno := killSUIDGID(h.file, nil, nil); errno != 0 {
			return 0, errno
		}
	}
	total := 0
	for total < len(data) {
		n, err := h.file.WriteAt(data[total:], off+int64(total))
		total += n
		if err != nil {
			if total > 0 {
				break
			}
			return 0, toErrno(err)
		}
		if n == 0 {
			break
		}
	}
	return uint32(total), 0
}

// Fsync implements fs.FileFsyncer.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return toErrno(h.file.FSync())
}

// Allocate implements fs.FileAllocater: fallocate(2) through the gofer
// (Tallocate), with the caller's mode bits.
func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	a, ok := h.file.(interface {
		Allocate(mode uint32, offset, length uint64) error
	})
	if !ok {
		return syscall.EOPNOTSUPP
	}
	return toErrno(a.Allocate(mode, off, size))
}

// Lseek implements fs.FileLseeker: the kernel asks only for SEEK_DATA
// and SEEK_HOLE, which the gofer answers from the host file (Tlseek).
func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	sk, ok := h.file.(interface {
		Lseek(offset uint64, whence uint32) (uint64, error)
	})
	if !ok {
		return 0, syscall.EOPNOTSUPP
	}
	n, err := sk.Lseek(off, whence)
	return n, toErrno(err)
}

// Flush implements fs.FileFlusher: writes go straight to the gofer, so
// there is nothing to flush.
func (h *handle) Flush(ctx context.Context) syscall.Errno { return 0 }

// Release implements fs.FileReleaser.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	if h.node != nil {
		h.node.released(h)
	}
	if h.shared {
		return 0
	}
	return toErrno(h.file.Close())
}

// fileOf returns the fid of an open file handle, if fh is one.
func fileOf(fh fs.FileHandle) (p9.File, bool) {
	h, ok := fh.(*handle)
	if !ok || h == nil {
		return nil, false
	}
	return h.file, true
}
