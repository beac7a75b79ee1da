// Package ctrdenv is shared by the end-to-end tests that drive a private
// containerd (tests/containerd, tests/cri and critest-based tests): it
// starts Debian's containerd with its own configuration, root, state and
// sockets under a directory of the test, in a private network namespace
// (unshare --net, its loopback up), optionally with the CRI plugin; and
// it writes OCI image archives of a local root file system for `ctr
// images import`, since the tests have no registry to pull from. It also
// lists processes and mounts for the tests' leak checks.
//
// The API:
//
//	d, err := ctrdenv.Start(ctrdenv.Config{Dir: dir, Path: []string{binDir}, CRI: criTOML})
//	d.Socket, d.Log, d.Pid()      // containerd's gRPC socket, log file, pid
//	d.CtrArgs("k8s.io", "images", "import", archive)   // ctr's argv
//	d.NetnsPath(), d.Dial("tcp", "127.0.0.1:PORT", timeout) // its network namespace
//	d.Done()                      // closed when containerd exits
//	d.Stop()                      // SIGTERM, then SIGKILL to its group after 10s
//	ctrdenv.MakeRootfs(dir)       // busybox root (scripts/mkrootfs.sh)
//	ctrdenv.WriteImage(archive, ctrdenv.Image{Rootfs: dir, Entrypoint: ...})
//	ctrdenv.Processes(), ctrdenv.Mounts(), ctrdenv.IsShimOf(p, d.Socket), ctrdenv.Tail(d.Log, 30)
package ctrdenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runsc/runsc/internal/testhelp"
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
	cmd     *exec.Cmd
	done    chan struct{}
	// private says containerd runs in a network namespace of its own.
	private bool
}

// Start writes containerd's configuration under c.Dir and starts it, in a
// private network namespace when unshare(1) is there, in its own process
// group, then waits (bounded by c.Timeout) until `ctr version` answers on
// its socket. On error after containerd started, it stops it.
func Start(c Config) (*Containerd, error) {
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	d := &Containerd{
		Dir:        c.Dir,
		Socket:     filepath.Join(c.Dir, "containerd.sock"),
		ConfigPath: filepath.Join(c.Dir, "config.toml"),
		Log:        filepath.Join(c.Dir, "containerd.log"),
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
	if unshare, err := exec.LookPath("unshare"); err == nil {
		// unshare execs containerd: the child is containerd itself.
		args = append([]string{unshare, "--net"}, args...)
		d.Netns = "in a private network namespace (unshare --net) with lo up"
		d.private = true
	}
	logFile, err := os.Create(d.Log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = os.Environ()
	if len(c.Path) > 0 {
		cmd.Env = append(cmd.Env, "PATH="+strings.Join(c.Path, ":")+":"+os.Getenv("PATH"))
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting containerd: %v", err)
	}
	d.cmd = cmd
	d.done = make(chan struct{})
	go func() { cmd.Wait(); close(d.done) }()

	fail := func(err error) (*Containerd, error) {
		d.Stop()
		return nil, err
	}
	for deadline := time.Now().Add(c.Timeout); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-d.done:
			return nil, fmt.Errorf("containerd exited at start-up (%v); its log:\n%s", cmd.ProcessState, Tail(d.Log, 30))
		default:
		}
		if conn, err := net.Dial("unix", d.Socket); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("containerd did not listen on %s within %v; its log:\n%s", d.Socket, c.Timeout, Tail(d.Log, 30)))
		}
	}
	if d.private {
		// unshare --net leaves the namespace's loopback down: bring it
		// up, so that 127.0.0.1 (CRI's streaming server, a test's
		// registry) is reachable there.
		if err := d.inNetns(loopbackUp); err != nil {
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
	err := d.inNetns(func() error {
		var err error
		conn, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return conn, err
}

// inNetns runs f on a locked OS thread that joined containerd's network
// namespace; sockets f makes belong to that namespace. The thread is
// never unlocked: it exits with its goroutine and runs nothing else.
func (d *Containerd) inNetns(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(d.NetnsPath())
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

// Pid is containerd's pid (unshare execs it).
func (d *Containerd) Pid() int { return d.cmd.Process.Pid }

// Done is closed when containerd has exited.
func (d *Containerd) Done() <-chan struct{} { return d.done }

// ProcessState is containerd's exit state once Done is closed.
func (d *Containerd) ProcessState() *os.ProcessState { return d.cmd.ProcessState }

// CtrArgs returns the arguments of a ctr command against d in containerd
// namespace ns: the global flags, then args.
func (d *Containerd) CtrArgs(ns string, args ...string) []string {
	return append([]string{"--address", d.Socket, "--namespace", ns}, args...)
}

// Stop stops containerd: SIGTERM, then SIGKILL to its process group if
// it has not exited within 10s (which it reports as an error). It may be
// called more than once.
func (d *Containerd) Stop() error {
	if d == nil || d.cmd == nil {
		return nil
	}
	select {
	case <-d.done:
		return nil
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
	return fmt.Errorf("containerd ignored SIGTERM for 10s and was killed")
}

// Tail returns the last n lines of file path (or the error reading it).
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Proc is a live (not zombie) process.
type Proc struct {
	Pid int
	// Exe is /proc/PID/exe's target; Args its command line, Cmdline
	// the same joined by spaces.
	Exe     string
	Args    []string
	Cmdline string
}

// Processes lists the live processes but the caller.
func Processes() []Proc {
	var ps []Proc
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() || !testhelp.Alive(pid) {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		ps = append(ps, Proc{Pid: pid, Exe: exe, Args: args, Cmdline: strings.Join(args, " ")})
	}
	return ps
}

// IsShimOf says whether p is a containerd shim (containerd-shim-*) started
// by the containerd listening on socket: shims carry `-address SOCKET`.
func IsShimOf(p Proc, socket string) bool {
	return strings.HasPrefix(filepath.Base(p.Exe), "containerd-shim-") && strings.Contains(p.Cmdline+" ", "-address "+socket+" ")
}

// Mount is a line of /proc/self/mountinfo with its mount point unescaped.
type Mount struct{ Point, Line string }

// Mounts lists the caller's mount namespace's mounts.
func Mounts() []Mount {
	var ms []Mount
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			ms = append(ms, Mount{Point: unescapeMount(f[4]), Line: line})
		}
	}
	return ms
}

var octalEscape = regexp.MustCompile(`\\[0-7]{3}`)

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	return octalEscape.ReplaceAllStringFunc(s, func(o string) string {
		n, _ := strconv.ParseUint(o[1:], 8, 8)
		return string(rune(n))
	})
}
