package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestWrites(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(100 << 20), Reservation: i64(50 << 20), Swap: i64(200 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: 10},
	}
	files := func(ws []write) []string {
		var out []string
		for _, w := range ws {
			out = append(out, w.file+"="+w.value)
		}
		return out
	}
	for _, c := range []struct {
		key  string
		want []string
	}{
		{"memory", []string{"memory.limit_in_bytes=104857600", "memory.soft_limit_in_bytes=52428800", "memory.memsw.limit_in_bytes=209715200"}},
		// The period before the quota.
		{"cpu,cpuacct", []string{"cpu.shares=1024", "cpu.cfs_period_us=100000", "cpu.cfs_quota_us=50000"}},
		{"cpuset", []string{"cpuset.cpus=0", "cpuset.mems=0"}},
		{"pids", []string{"pids.max=10"}},
		{"devices", nil},
		{"", []string{"memory.max=104857600", "memory.low=52428800", "memory.swap.max=104857600", "cpu.weight=39", "cpu.max=50000 100000", "cpuset.cpus=0", "cpuset.mems=0", "pids.max=10"}},
	} {
		t.Run(c.key, func(t *testing.T) {
			if got := files(writes(c.key, r)); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("writes = %v\nwant     %v", got, c.want)
			}
		})
	}
	unlimited := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}, Pids: &specs.LinuxPids{}}
	if got := files(writes("", unlimited)); !reflect.DeepEqual(got, []string{"memory.max=max", "pids.max=max"}) {
		t.Fatalf("unlimited v2: %v", got)
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 1, 2: 1, 1024: 39, 262144: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestResolveRefuses(t *testing.T) {
	for _, p := range []string{"/a/../../x", "../x", "/", "//", "."} {
		if _, err := Resolve(p, "inst", "id"); err == nil || !strings.Contains(err.Error(), "linux.cgroupsPath") {
			t.Errorf("Resolve(%q): %v, want an error naming linux.cgroupsPath", p, err)
		}
	}
}

func TestResolveSystemdStyleIsRelative(t *testing.T) {
	c, err := Resolve("test.slice:cri-containerd:abc", "inst", "abc")
	if err != nil {
		t.Skipf("no cgroup hierarchy here: %v", err)
	}
	for key, dir := range c.Paths {
		if !strings.HasSuffix(dir, "/test.slice:cri-containerd:abc") {
			t.Errorf("%s: %s, want a directory named as the path", key, dir)
		}
	}
}

// TestDestroyPrunesDefaultParent checks that the level runsc names
// itself under /runsc (one per --root) goes with its last cgroup, and
// only then.
func TestDestroyPrunesDefaultParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes cgroups")
	}
	instance := fmt.Sprintf("test-prune-%d", os.Getpid())
	a, err := Resolve("", instance, "a")
	if err != nil {
		t.Skipf("no cgroup hierarchy here: %v", err)
	}
	b, _ := Resolve("", instance, "b")
	for _, c := range []*Cgroup{a, b} {
		if err := c.Create(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range b.Paths {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("destroying a took b: %v", err)
		}
	}
	if err := b.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range b.Paths {
		if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
			t.Errorf("%s left after its last cgroup: %v", filepath.Dir(dir), err)
		}
		if _, err := os.Stat(filepath.Dir(filepath.Dir(dir))); err != nil {
			t.Errorf("/runsc itself went: %v", err)
		}
	}
	// A named cgroupsPath prunes nothing.
	named, _ := Resolve("/"+instance+"-named/c", "", "c")
	if named.Prune != 0 {
		t.Fatalf("a cgroupsPath of the spec's is pruned: %+v", named)
	}
}
