package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/specutils"
	"github.com/runsc/runsc/urpc"
	"golang.org/x/sys/unix"
)

// Controller methods, called by the runsc CLI over urpc.
const (
	// MethodCreate mounts a container's root and forks its init, which
	// waits for MethodStart.
	MethodCreate = "containerManager.Create"
	// MethodStart lets a created container's init exec the process.
	MethodStart = "containerManager.Start"
	// MethodWait waits for a container's init to exit.
	MethodWait = "containerManager.Wait"
	// MethodSignal signals a container's init, or all its processes.
	MethodSignal = "containerManager.Signal"
	// MethodState reports a container's status.
	MethodState = "containerManager.State"
	// MethodProcesses lists a container's processes.
	MethodProcesses = "containerManager.Processes"
	// MethodDestroy kills a container's processes and removes its root
	// from the sandbox; the others keep running.
	MethodDestroy = "containerManager.Destroy"
)

// CreateArgs are the arguments of MethodCreate.
//
// FilePayload carries, in order: the container's stdio (stdin, stdout,
// stderr), or, when Spec.Process.Terminal is set, a single connected
// console socket on which the pty master is sent; then one connected 9P
// socket per gofer tree: the root file system first, then each bind mount
// of Spec.Mounts in spec order; then, with RootFUSE, a /dev/fuse
// descriptor.
type CreateArgs struct {
	// CID is the container ID, validated again here.
	CID string
	// Spec is the container's OCI spec, with host paths resolved.
	Spec *specs.Spec
	// Overlay is OverlayMemory or OverlayNone.
	Overlay string
	// SharePID, if set, names a container of the sandbox whose pid
	// namespace this one joins (Kubernetes shareProcessNamespace);
	// otherwise the container gets a pid namespace of its own.
	SharePID string
	// SharedBinds maps bind mounts of Spec (by ordinal among its bind
	// mounts, from 1) to bind mounts of the pod's sandbox container
	// with the same host source: those are bound from the sandbox
	// container's tree, not served again, and have no connection in
	// FilePayload.
	SharedBinds map[int]int
	// RootFUSE says the last file of FilePayload is the /dev/fuse
	// descriptor to mount the root with: the gofer holds the same one
	// and registers the root's files on it for FUSE passthrough.
	RootFUSE bool
	urpc.FilePayload
}

// CreateResult is the result of MethodCreate.
type CreateResult struct {
	// PID is the container init's pid in the sandbox's pid namespace.
	PID int
}

// CIDArgs name a container; the argument of MethodStart, MethodWait,
// MethodState and MethodProcesses.
type CIDArgs struct {
	CID string
}

// Empty is a result without content.
type Empty struct{}

// WaitResult is the result of MethodWait.
type WaitResult struct {
	// ExitStatus is the init's exit code, 128+signal if it was killed.
	ExitStatus int
}

// SignalArgs are the arguments of MethodSignal.
type SignalArgs struct {
	CID    string
	Signal int
	// All signals every process of the container, not just its init.
	All bool
}

// StateResult is the result of MethodState.
type StateResult struct {
	// Status is created, running or stopped.
	Status string
	// PID is the init's pid in the sandbox's pid namespace, 0 once
	// stopped.
	PID int
	// ExitStatus is set once stopped.
	ExitStatus int
}

// Process is one process of a container.
type Process struct {
	// PID and PPID are in the sandbox's pid namespace.
	PID, PPID int
	// Cmd is the command name.
	Cmd string
}

