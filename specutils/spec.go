package specutils

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/hook"
)

// specFile is the name of the spec in a bundle.
const specFile = "config.json"

// LoadSpec reads <bundle>/config.json, decodes it into specs.Spec and
// validates it. Relative paths are resolved against the bundle: root.path
// (which must name an existing directory) and the sources of bind mounts
// are absolute in the returned spec.
func LoadSpec(bundle string) (*specs.Spec, error) {
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", bundle, err)
	}
	data, err := os.ReadFile(filepath.Join(abs, specFile))
	if err != nil {
		return nil, fmt.Errorf("loading spec: %w", err)
	}
	s, err := ParseSpec(data)
	if err != nil {
		return nil, err
	}
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(abs, root)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, specErr("root.path %q: %v", s.Root.Path, err)
	}
	if !fi.IsDir() {
		return nil, specErr("root.path %q: %s is not a directory", s.Root.Path, root)
	}
	s.Root.Path = filepath.Clean(root)
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if IsBindMount(*m) && !filepath.IsAbs(m.Source) {
			m.Source = filepath.Join(abs, m.Source)
		}
	}
	return s, nil
}

// ParseSpec decodes and validates config.json bytes. Unknown fields are
// allowed, for forward compatibility.
func ParseSpec(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, decodeErr(err)
	}
	if err := ValidateSpec(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

// decodeErr turns a JSON decoding error into one line naming where the
// problem is.
func decodeErr(err error) error { return specErr("%v", decodeMsg(err, "a spec")) }

// decodeMsg turns a JSON decoding error into one line, without the file
// name, naming where the problem is; what is what the document holds.
func decodeMsg(err error, what string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at offset %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Errorf("cannot decode JSON %s into %s (offset %d)", te.Value, what, te.Offset)
		}
		return fmt.Errorf("%s: cannot decode JSON %s into %v (offset %d)", te.Field, te.Value, te.Type, te.Offset)
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// processFile names the process file of `exec --process` in errors.
const processFile = "process.json"

// ParseProcess decodes and validates a process.json (`exec --process`):
// the same checks as config.json's process, errors one line naming the
// field.
func ParseProcess(data []byte) (*specs.Process, error) {
	var p specs.Process
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %v", processFile, decodeMsg(err, "a process"))
	}
	if err := validateProcess(&p); err != nil {
		return nil, fmt.Errorf("%s: %v", processFile, err)
	}
	return &p, nil
}

// specErr is an error about config.json.
func specErr(format string, args ...any) error {
	return fmt.Errorf(specFile+": "+format, args...)
}

// ValidateSpec checks what runsc needs before anything is created. Each
// error is one line naming the JSON field at fault.
func ValidateSpec(s *specs.Spec) error {
	if s == nil {
		return specErr("empty spec")
	}
	if s.Version == "" {
		return specErr("ociVersion: must not be empty")
	}
	if major, _, _ := strings.Cut(s.Version, "."); major != "1" {
		return specErr("ociVersion %q: unsupported major version (want 1.x.y)", s.Version)
	}
	if s.Root == nil {
		return specErr("root: must be set")
	}
	if s.Root.Path == "" {
		return specErr("root.path: must not be empty")
	}
	if strings.IndexByte(s.Root.Path, 0) >= 0 {
		return specErr("root.path %q: must not contain NUL bytes", s.Root.Path)
	}
	if err := validateProcess(s.Process); err != nil {
		return specErr("%v", err)
	}
	if err := validateHostname(s.Hostname); err != nil {
		return err
	}
	if s.Hostname != "" && !hasNamespace(s, specs.UTSNamespace) {
		// As runc: setting it would change the host's hostname.
		return specErr("hostname %q: needs a uts namespace in linux.namespaces", s.Hostname)
	}
	for i, m := range s.Mounts {
		if err := validateMount(i, m); err != nil {
			return err
		}
	}
	if err := hook.Validate(s); err != nil {
		return specErr("%v", err)
	}
	return validateLinux(s.Linux)
}

