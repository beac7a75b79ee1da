package main

import (
	"fmt"

	"github.com/runsc/runsc/boot"
)

func init() {
	register(&command{
		name:     "boot",
		synopsis: "run a sandbox (internal)",
		hidden:   true,
		run:      runBoot,
	})
	register(&command{
		name:     "init",
		synopsis: "set up a container and exec its process (internal)",
		hidden:   true,
		run:      runInit,
	})
}

// runBoot implements `runsc boot --controller-fd=N [--new-network]`.
func runBoot(g *globals, args []string) error {
	fs := newFlagSet("boot", "")
	controller := fs.Int("controller-fd", -1, "listening unix socket of the controller")
	newNet := fs.Bool("new-network", false, "the sandbox has a new network namespace: bring up loopback")
	netns := fs.Int("netns-fd", -1, "network namespace for the containers' processes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *controller < 3 {
		return fmt.Errorf("boot: --controller-fd is required")
	}
	return boot.Run(boot.Args{ControllerFD: *controller, NewNetwork: *newNet, NetNSFD: *netns})
}

// runInit implements `runsc init --cid=ID [--console]`.
func runInit(g *globals, args []string) error {
	fs := newFlagSet("init", "")
	cid := fs.String("cid", "", "container ID")
	console := fs.Bool("console", false, "a console socket is passed")
	execMode := fs.Bool("exec", false, "exec a process into a running container")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return boot.RunInit(boot.InitArgs{CID: *cid, Console: *console, Exec: *execMode})
}
