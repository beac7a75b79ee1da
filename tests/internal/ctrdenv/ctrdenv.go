// Package ctrdenv is shared by the end-to-end tests that drive a private
// containerd (tests/containerd, tests/cri and critest-based tests): it
// starts Debian's containerd with its own configuration, root, state and
// sockets under a directory of the test, in a private network namespace
// (unshare --net, its loopback up), optionally with the CRI plugin; and
// it writes OCI image archives of a local root file system for `ctr
// images import`, since the tests have no registry to pull from, or an
// OCI image layout of several images for a test's own registry. A test
// that needs containerd in namespaces shared with other daemons (a
// registry) makes them with NewNamespaces and passes them in
// Config.Namespaces.
//
// The API:
//
//	d, err := ctrdenv.Start(ctrdenv.Config{Dir: dir, Path: []string{binDir}, CRI: criTOML})
//	d.Socket, d.Log, d.Pid()      // containerd's gRPC socket, log file, pid
//	d.CtrArgs("k8s.io", "images", "import", archive)   // ctr's argv
//	d.NetnsPath(), d.Dial("tcp", "127.0.0.1:PORT", timeout) // its network namespace
//	d.Done()                      // closed when containerd exits
//	d.Stop()                      // SIGTERM, then SIGKILL to its group after 10s
//	ns, err := ctrdenv.NewNamespaces(true)  // net+IPC held by a process; ns.Nsenter(argv...)
//	ctrdenv.WriteImage(archive, ctrdenv.Image{Rootfs: dir, Entrypoint: ...})
//	l := &ctrdenv.Layout{}; l.AddImage(ref, created, cfg, layer); l.WriteDir(dir)  // several images
//	ctrdenv.IsShimOf(p, d.Socket)
package ctrdenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runsc/runsc/tests/internal/e2e"
)

// Config configures Start.
type Config struct {
	// Dir is the test's private directory (it must exist): containerd's
	// config.toml, root, state, socket and log go under it.
	Dir string
	// Path lists directories put before $PATH in containerd's
	// environment: containerd finds its shims (containerd-shim-NAME-v1,
	// -v2) on its PATH, and the shims inherit it.
	Path []string
	// CRI, when not empty, enables the CRI plugin (disabled otherwise)
	// and is appended to config.toml: the plugin's tables, e.g.
	// `[plugins."io.containerd.grpc.v1.cri"]` and its runtimes.
	CRI string
	// Timeout bounds the start-up; default 60s.
	Timeout time.Duration
	// Namespaces, when set, are the namespaces containerd runs in
	// (nsenter(1) into them), shared with the test's other daemons;
	// otherwise containerd gets a network namespace of its own.
	Namespaces *Namespaces
	// Log is containerd's log file; default Dir/containerd.log.
	Log string
}

// Containerd is a running private containerd.
type Containerd struct {
	// Dir is Config.Dir; Socket is containerd's gRPC socket (its ttrpc
	// socket is Socket+".ttrpc"); ConfigPath its config.toml; Log its
	// stdout and stderr.
	Dir, Socket, ConfigPath, Log string
	// Netns says how containerd is isolated from the host's network.
	Netns string
	// Version is `ctr version`'s output, on one line.
	Version string
	daemon  *e2e.Daemon
	// private says containerd runs in a network namespace of its own.
	private bool
}

// Start writes containerd's configuration under c.Dir and starts it, in
// c.Namespaces or else in a private network namespace when unshare(1) is
// there, in its own process group, then waits (bounded by c.Timeout)
// until `ctr version` answers on its socket. On error after containerd
// started, it stops it.
func Start(c Config) (*Containerd, error) {
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Log == "" {
		c.Log = filepath.Join(c.Dir, "containerd.log")
	}
	d := &Containerd{
		Dir:        c.Dir,
		Socket:     filepath.Join(c.Dir, "containerd.sock"),
		ConfigPath: filepath.Join(c.Dir, "config.toml"),
		Log:        c.Log,
	}
	disabled := `  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
`
	if c.CRI == "" {
		disabled = "  \"io.containerd.grpc.v1.cri\",\n" + disabled
	}
	// Only the plugins the tests use: no /opt/containerd, no
	// snapshotters but overlayfs and native, no tracing, and no CRI
	// unless asked. runtime.v1.linux stays: the tasks service needs it.
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
%s]

