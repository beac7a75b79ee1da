package p9

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hugelgupf/p9/linux"
)

// This file adds Treaddirattr, a runsc extension (version 8): a directory
// read whose every entry carries the entry's attributes, so a client that
// wants both (a FUSE READDIRPLUS) makes one round trip per batch of
// entries instead of one walk per entry.

const (
	msgTreaddirattr msgType = 140
	msgRreaddirattr msgType = 141
)

// versionSupportsTreaddirattr reports whether version v has Treaddirattr.
func versionSupportsTreaddirattr(v uint32) bool {
	return v >= 8
}

// DirentAttrOverhead is the encoded size of a DirentAttr without its name:
// the dirent's qid[13] offset[8] type[1] name length[2], then valid[8] and
// the attributes[132].
const DirentAttrOverhead = 13 + 8 + 1 + 2 + 8 + 132

// DirentAttr is a directory entry with the entry's attributes, as seen
// without following a symbolic link. Valid is empty when the entry could
// not be stated (it vanished between listing and stat).
type DirentAttr struct {
	Dirent
	Valid AttrMask
	Attr  Attr
}

// ReaddirAttrer is implemented by a server File that can read a directory
// with its entries' attributes. ReaddirAttr has Readdir's contract
// (offsets, count as the bound on the encoded size) with each entry
// taking DirentAttrOverhead plus its name's length.
type ReaddirAttrer interface {
	ReaddirAttr(offset uint64, count uint32) ([]DirentAttr, error)
}

// treaddirattr is a readdir-with-attributes request.
type treaddirattr struct {
	Directory fid
	Offset    uint64
	Count     uint32
}

func (t *treaddirattr) decode(b *buffer) {
	t.Directory = b.ReadFID()
	t.Offset = b.Read64()
	t.Count = b.Read32()
}

func (t *treaddirattr) encode(b *buffer) {
	b.WriteFID(t.Directory)
	b.Write64(t.Offset)
	b.Write32(t.Count)
}

func (*treaddirattr) typ() msgType { return msgTreaddirattr }

// String implements fmt.Stringer.
func (t *treaddirattr) String() string {
	return fmt.Sprintf("Treaddirattr{DirectoryFID: %d, Offset: %d, Count: %d}", t.Directory, t.Offset, t.Count)
}

// rreaddirattr is a readdir-with-attributes response.
type rreaddirattr struct {
	Entries []DirentAttr
}

func (r *rreaddirattr) decode(b *buffer) {
	n := b.Read32()
	// Every entry takes at least DirentAttrOverhead bytes: a count the
	// message cannot hold is refused before anything is allocated.
	if uint64(n)*DirentAttrOverhead > uint64(len(b.data)) {
		b.markOverrun()
		return
	}
	r.Entries = make([]DirentAttr, 0, n)
	for i := uint32(0); i < n && !b.isOverrun(); i++ {
		var d DirentAttr
		d.Dirent.decode(b)
		d.Valid.decode(b)
		d.Attr.decode(b)
		r.Entries = append(r.Entries, d)
	}
}

func (r *rreaddirattr) encode(b *buffer) {
	b.Write32(uint32(len(r.Entries)))
	for i := range r.Entries {
		r.Entries[i].Dirent.encode(b)
		r.Entries[i].Valid.encode(b)
		r.Entries[i].Attr.encode(b)
	}
}

func (*rreaddirattr) typ() msgType { return msgRreaddirattr }

// String implements fmt.Stringer.
func (r *rreaddirattr) String() string {
	return fmt.Sprintf("Rreaddirattr{Entries: %d}", len(r.Entries))
}

// handle implements handler.handle.
func (t *treaddirattr) handle(cs *connState) message {
	ref, ok := cs.LookupFID(t.Directory)
	if !ok {
		return newErr(linux.EBADF)
	}
	defer ref.DecRef()
	ra, ok := ref.file.(ReaddirAttrer)
	if !ok {
		return newErr(linux.ENOSYS)
	}
	// The reply must fit the negotiated message size whatever the
	// client asked for.
	count := t.Count
	if max := atomic.LoadUint32(&cs.messageSize); max > 64 && count > max-64 {
		count = max - 64
	}
	var entries []DirentAttr
	if err := ref.safelyRead(func() (err error) {
		if ref.isDeleted() || !ref.mode.IsDir() {
			return linux.EINVAL
		}
		entries, err = ra.ReaddirAttr(t.Offset, count)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}); err != nil {
		return newErr(err)
	}
	// A File that overfills count is cut short rather than let the
	// reply exceed the message size.
	used := uint64(0)
	for i := range entries {
		used += DirentAttrOverhead + uint64(len(entries[i].Name))
		if used > uint64(count) {
			entries = entries[:i]
			break
		}
	}
	return &rreaddirattr{Entries: entries}
}

// ReaddirAttr reads directory entries with their attributes (see
// ReaddirAttrer). It returns ENOSYS when the server lacks the extension;
// the caller then uses Readdir and walks.
func (c *clientFile) ReaddirAttr(offset uint64, count uint32) ([]DirentAttr, error) {
	if atomic.LoadUint32(&c.closed) != 0 {
		return nil, linux.EBADF
	}
	if !versionSupportsTreaddirattr(c.client.version) {
		return nil, linux.ENOSYS
	}
	var r rreaddirattr
	if err := c.client.sendRecv(&treaddirattr{Directory: c.fid, Offset: offset, Count: count}, &r); err != nil {
		return nil, err
	}
	return r.Entries, nil
}

func init() {
	msgDotLRegistry.register(msgTreaddirattr, func() message { return &treaddirattr{} })
	msgDotLRegistry.register(msgRreaddirattr, func() message { return &rreaddirattr{} })
}
