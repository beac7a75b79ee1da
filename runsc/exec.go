package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/container"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

func init() {
	register(&command{name: "exec", synopsis: "run a process in a running container", run: runExec})
}

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runExec implements `runsc exec [flags] ID [COMMAND [ARG...]]`, as runc
// does: without --process, the process takes the container's process
// settings with the command, --cwd, --env, --user, --cap and --tty
// applied over them.
func runExec(g *globals, args []string) error {
	fs := newFlagSet("exec", "ID [COMMAND [ARG...]]")
	processFile := fs.String("process", "", "path to a process.json (OCI spec process)")
	fs.StringVar(processFile, "p", "", "path to a process.json (short)")
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "do not wait for the process (short)")
	pidFile := fs.String("pid-file", "", "file to write the process's pid to")
	tty := fs.Bool("tty", false, "give the process a terminal")
	fs.BoolVar(tty, "t", false, "give the process a terminal (short)")
	consoleSocket := fs.String("console-socket", "", "unix socket that receives the pty master")
	cwd := fs.String("cwd", "", "working directory")
	user := fs.String("user", "", "UID[:GID]")
	fs.StringVar(user, "u", "", "UID[:GID] (short)")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs")
	var env, caps, gids listFlag
	fs.Var(&env, "env", "KEY=VALUE to add to the environment (repeat)")
	fs.Var(&env, "e", "KEY=VALUE (short)")
	fs.Var(&caps, "cap", "capability to add (repeat)")
	fs.Var(&caps, "c", "capability to add (short)")
	fs.Var(&gids, "additional-gids", "additional group (repeat)")
	fs.Var(&gids, "g", "additional group (short)")
	fs.Int("preserve-fds", 0, "accepted for runc compatibility (must be 0)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return fmt.Errorf("exec: want a container ID")
	}
	c, err := container.Load(g.Root, rest[0])
	if err != nil {
		return err
	}
	defer c.Close()
	var p *specs.Process
	if *processFile != "" {
		data, err := os.ReadFile(*processFile)
		if err != nil {
			return fmt.Errorf("exec: --process: %w", err)
		}
		if p, err = specutils.ParseProcess(data); err != nil {
			return fmt.Errorf("exec: --process %s: %w", *processFile, err)
		}
	} else {
		if len(rest) < 2 {
			return fmt.Errorf("exec: want a command (or --process)")
		}
		spec, err := c.Spec()
		if err != nil {
			return err
		}
		cp := *spec.Process
		p = &cp
		p.Args = rest[1:]
		p.Terminal = *tty
		p.ConsoleSize = nil
		if *cwd != "" {
			p.Cwd = *cwd
		}
		p.Env = append(append([]string{}, p.Env...), env...)
		if *user != "" {
			if err := parseUser(*user, &p.User); err != nil {
				return fmt.Errorf("exec: --user %q: %w", *user, err)
			}
		}
		for _, gid := range gids {
			n, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return fmt.Errorf("exec: --additional-gids %q: not a number", gid)
			}
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
		}
		if len(caps) > 0 {
			if p.Capabilities == nil {
				p.Capabilities = &specs.LinuxCapabilities{}
			} else {
				cc := *p.Capabilities
				p.Capabilities = &cc
			}
			for _, cap := range caps {
				if _, ok := specutils.CapabilityNumber(cap); !ok {
					return fmt.Errorf("exec: --cap %q: unknown capability", cap)
				}
				p.Capabilities.Bounding = append(p.Capabilities.Bounding, cap)
				p.Capabilities.Effective = append(p.Capabilities.Effective, cap)
				p.Capabilities.Permitted = append(p.Capabilities.Permitted, cap)
			}
		}
		if *noNewPrivs {
			p.NoNewPrivileges = true
		}
	}
	if len(p.Args) == 0 {
		return fmt.Errorf("exec: process.args must not be empty")
	}
	opts := container.ExecOpts{Process: p, Stdio: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
	var relay *consoleRelay
	if p.Terminal {
		if *consoleSocket != "" {
			if opts.Console, err = container.DialConsole(*consoleSocket); err != nil {
				return err
			}
			defer opts.Console.Close()
		} else if *detach {
			return fmt.Errorf("exec: --tty with --detach needs --console-socket")
		} else {
			if relay, err = newConsoleRelay(); err != nil {
				return err
			}
			defer relay.close()
			opts.Console = relay.theirs
		}
	}
	cfg, err := g.config()
	if err != nil {
		return err
	}
	var fw *signalForwarder
	if !*detach {
		fw = catchSignals(p.Terminal)
		defer fw.stop()
	}
	proc, err := c.Exec(cfg, opts)
	if err != nil {
		return err
	}
	// Other commands on the container may run while this one waits.
	c.Close()
	if *pidFile != "" {
		path, err := filepath.Abs(*pidFile)
		if err == nil {
			err = container.WritePIDFile(path, proc.Pid)
		}
		if err != nil {
			return fmt.Errorf("exec: --pid-file: %w", err)
		}
	}
	if *detach {
		proc.Release()
		return nil
	}
	if relay != nil {
		if err := relay.receive(); err != nil {
			return err
		}
		relay.relay()
	}
	fw.forward(func(sig unix.Signal) { proc.Signal(sig) })
	ps, err := proc.Wait()
	fw.stop()
	if relay != nil {
		relay.drain()
	}
	if err != nil {
		return fmt.Errorf("exec: waiting for the process: %w", err)
	}
	return exitError(boot.ExitCode(ps.Sys().(syscall.WaitStatus)))
}

// parseUser parses UID[:GID].
func parseUser(s string, u *specs.User) error {
	uidStr, gidStr, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidStr, 10, 32)
	if err != nil {
		return fmt.Errorf("uid %q: not a number", uidStr)
	}
	u.UID = uint32(uid)
	if hasGID {
		gid, err := strconv.ParseUint(gidStr, 10, 32)
		if err != nil {
			return fmt.Errorf("gid %q: not a number", gidStr)
		}
		u.GID = uint32(gid)
	}
	return nil
}
