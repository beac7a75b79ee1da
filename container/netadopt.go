package container

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/faultpoint"
	"github.com/runsc/runsc/network"
	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// A pod in a user namespace of its own has no capability over a network
// namespace it joins that was made in the host's user namespace: a
// container granted CAP_NET_ADMIN could not add a route or a bridge
// there. containerd's CRI (1.6) and podman make a pod's namespace that
// way, bind it to a file (/var/run/netns/cni-...), have CNI put the
// links in, and then name the file in the spec.
//
// Such a namespace is adopted: the sandbox makes a network namespace of
// its own, which the pod's user namespace owns; runsc create binds it at
// the file in the old one's place and moves the old one's links into it
// with their configuration (network.Adopt). The file then names the
// pod's namespace for every later user (CNI's DEL, containerd's port
// forwarding, pod members) and keeps it, with its links, until the
// client unmounts it, as it did the old one.

// netnsAdoption is a network namespace the sandbox is to adopt: the
// namespace (f), bound at path, whose directory dir holds open (the
// path is not resolved again).
type netnsAdoption struct {
	f    *os.File
	dir  *os.File
	base string
	path string
}

// startPodSandbox starts a new pod's sandbox (see startSandbox) and has
// it adopt the network namespace it is to adopt. If the links stayed
// where they were (a link could not move, say), the sandbox is started
// again, joining that namespace as it is.
func (c *Container) startPodSandbox(cfg Config, spec *specs.Spec, exe *exeCopy) (*os.Process, error) {
	p, adoption, err := c.startSandbox(cfg, spec, exe)
	if err != nil {
		return nil, err
	}
	defer adoption.close()
	c.Sandbox = procOf(p.Pid)
	if adoption == nil {
		return p, nil
	}
	err = adoption.adopt(c.Sandbox.PID)
	if err == nil {
		return p, nil
	}
	c.Sandbox.fuseServer().kill(killTimeout)
	p.Wait()
	c.Sandbox = Proc{}
	c.lifeline.Close()
	if !errors.Is(err, network.ErrLinksStayed) {
		return nil, err
	}
	slog.Warn("joining the network namespace as it is", "path", adoption.path, "err", err)
	if err := os.Remove(c.shortPath(controllerSock)); err != nil {
		return nil, err
	}
	cfg.AdoptNetNS = false
	p, _, err = c.startSandbox(cfg, spec, exe)
	if err != nil {
		return nil, err
	}
	c.Sandbox = procOf(p.Pid)
	return p, nil
}

// adoptableNetNS opens the network namespace bound at path if the pod may
// adopt it: a namespace bind-mounted on a file (not a /proc link to a
// process's) in runsc's mount namespace, made in the host's user
// namespace, not the host's network namespace, not in use (see
// netnsInUse), and one network.CanAdopt accepts. Otherwise it returns
// nil, and the sandbox joins the namespace as it is.
func adoptableNetNS(path string) (*netnsAdoption, error) {
	a := &netnsAdoption{path: path, base: filepath.Base(path)}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	why, err := a.open()
	if err != nil || why != "" {
		if why != "" {
			slog.Debug("network namespace joined, not adopted", "path", path, "why", why)
		}
		return nil, err
	}
	ok = true
	return a, nil
}

// open opens a's directory and namespace, and says why the namespace may
// not be adopted ("" if it may).
func (a *netnsAdoption) open() (string, error) {
	dir, err := os.OpenFile(filepath.Dir(a.path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("config.json: linux.namespaces network path %q: %w", a.path, err)
	}
	a.dir = dir
	mnt, err := a.mountRoot()
	if err != nil {
		return err.Error(), nil
	}
	defer mnt.Close()
	f, err := openNamespace(fdPath(mnt), specs.NetworkNamespace, unix.CLONE_NEWNET)
	if err != nil {
		return "", fmt.Errorf("config.json: linux.namespaces network path %q: not a network namespace", a.path)
	}
	a.f = f
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", err
	}
	switch {
	case network.IsHostNS(st):
		return "the host's", nil
	case !hostOwned(f):
		return "another user namespace owns it", nil
	}
	if why := netnsInUse(st); why != "" {
		return why, nil
	}
	if err := network.CanAdopt(f); err != nil {
		return err.Error(), nil
	}
	return "", nil
}

// mountRoot opens, without following it, the file at a's path, which
// must be the root of a namespace mount in runsc's mount namespace.
func (a *netnsAdoption) mountRoot() (*os.File, error) {
	fd, err := unix.Openat(int(a.dir.Fd()), a.base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), a.path)
	var sfs unix.Statfs_t
	var stx unix.Statx_t
	switch {
	case unix.Fstatfs(fd, &sfs) != nil || sfs.Type != nsfsMagic:
		f.Close()
		return nil, errors.New("not a namespace bound at a file")
	case unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx) != nil || stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 || !ownMount(stx.Mnt_id):
		f.Close()
		return nil, errors.New("not a mount of runsc's mount namespace that propagates to its peers")
	}
	return f, nil
}

// fdPath names f through /proc/self/fd.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// ownMount reports whether mount id is in this process's mount namespace
// and not a slave: replacing it there replaces it for whoever shares it
// (a slave's changes would not reach its master's side).
func ownMount(id uint64) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, m := range procfs.ParseMountinfo(data) {
		if m.ID != id {
			continue
		}
		for _, o := range m.Optional {
			if strings.HasPrefix(o, "master:") {
				return false
			}
		}
		return true
	}
	return false
}

