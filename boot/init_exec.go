package boot

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/seccomp"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// setupConsole makes a pty in the container's devpts, sends its master to
// the console socket (as runc does: one SCM_RIGHTS message whose data is
// the master's name) and makes the slave the process's controlling
// terminal and stdio.
func setupConsole(p *specs.Process, consoleFD int) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/ptmx (is devpts mounted at /dev/pts?): %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlocking pty: %w", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("pty number: %w", err)
	}
	slavePath := "/dev/pts/" + strconv.Itoa(n)
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", slavePath, err)
	}
	defer unix.Close(slave)
	if p.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(p.ConsoleSize.Height), Col: uint16(p.ConsoleSize.Width)}
		if err := unix.IoctlSetWinsize(slave, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("setting console size: %w", err)
		}
	}
	if err := unix.Sendmsg(consoleFD, []byte("/dev/ptmx"), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("sending pty master to the console socket: %w", err)
	}
	unix.Close(consoleFD)
	// The creator starts the init as a session leader; the pty becomes
	// that session's controlling terminal.
	if sid, _ := unix.Getsid(0); sid != unix.Getpid() {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("setting controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("pty as fd %d: %w", fd, err)
		}
	}
	return nil
}

// capSet converts capability names to a bit mask. CAP_MKNOD is kept
// only if mknod is set: when the process runs in a user namespace of its
// own (the pod's, see inUserNamespace):
// there the kernel refuses every device node to it (mknod of a device
// needs CAP_MKNOD in the initial user namespace) and the capability
// serves only what runc's containers use it for, FIFOs and sockets in
// set-ups that check for it. With --userns=host it is never granted: a
// device node made in the container would reach the host's devices
// directly, so the only device nodes are the ones the init makes.
func capSet(names []string, mknod bool) (uint64, error) {
	var set uint64
	for _, n := range names {
		c, ok := specutils.CapabilityNumber(n)
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		set |= 1 << uint(c)
	}
	if !mknod {
		set &^= 1 << unix.CAP_MKNOD
	}
	return set, nil
}

// mknodAllowed says the process may keep CAP_MKNOD: it runs in a user
// namespace of its own (see capSet), as the init found out before it
// entered the container's root.
var mknodAllowed bool

// inUserNamespace reports whether this process runs in a user namespace
// other than the initial one, whose uid_map maps every id to itself.
func inUserNamespace() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(data))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// execProcess switches to the process's user, capabilities,
// no_new_privs and seccomp filter on this thread, runs beforeExec (if
// not nil), then execs path. It returns only on failure.
//
// The order is runc's: the spec's seccomp profile filters what runs after
// it is loaded, so it is loaded as late as possible, right before the
// exec with no_new_privs; without no_new_privs loading it needs
// CAP_SYS_ADMIN, so it is loaded before the capabilities are dropped,
// and only the calls that set the user and capabilities follow it.
func execProcess(spec *specs.Spec, path string, beforeExec func() error) error {
	runtime.LockOSThread()
	p := spec.Process
	var filter []unix.SockFilter
	var filterFlags uint
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		var err error
		if filter, err = seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return err
		}
		if filterFlags, err = seccomp.Flags(spec.Linux.Seccomp); err != nil {
			return err
		}
	}
	// As late as possible: under the process's limits (RLIMIT_AS
	// below runsc's own address space, say) the Go runtime may fail
	// to allocate and die, which the waiting runsc would take for the
	// exec. Before the filter, which need not allow prlimit64.
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	// Nothing of runsc's passes to the process: every descriptor but
	// stdio closes at exec (the exec-status pipe then tells the waiting
	// runsc the exec happened). Before the filter: a profile need not
	// allow close_range.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	if filter != nil && !p.NoNewPrivileges {
		if err := seccomp.Install(filter, filterFlags); err != nil {
			return err
		}
		filter = nil
	}
	// A process without capabilities gets none, as with runc: not the
	// full set runsc itself holds.
	caps := p.Capabilities
	if caps == nil {
		caps = &specs.LinuxCapabilities{}
	}
	// capSet drops CAP_MKNOD from every set outside a user namespace,
	// the bounding one included, even when the spec keeps every
	// capability.
	mknod := mknodAllowed
	bounding, err := capSet(caps.Bounding, mknod)
	if err != nil {
		return fmt.Errorf("process.capabilities.bounding: %w", err)
	}
	for c := 0; c <= lastCap(); c++ {
		if bounding&(1<<uint(c)) == 0 {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if err := setCaps(caps, mknod); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	env := p.Env
	if env == nil {
		env = []string{}
	}
	if filter != nil {
		if err := seccomp.Install(filter, filterFlags); err != nil {
			return err
		}
	}
	// The startContainer hooks, as the process will run: its user,
	// capabilities and filter, no descriptor of runsc's.
	if beforeExec != nil {
		if err := beforeExec(); err != nil {
			return err
		}
	}
	// execve straight away: little else runs under the filter.
	err = syscall.Exec(path, p.Args, env)
	return fmt.Errorf("exec %q: %w", path, err)
}

// setRlimits sets the process's rlimits (hard limits above the inherited
// ones were raised by the creator: see container.raiseHardLimits).
// Setting RLIMIT_NOFILE also tells the Go runtime not to put back, at
// exec, the soft limit this process started with.
func setRlimits(rlimits []specs.POSIXRlimit) error {
	for _, rl := range rlimits {
		res, ok := specutils.RlimitNumber(rl.Type)
		if !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return fmt.Errorf("setting %s: %w", rl.Type, err)
		}
	}
	return nil
}

