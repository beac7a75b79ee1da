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
		Process: &specs.Process{Args: []string{"x"}, ApparmorProfile: "p", SelinuxLabel: "l"},
		Linux:   &specs.Linux{MountLabel: "m"},
	}
	got := initSpec("c", spec)
	if spec.Process.ApparmorProfile != "p" || spec.Process.SelinuxLabel != "l" || spec.Linux.MountLabel != "m" {
		t.Fatalf("the caller's spec changed: %+v %+v", spec.Process, spec.Linux)
	}
	if (got.Process.ApparmorProfile != "") != boot.AppArmorEnabled() || (got.Linux.MountLabel != "") != boot.SELinuxEnabled() {
		t.Fatalf("init spec %+v %+v on a host with AppArmor %v, SELinux %v", got.Process, got.Linux, boot.AppArmorEnabled(), boot.SELinuxEnabled())
	}
	if got.Process.Args[0] != "x" {
		t.Fatalf("init spec lost the process: %+v", got.Process)
	}
}
