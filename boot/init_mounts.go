package boot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/fsimpl/fuse9p"
	"github.com/runsc/runsc/procfs"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// resolveFlags resolve a path inside the container's root as the
// container would, never above it, never through a magic link.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// maxLinkDepth bounds the dangling symbolic links openIn follows to
// create their targets, as the kernel bounds a resolution (ELOOP).
const maxLinkDepth = 40

// openIn opens p (absolute, as the container names it) inside root,
// resolving every symbolic link inside root, and creates what is missing
// on the way: directories, and a regular file at the end if file is set.
// A component that is a dangling symbolic link has its target created
// (inside root), as runc does: an image with /var/run -> /run and no
// /run still takes a mount at /var/run/x. The result is an O_PATH
// descriptor to mount onto through /proc.
func openIn(root int, p string, file bool) (int, error) {
	return openInDepth(root, p, file, 0)
}

// openInDepth is openIn, depth links deep into dangling links' targets.
func openInDepth(root int, p string, file bool, depth int) (int, error) {
	p = path.Clean("/" + p)
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveFlags}
	if fd, err := unix.Openat2(root, p, &how); err == nil {
		return fd, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return -1, fmt.Errorf("resolving %q in the container: %w", p, err)
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		last := i == len(parts)-1
		fd, err := unix.Openat2(root, next, &how)
		if err == nil {
			if last {
				return fd, nil
			}
			unix.Close(fd)
			cur = next
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, fmt.Errorf("resolving %q in the container: %w", next, err)
		}
		if err := makeIn(root, cur, part, last && file, depth); err != nil {
			return -1, err
		}
		// Open it through the root again: the name may have been
		// replaced meanwhile, and resolution must stay inside root.
		if fd, err = unix.Openat2(root, next, &how); err != nil {
			return -1, fmt.Errorf("resolving %q in the container: %w", next, err)
		}
		if last {
			return fd, nil
		}
		unix.Close(fd)
		cur = next
	}
	return -1, fmt.Errorf("resolving %q in the container: empty path", p)
}

// makeIn creates name in directory dir (a path inside root): a
// directory, or an empty regular file if file is set. If name is a
// dangling symbolic link, its target is created instead, resolved as
// the container would: an absolute target from root, a relative one
// from dir.
func makeIn(root int, dir, name string, file bool, depth int) error {
	dirHow := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags}
	dfd, err := unix.Openat2(root, dir, &dirHow)
	if err != nil {
		return fmt.Errorf("resolving %q in the container: %w", dir, err)
	}
	defer unix.Close(dfd)
	next := path.Join(dir, name)
	if file {
		var nfd int
		nfd, err = unix.Openat(dfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(nfd)
		}
	} else {
		err = unix.Mkdirat(dfd, name, 0o755)
	}
	if err == nil || !errors.Is(err, unix.EEXIST) {
		if err != nil {
			return fmt.Errorf("making %q in the container: %w", next, err)
		}
		return nil
	}
	// It exists but did not resolve: a dangling symbolic link (or a
	// race with the container's own changes).
	target, lerr := readlinkat(dfd, name)
	if lerr != nil {
		return nil
	}
	if depth >= maxLinkDepth {
		return fmt.Errorf("resolving %q in the container: %w", next, unix.ELOOP)
	}
	if !path.IsAbs(target) {
		target = path.Join(dir, target)
	}
	fd, err := openInDepth(root, target, file, depth+1)
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// readlinkat reads the symbolic link name in directory dirfd (an O_PATH
// descriptor).
func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// exists reports whether path exists (without following a final link).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// fdPath names an O_PATH descriptor for mount(2).
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// setupMounts mounts the spec's mounts inside root (the container's root,
// in the init's own mount namespace), then its default devices, masked
// paths and read-only paths. hostBinds are the detached trees of the
// spec's host binds, in order (see specutils.HostBind); each is closed
// once attached.
func setupMounts(spec *specs.Spec, cid, root string, hostBinds []int) error {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening container root: %w", err)
	}
	defer unix.Close(rootFD)
	src := bindSource{spec: spec, cid: cid, host: hostBinds}
	devIsTmpfs := false
	for i, m := range spec.Mounts {
		if err := mountOne(rootFD, m, &src); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
		if path.Clean(m.Destination) == "/dev" && m.Type == "tmpfs" {
			devIsTmpfs = true
		}
	}
	if len(src.host) > 0 {
		return fmt.Errorf("%d host bind trees given but not used", len(src.host))
	}
	if devIsTmpfs {
		if err := makeDevices(rootFD, spec); err != nil {
			return err
		}
	}
	if spec.Linux == nil {
		return nil
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := maskPath(rootFD, p); err != nil {
			return fmt.Errorf("linux.maskedPaths %q: %w", p, err)
		}
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := readonlyPath(rootFD, p); err != nil {
			return fmt.Errorf("linux.readonlyPaths %q: %w", p, err)
		}
	}
	return nil
}

