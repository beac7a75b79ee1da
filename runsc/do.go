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

// runDo implements `runsc do [--root-dir DIR] [--cwd DIR] -- CMD...`: the
// command runs in a sandbox whose root is DIR (default /) served
// read-only by a gofer, under a memory overlay (with --overlay2=none, a
// read-only root), with a private /tmp. The exit status is the command's.
// The sandbox's network is --network's: with veth, a veth pair to the
// host (--veth-host, --address).
func runDo(g *globals, args []string) error {
	fs := newFlagSet("do", "-- CMD [ARG...]")
	rootDir := fs.String("root-dir", "/", "host directory to use as the root, read-only")
	cwd := fs.String("cwd", "", "working directory inside the sandbox (default: the current directory)")
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
	id := "runsc-do-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	f := createFlags{bundle: *rootDir, doRoot: true}
	if g.Network == string(container.NetworkVeth) {
		f.veth = &network.Veth{HostName: *vethHost}
		if f.veth.HostName == "" {
			f.veth.HostName = network.DefaultVethName(id)
		}
		if err := specutils.ValidateLinkName(f.veth.HostName); err != nil {
			return fmt.Errorf("do: --veth-host: %v", err)
		}
		if *address != "" {
			a, err := network.ParseAddress(*address)
			if err != nil {
				return fmt.Errorf("do: %w", err)
			}
			f.veth.Address = a
		}
	} else if *vethHost != "" || *address != "" {
		return fmt.Errorf("do: --veth-host and --address need --network=veth")
	}
	root, err := filepath.Abs(*rootDir)
	if err != nil {
		return fmt.Errorf("do: --root-dir %q: %w", *rootDir, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return fmt.Errorf("do: --root-dir %q: not a directory", *rootDir)
	}
	dir := *cwd
	if dir == "" {
		if dir, err = os.Getwd(); err != nil {
			dir = "/"
		}
	}
	if g.Overlay2 == "" {
		g.Overlay2 = "root:memory"
	}
	spec := specutils.DefaultSpec()
	// The host's files are never written: without the memory overlay
	// (--overlay2=none) the root itself is read-only.
	spec.Root = &specs.Root{Path: root, Readonly: g.Overlay2 == "none" || g.Overlay2 == "root:none"}
	spec.Hostname = "runsc-do"
	spec.Process.Terminal = false
	spec.Process.Args = cmd
	spec.Process.Cwd = dir
	spec.Process.Env = os.Environ()
	spec.Process.NoNewPrivileges = true
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"},
	})
	if err := specutils.ValidateSpec(spec); err != nil {
		return fmt.Errorf("do: %w", err)
	}
	// The container is made from the spec in memory; its bundle (as
	// state reports it) is the root directory.
	f.bundle = root
	return runContainer(g, id, f, spec, false)
}
