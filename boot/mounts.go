package boot

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/cleanup"
	"github.com/runsc/runsc/fsimpl/fuse9p"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// Overlay modes for a container's root (--overlay2).
const (
	// OverlayMemory puts a tmpfs upper layer over the gofer tree: writes
	// stay in the sandbox's memory and never reach the host.
	OverlayMemory = "memory"
	// OverlayNone mounts the gofer tree itself: writes go to the host
	// through the gofer (unless root.readonly).
	OverlayNone = "none"
	// OverlayVolatile (--volatile=yes) makes the root a tmpfs holding
	// the gofer tree's /usr, read-only, and the merged-/usr symlinks
	// into it (see specutils.MergedUsrLinks).
	OverlayVolatile = "volatile"
	// OverlayEmpty (runsc do --volatile=yes without --root-dir) makes
	// the root an empty tmpfs: only the spec's mounts are in it.
	OverlayEmpty = "empty"
)

// cacheTimeout is the kernel's FUSE entry, attribute and negative-entry
// cache timeout for a container's root. The root is exclusive to the
// container: every change made in the sandbox goes through the kernel,
// which keeps its caches coherent with it, so the paths a container keeps
// using (every exec walks its binary's path, a build walks its tree again
// and again) need not be looked up in the gofer every few seconds: with
// 5 s, a second find over 20,000 files 6 s after the first took 3.3 s
// (a LOOKUP and a 9P walk per entry) against 0.12 s at once. A change
// made on the host under a running container (podman cp, say) is seen
// once its entries expire, as with gVisor's exclusive file access; file
// contents read through passthrough are the host file's at once. Bind
// mounts are not cached.
const cacheTimeout = time.Hour

// watchedConn reports the first read error on a gofer connection: the
// gofer died or closed it.
type watchedConn struct {
	net.Conn
	once sync.Once
	lost func()
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.once.Do(w.lost)
	}
	return n, err
}

// watchHangup calls lost when the peer of socket f hangs up, without
// reading from it (the 9P client does). The returned function stops the
// watch and closes f.
func watchHangup(f *os.File, lost func()) func() {
	r, w, err := os.Pipe()
	if err != nil {
		f.Close()
		return func() {}
	}
	go func() {
		defer f.Close()
		defer r.Close()
		fds := []unix.PollFd{
			{Fd: int32(f.Fd()), Events: unix.POLLRDHUP},
			{Fd: int32(r.Fd()), Events: unix.POLLIN},
		}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err == nil && fds[1].Revents != 0 {
				return // stopped
			}
			if err != nil || fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0 {
				lost()
				return
			}
		}
	}()
	return func() { w.Close() }
}

// treeDir returns where tree i of container cid is mounted.
func treeDir(cid string, i int) string {
	if i == 0 {
		return filepath.Join(mountsDir, cid, "root")
	}
	return filepath.Join(mountsDir, cid, "bind"+strconv.Itoa(i-1))
}

// bindShared binds, for each shared bind ordinal of c, the pod's sandbox
// container's tree of the same host source at c's tree path.
func (s *sandbox) bindShared(c *ctr, shared map[int]int, mounted *[]string) error {
	s.mu.Lock()
	rootCID := s.rootCID
	s.mu.Unlock()
	for k, rk := range shared {
		if rootCID == "" || rootCID == c.cid || rk < 1 {
			return fmt.Errorf("shared bind %d: no sandbox container tree to share", k)
		}
		src, dst := treeDir(rootCID, rk), treeDir(c.cid, k)
		if _, err := os.Lstat(src); err != nil {
			src, dst = fileTreeDir(rootCID, rk), fileTreeDir(c.cid, k)
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			return fmt.Errorf("making mount point %s: %w", dst, err)
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("sharing the pod's tree %s: %w", src, err)
		}
		*mounted = append(*mounted, dst)
	}
	return nil
}

// fileTreeDir returns where tree i of container cid is mounted when the
// tree is a single file: the file is fileTreeDir/fuse9p.FileName.
func fileTreeDir(cid string, i int) string { return treeDir(cid, i) + "-file" }

