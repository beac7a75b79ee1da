// Package container manages the lifecycle and on-disk state of containers
// and their sandboxes: creating the gofer and sandbox processes, the
// state files under --root, locking, and the calls to a sandbox's
// controller.
package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/cgroup"
	"github.com/runsc/runsc/network"
	"github.com/runsc/runsc/specutils"
	"github.com/runsc/runsc/urpc"
	"golang.org/x/sys/unix"
)

// Files in a container's state directory, <root>/<id>.
const (
	stateFile      = "state.json"
	controllerSock = "controller.sock"
)

// State is what is recorded on disk about a container.
type State struct {
	// ID is the container ID.
	ID string `json:"id"`
	// Bundle is the absolute bundle path.
	Bundle string `json:"bundle"`
	// Annotations are the spec's annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Created is when create finished.
	Created time.Time `json:"created"`
	// Status is the last status seen: created, running or stopped.
	Status boot.Status `json:"status"`
	// InitPID is the host pid of the container's init process, and
	// InitStart its start time (see Proc).
	InitPID   int    `json:"initPid"`
	InitStart uint64 `json:"initStart"`
	// Sandbox and Gofer are the sandbox and gofer processes.
	Sandbox Proc `json:"sandbox"`
	Gofer   Proc `json:"gofer"`
	// Overlay is the root overlay mode.
	Overlay string `json:"overlay"`
	// Cgroup is the container's cgroup, which its processes are in.
	Cgroup *cgroup.Cgroup `json:"cgroup,omitempty"`
	// SandboxCgroup (a pod's sandbox container) is the cgroup of the
	// sandbox and the pod's gofers (see sandboxCgroup).
	SandboxCgroup *cgroup.Cgroup `json:"sandboxCgroup,omitempty"`
	// SandboxID is the ID of the container whose sandbox this container
	// runs in: its own ID for the sandbox (pause) container of a pod or a
	// lone container.
	SandboxID string `json:"sandboxId"`
	// Veth (--network=veth) is the host end of the sandbox's veth pair.
	Veth *network.HostLink `json:"veth,omitempty"`
	// NSBinds are the container's namespaces bound at host paths (its
	// runtime config's bindNS).
	NSBinds []NSBind `json:"nsBinds,omitempty"`
	// Interfaces are the links its runtime config put in the pod's
	// network namespace, which delete removes (see removeInterfaces).
	Interfaces []network.Link `json:"links,omitempty"`
}

// Proc identifies a host process across pid reuse.
type Proc struct {
	PID int `json:"pid"`
	// Start is the process's start time in clock ticks since boot.
	Start uint64 `json:"start"`
	// servesFUSE marks a sandbox for killAll: it serves its own FUSE
	// mounts (see abortFUSE).
	servesFUSE bool
}

// fuseServer returns p marked as serving its own FUSE mounts.
func (p Proc) fuseServer() Proc {
	p.servesFUSE = true
	return p
}

// Container is a container whose state directory is open and locked.
type Container struct {
	State
	// root is --root; dir is the state directory; dirFD holds its lock.
	root  string
	dir   string
	dirFD int
	// fresh is set on a container this process created and has kept
	// locked since: its status is known to be created, so Start need
	// not ask the sandbox (which checks it again anyway).
	fresh bool
	// child is the container's init when this process forked it (and
	// so may wait for it), nil otherwise.
	child *os.Process
	// lifeline, while this process creates a sandbox, keeps it alive
	// (see boot.Args.LifelineFD).
	lifeline *os.File
}

// Init returns the container's init process.
func (c *Container) Init() Proc { return Proc{PID: c.InitPID, Start: c.InitStart} }

// IsSubcontainer reports whether the container joined another's sandbox.
func (c *Container) IsSubcontainer() bool { return c.SandboxID != "" && c.SandboxID != c.ID }

// stateDir returns the state directory of id under root.
func stateDir(root, id string) string { return filepath.Join(root, id) }

// lockDir opens dir and takes an exclusive flock on it. Every command
// holds the lock while it works on a container, so commands on the same
// container run one after another.
func lockDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("locking %s: %w", dir, err)
	}
	return fd, nil
}

// ErrNotExist matches (errors.Is) the error of Load for an ID that names
// no container.
var ErrNotExist = errors.New("no such container")

// notExistError is the error of Load for an ID that names no container.
type notExistError struct{ id string }

