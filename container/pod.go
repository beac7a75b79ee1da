package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/specutils"
	"github.com/runsc/runsc/urpc"
)

// Annotations CRI runtimes put on containers to group them into pods.
const (
	containerdType      = "io.kubernetes.cri.container-type"
	containerdSandboxID = "io.kubernetes.cri.sandbox-id"
	crioType            = "io.kubernetes.cri-o.ContainerType"
	crioSandboxID       = "io.kubernetes.cri-o.SandboxID"
)

// specCopy is where a subcontainer's spec waits for start.
const specCopy = "spec.json"

// podSandbox returns the ID of the sandbox a container joins: set for a
// container of type "container" (containerd or CRI-O annotations), empty
// for a pod's sandbox container or a lone container.
func podSandbox(spec *specs.Spec) (string, error) {
	for _, keys := range [][2]string{{containerdType, containerdSandboxID}, {crioType, crioSandboxID}} {
		typ, ok := spec.Annotations[keys[0]]
		if !ok {
			continue
		}
		switch typ {
		case "sandbox":
			return "", nil
		case "container":
			id := spec.Annotations[keys[1]]
			if err := specutils.ValidateID(id); err != nil {
				return "", fmt.Errorf("config.json: annotations[%q]: %w", keys[1], err)
			}
			return id, nil
		default:
			return "", fmt.Errorf("config.json: annotations[%q] %q: want sandbox or container", keys[0], typ)
		}
	}
	return "", nil
}

// createSub records a container that joins sandboxID's sandbox. Nothing
// runs yet: its gofer and process are made at start, so the running pod
// is not touched.
func (c *Container) createSub(sandboxID string, o CreateOpts) error {
	if sandboxID == c.ID {
		return fmt.Errorf("config.json: container %q names itself as its sandbox", c.ID)
	}
	sb, err := readState(c.root, sandboxID)
	if err != nil {
		return fmt.Errorf("container %q: sandbox %q: %w", c.ID, sandboxID, err)
	}
	if sb.SandboxID != sb.ID {
		return fmt.Errorf("container %q: %q is not a pod sandbox container", c.ID, sandboxID)
	}
	if !sb.Sandbox.Alive() {
		return fmt.Errorf("container %q: the sandbox of %q is not running", c.ID, sandboxID)
	}
	if o.Spec.Process.Terminal && o.ConsoleSocket == "" {
		return fmt.Errorf("create %q: process.terminal is true but --console-socket is not given", c.ID)
	}
	if err := c.saveSpec(o.Spec); err != nil {
		return err
	}
	c.SandboxID = sandboxID
	c.Sandbox = sb.Sandbox
	c.Status = boot.StatusCreated
	c.Created = time.Now().UTC()
	c.ConsoleSocket = o.ConsoleSocket
	c.PIDFile = o.PIDFile
	return c.save()
}

// saveSpec keeps the container's spec in its state directory: a
// subcontainer's process is made from it at start, and exec takes its
// process defaults from it.
func (c *Container) saveSpec(spec *specs.Spec) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, specCopy), data, 0o600); err != nil {
		return fmt.Errorf("saving spec of container %q: %w", c.ID, err)
	}
	return nil
}

// Spec returns the spec saved at create.
func (c *Container) Spec() (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(c.dir, specCopy))
	if err != nil {
		return nil, fmt.Errorf("container %q: reading saved spec: %w", c.ID, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("container %q: decoding saved spec: %w", c.ID, err)
	}
	return &spec, nil
}

// readState reads another container's state without locking it.
func readState(root, id string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(stateDir(root, id), stateFile))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("no such container under %s", root)
		}
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// startSub starts a subcontainer: its gofer, then, in the sandbox, its
// root and its process, whose stdio is stdio (the caller of start's).
func (c *Container) startSub(cfg Config, stdio []*os.File) error {
	spec, err := c.Spec()
	if err != nil {
		return err
	}
	if !c.Sandbox.Alive() {
		return fmt.Errorf("cannot start container %q: the sandbox of %q is gone", c.ID, c.SandboxID)
	}
	trees, err := goferTrees(spec, c.Overlay)
	if err != nil {
		return err
	}
	var cu cleanup
	defer cu.clean()
	files := stdio
	if spec.Process.Terminal {
		console, err := DialConsole(c.ConsoleSocket)
		if err != nil {
			return err
		}
		defer console.Close()
		files = []*os.File{console}
	}
	goferCmd, sandboxEnds, err := startGofer(cfg, trees)
	if err != nil {
		return fmt.Errorf("start %q: %w", c.ID, err)
	}
	defer closeAll(sandboxEnds)
	gofer := procOf(goferCmd.Process.Pid)
	cu.add(func() { gofer.kill(killTimeout); goferCmd.Wait() })
	args := &boot.CreateArgs{
		CID: c.ID, Spec: spec, Overlay: c.Overlay,
		FilePayload: urpc.FilePayload{Files: append(append([]*os.File{}, files...), sandboxEnds...)},
	}
	var res boot.CreateResult
	if err := c.call(boot.MethodCreate, args, &res); err != nil {
		return err
	}
	cu.add(func() { c.call(boot.MethodDestroy, &boot.CIDArgs{CID: c.ID}, &boot.Empty{}) })
	pid, err := hostPID(c.Sandbox.PID, res.PID)
	if err != nil {
		return fmt.Errorf("start %q: %w", c.ID, err)
	}
	if c.PIDFile != "" {
		if err := writePIDFile(c.PIDFile, pid); err != nil {
			return err
		}
	}
	if err := c.call(boot.MethodStart, &boot.CIDArgs{CID: c.ID}, &boot.Empty{}); err != nil {
		return err
	}
	c.InitPID, c.Gofer, c.Status = pid, gofer, boot.StatusRunning
	if err := c.save(); err != nil {
		return err
	}
	goferCmd.Process.Release()
	cu.release()
	return nil
}

// deletePodMembers removes the state of every container that ran in the
// sandbox of c (a sandbox container being deleted), killing their gofers.
func (c *Container) deletePodMembers() {
	ids, _ := List(c.root)
	for _, id := range ids {
		if id == c.ID {
			continue
		}
		st, err := readState(c.root, id)
		if err != nil || st.SandboxID != c.ID {
			continue
		}
		m, err := Load(c.root, id)
		if err != nil {
			continue
		}
		m.Gofer.kill(killTimeout)
		os.RemoveAll(m.dir)
		m.Close()
	}
}
