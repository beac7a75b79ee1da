// Package boot implements the sandbox: the process (`runsc boot`) that
// holds a pod's containers. Its root is an empty tmpfs, so no host path is
// mounted in it; each container's files are FUSE file systems backed by
// 9P connections to that container's gofer, assembled under
// /__containers__/<cid>. A urpc controller mounts, starts, watches and
// destroys containers. Their processes are not the sandbox's children:
// the runsc command that creates a container (or execs into it) forks
// them into the sandbox's namespaces, so that they are its caller's
// children, as runc's are; the sandbox watches them through pidfds.
package boot

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"

	"github.com/runsc/runsc/caps"
	"github.com/runsc/runsc/network"
	"github.com/runsc/runsc/pivot"
	"github.com/runsc/runsc/urpc"
	"golang.org/x/sys/unix"
)

// Paths inside the sandbox.
const (
	// ContainersDir holds each container's root at ContainersDir/<cid>.
	ContainersDir = "/__containers__"
	// mountsDir holds each container's gofer trees at mountsDir/<cid>.
	mountsDir = "/__mounts__"
)

// Namespaces are the namespaces every sandbox is started in; the network,
// ipc and uts namespaces are the pod's, new or not as its spec says, and
// so is the pid namespace: a new one unless the pod's sandbox container
// joins an existing one (see Args.JoinedPID).
const Namespaces = unix.CLONE_NEWNS | unix.CLONE_NEWPID

// Args configures `runsc boot`.
type Args struct {
	// ControllerFD is a listening unix socket for the controller.
	ControllerFD int
	// NewNetwork is set when the sandbox got a new, empty network
	// namespace: its loopback interface is brought up.
	NewNetwork bool
	// LifelineFD, if not -1, is the read end of a pipe its creator
	// holds: EOF on it before a byte (the creator died before its
	// container was made) ends the sandbox, and with it whatever it
	// holds; a byte means the sandbox lives on its own.
	LifelineFD int
	// SlotFD, if not -1, is the locked slot file of the pod's user
	// namespace id range: it is held, never used, so that the range
	// is taken while the sandbox lives (see container.allocateUserNS).
	SlotFD int
	// SysfsFD, if not -1, is a detached read-only sysfs of the pod's
	// network namespace, made by the creator: a sandbox in a user
	// namespace that does not own its network namespace may not mount
	// one.
	SysfsFD int
	// JoinedPID says the sandbox runs in an existing pid namespace
	// (the host's, when the pod's sandbox container lists none:
	// --pid=host; or one it names by path), not as pid 1 of a new one:
	// the pod's processes then do not die with it.
	JoinedPID bool
	// ProcFD, if not -1, is a detached proc of the joined pid
	// namespace, made by the creator, for a sandbox in the pod's user
	// namespace, which may not mount one.
	ProcFD int
}

// Run sets up the sandbox and serves the controller until the process is
// killed. It must run as pid 1 of the namespaces listed in Namespaces,
// unless args.JoinedPID.
func Run(args Args) error {
	if os.Getpid() != 1 && !args.JoinedPID {
		return fmt.Errorf("boot: pid %d is not 1: the sandbox must be started in new namespaces", os.Getpid())
	}
	lf := os.NewFile(uintptr(args.ControllerFD), "controller")
	l, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return fmt.Errorf("boot: controller fd %d: %w", args.ControllerFD, err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		return fmt.Errorf("boot: controller fd %d is not a unix socket", args.ControllerFD)
	}
	// Nothing in the pod may ptrace the sandbox or open its /proc
	// files without CAP_SYS_PTRACE.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("boot: not dumpable: %w", err)
	}
	if err := setupRoot(args.SysfsFD, args.ProcFD); err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	if args.NewNetwork {
		if err := network.LoopbackUp(); err != nil {
			return fmt.Errorf("boot: %w", err)
		}
	}
	if err := caps.KeepOnly(caps.Last(), sandboxCaps...); err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	if err := confineSyscalls(); err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	ignoreTerminalSignals()
	if args.SlotFD >= 0 {
		var st unix.Stat_t
		if err := unix.Fstat(args.SlotFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("boot: --userns-slot-fd %d: not a regular file", args.SlotFD)
		}
		unix.CloseOnExec(args.SlotFD)
	}
	if args.LifelineFD >= 0 {
		go watchLifeline(os.NewFile(uintptr(args.LifelineFD), "lifeline"))
	}
	s := newSandbox()
	go s.reap()
	srv := urpc.NewServer()
	if err := srv.Register(&containerManager{s: s}); err != nil {
		return fmt.Errorf("boot: registering controller: %w", err)
	}
	slog.Debug("sandbox serving", "pid", os.Getpid())
	return srv.Serve(ul)
}

