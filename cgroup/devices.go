package cgroup

import (
	"fmt"

	ocgroups "github.com/opencontainers/cgroups"
	// Registers ocgroups.DevicesSetV2: runc's eBPF device filter.
	_ "github.com/opencontainers/cgroups/devices"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setV2Devices applies linux.resources.devices to the v2 cgroup dir,
// which has no devices files: as runc does, through an eBPF device
// program attached to the cgroup (runc's own, from its cgroups library),
// with the same meaning as the v1 rules deviceWrites makes: from no
// device allowed, each rule in order, then runc's default devices.
func setV2Devices(dir string, rules []specs.LinuxDeviceCgroup) error {
	all := append(append([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}, rules...), defaultDevices...)
	out := make([]*devconfig.Rule, 0, len(all))
	for i, r := range all {
		field := fmt.Sprintf("devices[%d]", i-1)
		if i > len(rules) {
			field = "devices (runc's defaults)"
		}
		rule, err := deviceConfigRule(r)
		if err != nil {
			return fmt.Errorf("linux.resources.%s: %w", field, err)
		}
		out = append(out, rule)
	}
	if err := ocgroups.DevicesSetV2(dir, &ocgroups.Resources{Devices: out}); err != nil {
		return fmt.Errorf("linux.resources.devices: loading the device filter into %s: %w", dir, err)
	}
	return nil
}

// deviceConfigRule converts a spec device rule to runc's form.
func deviceConfigRule(r specs.LinuxDeviceCgroup) (*devconfig.Rule, error) {
	rule := &devconfig.Rule{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: devconfig.Permissions(r.Access), Allow: r.Allow}
	switch r.Type {
	case "", "a":
	case "b":
		rule.Type = devconfig.BlockDevice
	case "c":
		rule.Type = devconfig.CharDevice
	default:
		return nil, fmt.Errorf("type %q: want a, b or c", r.Type)
	}
	if r.Major != nil && *r.Major >= 0 {
		rule.Major = *r.Major
	}
	if r.Minor != nil && *r.Minor >= 0 {
		rule.Minor = *r.Minor
	}
	if r.Access == "" {
		rule.Permissions = "rwm"
	}
	if !rule.Permissions.IsValid() {
		return nil, fmt.Errorf("access %q: want a combination of r, w and m", r.Access)
	}
	return rule, nil
}