// mountTrees mounts the container's gofer trees under mountsDir/<cid>,
// and assembles its root at ContainersDir/<cid>. files are laid out as
// CreateArgs describes: the 9P connections (the root file system's
// first, then the bind mounts'), then each tree's /dev/fuse descriptor
// and detached FUSE mount. It takes every file it is given: on return
// they are closed or held by the mounts. On error everything it mounted
// is unmounted again. Directory trees are served with FUSE passthrough
// (the gofer registers their files on their /dev/fuse); stacked tells
// which trees' host files are on a stacked file system (see
// CreateArgs.Stacked).
func (s *sandbox) mountTrees(c *ctr, files []*os.File, overlay string, shared map[int]int, stacked []bool) error {
	ntrees := len(files) / 3
	conns, fuses := files[:ntrees], files[ntrees:]
	defer closeFiles(fuses)
	// Each connection is closed here unless a mount took it.
	pending := append([]*os.File{}, conns...)
	defer func() { closeFiles(pending) }()
	ids, err := fuse9p.ReadIDMap("self")
	if err != nil {
		return fmt.Errorf("reading the sandbox's id mapping: %w", err)
	}
	var mounted []string
	var cu cleanup.Cleanup
	defer cu.Clean()
	cu.Add(func() { c.unmount(mounted) })
	base := filepath.Join(mountsDir, c.cid)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return fmt.Errorf("making %s: %w", base, err)
	}
	// Only a root written through is written by the gofer.
	rootRO := c.spec.Root.Readonly || overlay != OverlayNone
	if err := s.bindShared(c, shared, &mounted); err != nil {
		return err
	}
	binds := bindMounts(c.spec)
	ordinal := -1
	for ci, f := range conns {
		pending[ci] = nil
		// Connection ci serves the next ordinal not shared (0 is the
		// root).
		ordinal++
		for shared[ordinal] != 0 {
			ordinal++
		}
		treeIDs := ids
		if ordinal > 0 && ordinal <= len(binds) {
			treeIDs = mountIDMap(binds[ordinal-1], ids)
		}
		fm := treeMount{dev: fuses[2*ci], mnt: fuses[2*ci+1], ids: treeIDs}
		if ordinal > 0 && ordinal <= len(binds) {
			fm.entry = bindEntry(binds[ordinal-1])
		}
		fm.stacked = ci < len(stacked) && stacked[ci]
		// The memory overlay stacks on the root's mount.
		fm.lower = ordinal == 0 && overlay == OverlayMemory
		dir, err := s.mountTree(c, f, ordinal, rootRO, fm)
		if err != nil {
			return err
		}
		mounted = append(mounted, dir)
	}
	root := filepath.Join(ContainersDir, c.cid)
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("making %s: %w", root, err)
	}
	switch overlay {
	case OverlayMemory:
		layers := filepath.Join(base, "layers")
		if err := os.Mkdir(layers, 0o700); err != nil {
			return err
		}
		if err := mountUpper(layers); err != nil {
			return err
		}
		mounted = append(mounted, layers)
		upper, work := filepath.Join(layers, "upper"), filepath.Join(layers, "work")
		for _, d := range []string{upper, work} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		// The upper root takes the lower root's owner and mode.
		var st unix.Stat_t
		if err := unix.Stat(treeDir(c.cid, 0), &st); err == nil {
			unix.Chmod(upper, st.Mode&0o7777)
			unix.Chown(upper, int(st.Uid), int(st.Gid))
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", treeDir(c.cid, 0), upper, work)
		if ids != nil {
			// In a user namespace overlayfs may not use trusted.*
			// xattrs: its whiteouts and opaque directories take
			// user.* ones on the upper tmpfs.
			opts += ",userxattr"
		}
		// nodev: a device node in the image is never opened.
		if err := unix.Mount("overlay", root, "overlay", unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("mounting root overlay: %w", err)
		}
	case OverlayNone:
		if err := unix.Mount(treeDir(c.cid, 0), root, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding root: %w", err)
		}
	case OverlayVolatile, OverlayEmpty:
		// nodev: as the memory overlay's.
		if err := unix.Mount("runsc-volatile-root", root, "tmpfs", unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("mounting the volatile root: %w", err)
		}
		mounted = append(mounted, root)
		if overlay == OverlayVolatile {
			if err := volatileUsr(treeDir(c.cid, 0), root); err != nil {
				return err
			}
		}
		if overlay == OverlayEmpty {
			if err := emptyRootLinks(c, shared, root); err != nil {
				return err
			}
		}
		// Unmounted with the root.
		mounted = mounted[:len(mounted)-1]
	default:
		return fmt.Errorf("root mode %q: want memory, none, volatile or empty", overlay)
	}
	// root.readonly is applied by the container's init, after its
	// mounts are made.
	mounted = append(mounted, root)
	cu.Release()
	return nil
}

