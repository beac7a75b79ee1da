package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/pivot"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// InitArgs configure `runsc init`, started by the sandbox with the
// descriptors documented at initSpecFD.
type InitArgs struct {
	// CID is the container's ID.
	CID string
	// Console is set when initConsoleFD holds a console socket.
	Console bool
	// Exec is set for a process exec'd into a running container: the
	// sandbox started it in the container's namespaces, so there is
	// nothing to mount, and it does not wait for start.
	Exec bool
	// RootFD, if not -1, is a pipe on which the sandbox sends a byte
	// once the container's root is mounted (EOF: give up). The init
	// waits for it, then makes its own mount namespace. It must run
	// locked to its thread (runtime.LockOSThread) from then on: the
	// namespace is the thread's.
	RootFD int
}

// RunInit is the container's init: it sets up the container's mount
// namespace (spec mounts, devices, masked and read-only paths), pivots
// into the container's root, applies the process settings, reports ready,
// waits for start and execs the container's process. It returns only on
// failure.
func RunInit(args InitArgs) error {
	// Mounts and namespaces are made on this thread, which execs the
	// container's process: never unlocked.
	runtime.LockOSThread()
	ready := os.NewFile(initReadyFD, "ready")
	spec, path, err := prepareInit(args)
	if err != nil {
		// The sandbox reports the error to the caller of create.
		ready.WriteString(oneLine(err.Error()))
		ready.Close()
		os.Exit(1)
	}
	if _, err := ready.Write([]byte{0}); err != nil {
		return fmt.Errorf("init: reporting ready: %w", err)
	}
	ready.Close()
	if args.Exec {
		return reportExec(execProcess(spec, path))
	}
	start := os.NewFile(initStartFD, "start")
	var b [1]byte
	if n, _ := start.Read(b[:]); n != 1 {
		// The container was deleted before it started.
		os.Exit(0)
	}
	start.Close()
	return reportExec(execProcess(spec, path))
}

// reportExec tells the sandbox why the exec failed, then exits: the
// caller of start or exec gets the error.
func reportExec(err error) error {
	f := os.NewFile(initExecFD, "exec-status")
	f.WriteString(oneLine(err.Error()))
	f.Close()
	os.Exit(127)
	return err
}

// oneLine folds an error message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// prepareInit does everything up to the point of waiting for start and
// returns the spec and the resolved path of the executable.
func prepareInit(args InitArgs) (*specs.Spec, string, error) {
	specFile := os.NewFile(initSpecFD, "spec")
	data, err := io.ReadAll(specFile)
	specFile.Close()
	if err != nil {
		return nil, "", fmt.Errorf("reading spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, "", fmt.Errorf("decoding spec: %w", err)
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return nil, "", errors.New("spec has no process args")
	}
	capLast = readLastCap()
	if !args.Exec {
		if args.RootFD < 0 {
			return nil, "", errors.New("--root-fd is required")
		}
		if err := waitRoot(args.RootFD); err != nil {
			return nil, "", err
		}
		if err := setupContainer(&spec, args.CID); err != nil {
			return nil, "", err
		}
	}
	p := spec.Process
	if args.Console {
		if err := setupConsole(p); err != nil {
			return nil, "", err
		}
	}
	for _, rl := range p.Rlimits {
		res, ok := specutils.RlimitNumber(rl.Type)
		if !ok {
			return nil, "", fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return nil, "", fmt.Errorf("setting %s: %w", rl.Type, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return nil, "", fmt.Errorf("setting oom_score_adj: %w", err)
		}
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil && !errors.Is(err, unix.EROFS) {
		return nil, "", fmt.Errorf("making cwd %q: %w", cwd, err)
	}
	if err := unix.Chdir(cwd); err != nil {
		return nil, "", fmt.Errorf("chdir to cwd %q: %w", cwd, err)
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return nil, "", err
	}
	return &spec, path, nil
}

// waitRoot waits until the sandbox has mounted the container's root, then
// moves the calling thread (locked, and the one that goes on to exec the
// container's process) into a mount namespace of its own: a copy of the
// sandbox's, root included. The sandbox forked this process before the
// root existed, so that its start-up overlaps the mounting.
func waitRoot(fd int) error {
	f := os.NewFile(uintptr(fd), "root-ready")
	var b [1]byte
	n, _ := f.Read(b[:])
	f.Close()
	if n != 1 {
		// The sandbox gave up on the container.
		os.Exit(0)
	}
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("new mount namespace: %w", err)
	}
	return nil
}

// setupContainer makes the container's mounts, pivots into its root and
// sets its hostname.
func setupContainer(spec *specs.Spec, cid string) error {
	if err := pivot.MakeSlave(); err != nil {
		return err
	}
	root := filepath.Join(ContainersDir, cid)
	if err := setupMounts(spec, cid, root); err != nil {
		return err
	}
	if err := pivot.Into(root); err != nil {
		return err
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making root read-only: %w", err)
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("setting hostname %q: %w", spec.Hostname, err)
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