// bindSource hands out the sources of a spec's bind mounts, in spec
// order: the gofer trees the sandbox mounted for served binds, numbered
// from 1, and the creator's detached trees for host binds.
type bindSource struct {
	spec *specs.Spec
	cid  string
	// served counts the served binds handed out so far.
	served int
	// host are the host binds' trees not handed out yet.
	host []int
}

// mountLabel returns the spec's linux.mountLabel.
func (b *bindSource) mountLabel() string {
	if b.spec.Linux == nil {
		return ""
	}
	return b.spec.Linux.MountLabel
}

// next returns the source of bind mount m, the next in spec order: an
// O_PATH descriptor of the tree root the container's mount is bound
// from (a gofer tree: a directory, or a file for a file tree), or a
// detached tree to attach (host). file says whether the tree is a file.
func (b *bindSource) next(m specs.Mount) (fd int, host, file bool, err error) {
	if specutils.HostBind(b.spec, m) {
		if len(b.host) == 0 {
			return -1, false, false, errors.New("host bind: no detached tree from the creator")
		}
		fd, b.host = b.host[0], b.host[1:]
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, false, false, fmt.Errorf("host bind tree: %w", err)
		}
		return fd, true, st.Mode&unix.S_IFMT != unix.S_IFDIR, nil
	}
	b.served++
	src := treeDir(b.cid, b.served)
	if fileDir := fileTreeDir(b.cid, b.served); exists(fileDir) {
		src, file = filepath.Join(fileDir, fuse9p.FileName), true
	} else if !exists(src) {
		return -1, false, false, fmt.Errorf("bind source tree %d is not mounted", b.served)
	} else {
		src = filepath.Join(src, bindEntry(m))
	}
	// The source is opened without following a final symbolic link
	// and bound from its descriptor: a tree root must be what it
	// claims, a directory or (for a file tree) a regular file, never a
	// link elsewhere in the sandbox.
	fd, err = unix.Open(src, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false, false, fmt.Errorf("bind source tree: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, false, false, fmt.Errorf("bind source tree: %w", err)
	}
	if want := uint32(unix.S_IFDIR); file && st.Mode&unix.S_IFMT != unix.S_IFREG || !file && st.Mode&unix.S_IFMT != want {
		unix.Close(fd)
		return -1, false, false, fmt.Errorf("bind source tree: unexpected file type %o", st.Mode&unix.S_IFMT)
	}
	return fd, false, file, nil
}

