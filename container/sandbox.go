package container

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/donation"
	"github.com/runsc/runsc/nsfork"
	"golang.org/x/sys/unix"
)

// sandboxNamespaces are the namespaces of a sandbox (so of its pod) that
// the spec decides, as runc does for a container: a new one when it
// lists the type without a path, the path's when it gives one, the
// host's when it does not list the type.
var sandboxNamespaces = []struct {
	typ  specs.LinuxNamespaceType
	flag int
}{
	{specs.NetworkNamespace, unix.CLONE_NEWNET},
	{specs.IPCNamespace, unix.CLONE_NEWIPC},
	{specs.UTSNamespace, unix.CLONE_NEWUTS},
}

// nsJoin is a namespace the sandbox is started in: an open namespace
// file and its type.
type nsJoin struct {
	f    *os.File
	flag int
	path string
}

// startSandbox starts `runsc boot` with a listening controller socket in
// the state directory, in a new mount namespace and the network, ipc and
// uts namespaces the spec asks for (see sandboxNamespaces; --network=host
// keeps the host's network namespace), and a new pid namespace, of
// which it is pid 1, unless the spec shares an existing one (see
// sandboxPIDNS).
//
// It is started from exe, the sealed copy of runsc: a sandbox in the
// pod's user namespace may not be able to reach the binary's path, and
// its /proc/<pid>/exe then never names the host's binary.
//
// A network namespace the spec names by path that the pod may adopt
// (see adoptableNetNS) is returned, for the caller to adopt, and the
// sandbox gets a new one instead.
//
// The returned process is this process's child.
func (c *Container) startSandbox(cfg Config, spec *specs.Spec, exe *exeCopy) (p *os.Process, _ *netnsAdoption, err error) {
	var adoption *netnsAdoption
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: c.shortPath(controllerSock), Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("controller socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	l.Close()
	if err != nil {
		return nil, nil, err
	}
	defer lf.Close()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox lifeline: %w", err)
	}
	defer lifeR.Close()
	c.lifeline = lifeW
	uns, err := newPodUserNS(spec, cfg.HostUserNS)
	if err != nil {
		return nil, nil, err
	}
	defer uns.close()
	var logs donation.Agency
	for _, l := range []struct{ flag, path string }{{"log-fd", cfg.SandboxLog}, {"debug-log-fd", cfg.SandboxDebugLog}} {
		if l.path == "" {
			continue
		}
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("sandbox log: %w", err)
		}
		defer f.Close()
		logs.Donate(l.flag, f)
	}
	var joins []nsJoin
	defer func() {
		for _, j := range joins {
			j.f.Close()
		}
	}()
	flags := uintptr(boot.Namespaces)
	pidPath, joinedPID := sandboxPIDNS(spec)
	var pidns *os.File
	if joinedPID {
		if uns == nil {
			return nil, nil, fmt.Errorf("config.json: linux.namespaces: sharing an existing pid namespace needs the pod's user namespace (not --userns=host): the sandbox would run there as host root, able to reach every process of that namespace and through them the host's files")
		}
		flags &^= unix.CLONE_NEWPID
	}
	if pidPath != "" {
		f, err := openNamespace(pidPath, specs.PIDNamespace, unix.CLONE_NEWPID)
		if err != nil {
			return nil, nil, err
		}
		joins = append(joins, nsJoin{f, unix.CLONE_NEWPID, pidPath})
		pidns = f
	}
	defer func() {
		if err != nil {
			adoption.close()
		}
	}()
	var netns *os.File
	for _, n := range sandboxNamespaces {
		path, own := specNamespace(spec, n.typ)
		switch {
		case n.typ == specs.NetworkNamespace && cfg.Network == NetworkHost:
		case n.typ == specs.NetworkNamespace && cfg.Network.private():
			flags |= uintptr(n.flag)
		case !own:
		case n.typ == specs.NetworkNamespace && path != "" && cfg.AdoptNetNS && uns != nil && uns.join == nil:
			if adoption, err = adoptableNetNS(path); err != nil {
				return nil, nil, err
			}
			if adoption != nil {
				flags |= uintptr(n.flag)
				break
			}
			fallthrough
		case path != "":
			f, err := openNamespace(path, n.typ, n.flag)
			if err != nil {
				return nil, nil, err
			}
			joins = append(joins, nsJoin{f, n.flag, path})
			if n.flag == unix.CLONE_NEWNET {
				netns = f
			}
		default:
			flags |= uintptr(n.flag)
		}
	}
	var d donation.Agency
	d.Donate("controller-fd", lf)
	d.Donate("lifeline-fd", lifeR)
	if uns != nil && uns.slot != nil {
		d.Donate("userns-slot-fd", uns.slot)
	}
	if uns != nil && flags&unix.CLONE_NEWNET == 0 {
		// The pod's user namespace does not own the network
		// namespace, so the sandbox cannot mount its sysfs: one is
		// made here.
		sysfs, err := detachedFS("sysfs", netns, nil, unix.MOUNT_ATTR_RDONLY)
		if err != nil {
			return nil, nil, err
		}
		defer sysfs.Close()
		d.Donate("sysfs-fd", sysfs)
	}
	if uns != nil && joinedPID {
		// Nor a pid namespace it joins: its proc is made here.
		proc, err := detachedFS("proc", nil, pidns, 0)
		if err != nil {
			return nil, nil, err
		}
		defer proc.Close()
		d.Donate("proc-fd", proc)
	}
	exeFile, err := exe.dup()
	if err != nil {
		return nil, nil, err
	}
	defer exeFile.Close()
	extra, logArgs := logs.TransferExtra(nil)
	extra, fdArgs := d.TransferExtra(extra)
	exePath := "/proc/self/fd/" + strconv.Itoa(3+len(extra))
	extra = append(extra, exeFile)
	args := append(append(append(append([]string{}, cfg.GlobalArgs...), logArgs...), "boot"), fdArgs...)
	if flags&unix.CLONE_NEWNET != 0 {
		args = append(args, "--new-network")
	}
	if joinedPID {
		args = append(args, "--joined-pid")
	}
	cmd := exec.Command(exePath, args...)
	cmd.Args[0] = "runsc"
	cmd.ExtraFiles = extra
	// The sandbox outlives this command and must not hold its stdio
	// (containerd's go-runc waits for EOF on a pipe given as stderr);
	// it logs to --log/--debug-log when given, and reports errors
	// through the controller.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Setsid: true}
	start := func() (*os.Process, error) {
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return cmd.Process, nil
	}
	switch {
	case uns != nil && uns.join != nil:
		// An existing user namespace, which only a single-threaded
		// process can join: see nsfork.
		start = func() (*os.Process, error) {
			return startInUserNS(uns, exeFile, cmd.Args, extra, flags)
		}
	case uns != nil:
		// The sandbox runs as the pod's root, with no supplementary
		// group of this process's, and capabilities in the pod's
		// user namespace only.
		cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings, cmd.SysProcAttr.GidMappings = uns.uids, uns.gids
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	// Started from a thread that joined the namespaces.
	err = onDiscardedThread(func() error {
		for _, j := range joins {
			if err := unix.Setns(int(j.f.Fd()), j.flag); err != nil {
				return fmt.Errorf("joining namespace %q: %w", j.path, err)
			}
		}
		var err error
		p, err = start()
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("starting sandbox: %w", err)
	}
	return p, adoption, nil
}

// startInUserNS starts the sandbox (exe with argv, descriptors 3.. extra,
// stdio /dev/null) in the existing user namespace uns.join, as its root,
// where it makes its new namespaces (flags) itself, so that that user
// namespace owns them.
func startInUserNS(uns *podUserNS, exe *os.File, argv []string, extra []*os.File, flags uintptr) (*os.Process, error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	files := append([]*os.File{devNull, devNull, devNull}, extra...)
	pid, err := nsfork.Start(exe, argv, os.Environ(), nsfork.Attr{UserNS: uns.join, Files: files, Setsid: true, Unshare: flags})
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "setting uid and gid") {
			hint = " (it must map uid and gid 0)"
		}
		return nil, fmt.Errorf("config.json: linux.namespaces user path %q: starting the sandbox as its root%s: %w", uns.joinPath, hint, err)
	}
	return os.FindProcess(pid)
}

