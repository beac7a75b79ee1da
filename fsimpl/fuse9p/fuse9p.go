// Package fuse9p provides the sandbox's view of a gofer tree: a FUSE file
// system (go-fuse v2) whose every operation is forwarded to a 9P2000.L
// client connected to the gofer. The sandbox holds no host descriptor for
// these files; the kernel caches entries, attributes and pages with the
// timeouts given in Options, which is safe because a container's root file
// system is exclusive to it.
package fuse9p

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// Options configures a mount.
type Options struct {
	// Timeout is the kernel's entry, attribute and negative-entry cache
	// timeout, for a tree exclusive to this mount (a container's root):
	// file pages are then also kept across opens. Zero disables caching,
	// for trees others may change (volumes shared in a pod, host
	// directories): every lookup and open then goes to the gofer.
	Timeout time.Duration
	// ReadOnly mounts the file system read-only.
	ReadOnly bool
	// MessageSize is the 9P msize to negotiate (default 1 MiB + headers).
	MessageSize uint32
	// Name appears as the mount's source in mountinfo.
	Name string
	// Debug logs every FUSE request.
	Debug bool
	// Dev, if not nil, is the /dev/fuse descriptor to mount with
	// (duplicated; the caller closes its copy); otherwise one is
	// opened.
	Dev *os.File
	// Detached, if not nil, is a FUSE mount already made on Dev (see
	// MakeMount), attached at the mount point instead of mounting
	// anew: a sandbox in a user namespace cannot make one the gofer
	// and its passthrough may use. The caller closes its copy.
	Detached *os.File
	// IDs maps the ids of the Detached mount's user namespace to the
	// pod's (nil: the same namespace).
	IDs *IDMap
	// Entry, if not empty, makes a directory tree appear as the only
	// entry, so named, of a read-only root directory (as a single-file
	// tree appears under FileName): a bind mount of dir/Entry then shows
	// /Entry as its root in mountinfo, as a bind of a host directory
	// shows the directory's path.
	Entry string
	// Passthrough answers the opens of regular files with FUSE
	// passthrough: the gofer registers the opened file on Dev, which it
	// holds too (Tbackingopen), and the kernel then reads and writes
	// the host file directly. Files the gofer cannot register are
	// served over 9P as without it.
	Passthrough bool
	// OverlayLower tells that an overlayfs is stacked on the mount (the
	// memory overlay's lower layer). Overlayfs asks for its own xattrs
	// (user.overlay.*, trusted.overlay.*) on every file it looks up,
	// a round trip each; they are answered ENODATA here, which also
	// keeps an image's files from carrying directions for the
	// sandbox's overlay (a redirect, say).
	OverlayLower bool
	// StackDepth is the stacking depth the mount announces with
	// passthrough (1 if 0): the host files' own (1 on overlayfs) plus
	// one. The kernel then refuses to stack more than the remaining
	// depth on the mount: 2 leaves no room for an overlayfs using it.
	StackDepth int
}

// maxWrite is the largest FUSE write; one 9P message carries it.
const maxWrite = 1 << 20

// Tree is a gofer tree the sandbox is attached to, ready to be mounted.
type Tree struct {
	client *p9.Client
	root   p9.File
	qid    p9.QID
	attr   p9.Attr
}

// Dial connects a 9P client to the gofer over conn and attaches to its
// tree. msize 0 means 1 MiB plus headers. On error conn is closed.
func Dial(conn net.Conn, msize uint32) (*Tree, error) {
	if msize == 0 {
		msize = maxWrite + 4096
	}
	client, err := p9.NewClient(conn, p9.WithMessageSize(msize))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("9P handshake with gofer: %w", err)
	}
	root, err := client.Attach("/")
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("attaching to gofer tree: %w", err)
	}
	qid, _, attr, err := root.GetAttr(p9.AttrMaskAll)
	if err != nil {
		root.Close()
		client.Close()
		return nil, fmt.Errorf("stat of gofer tree root: %w", err)
	}
	return &Tree{client: client, root: root, qid: qid, attr: attr}, nil
}

// IsDir reports whether the tree's root is a directory (else it is a
// single regular file, mounted on a file).
func (t *Tree) IsDir() bool { return t.attr.Mode.IsDir() }

