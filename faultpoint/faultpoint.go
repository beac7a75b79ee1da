// Package faultpoint lets tests stop a runsc command at a named step of
// its work, to kill it, or another process of its container, right
// there: a command whose environment has RUNSC_FAULTPOINT=<name> stops
// itself (SIGSTOP, which it cannot catch) when it reaches Reach(name),
// until the test continues or kills it. Without the variable, Reach does
// nothing.
package faultpoint

import (
	"os"

	"golang.org/x/sys/unix"
)

// Env is the environment variable naming the step to stop at.
const Env = "RUNSC_FAULTPOINT"

// Steps at which runsc commands call Reach, in the order a container's
// life reaches them.
const (
	// CreateAdopt: the sandbox is started in a network namespace of
	// its own, to adopt the one the spec names; nothing is moved yet.
	CreateAdopt = "create:adopt"
	// CreateSandbox: the sandbox is started and the state saved as
	// creating; no gofer yet.
	CreateSandbox = "create:sandbox"
	// CreateGofer: the gofer is started too.
	CreateGofer = "create:gofer"
	// CreateInit: the init is forked; the sandbox may still be
	// mounting the root.
	CreateInit = "create:init"
	// CreateCgroup: the init is in the container's cgroup, the root
	// mounted.
	CreateCgroup = "create:cgroup"
	// CreateReady: the init has set the container up.
	CreateReady = "create:ready"
	// CreateNetwork: the runtime config's links and namespace
	// bindings are made; the state says creating.
	CreateNetwork = "create:network"
	// CreateSaved: the state says created; the sandbox is not
	// released yet.
	CreateSaved = "create:saved"
	// Start: start is about to let the process run.
	Start = "start"
	// ExecForked: exec has forked the process's init.
	ExecForked = "exec:forked"
	// ExecCgroup: the exec'd process is in the container's cgroup, not
	// released yet.
	ExecCgroup = "exec:cgroup"
	// DeleteKilled: delete has killed the container's processes and
	// has yet to remove its cgroup and state.
	DeleteKilled = "delete:killed"
)

// Reach stops this process if the environment names step.
func Reach(step string) {
	if os.Getenv(Env) == step {
		unix.Kill(os.Getpid(), unix.SIGSTOP)
	}
}
