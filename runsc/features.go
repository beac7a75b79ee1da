package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/runsc/runsc/specutils"
)

func init() {
	register(&command{name: "features", synopsis: "print the OCI features runsc supports, as JSON", run: runFeatures})
}

// runFeatures implements `runsc features`: it prints the runtime-spec
// features document on stdout.
func runFeatures(g *globals, args []string) error {
	fs := newFlagSet("features", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("features: unexpected argument %q", fs.Arg(0))
	}
	data, err := json.MarshalIndent(runtimeFeatures(), "", "\t")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(data, '\n'))
	return err
}

// seccompArches maps GOARCH to the seccomp architecture filtered.
var seccompArches = map[string]string{
	"amd64": string(specs.ArchX86_64),
	"arm64": string(specs.ArchAARCH64),
	"386":   string(specs.ArchX86),
	"arm":   string(specs.ArchARM),
}

// runtimeFeatures describes what runsc supports. It claims only what is
// implemented: no AppArmor or SELinux, no systemd cgroups.
func runtimeFeatures() *features.Features {
	yes, no := true, false
	var archs []string
	if a, ok := seccompArches[runtime.GOARCH]; ok {
		archs = []string{a}
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  specutils.MountOptions(),
		Linux: &features.Linux{
			Namespaces: []string{
				string(specs.PIDNamespace), string(specs.NetworkNamespace), string(specs.IPCNamespace),
				string(specs.UTSNamespace), string(specs.MountNamespace), string(specs.UserNamespace),
				string(specs.CgroupNamespace),
			},
			// Served binds take their own mappings (see
			// boot.mountIDMap); bidirectional host binds refuse them.
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &yes}},
			Capabilities:    specutils.Capabilities(),
			Cgroup:          &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no},
			Seccomp: &features.Seccomp{
				Enabled: &yes,
				Actions: []string{
					string(specs.ActAllow), string(specs.ActErrno), string(specs.ActKill),
					string(specs.ActKillProcess), string(specs.ActKillThread), string(specs.ActLog),
					string(specs.ActTrap), string(specs.ActTrace),
				},
				Operators: []string{
					string(specs.OpNotEqual), string(specs.OpLessThan), string(specs.OpLessEqual),
					string(specs.OpEqualTo), string(specs.OpGreaterEqual), string(specs.OpGreaterThan),
					string(specs.OpMaskedEqual),
				},
				Archs: archs,
			},
			Apparmor: &features.Apparmor{Enabled: &no},
			Selinux:  &features.Selinux{Enabled: &no},
		},
		Annotations: map[string]string{
			"org.opencontainers.runc.checkpoint.enabled": "false",
		},
	}
}
