package container

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sealedExe returns a sealed memfd holding a copy of the runsc binary at
// exe, from which container inits are started. A container process that
// can see an init before it execs the container's process (a pod member
// with CAP_SYS_PTRACE) then finds a read-only copy at /proc/<pid>/exe,
// never the host's binary to open for writing (runc's CVE-2019-5736);
// and the init is started by descriptor, from inside the sandbox's mount
// namespace, where no host path resolves.
func sealedExe(exe string) (*os.File, error) {
	src, err := os.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("opening runsc binary: %w", err)
	}
	defer src.Close()
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	name := CopyName(exe)
	fd, err := unix.MemfdCreate(name, flags|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// Kernels before 6.3 have no MFD_EXEC (and make memfds
		// executable anyway).
		fd, err = unix.MemfdCreate(name, flags)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd for runsc binary: %w", err)
	}
	f := os.NewFile(uintptr(fd), "runsc-exe")
	// Plain reads and writes: pages spliced in (copy_file_range,
	// sendfile) can stay referenced a moment, and F_SEAL_WRITE then
	// fails with EBUSY.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{src}, make([]byte, 1<<20)); err != nil {
		f.Close()
		return nil, fmt.Errorf("copying runsc binary: %w", err)
	}
	if err := unix.Fchmod(int(f.Fd()), 0o555); err != nil {
		f.Close()
		return nil, fmt.Errorf("runsc binary copy: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing runsc binary copy: %w", err)
	}
	return f, nil
}

// CopyName is the name of the sealed copy of the runsc binary at exe:
// "runsc:" and the binary's path, so that /proc/<pid>/exe of a sandbox
// or init ("/memfd:runsc:/usr/bin/runsc (deleted)") tells which binary
// it runs (the kernel keeps 249 bytes of it).
func CopyName(exe string) string {
	name := "runsc:" + exe
	if len(name) > 249 {
		name = name[:249]
	}
	return name
}

// CopyExe is what /proc/<pid>/exe reads for a process started from the
// sealed copy of the runsc binary at exe.
func CopyExe(exe string) string { return "/memfd:" + CopyName(exe) + " (deleted)" }

// exeCopy is a sealed copy of the runsc binary made in the background,
// while the sandbox and the gofer start.
type exeCopy struct {
	done chan struct{}
	f    *os.File
	err  error
}

// startExeCopy starts making the sealed copy of exe.
func startExeCopy(exe string) *exeCopy {
	c := &exeCopy{done: make(chan struct{})}
	go func() {
		c.f, c.err = sealedExe(exe)
		close(c.done)
	}()
	return c
}

// file waits for the copy and returns it, execute-only, for a container
// init; the caller closes it.
func (c *exeCopy) file() (*os.File, error) {
	<-c.done
	if c.err != nil {
		return nil, c.err
	}
	if err := execOnly(c.f); err != nil {
		c.f.Close()
		return nil, err
	}
	return c.f, nil
}

// execOnly makes the sealed copy of runsc execute-only, for the inits
// started from it: a process of the pod's user namespace (an init as it
// starts) may not read it, as it is owned by a uid unmapped there, so
// the kernel starts the init non-dumpable and owned by the host's user
// namespace: nothing in the pod can ptrace it or open its /proc files,
// not even in the moment before it says so itself. (A sandbox is started
// from the copy before: it must stay reachable to the inits, which enter
// its namespaces through its pidfd, and no pod process exists when it
// starts.)
func execOnly(f *os.File) error {
	if err := unix.Fchmod(int(f.Fd()), 0o111); err != nil {
		return fmt.Errorf("runsc binary copy: %w", err)
	}
	return nil
}

// dup waits for the copy and returns a descriptor of its own for it
// (the caller closes it), leaving the copy for file.
func (c *exeCopy) dup() (*os.File, error) {
	<-c.done
	if c.err != nil {
		return nil, c.err
	}
	fd, err := unix.FcntlInt(c.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("runsc binary copy: %w", err)
	}
	return os.NewFile(uintptr(fd), "runsc-exe"), nil
}
