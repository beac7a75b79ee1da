package container

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
	"github.com/runsc/runsc/cgroup"
	"github.com/runsc/runsc/cleanup"
	"github.com/runsc/runsc/faultpoint"
	"github.com/runsc/runsc/hook"
	"github.com/runsc/runsc/network"
	"github.com/runsc/runsc/specutils"
	"github.com/runsc/runsc/urpc"
	"golang.org/x/sys/unix"
)

// Config is what every command knows from the global flags.
type Config struct {
	// Root is the state directory (--root).
	Root string
	// Exe is the runsc binary started for the gofer and the sandbox.
	Exe string
	// GlobalArgs are the global flags, passed on to those processes.
	GlobalArgs []string
	// Overlay is the root overlay mode (--overlay2): boot.OverlayNone
	// (write-through, the default when empty) or boot.OverlayMemory.
	Overlay string
	// Volatile is the --volatile mode (see specutils.VolatileNo...),
	// which the spec's specutils.VolatileAnnotation overrides.
	Volatile string
	// Network is the sandbox's network namespace (--network).
	Network NetworkMode
	// AdoptNetNS lets a pod in a user namespace of its own adopt a
	// network namespace the spec names by path (--adopt-netns; see
	// adoptableNetNS).
	AdoptNetNS bool
	// HostUserNS keeps pods in the host's user namespace
	// (--userns=host); otherwise each pod gets one of its own (see
	// newPodUserNS).
	HostUserNS bool
	// SystemdCgroup reads linux.cgroupsPath as systemd's
	// slice:prefix:name (--systemd-cgroup; see cgroup.SystemdPath).
	SystemdCgroup bool
	// SandboxLog and SandboxDebugLog are the files a new sandbox logs
	// to (--log, and --debug-log resolved for `runsc boot`), opened
	// here and handed over: a sandbox in a user namespace may not open
	// them itself. Empty for none.
	SandboxLog, SandboxDebugLog string
}

// CreateOpts are the arguments of create.
type CreateOpts struct {
	ID     string
	Bundle string
	// Spec is the loaded, validated spec.
	Spec *specs.Spec
	// PIDFile receives the init's host pid.
	PIDFile string
	// ConsoleSocket receives the pty master when Spec.Process.Terminal.
	ConsoleSocket string
	// Console, instead of ConsoleSocket, is a connected unix socket
	// that receives the pty master (runsc run uses one to relay the
	// terminal itself).
	Console *os.File
	// Stdio is the container's stdin, stdout and stderr.
	Stdio []*os.File
	// RuntimeConfig, if not nil, is the bundle's runtime config (see
	// specutils.LoadRuntimeConfig), applied before the container starts.
	RuntimeConfig *specutils.RuntimeConfig
	// Veth, with --network=veth, wires the new sandbox to the host.
	Veth *network.Veth
	// EmptyRoot (runsc do --volatile=yes without --root-dir) makes the
	// root an empty tmpfs; Spec.Root.Path is then an empty directory.
	EmptyRoot bool
	// exeCopy is the sealed copy of runsc the init starts from, made
	// while the sandbox starts.
	exeCopy *exeCopy
	// namesSet says create set the hostname and domainname itself
	// (see setJoinedUTSNames).
	namesSet bool
}

// killTimeout bounds the wait for a killed process to exit.
const killTimeout = 10 * time.Second

