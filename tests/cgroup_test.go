package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupDir returns the directory of host process pid's cgroup in the v1
// hierarchy of controller ctrl, or in the v2 hierarchy on a pure v2
// host.
func cgroupDir(t *testing.T, pid int, ctrl string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		for _, c := range strings.Split(parts[1], ",") {
			if c == ctrl {
				return filepath.Join("/sys/fs/cgroup", parts[1], parts[2])
			}
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		_, p, _ := strings.Cut(strings.TrimSpace(string(data)), "::")
		return filepath.Join("/sys/fs/cgroup", p)
	}
	t.Skipf("no %s cgroup controller here", ctrl)
	return ""
}

// readCgroup reads a cgroup file, trimmed.
func readCgroup(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCgroupLimits checks that the container's processes, its init and
// an exec'd one, are in the cgroup of linux.cgroupsPath with the spec's
// limits, that the memory limit holds (the kernel kills the container),
// and that delete removes the cgroup.
func TestCgroupLimits(t *testing.T) {
	e := newEnv(t)
	v2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		v2 = true
	}
	limit, shares, pids := int64(64<<20), uint64(512), int64(40)
	spec := testSpec("sleep", "1000")
	spec.Linux.CgroupsPath = "/runsc-test/limits"
	spec.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit},
		CPU:    &specs.LinuxCPU{Shares: &shares},
		Pids:   &specs.LinuxPids{Limit: pids},
	}
	b := newBundle(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "limits")
	init := e.saved("limits").InitPID
	mem := cgroupDir(t, init, "memory")
	if !strings.HasSuffix(mem, "/runsc-test/limits") {
		t.Fatalf("the init is in memory cgroup %s, not the spec's /runsc-test/limits", mem)
	}
	memFile, cpuFile, cpuWant := "memory.limit_in_bytes", "cpu.shares", "512"
	if v2 {
		memFile, cpuFile, cpuWant = "memory.max", "cpu.weight", "20"
	}
	if got := readCgroup(t, mem, memFile); got != strconv.FormatInt(limit, 10) {
		t.Errorf("%s = %s, want %d", memFile, got, limit)
	}
	if got := readCgroup(t, cgroupDir(t, init, "cpu"), cpuFile); got != cpuWant {
		t.Errorf("%s = %s, want %s", cpuFile, got, cpuWant)
	}
	if got := readCgroup(t, cgroupDir(t, init, "pids"), "pids.max"); got != "40" {
		t.Errorf("pids.max = %s, want 40", got)
	}
	// A process exec'd into the container joins it before it runs.
	out := e.must("exec", "limits", "cat", "/proc/self/cgroup")
	if !strings.Contains(out, "/runsc-test/limits") {
		t.Errorf("the exec'd process's cgroups:\n%s", out)
	}
	t.Run("memory limit holds", func(t *testing.T) {
		// Allocate well past the limit: the kernel's OOM killer ends it.
		r := e.exec("", "exec", "limits", "sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done")
		if r.code != 137 {
			t.Fatalf("a process allocating past the memory limit exited %d (%q), want 137 (SIGKILL)", r.code, r.stderr)
		}
	})
	e.must("delete", "--force", "limits")
	if _, err := os.Stat(mem); !os.IsNotExist(err) {
		t.Fatalf("delete left the cgroup %s: %v", mem, err)
	}
	os.Remove(filepath.Dir(mem))
	t.Run("bad cgroupsPath", func(t *testing.T) {
		spec := testSpec("true")
		spec.Linux.CgroupsPath = "/a/../../escape"
		b := newBundle(t, spec)
		r := e.exec("", "run", "--bundle", b.dir, "badcg")
		if r.code == 0 || !strings.Contains(r.stderr, "linux.cgroupsPath") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}
