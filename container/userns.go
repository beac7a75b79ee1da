package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/fsimpl/fuse9p"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// Pod user namespaces. Every pod runs in a user namespace of its own
// that maps container ids 0..podIDs-1 to an unprivileged host range:
// from the pool of the "runsc" entries of /etc/subuid and /etc/subgid
// when the host has them, otherwise from defaultPool. A range is a slot
// of the pool, held by its sandbox through a lock on a file of
// userNSSlotDir: the lock goes with the sandbox's last descriptor, so a
// range is never shared by two live pods and is free again once its pod
// is gone, whatever killed it.
const (
	// podIDs is the size of a pod's range.
	podIDs = 65536
	// defaultPoolStart is where the default pool begins: above the
	// ranges of /etc/subuid's usual allocation (100000 + 65536 per
	// user) and of systemd's dynamic and container ranges, below 2^31.
	defaultPoolStart = 1 << 30
	// defaultPoolSlots is the number of ranges in the default pool.
	defaultPoolSlots = 1<<14 - 1
	// subIDUser is the user whose /etc/subuid and /etc/subgid entries
	// make the pool.
	subIDUser = "runsc"
)

// userNSSlotDir holds the pool's slot lock files; subUIDFile and
// subGIDFile name the pool (variables for tests).
var (
	userNSSlotDir = "/run/runsc/userns"
	subUIDFile    = "/etc/subuid"
	subGIDFile    = "/etc/subgid"
)

// podUserNS is the user namespace a sandbox is started in: a new one
// with mappings uids and gids, or an existing one, join.
type podUserNS struct {
	uids, gids []syscall.SysProcIDMap
	// slot, if not nil, is the locked slot file of an allocated
	// range: the sandbox keeps it open as long as it lives.
	slot *os.File
	// join, if not nil, is the user namespace the spec names by path:
	// the sandbox joins it, and makes its other namespaces there.
	join *os.File
	// joinPath is join's path in the spec.
	joinPath string
}

// close releases the slot and namespace held here (the sandbox keeps
// its own copies).
func (u *podUserNS) close() {
	if u == nil {
		return
	}
	for _, f := range []*os.File{u.slot, u.join} {
		if f != nil {
			f.Close()
		}
	}
}

// newPodUserNS returns the user namespace of a new pod whose sandbox
// container has spec: the one it names by path (nil if that is the
// runtime's own), or a new one with the spec's own mappings when it asks
// for a user namespace with them, otherwise a range of the pool, unless
// hostNS (--userns=host) keeps the host's user namespace (nil).
func newPodUserNS(spec *specs.Spec, hostNS bool) (*podUserNS, error) {
	path, own := specNamespace(spec, specs.UserNamespace)
	if own && path != "" {
		f, err := openNamespace(path, specs.UserNamespace, unix.CLONE_NEWUSER)
		if err != nil {
			return nil, err
		}
		var got unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &got); err != nil {
			f.Close()
			return nil, err
		}
		if isRuntimeNS(got, "user") {
			f.Close()
			return nil, nil
		}
		return &podUserNS{join: f, joinPath: path}, nil
	}
	if own && spec.Linux != nil && (len(spec.Linux.UIDMappings) > 0 || len(spec.Linux.GIDMappings) > 0) {
		uids, err := specIDMaps("uidMappings", spec.Linux.UIDMappings)
		if err != nil {
			return nil, err
		}
		gids, err := specIDMaps("gidMappings", spec.Linux.GIDMappings)
		if err != nil {
			return nil, err
		}
		return &podUserNS{uids: uids, gids: gids}, nil
	}
	if own && spec.Linux != nil {
		return nil, fmt.Errorf("config.json: linux.namespaces has a user namespace but linux.uidMappings or gidMappings is empty")
	}
	if hostNS {
		return nil, nil
	}
	return allocateUserNS()
}

// specIDMaps converts a spec's id mappings, which must map id 0.
func specIDMaps(field string, in []specs.LinuxIDMapping) ([]syscall.SysProcIDMap, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("config.json: linux.%s: empty with a user namespace", field)
	}
	var out []syscall.SysProcIDMap
	root := false
	for i, m := range in {
		if m.Size == 0 || uint64(m.ContainerID)+uint64(m.Size) >= 1<<32 || uint64(m.HostID)+uint64(m.Size) >= 1<<32 {
			return nil, fmt.Errorf("config.json: linux.%s[%d]: bad range %d %d %d", field, i, m.ContainerID, m.HostID, m.Size)
		}
		root = root || m.ContainerID == 0
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	if !root {
		return nil, fmt.Errorf("config.json: linux.%s: does not map id 0, which the sandbox runs as", field)
	}
	return out, nil
}

// idPool is a run of podIDs-sized ranges of host ids.
type idPool struct {
	uidStart, gidStart uint32
	slots              int
}