// Create creates a container: in a new sandbox, or, for a container of a
// pod (see podSandbox), in its pod's. It starts the container's gofer
// (and the sandbox), has the sandbox mount the container's root, and
// forks the container's init into the sandbox as a child of this
// process, waiting for start. On failure nothing is left behind:
// processes are killed and the state directory removed.
func Create(cfg Config, o CreateOpts) (*Container, error) {
	if err := specutils.ValidateID(o.ID); err != nil {
		return nil, err
	}
	if o.Spec.Process.Terminal && o.ConsoleSocket == "" && o.Console == nil {
		return nil, fmt.Errorf("create %q: process.terminal is true but --console-socket is not given", o.ID)
	}
	overlay, err := rootMode(cfg, o)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", o.ID, err)
	}
	if cfg.Network == NetworkHost && o.Spec.Linux != nil {
		for k := range o.Spec.Linux.Sysctl {
			if ns, _ := specutils.SysctlNamespace(k); ns == specs.NetworkNamespace {
				return nil, fmt.Errorf("config.json: linux.sysctl[%q]: not allowed with --network=host: it would change the host's", k)
			}
		}
	}
	if err := checkNamespaces(o.Spec); err != nil {
		return nil, err
	}
	sandboxID, err := podSandbox(cfg.Root, o.Spec)
	if err != nil {
		return nil, err
	}
	if (cfg.Network == NetworkVeth) != (o.Veth != nil && sandboxID == "") {
		return nil, fmt.Errorf("create %q: --network=veth: only runsc do wires a new sandbox with a veth pair (bundles: runtime.json interfaces)", o.ID)
	}
	var cu cleanup.Cleanup
	defer cu.Clean()
	// The init's binary is copied while the sandbox and gofer start.
	o.exeCopy = startExeCopy(cfg.Exe)
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("making --root %s: %w", cfg.Root, err)
	}
	dir := stateDir(cfg.Root, o.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q already exists", o.ID)
		}
		return nil, fmt.Errorf("making state directory: %w", err)
	}
	// A create that fails from here on is a container deleted: its
	// poststop hooks run, last, as the spec's lifecycle says.
	if len(hook.List(o.Spec, hook.Poststop)) > 0 {
		state := specs.State{Version: specs.Version, ID: o.ID, Status: specs.StateStopped, Bundle: o.Bundle, Annotations: o.Spec.Annotations}
		cu.Add(func() { hook.RunWarning(o.Spec, hook.Poststop, state) })
	}
	cu.Add(func() { os.RemoveAll(dir) })
	fd, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	c := &Container{root: cfg.Root, dir: dir, dirFD: fd, State: State{
		ID: o.ID, Bundle: o.Bundle, Annotations: o.Spec.Annotations, Overlay: overlay, SandboxID: o.ID,
	}}
	cu.Add(c.Close)
	if sandboxID != "" {
		if err := c.createSub(cfg, sandboxID, o); err != nil {
			return nil, err
		}
		cu.Release()
		return c, nil
	}

	if path, own := specNamespace(o.Spec, specs.UTSNamespace); own && path != "" {
		if err := setJoinedUTSNames(path, o.Spec); err != nil {
			return nil, err
		}
		o.namesSet = true
	}
	trees, _, err := goferTrees(o.Spec, overlay, nil)
	if err != nil {
		return nil, err
	}
	// The sandbox and the gofer start in parallel. The sandbox goes
	// first: it has more to do before it needs the gofer (set up its
	// root, take the create call) than the gofer has before it serves,
	// and each start holds this thread until the child has exec'd.
	bootProc, err := c.startPodSandbox(cfg, o.Spec, o.exeCopy)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", o.ID, err)
	}
	cu.Add(func() { c.Sandbox.fuseServer().kill(killTimeout); bootProc.Wait() })
	if o.Veth != nil {
		if err := c.addVeth(*o.Veth, &cu); err != nil {
			return nil, fmt.Errorf("create %q: %w", o.ID, err)
		}
	}
	if err := c.saveCreating(); err != nil {
		return nil, err
	}
	faultpoint.Reach(faultpoint.CreateSandbox)
	// Not reaped yet: the pid names the sandbox.
	sfd, err := unix.PidfdOpen(bootProc.Pid, 0)
	if err != nil {
		return nil, fmt.Errorf("create %q: pidfd of the sandbox: %w", o.ID, err)
	}
	sandboxFD := os.NewFile(uintptr(sfd), "sandbox-pidfd")
	defer sandboxFD.Close()

	if err := makeMountPoints(o.Spec, overlay); err != nil {
		return nil, fmt.Errorf("create %q: %w", o.ID, err)
	}
	goferCmd, sandboxEnds, err := startGofer(cfg, trees, o.exeCopy)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", o.ID, err)
	}
	c.Gofer = procOf(goferCmd.Process.Pid)
	cu.Add(func() { c.Gofer.kill(killTimeout); goferCmd.Wait() })
	defer closeAll(sandboxEnds)
	if err := c.saveCreating(); err != nil {
		return nil, err
	}
	faultpoint.Reach(faultpoint.CreateGofer)

	sbcg, err := sandboxCgroup(o.Spec, cfg.SystemdCgroup, cfg.Root, o.ID, c.Sandbox.PID, c.Gofer.PID)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", o.ID, err)
	}
	c.SandboxCgroup = sbcg
	cu.Add(func() {
		// Removable once its processes are gone, reaped: they are
		// this process's children.
		c.Sandbox.fuseServer().kill(killTimeout)
		bootProc.Wait()
		c.Gofer.kill(killTimeout)
		goferCmd.Wait()
		sbcg.Destroy()
	})
	if err := c.saveCreating(); err != nil {
		return nil, err
	}
	args := &boot.CreateArgs{CID: o.ID, Spec: o.Spec, Overlay: overlay, Stacked: stackedTrees(trees)}
	if err := c.createInSandbox(cfg, o, args, sandboxFD, nil, sandboxEnds, &cu); err != nil {
		return nil, err
	}
	// The processes outlive this command: let them go.
	if _, err := c.lifeline.Write([]byte{1}); err != nil {
		return nil, fmt.Errorf("create %q: releasing the sandbox: %w", o.ID, err)
	}
	c.lifeline.Close()
	c.lifeline = nil
	goferCmd.Process.Release()
	bootProc.Release()
	cu.Release()
	return c, nil
}