// hasNamespace reports whether the spec lists a namespace of type typ.
func hasNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			return true
		}
	}
	return false
}

// validateProcess checks spec.process.
func validateProcess(p *specs.Process) error {
	if p == nil {
		return fmt.Errorf("process: must be set (runsc does not support containers without a process)")
	}
	if len(p.Args) == 0 {
		return fmt.Errorf("process.args: must not be empty")
	}
	if p.Args[0] == "" {
		return fmt.Errorf("process.args[0]: must not be empty")
	}
	for i, a := range p.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("process.args[%d] %q: must not contain NUL bytes", i, a)
		}
	}
	if p.Cwd == "" {
		return fmt.Errorf("process.cwd: must not be empty")
	}
	if !path.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q: must be absolute", p.Cwd)
	}
	if strings.IndexByte(p.Cwd, 0) >= 0 {
		return fmt.Errorf("process.cwd %q: must not contain NUL bytes", p.Cwd)
	}
	for i, e := range p.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return fmt.Errorf("process.env[%d] %q: must be of the form KEY=VALUE", i, e)
		}
		if strings.IndexByte(e, 0) >= 0 {
			return fmt.Errorf("process.env[%d] %q: must not contain NUL bytes", i, e)
		}
	}
	if p.ConsoleSize != nil && !p.Terminal {
		return fmt.Errorf("process.consoleSize: only allowed when process.terminal is true")
	}
	seen := map[string]bool{}
	for i, rl := range p.Rlimits {
		if _, ok := rlimits[rl.Type]; !ok {
			return fmt.Errorf("process.rlimits[%d].type %q: unknown rlimit type", i, rl.Type)
		}
		if seen[rl.Type] {
			return fmt.Errorf("process.rlimits[%d].type %q: duplicate rlimit type", i, rl.Type)
		}
		seen[rl.Type] = true
		if rl.Soft > rl.Hard {
			return fmt.Errorf("process.rlimits[%d] (%s): soft limit %d exceeds hard limit %d", i, rl.Type, rl.Soft, rl.Hard)
		}
	}
	if c := p.Capabilities; c != nil {
		sets := []struct {
			name  string
			names []string
		}{
			{"bounding", c.Bounding},
			{"effective", c.Effective},
			{"inheritable", c.Inheritable},
			{"permitted", c.Permitted},
			{"ambient", c.Ambient},
		}
		for _, set := range sets {
			for i, n := range set.names {
				if _, ok := CapabilityNumber(n); !ok {
					return fmt.Errorf("process.capabilities.%s[%d] %q: unknown capability", set.name, i, n)
				}
			}
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fmt.Errorf("process.oomScoreAdj %d: must be in [-1000, 1000]", *p.OOMScoreAdj)
	}
	return nil
}

// maxHostname is the longest hostname the kernel accepts.
const maxHostname = 64

// validateHostname checks spec.hostname: at most 64 bytes of letters,
// digits, '-', '.' and '_'.
func validateHostname(h string) error {
	if len(h) > maxHostname {
		return specErr("hostname %.32q...: longer than %d bytes", h, maxHostname)
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
		default:
			return specErr("hostname %q: invalid character %q (allowed: letters, digits, '-', '.', '_')", h, r)
		}
	}
	return nil
}

// mountTypes are the file system types runsc mounts itself (not through a
// gofer). Bind mounts are recognized by IsBindMount, whatever their type.
var mountTypes = map[string]bool{
	"proc": true, "sysfs": true, "tmpfs": true, "devpts": true,
	"mqueue": true, "cgroup": true, "cgroup2": true,
}

// MountIDMapped reports whether mount m asks to be idmapped: the
// "idmap" or "ridmap" option, or mappings of its own.
func MountIDMapped(m specs.Mount) bool {
	for _, o := range m.Options {
		if o == "idmap" || o == "ridmap" {
			return true
		}
	}
	return len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
}

