package fuse9p

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/p9"
)

// The mounts take over from the kernel the clearing of a file's
// set-user-ID and set-group-ID bits on a write or truncate by a caller
// without CAP_FSETID (FUSE_HANDLE_KILLPRIV_V2): the kernel then marks the
// superblock SB_NOSEC and stops asking for security.capability (a FUSE
// round trip) on every write of a file that has none. The gofer, which
// holds CAP_FSETID, writes without clearing them, so the sandbox clears
// them itself when the kernel says so: the WRITE_KILL_SUIDGID flag of a
// write, the FATTR_KILL_SUIDGID flag of a truncate. A set-ID file is not
// written through passthrough, where no write request reaches the
// sandbox: the gofer registers no set-ID file of a writable tree (a
// handle already open when a chmod adds the bits keeps its backing file
// until it is closed). The host clears file capabilities itself on every
// write and truncate.

// killWrites holds the write requests in flight (by their cancel
// channel, unique while the request lasts) that must clear set-ID bits:
// go-fuse's node API does not pass a write's flags on.
var killWrites sync.Map

// killSUIDGID clears f's set-user-ID bit, and its set-group-ID bit if it
// is group-executable, as Linux does for a write or truncate by a
// caller without CAP_FSETID; into valid and attr if they are given (to
// go with other changes), else at once.
func killSUIDGID(f p9.File, valid *p9.SetAttrMask, attr *p9.SetAttr) syscall.Errno {
	_, _, cur, err := f.GetAttr(p9.AttrMask{Mode: true})
	if err != nil {
		return toErrno(err)
	}
	mode := cur.Mode & 07777
	if valid != nil && valid.Permissions {
		mode = attr.Permissions & 07777
	}
	kept := mode &^ syscall.S_ISUID
	if mode&(syscall.S_ISGID|syscall.S_IXGRP) == syscall.S_ISGID|syscall.S_IXGRP {
		kept &^= syscall.S_ISGID
	}
	if kept == mode {
		return 0
	}
	if valid != nil {
		valid.Permissions, attr.Permissions = true, kept
		return 0
	}
	return toErrno(f.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: kept}))
}

// mustKill reports whether the write request of ctx must clear set-ID
// bits.
func mustKill(ctx context.Context) bool {
	c, ok := ctx.(*fuse.Context)
	if !ok || c.Cancel == nil {
		return false
	}
	_, kill := killWrites.Load(c.Cancel)
	return kill
}

// killFS notes the write requests that must clear set-ID bits (see
// killWrites) for handle.Write.
type killFS struct {
	fuse.RawFileSystem
}

// Write implements fuse.RawFileSystem.
func (k killFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	defer noteKill(cancel, in)()
	return k.RawFileSystem.Write(cancel, in, data)
}

// Writev implements fuse.RawFileSystem; go-fuse serves writes with it.
func (k killFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	defer noteKill(cancel, in)()
	return k.RawFileSystem.Writev(cancel, in, data)
}

// noteKill records write request cancel in killWrites if it must clear
// set-ID bits, and returns the function that forgets it.
func noteKill(cancel <-chan struct{}, in *fuse.WriteIn) func() {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID == 0 {
		return func() {}
	}
	killWrites.Store(cancel, true)
	return func() { killWrites.Delete(cancel) }
}
