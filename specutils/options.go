package specutils

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rlimits maps the rlimit names of process.rlimits to resource numbers.
var rlimits = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// RlimitNumber returns the resource number of a process.rlimits type
// ("RLIMIT_NOFILE").
func RlimitNumber(name string) (int, bool) {
	n, ok := rlimits[name]
	return n, ok
}

// capabilities are the capability names, indexed by number.
var capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
	"CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capabilityNumbers maps capability names to numbers.
var capabilityNumbers = func() map[string]int {
	m := make(map[string]int, len(capabilities))
	for i, n := range capabilities {
		m[n] = i
	}
	return m
}()

// CapabilityNumber returns the number of a capability name such as
// "CAP_KILL" (0 to 40).
func CapabilityNumber(name string) (int, bool) {
	n, ok := capabilityNumbers[name]
	return n, ok
}

// Capabilities returns all known capability names, in number order.
func Capabilities() []string {
	return append([]string(nil), capabilities...)
}

// BindReadOnly says how bind mount m is read-only: ro for all of it (ro
// on a plain bind, or rro), topOnly for only its own mount, the mounts
// below keeping their flags (ro on an rbind, as runc does).
func BindReadOnly(m specs.Mount) (ro, topOnly bool) {
	recursive, rec := false, false
	for _, o := range m.Options {
		switch o {
		case "ro":
			ro = true
		case "rro":
			ro, recursive = true, true
		case "rw":
			ro, recursive = false, false
		case "rbind":
			rec = true
		}
	}
	if ro && rec && !recursive {
		return false, true
	}
	return ro, false
}

// IsBindMount reports whether m is a bind mount: of type "bind", or with
// a "bind" or "rbind" option (whatever its type, as runc does).
func IsBindMount(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// mountFlag is what a mount option does to the mount flags: set or clear
// them.
type mountFlag struct {
	clear bool
	flag  uintptr
}

// mountFlagOptions are the options that map to MS_* flags. Options that
// change nothing are known but have no flag.
var mountFlagOptions = map[string]mountFlag{
	"ro":            {false, unix.MS_RDONLY},
	"rro":           {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"nosuid":        {false, unix.MS_NOSUID},
	"suid":          {true, unix.MS_NOSUID},
	"nodev":         {false, unix.MS_NODEV},
	"dev":           {true, unix.MS_NODEV},
	"noexec":        {false, unix.MS_NOEXEC},
	"exec":          {true, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"remount":       {false, unix.MS_REMOUNT},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"noatime":       {false, unix.MS_NOATIME},
	"atime":         {true, unix.MS_NOATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"defaults":      {false, 0},
	// runc extensions, accepted and without a mount flag.
	"tmpcopyup": {false, 0},
	"idmap":     {false, 0},
	"ridmap":    {false, 0},
}

// propagationOptions map to the propagation type set after mounting.
var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// dataOptions are file system options without a value, passed as data.
var dataOptions = map[string]bool{
	"newinstance": true,
}

// MountFlags maps mount options to the MS_* flags of mount(2), the
// propagation flags to set afterwards (the last propagation option wins)
// and the file system data (key=value options, and the few known options
// without a value such as "newinstance"), in order. Options apply in
// order: "ro,rw" is read-write. An unknown option without '=' is an error.
func MountFlags(options []string) (flags uintptr, propagation uintptr, data []string, err error) {
	for _, o := range options {
		if f, ok := mountFlagOptions[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			propagation = p
			continue
		}
		if strings.ContainsAny(o, ",\x00") {
			return 0, 0, nil, fmt.Errorf("mount option %q: must not contain ',' or NUL bytes", o)
		}
		if k, _, ok := strings.Cut(o, "="); ok {
			if k == "" {
				return 0, 0, nil, fmt.Errorf("mount option %q: empty key", o)
			}
			data = append(data, o)
			continue
		}
		if dataOptions[o] {
			data = append(data, o)
			continue
		}
		return 0, 0, nil, fmt.Errorf("unknown mount option %q", o)
	}
	return flags, propagation, data, nil
}

// MountOptions returns the sorted names of the mount options MountFlags
// knows, key=value options aside.
func MountOptions() []string {
	var names []string
	for n := range mountFlagOptions {
		names = append(names, n)
	}
	for n := range propagationOptions {
		names = append(names, n)
	}
	for n := range dataOptions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HostBind reports whether bind mount m of spec is the host's own mount
// tree rather than a tree the gofer serves: a bind with shared
// propagation ("shared" or "rshared" last among its propagation
// options; Kubernetes' Bidirectional) in a container that may mount
// (CAP_SYS_ADMIN in its bounding set). Only then can a mount the
// container makes under it be one the host must see, and only the host's
// own mount, a peer of the container's, carries it there. Any other bind
// is served over 9P, propagation from the host included (the gofer's
// tree receives the host's later mounts).
func HostBind(spec *specs.Spec, m specs.Mount) bool {
	if !IsBindMount(m) || spec.Process == nil || spec.Process.Capabilities == nil {
		return false
	}
	return lastPropagation(m)&unix.MS_SHARED != 0 && slices.Contains(spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
}

// ServedBind reports whether m is a bind mount of spec the gofer serves:
// every bind but a HostBind. Served binds are numbered in spec order,
// from 1, by the container's gofer trees.
func ServedBind(spec *specs.Spec, m specs.Mount) bool {
	return IsBindMount(m) && !HostBind(spec, m)
}

// BindPropagates reports whether bind mount m asks to receive the
// host's later mounts under its source: its last propagation option is
// slave, rslave, shared or rshared.
func BindPropagates(m specs.Mount) bool {
	return lastPropagation(m)&(unix.MS_SLAVE|unix.MS_SHARED) != 0
}

// lastPropagation returns the propagation flags of m's last propagation
// option (MountFlags' rule), 0 if it has none.
func lastPropagation(m specs.Mount) uintptr {
	prop := uintptr(0)
	for _, o := range m.Options {
		if p, ok := propagationOptions[o]; ok {
			prop = p
		}
	}
	return prop
}