// mountOne mounts m inside the root; binds come from src.
func mountOne(rootFD int, m specs.Mount, src *bindSource) error {
	flags, prop, data, err := specutils.MountFlags(m.Options)
	if err != nil {
		return err
	}
	if specutils.IsBindMount(m) {
		if err := mountBind(rootFD, m, flags, src); err != nil {
			return err
		}
	} else if err := mountFS(rootFD, m, flags, data, src.mountLabel()); err != nil {
		return err
	}
	if prop == 0 {
		return nil
	}
	fd, err := openIn(rootFD, m.Destination, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Mount("", fdPath(fd), "", prop, ""); err != nil {
		return fmt.Errorf("setting propagation: %w", err)
	}
	return nil
}

// mountFS mounts a file system (not a bind) at m's destination; label
// is linux.mountLabel.
func mountFS(rootFD int, m specs.Mount, flags uintptr, data []string, label string) error {
	typ, src := m.Type, m.Source
	switch typ {
	case "cgroup", "cgroup2":
		// The host's cgroup hierarchy is not shown: an empty,
		// read-only tmpfs stands in.
		typ, src, flags, data = "tmpfs", "cgroup", flags|unix.MS_RDONLY, nil
	default:
		if src == "" {
			src = typ
		}
	}
	if label != "" && (typ == "tmpfs" || typ == "mqueue") {
		// As runc labels them (the creator keeps the label only on an
		// SELinux host).
		data = append(data, fmt.Sprintf("context=%q", label))
	}
	fd, err := openIn(rootFD, m.Destination, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	err = unix.Mount(src, fdPath(fd), typ, flags, strings.Join(data, ","))
	if errors.Is(err, unix.EPERM) && typ == "proc" && inSandboxPIDNS() {
		// The host's pid namespace (--pid=host), which the pod's user
		// namespace may not mount a proc of: the sandbox's is one,
		// without options of its own.
		if len(data) > 0 {
			return fmt.Errorf("options %q: a proc of a pid namespace the pod shares cannot have its own options", strings.Join(data, ","))
		}
		return bindSandboxProc(rootFD, m.Destination, fd, flags)
	}
	if errors.Is(err, unix.EPERM) && (typ == "sysfs" || typ == "mqueue") {
		// In the pod's user namespace the kernel mounts these only
		// for a network (ipc) namespace the pod owns: a pod on a
		// network namespace from its caller (CNI) or the host's
		// gets a stand-in, as runc gives a rootless container.
		return mountStandIn(rootFD, m.Destination, typ, err)
	}
	return err
}

// inSandboxPIDNS reports whether this process is in the pid namespace of
// the sandbox's /proc (not in one nested in it): /proc/self/status then
// lists one pid in NSpid.
func inSandboxPIDNS() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	pids, err := procfs.ParseNSpid(data)
	return err == nil && len(pids) == 1
}

// bindSandboxProc binds the sandbox's /proc at fd (dest in the root),
// with flags and, as the sandbox's has them, nosuid, nodev and noexec.
func bindSandboxProc(rootFD int, dest string, fd int, flags uintptr) error {
	if err := unix.Mount("/proc", fdPath(fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding the sandbox's /proc: %w", err)
	}
	// Reopen: the descriptor still names the covered directory.
	top, err := openIn(rootFD, dest, false)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	const kept = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	remount := unix.MS_BIND | unix.MS_REMOUNT | kept | flags&(unix.MS_RDONLY|unix.MS_NOATIME|unix.MS_NODIRATIME|unix.MS_RELATIME|unix.MS_STRICTATIME)
	if err := unix.Mount("", fdPath(top), "", remount, ""); err != nil {
		return fmt.Errorf("binding the sandbox's /proc: %w", err)
	}
	return nil
}

// mountStandIn mounts what stands in for a sysfs or mqueue the kernel
// refused (err) at fd: the sandbox's own read-only sysfs if it has one,
// otherwise an empty read-only tmpfs (for sysfs, holding the fs/cgroup
// directory a cgroup mount of the spec may go on).
func mountStandIn(rootFD int, dest, typ string, err error) error {
	slog.Debug("mount refused in the pod's user namespace: a stand-in is mounted", "type", typ, "err", err)
	fd, err := openIn(rootFD, dest, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if typ == "sysfs" && unix.Statfs("/sys", &st) == nil && st.Type == unix.SYSFS_MAGIC {
		return unix.Mount("/sys", fdPath(fd), "", unix.MS_BIND, "")
	}
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount(typ, fdPath(fd), "tmpfs", flags, "size=0,mode=0755"); err != nil {
		return err
	}
	// Reopen: the descriptor still names the covered directory.
	top, err := openIn(rootFD, dest, false)
	if err != nil {
		return err
	}
	defer unix.Close(top)
	if typ == "sysfs" {
		dir, err := unix.Openat(top, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(dir, "fs", 0o755)
		if err == nil {
			err = unix.Mkdirat(dir, "fs/cgroup", 0o755)
		}
		unix.Close(dir)
		if err != nil {
			return err
		}
	}
	return unix.Mount("", fdPath(top), "", unix.MS_REMOUNT|unix.MS_RDONLY|flags, "size=0,mode=0755")
}

// mountBind binds the next bind source at m's destination, then applies
// m's flags to the new mount.
func mountBind(rootFD int, m specs.Mount, flags uintptr, src *bindSource) error {
	sfd, host, file, err := src.next(m)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	fd, err := openIn(rootFD, m.Destination, file)
	if err != nil {
		return err
	}
	defer func() { unix.Close(fd) }()
	if host {
		if err := unix.MoveMount(sfd, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
			return fmt.Errorf("attaching the host's mount: %w", err)
		}
	} else {
		if err := unix.Mount(fdPath(sfd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mount: %w", err)
		}
		if _, topOnly := specutils.BindReadOnly(m); topOnly {
			// The gofer makes only the source's own mount read-only;
			// the FUSE mount here is one mount over all of it.
			flags &^= unix.MS_RDONLY
		}
	}
	if flags&^(unix.MS_BIND|unix.MS_REC) == 0 {
		return nil
	}
	// Reopen: the descriptor still names the covered directory.
	unix.Close(fd)
	if fd, err = openIn(rootFD, m.Destination, file); err != nil {
		return err
	}
	if err := unix.Mount("", fdPath(fd), "", unix.MS_REMOUNT|unix.MS_BIND|lockedFlags(fd)|(flags&^unix.MS_REC), ""); err != nil {
		return fmt.Errorf("remounting bind mount with %v: %w", m.Options, err)
	}
	return nil
}

// devices are the nodes made in a tmpfs /dev, as runc makes them.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// makeDevices makes the default device nodes and links in /dev, plus the
// spec's linux.devices.
func makeDevices(rootFD int, spec *specs.Spec) error {
	devFD, err := openIn(rootFD, "/dev", false)
	if err != nil {
		return err
	}
	defer unix.Close(devFD)
	dir, err := unix.Openat(devFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev: %w", err)
	}
	defer unix.Close(dir)
	for _, d := range devices {
		_, bound, err := mknodOrBind(dir, d.name, unix.S_IFCHR|0o666, d.major, d.minor)
		if err != nil {
			return fmt.Errorf("making /dev/%s: %w", d.name, err)
		}
		if !bound {
			unix.Fchmodat(dir, d.name, 0o666, 0)
		}
	}
	if spec.Linux != nil {
		for _, d := range spec.Linux.Devices {
			err := makeDevice(rootFD, d)
			if errors.Is(err, errDeviceLeftOut) {
				// A privileged container gets every host device
				// in its spec: it runs, without those.
				slog.Warn("linux.devices: device left out: a sandbox has no device that reaches host hardware", "path", d.Path, "type", d.Type, "major", d.Major, "minor", d.Minor)
				continue
			}
			if err != nil {
				return fmt.Errorf("linux.devices %q: %w", d.Path, err)
			}
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx", "core": "/proc/kcore",
	} {
		if err := unix.Symlinkat(target, dir, name); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("linking /dev/%s: %w", name, err)
		}
	}
	return nil
}

// openParentIn opens, for *at calls, the directory that holds path p
// inside the root (made if missing, resolved inside the root).
func openParentIn(rootFD int, p string) (int, error) {
	parent, err := openIn(rootFD, path.Dir(p), false)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	return unix.Openat(parent, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// errDeviceLeftOut is makeDevice's answer for a device a sandbox never
// has: every block device (the host's disks are reached only through
// the gofer) and every character device but the few that reach no
// hardware (see allowedDevice). There is no device cgroup, so a node
// would reach the host's hardware: /dev/sg*, NVMe passthrough, msr,
// kvm, mem, port...
var errDeviceLeftOut = errors.New("device left out of the sandbox")

// allowedDevice reports whether a character device may be made in a
// sandbox: null, zero, full, random, urandom (1:3,5,7,8,9), tty and ptmx
// (5:0,2), which reach no hardware nor anyone else's terminal. Not the
// console (5:1) nor a pty slave (136-143:*): they would be the host's.
func allowedDevice(major, minor int64) bool {
	switch major {
	case 1:
		return minor == 3 || minor == 5 || minor == 7 || minor == 8 || minor == 9
	case 5:
		return minor == 0 || minor == 2
	}
	return false
}

// makeDevice makes one linux.devices node.
func makeDevice(rootFD int, d specs.LinuxDevice) error {
	var mode uint32
	switch d.Type {
	case "c", "u":
		mode = unix.S_IFCHR
		if !allowedDevice(d.Major, d.Minor) {
			return errDeviceLeftOut
		}
	case "b":
		return errDeviceLeftOut
	case "p":
		mode = unix.S_IFIFO
	default:
		return fmt.Errorf("type %q: want c, u, b or p", d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(*d.FileMode) & 0o7777
	}
	dir, err := openParentIn(rootFD, d.Path)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	name := path.Base(d.Path)
	made, bound, err := mknodOrBind(dir, name, mode|perm, uint32(d.Major), uint32(d.Minor))
	if err != nil {
		return err
	}
	if bound {
		// The host's node, owned by the host's root.
		return nil
	}
	// The mode as given, whatever the umask, on the node made here only
	// (chmod follows symbolic links: what was there is left alone).
	if made {
		if err := unix.Fchmodat(dir, name, perm, 0); err != nil {
			return err
		}
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	err = unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.EPERM) {
		// A node bound earlier from the host (a default device the
		// spec lists again), in the pod's user namespace: it keeps
		// the host's owner.
		return nil
	}
	return err
}

// mknodOrBind makes device node name in directory dir, and made reports
// it (false for a name found existing: it may then be anything, a
// symbolic link included, and is left alone). In the pod's user
// namespace, where no device node can be made, a character device of
// the sandbox's /dev (see sandboxDevices) is bound there instead, and
// bound reports it; any other device is left out.
func mknodOrBind(dir int, name string, mode uint32, major, minor uint32) (made, bound bool, err error) {
	err = unix.Mknodat(dir, name, mode, int(unix.Mkdev(major, minor)))
	if err == nil {
		return true, false, nil
	}
	if errors.Is(err, unix.EEXIST) {
		return false, false, nil
	}
	if !errors.Is(err, unix.EPERM) || mode&unix.S_IFMT != unix.S_IFCHR {
		return false, false, err
	}
	src := ""
	for _, d := range devices {
		if d.major == major && d.minor == minor {
			src = "/dev/" + d.name
		}
	}
	if src == "" {
		return false, false, errDeviceLeftOut
	}
	fd, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return false, false, err
	}
	defer unix.Close(fd)
	return false, true, unix.Mount(src, fdPath(fd), "", unix.MS_BIND, "")
}

// openExisting opens p inside the container's root (O_PATH); a missing p
// gives -1 and no error: there is nothing to mask or protect.
func openExisting(rootFD int, p string) (int, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveFlags}
	fd, err := unix.Openat2(rootFD, path.Clean("/"+p), &how)
	if errors.Is(err, unix.ENOENT) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// maskPath hides p: /dev/null over a file, an empty read-only tmpfs over
// a directory. A missing path is nothing to mask.
func maskPath(rootFD int, p string) error {
	fd, err := openExisting(rootFD, p)
	if fd < 0 {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY, "size=0")
	}
	return unix.Mount("/dev/null", fdPath(fd), "", unix.MS_BIND, "")
}

// readonlyPath makes p read-only with a bind mount onto itself.
func readonlyPath(rootFD int, p string) error {
	fd, err := openExisting(rootFD, p)
	if fd < 0 {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Mount(fdPath(fd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	// Reopen: the remount applies to the new mount on top.
	again, err := openExisting(rootFD, p)
	if again < 0 {
		return fmt.Errorf("reopening after bind: %w", err)
	}
	defer unix.Close(again)
	return unix.Mount("", fdPath(again), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|lockedFlags(again), "")
}

// lockedFlags returns the nosuid, nodev and noexec flags of the mount fd
// is on, which a bind remount must keep.
func lockedFlags(fd int) uintptr {
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil {
		return 0
	}
	var flags uintptr
	for st_, ms := range map[int64]uintptr{unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC} {
		if st.Flags&st_ != 0 {
			flags |= ms
		}
	}
	return flags
}