// validateMountIDs checks a bind mount's own id mappings: both or
// neither, each range non-empty and within 32 bits.
func validateMountIDs(field string, m specs.Mount) error {
	if (len(m.UIDMappings) == 0) != (len(m.GIDMappings) == 0) {
		return specErr("%s: uidMappings and gidMappings must be given together", field)
	}
	for name, ms := range map[string][]specs.LinuxIDMapping{"uidMappings": m.UIDMappings, "gidMappings": m.GIDMappings} {
		for j, r := range ms {
			if r.Size == 0 || uint64(r.ContainerID)+uint64(r.Size) >= 1<<32 || uint64(r.HostID)+uint64(r.Size) >= 1<<32 {
				return specErr("%s.%s[%d]: bad range %d %d %d", field, name, j, r.ContainerID, r.HostID, r.Size)
			}
		}
	}
	return nil
}

// validateMount checks spec.mounts[i].
func validateMount(i int, m specs.Mount) error {
	field := fmt.Sprintf("mounts[%d]", i)
	d := m.Destination
	switch {
	case d == "":
		return specErr("%s.destination: must not be empty", field)
	case strings.IndexByte(d, 0) >= 0:
		return specErr("%s.destination %q: must not contain NUL bytes", field, d)
	case !path.IsAbs(d):
		return specErr("%s.destination %q: must be absolute", field, d)
	case hasDotDot(d):
		return specErr("%s.destination %q: must not contain \"..\" components", field, d)
	case path.Clean(d) == "/":
		return specErr("%s.destination %q: must not be the root (root.path is the root)", field, d)
	}
	if strings.IndexByte(m.Source, 0) >= 0 {
		return specErr("%s.source %q: must not contain NUL bytes", field, m.Source)
	}
	for j, o := range m.Options {
		if _, _, _, err := MountFlags([]string{o}); err != nil {
			return specErr("%s.options[%d] %q: %v", field, j, o, err)
		}
	}
	if IsBindMount(m) {
		if m.Source == "" {
			return specErr("%s.source: must not be empty for a bind mount", field)
		}
		return validateMountIDs(field, m)
	}
	if MountIDMapped(m) {
		return specErr("%s: only a bind mount can be idmapped (idmap, ridmap, uidMappings, gidMappings)", field)
	}
	switch {
	case m.Type == "":
		return specErr("%s.type: must not be empty unless the mount is a bind mount", field)
	case !mountTypes[m.Type]:
		return specErr("%s.type %q: unsupported mount type", field, m.Type)
	}
	return nil
}