// createInSandbox forks the container's init into the sandbox that
// sandboxFD (a pidfd) names, has the sandbox mount the container's root
// from the gofer connections and take the init, lets the init set the
// container up, then records the result: init pid, --pid-file, spec copy
// and state. peer, if not nil, is a pidfd of the init whose pid
// namespace the container shares. Undo steps go on cu.
func (c *Container) createInSandbox(cfg Config, o CreateOpts, args *boot.CreateArgs, sandboxFD, peer *os.File, goferConns []*os.File, cu *cleanup.Cleanup) error {
	// Saved first: the sandbox is still starting up meanwhile.
	if err := c.saveSpec(o.Spec); err != nil {
		return err
	}
	// The init is forked in the sandbox's mount namespace, so only once
	// the sandbox has set it up (it answers calls only then): it never
	// runs where host paths resolve. It then starts up while the
	// sandbox mounts the container's root, and waits for that.
	if !c.IsSubcontainer() {
		err := c.call(boot.MethodState, &boot.CIDArgs{CID: c.ID}, &boot.StateResult{})
		if err != nil && !urpc.HasCode(err, boot.CodeNotInSandbox) {
			return err
		}
	}
	args.FilePayload = urpc.FilePayload{Files: goferConns}
	mounted := make(chan error, 1)
	go func() { mounted <- c.call(boot.MethodCreate, args, &boot.CreateResult{}) }()
	// Whatever happens next, the root is undone once it is made.
	mountErr := func() error {
		err := <-mounted
		mounted <- err
		if err == nil {
			cu.Add(func() { c.call(boot.MethodDestroy, &boot.CIDArgs{CID: c.ID}, &boot.Empty{}) })
		}
		return err
	}
	hostBinds, err := openHostBinds(o.Spec, sandboxFD)
	if err != nil {
		mountErr()
		return fmt.Errorf("create %q: %w", c.ID, err)
	}
	defer closeAll(hostBinds)
	// A pid namespace of its own, unless it shares one (see
	// sandboxPIDNS and pidPeer).
	_, joinedPID := sandboxPIDNS(o.Spec)
	io := initOpts{
		namesSet: o.namesSet,
		exe:      cfg.Exe, exeCopy: o.exeCopy, cid: c.ID, spec: o.Spec, hostBinds: hostBinds,
		stdio: o.Stdio, join: sandboxFD, sandbox: sandboxFD, newPIDNS: peer == nil && !joinedPID, pidPeer: peer,
	}
	if o.RuntimeConfig != nil {
		io.mkdir = o.RuntimeConfig.Mkdir
	}
	if o.Spec.Process.Terminal {
		io.stdio, io.console = nil, o.Console
		if io.console == nil {
			console, err := DialConsole(o.ConsoleSocket)
			if err != nil {
				return err
			}
			defer console.Close()
			io.console = console
		}
	}
	if path, own := specNamespace(o.Spec, specs.CgroupNamespace); own && path != "" {
		f, err := openNamespace(path, specs.CgroupNamespace, unix.CLONE_NEWCGROUP)
		if err != nil {
			mountErr()
			return err
		}
		defer f.Close()
		io.cgroupNS = f
	}
	p, err := forkInit(io)
	if err != nil {
		mountErr()
		return fmt.Errorf("create %q: %w", c.ID, err)
	}
	cu.Add(p.abandon)
	faultpoint.Reach(faultpoint.CreateInit)
	if err := mountErr(); err != nil {
		return err
	}
	raiseFUSEReadAhead(c.Sandbox.PID)
	// In its cgroup before anything of the container's runs.
	cg, err := containerCgroup(o.Spec, cfg.SystemdCgroup, c.root, c.ID, p.pid())
	if err != nil {
		return fmt.Errorf("create %q: %w", c.ID, err)
	}
	c.Cgroup = cg
	cu.Add(func() { p.abandon(); cg.Destroy() })
	if err := c.saveCreating(); err != nil {
		return err
	}
	faultpoint.Reach(faultpoint.CreateCgroup)
	init := &boot.AdoptArgs{CID: c.ID, FilePayload: urpc.FilePayload{Files: []*os.File{p.pidfd, p.start, p.execStatus}}}
	if err := c.call(boot.MethodInit, init, &boot.CreateResult{}); err != nil {
		return err
	}
	if err := c.releaseInit(o.Spec, p); err != nil {
		return err
	}
	// The sandbox keeps the start and exec-status pipes.
	p.start.Close()
	p.execStatus.Close()
	p.start, p.execStatus = nil, nil
	if err := p.waitReady(); err != nil {
		return fmt.Errorf("create %q: %w", c.ID, err)
	}
	faultpoint.Reach(faultpoint.CreateReady)
	if o.RuntimeConfig != nil {
		if err := c.applyRuntimeConfig(cfg, o.RuntimeConfig, p.pid(), cu); err != nil {
			return fmt.Errorf("create %q: %w", c.ID, err)
		}
		faultpoint.Reach(faultpoint.CreateNetwork)
	}
	initProc := procOf(p.pid())
	c.InitPID, c.InitStart = initProc.PID, initProc.Start
	if o.PIDFile != "" {
		if err := WritePIDFile(o.PIDFile, c.InitPID); err != nil {
			return err
		}
		cu.Add(func() { os.Remove(o.PIDFile) })
	}
	c.Status = boot.StatusCreated
	c.Created = time.Now().UTC()
	if err := c.save(); err != nil {
		return err
	}
	faultpoint.Reach(faultpoint.CreateSaved)
	p.close()
	c.fresh = true
	c.child = p.proc
	return nil
}

