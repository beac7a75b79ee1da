package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/container"
	"github.com/runsc/runsc/network"
	"github.com/runsc/runsc/specutils"
)

func init() {
	register(&command{name: "do", synopsis: "run a command in a sandbox over the host root, read-only", run: runDo})
}

// runDo implements `runsc do [flags] -- CMD...`: the command runs in a
// sandbox whose root is --root-dir (default /) served read-only by a
// gofer, under a memory overlay (with --overlay2=none, a read-only root;
// --volatile picks nspawn's modes instead), with a private /tmp, the
// --bind and --tmpfs mounts, and the process settings the flags give.
// With --volatile=yes and no --root-dir the root is an empty tmpfs
// holding only the mounts, as osctl's exportfs servers run. The sandbox's
// network is --network's: with veth, a veth pair to the host
// (--veth-host, --address). The exit status is the command's.
func runDo(g *globals, args []string) error {
	fs := newFlagSet("do", "-- CMD [ARG...]")
	rootDir := fs.String("root-dir", "", "host directory to use as the root, read-only (default /; with --volatile=yes none: an empty root)")
	cwd := fs.String("cwd", "", "working directory inside the sandbox (default: the current directory where the root has it, else /)")
	hostname := fs.String("hostname", "runsc-do", "the sandbox's hostname")
	user := fs.String("user", "", "UID[:GID] to run the command as (default 0:0; GID 0 when not given, as runsc exec --user)")
	var mounts doMountFlags
	var envs repeated
	fs.Var(mounts.flag("bind"), "bind", "SRC:DST[:ro] bind mount of a host path, served by a gofer, read-only all the way down with ro (repeatable)")
	fs.Var(mounts.flag("tmpfs"), "tmpfs", "DST[:OPTIONS] tmpfs mount, OPTIONS as mount(8)'s (size=64m,mode=0755) (repeatable)")
	fs.Var(&envs, "env", "K=V environment variable, over the caller's environment (repeatable)")
	fs.StringVar(&g.Volatile, "volatile", g.Volatile, "no, yes, state or overlay, as systemd-nspawn's --volatile")
	fs.StringVar(&g.Network, "network", g.Network, "network: sandbox or none (a new namespace, lo only), host (the host's), veth (a new one wired to the host by a veth pair)")
	vethHost := fs.String("veth-host", "", "with --network=veth: the host end's name (default derived from the sandbox ID)")
	address := fs.String("address", "", "with --network=veth: the sandbox end's address/prefix, with a default route through it and a host route to it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cmd := fs.Args()
	if len(cmd) == 0 {
		return fmt.Errorf("do: no command given")
	}
	if err := specutils.ValidateVolatile("do: --volatile", g.Volatile); err != nil {
		return err
	}
	id := "runsc-do-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	f := createFlags{doRoot: true}
	if err := vethFlags(g, &f, id, *vethHost, *address); err != nil {
		return err
	}
	spec := specutils.DefaultSpec()
	spec.Hostname = *hostname
	spec.Process.Terminal = false
	spec.Process.Args = cmd
	spec.Process.NoNewPrivileges = true
	env, err := doEnv(os.Environ(), envs)
	if err != nil {
		return err
	}
	spec.Process.Env = env
	if *user != "" {
		if spec.Process.User, err = parseDoUser(*user); err != nil {
			return err
		}
	}
	extra, err := mounts.specMounts()
	if err != nil {
		return err
	}
	spec.Mounts = append(append(spec.Mounts, specs.Mount{
		Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"},
	}), extra...)
	root := *rootDir
	if root == "" && g.Volatile == specutils.VolatileYes {
		// An empty root: the gofer serves an empty directory, which
		// the sandbox does not even show.
		empty, err := os.MkdirTemp("", "runsc-do-empty-")
		if err != nil {
			return fmt.Errorf("do: %w", err)
		}
		defer os.RemoveAll(empty)
		root, f.emptyRoot = empty, true
	}
	if root == "" {
		root = "/"
	}
	if root, err = filepath.Abs(root); err != nil {
		return fmt.Errorf("do: --root-dir %q: %w", *rootDir, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return fmt.Errorf("do: --root-dir %q: not a directory", *rootDir)
	}
	dir := *cwd
	if dir == "" {
		// The caller's directory where the root has it, else /.
		dir = "/"
		if wd, err := os.Getwd(); err == nil && !f.emptyRoot {
			if fi, err := os.Stat(filepath.Join(root, wd)); err == nil && fi.IsDir() {
				dir = wd
			}
		}
	}
	// The host's files are never written: the root is always under the
	// memory overlay, which takes the mount points the sandbox makes;
	// with --overlay2=none (and no volatile mode) the root is read-only
	// too.
	readonly := (g.Overlay2 == "none" || g.Overlay2 == "root:none") && g.Volatile == specutils.VolatileNo
	g.Overlay2 = "root:memory"
	spec.Root = &specs.Root{Path: root, Readonly: readonly}
	spec.Process.Cwd = dir
	if err := specutils.ValidateSpec(spec); err != nil {
		return fmt.Errorf("do: %w", err)
	}
	// The container is made from the spec in memory; its bundle (as
	// state reports it) is the root directory.
	f.bundle = root
	return runContainer(g, id, f, spec, false)
}

// vethFlags sets up f.veth from --veth-host and --address with
// --network=veth, and refuses them otherwise.
func vethFlags(g *globals, f *createFlags, id, host, address string) error {
	if g.Network != string(container.NetworkVeth) {
		if host != "" || address != "" {
			return fmt.Errorf("do: --veth-host and --address need --network=veth")
		}
		return nil
	}
	f.veth = &network.Veth{HostName: host}
	if f.veth.HostName == "" {
		f.veth.HostName = network.DefaultVethName(id)
	}
	if err := specutils.ValidateLinkName(f.veth.HostName); err != nil {
		return fmt.Errorf("do: --veth-host: %v", err)
	}
	if address != "" {
		a, err := network.ParseAddress(address)
		if err != nil {
			return fmt.Errorf("do: %w", err)
		}
		f.veth.Address = a
	}
	return nil
}
