package critest

// A minimal private containerd with CRI, and a registry, in a network
// namespace of their own. It stands in for tests/internal/ctrdenv, which
// did not exist yet when this was written; to be unified with it.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// criID is the form of the IDs containerd's CRI gives containers.
var criID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// registryAddr is where the private registry listens, inside the run's
// network namespace.
const registryAddr = "localhost:5000"

// mirrored are the registries critest's images come from; containerd pulls
// them from the private registry instead (same repository paths).
var mirrored = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io"}

// sandboxImage is containerd's pause image: one no spec removes (the
// image specs remove registry.k8s.io/pause:3.9 and every tag of its
// image).
const sandboxImage = "registry.k8s.io/runsc-critest/pause:1"

// env is the run's private set-up under dir.
type env struct {
	t   *testing.T
	dir string
	// holder keeps the network namespace alive; everything else is
	// started in it with nsenter.
	holder *exec.Cmd
	netns  string
	ipcns  string
	// containerd and registry are daemons in the namespace.
	containerd, registry *daemon
	sock                 string
	// privBin holds private copies of runsc and its shim, so that this
	// run's runsc processes are those whose executable lies there.
	privBin              string
	runscRoot, runcRoot  string
	runcBinary, shimPath string
}

// daemon is a long-running process in its own process group.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func pgid() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }

// startDaemon starts args in the run's network namespace with its output
// in logs/<name>.log.
func (e *env) startDaemon(name string, extraEnv []string, args ...string) (*daemon, error) {
	log := filepath.Join(e.dir, "logs", name+".log")
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command("nsenter", append(e.nsenterFlags(), args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = pgid()
	cmd.Env = append(os.Environ(), extraEnv...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{}), log: log}
	go func() { cmd.Wait(); close(d.done) }()
	return d, nil
}

// stop sends SIGTERM, then SIGKILL to the process group after grace.
func (d *daemon) stop(grace time.Duration) error {
	if d == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
	}
	killGroup(d.cmd.Process.Pid)
	<-d.done
	return fmt.Errorf("%s ignored SIGTERM for %v and was killed", d.name, grace)
}