// Close drops the connection without mounting.
func (t *Tree) Close() error {
	t.root.Close()
	return t.client.Close()
}

// Mounted is a mounted tree being served.
type Mounted struct {
	dir    string
	server *fuse.Server
}

// Unmount detaches the mount; the FUSE server then stops. Close the tree
// afterwards.
func (m *Mounted) Unmount() error {
	err := unix.Unmount(m.dir, unix.MNT_DETACH)
	m.server.Wait()
	return err
}

// Mount mounts the tree at dir, a directory. A single-file tree appears
// as dir/FileName. The mount is made here, with
// mount(2) on a /dev/fuse descriptor this package opens (so a tree may be
// a single file, and no fusermount is ever involved); go-fuse then serves
// that descriptor.
func (t *Tree) Mount(dir string, opts Options) (_ *Mounted, err error) {
	name := opts.Name
	if name == "" {
		name = "runsc-9p"
	}
	var st unix.Stat_t
	if err = unix.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("mount point %q: %w", dir, err)
	}
	var fd int
	if opts.Dev != nil {
		fd, err = unix.FcntlInt(opts.Dev.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	} else if opts.Detached == nil {
		fd, err = unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	} else {
		err = fmt.Errorf("a detached mount without its /dev/fuse")
	}
	if err != nil {
		return nil, fmt.Errorf("opening /dev/fuse: %w", err)
	}
	if opts.Detached != nil {
		err = unix.MoveMount(int(opts.Detached.Fd()), "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH)
	} else {
		data := fmt.Sprintf("fd=%d,rootmode=%o,user_id=0,group_id=0,max_read=%d,allow_other,default_permissions", fd, st.Mode&unix.S_IFMT, maxWrite)
		flags := uintptr(unix.MS_NODEV)
		if opts.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		err = unix.Mount(name, dir, "fuse.runsc", flags, data)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mounting FUSE at %q: %w", dir, err)
	}
	timeout := opts.Timeout
	keep := opts.Timeout > 0
	var pt *passthrough
	if opts.Passthrough {
		pt = &passthrough{}
	}
	var rootNode fs.InodeEmbedder = &node{file: t.root, isDir: true, keepCache: keep, lower: opts.OverlayLower, pt: pt, ids: opts.IDs}
	rootIno := t.qid.Path
	switch {
	case !t.IsDir():
		rootNode = &fileHolder{file: t.root, qid: t.qid, attr: t.attr, keepCache: keep, ids: opts.IDs}
		// The file keeps its own inode number; the holder takes one
		// no file system uses for a regular file.
		rootIno = 1
	case opts.Entry != "":
		if opts.Entry == "." || opts.Entry == ".." || strings.ContainsAny(opts.Entry, "/\x00") {
			unix.Unmount(dir, unix.MNT_DETACH)
			unix.Close(fd)
			return nil, fmt.Errorf("tree entry name %q: not a file name", opts.Entry)
		}
		rootNode = &dirHolder{name: opts.Entry, tree: rootNode, ids: opts.IDs}
		// Not the tree root's: go-fuse would take the two for one
		// inode (a file system's root is often inode 1).
		rootIno = holderIno
	}
	fsOpts := &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		RootStableAttr:  &fs.StableAttr{Ino: rootIno},
		MountOptions: fuse.MountOptions{
			FsName:        name,
			Name:          "runsc",
			MaxWrite:      maxWrite,
			MaxReadAhead:  maxWrite,
			MaxStackDepth: opts.StackDepth,
			Debug:         opts.Debug,
			// POSIX ACLs are kept and enforced by the kernel
			// (with default_permissions), stored by the gofer.
			EnableAcl: true,
			// Symbolic link targets are cached like attributes
			// (every exec of a busybox applet reads one).
			EnableSymlinkCaching: keep,
			// Replies come from memory (a 9P message), not from a
			// descriptor: splicing would only add a pipe copy, and
			// fails for 1 MiB reads.
			DisableSplice: true,
			// The sandbox clears set-ID bits on writes (see
			// killpriv.go); the kernel then stops asking for
			// security.capability on every write.
			ExtraCapabilities: fuse.CAP_HANDLE_KILLPRIV_V2,
			Logger:            slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
		},
	}
	// "/dev/fd/N" tells go-fuse to serve an already mounted descriptor.
	var rawFS fuse.RawFileSystem = killFS{fs.NewNodeFS(rootNode, fsOpts)}
	if pt != nil {
		rawFS = &passthroughFS{RawFileSystem: rawFS, pt: pt}
	}
	srv, err := fuse.NewServer(rawFS, "/dev/fd/"+strconv.Itoa(fd), &fsOpts.MountOptions)
	if err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		unix.Close(fd)
		return nil, fmt.Errorf("serving FUSE at %q: %w", dir, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return nil, fmt.Errorf("serving FUSE at %q: %w", dir, err)
	}
	pollHack(dir)
	return &Mounted{dir: dir, server: srv}, nil
}

