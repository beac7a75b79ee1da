package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/container"
	"github.com/runsc/runsc/network"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

func init() {
	register(&command{name: "create", synopsis: "create a container", run: runCreate})
	register(&command{name: "start", synopsis: "start a created container", run: runStart})
	register(&command{name: "run", synopsis: "create and start a container, and wait for it", run: runRun})
	register(&command{name: "state", synopsis: "print a container's OCI state", run: runState})
	register(&command{name: "kill", synopsis: "send a signal to a container", run: runKill})
	register(&command{name: "delete", synopsis: "delete a container", run: runDelete})
	register(&command{name: "wait", synopsis: "wait for a container to exit", run: runWait})
}

// config returns the container configuration from the global flags.
func (g *globals) config() (container.Config, error) {
	cfg := container.Config{Root: g.Root, Exe: "/proc/self/exe", GlobalArgs: g.args}
	exe, err := os.Executable()
	if err == nil {
		cfg.Exe = exe
	}
	switch g.Overlay2 {
	case "root:memory", "memory", "all:memory":
		cfg.Overlay = boot.OverlayMemory
	case "", "none", "root:none":
		cfg.Overlay = boot.OverlayNone
	default:
		return cfg, fmt.Errorf("--overlay2 %q: want root:memory or none", g.Overlay2)
	}
	switch g.UserNS {
	case "pod":
	case "host":
		cfg.HostUserNS = true
	default:
		return cfg, fmt.Errorf("--userns %q: want pod or host", g.UserNS)
	}
	cfg.SystemdCgroup = g.SystemdCgroup
	cfg.AdoptNetNS = g.AdoptNetNS
	cfg.SandboxLog = g.Log
	if g.DebugLog != "" && g.pendingDebugLog == nil {
		cfg.SandboxDebugLog = g.DebugLog
		if strings.HasSuffix(g.DebugLog, "/") {
			cfg.SandboxDebugLog += "runsc.boot.log"
		}
	}
	if err := specutils.ValidateVolatile("--volatile", g.Volatile); err != nil {
		return cfg, err
	}
	cfg.Volatile = g.Volatile
	cfg.Network = container.NetworkMode(g.Network)
	if err := cfg.Network.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// oneID returns the single container ID argument.
func oneID(fs interface{ Args() []string }, cmd string) (string, error) {
	args := fs.Args()
	if len(args) != 1 {
		return "", fmt.Errorf("%s: want exactly one container ID, got %d arguments", cmd, len(args))
	}
	return args[0], nil
}

// createFlags are the flags of create and run.
type createFlags struct {
	bundle, pidFile, consoleSocket string
	// doRoot is set by runsc do: its spec is made in memory and its
	// bundle is the root directory, which holds no runtime config.
	doRoot bool
	// veth (runsc do --network=veth) wires the sandbox to the host.
	veth *network.Veth
	// emptyRoot (runsc do --volatile=yes without --root-dir): the root
	// is an empty tmpfs.
	emptyRoot bool
}

func (c *createFlags) register(fs interface {
	StringVar(*string, string, string, string)
	Bool(string, bool, string) *bool
	Int(string, int, string) *int
}) {
	fs.StringVar(&c.bundle, "bundle", ".", "path to the bundle directory")
	fs.StringVar(&c.bundle, "b", ".", "path to the bundle directory (short)")
	fs.StringVar(&c.pidFile, "pid-file", "", "file to write the container init's pid to")
	fs.StringVar(&c.consoleSocket, "console-socket", "", "unix socket that receives the pty master when process.terminal is true")
	fs.Bool("no-pivot", false, "accepted for runc compatibility")
	fs.Bool("no-new-keyring", false, "accepted for runc compatibility")
	fs.Int("preserve-fds", 0, "accepted for runc compatibility (must be 0)")
}

// create runs the create command's work and returns the container,
// locked. console, if not nil, receives the pty master instead of
// --console-socket. spec, if not nil, is the bundle's spec already
// loaded.
func create(g *globals, id string, f createFlags, console *os.File, spec *specs.Spec) (*container.Container, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(f.bundle)
	if err != nil {
		return nil, fmt.Errorf("--bundle %q: %w", f.bundle, err)
	}
	if spec == nil {
		if spec, err = specutils.LoadSpec(bundle); err != nil {
			return nil, err
		}
	}
	var rc *specutils.RuntimeConfig
	if !f.doRoot {
		if rc, err = specutils.LoadRuntimeConfig(bundle, spec.Annotations); err != nil {
			return nil, err
		}
	}
	pidFile := f.pidFile
	if pidFile != "" {
		if pidFile, err = filepath.Abs(pidFile); err != nil {
			return nil, fmt.Errorf("--pid-file %q: %w", f.pidFile, err)
		}
	}
	return container.Create(cfg, container.CreateOpts{
		ID: id, Bundle: bundle, Spec: spec, PIDFile: pidFile, ConsoleSocket: f.consoleSocket,
		Console: console, Stdio: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		RuntimeConfig: rc, Veth: f.veth, EmptyRoot: f.emptyRoot,
	})
}

func runCreate(g *globals, args []string) error {
	fs := newFlagSet("create", "ID")
	var f createFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs, "create")
	if err != nil {
		return err
	}
	c, err := create(g, id, f, nil, nil)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// load parses a command with a single ID argument and loads it.
func load(g *globals, name string, args []string) (*container.Container, error) {
	fs := newFlagSet(name, "ID")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return loadArg(g, fs, name)
}

// loadArg loads the container named by the flag set's single argument.
func loadArg(g *globals, fs interface{ Args() []string }, name string) (*container.Container, error) {
	id, err := oneID(fs, name)
	if err != nil {
		return nil, err
	}
	return container.Load(g.Root, id)
}

func runStart(g *globals, args []string) error {
	c, err := load(g, "start", args)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Start()
}

func runState(g *globals, args []string) error {
	c, err := load(g, "state", args)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.OCIState()
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// signalForwarder sends the signals `runsc run` receives to the
// container's init, as runc does (with a terminal, the pty delivers the
// terminal's own signals).
type signalForwarder struct {
	sigs    chan os.Signal
	done    chan struct{}
	stopped sync.Once
}

// catchSignals starts catching the signals to forward, before the
// container exists: one that arrives while it is created and started is
// kept and forwarded once forward is called, rather than killing this
// process and orphaning the container.
func catchSignals(terminal bool) *signalForwarder {
	f := &signalForwarder{sigs: make(chan os.Signal, 16), done: make(chan struct{})}
	list := []os.Signal{unix.SIGTERM, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2}
	if !terminal {
		list = append(list, unix.SIGINT, unix.SIGQUIT)
	}
	signal.Notify(f.sigs, list...)
	return f
}

// forward passes the caught signals to send until stop.
func (f *signalForwarder) forward(send func(unix.Signal)) {
	go func() {
		for {
			select {
			case s := <-f.sigs:
				send(s.(unix.Signal))
			case <-f.done:
				return
			}
		}
	}()
}

// stop stops catching and forwarding; later calls do nothing.
func (f *signalForwarder) stop() {
	f.stopped.Do(func() {
		signal.Stop(f.sigs)
		close(f.done)
	})
}

// parseSignal accepts a number, a name, or a name without "SIG".
func parseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %q: out of range", s)
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return int(sig), nil
	}
	return 0, fmt.Errorf("signal %q: unknown signal", s)
}

