package gofer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/runsc/runsc/caps"
	"github.com/runsc/runsc/donation"
	"github.com/runsc/runsc/fsimpl/host"
	"golang.org/x/sys/unix"
)

// Namespaces are the namespaces the gofer gets from its launcher.
const Namespaces = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWNET

// Config is the gofer's whole configuration.
type Config struct {
	// Trees are served in order: tree i on connection IOFDs[i].
	Trees []Tree
	// IOFDs are connected unix stream sockets, one per tree.
	IOFDs []int
	// FUSEFDs is empty or has one entry per tree: a /dev/fuse
	// descriptor of the mount the sandbox serves the tree on, on which
	// the tree's opened files are registered as passthrough backing
	// files, or -1. With any, the gofer keeps CAP_SYS_ADMIN
	// (which the registration needs) and may make those two ioctls.
	FUSEFDs []int
}

// Validate checks the configuration before anything is done with it.
func (c *Config) Validate() error {
	if len(c.Trees) == 0 {
		return fmt.Errorf("gofer: no tree to serve (--tree)")
	}
	if len(c.Trees) != len(c.IOFDs) {
		return fmt.Errorf("gofer: %d trees but %d io fds (--io-fds): need one socket per tree", len(c.Trees), len(c.IOFDs))
	}
	if len(c.FUSEFDs) != 0 && len(c.FUSEFDs) != len(c.Trees) {
		return fmt.Errorf("gofer: %d trees but %d fuse fds (--fuse-fds): need one per tree, -1 for none", len(c.Trees), len(c.FUSEFDs))
	}
	for _, fd := range c.FUSEFDs {
		if fd == -1 {
			continue
		}
		var st unix.Stat_t
		if fd < 3 || unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(10, 229) {
			return fmt.Errorf("gofer: --fuse-fds: fd %d is not /dev/fuse", fd)
		}
	}
	seen := map[int]bool{}
	for _, fd := range c.IOFDs {
		if fd < 3 {
			return fmt.Errorf("gofer: --io-fds: fd %d is stdio, not a socket", fd)
		}
		if seen[fd] {
			return fmt.Errorf("gofer: --io-fds: fd %d given twice", fd)
		}
		seen[fd] = true
		t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil || t != unix.SOCK_STREAM {
			return fmt.Errorf("gofer: --io-fds: fd %d is not a stream socket", fd)
		}
	}
	return nil
}

// passthrough reports whether any tree registers passthrough files.
func (c *Config) passthrough() bool {
	for _, fd := range c.FUSEFDs {
		if fd >= 0 {
			return true
		}
	}
	return false
}

// TreeArgs returns the --tree arguments of `runsc gofer` for trees, in
// order: tree i is served on the i-th --io-fds descriptor.
func TreeArgs(trees []Tree) []string {
	args := make([]string, 0, len(trees))
	for _, t := range trees {
		mode := "rw"
		switch {
		case t.ReadOnly:
			mode = "ro"
		case t.TopReadOnly:
			mode = "rotop"
		}
		if t.Recursive {
			mode += "+rec"
		}
		if t.Propagate {
			mode += "+prop"
		}
		args = append(args, "--tree="+mode+":"+t.Source)
	}
	return args
}

// ParseTree parses a --tree value: "rw:/path", "ro:/path" or
// "rotop+rec:/path" (see Tree.TopReadOnly), with "+rec" after the mode
// ("ro+rec:/path") to serve the mounts below the path too, then "+prop"
// to receive the host's later mounts (see Tree.Propagate).
func ParseTree(v string) (Tree, error) {
	mode, path, ok := strings.Cut(v, ":")
	mode, prop := strings.CutSuffix(mode, "+prop")
	mode, rec := strings.CutSuffix(mode, "+rec")
	if !ok || (mode != "ro" && mode != "rw" && mode != "rotop") || (mode == "rotop" && !rec) {
		return Tree{}, fmt.Errorf("--tree %q: want ro:PATH or rw:PATH (optionally ro+rec: or rw+rec:), or rotop+rec:PATH, each optionally with +prop", v)
	}
	if !strings.HasPrefix(path, "/") {
		return Tree{}, fmt.Errorf("--tree %q: path must be absolute", v)
	}
	return Tree{Source: path, ReadOnly: mode == "ro", TopReadOnly: mode == "rotop", Recursive: rec, Propagate: prop}, nil
}