// PollHackName is the file go-fuse answers itself so that the kernel
// learns FUSE_POLL is not implemented.
const PollHackName = ".go-fuse-epoll-hack"

// pollHack polls go-fuse's special file once, as go-fuse does when it
// mounts by itself: afterwards the kernel no longer sends FUSE_POLL.
// Otherwise Go's netpoller, registering any file opened on the mount by
// this process, would block in epoll_wait on a FUSE_POLL request that
// this same process must answer.
func pollHack(dir string) {
	fd, err := unix.Open(dir+"/"+PollHackName, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLPRI | unix.POLLOUT}}, 0)
	unix.Close(fd)
}

// Mount dials the gofer over conn and mounts its tree at dir: Dial, then
// Tree.Mount.
func Mount(dir string, conn net.Conn, opts Options) (*Mounted, *Tree, error) {
	t, err := Dial(conn, opts.MessageSize)
	if err != nil {
		return nil, nil, err
	}
	m, err := t.Mount(dir, opts)
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	return m, t, nil
}

// toErrno converts a 9P client error to an errno. A broken connection
// (the gofer died) is EIO.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return syscall.Errno(linux.ExtractErrno(err))
}

// MakeMount makes a FUSE mount for a tree, not attached anywhere: it
// returns the /dev/fuse descriptor to serve it on and the detached mount
// (see Options.Detached). The mount belongs to the calling process's
// user namespace, whose ids the kernel then speaks on it (see IDMap);
// its root is a directory, as every tree's is (a single-file tree is a
// directory holding the file).
func MakeMount(name string, readOnly bool) (dev, mnt *os.File, err error) {
	if name == "" {
		name = "runsc-9p"
	}
	dfd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/fuse: %w", err)
	}
	dev = os.NewFile(uintptr(dfd), "fuse-dev")
	fsfd, err := unix.Fsopen("fuse", unix.FSOPEN_CLOEXEC)
	if err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("fsopen fuse: %w", err)
	}
	defer unix.Close(fsfd)
	params := [][2]string{
		{"source", name}, {"subtype", "runsc"}, {"fd", strconv.Itoa(dfd)},
		{"rootmode", strconv.FormatUint(unix.S_IFDIR, 8)}, {"user_id", "0"}, {"group_id", "0"},
		{"max_read", strconv.Itoa(maxWrite)},
	}
	for _, p := range params {
		if err := unix.FsconfigSetString(fsfd, p[0], p[1]); err != nil {
			dev.Close()
			return nil, nil, fmt.Errorf("fsconfig fuse %s: %w", p[0], err)
		}
	}
	flags := []string{"allow_other", "default_permissions"}
	if readOnly {
		flags = append(flags, "ro")
	}
	for _, f := range flags {
		if err := unix.FsconfigSetFlag(fsfd, f); err != nil {
			dev.Close()
			return nil, nil, fmt.Errorf("fsconfig fuse %s: %w", f, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("creating fuse superblock: %w", err)
	}
	// nodev: a device node in a tree is never opened. Not nosuid: a
	// setuid binary or file capability of the image works as with runc
	// (for the pod's root, in the pod's user namespace); a spec mount's
	// nosuid is applied on top by the init.
	attrs := unix.MOUNT_ATTR_NODEV
	if readOnly {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("fsmount fuse: %w", err)
	}
	return dev, os.NewFile(uintptr(mfd), "fuse-mount"), nil
}