// mountIDMap returns the id mapping of bind mount m's tree: its own
// uidMappings and gidMappings when it has them (an idmapped mount: a
// file the host has owned by ContainerID+k is owned by HostID+k as the
// kernel, then the pod, sees it), otherwise the pod's, which shows
// every owner as the host has it ("idmap" without mappings means that
// too).
func mountIDMap(m specs.Mount, pod *fuse9p.IDMap) *fuse9p.IDMap {
	if len(m.UIDMappings) == 0 {
		return pod
	}
	conv := func(in []specs.LinuxIDMapping) []fuse9p.IDRange {
		out := make([]fuse9p.IDRange, 0, len(in))
		for _, r := range in {
			out = append(out, fuse9p.IDRange{Inside: r.ContainerID, Outside: r.HostID, Size: r.Size})
		}
		return out
	}
	return &fuse9p.IDMap{UIDs: conv(m.UIDMappings), GIDs: conv(m.GIDMappings)}
}

// treeMount is what a tree's FUSE mount is made of: the /dev/fuse
// descriptor, the detached mount made on it by the sandbox's creator,
// and the id mapping between the creator's user namespace and the
// sandbox's.
type treeMount struct {
	dev, mnt *os.File
	ids      *fuse9p.IDMap
	// stacked is set when the tree's host files are on a stacked file
	// system; lower when an overlayfs is stacked on the mount.
	stacked, lower bool
	// entry names a bind's directory tree under its mount (see
	// bindEntry).
	entry string
}

// bindEntry is the name under which the directory tree of bind mount m
// appears in its FUSE mount (see fuse9p.Options.Entry): the source's
// base name, so that the container's bind of it shows that name as its
// root in mountinfo, as runc's bind of the host directory shows its
// path (tools match a bind to its source that way).
func bindEntry(m specs.Mount) string {
	name := path.Base(path.Clean("/" + m.Source))
	if name == "/" || name == fuse9p.PollHackName || strings.IndexByte(name, 0) >= 0 {
		// go-fuse answers its poll-hack name itself.
		return "tree"
	}
	return name
}

// mountTree mounts gofer tree i of c, served on connection f (which it
// takes), on fm, and returns where. The root (i 0) is read-only if
// rootRO. A directory tree is served with FUSE passthrough unless the
// kernel's stacking limit leaves no room for it: host files on
// overlayfs under a mount an overlayfs is stacked on.
func (s *sandbox) mountTree(c *ctr, f *os.File, i int, rootRO bool, fm treeMount) (string, error) {
	nc, err := net.FileConn(f)
	if err != nil {
		f.Close()
		return "", fmt.Errorf("gofer connection %d: %w", i, err)
	}
	lost := func() { s.goferLost(c) }
	// f (a duplicate of the socket) is kept to notice the gofer going
	// away even while the container makes no file request.
	c.watchers = append(c.watchers, watchHangup(f, lost))
	t, err := fuse9p.Dial(&watchedConn{Conn: nc, lost: lost}, 0)
	if err != nil {
		nc.Close()
		return "", fmt.Errorf("gofer tree %d: %w", i, err)
	}
	dir := treeDir(c.cid, i)
	if !t.IsDir() {
		dir = fileTreeDir(c.cid, i)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Close()
		return "", fmt.Errorf("making mount point %s: %w", dir, err)
	}
	ro := i == 0 && rootRO
	// The root is exclusive to the container and cached; bind mounts
	// are host directories others (other containers of the pod, the
	// host) may change: their writes must be seen at once.
	timeout := time.Duration(0)
	if i == 0 {
		timeout = cacheTimeout
	}
	opts := fuse9p.Options{Timeout: timeout, ReadOnly: ro, Name: "runsc-9p", Dev: fm.dev, Detached: fm.mnt, IDs: fm.ids, Entry: fm.entry}
	opts.OverlayLower = fm.lower
	opts.Passthrough = t.IsDir() && !(fm.stacked && fm.lower)
	if opts.Passthrough && fm.stacked {
		opts.StackDepth = 2
	}
	if _, err := t.Mount(dir, opts); err != nil {
		t.Close()
		return "", err
	}
	c.trees = append(c.trees, t)
	return dir, nil
}

