package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/cleanup"
	"github.com/runsc/runsc/specutils"
	"github.com/runsc/runsc/urpc"
	"golang.org/x/sys/unix"
)

// Controller methods, called by the runsc CLI over urpc.
const (
	// MethodCreate mounts a container's root.
	MethodCreate = "containerManager.Create"
	// MethodInit takes the init of a created container, which the
	// caller forked into the sandbox once its root was mounted and
	// which waits for MethodStart.
	MethodInit = "containerManager.Init"
	// MethodStart lets a created container's init exec the process.
	MethodStart = "containerManager.Start"
	// MethodWait waits for a container's init to exit.
	MethodWait = "containerManager.Wait"
	// MethodState reports a container's status.
	MethodState = "containerManager.State"
	// MethodDestroy kills a container's processes and removes its root
	// from the sandbox; the others keep running.
	MethodDestroy = "containerManager.Destroy"
)

// CreateArgs are the arguments of MethodCreate.
//
// FilePayload carries, in order: one connected 9P socket per gofer tree:
// the root file system first, then each bind mount of Spec.Mounts in
// spec order, except those in SharedBinds; then, for each of those
// trees in the same order, two files: the /dev/fuse descriptor its FUSE
// mount is served on and the detached mount itself, both made by the
// caller (see fuse9p.MakeMount). The gofer holds each /dev/fuse
// descriptor too and registers the tree's opened files on it for FUSE
// passthrough.
type CreateArgs struct {
	// CID is the container ID, validated again here.
	CID string
	// Spec is the container's OCI spec, with host paths resolved.
	Spec *specs.Spec
	// Overlay is OverlayMemory or OverlayNone.
	Overlay string
	// SharedBinds maps bind mounts of Spec (by ordinal among its bind
	// mounts, from 1) to bind mounts of the pod's sandbox container
	// with the same host source: those are bound from the sandbox
	// container's tree, not served again, and have no connection in
	// FilePayload.
	SharedBinds map[int]int
	// Stacked tells, per 9P connection, whether the tree's host files
	// are on a stacked file system (overlayfs, as containerd's and
	// podman's snapshots are): passthrough to them needs a FUSE mount
	// of stacking depth 2, on which no overlayfs may then be stacked.
	Stacked []bool
	urpc.FilePayload
}

// AdoptArgs are the arguments of MethodInit.
//
// FilePayload carries, in order: a pidfd of the container's init (forked
// by the caller into the sandbox's namespaces); the write end of the
// init's start pipe (a byte lets it exec the process, EOF makes it
// exit); the read end of its exec-status pipe (EOF once the process is
// exec'd, otherwise why not).
type AdoptArgs struct {
	CID string
	urpc.FilePayload
}

// CreateResult is the result of MethodCreate.
type CreateResult struct {
	// PID is the container init's pid in the sandbox's pid namespace.
	PID int
}

// CIDArgs name a container; the argument of MethodStart, MethodWait,
// MethodState and MethodDestroy.
type CIDArgs struct {
	CID string
}

// Empty is a result without content.
type Empty struct{}

// WaitResult is the result of MethodWait.
type WaitResult struct {
	// ExitStatus is the init's exit code, 128+signal if it was killed;
	// meaningful only if Known.
	ExitStatus int
	// Known is false when the init's parent (outside the sandbox)
	// reaped it before the sandbox could read its status.
	Known bool
}

// StateResult is the result of MethodState.
type StateResult struct {
	// Status is created, running or stopped.
	Status Status
	// PID is the init's pid in the sandbox's pid namespace, 0 once
	// stopped.
	PID int
}

// containerManager is the controller's urpc service.
type containerManager struct {
	s *sandbox
}

// Create implements MethodCreate.
func (m *containerManager) Create(args *CreateArgs, res *CreateResult) error {
	if err := specutils.ValidateID(args.CID); err != nil {
		return err
	}
	if args.Spec == nil || args.Spec.Process == nil || args.Spec.Root == nil {
		return fmt.Errorf("create %q: spec without process or root", args.CID)
	}
	files := args.Files
	binds := bindMounts(args.Spec)
	for k := range args.SharedBinds {
		if k < 1 || k > len(binds) {
			return fmt.Errorf("create %q: shared bind %d: no such bind mount", args.CID, k)
		}
	}
	if ntrees := 1 + len(binds) - len(args.SharedBinds); len(files) != 3*ntrees {
		return fmt.Errorf("create %q: got %d files, want 3 for each of 1 root and %d bind mount trees", args.CID, len(files), ntrees-1)
	}
	s := m.s
	c := &ctr{cid: args.CID, spec: args.Spec, status: StatusCreated, stopped: make(chan struct{})}
	s.mu.Lock()
	if _, dup := s.containers[args.CID]; dup {
		s.mu.Unlock()
		return fmt.Errorf("container %q already exists in this sandbox", args.CID)
	}
	s.containers[args.CID] = c
	if s.rootCID == "" {
		// The first container is the pod's sandbox container: losing
		// its gofer stops the pod.
		s.rootCID = args.CID
	}
	s.mu.Unlock()
	var cu cleanup.Cleanup
	defer cu.Clean()
	cu.Add(func() {
		s.mu.Lock()
		delete(s.containers, args.CID)
		if s.rootCID == args.CID {
			s.rootCID = ""
		}
		s.mu.Unlock()
	})
	// The 9P sockets are kept past the call, which closes the payload:
	// dup them out of it.
	conns, err := dupFiles(files)
	if err != nil {
		return fmt.Errorf("create %q: %w", args.CID, err)
	}
	if err := s.mountTrees(c, conns, args.Overlay, args.SharedBinds, args.Stacked); err != nil {
		c.removeRoot()
		return fmt.Errorf("create %q: %w", args.CID, err)
	}
	cu.Release()
	return nil
}

