package container

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// openHostBinds clones, from this process's mount namespace (the
// caller's, as runc binds from it), the mount tree of each host bind of
// spec (see specutils.HostBind), in spec order, as detached trees for the
// init to attach in the container's mount namespace. A clone of a shared
// mount is a peer of it: mounts made on either side then propagate to
// the other, which is what the bind's shared propagation asks for. With
// "rro" the whole clone is made read-only here; the init applies the
// other flags to its top mount, as to any bind.
//
// When the pod has a user namespace (sandbox, a pidfd, is in one), each
// clone is an idmapped mount through it, where the file system allows
// it: a file owned by host uid N is then owned by uid N in the pod, and
// the pod's uid N writes as host uid N, as on the gofer's trees.
// Elsewhere the host's owners show unmapped (nobody).
func openHostBinds(spec *specs.Spec, sandbox *os.File) (_ []*os.File, err error) {
	var out []*os.File
	var userns *os.File
	if slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool { return specutils.HostBind(spec, m) }) {
		if userns, err = podUserNSFile(sandbox); err != nil {
			return nil, err
		}
	}
	if userns != nil {
		defer userns.Close()
	}
	defer func() {
		if err != nil {
			closeAll(out)
		}
	}()
	for i, m := range spec.Mounts {
		if !specutils.HostBind(spec, m) {
			continue
		}
		if !filepath.IsAbs(m.Source) {
			return nil, fmt.Errorf("config.json: mounts[%d].source %q: must be absolute after bundle resolution", i, m.Source)
		}
		if len(m.UIDMappings) > 0 {
			return nil, fmt.Errorf("config.json: mounts[%d].uidMappings: not supported on a bind with shared propagation (the host's own mount, idmapped through the pod's user namespace)", i)
		}
		flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
		if slices.Contains(m.Options, "rbind") {
			flags |= unix.AT_RECURSIVE
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, m.Source, flags)
		if err != nil {
			return nil, fmt.Errorf("config.json: mounts[%d].source %q: cloning the host's mount: %w", i, m.Source, err)
		}
		out = append(out, os.NewFile(uintptr(fd), "host-bind"))
		if userns != nil {
			idmap := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
			if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &idmap); err != nil {
				slog.Debug("host bind not idmapped: its owners show unmapped in the pod", "source", m.Source, "err", err)
			}
		}
		if ro, topOnly := specutils.BindReadOnly(m); ro && !topOnly {
			attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
			if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
				return nil, fmt.Errorf("config.json: mounts[%d]: making %q read-only: %w", i, m.Source, err)
			}
		}
	}
	return out, nil
}
