package p9

import (
	"fmt"
	"sync/atomic"

	"github.com/hugelgupf/p9/linux"
)

// This file adds Tallocate, a runsc extension (version 8): fallocate(2)
// on an open fid, with the caller's mode bits (FALLOC_FL_KEEP_SIZE,
// PUNCH_HOLE, ZERO_RANGE, ...), which the server's file system accepts
// or refuses as the host's would.

const (
	msgTallocate msgType = 144
	msgRallocate msgType = 145
)

// Allocator is implemented by a server File that can allocate space.
type Allocator interface {
	Allocate(mode uint32, offset, length uint64) error
}

// tallocate asks for fallocate(mode, offset, length) on fid.
type tallocate struct {
	fid    fid
	mode   uint32
	offset uint64
	length uint64
}

func (t *tallocate) decode(b *buffer) {
	t.fid = b.ReadFID()
	t.mode = b.Read32()
	t.offset = b.Read64()
	t.length = b.Read64()
}

func (t *tallocate) encode(b *buffer) {
	b.WriteFID(t.fid)
	b.Write32(t.mode)
	b.Write64(t.offset)
	b.Write64(t.length)
}

func (*tallocate) typ() msgType { return msgTallocate }

// String implements fmt.Stringer.
func (t *tallocate) String() string {
	return fmt.Sprintf("Tallocate{FID: %d, Mode: %#x, Offset: %d, Length: %d}", t.fid, t.mode, t.offset, t.length)
}

// rallocate is the empty reply.
type rallocate struct{}

func (*rallocate) decode(*buffer) {}
func (*rallocate) encode(*buffer) {}
func (*rallocate) typ() msgType   { return msgRallocate }
func (*rallocate) String() string { return "Rallocate{}" }

// handle implements handler.handle: only a regular file opened for
// writing may be allocated, as fallocate(2) wants.
func (t *tallocate) handle(cs *connState) message {
	ref, ok := cs.LookupFID(t.fid)
	if !ok {
		return newErr(linux.EBADF)
	}
	defer ref.DecRef()
	al, ok := ref.file.(Allocator)
	if !ok {
		return newErr(linux.EOPNOTSUPP)
	}
	if err := ref.safelyRead(func() error {
		if !ref.mode.IsRegular() {
			return linux.EINVAL
		}
		if !ref.opened || ref.openFlags.Mode() == ReadOnly {
			return linux.EBADF
		}
		return al.Allocate(t.mode, t.offset, t.length)
	}); err != nil {
		return newErr(err)
	}
	return &rallocate{}
}

// Allocate has the server fallocate the open fid (see Allocator). It
// returns EOPNOTSUPP when the server lacks the extension.
func (c *clientFile) Allocate(mode uint32, offset, length uint64) error {
	if atomic.LoadUint32(&c.closed) != 0 {
		return linux.EBADF
	}
	if !versionSupportsTreaddirattr(c.client.version) {
		return linux.EOPNOTSUPP
	}
	return c.client.sendRecv(&tallocate{fid: c.fid, mode: mode, offset: offset, length: length}, &rallocate{})
}

func init() {
	msgDotLRegistry.register(msgTallocate, func() message { return &tallocate{} })
	msgDotLRegistry.register(msgRallocate, func() message { return &rallocate{} })
}
