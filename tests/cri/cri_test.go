package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/runsc/runsc/internal/testhelp"
	"github.com/runsc/runsc/tests/internal/ctrdenv"
	"github.com/runsc/runsc/tests/internal/e2e"
)

// TestPod runs a Kubernetes-shaped pod through CRI with each runtime
// handler: the runc handler validates the harness, the runsc handler is
// the runtime under test.
func TestPod(t *testing.T) {
	requireEnv(t)
	for _, handler := range []string{"runc", "runsc"} {
		t.Run(handler, func(t *testing.T) { podFlow(t, handler) })
	}
}

// callCtx returns a context bounded by the step timeout.
func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), suite.stepTimeout)
}

// podFlow: RunPodSandbox with handler; two busybox containers in the pod
// with a shared host directory; each sees only its own root's files and
// both see the shared directory's; the pod IP on eth0, and a route added
// with CAP_NET_ADMIN seen by both; ExecSync (stdout, stderr, exit code);
// Exec with a terminal through the streaming server; the CRI log files
// hold the containers' output; ContainerStats; with runsc, exactly one
// sandbox process for the pod and runsc.toml's debug-log applied;
// StopContainer reports the exit; StopPodSandbox and RemovePodSandbox
// leave no shim, runsc process, runtime state or mount of the pod.
func podFlow(t *testing.T, handler string) {
	e := suite
	podLogs := filepath.Join(e.dir, "pods", handler)
	vol := filepath.Join(e.dir, "volumes", handler)
	for _, d := range []string{podLogs, vol} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "pod-" + handler, Uid: fmt.Sprintf("uid-%s-%d", handler, time.Now().UnixNano()), Namespace: "cri-e2e"},
		Hostname:     "pod-" + handler,
		LogDirectory: podLogs,
		Labels:       map[string]string{"test": "cri-e2e"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}

	ctx, cancel := callCtx()
	start := time.Now()
	rp, err := e.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: handler})
	cancel()
	if err != nil {
		t.Fatalf("RunPodSandbox (handler %s): %v\ncontainerd's log ends:\n%s", handler, err, e2e.Tail(e.d.Log, 30))
	}
	podID := rp.PodSandboxId
	removed := false
	t.Cleanup(func() {
		if removed {
			return
		}
		ctx, cancel := callCtx()
		defer cancel()
		if _, err := e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Errorf("cleanup: StopPodSandbox %s: %v", podID, err)
		}
		if _, err := e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Errorf("cleanup: RemovePodSandbox %s: %v", podID, err)
		}
	})
	t.Logf("RunPodSandbox with handler %s: pod %s in %v (not asserted)", handler, podID, time.Since(start).Round(time.Millisecond))

	ctx, cancel = callCtx()
	ps, err := e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	cancel()
	if err != nil {
		t.Fatalf("PodSandboxStatus: %v", err)
	}
	if st := ps.GetStatus().GetState(); st != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("PodSandboxStatus: state %v, want SANDBOX_READY", st)
	}
	if rh := ps.GetStatus().GetRuntimeHandler(); rh != handler {
		t.Fatalf("PodSandboxStatus: runtime handler %q, want %q", rh, handler)
	}
	t.Logf("checked PodSandboxStatus: SANDBOX_READY, runtime handler %s", handler)

	// Two workload containers sharing vol at /shared.
	names := []string{"c1", "c2"}
	ids := map[string]string{}
	for _, name := range names {
		cfg := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: busyboxRef},
			Command:  []string{"sh", "-c", fmt.Sprintf("echo hello-from-%s; echo %s-to-stderr >&2; exec sleep 1000", name, name)},
			LogPath:  name + ".log",
			Mounts:   []*runtimeapi.Mount{{ContainerPath: "/shared", HostPath: vol}},
			Linux:    &runtimeapi.LinuxContainerConfig{},
		}
		if name == "c2" {
			cfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}}}
		}
		ctx, cancel := callCtx()
		cc, err := e.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: podCfg})
		cancel()
		if err != nil {
			t.Fatalf("CreateContainer %s: %v\ncontainerd's log ends:\n%s", name, err, e2e.Tail(e.d.Log, 30))
		}
		ids[name] = cc.ContainerId
		ctx, cancel = callCtx()
		_, err = e.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId})
		cancel()
		if err != nil {
			t.Fatalf("StartContainer %s (%s): %v\ncontainerd's log ends:\n%s", name, cc.ContainerId, err, e2e.Tail(e.d.Log, 30))
		}
		if st := containerStatus(t, cc.ContainerId); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("ContainerStatus %s: %v, want CONTAINER_RUNNING", name, st.State)
		}
		t.Logf("checked CreateContainer and StartContainer of %s (%s): CONTAINER_RUNNING", name, cc.ContainerId)
	}
	c1, c2 := ids["c1"], ids["c2"]

	// Each container sees only its own root; both see the volume.
	wantExec(t, c1, []string{"sh", "-c", "echo secret > /only-in-c1 && echo shared-by-c1 > /shared/from-c1 && cat /only-in-c1"}, "secret", 0)
	wantExec(t, c2, []string{"sh", "-c", "if [ -e /only-in-c1 ]; then echo present; else echo absent; fi"}, "absent", 0)
	t.Logf("checked a file written in c1's root is absent from c2's")
	wantExec(t, c2, []string{"cat", "/shared/from-c1"}, "shared-by-c1", 0)
	wantExec(t, c2, []string{"sh", "-c", "echo shared-by-c2 > /shared/from-c2"}, "", 0)
	wantExec(t, c1, []string{"cat", "/shared/from-c2"}, "shared-by-c2", 0)
	for _, f := range []string{"from-c1", "from-c2"} {
		data, err := os.ReadFile(filepath.Join(vol, f))
		if err != nil || !strings.HasPrefix(string(data), "shared-by-") {
			t.Fatalf("the host directory behind /shared: %s: %q, %v", f, data, err)
		}
	}
	t.Logf("checked the shared volume: each container reads the other's write, and the host directory %s holds both files", vol)

	// The pod's network: CNI's address on eth0, one namespace for the
	// pod, and CAP_NET_ADMIN (granted to c2) reaching it, as with runc.
	podIP := ps.GetStatus().GetNetwork().GetIp()
	if podIP == "" {
		t.Fatalf("PodSandboxStatus: no pod IP")
	}
	wantExec(t, c1, []string{"sh", "-c", "ip -o -4 addr show eth0 | grep -o ' " + podIP + "/'"}, podIP+"/", 0)
	wantExec(t, c2, []string{"sh", "-c", "ip route add 10.251.0.0/24 dev eth0 && echo route-added"}, "route-added", 0)
	wantExec(t, c1, []string{"sh", "-c", "ip route show 10.251.0.0/24 | cut -d' ' -f1"}, "10.251.0.0/24", 0)
	t.Logf("checked the pod's network: eth0 holds the pod IP %s, and a route c2 added with CAP_NET_ADMIN is in c1's view", podIP)

	// ExecSync: stdout, stderr and the exit code.
	ctx, cancel = callCtx()
	r, err := e.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: c1, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Timeout: 30})
	cancel()
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	if strings.TrimSpace(string(r.Stdout)) != "out" || strings.TrimSpace(string(r.Stderr)) != "err" || r.ExitCode != 3 {
		t.Fatalf("ExecSync of `echo out; echo err >&2; exit 3`: stdout %q stderr %q exit %d, want out, err, 3", r.Stdout, r.Stderr, r.ExitCode)
	}
	t.Logf("checked ExecSync: stdout %q, stderr %q, exit code %d", r.Stdout, r.Stderr, r.ExitCode)

	// Exec with a terminal, through the streaming server.
	ctx, cancel = callCtx()
	er, err := e.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: c1, Cmd: []string{"sh"}, Tty: true, Stdin: true, Stdout: true})
	cancel()
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	t.Logf("Exec (tty, stdin) of sh in c1: streaming URL %s", er.Url)
	sr, err := streamExec(er.Url, e.d, "if [ -t 0 ] && [ -t 1 ]; then echo is-a-$((6*7))-tty; fi; tty; exit 7\n", 0, 0, e.stepTimeout)
	if err != nil {
		t.Fatalf("Exec session: %v", err)
	}
	t.Logf("Exec session: stdout %q, stderr %q, status %s", sr.stdout, sr.stderr, sr.status)
	if !strings.Contains(sr.stdout, "is-a-42-tty") || !strings.Contains(sr.stdout, "/dev/pts/") || sr.exitCode != 7 {
		t.Fatalf("Exec with a tty: stdout %q, exit code %d (status %s); want is-a-42-tty, a /dev/pts name and exit code 7", sr.stdout, sr.exitCode, sr.status)
	}
	t.Logf("checked Exec with a tty: the shell's stdin and stdout are a terminal (%s), typed input ran, exit code 7 in the status", "/dev/pts/N")

	// Container logs in the CRI format: "TIME STREAM F LINE".
	for _, name := range names {
		path := filepath.Join(podLogs, name+".log")
		start := time.Now()
		testhelp.WaitFor(t, "the CRI log "+path+" to hold "+name+"'s output", 20*time.Second, func() bool {
			data, _ := os.ReadFile(path)
			return strings.Contains(string(data), " stdout F hello-from-"+name+"\n") && strings.Contains(string(data), " stderr F "+name+"-to-stderr\n")
		})
		cs := containerStatus(t, ids[name])
		if cs.LogPath != path {
			t.Fatalf("ContainerStatus %s: log path %q, want %q", name, cs.LogPath, path)
		}
		data, _ := os.ReadFile(path)
		t.Logf("checked the CRI log of %s (ContainerStatus.LogPath %s, after %v) holds its stdout and stderr:\n%s", name, path, time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(data)))
	}

	// Stats.
	ctx, cancel = callCtx()
	st, err := e.rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: c1})
	cancel()
	if err != nil {
		t.Fatalf("ContainerStats: %v", err)
	}
	t.Logf("checked ContainerStats returns without error: %v", st.GetStats())
	ctx, cancel = callCtx()
	ls, err := e.rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: podID}})
	cancel()
	if err != nil {
		t.Fatalf("ListContainerStats: %v", err)
	}
	t.Logf("checked ListContainerStats of the pod returns without error: %d entries", len(ls.GetStats()))

	if handler == "runsc" {
		var boots []string
		for _, p := range e2e.Processes() {
			if e2e.IsRuntime(p, e.runsc) && strings.Contains(p.Cmdline+" ", " boot ") {
				boots = append(boots, fmt.Sprintf("%d: %s", p.Pid, p.Cmdline))
			}
		}
		if len(boots) != 1 {
			t.Fatalf("%d `runsc boot` processes of this run's runsc for a pod of a sandbox and two containers, want 1:\n%s", len(boots), strings.Join(boots, "\n"))
		}
		t.Logf("checked the pod (sandbox and two containers) runs in exactly one sandbox process: %s", boots[0])
		var logs []string
		for _, id := range []string{podID, c1, c2} {
			ents, _ := os.ReadDir(filepath.Join(e.runscLogs, id))
			for _, ent := range ents {
				logs = append(logs, filepath.Join(id, ent.Name()))
			}
		}
		if len(logs) == 0 {
			t.Fatalf("no runsc debug log under %s/{%s,%s,%s}: runsc.toml's [runsc_config] debug-log was not applied", e.runscLogs, podID, c1, c2)
		}
		t.Logf("checked runsc.toml's debug-log reached runsc: %d log files under %s, e.g. %s", len(logs), e.runscLogs, logs[0])
	}

	// StopContainer reports the exit (sleep ends on SIGTERM: 128+15).
	ctx, cancel = callCtx()
	_, err = e.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c2, Timeout: 10})
	cancel()
	if err != nil {
		t.Fatalf("StopContainer c2: %v", err)
	}
	if cs := containerStatus(t, c2); cs.State != runtimeapi.ContainerState_CONTAINER_EXITED || cs.ExitCode != 143 {
		t.Fatalf("ContainerStatus of c2 after StopContainer: %v exit code %d (%s), want CONTAINER_EXITED, 143", cs.State, cs.ExitCode, cs.Reason)
	}
	t.Logf("checked StopContainer of c2: CONTAINER_EXITED, exit code 143 (SIGTERM)")

	// Stop and remove the pod; nothing of it is left.
	ctx, cancel = callCtx()
	_, err = e.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
	cancel()
	if err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	ctx, cancel = callCtx()
	ps, err = e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	cancel()
	if err != nil || ps.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("PodSandboxStatus after StopPodSandbox: %v, %v; want SANDBOX_NOTREADY", ps.GetStatus().GetState(), err)
	}
	t.Logf("checked StopPodSandbox: SANDBOX_NOTREADY")
	ctx, cancel = callCtx()
	_, err = e.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
	cancel()
	if err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	removed = true
	ctx, cancel = callCtx()
	_, err = e.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	cancel()
	if status.Code(err) != codes.NotFound {
		t.Fatalf("PodSandboxStatus after RemovePodSandbox: %v, want NotFound", err)
	}
	ctx, cancel = callCtx()
	lc, err := e.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
	cancel()
	if err != nil || len(lc.GetContainers()) != 0 {
		t.Fatalf("ListContainers of the removed pod: %v, %v; want none", lc.GetContainers(), err)
	}
	t.Logf("checked RemovePodSandbox: PodSandboxStatus says NotFound, ListContainers lists none of its containers")

	root := runcRoot
	if handler == "runsc" {
		root = runscRoot
	}
	allIDs := []string{podID, c1, c2}
	var leaks []string
	start = time.Now()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		leaks = podLeaks(allIDs, root)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(leaks) > 0 {
		t.Fatalf("left behind after RemovePodSandbox:\n  %s", strings.Join(leaks, "\n  "))
	}
	t.Logf("checked nothing of the pod is left (after %v): no shim of it, no process of the private runsc (runsc, sandbox, gofer), no runtime state under %s for %s, no mount naming them",
		time.Since(start).Round(time.Millisecond), root, strings.Join(allIDs, ", "))
}

