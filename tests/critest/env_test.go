package critest

// The run's private containerd with CRI (tests/internal/ctrdenv), and a
// registry, in network and IPC namespaces of their own.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runsc/runsc/tests/internal/ctrdenv"
	"github.com/runsc/runsc/tests/internal/e2e"
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
	// ns are the network and IPC namespaces (the IPC namespace is the
	// "host" one of HostIpc pods: the segments critest makes with ipcmk
	// go away with it) that containerd, the registry and critest run in.
	ns *ctrdenv.Namespaces
	// containerd and registry are daemons in the namespaces.
	containerd *ctrdenv.Containerd
	registry   *e2e.Daemon
	sock       string
	// privBin holds private copies of runsc and its shim, so that this
	// run's runsc processes are those whose executable lies there.
	privBin              string
	runscRoot, runcRoot  string
	runcBinary, shimPath string
}

// inNetns runs a one-shot command in the run's namespaces.
func (e *env) inNetns(timeout time.Duration, args ...string) (string, error) {
	argv := e.ns.Nsenter(args...)
	return e2e.Output(timeout, argv[0], argv[1:]...)
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
		if err := e2e.Copy(src, e.privBin); err != nil {
			t.Fatalf("copying %s: %v", src, err)
		}
	}
	e.shimPath = filepath.Join(e.privBin, filepath.Base(shim))
	if e.runcBinary, err = exec.LookPath("runc"); err != nil {
		t.Skipf("runc not found (the runc handler is the reference): %v", err)
	}

	// The namespaces: unshare --net --ipc runs a sleep that holds them.
	if e.ns, err = ctrdenv.NewNamespaces(true); err != nil {
		t.Fatal(err)
	}
	t.Logf("run directory %s; %s", dir, e.ns.What)

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
	d, err := e2e.StartDaemon("registry", filepath.Join(e.dir, "logs", "registry.log"), nil, e.ns.Nsenter("docker-registry", "serve", path)...)
	if err != nil {
		t.Fatal(err)
	}
	e.registry = d
	if err := d.WaitReady(30*time.Second, 100*time.Millisecond, func() error {
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
	// The same runsc with pods in the host's user namespace.
	hostUserNSTomlPath := filepath.Join(e.dir, "runsc-host-userns.toml")
	if err := os.WriteFile(hostUserNSTomlPath, []byte(runscToml+"  userns = \"host\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const cri = `plugins."io.containerd.grpc.v1.cri"`
	var mirrors strings.Builder
	for _, r := range mirrored {
		fmt.Fprintf(&mirrors, "[%s.registry.mirrors.%q]\n  endpoint = [\"http://%s\"]\n", cri, r, registryAddr)
	}
	conf := fmt.Sprintf(`[%[1]s]
  sandbox_image = %[2]q
  # root lacks CAP_SYS_RESOURCE here.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

[%[1]s.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[%[1]s.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[%[1]s.containerd.runtimes.runc.options]
  BinaryName = %[3]q
  Root = %[4]q

[%[1]s.containerd.runtimes.runsc]
  runtime_type = "io.containerd.runsc.v1"
[%[1]s.containerd.runtimes.runsc.options]
  TypeUrl = "io.containerd.runsc.v1.options"
  ConfigPath = %[5]q

[%[1]s.containerd.runtimes.runsc-host-userns]
  runtime_type = "io.containerd.runsc.v1"
[%[1]s.containerd.runtimes.runsc-host-userns.options]
  TypeUrl = "io.containerd.runsc.v1.options"
  ConfigPath = %[8]q

[%[1]s.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = %[6]q

%[7]s`, cri, sandboxImage, e.runcBinary, e.runcRoot, runscTomlPath, filepath.Join(e.dir, "cni"), mirrors.String(), hostUserNSTomlPath)
	// The runsc shim is found on containerd's PATH: the private copy first.
	start := time.Now()
	d, err := ctrdenv.Start(ctrdenv.Config{Dir: e.dir, Path: []string{e.privBin}, CRI: conf, Namespaces: e.ns,
		Log: filepath.Join(e.dir, "logs", "containerd.log")})
	if err != nil {
		t.Fatal(err)
	}
	e.containerd, e.sock = d, d.Socket
	t.Logf("containerd (pid %d) listening on %s after %v; runc root %s, runsc root %s", d.Pid(), e.sock,
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
		out, err := e2e.Output(30*time.Second, rt.bin, "--root", root, "list", "-q")
		if err != nil {
			note("%v", err)
			continue
		}
		for _, id := range strings.Fields(out) {
			if !criID.MatchString(id) {
				continue
			}
			note("container %s left in %s: deleted", id, root)
			if _, err := e2e.Output(30*time.Second, rt.bin, "--root", root, "delete", "--force", id); err != nil {
				note("%v", err)
			}
		}
	}
	if err := e.containerd.Stop(); err != nil {
		note("%v", err)
	}
	// Shims outlive containerd: those of this containerd name its socket.
	isShim := func(p e2e.Proc) bool { return ctrdenv.IsShimOf(p, e.sock) }
	for _, p := range procsMatching(isShim) {
		note("shim left: %s", p)
	}
	e2e.KillAll(isShim, nil)
	if e.privBin != "" {
		isRunsc := func(p e2e.Proc) bool { return strings.HasPrefix(p.Exe, e.privBin+"/") }
		for _, p := range procsMatching(isRunsc) {
			note("runsc process left: %s", p)
		}
		e2e.KillAll(isRunsc, nil)
	}
	e.registry.Stop(5 * time.Second)
	e.ns.Close()
	for _, m := range e2e.UnmountUnder(e.dir + "/") {
		note("mount left: %s (unmounted)", m)
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
func procsMatching(match func(e2e.Proc) bool) []string {
	var out []string
	for _, p := range e2e.Processes() {
		if match(p) {
			out = append(out, fmt.Sprintf("%d %s %s", p.Pid, p.Exe, p.Cmdline))
		}
	}
	return out
}