func runKill(g *globals, args []string) error {
	fs := newFlagSet("kill", "ID [SIGNAL]")
	all := fs.Bool("all", false, "signal every process of the container")
	fs.BoolVar(all, "a", false, "signal every process of the container (short)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) < 1 || len(rest) > 2 {
		return fmt.Errorf("kill: want ID [SIGNAL], got %d arguments", len(rest))
	}
	sig := int(unix.SIGTERM)
	if len(rest) == 2 {
		var err error
		if sig, err = parseSignal(rest[1]); err != nil {
			return fmt.Errorf("kill: %w", err)
		}
	}
	c, err := container.Load(g.Root, rest[0])
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Kill(unix.Signal(sig), *all)
}

func runDelete(g *globals, args []string) error {
	fs := newFlagSet("delete", "ID")
	force := fs.Bool("force", false, "kill the container if it is running")
	fs.BoolVar(force, "f", false, "kill the container if it is running (short)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadArg(g, fs, "delete")
	if *force && errors.Is(err, container.ErrNotExist) {
		// Gone already (containerd's shim deletes twice): done, as
		// with runc.
		return container.RemoveStale(g.Root, fs.Arg(0))
	}
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Delete(*force)
}

func runWait(g *globals, args []string) error {
	c, err := load(g, "wait", args)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Wait()
	if err != nil {
		return err
	}
	code := st.Code
	if !st.Known {
		// runsc is not the init's parent: its caller reaped it.
		code = -1
		fmt.Fprintf(os.Stderr, "runsc: wait: container %q has exited; its exit status went to the process that reaped it\n", c.ID)
	}
	out, _ := json.Marshal(struct {
		ID         string `json:"id"`
		ExitStatus int    `json:"exitStatus"`
	}{c.ID, code})
	fmt.Println(string(out))
	return nil
}

// runRun implements run: create, start, and unless detached wait and
// delete, exiting with the container's status.
func runRun(g *globals, args []string) error {
	fs := newFlagSet("run", "ID")
	var f createFlags
	f.register(fs)
	detach := fs.Bool("detach", false, "do not wait for the container")
	fs.BoolVar(detach, "d", false, "do not wait for the container (short)")
	fs.Bool("keep", false, "accepted for runc compatibility")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs, "run")
	if err != nil {
		return err
	}
	// The spec is loaded once, here, and handed to create.
	spec, err := specutils.LoadSpec(f.bundle)
	if err != nil {
		return err
	}
	return runContainer(g, id, f, spec, *detach)
}

// runContainer runs the container id of spec (loaded from f.bundle, or made
// in memory by runsc do): create, start, and unless detach, wait and
// delete, returning the container's status as an exitError.
func runContainer(g *globals, id string, f createFlags, spec *specs.Spec, detach bool) error {
	// A foreground container with a terminal and no console socket
	// gets this process's terminal, relayed.
	var relay *consoleRelay
	var err error
	if !detach && f.consoleSocket == "" && spec.Process.Terminal {
		if relay, err = newConsoleRelay(); err != nil {
			return err
		}
		defer relay.close()
	}
	var console *os.File
	if relay != nil {
		console = relay.theirs
	}
	var fw *signalForwarder
	if !detach {
		fw = catchSignals(relay != nil)
		defer fw.stop()
	}
	c, err := create(g, id, f, console, spec)
	if err != nil {
		return err
	}
	if relay != nil {
		if err := relay.receive(); err != nil {
			c.Delete(true)
			return err
		}
	}
	if err := c.Start(); err != nil {
		c.Delete(true)
		return err
	}
	if detach {
		c.Close()
		return nil
	}
	if relay != nil {
		relay.relay()
	}
	init := c.Init()
	fw.forward(func(sig unix.Signal) { init.Signal(sig) })
	st, werr := c.Wait()
	fw.stop()
	if relay != nil {
		relay.drain()
	}
	if c, err = container.Load(g.Root, id); err == nil {
		err = c.Delete(true)
	}
	if werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	return exitError(st.Code)
}
