package container

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestPodSandbox(t *testing.T) {
	const (
		ctdType, ctdID   = "io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id"
		crioType, crioID = "io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri-o.SandboxID"
	)
	root := t.TempDir()
	for _, c := range []struct {
		name    string
		ann     map[string]string
		linux   *specs.Linux
		want    string
		errText string
	}{
		{name: "lone container", want: ""},
		{name: "unrelated annotations", ann: map[string]string{"org.example": "container", ctdID: "pod"}, want: ""},
		{name: "containerd sandbox", ann: map[string]string{ctdType: "sandbox", ctdID: "pod"}, want: ""},
		{name: "containerd container", ann: map[string]string{ctdType: "container", ctdID: "pod-1"}, want: "pod-1"},
		{name: "cri-o sandbox", ann: map[string]string{crioType: "sandbox", crioID: "pod"}, want: ""},
		{name: "cri-o container", ann: map[string]string{crioType: "container", crioID: "crio_pod.2"}, want: "crio_pod.2"},
		{name: "containerd keys first", ann: map[string]string{ctdType: "container", ctdID: "ctd", crioType: "container", crioID: "crio"}, want: "ctd"},
		{name: "containerd sandbox beats cri-o container", ann: map[string]string{ctdType: "sandbox", crioType: "container", crioID: "crio"}, want: ""},
		{name: "invalid type", ann: map[string]string{ctdType: "pause", ctdID: "pod"}, errText: ctdType},
		{name: "type is case sensitive", ann: map[string]string{crioType: "Container", crioID: "pod"}, errText: crioType},
		{name: "empty type", ann: map[string]string{ctdType: ""}, errText: ctdType},
		{name: "missing sandbox ID", ann: map[string]string{ctdType: "container"}, errText: ctdID},
		{name: "sandbox ID with a slash", ann: map[string]string{ctdType: "container", ctdID: "../../etc"}, errText: ctdID},
		{name: "sandbox ID dot-dot", ann: map[string]string{crioType: "container", crioID: ".."}, errText: crioID},
		{name: "sandbox ID bad charset", ann: map[string]string{crioType: "container", crioID: "pod id"}, errText: crioID},
		{name: "sandbox ID too long", ann: map[string]string{ctdType: "container", ctdID: strings.Repeat("x", 1025)}, errText: ctdID},
		{name: "host's own namespaces say nothing", linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}, {Type: specs.UTSNamespace, Path: "/proc/self/ns/uts"},
		}}, want: ""},
		{name: "mount namespace path is not a pod's", linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.MountNamespace, Path: "/nonexistent"},
		}}, want: ""},
		{name: "missing namespace path", linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.NetworkNamespace, Path: "/nonexistent/ns/net"},
		}}, errText: "/nonexistent/ns/net"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := podSandbox(root, &specs.Spec{Annotations: c.ann, Linux: c.linux})
			if c.errText != "" {
				if err == nil {
					t.Fatalf("podSandbox = %q, want an error", got)
				}
				if !strings.Contains(err.Error(), c.errText) || !strings.Contains(err.Error(), "config.json") {
					t.Fatalf("error %q does not name config.json and %q", err, c.errText)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("podSandbox = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// writeState writes a state file for id under root by hand.
func writeState(t *testing.T, root string, st State) {
	t.Helper()
	dir := filepath.Join(root, st.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startSleep starts `sleep 100` as a child, with extra clone flags, and
// kills and reaps it when the test ends.
func startSleep(t *testing.T, cloneflags uintptr) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("needs sleep(1) on PATH")
	}
	cmd := exec.Command(sleep, "100")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestPodSandboxByNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network and UTS namespaces")
	}
	root := t.TempDir()
	pod := startSleep(t, syscall.CLONE_NEWNET|syscall.CLONE_NEWUTS|syscall.CLONE_NEWIPC)
	pid := pod.Process.Pid
	sb := procOf(pid)
	writeState(t, root, State{ID: "infra", SandboxID: "infra", InitPID: pid, InitStart: sb.Start, Sandbox: sb})
	// A member of the pod names its sandbox container as sandbox.
	writeState(t, root, State{ID: "member", SandboxID: "infra", InitPID: pid, InitStart: sb.Start, Sandbox: sb})
	nsPath := func(ns string) string { return fmt.Sprintf("/proc/%d/ns/%s", pid, ns) }

	for _, c := range []struct {
		name string
		ns   []specs.LinuxNamespace
		want string
	}{
		{"network namespace of the pod", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: nsPath("net")}}, "infra"},
		{"uts namespace of the pod", []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: nsPath("uts")}}, "infra"},
		{"ipc with a new network namespace", []specs.LinuxNamespace{{Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace, Path: nsPath("ipc")}}, "infra"},
		{"namespace path given for the wrong type", []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: nsPath("net")}}, ""},
		{"mount namespace does not join", []specs.LinuxNamespace{{Type: specs.MountNamespace, Path: nsPath("net")}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := podSandbox(root, &specs.Spec{Linux: &specs.Linux{Namespaces: c.ns}})
			if err != nil || got != c.want {
				t.Fatalf("podSandbox = %q, %v; want %q", got, err, c.want)
			}
		})
	}
	t.Run("sandbox gone", func(t *testing.T) {
		other := t.TempDir()
		stale := sb
		stale.Start++ // the pid now names another process
		writeState(t, other, State{ID: "infra", SandboxID: "infra", InitPID: pid, InitStart: sb.Start, Sandbox: stale})
		got, err := podSandbox(other, &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: nsPath("net")}}}})
		if err != nil || got != "" {
			t.Fatalf("podSandbox = %q, %v; want no pod for a sandbox whose pid was reused", got, err)
		}
	})
}

func TestPIDNSPath(t *testing.T) {
	for _, c := range []struct {
		name  string
		linux *specs.Linux
		want  string
	}{
		{"no linux section", nil, ""},
		{"no pid namespace", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}}}, ""},
		{"new pid namespace", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}, ""},
		{"joined pid namespace", &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace, Path: "/proc/42/ns/pid"}}}, "/proc/42/ns/pid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := pidNSPath(&specs.Spec{Linux: c.linux}); got != c.want {
				t.Fatalf("pidNSPath = %q, want %q", got, c.want)
			}
		})
	}
}
