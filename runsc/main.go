// Command runsc is a sandbox runtime for OCI containers: the processes of a
// container run in a sandbox that sees no host file system, every file
// coming over 9P from a separate, confined gofer process. It speaks the
// runc command line.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/runsc/runsc/network"
)

// globals are the flags given before the command name.
type globals struct {
	// Root is the directory holding container state.
	Root string
	// Debug enables debug logging.
	Debug bool
	// DebugLog is a file that receives debug logs.
	DebugLog string
	// Log is the log file (default stderr).
	Log string
	// LogFormat is "text" or "json".
	LogFormat string
	// Overlay2 is the root overlay: "root:memory", "none", or "" for
	// the command's default (none for bundles, root:memory for do).
	Overlay2 string
	// Network is the sandbox's network: sandbox, none, host or veth
	// (see container.NetworkMode).
	Network string
	// Volatile is the --volatile mode (see specutils.VolatileNo...).
	Volatile string
	// UserNS is "pod" (a user namespace per pod) or "host".
	UserNS string
	// AdoptNetNS lets pods adopt the network namespace they join
	// (--adopt-netns).
	AdoptNetNS bool
	// SystemdCgroup reads linux.cgroupsPath as slice:prefix:name.
	SystemdCgroup bool
	// LogFD and DebugLogFD, if not -1, are descriptors to log to
	// instead of opening Log and DebugLog (a sandbox gets them from
	// its creator).
	LogFD, DebugLogFD int
	// args are the global flags as given, passed on to child processes.
	args []string
	// command is the command's name.
	command string
	// pendingDebugLog, if not nil, opens a --debug-log naming the
	// container ID once it is known (see resolveDebugLog).
	pendingDebugLog func(path string) error
}

// command is one runsc subcommand.
type command struct {
	name     string
	synopsis string
	// hidden commands are internal: started by runsc itself.
	hidden bool
	run    func(g *globals, args []string) error
}

// commands is the registry, filled by each command's init.
var commands = map[string]*command{}

// register adds a command to the registry.
func register(c *command) { commands[c.name] = c }

func main() {
	os.Exit(runMain(os.Args[1:], os.Stderr))
}

