// Package cri holds an end-to-end test that drives containerd's CRI plugin
// (Debian's containerd 1.6) over gRPC with the Kubernetes CRI v1 API
// (k8s.io/cri-api), as the kubelet does, with two runtime handlers:
//
//   - runc: io.containerd.runc.v2 with Debian's runc, to validate the
//     harness itself;
//   - runsc: runtime_type io.containerd.runsc.v1, runsc's shim
//     (containerd-shim-runsc-v1), with options ConfigPath naming a
//     runsc.toml the test writes ([runsc_config] debug-log).
//
// The containerd is private (tests/internal/ctrdenv): its configuration,
// root, state and sockets under a temp dir, in a network namespace of its
// own (unshare --net), with a CNI configuration of Debian's
// containernetworking-plugins (/usr/lib/cni): a bridge inside that
// namespace and host-local addresses recorded under the temp dir (CRI
// 1.6 refuses a loopback-only list); pod network namespaces are mounted
// under its state dir. There is no registry: the test builds OCI image
// archives of a busybox root file system (scripts/mkrootfs.sh), the
// workload image localhost/busybox:latest and the sandbox ("pause") image
// localhost/pause:runsc-test (entrypoint /bin/sleep infinity), and imports
// them with `ctr -n k8s.io images import`. The runtime binaries are
// private copies under the temp dir (bin/runsc and bin/containerd-shim-runsc-v1,
// found on containerd's PATH), so that only this run's processes carry
// their paths.
//
// It needs root, containerd, ctr, runc, the CNI bridge plugin, and
// $RUNSC_BINARY with containerd-shim-runsc-v1 next to it (`make build`);
// otherwise it skips with a message. CRI_TEST_STEP_TIMEOUT (a Go duration,
// default 60s) bounds every CRI call.
package cri

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/runsc/runsc/tests/internal/ctrdenv"
	"github.com/runsc/runsc/tests/internal/e2e"
)

// Names of the environment variables that configure the suite.
const (
	envRunsc       = "RUNSC_BINARY"
	envStepTimeout = "CRI_TEST_STEP_TIMEOUT"
)

const (
	// busyboxRef is the workload image; pauseRef the sandbox image.
	busyboxRef = "localhost/busybox:latest"
	pauseRef   = "localhost/pause:runsc-test"
	// k8sNS is the containerd namespace of the CRI plugin.
	k8sNS = "k8s.io"
	// cniDir is where Debian's containernetworking-plugins live.
	cniDir = "/usr/lib/cni"
	// runscShim is the base name of runsc's containerd shim.
	runscShim = "containerd-shim-runsc-v1"
	// runscRoot is runsc's state root under the runsc shim's default
	// root for the CRI namespace; runcRoot the runc v2 shim's.
	runscRoot = "/run/containerd/runsc/" + k8sNS
	runcRoot  = "/run/containerd/runc/" + k8sNS
)

// skipReason, when set, makes every test skip with it.
var skipReason string

// suite is the run's set-up; nil when the suite skips.
var suite *env

// env is the run's private containerd with CRI.
type env struct {
	dir string
	// runsc is the private copy of the runsc under test; the shim is
	// next to it.
	runsc       string
	stepTimeout time.Duration
	d           *ctrdenv.Containerd
	conn        *grpc.ClientConn
	rt          runtimeapi.RuntimeServiceClient
	img         runtimeapi.ImageServiceClient
	// runscLogs is the runsc.toml's debug-log directory root.
	runscLogs string
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	runsc := os.Getenv(envRunsc)
	missing := e2e.Missing("containerd", "ctr", "containerd-shim-runc-v2", "runc")
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root (a private containerd with CRI): run `make test` as root"
	case runsc == "":
		skipReason = "no runsc to test: set " + envRunsc + " (as `make integration` does)"
	case len(missing) > 0:
		skipReason = strings.Join(missing, ", ") + " not found: install containerd and runc (scripts/deps.sh)"
	}
	if skipReason == "" {
		if _, err := os.Stat(filepath.Join(cniDir, "bridge")); err != nil {
			skipReason = "no CNI bridge plugin in " + cniDir + ": install containernetworking-plugins (scripts/deps.sh)"
		} else if _, err := os.Stat(filepath.Join(filepath.Dir(runsc), runscShim)); err != nil {
			skipReason = fmt.Sprintf("%s is not next to %s: run `make build`", runscShim, runsc)
		}
	}
	if skipReason != "" {
		fmt.Printf("cri tests: skipping: %s\n", skipReason)
		return m.Run()
	}
	stepTimeout, err := e2e.StepTimeout(envStepTimeout, 60*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return e2e.Main(m, "cri tests", func() (func() []string, error) {
		var err error
		if suite, err = setup(runsc, stepTimeout); suite == nil {
			return nil, err
		}
		return suite.teardown, err
	})
}

