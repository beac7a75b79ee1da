package gofer

import (
	"fmt"
	"os/exec"
	"runtime"

	"github.com/runsc/runsc/caps"
	"golang.org/x/sys/unix"
)

// setupCaps are the capabilities the gofer needs, besides fileCaps, to
// confine itself: CAP_SYS_ADMIN for its mounts and pivot_root,
// CAP_SETPCAP to drop the rest of its bounding set.
var setupCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP}

// Start starts cmd, made by Command, from a thread whose capability
// bounding set holds only fileCaps and setupCaps. The gofer, exec'd as
// root, then starts with just those capabilities, and dropping the rest
// of its bounding set costs it two all-threads calls instead of one per
// capability (dropCapabilities skips what is already gone); that work
// sits between the gofer's start and its first 9P reply, which the
// sandbox waits for. What the gofer ends with is unchanged.
//
// The bounding set is per thread and inherited by the children a thread
// forks: the goroutine stays locked to its thread, which exits with it,
// so no other goroutine ever runs with the reduced set.
func Start(cmd *exec.Cmd) error {
	keep := map[uintptr]bool{}
	for _, c := range append(append([]uintptr{}, fileCaps...), setupCaps...) {
		keep[c] = true
	}
	last := caps.Last()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		for c := uintptr(0); c <= uintptr(last); c++ {
			if keep[c] {
				continue
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
				errc <- fmt.Errorf("dropping capability %d from the gofer's bounding set: %w", c, err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	return <-errc
}
