package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/caps"
	"github.com/runsc/runsc/hook"
	"github.com/runsc/runsc/pivot"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// InitArgs configure `runsc init`, the container's init before it execs
// the container's process. It is forked by the runsc command that
// creates the container (or execs into it), in the sandbox's pid, ipc,
// uts and network namespaces, so that it is that command's child (and
// then its caller's); it enters the mount namespace itself. Each
// descriptor is named by its flag (see package donation).
type InitArgs struct {
	// CID is the container's ID.
	CID string
	// SpecFD holds the spec JSON (a memfd); its process is the one to
	// run.
	SpecFD int
	// ReadyFD is a pipe: init writes one zero byte when the container
	// is set up, or an error message before it exits.
	ReadyFD int
	// StartFD is a pipe: a byte on it lets init exec the container's
	// process (at create, on start; at exec, once the process is in the
	// container's cgroup); EOF makes it exit.
	StartFD int
	// ExecStatusFD is a pipe, close-on-exec: EOF on it means the
	// container's process was exec'd; otherwise the init writes why
	// exec failed.
	ExecStatusFD int
	// NSFD is a pidfd of the process whose mount namespace the init
	// enters: the sandbox (create), whose namespace holds the
	// container's root at ContainersDir/<cid>, mounted before the init
	// is forked, or the container's init (exec), whose namespace is the
	// container's. The init is forked in the sandbox's mount namespace
	// already: it never runs in the host's.
	NSFD int
	// RootFD (create only) is a pipe on which the creator sends a byte
	// once the sandbox has mounted the container's root (EOF: give
	// up): the init starts up meanwhile, in the sandbox's mount
	// namespace.
	RootFD int
	// ConsoleFD, if not -1, is the console socket that receives the pty
	// master when the process has a terminal.
	ConsoleFD int
	// Exec is set for a process exec'd into a running container: there
	// is nothing to mount, and it does not wait for start.
	Exec bool
	// HostBindFDs (create) are detached mount trees (open_tree clones
	// of the host's mounts) for the spec's host binds, in spec order:
	// see specutils.HostBind.
	HostBindFDs []int
	// Mkdir (create only) are directories the init makes (0755, with
	// their parents) in the container's root once it is set up: the
	// runtime config's mkdir (see specutils.RuntimeConfig).
	Mkdir []string
}

// HostBindsFlag is the `runsc init` flag naming InitArgs.HostBindFDs.
const HostBindsFlag = "host-bind-fds"

// MkdirFlag is the `runsc init` flag holding InitArgs.Mkdir, JSON.
const MkdirFlag = "mkdir"

// RunInit is the container's init: it enters the sandbox's mount
// namespace, makes its own with the container's mounts (spec mounts,
// devices, masked and read-only paths), pivots into the container's root,
// applies the process settings, reports ready, waits for start and execs
// the container's process. It returns only on failure.
func RunInit(args InitArgs) error {
	// Mounts and namespaces are made on this thread, which execs the
	// container's process: never unlocked.
	runtime.LockOSThread()
	// Until the exec, nothing in the container may ptrace this process
	// or open its /proc files (its exe is runsc).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("init: not dumpable: %w", err)
	}
	ready := os.NewFile(uintptr(args.ReadyFD), "ready")
	spec, path, hookState, err := prepareInit(args)
	if err != nil {
		// The creator reports the error to the caller.
		ready.WriteString(oneLine(err.Error()))
		ready.Close()
		os.Exit(1)
	}
	if _, err := ready.Write([]byte{0}); err != nil {
		return fmt.Errorf("init: reporting ready: %w", err)
	}
	ready.Close()
	start := os.NewFile(uintptr(args.StartFD), "start")
	var b [1]byte
	if n, _ := start.Read(b[:]); n != 1 {
		// The container was deleted before it started, or the exec
		// was abandoned.
		os.Exit(0)
	}
	start.Close()
	// The startContainer hooks run in the container, their paths
	// resolved in its root, right before its process, as it will run
	// (runc's order).
	var startHooks func() error
	if hookState != nil {
		var state specs.State
		if err := json.Unmarshal(hookState, &state); err != nil {
			return reportExec(args.ExecStatusFD, fmt.Errorf("decoding the state for startContainer hooks: %w", err))
		}
		startHooks = func() error { return hook.Run(spec, hook.StartContainer, state, nil) }
	}
	return reportExec(args.ExecStatusFD, execProcess(spec, path, startHooks))
}