// dupFiles duplicates files (close-on-exec); on error none is left open.
func dupFiles(files []*os.File) ([]*os.File, error) {
	out := make([]*os.File, 0, len(files))
	for _, f := range files {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			closeFiles(out)
			return nil, err
		}
		out = append(out, os.NewFile(uintptr(fd), f.Name()))
	}
	return out, nil
}

// Init implements MethodInit.
func (m *containerManager) Init(args *AdoptArgs, res *CreateResult) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	if len(args.Files) != 3 {
		return fmt.Errorf("init of %q: got %d files, want a pidfd, a start and an exec-status pipe", args.CID, len(args.Files))
	}
	m.s.mu.Lock()
	taken := c.initFD != nil
	m.s.mu.Unlock()
	if taken {
		return fmt.Errorf("init of %q: the container has an init already", args.CID)
	}
	kept, err := dupFiles(args.Files)
	if err != nil {
		return fmt.Errorf("init of %q: %w", args.CID, err)
	}
	if err := m.s.watchInit(c, kept[0]); err != nil {
		closeFiles(kept)
		return fmt.Errorf("init of %q: %w", args.CID, err)
	}
	m.s.mu.Lock()
	c.start, c.execStatus = kept[1], kept[2]
	m.s.mu.Unlock()
	res.PID = c.initPID
	return nil
}

// removeRoot unmounts the container's root and gofer trees and removes
// their mount points. Directories are removed one by one, never
// recursively: a mount that failed to detach must not have its (host)
// contents deleted through the gofer.
func (c *ctr) removeRoot() {
	base := filepath.Join(mountsDir, c.cid)
	ents, _ := os.ReadDir(base)
	var points []string
	for _, e := range ents {
		points = append(points, filepath.Join(base, e.Name()))
	}
	root := filepath.Join(ContainersDir, c.cid)
	c.unmount(append(points, root))
	for _, p := range points {
		if filepath.Base(p) == "layers" {
			continue
		}
		os.Remove(p)
	}
	os.Remove(filepath.Join(base, "layers"))
	os.Remove(base)
	os.Remove(root)
}

// Destroy implements MethodDestroy.
func (m *containerManager) Destroy(args *CIDArgs, _ *Empty) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	if c.start != nil {
		c.start.Close()
		c.start = nil
	}
	if c.execStatus != nil {
		c.execStatus.Close()
		c.execStatus = nil
	}
	initFD := c.initFD
	m.s.mu.Unlock()
	if initFD != nil {
		// The init is pid 1 of the container's pid namespace:
		// killing it kills every process of the container.
		if err := c.kill(unix.SIGKILL); err != nil {
			return fmt.Errorf("killing container %q: %w", c.cid, err)
		}
		select {
		case <-c.stopped:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("container %q did not exit after SIGKILL", c.cid)
		}
	}
	c.removeRoot()
	m.s.mu.Lock()
	delete(m.s.containers, c.cid)
	m.s.mu.Unlock()
	if initFD != nil {
		initFD.Close()
	}
	return nil
}

// Start implements MethodStart.
func (m *containerManager) Start(args *CIDArgs, _ *Empty) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	if c.status != StatusCreated || c.start == nil {
		m.s.mu.Unlock()
		return fmt.Errorf("container %q is %s, not created", c.cid, c.status)
	}
	_, err = c.start.Write([]byte{1})
	c.start.Close()
	c.start = nil
	execStatus := c.execStatus
	c.execStatus = nil
	if err == nil {
		c.status = StatusRunning
	}
	m.s.mu.Unlock()
	if err != nil {
		execStatus.Close()
		return fmt.Errorf("starting container %q: %w", c.cid, err)
	}
	// Return once the process runs, as runc does.
	if err := WaitExec(execStatus); err != nil {
		return fmt.Errorf("starting container %q: %w", c.cid, err)
	}
	return nil
}

// Wait implements MethodWait.
func (m *containerManager) Wait(args *CIDArgs, res *WaitResult) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	<-c.stopped
	m.s.mu.Lock()
	res.ExitStatus, res.Known = ExitCode(c.exitStatus), c.exitKnown
	m.s.mu.Unlock()
	return nil
}

// State implements MethodState.
func (m *containerManager) State(args *CIDArgs, res *StateResult) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	res.Status = c.status
	if c.status != StatusStopped {
		res.PID = c.initPID
	}
	return nil
}
