package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v2Dir makes a cgroup in this host's v2 hierarchy (the only one on a
// pure v2 host, the cgroup2 mount beside v1 on a hybrid one), removed at
// the end of the test.
func v2Dir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a cgroup and loads an eBPF program")
	}
	var mount string
	for _, m := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(m, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			mount = m
			break
		}
	}
	if mount == "" {
		t.Skip("no cgroup2 mount")
	}
	dir := filepath.Join(mount, fmt.Sprintf("runsc-devices-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Rmdir(dir) })
	return dir
}

// openIn runs dd in cgroup dir to open each device (reading nothing) and
// returns which opens succeeded.
func openIn(t *testing.T, dir string, devs ...string) map[string]bool {
	t.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	out := map[string]bool{}
	for _, d := range devs {
		cmd := exec.Command("dd", "if="+d, "of=/dev/null", "count=0", "status=none")
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		msg, err := cmd.CombinedOutput()
		out[d] = err == nil
		if err != nil && !strings.Contains(string(msg), "not permitted") {
			t.Fatalf("dd if=%s: %v: %s (want success or EPERM)", d, err, msg)
		}
	}
	return out
}

// TestV2DeviceFilter applies device rules on the v2 hierarchy, where
// they are an eBPF program: runc's default devices open, others are
// refused unless a rule allows them, and a later deny wins.
func TestV2DeviceFilter(t *testing.T) {
	for _, c := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  map[string]bool
	}{
		{"defaults", []specs.LinuxDeviceCgroup{}, map[string]bool{"/dev/null": true, "/dev/zero": true, "/dev/kmsg": false}},
		{"allowed", []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: i64(1), Minor: i64(11), Access: "r"}}, map[string]bool{"/dev/null": true, "/dev/kmsg": true}},
		{"denied after", []specs.LinuxDeviceCgroup{
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(11), Access: "rw"},
			{Allow: false, Type: "c", Major: i64(1), Minor: i64(11), Access: "rwm"},
		}, map[string]bool{"/dev/kmsg": false, "/dev/zero": true}},
		{"all allowed", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, map[string]bool{"/dev/kmsg": true, "/dev/null": true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := v2Dir(t)
			if err := setV2Devices(dir, c.rules); err != nil {
				t.Fatal(err)
			}
			var devs []string
			for d := range c.want {
				devs = append(devs, d)
			}
			for d, ok := range openIn(t, dir, devs...) {
				if ok != c.want[d] {
					t.Errorf("open %s in the cgroup: allowed %v, want %v", d, ok, c.want[d])
				}
			}
		})
	}
	t.Run("bad rule", func(t *testing.T) {
		err := setV2Devices(v2Dir(t), []specs.LinuxDeviceCgroup{{Allow: true, Type: "x", Access: "r"}})
		if err == nil || !strings.Contains(err.Error(), "linux.resources.devices[0]: type \"x\"") {
			t.Fatalf("bad type: %v", err)
		}
	})
}