// sandboxCaps are the capabilities the sandbox keeps once its root is
// set up: CAP_SYS_ADMIN to mount and unmount the containers' trees and
// overlays, CAP_KILL to signal their processes, CAP_SYS_PTRACE to read
// an exited init's status from its /proc stat (the kernel shows it only
// to who may ptrace it), and the file capabilities an overlay's copy-up
// uses (it acts with its mounter's credentials on the upper layer). No
// CAP_MKNOD, CAP_NET_ADMIN, CAP_SETUID or CAP_SYS_CHROOT, in any set.
var sandboxCaps = []uintptr{
	unix.CAP_SYS_ADMIN, unix.CAP_KILL, unix.CAP_SYS_PTRACE,
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER, unix.CAP_FSETID,
}

// watchLifeline ends the sandbox if its creator dies before it has
// made its container (see Args.LifelineFD).
func watchLifeline(f *os.File) {
	var b [1]byte
	n, _ := f.Read(b[:])
	f.Close()
	if n == 1 {
		return
	}
	slog.Warn("the sandbox's creator died before its container was made: exiting")
	os.Exit(1)
}

// sandboxDevices are the host's device nodes bound into the sandbox's
// /dev: the ones a container's /dev gets (see makeDevices), which reach
// no hardware. A sandbox in a user namespace cannot make device nodes,
// and one made on its own tmpfs would not open; binds of the host's do.
var sandboxDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// setupRoot makes an empty tmpfs the sandbox's root (nodev, nosuid,
// noexec): it holds only the directories for containers, a proc of the
// sandbox's pid namespace (its own, or procFD, made by its creator when
// it may not mount one), a read-only sysfs of its network namespace
// (its own, or sysfsFD, made by its creator when it may not mount one)
// for its containers to mount theirs or bind, and a /dev tmpfs of its own (nosuid, noexec) with binds of the
// host's harmless device nodes (sandboxDevices): no other device node
// works anywhere in the sandbox's root. proc and sysfs are mounted
// before the pivot: in a user namespace the kernel mounts them only
// where a full instance is already visible, the host's.
func setupRoot(sysfsFD, procFD int) error {
	if err := pivot.MakeSlave(); err != nil {
		return err
	}
	root, err := pivot.MountScratch("runsc-sandbox", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755")
	if err != nil {
		return err
	}
	for _, d := range []string{ContainersDir, mountsDir, "/proc", "/sys", "/dev"} {
		if err := os.Mkdir(root+d, 0o755); err != nil {
			return fmt.Errorf("making sandbox %s: %w", d, err)
		}
	}
	const pseudo = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if procFD >= 0 {
		if err := attachDetached(procFD, root+"/proc"); err != nil {
			return fmt.Errorf("attaching sandbox /proc: %w", err)
		}
	} else if err := unix.Mount("proc", root+"/proc", "proc", pseudo, ""); err != nil {
		return fmt.Errorf("mounting sandbox /proc: %w", err)
	}
	if sysfsFD >= 0 {
		if err := attachDetached(sysfsFD, root+"/sys"); err != nil {
			return fmt.Errorf("attaching sandbox /sys: %w", err)
		}
	} else if err := unix.Mount("sysfs", root+"/sys", "sysfs", pseudo|unix.MS_RDONLY, ""); err != nil {
		slog.Debug("no sysfs in the sandbox: its containers get an empty /sys", "err", err)
	}
	if err := unix.Mount("runsc-dev", root+"/dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k,nr_inodes=16"); err != nil {
		return fmt.Errorf("mounting sandbox /dev: %w", err)
	}
	for _, name := range sandboxDevices {
		dst := root + "/dev/" + name
		if err := os.WriteFile(dst, nil, 0o666); err != nil {
			return fmt.Errorf("making sandbox /dev/%s: %w", name, err)
		}
		if err := unix.Mount("/dev/"+name, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding the host's /dev/%s into the sandbox: %w", name, err)
		}
	}
	return pivot.Into(root)
}

// attachDetached attaches the detached mount fd (made by the creator) at
// dst, and closes fd.
func attachDetached(fd int, dst string) error {
	defer unix.Close(fd)
	return unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

// ignoreTerminalSignals keeps the sandbox (pid 1, which ignores unhandled
// signals anyway) from acting on job-control signals.
func ignoreTerminalSignals() {
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTTIN, unix.SIGTTOU)
}