// reportExec tells the waiting runsc why the exec failed, then exits:
// the caller of start or exec gets the error.
func reportExec(fd int, err error) error {
	f := os.NewFile(uintptr(fd), "exec-status")
	f.WriteString(oneLine(err.Error()))
	f.Close()
	os.Exit(127)
	return err
}

// oneLine folds an error message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// prepareInit does everything up to the point of waiting for start and
// returns the spec and the resolved path of the executable.
func prepareInit(args InitArgs) (spec *specs.Spec, path string, hookState []byte, err error) {
	specFile := os.NewFile(uintptr(args.SpecFD), "spec")
	data, err := io.ReadAll(specFile)
	specFile.Close()
	if err != nil {
		return nil, "", nil, fmt.Errorf("reading spec: %w", err)
	}
	spec = new(specs.Spec)
	if err := json.Unmarshal(data, spec); err != nil {
		return nil, "", nil, fmt.Errorf("decoding spec: %w", err)
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return nil, "", nil, errors.New("spec has no process args")
	}
	capLast = caps.Last()
	// Read now, from the sandbox's /proc: once in the container's root,
	// /proc may be anything the image holds.
	mknodAllowed = inUserNamespace()
	// Before any namespace change: this /proc is the sandbox's.
	if err := applyExecLabels(spec.Process); err != nil {
		return nil, "", nil, err
	}
	if args.Exec {
		if err := enterMountNS(args.NSFD); err != nil {
			return nil, "", nil, err
		}
	} else {
		rootPipe, err := waitRoot(args.RootFD)
		if err != nil {
			return nil, "", nil, err
		}
		defer rootPipe.Close()
		// Once the mounts are made, before the pivot: the creator
		// runs the create hooks then (see MountsReady), and sends the
		// state for startContainer hooks.
		mounted := func() error {
			if hook.HasCreateHooks(spec) {
				if _, err := unix.Write(args.ReadyFD, []byte{MountsReady}); err != nil {
					return fmt.Errorf("reporting the mounts made: %w", err)
				}
			}
			hookState, err = readHookState(rootPipe, spec)
			return err
		}
		if err := enterMountNS(args.NSFD); err != nil {
			return nil, "", nil, err
		}
		// In the container's cgroup by now: a new cgroup namespace
		// (the spec's, without a path) is rooted there.
		if newCgroupNS(spec) {
			if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
				return nil, "", nil, fmt.Errorf("new cgroup namespace: %w", err)
			}
		}
		// A mount namespace of its own: a copy of the sandbox's,
		// root included.
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return nil, "", nil, fmt.Errorf("new mount namespace: %w", err)
		}
		if err := applySysctls(spec.Linux); err != nil {
			return nil, "", nil, err
		}
		if err := setupContainer(spec, args.CID, args.HostBindFDs, mounted); err != nil {
			return nil, "", nil, err
		}
		// In the container's view (its root, read-only if the spec
		// says so, and its mounts), as the container will see them.
		umask := unix.Umask(0o022)
		for i, d := range args.Mkdir {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, "", nil, fmt.Errorf("runtime config mkdir[%d] %q: %w", i, d, err)
			}
		}
		unix.Umask(umask)
	}
	p := spec.Process
	if args.ConsoleFD >= 0 {
		if err := setupConsole(p, args.ConsoleFD); err != nil {
			return nil, "", nil, err
		}
	}
	// process.rlimits are set right before the exec (see
	// setRlimits).
	// process.oomScoreAdj is written by the init's creator.
	// process.user.umask, or runc's 0022.
	umask := 0o022
	if p.User.Umask != nil {
		umask = int(*p.User.Umask & 0o777)
	}
	unix.Umask(umask)
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil && !errors.Is(err, unix.EROFS) {
		return nil, "", nil, fmt.Errorf("making cwd %q: %w", cwd, err)
	}
	if err := unix.Chdir(cwd); err != nil {
		return nil, "", nil, fmt.Errorf("chdir to cwd %q: %w", cwd, err)
	}
	path, err = lookPath(p.Args[0], p.Env)
	if err != nil {
		return nil, "", nil, err
	}
	return spec, path, hookState, nil
}