// hostOwned reports whether the host's user namespace (runsc's) owns
// namespace f.
func hostOwned(f *os.File) bool {
	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && isRuntimeNS(st, "user")
}

// netnsInUse says how network namespace st (a namespace file's stat) is
// in use besides the one bind ("" if it is not): a thread in it, a
// descriptor of it, or another bind of it in runsc's mount namespace.
// Whoever holds it that way would lose its links.
func netnsInUse(st unix.Stat_t) string {
	name := "net:[" + strconv.FormatUint(st.Ino, 10) + "]"
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		binds := 0
		for _, m := range procfs.ParseMountinfo(data) {
			if m.FSType == "nsfs" && m.Root == name {
				binds++
			}
		}
		if binds > 1 {
			return "it is bound at other paths too"
		}
	}
	pids, err := os.ReadDir("/proc")
	if err != nil {
		return "listing processes: " + err.Error()
	}
	self := strconv.Itoa(os.Getpid())
	for _, p := range pids {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		if p.Name() == self {
			// runsc's own descriptor of it, and the threads it
			// enters it with to read it.
			continue
		}
		dir := "/proc/" + p.Name()
		tasks, _ := os.ReadDir(dir + "/task")
		for _, t := range tasks {
			var got unix.Stat_t
			if unix.Stat(dir+"/task/"+t.Name()+"/ns/net", &got) == nil && got.Dev == st.Dev && got.Ino == st.Ino {
				return "process " + p.Name() + " is in it"
			}
		}
		fds, _ := os.ReadDir(dir + "/fd")
		for _, fd := range fds {
			if l, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && l == name {
				return "process " + p.Name() + " holds it open"
			}
		}
	}
	return ""
}

// adopt binds the sandbox's network namespace at a's path in place of the
// one there, then moves that one's links in (see network.Adopt). If the
// links could not be moved, the old namespace is bound back; once they
// are moved, nothing is undone when create fails later: the file then
// keeps naming the namespace with the links, where the client's
// teardown (CNI's DEL) finds them, until the client unmounts it.
func (a *netnsAdoption) adopt(sandboxPID int) error {
	ours, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", sandboxPID))
	if err != nil {
		return fmt.Errorf("opening the sandbox's network namespace: %w", err)
	}
	defer ours.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(a.f.Fd()), &st); err != nil {
		return fmt.Errorf("network namespace at %s: %w", a.path, err)
	}
	faultpoint.Reach(faultpoint.CreateAdopt)
	// The sandbox started meanwhile: look again.
	if why := netnsInUse(st); why != "" {
		return fmt.Errorf("adopting the network namespace at %s: %s: %w", a.path, why, network.ErrLinksStayed)
	}
	if err := a.rebind(a.f, ours); err != nil {
		return err
	}
	if err := network.Adopt(a.f, ours); err != nil {
		if errors.Is(err, network.ErrLinksStayed) {
			if berr := a.rebind(ours, a.f); berr != nil {
				err = errors.Join(err, berr)
			}
		}
		return fmt.Errorf("adopting the network namespace at %s: %w", a.path, err)
	}
	slog.Debug("network namespace adopted", "path", a.path)
	return nil
}

// rebind replaces the bind of namespace old at a's path by one of new.
// If binding new fails, old is bound back.
func (a *netnsAdoption) rebind(old, new *os.File) error {
	var want, got unix.Stat_t
	if err := unix.Fstat(int(old.Fd()), &want); err != nil {
		return fmt.Errorf("network namespace at %s: %w", a.path, err)
	}
	mnt, err := a.mountRoot()
	if err == nil {
		err = unix.Fstat(int(mnt.Fd()), &got)
		if err == nil && (got.Dev != want.Dev || got.Ino != want.Ino) {
			err = errors.New("it changed under runsc")
		}
		if err == nil {
			err = unix.Unmount(fdPath(mnt), unix.MNT_DETACH)
		}
		mnt.Close()
	}
	if err != nil {
		return fmt.Errorf("unbinding the network namespace at %s: %w", a.path, err)
	}
	err = a.bind(new)
	if err == nil {
		return nil
	}
	if berr := a.bind(old); berr != nil {
		err = errors.Join(err, fmt.Errorf("binding the old one back: %w", berr))
	}
	return fmt.Errorf("binding a network namespace at %s: %w", a.path, err)
}

// bind bind-mounts namespace ns on the file at a's path, which must be a
// plain file (the placeholder under the mount just removed).
func (a *netnsAdoption) bind(ns *os.File) error {
	fd, err := unix.Openat(int(a.dir.Fd()), a.base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	target := os.NewFile(uintptr(fd), a.path)
	defer target.Close()
	if _, ok := plainFile(fd); !ok {
		return errors.New("not a plain file")
	}
	return unix.Mount(fdPath(ns), fdPath(target), "", unix.MS_BIND, "")
}

// close closes the files; a nil adoption is none.
func (a *netnsAdoption) close() {
	if a == nil {
		return
	}
	for _, f := range []*os.File{a.f, a.dir} {
		if f != nil {
			f.Close()
		}
	}
}