func (e *notExistError) Error() string        { return fmt.Sprintf("container %q does not exist", e.id) }
func (e *notExistError) Is(target error) bool { return target == ErrNotExist }

// RemoveStale removes what is left under root of container id if it
// names no container: the state directory of a create that was killed
// half-way. It is what `delete --force` does for such an ID, as runc.
func RemoveStale(root, id string) error {
	if err := specutils.ValidateID(id); err != nil {
		return err
	}
	dir := stateDir(root, id)
	fd, err := lockDir(dir)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening container %q: %w", id, err)
	}
	defer unix.Close(fd)
	if _, err := os.Stat(filepath.Join(dir, stateFile)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("container %q exists", id)
	}
	return os.RemoveAll(dir)
}

// Load opens and locks the container id under root. Release it with
// Close.
func Load(root, id string) (*Container, error) {
	if err := specutils.ValidateID(id); err != nil {
		return nil, err
	}
	dir := stateDir(root, id)
	fd, err := lockDir(dir)
	if errors.Is(err, unix.ENOENT) {
		return nil, &notExistError{id: id}
	}
	if err != nil {
		return nil, fmt.Errorf("opening container %q: %w", id, err)
	}
	c := &Container{root: root, dir: dir, dirFD: fd}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, os.ErrNotExist) {
			// Deleted while we waited for the lock, or a create
			// that was killed half-way (create holds the lock
			// until the state is written).
			return nil, &notExistError{id: id}
		}
		return nil, fmt.Errorf("reading state of container %q: %w", id, err)
	}
	if err := json.Unmarshal(data, &c.State); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("decoding state of container %q: %w", id, err)
	}
	return c, nil
}

// Close releases the container's lock.
func (c *Container) Close() {
	c.fresh = false
	if c.dirFD >= 0 {
		unix.Close(c.dirFD)
		c.dirFD = -1
	}
}

// save writes the state file atomically.
func (c *Container) save() error {
	data, err := json.Marshal(&c.State)
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing state of container %q: %w", c.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, stateFile)); err != nil {
		return fmt.Errorf("writing state of container %q: %w", c.ID, err)
	}
	return nil
}

// shortPath names a file in the state directory through the held
// directory descriptor, so unix socket paths stay under the 108-byte
// limit however long --root and the ID are.
func (c *Container) shortPath(name string) string {
	return "/proc/self/fd/" + strconv.Itoa(c.dirFD) + "/" + name
}

// controller connects to the sandbox's controller, whose socket is in the
// sandbox container's state directory.
func (c *Container) controller() (*urpc.Client, error) {
	path := c.shortPath(controllerSock)
	if c.IsSubcontainer() {
		fd, err := unix.Open(stateDir(c.root, c.SandboxID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("sandbox %q of container %q: %w", c.SandboxID, c.ID, err)
		}
		defer unix.Close(fd)
		path = "/proc/self/fd/" + strconv.Itoa(fd) + "/" + controllerSock
	}
	cl, err := urpc.Dial(path)
	if err != nil {
		return nil, fmt.Errorf("connecting to the sandbox of container %q: %w", c.ID, err)
	}
	return cl, nil
}

// call makes one controller call.
func (c *Container) call(method string, arg, result any) error {
	cl, err := c.controller()
	if err != nil {
		return err
	}
	defer cl.Close()
	defer watchSandbox(c.Sandbox, cl)()
	if err := cl.Call(method, arg, result); err != nil {
		return fmt.Errorf("sandbox of container %q: %w", c.ID, err)
	}
	return nil
}

// watchSandbox closes cl if sandbox dies, or is killed, before the
// returned stop is called. A sandbox killed while a thread of it waits
// on its own FUSE server (see abortFUSE) keeps its descriptors, this
// connection's end among them, until that thread ends, and does not
// become a zombie until then: a call would wait for ever.
func watchSandbox(sandbox Proc, cl *urpc.Client) (stop func()) {
	if sandbox.PID <= 0 {
		// Not recorded: nothing to watch.
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(sandboxWatchInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if !sandbox.Alive() || sandbox.dying() {
					cl.Close()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// sandboxWatchInterval is how often watchSandbox looks.
const sandboxWatchInterval = 100 * time.Millisecond

// List returns the IDs of the containers under root.
func List(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && specutils.ValidateID(e.Name()) == nil {
			if _, err := os.Stat(filepath.Join(root, e.Name(), stateFile)); err == nil {
				ids = append(ids, e.Name())
			}
		}
	}
	return ids, nil
}