// hostPool returns the pool: the subIDUser entries of /etc/subuid and
// /etc/subgid when both exist, otherwise the default pool.
func hostPool() (idPool, error) {
	us, uc, uerr := subIDRange(subUIDFile, subIDUser)
	gs, gc, gerr := subIDRange(subGIDFile, subIDUser)
	if uerr != nil || gerr != nil {
		return idPool{uidStart: defaultPoolStart, gidStart: defaultPoolStart, slots: defaultPoolSlots}, nil
	}
	slots := int(min(uc, gc) / podIDs)
	if slots == 0 {
		return idPool{}, fmt.Errorf("/etc/subuid, /etc/subgid: the %q ranges hold fewer than %d ids", subIDUser, podIDs)
	}
	return idPool{uidStart: us, gidStart: gs, slots: slots}, nil
}

// errNoEntry is subIDRange's answer when the file has no entry for the
// user.
var errNoEntry = errors.New("no entry")

// subIDRange returns the first range of user in a subuid/subgid file.
func subIDRange(path, user string) (start, count uint32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || parts[0] != user {
			continue
		}
		s, err1 := strconv.ParseUint(parts[1], 10, 32)
		c, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || s+c > 1<<32 {
			return 0, 0, fmt.Errorf("%s: bad entry %q", path, sc.Text())
		}
		return uint32(s), uint32(c), nil
	}
	return 0, 0, errNoEntry
}

// allocateUserNS takes a free range of the pool.
func allocateUserNS() (*podUserNS, error) {
	pool, err := hostPool()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(userNSSlotDir, 0o700); err != nil {
		return nil, fmt.Errorf("user namespace ranges: %w", err)
	}
	for i := 0; i < pool.slots; i++ {
		p := filepath.Join(userNSSlotDir, strconv.Itoa(i))
		fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("user namespace range %d: %w", i, err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			if err == unix.EWOULDBLOCK {
				continue
			}
			return nil, fmt.Errorf("user namespace range %d: %w", i, err)
		}
		u, g := int(pool.uidStart)+i*podIDs, int(pool.gidStart)+i*podIDs
		return &podUserNS{
			uids: []syscall.SysProcIDMap{{ContainerID: 0, HostID: u, Size: podIDs}},
			gids: []syscall.SysProcIDMap{{ContainerID: 0, HostID: g, Size: podIDs}},
			slot: os.NewFile(uintptr(fd), "userns-slot"),
		}, nil
	}
	return nil, fmt.Errorf("user namespace ranges: all %d in use", pool.slots)
}

// checkMemberUserNS checks that a container joining the pod whose
// sandbox pidfd names asks for no user namespace other than the pod's:
// a pod has one. A spec may name it by path (as CRI does, with the
// sandbox container's) or repeat its mappings.
func checkMemberUserNS(spec *specs.Spec, sandbox *os.File) error {
	path, own := specNamespace(spec, specs.UserNamespace)
	if !own {
		return nil
	}
	pod, err := podUserNSFile(sandbox)
	if err != nil {
		return err
	}
	if pod != nil {
		defer pod.Close()
	}
	if path != "" {
		var want, got unix.Stat_t
		if pod != nil {
			err = unix.Fstat(int(pod.Fd()), &want)
		} else {
			err = unix.Stat("/proc/self/ns/user", &want)
		}
		if err != nil {
			return err
		}
		if err := unix.Stat(path, &got); err != nil {
			return fmt.Errorf("config.json: linux.namespaces user path: %w", err)
		}
		if got.Dev != want.Dev || got.Ino != want.Ino {
			return fmt.Errorf("config.json: linux.namespaces user path %q: not the user namespace of the pod's sandbox (a pod has one)", path)
		}
		return nil
	}
	if pod == nil {
		return fmt.Errorf("config.json: linux.namespaces: a user namespace of its own in a pod that runs in the host's")
	}
	pid, err := procfs.PidfdPid(int(sandbox.Fd()))
	if err != nil {
		return err
	}
	have, err := fuse9p.ReadIDMap(strconv.Itoa(pid))
	if err != nil || have == nil {
		return fmt.Errorf("reading the pod's id mappings: %v", err)
	}
	for _, f := range []struct {
		name string
		spec []specs.LinuxIDMapping
		pod  []fuse9p.IDRange
	}{{"uidMappings", spec.Linux.UIDMappings, have.UIDs}, {"gidMappings", spec.Linux.GIDMappings, have.GIDs}} {
		same := len(f.spec) == len(f.pod)
		for i := 0; same && i < len(f.spec); i++ {
			same = f.pod[i] == fuse9p.IDRange{Inside: f.spec[i].ContainerID, Outside: f.spec[i].HostID, Size: f.spec[i].Size}
		}
		if !same {
			return fmt.Errorf("config.json: linux.%s: %v differ from the pod's %v (a pod has one user namespace)", f.name, f.spec, f.pod)
		}
	}
	return nil
}