[grpc]
  address = %q

[ttrpc]
  address = %q

%s
`, filepath.Join(c.Dir, "root"), filepath.Join(c.Dir, "state"), disabled, d.Socket, d.Socket+".ttrpc", c.CRI)
	if err := os.WriteFile(d.ConfigPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	args := []string{"containerd", "--config", d.ConfigPath, "--log-level", "info"}
	d.Netns = "in the host's network namespace (no unshare(1))"
	if c.Namespaces != nil {
		// nsenter execs containerd (it forks only for a pid namespace).
		args = c.Namespaces.Nsenter(args...)
		d.Netns = "in the " + c.Namespaces.What
	} else if unshare, err := exec.LookPath("unshare"); err == nil {
		// unshare execs containerd: the child is containerd itself.
		args = append([]string{unshare, "--net"}, args...)
		d.Netns = "in a private network namespace (unshare --net) with lo up"
		d.private = true
	}
	var env []string
	if len(c.Path) > 0 {
		env = []string{"PATH=" + strings.Join(c.Path, ":") + ":" + os.Getenv("PATH")}
	}
	daemon, err := e2e.StartDaemon("containerd", d.Log, env, args...)
	if err != nil {
		return nil, err
	}
	d.daemon = daemon

	fail := func(err error) (*Containerd, error) {
		d.Stop()
		return nil, err
	}
	if err := daemon.WaitReady(c.Timeout, 50*time.Millisecond, func() error {
		conn, err := net.Dial("unix", d.Socket)
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		return fail(err)
	}
	if d.private {
		// unshare --net leaves the namespace's loopback down: bring it
		// up, so that 127.0.0.1 (CRI's streaming server, a test's
		// registry) is reachable there.
		if err := inNetns(d.NetnsPath(), loopbackUp); err != nil {
			return fail(fmt.Errorf("bringing lo up in containerd's network namespace: %v", err))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", d.CtrArgs("default", "version")...).CombinedOutput()
	if err != nil {
		return fail(fmt.Errorf("ctr version: %v: %s", err, out))
	}
	d.Version = strings.Join(strings.Fields(string(out)), " ")
	return d, nil
}

// NetnsPath names containerd's network namespace (/proc/PID/ns/net), e.g.
// for `nsenter --net=PATH` to start a server that containerd reaches on
// 127.0.0.1.
func (d *Containerd) NetnsPath() string { return fmt.Sprintf("/proc/%d/ns/net", d.Pid()) }

// Dial connects to addr (e.g. CRI's streaming server on 127.0.0.1) from
// inside containerd's network namespace.
func (d *Containerd) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := inNetns(d.NetnsPath(), func() error {
		var err error
		conn, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return conn, err
}

// inNetns runs f on a locked OS thread that joined the network
// namespace at path; sockets f makes belong to that namespace. The thread
// is never unlocked: it exits with its goroutine and runs nothing else.
func inNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns into %s: %v", ns.Name(), err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// loopbackUp sets the flag IFF_UP on lo in the calling thread's network
// namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %v", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %v", err)
	}
	return nil
}

// Pid is containerd's pid (unshare and nsenter exec it).
func (d *Containerd) Pid() int { return d.daemon.Pid() }

// Done is closed when containerd has exited.
func (d *Containerd) Done() <-chan struct{} { return d.daemon.Done() }

// ProcessState is containerd's exit state once Done is closed.
func (d *Containerd) ProcessState() *os.ProcessState { return d.daemon.ProcessState() }

// CtrArgs returns the arguments of a ctr command against d in containerd
// namespace ns: the global flags, then args.
func (d *Containerd) CtrArgs(ns string, args ...string) []string {
	return append([]string{"--address", d.Socket, "--namespace", ns}, args...)
}

// Stop stops containerd: SIGTERM, then SIGKILL to its process group if
// it has not exited within 10s (which it reports as an error). It may be
// called more than once.
func (d *Containerd) Stop() error {
	if d == nil {
		return nil
	}
	return d.daemon.Stop(10 * time.Second)
}

// Namespaces are a network namespace, and optionally an IPC namespace,
// held by a process of their own (unshare(1) running sleep), with the
// loopback up: containerd (Config.Namespaces) and a test's other daemons
// (a registry, with Nsenter) run there and reach each other on 127.0.0.1.
type Namespaces struct {
	// Net and IPC are the namespaces' paths (/proc/PID/ns/...); IPC is
	// empty without an IPC namespace.
	Net, IPC string
	// What describes them, e.g. "network and IPC namespaces of pid N
	// (unshare --net --ipc)".
	What   string
	holder *exec.Cmd
}

// NewNamespaces makes a network namespace, and an IPC namespace too if
// ipc, held by an unshare(1)d sleep in a process group of its own, and
// brings its loopback up. Close ends it.
func NewNamespaces(ipc bool) (*Namespaces, error) {
	args := []string{"--net"}
	if ipc {
		args = append(args, "--ipc")
	}
	holder := exec.Command("unshare", append(args, "--", "sleep", "86400")...)
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		return nil, fmt.Errorf("unshare %s: %v", strings.Join(args, " "), err)
	}
	go holder.Wait()
	pid := holder.Process.Pid
	n := &Namespaces{Net: fmt.Sprintf("/proc/%d/ns/net", pid), holder: holder,
		What: fmt.Sprintf("network namespace of pid %d (unshare %s)", pid, strings.Join(args, " "))}
	if ipc {
		n.IPC = fmt.Sprintf("/proc/%d/ns/ipc", pid)
		n.What = fmt.Sprintf("network and IPC namespaces of pid %d (unshare %s)", pid, strings.Join(args, " "))
	}
	// unshare execs sleep once it has unshared: wait for that.
	self, _ := os.Readlink("/proc/self/ns/net")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ns, err := os.Readlink(n.Net)
		if err == nil && ns != self {
			break
		}
		if time.Now().After(deadline) {
			n.Close()
			return nil, fmt.Errorf("unshare --net: no new network namespace after 10s (%v)", err)
		}
	}
	if err := inNetns(n.Net, loopbackUp); err != nil {
		n.Close()
		return nil, fmt.Errorf("bringing lo up in the %s: %v", n.What, err)
	}
	return n, nil
}

// Nsenter returns the command line that runs args in the namespaces.
func (n *Namespaces) Nsenter(args ...string) []string {
	flags := []string{"nsenter", "--net=" + n.Net}
	if n.IPC != "" {
		flags = append(flags, "--ipc="+n.IPC)
	}
	return append(append(flags, "--"), args...)
}

// Pid is the pid of the process holding the namespaces.
func (n *Namespaces) Pid() int { return n.holder.Process.Pid }

// Close kills the holding process; the namespaces go with their last
// process. It may be called on nil.
func (n *Namespaces) Close() {
	if n != nil {
		syscall.Kill(-n.holder.Process.Pid, syscall.SIGKILL)
	}
}

// IsShimOf says whether p is a containerd shim (containerd-shim-*) started
// by the containerd listening on socket: shims carry `-address SOCKET`.
func IsShimOf(p e2e.Proc, socket string) bool {
	return strings.HasPrefix(filepath.Base(p.Exe), "containerd-shim-") && strings.Contains(p.Cmdline+" ", "-address "+socket+" ")
}