// waitFor polls ready every 100ms until it returns nil, the daemon exits
// or timeout passes.
func (d *daemon) waitFor(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("%s exited at start-up (%v); its log:\n%s", d.name, d.cmd.ProcessState, tail(d.log, 30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v (%v); its log:\n%s", d.name, timeout, err, tail(d.log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
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

// inNetns runs a one-shot command in the run's network namespace.
func (e *env) inNetns(timeout time.Duration, args ...string) (string, error) {
	return runBounded(timeout, "nsenter", append(e.nsenterFlags(), args...)...)
}

// nsenterFlags enter the run's network and IPC namespaces (the IPC
// namespace is the "host" one of HostIpc pods: the segments critest
// makes with ipcmk go away with it).
func (e *env) nsenterFlags() []string {
	return []string{"--net=" + e.netns, "--ipc=" + e.ipcns, "--"}
}

// newEnv makes the run directory, the network namespace, the registry and
// containerd. Cleanup is registered on t.
func newEnv(t *testing.T, runsc, shim string) *env {
	dir, err := os.MkdirTemp("", "runsc-critest-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "containerd.sock")}
	t.Cleanup(e.teardown)
	for _, d := range []string{"logs", "bin", "cni", "registry", "runsc-root", "runc-root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.privBin = filepath.Join(dir, "bin")
	e.runscRoot = filepath.Join(dir, "runsc-root")
	e.runcRoot = filepath.Join(dir, "runc-root")
	for _, src := range []string{runsc, shim} {
		if out, err := exec.Command("cp", src, e.privBin).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v: %s", src, err, out)
		}
	}
	e.shimPath = filepath.Join(e.privBin, filepath.Base(shim))
	if e.runcBinary, err = exec.LookPath("runc"); err != nil {
		t.Skipf("runc not found (the runc handler is the reference): %v", err)
	}

	// The namespace: unshare --net runs a sleep that holds it.
	holder := exec.Command("unshare", "--net", "--ipc", "--", "sleep", "86400")
	holder.SysProcAttr = pgid()
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare --net: %v", err)
	}
	e.holder = holder
	go holder.Wait()
	e.netns = fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
	e.ipcns = fmt.Sprintf("/proc/%d/ns/ipc", holder.Process.Pid)
	self, _ := os.Readlink("/proc/self/ns/net")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ns, err := os.Readlink(e.netns)
		if err == nil && ns != self {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unshare --net: no new network namespace after 10s (%v)", err)
		}
	}
	if _, err := e.inNetns(10*time.Second, "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	t.Logf("run directory %s; network and IPC namespaces of pid %d (unshare --net --ipc)", dir, holder.Process.Pid)

	e.startRegistry()
	e.startContainerd()
	return e
}

// startRegistry starts Debian's docker-registry on 127.0.0.1:5000, its
// storage under the run directory.
func (e *env) startRegistry() {
	t := e.t
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
`, filepath.Join(e.dir, "registry"))
	path := filepath.Join(e.dir, "registry.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := e.startDaemon("registry", nil, "docker-registry", "serve", path)
	if err != nil {
		t.Fatal(err)
	}
	e.registry = d
	if err := d.waitFor(30*time.Second, func() error {
		// The registry's API root answers 200 once it serves.
		_, err := e.inNetns(5*time.Second, "busybox", "wget", "-q", "-O", "/dev/null", "http://"+registryAddr+"/v2/")
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// startContainerd writes the CRI configuration and starts containerd.
func (e *env) startContainerd() {
	t := e.t
	// containerd 1.6 wants an address on the pod's eth0: a bridge with
	// host-local addresses, both inside the run's network namespace (no
	// bridge or address appears on the host), IPAM state under the run
	// directory.
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "runsc-critest",
  "plugins": [
    {"type": "bridge", "bridge": "critest0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "10.99.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`, filepath.Join(e.dir, "cni-ipam"))
	if err := os.WriteFile(filepath.Join(e.dir, "cni", "10-critest.conflist"), []byte(cni), 0o644); err != nil {
		t.Fatal(err)
	}
	// runsc's debug log, one file per command, kept with the logs on
	// failure: containerd only reports "exit status 1: unknown".
	runscToml := fmt.Sprintf("binary_name = %q\nroot = %q\n[runsc_config]\n  debug = \"true\"\n  debug-log = %q\n",
		filepath.Join(e.privBin, "runsc"), e.runscRoot, filepath.Join(e.dir, "logs", "runsc")+"/%ID%/")
	runscTomlPath := filepath.Join(e.dir, "runsc.toml")
	if err := os.WriteFile(runscTomlPath, []byte(runscToml), 0o644); err != nil {
		t.Fatal(err)
	}
	const cri = `plugins."io.containerd.grpc.v1.cri"`
	var mirrors strings.Builder
	for _, r := range mirrored {
		fmt.Fprintf(&mirrors, "[%s.registry.mirrors.%q]\n  endpoint = [\"http://%s\"]\n", cri, r, registryAddr)
	}
	conf := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[%[5]s]
  sandbox_image = %[6]q
  # root lacks CAP_SYS_RESOURCE here.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

[%[5]s.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[%[5]s.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[%[5]s.containerd.runtimes.runc.options]
  BinaryName = %[7]q
  Root = %[8]q

[%[5]s.containerd.runtimes.runsc]
  runtime_type = "io.containerd.runsc.v1"
[%[5]s.containerd.runtimes.runsc.options]
  TypeUrl = "io.containerd.runsc.v1.options"
  ConfigPath = %[9]q

[%[5]s.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = %[10]q

%[11]s`, filepath.Join(e.dir, "root"), filepath.Join(e.dir, "state"), e.sock, e.sock+".ttrpc",
		cri, sandboxImage, e.runcBinary, e.runcRoot, runscTomlPath, filepath.Join(e.dir, "cni"), mirrors.String())
	path := filepath.Join(e.dir, "config.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The runsc shim is found on containerd's PATH: the private copy first.
	envPath := "PATH=" + e.privBin + ":" + os.Getenv("PATH")
	d, err := e.startDaemon("containerd", []string{envPath}, "containerd", "--config", path, "--log-level", "info")
	if err != nil {
		t.Fatal(err)
	}
	e.containerd = d
	start := time.Now()
	if err := d.waitFor(60*time.Second, func() error {
		c, err := net.Dial("unix", e.sock)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd (pid %d) listening on %s after %v; runc root %s, runsc root %s", d.cmd.Process.Pid, e.sock,
		time.Since(start).Round(time.Millisecond), e.runcRoot, e.runscRoot)
}

// teardown removes what the run left: containers (through the runtimes,
// under their private roots), shims of this containerd, containerd, the
// registry, processes of the private runsc, mounts under the run
// directory, and the directory. What it had to remove is logged.
func (e *env) teardown() {
	t := e.t
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	for _, rt := range []struct{ bin, root string }{{e.runcBinary, e.runcRoot}, {filepath.Join(e.privBin, "runsc"), e.runscRoot}} {
		if rt.bin == "" || rt.root == "" {
			continue
		}
		// The shims keep the state under <root>/<containerd namespace>.
		root := filepath.Join(rt.root, "k8s.io")
		if _, err := os.Stat(root); err != nil {
			continue
		}
		out, err := runBounded(30*time.Second, rt.bin, "--root", root, "list", "-q")
		if err != nil {
			note("%v", err)
			continue
		}
		for _, id := range strings.Fields(out) {
			if !criID.MatchString(id) {
				continue
			}
			note("container %s left in %s: deleted", id, root)
			if _, err := runBounded(30*time.Second, rt.bin, "--root", root, "delete", "--force", id); err != nil {
				note("%v", err)
			}
		}
	}
	if e.containerd != nil {
		if err := e.containerd.stop(15 * time.Second); err != nil {
			note("%v", err)
		}
	}
	// Shims outlive containerd: those of this containerd name its socket.
	for _, p := range procsMatching(func(pid int, exe, cmdline string) bool {
		return strings.Contains(exe, "containerd-shim") && strings.Contains(cmdline, e.sock)
	}) {
		note("shim left: %s", p)
	}
	killMatching(func(pid int, exe, cmdline string) bool {
		return strings.Contains(exe, "containerd-shim") && strings.Contains(cmdline, e.sock)
	})
	if e.privBin != "" {
		for _, p := range procsMatching(func(pid int, exe, cmdline string) bool { return strings.HasPrefix(exe, e.privBin+"/") }) {
			note("runsc process left: %s", p)
		}
		killMatching(func(pid int, exe, cmdline string) bool { return strings.HasPrefix(exe, e.privBin+"/") })
	}
	if e.registry != nil {
		e.registry.stop(5 * time.Second)
	}
	if e.holder != nil {
		killGroup(e.holder.Process.Pid)
	}
	for _, m := range mountsUnder(e.dir) {
		note("mount left: %s (unmounted)", m)
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	for _, n := range notes {
		t.Logf("cleanup: %s", n)
	}
	if t.Failed() || os.Getenv("CRITEST_KEEP") != "" {
		// Keep the logs (critest's, containerd's), drop the rest.
		for _, d := range []string{"root", "state", "registry", "runsc-root", "runc-root", "bin"} {
			os.RemoveAll(filepath.Join(e.dir, d))
		}
		t.Logf("logs kept in %s", filepath.Join(e.dir, "logs"))
		return
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Logf("cleanup: removing %s: %v", e.dir, err)
	}
}

// procsMatching lists "pid exe cmdline" of the processes match accepts.
func procsMatching(match func(pid int, exe, cmdline string) bool) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		if match(pid, exe, cmdline) {
			out = append(out, fmt.Sprintf("%d %s %s", pid, exe, cmdline))
		}
	}
	return out
}

// killMatching SIGKILLs the processes match accepts, repeatedly until none
// is left or 10s have passed.
func killMatching(match func(pid int, exe, cmdline string) bool) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ps := procsMatching(match)
		if len(ps) == 0 {
			return
		}
		for _, p := range ps {
			pid, _ := strconv.Atoi(strings.Fields(p)[0])
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}
