package container

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/boot"
)

// TestInitSpecLeavesCallersSpec checks that the init's copy of the spec
// drops what the host cannot enforce without touching the spec the
// caller saves and reuses.
func TestInitSpecLeavesCallersSpec(t *testing.T) {
	spec := &specs.Spec{
		Process:  &specs.Process{Args: []string{"x"}, ApparmorProfile: "p", SelinuxLabel: "l"},
		Linux:    &specs.Linux{MountLabel: "m"},
		Hostname: "h",
	}
	got := initSpec("c", spec, false)
	if spec.Process.ApparmorProfile != "p" || spec.Process.SelinuxLabel != "l" || spec.Linux.MountLabel != "m" {
		t.Fatalf("the caller's spec changed: %+v %+v", spec.Process, spec.Linux)
	}
	if (got.Process.ApparmorProfile != "") != boot.AppArmorEnabled() || (got.Linux.MountLabel != "") != boot.SELinuxEnabled() {
		t.Fatalf("init spec %+v %+v on a host with AppArmor %v, SELinux %v", got.Process, got.Linux, boot.AppArmorEnabled(), boot.SELinuxEnabled())
	}
	if got.Process.Args[0] != "x" || got.Hostname != "h" {
		t.Fatalf("init spec lost the process or hostname: %+v %q", got.Process, got.Hostname)
	}
	if named := initSpec("c", spec, true); named.Hostname != "" || spec.Hostname != "h" {
		t.Fatalf("names set by create: init spec hostname %q, caller's %q", named.Hostname, spec.Hostname)
	}
}