// runMain parses the global flags, sets up logging and runs the command.
// It returns the exit status.
func runMain(argv []string, stderr io.Writer) int {
	g := &globals{}
	fs := flag.NewFlagSet("runsc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.Root, "root", "/var/run/runsc", "directory holding container state")
	fs.BoolVar(&g.Debug, "debug", false, "enable debug logging")
	fs.StringVar(&g.DebugLog, "debug-log", "", "also write debug logs to this file")
	fs.StringVar(&g.Log, "log", "", "write logs to this file instead of stderr")
	fs.StringVar(&g.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&g.Overlay2, "overlay2", "", "container root overlay: none (the default for bundles: writes go to the root's directory through the gofer) or root:memory (writes stay in a tmpfs layer inside the sandbox; the default of do)")
	fs.StringVar(&g.Volatile, "volatile", "no", "root as systemd-nspawn's --volatile: no (as --overlay2 says), yes (a tmpfs root with the image's /usr read-only), state (the image read-only, /var a tmpfs), overlay (the image read-only under a tmpfs overlay); the annotation dev.runsc.volatile overrides it per container")
	fs.StringVar(&g.Network, "network", "sandbox", "network: sandbox (the spec's network namespace, lo up in a new one), none (always a new one, lo only), host (the host's), veth (runsc do: a new one wired to the host by a veth pair)")
	fs.BoolVar(&g.AdoptNetNS, "adopt-netns", true, "a pod in a user namespace of its own takes over a network namespace the spec names by a bind-mounted file (as CRI and podman make them), moving its links into one the pod owns, so that CAP_NET_ADMIN reaches them; false joins it as it is")
	fs.StringVar(&g.UserNS, "userns", "pod", "user namespace: pod (each pod in its own, container root an unprivileged host uid) or host (weaker: container root is host root)")
	fs.IntVar(&g.LogFD, "log-fd", -1, "internal: write logs to this descriptor instead of --log")
	fs.IntVar(&g.DebugLogFD, "debug-log-fd", -1, "internal: write debug logs to this descriptor instead of --debug-log")
	fs.BoolVar(&g.SystemdCgroup, "systemd-cgroup", false, "linux.cgroupsPath is systemd's slice:prefix:name, made as systemd names it (runsc makes it in the cgroup file system itself)")
	fs.String("rootless", "auto", "accepted for runc compatibility")
	fs.String("criu", "", "accepted for runc compatibility")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.BoolVar(showVersion, "v", false, "print the version and exit (short)")
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, os.Stdout)
			return 0
		}
		fmt.Fprintf(stderr, "runsc: %s\n", oneLine(err.Error()))
		return 1
	}
	if *showVersion {
		printVersion(os.Stdout)
		return 0
	}
	rest := fs.Args()
	g.args = append([]string{}, argv[:len(argv)-len(rest)]...)
	if err := applyEnvFlags(fs, g); err != nil {
		fmt.Fprintf(stderr, "runsc: %s\n", oneLine(err.Error()))
		return 1
	}
	if len(rest) == 0 {
		usage(fs, stderr)
		return 1
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "runsc: unknown command %q (see runsc --help)\n", rest[0])
		return 1
	}
	g.command = cmd.name
	current = g
	if !cmd.hidden {
		// Before anything switches a thread's namespace. The
		// internal commands (sandbox, gofer, init) hold nothing of
		// the host's namespaces.
		network.RecordStartNS()
	}
	setProcs(cmd.name)
	closeLog, err := setupLogging(g, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "runsc: %v\n", err)
		return 1
	}
	defer closeLog()
	if err := cmd.run(g, rest[1:]); err != nil {
		var ee exitError
		switch {
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ee):
			return int(ee)
		}
		logError(g, err)
		fmt.Fprintf(stderr, "runsc: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// exitError makes runMain exit with that status and no message.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// oneLine folds a message onto a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// usage prints the global usage.
func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "usage: runsc [global flags] COMMAND [flags] [args]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].synopsis)
	}
	fmt.Fprintf(w, "\nglobal flags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// flagsEnv is the environment variable (set by containerd-shim-runsc-v1
// from a runsc.toml) holding global flags as a JSON object of names
// (without "--") to values. A flag given on the command line wins.
const flagsEnv = "RUNSC_FLAGS"

// applyEnvFlags sets the global flags of flagsEnv that the command line
// did not set, and adds them to g.args for the processes runsc starts.
func applyEnvFlags(fs *flag.FlagSet, g *globals) error {
	v := os.Getenv(flagsEnv)
	if v == "" {
		return nil
	}
	var flags map[string]string
	if err := json.Unmarshal([]byte(v), &flags); err != nil {
		return fmt.Errorf("%s: want a JSON object of flag names to values: %w", flagsEnv, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	names := make([]string, 0, len(flags))
	for name := range flags {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if given[name] {
			continue
		}
		if fs.Lookup(name) == nil || name == "version" || name == "v" {
			return fmt.Errorf("%s: unknown global flag %q", flagsEnv, name)
		}
		if err := fs.Set(name, flags[name]); err != nil {
			return fmt.Errorf("%s: flag %q: %w", flagsEnv, name, err)
		}
		g.args = append(g.args, "--"+name+"="+flags[name])
	}
	return nil
}

// current is the running command's globals, for parseFlags.
var current *globals

// flagArgs holds each command's argument synopsis for its usage line.
var flagArgs = map[string]string{}

// newFlagSet returns the flag set of a command. Errors are reported by
// parseFlags in one line; -h prints the usage on stdout.
func newFlagSet(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	flagArgs[name] = args
	return fs
}

// parseFlags parses a command's flags. A bad flag is an error naming it,
// prefixed with the command.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stdout, "usage: runsc %s [flags] %s\n", fs.Name(), flagArgs[fs.Name()])
		fs.SetOutput(os.Stdout)
		fs.PrintDefaults()
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	// The container ID, for a --debug-log naming it.
	if current != nil && fs.NArg() > 0 {
		if err := current.resolveDebugLog(fs.Arg(0)); err != nil {
			return err
		}
	}
	return nil
}

// setProcs sizes the Go scheduler for the command, unless GOMAXPROCS is
// set. A run starts four Go processes at once (this command, the gofer,
// the sandbox, the container's init); with a P per CPU each, their idle
// Ps spin and hand goroutines between threads, waking CPUs the others
// need, which on a small machine cost more than the parallelism buys.
// The CLI commands and the init do one thing after another: one P. The
// sandbox and the gofer relay every file request between them, so each
// gets half of the CPUs.
func setProcs(cmd string) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	n := 1
	if cmd == "boot" || cmd == "gofer" {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	runtime.GOMAXPROCS(n)
}
