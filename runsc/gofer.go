package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"unsafe"

	"github.com/runsc/runsc/donation"
	"github.com/runsc/runsc/gofer"
	"golang.org/x/sys/unix"
)

func init() {
	register(&command{
		name:     "gofer",
		synopsis: "serve host trees over 9P to a sandbox (internal)",
		hidden:   true,
		run:      runGofer,
	})
}

// treeFlags collects repeated --tree flags.
type treeFlags []gofer.Tree

func (t *treeFlags) String() string {
	s := make([]string, len(*t))
	for i, tr := range *t {
		s[i] = tr.Source
	}
	return strings.Join(s, ",")
}

func (t *treeFlags) Set(v string) error {
	tr, err := gofer.ParseTree(v)
	if err != nil {
		return err
	}
	*t = append(*t, tr)
	return nil
}

// runGofer implements `runsc gofer --tree=MODE:PATH... --io-fds=N,...`.
// Started by hand (not as pid 1 of its own namespaces), it starts itself
// again in new namespaces and waits for that copy.
func runGofer(g *globals, args []string) error {
	nameProcess("runsc-gofer")
	fs := newFlagSet("gofer", "")
	var trees treeFlags
	fs.Var(&trees, "tree", "tree to serve, ro:PATH or rw:PATH (repeat; tree i is served on the i-th io fd)")
	ioFDs := fs.String("io-fds", "", "comma-separated connected unix socket fds, one per --tree")
	fuseFDs := fs.String("fuse-fds", "", "comma-separated /dev/fuse fds for passthrough, one per --tree (-1 for none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("gofer: unexpected argument %q", fs.Arg(0))
	}
	fds, err := donation.ParseFDs("io-fds", *ioFDs, false)
	if err != nil {
		return fmt.Errorf("gofer: %w", err)
	}
	fuse, err := donation.ParseFDs("fuse-fds", *fuseFDs, true)
	if err != nil {
		return fmt.Errorf("gofer: %w", err)
	}
	cfg := gofer.Config{Trees: trees, IOFDs: fds, FUSEFDs: fuse}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if os.Getpid() == 1 {
		return gofer.Run(cfg)
	}
	return relaunchGofer(g, cfg)
}

// relaunchGofer runs the gofer in new namespaces and relays its exit
// status and termination signals.
func relaunchGofer(g *globals, cfg gofer.Config) error {
	files := make([]*os.File, len(cfg.IOFDs))
	for i, fd := range cfg.IOFDs {
		files[i] = os.NewFile(uintptr(fd), "io-"+strconv.Itoa(i))
	}
	var fuse []*os.File
	for i, fd := range cfg.FUSEFDs {
		var f *os.File
		if fd >= 0 {
			f = os.NewFile(uintptr(fd), "fuse-"+strconv.Itoa(i))
			files = append(files, f)
		}
		fuse = append(fuse, f)
	}
	cmd := gofer.Command("/proc/self/exe", g.args, cfg.Trees, files[:len(cfg.IOFDs)], fuse)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting gofer in new namespaces: %w", err)
	}
	for _, f := range files {
		f.Close()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(unix.WaitStatus); ok && st.Signaled() {
			return exitError(128 + int(st.Signal()))
		}
		return exitError(ee.ExitCode())
	}
	return err
}

// nameProcess names the process and every thread it has yet (threads
// made later inherit the name), as ps, top and perf show them: started
// from a copy of runsc by descriptor (/proc/self/fd/N), it would
// otherwise be "N".
func nameProcess(name string) {
	b := append([]byte(name), 0)
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		os.WriteFile("/proc/self/task/"+t.Name()+"/comm", []byte(name), 0)
	}
}