// logf prints a suite-level message (outside any test).
func logf(format string, args ...any) {
	fmt.Printf("cri tests: "+format+"\n", args...)
}

// setup copies the binaries, writes runsc.toml and the CNI configuration,
// starts containerd with CRI, imports the two images and connects to CRI.
// On error, the returned environment (if any) still needs a teardown.
func setup(runsc string, stepTimeout time.Duration) (*env, error) {
	src, err := e2e.Resolve(runsc)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cri-e2e-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, stepTimeout: stepTimeout, runscLogs: filepath.Join(dir, "runsc-logs")}
	for _, d := range []string{"bin", "image", "cni", "pods", "volumes", "runsc-logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return e, err
		}
	}
	e.runsc = filepath.Join(dir, "bin", "runsc")
	for from, to := range map[string]string{src: e.runsc, filepath.Join(filepath.Dir(src), runscShim): filepath.Join(dir, "bin", runscShim)} {
		if err := e2e.Copy(from, to); err != nil {
			return e, fmt.Errorf("copying %s: %v", from, err)
		}
	}
	runscToml := filepath.Join(dir, "runsc.toml")
	if err := os.WriteFile(runscToml, []byte(fmt.Sprintf("[runsc_config]\n  debug-log = %q\n", e.runscLogs+"/%ID%/")), 0o644); err != nil {
		return e, err
	}
	// containerd 1.6 fails RunPodSandbox ("failed to find network info")
	// unless CNI gives the pod an eth0 with an address, so a loopback-only
	// list will not do: a bridge in containerd's private network
	// namespace (invisible on the host), host-local addresses recorded
	// under the run's directory, no gateway, no masquerading; CRI adds
	// the loopback network itself.
	conflist := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "runsc-cri-test", "plugins": [
  {"type": "bridge", "bridge": "cni-runsc0", "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.0.0/24"}]], "dataDir": %q}}]}`, filepath.Join(dir, "cni-ipam"))
	if err := os.WriteFile(filepath.Join(dir, "cni", "10-runsc-test.conflist"), []byte(conflist), 0o644); err != nil {
		return e, err
	}
	cri := fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # root lacks CAP_SYS_RESOURCE here.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
      runtime_type = "io.containerd.runsc.v1"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
`, pauseRef, runscToml, cniDir, filepath.Join(dir, "cni"))
	d, err := ctrdenv.Start(ctrdenv.Config{Dir: dir, Path: []string{filepath.Join(dir, "bin")}, CRI: cri, Timeout: stepTimeout})
	if err != nil {
		return e, err
	}
	e.d = d
	logf("containerd (pid %d) %s with CRI answered: %s", d.Pid(), d.Netns, d.Version)
	logf("run directory %s; runsc %s and %s (private copies of %s and the shim next to it) on containerd's PATH; runsc.toml %s: debug-log %s/%%ID%%/",
		dir, e.runsc, runscShim, src, runscToml, e.runscLogs)

	rootfs := filepath.Join(dir, "image", "rootfs")
	if err := e2e.MakeRootfs(rootfs); err != nil {
		return e, err
	}
	for _, im := range []struct {
		base string
		img  ctrdenv.Image
	}{
		{"localhost/busybox", ctrdenv.Image{Rootfs: rootfs, Cmd: []string{"sh"}, Tag: "latest"}},
		{"localhost/pause", ctrdenv.Image{Rootfs: rootfs, Entrypoint: []string{"/bin/sleep", "infinity"}, Tag: "runsc-test"}},
	} {
		archive := filepath.Join(dir, "image", filepath.Base(im.base)+".tar")
		digest, err := ctrdenv.WriteImage(archive, im.img)
		if err != nil {
			return e, fmt.Errorf("building %s: %v", im.base, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*stepTimeout)
		out, err := exec.CommandContext(ctx, "ctr", d.CtrArgs(k8sNS, "images", "import", "--base-name", im.base, archive)...).CombinedOutput()
		cancel()
		if err != nil {
			return e, fmt.Errorf("ctr -n %s images import %s: %v: %s", k8sNS, archive, err, out)
		}
		logf("imported %s:%s (manifest %s) into containerd namespace %s", im.base, im.img.Tag, digest, k8sNS)
	}

	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return e, fmt.Errorf("gRPC client for %s: %v", d.Socket, err)
	}
	e.conn = conn
	e.rt = runtimeapi.NewRuntimeServiceClient(conn)
	e.img = runtimeapi.NewImageServiceClient(conn)

	// The CRI plugin learns of imported images from containerd's
	// events, and of the CNI configuration by watching its directory:
	// wait until it reports both.
	var last string
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		ready, why := e.ready(ctx)
		cancel()
		if ready {
			break
		}
		last = why
		if time.Now().After(deadline) {
			return e, fmt.Errorf("CRI not ready within %v: %s; containerd's log ends:\n%s", stepTimeout, last, e2e.Tail(d.Log, 30))
		}
	}
	logf("CRI reports RuntimeReady and NetworkReady and lists %s and %s", busyboxRef, pauseRef)
	return e, nil
}

