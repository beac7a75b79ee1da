package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/cleanup"
	"github.com/runsc/runsc/procfs"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
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

// podSandbox returns the ID of the sandbox a container joins: for a
// container of type "container" (containerd or CRI-O annotations), the
// annotated sandbox; for a spec whose linux.namespaces paths name the
// namespaces of a container runsc runs under root (podman joins a pod's
// containers to its infra container's namespaces by /proc/<pid>/ns/*
// paths), that container's sandbox. Empty for a pod's sandbox container
// or a lone container.
func podSandbox(root string, spec *specs.Spec) (string, error) {
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
	return sandboxByNamespace(root, spec)
}

// podNamespaces are the namespace types whose path, naming a runsc
// container's namespace, makes a container join that container's pod;
// with their names under /proc/<pid>/ns.
var podNamespaces = map[specs.LinuxNamespaceType]string{
	specs.NetworkNamespace: "net",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.PIDNamespace:     "pid",
}

// sandboxByNamespace returns the sandbox of the container under root
// whose namespace one of spec's namespace paths names, or "".
func sandboxByNamespace(root string, spec *specs.Spec) (string, error) {
	if spec.Linux == nil {
		return "", nil
	}
	type nsID struct{ dev, ino uint64 }
	want := map[nsID]specs.LinuxNamespace{}
	for _, ns := range spec.Linux.Namespaces {
		if _, ok := podNamespaces[ns.Type]; !ok || ns.Path == "" {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(ns.Path, &st); err != nil {
			return "", fmt.Errorf("config.json: linux.namespaces %s path %q: %w", ns.Type, ns.Path, err)
		}
		// The host's own namespace (a sandbox with the host network
		// has it too) says nothing about a pod.
		if isRuntimeNS(st, podNamespaces[ns.Type]) {
			continue
		}
		want[nsID{st.Dev, st.Ino}] = ns
	}
	if len(want) == 0 {
		return "", nil
	}
	ids, _ := List(root)
	for _, id := range ids {
		st, err := readState(root, id)
		if err != nil || !st.Sandbox.Alive() {
			continue
		}
		for _, pid := range []int{st.InitPID, st.Sandbox.PID} {
			for _, name := range podNamespaces {
				var got unix.Stat_t
				if pid <= 0 || unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/"+name, &got) != nil {
					continue
				}
				if name == "pid" && !leadsPIDNS(pid) {
					// A pid namespace the pod joined (the host's,
					// or one by path) is not the pod's: other
					// containers may join it on their own.
					continue
				}
				if ns, ok := want[nsID{got.Dev, got.Ino}]; ok && podNamespaces[ns.Type] == name {
					return st.SandboxID, nil
				}
			}
		}
	}
	return "", nil
}

// leadsPIDNS reports whether host process pid is pid 1 of its pid
// namespace (one runsc made for a sandbox or a container init).
func leadsPIDNS(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	pids, err := procfs.ParseNSpid(data)
	return err == nil && len(pids) > 1 && pids[len(pids)-1] == 1
}

// createSub creates a container in sandboxID's running sandbox: its own
// gofer, its root mounted in the sandbox and its init forked there,
// waiting for start. The stdio is create's, as with runc (containerd
// hands the container's fifos to create, not to start); the pod's other
// containers are not touched.
func (c *Container) createSub(cfg Config, sandboxID string, o CreateOpts) error {
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
	c.SandboxID = sandboxID
	c.Sandbox = sb.Sandbox
	sandboxFD, err := sb.Sandbox.open()
	if err != nil {
		return fmt.Errorf("container %q: the sandbox of %q: %w", c.ID, sandboxID, err)
	}
	if sandboxFD == nil {
		return fmt.Errorf("container %q: the sandbox of %q is not running", c.ID, sandboxID)
	}
	defer sandboxFD.Close()
	if err := checkMemberUserNS(o.Spec, sandboxFD); err != nil {
		return err
	}
	if err := checkPodPID(o.Spec, sandboxFD); err != nil {
		return err
	}
	sbDir := &Container{root: c.root, dir: stateDir(c.root, sandboxID), dirFD: -1}
	sbSpec, err := sbDir.Spec()
	if err != nil {
		return err
	}
	trees, reuse, err := goferTrees(o.Spec, c.Overlay, bindSources(sbSpec))
	if err != nil {
		return err
	}
	peer, err := c.pidPeer(o.Spec)
	if err != nil {
		return err
	}
	if peer != nil {
		defer peer.Close()
	}
	var cu cleanup.Cleanup
	defer cu.Clean()
	if err := makeMountPoints(o.Spec, c.Overlay); err != nil {
		return fmt.Errorf("create %q: %w", c.ID, err)
	}
	goferCmd, sandboxEnds, err := startGofer(cfg, trees, nil)
	if err != nil {
		return fmt.Errorf("create %q: %w", c.ID, err)
	}
	defer closeAll(sandboxEnds)
	c.Gofer = procOf(goferCmd.Process.Pid)
	cu.Add(func() { c.Gofer.kill(killTimeout); goferCmd.Wait() })
	if sb.SandboxCgroup != nil {
		// Charged with the pod's sandbox.
		if err := sb.SandboxCgroup.Add(c.Gofer.PID); err != nil {
			return fmt.Errorf("create %q: %w", c.ID, err)
		}
	}
	if err := c.saveCreating(); err != nil {
		return err
	}
	args := &boot.CreateArgs{CID: c.ID, Spec: o.Spec, Overlay: c.Overlay, SharedBinds: reuse, Stacked: stackedTrees(trees)}
	if err := c.createInSandbox(cfg, o, args, sandboxFD, peer, sandboxEnds, &cu); err != nil {
		return err
	}
	goferCmd.Process.Release()
	cu.Release()
	return nil
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

// pidNSPath returns the path of the spec's pid namespace, if any.
func pidNSPath(spec *specs.Spec) string {
	if spec.Linux == nil {
		return ""
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			return ns.Path
		}
	}
	return ""
}

