package p9

import (
	"fmt"
	"sync/atomic"

	"github.com/hugelgupf/p9/linux"
)

// This file adds Tbackingopen, a runsc extension (version 8): the server
// registers the file of an open fid as a FUSE passthrough backing file on
// a /dev/fuse connection it shares with the client, and returns the
// backing id. The client, serving that FUSE connection, answers opens of
// the file with the id, opens for reading with the id of a fid opened for
// reading and opens for writing with that of a fid opened for writing;
// the kernel then reads and writes the host file directly. The client
// never holds the host file. The id stays registered until the fid is
// clunked.

const (
	msgTbackingopen msgType = 142
	msgRbackingopen msgType = 143
)

// BackingOpener is implemented by a server File that can register itself
// as a FUSE passthrough backing file. The kernel opens a backing file anew
// for each FUSE open answered with its id, with that open's flags: an
// implementation must register a file opened read-only so that it cannot
// be opened for writing that way (through a read-only mount).
type BackingOpener interface {
	OpenBacking() (uint32, error)
}

// tbackingopen asks for fid's backing id.
type tbackingopen struct {
	fid fid
}

func (t *tbackingopen) decode(b *buffer) { t.fid = b.ReadFID() }
func (t *tbackingopen) encode(b *buffer) { b.WriteFID(t.fid) }
func (*tbackingopen) typ() msgType       { return msgTbackingopen }

// String implements fmt.Stringer.
func (t *tbackingopen) String() string { return fmt.Sprintf("Tbackingopen{FID: %d}", t.fid) }

// rbackingopen carries the backing id.
type rbackingopen struct {
	ID uint32
}

func (r *rbackingopen) decode(b *buffer) { r.ID = b.Read32() }
func (r *rbackingopen) encode(b *buffer) { b.Write32(r.ID) }
func (*rbackingopen) typ() msgType       { return msgRbackingopen }

// String implements fmt.Stringer.
func (r *rbackingopen) String() string { return fmt.Sprintf("Rbackingopen{ID: %d}", r.ID) }

// handle implements handler.handle. Only an opened regular file is
// registered; the server File keeps a read-only fid's registration from
// ever being used to write (see BackingOpener).
func (t *tbackingopen) handle(cs *connState) message {
	ref, ok := cs.LookupFID(t.fid)
	if !ok {
		return newErr(linux.EBADF)
	}
	defer ref.DecRef()
	bo, ok := ref.file.(BackingOpener)
	if !ok {
		return newErr(linux.ENOSYS)
	}
	var id uint32
	if err := ref.safelyRead(func() (err error) {
		if ref.isDeleted() || !ref.mode.IsRegular() {
			return linux.EINVAL
		}
		if !ref.opened {
			return linux.EBADF
		}
		id, err = bo.OpenBacking()
		return err
	}); err != nil {
		return newErr(err)
	}
	return &rbackingopen{ID: id}
}

// OpenBacking has the server register the open file as a FUSE passthrough
// backing file and returns its id (see BackingOpener). It returns ENOSYS
// when the server lacks the extension.
func (c *clientFile) OpenBacking() (uint32, error) {
	if atomic.LoadUint32(&c.closed) != 0 {
		return 0, linux.EBADF
	}
	if !versionSupportsTreaddirattr(c.client.version) {
		return 0, linux.ENOSYS
	}
	var r rbackingopen
	if err := c.client.sendRecv(&tbackingopen{fid: c.fid}, &r); err != nil {
		return 0, err
	}
	return r.ID, nil
}

func init() {
	msgDotLRegistry.register(msgTbackingopen, func() message { return &tbackingopen{} })
	msgDotLRegistry.register(msgRbackingopen, func() message { return &rbackingopen{} })
}
