package container

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/runsc/runsc/procfs"
	"golang.org/x/sys/unix"
)

// fuseType is the file system type of the sandbox's FUSE mounts.
const fuseType = "fuse.runsc"

// fuseConnections lists the FUSE connections (the minor device numbers
// of their mounts) of the runsc file systems in the mount namespaces of
// pid's threads. A sandbox killed while one of its threads waits on a
// request to its own FUSE server (in mount(2) of an overlay, say, whose
// statfs of the lower layer went to that server) never finishes
// exiting: that thread waits uninterruptibly for an answer no thread is
// left to give, and the connection's descriptor stays open with it.
func fuseConnections(pid int) []string {
	seen := map[string]bool{}
	var out []string
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, t := range tasks {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/mountinfo")
		if err != nil {
			continue
		}
		for _, m := range procfs.ParseMountinfo(data) {
			_, minor, ok := strings.Cut(m.MajorMinor, ":")
			if m.FSType == fuseType && ok && !seen[minor] {
				seen[minor] = true
				out = append(out, minor)
			}
		}
	}
	return out
}

// abortFUSE aborts the FUSE connections of pid's runsc file systems
// (see fuseConnections) through the fusectl file system, mounted for the
// purpose in a mount namespace of a thread of its own, which is then
// discarded: every request waiting on them fails, and the process can
// finish exiting. Otherwise such a connection also hangs every sync(2)
// on the host.
func abortFUSE(pid int) error {
	conns := fuseConnections(pid)
	if len(conns) == 0 {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with its namespace
		done <- abortOnThread(conns)
	}()
	return <-done
}

// abortOnThread does abortFUSE's work on a locked thread.
func abortOnThread(conns []string) error {
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("aborting FUSE connections: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("aborting FUSE connections: %w", err)
	}
	const dir = "/sys/fs/fuse/connections"
	if err := unix.Mount("fusectl", dir, "fusectl", 0, ""); err != nil {
		return fmt.Errorf("aborting FUSE connections: mounting fusectl: %w", err)
	}
	var first error
	for _, c := range conns {
		if err := os.WriteFile(dir+"/"+c+"/abort", []byte("1"), 0); err != nil && first == nil && !os.IsNotExist(err) {
			first = fmt.Errorf("aborting FUSE connection %s: %w", c, err)
		}
	}
	return first
}