// setUser sets the groups, gid and uid of this thread.
func setUser(u specs.User) error {
	groups := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		groups[i] = int(g)
	}
	if err := rawSetgroups(groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); errno != 0 {
		return fmt.Errorf("setting gid %d: %w", u.GID, errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); errno != 0 {
		return fmt.Errorf("setting uid %d: %w", u.UID, errno)
	}
	return nil
}

// rawSetgroups sets the supplementary groups of this thread only (the
// thread then execs).
func rawSetgroups(groups []int) error {
	gids := make([]uint32, len(groups))
	for i, g := range groups {
		gids[i] = uint32(g)
	}
	var ptr unsafe.Pointer
	if len(gids) > 0 {
		ptr = unsafe.Pointer(&gids[0])
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(ptr), 0); errno != 0 {
		return errno
	}
	runtime.KeepAlive(gids)
	return nil
}

// setCaps sets the effective, permitted, inheritable and ambient sets.
func setCaps(caps *specs.LinuxCapabilities, mknod bool) error {
	eff, err := capSet(caps.Effective, mknod)
	if err != nil {
		return fmt.Errorf("process.capabilities.effective: %w", err)
	}
	perm, err := capSet(caps.Permitted, mknod)
	if err != nil {
		return fmt.Errorf("process.capabilities.permitted: %w", err)
	}
	inh, err := capSet(caps.Inheritable, mknod)
	if err != nil {
		return fmt.Errorf("process.capabilities.inheritable: %w", err)
	}
	amb, err := capSet(caps.Ambient, mknod)
	if err != nil {
		return fmt.Errorf("process.capabilities.ambient: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("setting capabilities: %w", err)
	}
	// The kernel raises an ambient capability only if it is in both the
	// permitted and the inheritable sets; runc ignores a raise the
	// kernel refuses (runc spec lists ambient capabilities without
	// inheritable ones), and so does runsc: the process simply does
	// not get it.
	for c := 0; c <= lastCap(); c++ {
		if amb&(1<<uint(c)) != 0 {
			unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0)
		}
	}
	return nil
}

// capLast is the highest capability the kernel knows, read by the init
// before it pivots away from the sandbox's /proc.
var capLast = unix.CAP_LAST_CAP

// lastCap returns capLast.
func lastCap() int { return capLast }