// Command returns the command that starts `runsc gofer` (binary exe, with
// the global flags globalArgs) in new mount, pid, ipc, uts and net
// namespaces, serving trees[i] on conns[i]. fuse is nil or has one entry
// per tree: the /dev/fuse file of the tree's mount, for passthrough, or
// nil. The caller starts it and closes its copies of conns afterwards.
func Command(exe string, globalArgs []string, trees []Tree, conns, fuse []*os.File) *exec.Cmd {
	var d donation.Agency
	d.Donate("io-fds", conns...)
	if len(fuse) != 0 {
		d.Donate("fuse-fds", fuse...)
	}
	extra, fdArgs := d.TransferExtra(nil)
	args := append(append(append(append([]string{}, globalArgs...), "gofer"), TreeArgs(trees)...), fdArgs...)
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = extra
	// The gofer outlives its caller: it must not hold the caller's
	// stdio (a caller waiting for EOF on a pipe would hang). It logs to
	// --log/--debug-log when given.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: Namespaces, Setsid: true}
	return cmd
}

// Run confines the calling process and serves cfg's trees until every
// connection has closed. It must run as pid 1 of the namespaces Command
// creates.
func Run(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkNamespaced(); err != nil {
		return err
	}
	// Read what needs /proc before the pivot.
	last := caps.Last()
	conns := make([]net.Conn, len(cfg.IOFDs))
	for i, fd := range cfg.IOFDs {
		f := os.NewFile(uintptr(fd), "gofer-io-"+strconv.Itoa(i))
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("gofer: io fd %d: %w", fd, err)
		}
		conns[i] = c
	}
	if err := pivotToTrees(cfg.Trees); err != nil {
		return fmt.Errorf("gofer: %w", err)
	}
	attachers := make([]*host.Attacher, len(cfg.Trees))
	for i, t := range cfg.Trees {
		opts := host.Options{ReadOnly: t.ReadOnly}
		if i < len(cfg.FUSEFDs) && cfg.FUSEFDs[i] >= 0 {
			opts.FUSEDev = cfg.FUSEFDs[i]
		}
		a, err := host.Open(treePath(i), opts)
		if err != nil {
			return fmt.Errorf("gofer: %w", err)
		}
		attachers[i] = a
	}
	if err := dropCapabilities(last, cfg.passthrough()); err != nil {
		return fmt.Errorf("gofer: %w", err)
	}
	if err := installSeccomp(cfg.FUSEFDs); err != nil {
		return fmt.Errorf("gofer: %w", err)
	}
	// As pid 1, the gofer ignores signals it does not handle.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	go func() {
		s := <-sigs
		slog.Debug("gofer exiting on signal", "signal", s)
		os.Exit(0)
	}()
	slog.Debug("gofer serving", "trees", len(cfg.Trees))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Serve(c, attachers[i], p9Logger{tree: i})
			slog.Debug("gofer connection closed", "tree", i)
		}()
	}
	wg.Wait()
	return nil
}

// p9Logger sends the 9P server's messages to the debug log. The server
// logs every message it receives and sends: they are formatted only when
// debug logging is on.
type p9Logger struct{ tree int }

// Printf implements ulog.Logger.
func (l p9Logger) Printf(format string, v ...any) {
	if debugEnabled() {
		slog.Debug(fmt.Sprintf(format, v...), "tree", l.tree)
	}
}

// Print implements ulog.Logger.
func (l p9Logger) Print(v ...any) {
	if debugEnabled() {
		slog.Debug(fmt.Sprint(v...), "tree", l.tree)
	}
}

// debugEnabled reports whether debug messages are logged.
func debugEnabled() bool {
	return slog.Default().Enabled(context.Background(), slog.LevelDebug)
}
