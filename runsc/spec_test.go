package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/runsc/runsc/specutils"
)

func TestSpecCommand(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	if st := runMain([]string{"spec", "--bundle", dir}, &stderr); st != 0 {
		t.Fatalf("runsc spec: status %d, stderr %q", st, stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("{\n\t\"ociVersion\"")) {
		t.Errorf("config.json is not indented with tabs: %.40q", data)
	}
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := specutils.LoadSpec(dir)
	if err != nil {
		t.Fatalf("LoadSpec of the written spec: %v", err)
	}
	if s.Root.Path != filepath.Join(dir, "rootfs") || !reflect.DeepEqual(s.Process.Args, []string{"sh"}) || s.Hostname != "runsc" {
		t.Errorf("unexpected spec: root %q args %q hostname %q", s.Root.Path, s.Process.Args, s.Hostname)
	}

	// A second run refuses to overwrite it.
	stderr.Reset()
	if st := runMain([]string{"spec", "-b", dir}, &stderr); st != 1 {
		t.Errorf("second runsc spec: status %d, want 1", st)
	}
	if want := "runsc: spec: config.json already exists in " + dir + "\n"; stderr.String() != want {
		t.Errorf("second runsc spec: stderr %q, want %q", stderr.String(), want)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "config.json")); !bytes.Equal(again, data) {
		t.Errorf("config.json changed")
	}
}

func TestSpecCommandRootless(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	if st := runMain([]string{"spec", "--rootless", "--bundle", dir}, &stderr); st != 0 {
		t.Fatalf("runsc spec --rootless: status %d, stderr %q", st, stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := specutils.ParseSpec(data)
	if err != nil {
		t.Fatal(err)
	}
	var user bool
	for _, ns := range s.Linux.Namespaces {
		user = user || ns.Type == specs.UserNamespace
		if ns.Type == specs.NetworkNamespace {
			t.Errorf("rootless spec has a network namespace")
		}
	}
	if !user || len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != uint32(os.Geteuid()) {
		t.Errorf("rootless spec: namespaces %v, uid mappings %v", s.Linux.Namespaces, s.Linux.UIDMappings)
	}
}

func TestSpecCommandErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, args := range [][]string{
		{"spec", "--bundle", missing},
		{"spec", "extra"},
		{"spec", "--bogus"},
	} {
		var stderr bytes.Buffer
		if st := runMain(args, &stderr); st != 1 || !strings.HasPrefix(stderr.String(), "runsc: spec: ") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%q: status %d, stderr %q", args, st, stderr.String())
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("runsc spec created the missing bundle")
	}
}

// captureStdout runs f with os.Stdout redirected and returns what it
// wrote.
func captureStdout(t *testing.T, f func()) []byte {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	defer func() { os.Stdout = saved }()
	f()
	os.Stdout = saved
	w.Close()
	out := <-done
	r.Close()
	return out
}

func TestFeaturesCommand(t *testing.T) {
	var stderr bytes.Buffer
	var st int
	out := captureStdout(t, func() { st = runMain([]string{"features"}, &stderr) })
	if st != 0 {
		t.Fatalf("runsc features: status %d, stderr %q", st, stderr.String())
	}
	var f features.Features
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("runsc features output is not JSON: %v\n%s", err, out)
	}
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != specs.Version {
		t.Errorf("versions %q..%q", f.OCIVersionMin, f.OCIVersionMax)
	}
	if want := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}; !reflect.DeepEqual(f.Hooks, want) {
		t.Errorf("hooks: %q, want %q", f.Hooks, want)
	}
	if !reflect.DeepEqual(f.MountOptions, specutils.MountOptions()) {
		t.Errorf("mount options %q", f.MountOptions)
	}
	l := f.Linux
	if l == nil || l.Seccomp == nil || l.Seccomp.Enabled == nil || !*l.Seccomp.Enabled || len(l.Seccomp.Archs) != 1 {
		t.Fatalf("linux features: %+v", l)
	}
	if !reflect.DeepEqual(l.Namespaces, []string{"pid", "network", "ipc", "uts", "mount", "user", "cgroup"}) {
		t.Errorf("namespaces %q", l.Namespaces)
	}
	if l.MountExtensions == nil || l.MountExtensions.IDMap == nil || l.MountExtensions.IDMap.Enabled == nil || !*l.MountExtensions.IDMap.Enabled {
		t.Errorf("mountExtensions %+v: want idmap enabled", l.MountExtensions)
	}
	if len(l.Capabilities) != 41 {
		t.Errorf("%d capabilities", len(l.Capabilities))
	}
	if l.Apparmor == nil || *l.Apparmor.Enabled || l.Selinux == nil || *l.Selinux.Enabled {
		t.Errorf("apparmor/selinux claimed")
	}
	if l.Cgroup == nil || l.Cgroup.Systemd == nil || *l.Cgroup.Systemd {
		t.Errorf("systemd cgroups claimed")
	}

	stderr.Reset()
	if st := runMain([]string{"features", "x"}, &stderr); st != 1 || !strings.HasPrefix(stderr.String(), "runsc: features: ") {
		t.Errorf("features x: status %d, stderr %q", st, stderr.String())
	}
}