// detachedFS makes a file system of type typ (sysfs, proc), nosuid,
// nodev, noexec and with attrs, not attached anywhere, for a sandbox
// that may not mount it itself: a sysfs of network namespace netns (nil:
// this process's), a proc of pid namespace pidns (nil: this process's,
// the host's). It is made on a thread of its own (see onDiscardedThread).
func detachedFS(typ string, netns, pidns *os.File, attrs int) (*os.File, error) {
	var out *os.File
	err := onDiscardedThread(func() error {
		if netns != nil {
			if err := unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("%s for the sandbox: joining its network namespace: %w", typ, err)
			}
		}
		fsfd, err := unix.Fsopen(typ, unix.FSOPEN_CLOEXEC)
		if err != nil {
			return fmt.Errorf("%s for the sandbox: %w", typ, err)
		}
		defer unix.Close(fsfd)
		if pidns != nil {
			// Linux 6.17's pidns option.
			if err := unix.FsconfigSetFd(fsfd, "pidns", int(pidns.Fd())); err != nil {
				return fmt.Errorf("%s for the sandbox: of the pid namespace it joins: %w", typ, err)
			}
		}
		if err := unix.FsconfigCreate(fsfd); err != nil {
			return fmt.Errorf("%s for the sandbox: %w", typ, err)
		}
		mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return fmt.Errorf("%s for the sandbox: %w", typ, err)
		}
		out = os.NewFile(uintptr(mfd), typ)
		return nil
	})
	return out, err
}

// openNamespace opens the namespace file at path, which the spec gives
// for a namespace of type typ (flag, its CLONE_NEW* flag), and checks
// that it is one.
func openNamespace(path string, typ specs.LinuxNamespaceType, flag int) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config.json: linux.namespaces %s path: %w", typ, err)
	}
	if t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE); err != nil || t != flag {
		f.Close()
		return nil, fmt.Errorf("config.json: linux.namespaces %s path %q: not a %s namespace", typ, path, typ)
	}
	return f, nil
}
