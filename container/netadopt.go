package container

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/network"
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
// its own, which the pod's user namespace owns; runsc create moves the
// links of the named one into it with their addresses, routes and
// permanent neighbours (network.Adopt), and binds it at the file in the
// old one's place. The file then names the pod's namespace for every
// later user (CNI's DEL, containerd's port forwarding, pod members) and
// keeps it, with its links, until the client unmounts it, as it did the
// old one.

// netnsAdoption is a network namespace the sandbox is to adopt: the
// namespace file at path, open.
type netnsAdoption struct {
	f    *os.File
	path string
}

// adoptableNetNS opens the network namespace bound at path if the pod may
// adopt it: a namespace bind-mounted on a file (not a /proc link to a
// process's), not the host's, no process in it, and every link movable.
// Otherwise it returns nil, and the sandbox joins the namespace as it is.
func adoptableNetNS(path string) (*netnsAdoption, error) {
	var lst unix.Stat_t
	if err := unix.Lstat(path, &lst); err != nil || lst.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nil
	}
	f, err := openNamespace(path, specs.NetworkNamespace, unix.CLONE_NEWNET)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("config.json: linux.namespaces network path %q: %w", path, err)
	}
	why := ""
	switch {
	case network.IsHostNS(st):
		why = "the host's"
	case nsInUse(st, "net"):
		why = "processes are in it"
	default:
		if err := network.CanAdopt(f); err != nil {
			why = err.Error()
		}
	}
	if why != "" {
		slog.Debug("network namespace joined, not adopted", "path", path, "why", why)
		f.Close()
		return nil, nil
	}
	return &netnsAdoption{f: f, path: path}, nil
}

// nsInUse reports whether a process is in the namespace st (a namespace
// file's stat) of /proc/<pid>/ns/<name>.
func nsInUse(st unix.Stat_t, name string) bool {
	d, err := os.Open("/proc")
	if err != nil {
		return true
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return true
	}
	for _, n := range names {
		if _, err := strconv.Atoi(n); err != nil {
			continue
		}
		var got unix.Stat_t
		if unix.Stat("/proc/"+n+"/ns/"+name, &got) == nil && got.Dev == st.Dev && got.Ino == st.Ino {
			return true
		}
	}
	return false
}

// adopt binds the sandbox's network namespace at a.path in place of the
// one there, then moves that one's links in (see network.Adopt). It is
// not undone when create fails later: the file then keeps naming the
// namespace with the links, where the client's teardown (CNI's DEL)
// finds them, until the client unmounts it.
func (a *netnsAdoption) adopt(sandboxPID int) error {
	ours, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", sandboxPID))
	if err != nil {
		return fmt.Errorf("opening the sandbox's network namespace: %w", err)
	}
	defer ours.Close()
	if err := rebindNS(a.path, a.f, ours); err != nil {
		return err
	}
	if err := network.Adopt(a.f, ours); err != nil {
		return fmt.Errorf("adopting the network namespace at %s: %w", a.path, err)
	}
	slog.Debug("network namespace adopted", "path", a.path)
	return nil
}

// close closes the namespace file; a nil adoption is none.
func (a *netnsAdoption) close() {
	if a != nil {
		a.f.Close()
	}
}

// rebindNS replaces the bind of namespace old at path by one of new. If
// binding new fails, old is bound back.
func rebindNS(path string, old, new *os.File) error {
	var want, got unix.Stat_t
	if err := unix.Fstat(int(old.Fd()), &want); err != nil {
		return err
	}
	if err := unix.Stat(path, &got); err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		return fmt.Errorf("network namespace at %s: it changed under runsc", path)
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unbinding the network namespace at %s: %w", path, err)
	}
	err := bindFD(new, path)
	if err == nil {
		return nil
	}
	if berr := bindFD(old, path); berr != nil {
		err = errors.Join(err, fmt.Errorf("binding the old one back: %w", berr))
	}
	return fmt.Errorf("binding the pod's network namespace at %s: %w", path, err)
}

// bindFD bind-mounts the file f at path.
func bindFD(f *os.File, path string) error {
	return unix.Mount(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), path, "", unix.MS_BIND, "")
}
