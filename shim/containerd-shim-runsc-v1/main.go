// Command containerd-shim-runsc-v1 is the containerd shim of the runtime
// type io.containerd.runsc.v1: see package shim.
package main

import (
	"context"

	"github.com/containerd/containerd/runtime/v2/runc/manager"
	_ "github.com/containerd/containerd/runtime/v2/runc/pause"
	containerdshim "github.com/containerd/containerd/runtime/v2/shim"
	"github.com/runsc/runsc/shim"
)

func main() {
	containerdshim.RunManager(context.Background(), manager.NewShimManager(shim.RuntimeType))
}