// pidPeer returns a pidfd of the init of the pod member whose pid
// namespace the spec joins (Kubernetes shareProcessNamespace names the
// sandbox container's), or nil for a pid namespace of its own.
func (c *Container) pidPeer(spec *specs.Spec) (*os.File, error) {
	path := pidNSPath(spec)
	if path == "" || hostPID(spec) {
		// Its own, or the host's (see checkPodPID).
		return nil, nil
	}
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return nil, fmt.Errorf("config.json: linux.namespaces pid namespace path %q: %w", path, err)
	}
	ids, _ := List(c.root)
	for _, id := range ids {
		st, err := readState(c.root, id)
		if err != nil || st.SandboxID != c.SandboxID || st.InitPID == 0 {
			continue
		}
		var got unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/pid", st.InitPID), &got) != nil || got.Ino != want.Ino || got.Dev != want.Dev {
			continue
		}
		f, err := Proc{PID: st.InitPID, Start: st.InitStart}.open()
		if err != nil {
			return nil, fmt.Errorf("config.json: linux.namespaces pid path %q: %w", path, err)
		}
		if f == nil {
			break
		}
		return f, nil
	}
	return nil, fmt.Errorf("config.json: linux.namespaces pid path %q: not the pid namespace of a running container of pod %q", path, c.SandboxID)
}

// deletePodMembers removes the state of every container that ran in the
// sandbox of c (a sandbox container being deleted), killing their gofers.
func (c *Container) deletePodMembers() {
	for _, id := range c.podMembers() {
		m, err := Load(c.root, id)
		if err != nil {
			continue
		}
		m.Gofer.kill(killTimeout)
		if m.Cgroup != nil {
			m.Cgroup.Destroy()
		}
		// Its links went before the sandbox (see
		// removeMembersInterfaces); its bindings go now, or its state
		// stays for a later delete --force to retry.
		if err := m.removeNetwork(); err != nil {
			m.Close()
			continue
		}
		poststop := m.poststop()
		os.RemoveAll(m.dir)
		m.Close()
		poststop()
	}
}

// podMembers lists the other containers of c's pod (c being its sandbox
// container).
func (c *Container) podMembers() []string {
	var out []string
	ids, _ := List(c.root)
	for _, id := range ids {
		if id == c.ID {
			continue
		}
		if st, err := readState(c.root, id); err == nil && st.SandboxID == c.ID {
			out = append(out, id)
		}
	}
	return out
}

// removeMembersInterfaces removes the links c's pod's members made (see
// State.removeInterfaces), while the sandbox still gives access to the
// pod's network namespace.
func (c *Container) removeMembersInterfaces() {
	for _, id := range c.podMembers() {
		if st, err := readState(c.root, id); err == nil {
			st.removeInterfaces()
		}
	}
}

// thawPodMembers thaws the cgroups of c's pod's members: the sandbox,
// pid 1 of their pid namespace, cannot finish exiting while a frozen
// process of it is left.
func (c *Container) thawPodMembers() {
	for _, id := range c.podMembers() {
		if st, err := readState(c.root, id); err == nil && st.Cgroup != nil {
			st.Cgroup.Freeze(false)
		}
	}
}
