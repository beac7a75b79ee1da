package p9

import (
	"fmt"
	"sync/atomic"

	"github.com/hugelgupf/p9/linux"
)

// This file adds Ttmpfile, a runsc extension (version 8): open(2) with
// O_TMPFILE in a directory fid. The new fid is an open regular file with
// no name; it gets one only if the client links it (Tlink with it as the
// target).

const (
	msgTtmpfile msgType = 148
	msgRtmpfile msgType = 149
)

// TmpfileCreator is implemented by a server directory File that can
// make an unnamed file in itself.
type TmpfileCreator interface {
	Tmpfile(flags OpenFlags, perm FileMode, uid UID, gid GID) (File, QID, uint32, error)
}

// ttmpfile makes an unnamed file in directory fid as newFID.
type ttmpfile struct {
	fid         fid
	newFID      fid
	OpenFlags   OpenFlags
	Permissions FileMode
	UID         UID
	GID         GID
}

func (t *ttmpfile) decode(b *buffer) {
	t.fid = b.ReadFID()
	t.newFID = b.ReadFID()
	t.OpenFlags = b.ReadOpenFlags()
	t.Permissions = b.ReadPermissions()
	t.UID = b.ReadUID()
	t.GID = b.ReadGID()
}

func (t *ttmpfile) encode(b *buffer) {
	b.WriteFID(t.fid)
	b.WriteFID(t.newFID)
	b.WriteOpenFlags(t.OpenFlags)
	b.WritePermissions(t.Permissions)
	b.WriteUID(t.UID)
	b.WriteGID(t.GID)
}

func (*ttmpfile) typ() msgType { return msgTtmpfile }

// String implements fmt.Stringer.
func (t *ttmpfile) String() string {
	return fmt.Sprintf("Ttmpfile{FID: %d, NewFID: %d, OpenFlags: %s, Permissions: %o, UID: %d, GID: %d}", t.fid, t.newFID, t.OpenFlags, t.Permissions, t.UID, t.GID)
}

// rtmpfile is the new file's QID and I/O unit.
type rtmpfile struct {
	rlopen
}

func (*rtmpfile) typ() msgType { return msgRtmpfile }

// String implements fmt.Stringer.
func (r *rtmpfile) String() string {
	return fmt.Sprintf("Rtmpfile{QID: %s, IoUnit: %d}", r.QID, r.IoUnit)
}

// handle implements handler.handle. The new fid has a path node of its
// own and no parent: it is in no directory, so no name operation
// reaches it, and it holds no reference it did not take.
func (t *ttmpfile) handle(cs *connState) message {
	ref, ok := cs.LookupFID(t.fid)
	if !ok {
		return newErr(linux.EBADF)
	}
	defer ref.DecRef()
	tc, ok := ref.file.(TmpfileCreator)
	if !ok {
		return newErr(linux.EOPNOTSUPP)
	}
	var r rtmpfile
	if err := ref.safelyRead(func() error {
		if ref.isDeleted() || !ref.mode.IsDir() || ref.opened {
			return linux.EINVAL
		}
		if t.OpenFlags.Mode() == ReadOnly {
			return linux.EINVAL
		}
		nsf, qid, iounit, err := tc.Tmpfile(t.OpenFlags, t.Permissions, t.UID, t.GID)
		if err != nil {
			return err
		}
		cs.InsertFID(t.newFID, &fidRef{
			server:    cs.server,
			file:      nsf,
			opened:    true,
			openFlags: t.OpenFlags,
			mode:      ModeRegular,
			pathNode:  newPathNode(),
		})
		r.QID, r.IoUnit = qid, iounit
		return nil
	}); err != nil {
		return newErr(err)
	}
	return &r
}

// Tmpfile has the server make an unnamed, open file in this directory
// (see TmpfileCreator). It returns EOPNOTSUPP when the server lacks the
// extension.
func (c *clientFile) Tmpfile(flags OpenFlags, perm FileMode, uid UID, gid GID) (File, QID, uint32, error) {
	if atomic.LoadUint32(&c.closed) != 0 {
		return nil, QID{}, 0, linux.EBADF
	}
	if !versionSupportsTreaddirattr(c.client.version) {
		return nil, QID{}, 0, linux.EOPNOTSUPP
	}
	id, ok := c.client.fidPool.Get()
	if !ok {
		return nil, QID{}, 0, ErrOutOfFIDs
	}
	var r rtmpfile
	if err := c.client.sendRecv(&ttmpfile{fid: c.fid, newFID: fid(id), OpenFlags: flags, Permissions: perm, UID: uid, GID: gid}, &r); err != nil {
		c.client.fidPool.Put(id)
		return nil, QID{}, 0, err
	}
	return c.client.newFile(fid(id)), r.QID, r.IoUnit, nil
}

func init() {
	msgDotLRegistry.register(msgTtmpfile, func() message { return &ttmpfile{} })
	msgDotLRegistry.register(msgRtmpfile, func() message { return &rtmpfile{} })
}