// unmount detaches the given mount points (in reverse), which ends their
// FUSE servers, and closes the 9P clients of c.
func (c *ctr) unmount(points []string) {
	for i := len(points) - 1; i >= 0; i-- {
		unix.Unmount(points[i], unix.MNT_DETACH)
	}
	for _, stop := range c.watchers {
		stop()
	}
	for _, t := range c.trees {
		t.Close()
	}
	c.trees, c.watchers = nil, nil
}

// bindMounts returns the spec mounts served by gofer trees, in the order
// of their connections (after the root's): its binds but host binds (see
// specutils.HostBind), which the init takes from the creator.
func bindMounts(spec *specs.Spec) []specs.Mount {
	var out []specs.Mount
	for _, m := range spec.Mounts {
		if specutils.ServedBind(spec, m) {
			out = append(out, m)
		}
	}
	return out
}

// volatileUsr puts the /usr of the image tree lower, read-only, in the
// tmpfs root, with the merged-/usr symlinks into it.
func volatileUsr(lower, root string) error {
	links, err := specutils.MergedUsrLinks(lower)
	if err != nil {
		return fmt.Errorf("--volatile=yes: %w", err)
	}
	usr := filepath.Join(root, "usr")
	if err := os.Mkdir(usr, 0o755); err != nil {
		return err
	}
	// The directory checked, not whatever the path names by now.
	src, err := unix.Open(filepath.Join(lower, "usr"), unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("--volatile=yes: opening the image's /usr: %w", err)
	}
	defer unix.Close(src)
	if err := unix.Mount(fdPath(src), usr, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("--volatile=yes: binding /usr: %w", err)
	}
	// Keeping the tree's nodev and nosuid.
	if err := unix.Mount("", usr, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|lockedFlags(src), ""); err != nil {
		return fmt.Errorf("--volatile=yes: making /usr read-only: %w", err)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			return fmt.Errorf("--volatile=yes: %w", err)
		}
	}
	return nil
}

// emptyRootLinks gives an empty root whose spec binds a /usr in the
// merged-/usr links into it (so that its programs find their loader in
// /lib64 and their shell in /bin), read from the bind's tree.
func emptyRootLinks(c *ctr, shared map[int]int, root string) error {
	for i, m := range bindMounts(c.spec) {
		if path.Clean(m.Destination) != "/usr" || shared[i+1] != 0 {
			continue
		}
		for name, target := range specutils.UsrLinks(filepath.Join(treeDir(c.cid, i+1), bindEntry(m))) {
			// A second /usr bind finds the links made.
			if err := os.Symlink(target, filepath.Join(root, name)); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("linking /%s into the bound /usr: %w", name, err)
			}
		}
	}
	return nil
}

// mountUpper mounts the tmpfs holding a memory overlay's upper layer at
// dir. Files of 2 MiB and more get transparent huge pages where the
// kernel has them (huge=within_size: a small file never takes one): a
// large write into the container's root then costs a fraction of what
// 4 KiB pages do (512 MiB: 40 ms instead of 250 ms here).
func mountUpper(dir string) error {
	const flags = unix.MS_NOSUID | unix.MS_NODEV
	err := unix.Mount("runsc-overlay-upper", dir, "tmpfs", flags, "mode=0700,huge=within_size")
	if err == unix.EINVAL {
		err = unix.Mount("runsc-overlay-upper", dir, "tmpfs", flags, "mode=0700")
	}
	if err != nil {
		return fmt.Errorf("mounting overlay upper tmpfs: %w", err)
	}
	return nil
}
