package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/donation"
)

func init() {
	// The main goroutine keeps the main thread, the process's leader,
	// from the start: a goroutine that moves its locked thread into
	// other namespaces (to fork a container's process) must never get
	// the leader, whose namespaces /proc/self shows; and the container's
	// init makes its mount namespace on its thread, then mounts, pivots
	// and execs from it.
	runtime.LockOSThread()
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
	nameProcess("runsc-sandbox")
	fs := newFlagSet("boot", "")
	controller := fs.Int("controller-fd", -1, "listening unix socket of the controller")
	newNet := fs.Bool("new-network", false, "the sandbox has a new network namespace: bring up loopback")
	lifeline := fs.Int("lifeline-fd", -1, "pipe from the creator: EOF before a byte ends the sandbox")
	sysfs := fs.Int("sysfs-fd", -1, "detached read-only sysfs to use as the sandbox's /sys (made by the creator when the sandbox may not mount one)")
	slot := fs.Int("userns-slot-fd", -1, "locked slot file of the pod's user namespace id range, held while the sandbox lives")
	proc := fs.Int("proc-fd", -1, "detached proc to use as the sandbox's /proc (made by the creator when the sandbox may not mount one)")
	joinedPID := fs.Bool("joined-pid", false, "the sandbox runs in an existing pid namespace, not as pid 1 of a new one")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *controller < 3 {
		return fmt.Errorf("boot: --controller-fd is required")
	}
	return boot.Run(boot.Args{ControllerFD: *controller, NewNetwork: *newNet, LifelineFD: *lifeline, SlotFD: *slot, SysfsFD: *sysfs, ProcFD: *proc, JoinedPID: *joinedPID})
}

// runInit implements `runsc init --cid=ID --spec-fd=N ...`: see
// boot.InitArgs for the descriptors.
func runInit(g *globals, args []string) error {
	fs := newFlagSet("init", "")
	a := boot.InitArgs{}
	fs.StringVar(&a.CID, "cid", "", "container ID")
	fs.IntVar(&a.SpecFD, "spec-fd", -1, "memfd holding the spec")
	fs.IntVar(&a.ReadyFD, "ready-fd", -1, "pipe to report setup on")
	fs.IntVar(&a.StartFD, "start-fd", -1, "pipe that releases the process")
	fs.IntVar(&a.ExecStatusFD, "exec-status-fd", -1, "pipe to report the exec on")
	fs.IntVar(&a.NSFD, "ns-fd", -1, "pidfd of the process whose mount namespace to enter")
	fs.IntVar(&a.RootFD, "root-fd", -1, "pipe that signals the container's root is mounted (create)")
	fs.IntVar(&a.ConsoleFD, "console-fd", -1, "console socket for the pty master")
	fs.BoolVar(&a.Exec, "exec", false, "exec a process into a running container")
	hostBinds := fs.String(boot.HostBindsFlag, "", "comma-separated detached mount trees of the spec's host binds, in spec order (create)")
	relay := fs.Int(boot.RelayFlag, -1, "socket to send the pidfd of the init started in a new pid namespace on (see boot.RelayNewPIDNS)")
	mkdir := fs.String(boot.MkdirFlag, "", "JSON list of directories to make in the container's root (create)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *mkdir != "" {
		if err := json.Unmarshal([]byte(*mkdir), &a.Mkdir); err != nil {
			return fmt.Errorf("init: --%s: %w", boot.MkdirFlag, err)
		}
	}
	if *hostBinds != "" {
		fds, err := donation.ParseFDs(boot.HostBindsFlag, *hostBinds, false)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		a.HostBindFDs = fds
	}
	if *relay >= 0 {
		argv := make([]string, 0, len(os.Args))
		for _, a := range os.Args {
			if !strings.HasPrefix(a, "--"+boot.RelayFlag+"=") {
				argv = append(argv, a)
			}
		}
		keep := append([]int{a.SpecFD, a.ReadyFD, a.StartFD, a.ExecStatusFD, a.NSFD, a.RootFD, a.ConsoleFD}, a.HostBindFDs...)
		return boot.RelayNewPIDNS(argv, *relay, keep)
	}
	for name, fd := range map[string]int{"spec-fd": a.SpecFD, "ready-fd": a.ReadyFD, "exec-status-fd": a.ExecStatusFD, "ns-fd": a.NSFD, "start-fd": a.StartFD} {
		if fd < 3 {
			return fmt.Errorf("init: --%s is required", name)
		}
	}
	if !a.Exec && a.RootFD < 3 {
		return fmt.Errorf("init: --root-fd is required without --exec")
	}
	return boot.RunInit(a)
}