// ready says whether CRI reports its runtime and network ready and knows
// both images, or why not.
func (e *env) ready(ctx context.Context) (bool, string) {
	st, err := e.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return false, fmt.Sprintf("Status: %v", err)
	}
	for _, c := range st.GetStatus().GetConditions() {
		if !c.Status {
			return false, fmt.Sprintf("condition %s false: %s %s", c.Type, c.Reason, c.Message)
		}
	}
	for _, ref := range []string{busyboxRef, pauseRef} {
		is, err := e.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			return false, fmt.Sprintf("ImageStatus %s: %v", ref, err)
		}
		if is.GetImage() == nil {
			return false, "ImageStatus " + ref + ": not found"
		}
	}
	return true, ""
}

// isOfRun says whether p belongs to the run: a shim of the run's
// containerd, the private runsc copy's processes (runsc commands, the
// sandbox, gofers), or a containerd, ctr or unshare naming the run's
// directory.
func (e *env) isOfRun(p e2e.Proc) bool {
	if e2e.IsRuntime(p, e.runsc) || (e.d != nil && ctrdenv.IsShimOf(p, e.d.Socket)) {
		return true
	}
	switch filepath.Base(p.Exe) {
	case "containerd", "ctr", "unshare":
		return strings.Contains(p.Cmdline, e.dir)
	}
	return false
}

// teardown removes every pod left, stops containerd, checks that nothing
// of the run is left (processes, mounts under the run's directory), then
// kills and unmounts what was and removes the run's directory. It returns
// what was left.
func (e *env) teardown() []string {
	var problems []string
	if e.rt != nil && e.d != nil {
		select {
		case <-e.d.Done():
			problems = append(problems, fmt.Sprintf("containerd exited before the teardown (%v); its log ends:\n%s", e.d.ProcessState(), e2e.Tail(e.d.Log, 20)))
		default:
			ctx, cancel := context.WithTimeout(context.Background(), e.stepTimeout)
			pods, err := e.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			cancel()
			if err != nil {
				problems = append(problems, fmt.Sprintf("teardown: ListPodSandbox: %v", err))
			}
			for _, p := range pods.GetItems() {
				ctx, cancel := context.WithTimeout(context.Background(), e.stepTimeout)
				if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					problems = append(problems, fmt.Sprintf("teardown: StopPodSandbox %s: %v", p.Id, err))
				}
				if _, err := e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					problems = append(problems, fmt.Sprintf("teardown: RemovePodSandbox %s: %v", p.Id, err))
				}
				cancel()
			}
			logf("teardown: %d pods were left by the tests and removed", len(pods.GetItems()))
		}
	}
	if e.conn != nil {
		e.conn.Close()
	}
	if err := e.d.Stop(); err != nil {
		problems = append(problems, err.Error())
	}
	problems = append(problems, e2e.PollLeaks(10*time.Second, func() []string {
		return append(e2e.ProcessLeaks(e.isOfRun), e2e.MountLeaks(func(m e2e.Mount) bool { return strings.Contains(m.Line, e.dir) })...)
	})...)
	e.forceCleanup()
	if err := os.RemoveAll(e.dir); err != nil {
		problems = append(problems, fmt.Sprintf("removing %s: %v", e.dir, err))
	}
	if len(problems) == 0 {
		logf("teardown: containerd stopped; no shim, runsc, containerd or ctr process of the run and no mount under %s left; removed it", e.dir)
	}
	return problems
}

// forceCleanup kills the run's processes (shims first) and detaches the
// mounts under its directory, deepest first.
func (e *env) forceCleanup() {
	e2e.KillAll(e.isOfRun, func(p e2e.Proc) bool { return strings.HasPrefix(filepath.Base(p.Exe), "containerd-shim-") })
	e2e.UnmountUnder(e.dir)
}

// requireEnv skips a test when the suite cannot run.
func requireEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