// saveCreating records what create has made so far, with the status
// creating: a create killed half-way then leaves a state that delete
// --force cleans up (its sandbox, gofer and cgroup), as runc's does.
func (c *Container) saveCreating() error {
	c.Status = boot.StatusCreating
	return c.save()
}

// instanceName names the runsc --root in default cgroup paths: two roots
// may hold the same container ID.
func instanceName(root string) string {
	sum := sha256.Sum256([]byte(root))
	return hex.EncodeToString(sum[:6])
}

// containerCgroup makes the cgroup of spec's linux.cgroupsPath, applies
// its linux.resources and moves process pid (the container's init) in.
// On failure nothing is left.
func containerCgroup(spec *specs.Spec, systemd bool, root, id string, pid int) (*cgroup.Cgroup, error) {
	path, err := cgroupsPath(spec, systemd)
	if err != nil {
		return nil, err
	}
	res := &specs.LinuxResources{}
	if spec.Linux != nil && spec.Linux.Resources != nil {
		r := *spec.Linux.Resources
		res = &r
	}
	if res.Devices == nil {
		// runc's default device rules even without any: no device
		// but its defaults.
		res.Devices = []specs.LinuxDeviceCgroup{}
	}
	// Without a cgroupsPath: /runsc/<hash of --root>/<id>.
	cg, err := cgroup.Resolve(path, instanceName(root), id)
	if err != nil {
		return nil, err
	}
	var cu cleanup.Cleanup
	defer cu.Clean()
	cu.Add(func() { cg.Destroy() })
	if err := cg.Create(); err != nil {
		return nil, err
	}
	// Deleting the container kills what is left in its cgroup: it must
	// be the container's alone, as runc requires.
	if pids := cg.Pids(); len(pids) > 0 {
		cu.Release()
		return nil, fmt.Errorf("config.json: linux.cgroupsPath %q: the cgroup already holds processes (%d of them): another container's?", path, len(pids))
	}
	if err := cg.Set(res); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	if err := cg.Add(pid); err != nil {
		return nil, err
	}
	cu.Release()
	return cg, nil
}

// DialConsole connects to a --console-socket and returns the connection
// as a file to hand to the sandbox.
func DialConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	return f, nil
}

// WritePIDFile writes pid to path atomically, as runc does: into a new
// file of a random name in the same directory (made with O_EXCL, never
// through a symbolic link), then renamed over path.
func WritePIDFile(path string, pid int) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--pid-file %s: %w", path, err)
	}
	tmp := f.Name()
	// Through the descriptor: the temporary name is in a directory
	// others may write to.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.WriteString(strconv.Itoa(pid))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--pid-file %s: %w", path, err)
	}
	return nil
}

// specNetNS returns the path of the spec's network namespace, if any,
// and whether the spec asks for a network namespace at all.
func specNetNS(spec *specs.Spec) (string, bool) {
	return specNamespace(spec, specs.NetworkNamespace)
}

// specNamespace returns the path of the spec's namespace of type typ, if
// any, and whether the spec lists that type at all.
func specNamespace(spec *specs.Spec, typ specs.LinuxNamespaceType) (string, bool) {
	if spec.Linux == nil {
		return "", false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == typ {
			return ns.Path, true
		}
	}
	return "", false
}

// closeAll closes files.
func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
