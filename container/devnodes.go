package container

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"golang.org/x/sys/unix"
)

// stageDeviceNodes makes the nodes of the spec's linux.devices that the
// init cannot make in the pod's user namespace (see boot.StagedDevice),
// when the pod has one (sandbox, a pidfd, is in it): this process, the
// runtime, makes each on a tmpfs of its own that is never attached to
// the host's tree and is mounted nodev, so that no node on it can be
// opened (the container sees the device but cannot reach it, as a
// device cgroup would refuse it), and hands the init one detached clone
// of each node, in spec order, idmapped through the pod's user
// namespace so that its owner shows as the spec's uid and gid.
func stageDeviceNodes(spec *specs.Spec, sandbox *os.File) (_ []*os.File, err error) {
	if spec.Linux == nil {
		return nil, nil
	}
	var staged []int
	for i, d := range spec.Linux.Devices {
		if boot.StagedDevice(d) {
			staged = append(staged, i)
		}
	}
	if len(staged) == 0 {
		return nil, nil
	}
	userns, err := podUserNSFile(sandbox)
	if err != nil || userns == nil {
		// Without a user namespace the init makes them itself.
		return nil, err
	}
	defer userns.Close()
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("linux.devices: staging tmpfs: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "size", "64k"); err != nil {
		return nil, fmt.Errorf("linux.devices: staging tmpfs: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("linux.devices: staging tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return nil, fmt.Errorf("linux.devices: staging tmpfs: %w", err)
	}
	defer unix.Close(mnt)
	var out []*os.File
	defer func() {
		if err != nil {
			closeAll(out)
		}
	}()
	for n, i := range staged {
		d := spec.Linux.Devices[i]
		f, err := stageNode(mnt, strconv.Itoa(n), d, userns)
		if err != nil {
			return nil, fmt.Errorf("config.json: linux.devices[%d] %q: %w", i, d.Path, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// stageNode makes device node d as name on the staging tmpfs mnt and
// returns a detached, idmapped clone of it.
func stageNode(mnt int, name string, d specs.LinuxDevice, userns *os.File) (*os.File, error) {
	mode := uint32(unix.S_IFCHR)
	if d.Type == "b" {
		mode = unix.S_IFBLK
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(*d.FileMode) & 0o7777
	}
	if err := unix.Mknodat(mnt, name, mode|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return nil, fmt.Errorf("making the node: %w", err)
	}
	if err := unix.Fchmodat(mnt, name, perm, 0); err != nil {
		return nil, err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(mnt, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	fd, err := unix.OpenTree(mnt, name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cloning the node's mount: %w", err)
	}
	idmap := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &idmap); err != nil {
		slog.Debug("device node not idmapped: its owner shows unmapped in the pod", "path", d.Path, "err", err)
	}
	return os.NewFile(uintptr(fd), "device-node"), nil
}
