package p9

import (
	"fmt"
	"sync/atomic"

	"github.com/hugelgupf/p9/linux"
)

// This file adds Tlseek, a runsc extension (version 8): lseek(2) with
// SEEK_DATA or SEEK_HOLE on an open fid, so that a client finds the data
// and holes of a sparse file as the server's file system knows them.

const (
	msgTlseek msgType = 146
	msgRlseek msgType = 147
)

// Whence values Tlseek takes.
const (
	SeekData = 3
	SeekHole = 4
)

// Seeker is implemented by a server File that can find data and holes.
type Seeker interface {
	Lseek(offset uint64, whence uint32) (uint64, error)
}

// tlseek asks for the next data (SeekData) or hole (SeekHole) at or
// after offset in fid.
type tlseek struct {
	fid    fid
	offset uint64
	whence uint32
}

func (t *tlseek) decode(b *buffer) {
	t.fid = b.ReadFID()
	t.offset = b.Read64()
	t.whence = b.Read32()
}

func (t *tlseek) encode(b *buffer) {
	b.WriteFID(t.fid)
	b.Write64(t.offset)
	b.Write32(t.whence)
}

func (*tlseek) typ() msgType { return msgTlseek }

// String implements fmt.Stringer.
func (t *tlseek) String() string {
	return fmt.Sprintf("Tlseek{FID: %d, Offset: %d, Whence: %d}", t.fid, t.offset, t.whence)
}

// rlseek carries the resulting offset.
type rlseek struct {
	Offset uint64
}

func (r *rlseek) decode(b *buffer) { r.Offset = b.Read64() }
func (r *rlseek) encode(b *buffer) { b.Write64(r.Offset) }
func (*rlseek) typ() msgType       { return msgRlseek }

// String implements fmt.Stringer.
func (r *rlseek) String() string { return fmt.Sprintf("Rlseek{Offset: %d}", r.Offset) }

// handle implements handler.handle: only an opened regular file, only
// SEEK_DATA and SEEK_HOLE.
func (t *tlseek) handle(cs *connState) message {
	ref, ok := cs.LookupFID(t.fid)
	if !ok {
		return newErr(linux.EBADF)
	}
	defer ref.DecRef()
	sk, ok := ref.file.(Seeker)
	if !ok {
		return newErr(linux.EOPNOTSUPP)
	}
	var off uint64
	if err := ref.safelyRead(func() (err error) {
		if t.whence != SeekData && t.whence != SeekHole {
			return linux.EINVAL
		}
		if !ref.opened || !ref.mode.IsRegular() {
			return linux.EBADF
		}
		off, err = sk.Lseek(t.offset, t.whence)
		return err
	}); err != nil {
		return newErr(err)
	}
	return &rlseek{Offset: off}
}

// Lseek has the server find the next data (SeekData) or hole (SeekHole)
// at or after offset (see Seeker). It returns EOPNOTSUPP when the server
// lacks the extension.
func (c *clientFile) Lseek(offset uint64, whence uint32) (uint64, error) {
	if atomic.LoadUint32(&c.closed) != 0 {
		return 0, linux.EBADF
	}
	if !versionSupportsTreaddirattr(c.client.version) {
		return 0, linux.EOPNOTSUPP
	}
	var r rlseek
	if err := c.client.sendRecv(&tlseek{fid: c.fid, offset: offset, whence: whence}, &r); err != nil {
		return 0, err
	}
	return r.Offset, nil
}

func init() {
	msgDotLRegistry.register(msgTlseek, func() message { return &tlseek{} })
	msgDotLRegistry.register(msgRlseek, func() message { return &rlseek{} })
}
