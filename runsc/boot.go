package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/runsc/runsc/boot"
)

func init() {
	// The container's init makes its mount namespace on its thread (see
	// boot.InitArgs.RootFD), then mounts, pivots and execs from it: it
	// keeps the main goroutine on the main thread, the process's leader,
	// from the start. The sandbox starts it as `runsc init ...`.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.LockOSThread()
	}
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
	rootFD := fs.Int("root-fd", -1, "pipe that signals the container's root is mounted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return boot.RunInit(boot.InitArgs{CID: *cid, Console: *console, Exec: *execMode, RootFD: *rootFD})
}
