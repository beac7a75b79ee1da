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
}

// Validate checks the configuration before anything is done with it.
func (c *Config) Validate() error {
	if len(c.Trees) == 0 {
		return fmt.Errorf("gofer: no tree to serve (--tree)")
	}
	if len(c.Trees) != len(c.IOFDs) {
		return fmt.Errorf("gofer: %d trees but %d io fds (--io-fds): need one socket per tree", len(c.Trees), len(c.IOFDs))
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

// Args returns the `runsc gofer` arguments for the configuration.
func (c *Config) Args() []string {
	args := make([]string, 0, len(c.Trees)+1)
	for _, t := range c.Trees {
		mode := "rw"
		if t.ReadOnly {
			mode = "ro"
		}
		if t.Recursive {
			mode += "+rec"
		}
		args = append(args, "--tree="+mode+":"+t.Source)
	}
	fds := make([]string, len(c.IOFDs))
	for i, fd := range c.IOFDs {
		fds[i] = strconv.Itoa(fd)
	}
	return append(args, "--io-fds="+strings.Join(fds, ","))
}

// ParseTree parses a --tree value: "rw:/path" or "ro:/path", with
// "+rec" after the mode ("ro+rec:/path") to serve the mounts below the
// path too.
func ParseTree(v string) (Tree, error) {
	mode, path, ok := strings.Cut(v, ":")
	mode, rec := strings.CutSuffix(mode, "+rec")
	if !ok || (mode != "ro" && mode != "rw") {
		return Tree{}, fmt.Errorf("--tree %q: want ro:PATH or rw:PATH (optionally ro+rec: or rw+rec:)", v)
	}
	if !strings.HasPrefix(path, "/") {
		return Tree{}, fmt.Errorf("--tree %q: path must be absolute", v)
	}
	return Tree{Source: path, ReadOnly: mode == "ro", Recursive: rec}, nil
}

// ParseFDs parses a comma-separated --io-fds value.
func ParseFDs(v string) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	var fds []int
	for _, s := range strings.Split(v, ",") {
		fd, err := strconv.Atoi(s)
		if err != nil || fd < 0 {
			return nil, fmt.Errorf("--io-fds %q: %q is not a file descriptor number", v, s)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// Command returns the command that starts `runsc gofer` (binary exe, with
// the global flags globalArgs) in new mount, pid, ipc, uts and net
// namespaces, serving trees[i] on conns[i]. The caller starts it and
// closes its copies of conns afterwards.
func Command(exe string, globalArgs []string, trees []Tree, conns []*os.File) *exec.Cmd {
	cfg := Config{Trees: trees}
	for i := range conns {
		cfg.IOFDs = append(cfg.IOFDs, 3+i)
	}
	args := append(append(append([]string{}, globalArgs...), "gofer"), cfg.Args()...)
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = conns
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
	last := lastCap()
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
		a, err := host.Open(treePath(i), host.Options{ReadOnly: t.ReadOnly})
		if err != nil {
			return fmt.Errorf("gofer: %w", err)
		}
		attachers[i] = a
	}
	if err := dropCapabilities(last); err != nil {
		return fmt.Errorf("gofer: %w", err)
	}
	if err := installSeccomp(); err != nil {
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
