// Package gofer implements the gofer process: the only process of a
// sandbox that can see host files. It confines itself (own mount, pid,
// ipc, uts and net namespaces; a root holding only the served trees;
// file capabilities only; a seccomp allowlist) and serves each tree over
// 9P2000.L on a socket donated by the runtime.
package gofer

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/runsc/runsc/pivot"
	"golang.org/x/sys/unix"
)

// Tree is one host tree served by the gofer: the container's root file
// system or the source of a bind mount.
type Tree struct {
	// Source is the host path of a directory or regular file.
	Source string
	// ReadOnly refuses every mutation with EROFS; the tree is also
	// mounted read-only inside the gofer, the mounts below it too.
	ReadOnly bool
	// TopReadOnly, with Recursive, makes only the tree's own mount
	// read-only, as runc's "ro" on an rbind: the mounts below it keep
	// their flags. The kernel enforces it on the gofer's mount.
	TopReadOnly bool
	// Recursive serves the mounts below Source too (an rbind); otherwise
	// only the file system Source is on is served (a bind).
	Recursive bool
	// Propagate keeps the tree a slave of the host's mount, so that
	// what the host mounts under Source later is served too (a bind
	// with rslave or rshared propagation); otherwise the tree is
	// private: the host's later mounts never reach the gofer.
	Propagate bool
}

// treePath returns where tree i is mounted inside the gofer's root.
func treePath(i int) string { return "/" + strconv.Itoa(i) }

// pivotToTrees builds a root that holds only the given trees and
// pivot_roots into it. It must run in a fresh mount namespace. Tree i is
// mounted at /<i>, with nodev and nosuid (so a device node in a served
// tree can never be opened by the gofer) and read-only when asked. The old
// root is detached: afterwards no other host path is reachable.
func pivotToTrees(trees []Tree) error {
	if err := pivot.MakeSlave(); err != nil {
		return err
	}
	// Hold every source before mounting anything over a path that might
	// lead to it.
	fds := make([]int, len(trees))
	isDir := make([]bool, len(trees))
	defer func() {
		for _, fd := range fds {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	}()
	for i, t := range trees {
		if !filepath.IsAbs(t.Source) {
			return fmt.Errorf("tree %d source %q: not an absolute path", i, t.Source)
		}
		fd, err := unix.Open(t.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening tree %d source %q: %w", i, t.Source, err)
		}
		fds[i] = fd
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("stat of tree %d source %q: %w", i, t.Source, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			isDir[i] = true
		case unix.S_IFREG:
		default:
			return fmt.Errorf("tree %d source %q: not a directory or regular file", i, t.Source)
		}
	}
	newRoot, err := pivot.MountScratch("runsc-gofer", unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=1m,nr_inodes=4096")
	if err != nil {
		return err
	}
	for i, t := range trees {
		target := filepath.Join(newRoot, treePath(i))
		if isDir[i] {
			err = unix.Mkdir(target, 0o755)
		} else {
			var fd int
			fd, err = unix.Open(target, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			return fmt.Errorf("making mount point for tree %d: %w", i, err)
		}
		src := "/proc/self/fd/" + strconv.Itoa(fds[i])
		flags := uintptr(unix.MS_BIND)
		if t.Recursive {
			flags |= unix.MS_REC
		}
		if err := unix.Mount(src, target, "", flags, ""); err != nil {
			return fmt.Errorf("bind mounting tree %d source %q: %w", i, t.Source, err)
		}
		if !t.Propagate {
			if err := unix.Mount("", target, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("making tree %d private: %w", i, err)
			}
		}
		if err := restrictMount(target, t); err != nil {
			return fmt.Errorf("restricting tree %d source %q: %w", i, t.Source, err)
		}
	}
	// The root itself holds nothing writable.
	if err := unix.Mount("", newRoot, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("remounting gofer root read-only: %w", err)
	}
	return pivot.Into(newRoot)
}

// restrictMount makes the mount tree at target nodev and nosuid, and
// read-only as t says: all of it (ReadOnly), or only its top mount
// (TopReadOnly). Recursively where the kernel supports mount_setattr.
func restrictMount(target string, t Tree) error {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID}
	if t.ReadOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	err := unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW, attr)
	if err == unix.ENOSYS {
		flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NODEV | unix.MS_NOSUID)
		if t.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		err = unix.Mount("", target, "", flags, "")
	}
	if err != nil || !t.TopReadOnly || t.ReadOnly {
		return err
	}
	// Only the top mount: a bind remount is not recursive.
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("making the top mount read-only: %w", err)
	}
	return nil
}

// checkNamespaced verifies that the process runs as pid 1 of its own pid
// namespace, which the launcher (Command) arranges.
func checkNamespaced() error {
	if os.Getpid() != 1 {
		return fmt.Errorf("gofer is pid %d, not 1: it must be started in new namespaces (use gofer.Command)", os.Getpid())
	}
	return nil
}