// podLeaks lists what is left of a removed pod whose sandbox and
// containers are ids, with the runtime's state under root.
func podLeaks(ids []string, root string) []string {
	e := suite
	var leaks []string
	for _, p := range e2e.Processes() {
		if e2e.IsRuntime(p, e.runsc) {
			leaks = append(leaks, fmt.Sprintf("runsc process %d: %s", p.Pid, p.Cmdline))
		}
		if ctrdenv.IsShimOf(p, e.d.Socket) && strings.Contains(p.Cmdline+" ", " -id "+ids[0]+" ") {
			leaks = append(leaks, fmt.Sprintf("shim %d: %s", p.Pid, p.Cmdline))
		}
	}
	for _, id := range ids {
		if _, err := os.Lstat(filepath.Join(root, id)); err == nil {
			leaks = append(leaks, "runtime state: "+filepath.Join(root, id))
		}
	}
	for _, m := range e2e.Mounts() {
		for _, id := range ids {
			if strings.Contains(m.Line, id) {
				leaks = append(leaks, "mount: "+m.Line)
				break
			}
		}
		if strings.Contains(m.Line, "fuse.runsc") && strings.Contains(m.Line, e.dir) {
			leaks = append(leaks, "mount: "+m.Line)
		}
	}
	return leaks
}

// containerStatus returns the CRI status of container id.
func containerStatus(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	r, err := suite.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return r.GetStatus()
}

// wantExec runs cmd in container id with ExecSync and fails the test
// unless its trimmed stdout is stdout and its exit code code.
func wantExec(t *testing.T, id string, cmd []string, stdout string, code int32) {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	r, err := suite.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 30})
	if err != nil {
		t.Fatalf("ExecSync %q in %s: %v", cmd, id, err)
	}
	if got := strings.TrimSpace(string(r.Stdout)); got != stdout || r.ExitCode != code {
		t.Fatalf("ExecSync %q in %s: stdout %q exit %d (stderr %q), want %q exit %d", cmd, id, got, r.ExitCode, r.Stderr, stdout, code)
	}
	t.Logf("checked ExecSync %q: stdout %q, exit code %d", cmd, stdout, code)
}
