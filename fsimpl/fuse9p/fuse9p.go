// Package fuse9p provides the sandbox's view of a gofer tree: a FUSE file
// system (go-fuse v2) whose every operation is forwarded to a 9P2000.L
// client connected to the gofer. The sandbox holds no host descriptor for
// these files; the kernel caches entries, attributes and pages with the
// timeouts given in Options, which is safe because a container's root file
// system is exclusive to it.
package fuse9p

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// Options configures a mount.
type Options struct {
	// Timeout is the kernel's entry, attribute and negative-entry cache
	// timeout. Zero disables caching.
	Timeout time.Duration
	// ReadOnly mounts the file system read-only.
	ReadOnly bool
	// MessageSize is the 9P msize to negotiate (default 1 MiB + headers).
	MessageSize uint32
	// Name appears as the mount's source in mountinfo.
	Name string
	// Debug logs every FUSE request.
	Debug bool
}

// maxWrite is the largest FUSE write; one 9P message carries it.
const maxWrite = 1 << 20

// Mount connects a 9P client to the gofer over conn, attaches to its tree
// and mounts it at dir. The returned server is already serving; Unmount
// it (or close the gofer connection, which fails every request with EIO).
func Mount(dir string, conn net.Conn, opts Options) (*fuse.Server, *p9.Client, error) {
	msize := opts.MessageSize
	if msize == 0 {
		msize = maxWrite + 4096
	}
	client, err := p9.NewClient(conn, p9.WithMessageSize(msize))
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("9P handshake with gofer: %w", err)
	}
	root, err := client.Attach("/")
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("attaching to gofer tree: %w", err)
	}
	qid, _, attr, err := root.GetAttr(p9.AttrMaskAll)
	if err != nil {
		root.Close()
		client.Close()
		return nil, nil, fmt.Errorf("stat of gofer tree root: %w", err)
	}
	name := opts.Name
	if name == "" {
		name = "runsc-9p"
	}
	timeout := opts.Timeout
	mountOpts := []string{"default_permissions"}
	if opts.ReadOnly {
		mountOpts = append(mountOpts, "ro")
	}
	rootNode := &node{file: root, isDir: attr.Mode.IsDir()}
	fsOpts := &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		RootStableAttr:  &fs.StableAttr{Ino: qid.Path, Mode: uint32(attr.Mode.FileType())},
		MountOptions: fuse.MountOptions{
			AllowOther:   true,
			DirectMount:  true,
			FsName:       name,
			Name:         "runsc",
			MaxWrite:     maxWrite,
			MaxReadAhead: maxWrite,
			Options:      mountOpts,
			Debug:        opts.Debug,
			// Extended attributes are not served by the gofer.
			DisableXAttrs: true,
		},
	}
	srv, err := fs.Mount(dir, rootNode, fsOpts)
	if err != nil {
		root.Close()
		client.Close()
		return nil, nil, fmt.Errorf("mounting FUSE at %q: %w", dir, err)
	}
	return srv, client, nil
}

// toErrno converts a 9P client error to an errno. A broken connection
// (the gofer died) is EIO.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return syscall.Errno(linux.ExtractErrno(err))
}

// caller returns the uid and gid of the process making the request.
func caller(ctx context.Context) (p9.UID, p9.GID) {
	if c, ok := fuse.FromContext(ctx); ok {
		return p9.UID(c.Uid), p9.GID(c.Gid)
	}
	return p9.NoUID, p9.NoGID
}

// fillAttr converts 9P attributes to FUSE attributes.
func fillAttr(qid p9.QID, a *p9.Attr, out *fuse.Attr) {
	out.Ino = qid.Path
	out.Mode = uint32(a.Mode)
	out.Nlink = uint32(a.NLink)
	out.Uid = uint32(a.UID)
	out.Gid = uint32(a.GID)
	out.Rdev = uint32(a.RDev)
	out.Size = a.Size
	out.Blocks = a.Blocks
	out.Blksize = uint32(a.BlockSize)
	out.Atime, out.Atimensec = a.ATimeSeconds, uint32(a.ATimeNanoSeconds)
	out.Mtime, out.Mtimensec = a.MTimeSeconds, uint32(a.MTimeNanoSeconds)
	out.Ctime, out.Ctimensec = a.CTimeSeconds, uint32(a.CTimeNanoSeconds)
}