// hasDotDot reports whether p has a ".." component.
func hasDotDot(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

// namespaceTypes are the namespace types a spec may name.
var namespaceTypes = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

// validateLinux checks spec.linux.
func validateLinux(l *specs.Linux) error {
	if l == nil {
		return nil
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range l.Namespaces {
		if !namespaceTypes[ns.Type] {
			return specErr("linux.namespaces[%d].type %q: unknown namespace type", i, ns.Type)
		}
		if seen[ns.Type] {
			return specErr("linux.namespaces[%d].type %q: duplicate namespace", i, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !path.IsAbs(ns.Path) {
			return specErr("linux.namespaces[%d].path %q: must be absolute", i, ns.Path)
		}
		if strings.IndexByte(ns.Path, 0) >= 0 {
			return specErr("linux.namespaces[%d].path %q: must not contain NUL bytes", i, ns.Path)
		}
	}
	for _, list := range []struct {
		name  string
		paths []string
	}{
		{"maskedPaths", l.MaskedPaths},
		{"readonlyPaths", l.ReadonlyPaths},
	} {
		for i, p := range list.paths {
			if !path.IsAbs(p) {
				return specErr("linux.%s[%d] %q: must be absolute", list.name, i, p)
			}
			if strings.IndexByte(p, 0) >= 0 {
				return specErr("linux.%s[%d] %q: must not contain NUL bytes", list.name, i, p)
			}
		}
	}
	for k := range l.Sysctl {
		if err := validateSysctl(k, seen); err != nil {
			return err
		}
	}
	if l.Seccomp != nil && l.Seccomp.DefaultAction == "" {
		return specErr("linux.seccomp.defaultAction: must not be empty")
	}
	return nil
}

// SysctlPath returns the /proc/sys path of a sysctl key
// ("net.ipv4.ip_forward" or "net/ipv4/ip_forward").
func SysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// SysctlNamespace returns the namespace a sysctl key ("net.ipv4.x" or
// "net/ipv4/x") belongs to; false for one that is not namespaced, which
// would change the host's.
func SysctlNamespace(key string) (specs.LinuxNamespaceType, bool) {
	norm := strings.ReplaceAll(key, "/", ".")
	switch {
	case strings.HasPrefix(norm, "net."):
		return specs.NetworkNamespace, true
	case norm == "kernel.hostname", norm == "kernel.domainname":
		return specs.UTSNamespace, true
	case norm == "kernel.msgmax", norm == "kernel.msgmnb", norm == "kernel.msgmni", norm == "kernel.sem",
		norm == "kernel.shmall", norm == "kernel.shmmax", norm == "kernel.shmmni", norm == "kernel.shm_rmid_forced",
		strings.HasPrefix(norm, "fs.mqueue."):
		return specs.IPCNamespace, true
	}
	return "", false
}

// validateSysctl checks a linux.sysctl key: like runc, only sysctls of a
// namespace the container has of its own are allowed (ns holds the
// namespace types the spec lists), since a write would otherwise change
// the host's.
func validateSysctl(key string, ns map[specs.LinuxNamespaceType]bool) error {
	if key == "" {
		return specErr("linux.sysctl: keys must not be empty")
	}
	if strings.Contains(key, "..") || strings.ContainsAny(key, "\x00") || strings.HasPrefix(key, "/") || strings.HasPrefix(key, ".") {
		return specErr("linux.sysctl[%q]: not a sysctl name", key)
	}
	need, ok := SysctlNamespace(key)
	if !ok {
		return specErr("linux.sysctl[%q]: not a namespaced sysctl: it would change the host's", key)
	}
	if !ns[need] {
		return specErr("linux.sysctl[%q]: the container has no %s namespace of its own", key, need)
	}
	return nil
}

// defaultCapabilities are the capabilities of the default spec's process.
var defaultCapabilities = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// DefaultSpec returns the spec `runsc spec` writes: runc's default, with
// hostname "runsc". It runs "sh" in a read-only "rootfs" directory of the
// bundle.
func DefaultSpec() *specs.Spec {
	caps := func() []string { return append([]string(nil), defaultCapabilities...) }
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{UID: 0, GID: 0},
			Args:     []string{"sh"},
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"TERM=xterm",
			},
			Cwd:             "/",
			NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps(),
				Permitted: caps(),
				Effective: caps(),
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Hostname: "runsc",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
				Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs",
				Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
				Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/sys/firmware", "/proc/scsi",
				"/sys/devices/virtual/tpm",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace},
			},
		},
	}
}

// ToRootless converts s, as runc spec --rootless does, into a spec for
// an unprivileged user: no network namespace but a user namespace mapping
// root to the caller's effective uid and gid, /sys bound from the host
// instead of mounted, no uid= or gid= mount options, and no resources.
func ToRootless(s *specs.Spec) {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	var nss []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace && ns.Type != specs.UserNamespace {
			nss = append(nss, ns)
		}
	}
	s.Linux.Namespaces = append(nss, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: uint32(os.Geteuid()), ContainerID: 0, Size: 1}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: uint32(os.Getegid()), ContainerID: 0, Size: 1}}
	var mounts []specs.Mount
	for _, m := range s.Mounts {
		if path.Clean(m.Destination) == "/sys" {
			mounts = append(mounts, specs.Mount{
				Source: "/sys", Destination: "/sys", Type: "none",
				Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"},
			})
			continue
		}
		var opts []string
		for _, o := range m.Options {
			if !strings.HasPrefix(o, "gid=") && !strings.HasPrefix(o, "uid=") {
				opts = append(opts, o)
			}
		}
		m.Options = opts
		mounts = append(mounts, m)
	}
	s.Mounts = mounts
	s.Linux.Resources = nil
}
