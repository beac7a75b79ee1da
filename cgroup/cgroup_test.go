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

// files lists writes as file=value.
func files(ws []write) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.file+"="+w.value)
	}
	return out
}

func TestWrites(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(100 << 20), Reservation: i64(50 << 20), Swap: i64(200 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: 10},
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
		// No rules given (an update): the device rules stay.
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

func TestWritesMoreResources(t *testing.T) {
	yes := true
	u16 := func(v uint16) *uint16 { return &v }
	u32 := func(v uint32) *uint32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{DisableOOMKiller: &yes, Kernel: i64(1 << 20)},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                u16(500),
			WeightDevice:          []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: u16(300)}},
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Network:        &specs.LinuxNetwork{ClassID: u32(0x100001), Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 5}}},
		Devices:        []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(10), Minor: i64(229), Access: "rw"}},
	}
	for _, c := range []struct {
		key  string
		want []string
	}{
		{"memory", []string{"memory.oom_control=1"}},
		{"blkio", []string{"blkio.weight=500", "blkio.bfq.weight=500", "blkio.weight_device=8:0 300", "blkio.throttle.read_bps_device=8:0 1000"}},
		{"unified:hugetlb", []string{"hugetlb.2MB.max=4194304"}},
		{"hugetlb", []string{"hugetlb.2MB.limit_in_bytes=4194304"}},
		{"net_cls,net_prio", []string{"net_cls.classid=1048577", "net_prio.ifpriomap=lo 5"}},
	} {
		t.Run(c.key, func(t *testing.T) {
			if got := files(writes(c.key, r)); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("writes = %v\nwant     %v", got, c.want)
			}
		})
	}
	t.Run("devices of a create without rules", func(t *testing.T) {
		got := files(writes("devices", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{}}))
		if len(got) != 1+len(defaultDevices) || got[0] != "devices.deny=a *:* rwm" || got[1] != "devices.allow=c *:* m" {
			t.Fatalf("device writes %v, want none allowed then runc's defaults", got)
		}
	})
	t.Run("devices", func(t *testing.T) {
		got := files(writes("devices", r))
		if len(got) != 3+len(defaultDevices) || got[0] != "devices.deny=a *:* rwm" || got[1] != "devices.deny=a *:* rwm" || got[2] != "devices.allow=c 10:229 rw" || got[5] != "devices.allow=c 1:3 rwm" || got[len(got)-1] != "devices.allow=c 136:* rwm" {
			t.Fatalf("device writes %v", got)
		}
		if got := files(writes("", r)); strings.Contains(strings.Join(got, " "), "devices.") || strings.Contains(strings.Join(got, " "), "net_") {
			t.Fatalf("v2 got v1-only writes: %v", got)
		}
	})
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

func TestSystemdPath(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{in: "system.slice:docker:abc", want: "/system.slice/docker-abc.scope"},
		{in: ":cri-containerd:abc", want: "/system.slice/cri-containerd-abc.scope"},
		{in: "kubepods-besteffort-pod12.slice:cri-containerd:abc", want: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope"},
		{in: "machine.slice::vm1", want: "/machine.slice/vm1.scope"},
		{in: "-.slice:p:n", want: "/p-n.scope"},
		{in: "user.slice:p:my.slice", want: "/user.slice/my.slice"},
		{in: "/abs/path", err: "want slice:prefix:name"},
		{in: "a:b", err: "want slice:prefix:name"},
		{in: "nodot:p:n", err: "ending in .slice"},
		{in: "system.slice:p:", err: "a name"},
		{in: "a--b.slice:p:n", err: "not a valid slice name"},
		{in: "x.slice:p/q:n", err: "no /"},
	} {
		got, err := SystemdPath(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("SystemdPath(%q) = %q, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("SystemdPath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestCheckControllers(t *testing.T) {
	id := uint32(1)
	hybrid := &Cgroup{Paths: map[string]string{"memory": "/m", "blkio": "/b", "unified:hugetlb": "/u"}}
	for _, c := range []struct {
		r    *specs.LinuxResources
		want string
	}{
		{&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: &id}}, "linux.resources.network.classID: this host has no net_cls cgroup controller"},
		{&specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo"}}}}, "no net_prio cgroup controller"},
		{&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB"}}}, ""},
		{&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{}}, ""},
	} {
		err := hybrid.checkControllers(c.r)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("checkControllers(%+v) = %v, want %q", c.r, err, c.want)
		}
	}
	if err := (&Cgroup{Paths: map[string]string{"": "/"}}).checkControllers(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: &id}}); err != nil {
		t.Errorf("pure v2: %v", err)
	}
}