// MountsReady is the byte the init writes on its ready pipe, before the
// final zero byte, when the spec has create hooks: its mounts are made,
// it has not pivoted yet, and it waits for the creator to run the hooks
// and close the root-ready pipe. (Not a printable byte: an error report
// is text.)
const MountsReady = 1

// waitRoot waits until the sandbox has mounted the container's root, and
// returns the root-ready pipe, on which the creator then sends the state
// for startContainer hooks (see readHookState).
func waitRoot(fd int) (*os.File, error) {
	if fd < 0 {
		return nil, errors.New("--root-fd is required")
	}
	f := os.NewFile(uintptr(fd), "root-ready")
	var b [1]byte
	if n, _ := f.Read(b[:]); n != 1 {
		// The creator gave up on the container.
		os.Exit(0)
	}
	return f, nil
}

// readHookState waits for the creator to close the root-ready pipe (its
// create hooks have run) and returns the state it sent for spec's
// startContainer hooks (nil without any).
func readHookState(f *os.File, spec *specs.Spec) ([]byte, error) {
	state, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading the state for startContainer hooks: %w", err)
	}
	if len(hook.List(spec, hook.StartContainer)) == 0 {
		return nil, nil
	}
	return state, nil
}

// enterMountNS moves the calling thread (locked, and the one that goes
// on to exec the container's process) into the mount namespace of the
// process pidfd names. Its root and working directory become that
// namespace's root.
func enterMountNS(pidfd int) error {
	if pidfd < 0 {
		return errors.New("--ns-fd is required")
	}
	// A thread shares its root and working directory with the
	// process's other threads until it unshares them; setns refuses
	// to change the mount namespace of a shared one.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	if err := unix.Setns(pidfd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("entering the mount namespace: %w", err)
	}
	unix.Close(pidfd)
	return nil
}

// applySysctls writes linux.sysctl through the sandbox's /proc, before
// the container's mounts (which may make /proc/sys read-only): every
// allowed key (see specutils) is one of a namespace the init is in.
func applySysctls(l *specs.Linux) error {
	if l == nil {
		return nil
	}
	for k, v := range l.Sysctl {
		if err := os.WriteFile(specutils.SysctlPath(k), []byte(v), 0); err != nil {
			return fmt.Errorf("linux.sysctl[%q]: %w", k, err)
		}
	}
	return nil
}

// setupContainer makes the container's mounts, calls mounted, pivots
// into its root and sets its hostname.
func setupContainer(spec *specs.Spec, cid string, hostBinds []int, mounted func() error) error {
	if err := pivot.MakeSlave(); err != nil {
		return err
	}
	root := filepath.Join(ContainersDir, cid)
	if err := setupMounts(spec, cid, root, hostBinds); err != nil {
		return err
	}
	if err := mounted(); err != nil {
		return err
	}
	if err := pivot.Into(root); err != nil {
		return err
	}
	if spec.Root != nil && spec.Root.Readonly {
		// Keeping the root's nodev (and nosuid, noexec): a bind
		// remount without them would clear them.
		fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("making root read-only: %w", err)
		}
		err = unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|lockedFlags(fd), "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("making root read-only: %w", err)
		}
	}
	return SetUTSNames(spec)
}

// SetUTSNames sets the spec's hostname and domainname, if given, in this
// thread's uts namespace.
func SetUTSNames(spec *specs.Spec) error {
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("setting hostname %q: %w", spec.Hostname, err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("setting domainname %q: %w", spec.Domainname, err)
		}
	}
	return nil
}

// lookPath resolves the executable as execvp would, with the container's
// PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := isExecutable(name); err != nil {
			return "", fmt.Errorf("exec %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

// isExecutable checks that path is a regular file with an execute bit.
func isExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if fi.Mode()&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}

// newCgroupNS reports whether spec asks for a new cgroup namespace: one
// listed without a path (one with a path, the init is forked in).
func newCgroupNS(spec *specs.Spec) bool {
	if spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace {
			return ns.Path == ""
		}
	}
	return false
}