// ProcessesResult is the result of MethodProcesses.
type ProcessesResult struct {
	Processes []Process
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
	nstdio := 3
	if args.Spec.Process.Terminal {
		nstdio = 1
	}
	binds := bindMounts(args.Spec)
	for k := range args.SharedBinds {
		if k < 1 || k > len(binds) {
			return fmt.Errorf("create %q: shared bind %d: no such bind mount", args.CID, k)
		}
	}
	nfuse := 0
	if args.RootFUSE {
		nfuse = 1
	}
	if want := nstdio + 1 + len(binds) - len(args.SharedBinds) + nfuse; len(files) != want {
		return fmt.Errorf("create %q: got %d files, want %d stdio, 1 root and %d bind mount connections and %d /dev/fuse", args.CID, len(files), nstdio, len(binds)-len(args.SharedBinds), nfuse)
	}
	s := m.s
	c := &ctr{cid: args.CID, spec: args.Spec, status: StatusCreated, stopped: make(chan struct{})}
	if args.SharePID != "" {
		peer, err := s.get(args.SharePID)
		if err != nil {
			return fmt.Errorf("create %q: pid namespace: %w", args.CID, err)
		}
		s.mu.Lock()
		c.pidPeer = peer.initPID
		s.mu.Unlock()
		if c.pidPeer <= 0 {
			return fmt.Errorf("create %q: pid namespace of %q: it has no process", args.CID, args.SharePID)
		}
	}
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
	ok := false
	defer func() {
		if !ok {
			s.mu.Lock()
			delete(s.containers, args.CID)
			if s.rootCID == args.CID {
				s.rootCID = ""
			}
			s.mu.Unlock()
		}
	}()
	// The 9P sockets are consumed by the mounts; dup them out of the
	// payload, which urpc closes after the call.
	conns := make([]*os.File, 0, len(files)-nstdio)
	for _, f := range files[nstdio:] {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			closeFiles(conns)
			return fmt.Errorf("create %q: %w", args.CID, err)
		}
		conns = append(conns, os.NewFile(uintptr(fd), f.Name()))
	}
	var rootFUSE *os.File
	if args.RootFUSE {
		rootFUSE = conns[len(conns)-1]
		conns = conns[:len(conns)-1]
	}
	// The init starts up while the root is mounted.
	p, err := s.forkInit(c, files[:nstdio])
	if err != nil {
		closeFiles(conns)
		if rootFUSE != nil {
			rootFUSE.Close()
		}
		return fmt.Errorf("create %q: %w", args.CID, err)
	}
	if err := s.mountTrees(c, conns, args.Overlay, args.SharedBinds, rootFUSE); err != nil {
		s.abandonInit(c, p)
		c.removeRoot()
		return fmt.Errorf("create %q: %w", args.CID, err)
	}
	pid, err := s.releaseInit(c, p)
	if err != nil {
		c.removeRoot()
		return fmt.Errorf("create %q: %w", args.CID, err)
	}
	ok = true
	res.PID = pid
	return nil
}

// closeFiles closes files.
func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
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
	pid, status := c.initPID, c.status
	if c.start != nil {
		c.start.Close()
		c.start = nil
	}
	m.s.mu.Unlock()
	if status != StatusStopped && pid > 0 {
		// The init is pid 1 of the container's pid namespace: killing
		// it kills every process of the container.
		unix.Kill(pid, unix.SIGKILL)
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
		return fmt.Errorf("starting container %q: %w", c.cid, err)
	}
	// Return once the process runs, as runc does.
	if err := waitExec(execStatus); err != nil {
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
	res.ExitStatus = exitCode(c.exitStatus)
	m.s.mu.Unlock()
	return nil
}

// Signal implements MethodSignal.
func (m *containerManager) Signal(args *SignalArgs, _ *Empty) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	if args.Signal <= 0 || args.Signal > 64 {
		return fmt.Errorf("signal %d: out of range", args.Signal)
	}
	m.s.mu.Lock()
	pid, status := c.initPID, c.status
	m.s.mu.Unlock()
	if status == StatusStopped || pid <= 0 {
		return fmt.Errorf("container %q is not running", c.cid)
	}
	sig := unix.Signal(args.Signal)
	if !args.All {
		return unix.Kill(pid, sig)
	}
	for _, p := range containerPIDs(pid) {
		unix.Kill(p, sig)
	}
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
	} else {
		res.ExitStatus = exitCode(c.exitStatus)
	}
	return nil
}

// Processes implements MethodProcesses.
func (m *containerManager) Processes(args *CIDArgs, res *ProcessesResult) error {
	c, err := m.s.get(args.CID)
	if err != nil {
		return err
	}
	m.s.mu.Lock()
	pid, status := c.initPID, c.status
	m.s.mu.Unlock()
	if status == StatusStopped {
		return nil
	}
	for _, p := range containerPIDs(pid) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		ppid := 0
		if len(fields) > 1 {
			ppid, _ = strconv.Atoi(fields[1])
		}
		res.Processes = append(res.Processes, Process{PID: p, PPID: ppid, Cmd: s[open+1 : close]})
	}
	return nil
}

// containerPIDs lists the processes of the container whose init is init
// (as sandbox pids), init first: those in its pid namespace and its
// mount namespace (containers sharing a pid namespace still each have
// their own mount namespace).
func containerPIDs(init int) []int {
	nsOf := func(pid, ns string) string {
		l, _ := os.Readlink("/proc/" + pid + "/ns/" + ns)
		return l
	}
	self := strconv.Itoa(init)
	pidNS, mntNS := nsOf(self, "pid"), nsOf(self, "mnt")
	if pidNS == "" || mntNS == "" {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	out := []int{init}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == init {
			continue
		}
		if nsOf(e.Name(), "pid") == pidNS && nsOf(e.Name(), "mnt") == mntNS {
			out = append(out, p)
		}
	}
	return out
}
