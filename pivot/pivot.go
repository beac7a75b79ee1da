// Package pivot builds an empty root for a confined process (the gofer,
// the sandbox, a container) and makes it the root of the process's mount
// namespace, detaching the old root so that no other path stays
// reachable. Callers run in a mount namespace of their own.
package pivot

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// scratchDirs are candidate mount points for a new root. Any existing
// directory works: the mount is made in the caller's own mount namespace,
// made slave first, so it never propagates to the host.
var scratchDirs = []string{"/tmp", "/mnt", "/run", "/var", "/dev"}

// MakeSlave stops mount events in this namespace from propagating to the
// parent namespace, while still receiving the parent's (MS_SLAVE|MS_REC
// on /).
func MakeSlave() error {
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making mounts slave: %w", err)
	}
	return nil
}

// MountScratch mounts an empty tmpfs (named name, with the given flags
// and options) over a scratch directory and returns its path, the future
// new root.
func MountScratch(name string, flags uintptr, options string) (string, error) {
	var lastErr error
	for _, dir := range scratchDirs {
		err := unix.Mount(name, dir, "tmpfs", flags, options)
		if err == nil {
			return dir, nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("mounting the new root tmpfs: %w", lastErr)
}

// Into makes dir the root of the mount namespace and detaches the old
// root, then changes directory to the new /.
func Into(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("chdir to new root %q: %w", dir, err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one;
	// detaching "." then removes it.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %q: %w", dir, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to /: %w", err)
	}
	return nil
}
