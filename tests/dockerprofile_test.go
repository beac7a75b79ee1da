package tests

import (
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/tests/internal/e2e"
)

// dockerProfile is Docker's seccomp profile format
// (profiles/seccomp/default.json of github.com/docker/docker), which the
// Docker daemon turns into the spec's linux.seccomp for each container.
type dockerProfile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet"`
	ArchMap         []struct {
		Arch      specs.Arch   `json:"architecture"`
		SubArches []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		Name     string                   `json:"name"`
		Names    []string                 `json:"names"`
		Action   specs.LinuxSeccompAction `json:"action"`
		ErrnoRet *uint                    `json:"errnoRet"`
		Args     []specs.LinuxSeccompArg  `json:"args"`
		Includes struct {
			Arches []string `json:"arches"`
			Caps   []string `json:"caps"`
		} `json:"includes"`
		Excludes struct {
			Arches []string `json:"arches"`
			Caps   []string `json:"caps"`
		} `json:"excludes"`
	} `json:"syscalls"`
}

// dockerCaps are Docker's default capabilities.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// toOCI converts the profile as the Docker daemon does for a container
// with caps on this architecture: a rule applies if every capability it
// includes is held and none it excludes, and if its arch filters allow
// this one.
func (p *dockerProfile) toOCI(caps []string) *specs.LinuxSeccomp {
	s := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet}
	seccompArch := map[string]specs.Arch{"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64}[runtime.GOARCH]
	for _, a := range p.ArchMap {
		if a.Arch == seccompArch {
			s.Architectures = append([]specs.Arch{a.Arch}, a.SubArches...)
		}
	}
	for _, c := range p.Syscalls {
		if len(c.Includes.Arches) > 0 && !slices.Contains(c.Includes.Arches, runtime.GOARCH) || slices.Contains(c.Excludes.Arches, runtime.GOARCH) {
			continue
		}
		if slices.ContainsFunc(c.Includes.Caps, func(cp string) bool { return !slices.Contains(caps, cp) }) ||
			slices.ContainsFunc(c.Excludes.Caps, func(cp string) bool { return slices.Contains(caps, cp) }) {
			continue
		}
		names := c.Names
		if c.Name != "" {
			names = append(names, c.Name)
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: names, Action: c.Action, ErrnoRet: c.ErrnoRet, Args: c.Args})
	}
	return s
}

// TestDockerSeccompProfiles runs a container under Docker's default
// seccomp profile, as the Docker daemon would hand it to a runtime: the
// current one and an older one without close_range, clone3 or
// faccessat2. The profiles are read from Docker's own module, as
// published, through the Go module proxy.
func TestDockerSeccompProfiles(t *testing.T) {
	e := newEnv(t)
	for _, version := range []string{"v26.1.4+incompatible", "v17.12.1-ce+incompatible"} {
		t.Run(version, func(t *testing.T) {
			defer e.sub(t)()
			var p dockerProfile
			data := e2e.ModuleFile(t, "github.com/docker/docker", version, "profiles/seccomp/default.json")
			if err := json.Unmarshal(data, &p); err != nil {
				t.Fatalf("Docker %s profile: %v", version, err)
			}
			spec := testSpec("sh", "-c", "grep Seccomp: /proc/self/status; ls / > /dev/null && echo listed")
			spec.Process.NoNewPrivileges = false
			spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: dockerCaps, Effective: dockerCaps, Permitted: dockerCaps}
			spec.Linux.Seccomp = p.toOCI(dockerCaps)
			b := newBundle(t, spec)
			out := e.must("run", "--bundle", b.dir, "docker-profile")
			if !strings.Contains(out, "Seccomp:\t2") || !strings.Contains(out, "listed") {
				t.Fatalf("under Docker %s's profile: %q (want the filter on and the commands run)", version, out)
			}
		})
	}
}
