package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// repeated is a flag that may be given more than once.
type repeated []string

// String implements flag.Value.
func (r *repeated) String() string { return strings.Join(*r, " ") }

// Set implements flag.Value.
func (r *repeated) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// doMountFlags collects runsc do's --bind and --tmpfs flags in the order
// given.
type doMountFlags struct {
	kinds, values []string
}

// doMountFlag is one of the flags that add to a doMountFlags.
type doMountFlag struct {
	all  *doMountFlags
	kind string
}

// flag returns the flag.Value for kind ("bind" or "tmpfs").
func (d *doMountFlags) flag(kind string) *doMountFlag { return &doMountFlag{d, kind} }

// String implements flag.Value.
func (f *doMountFlag) String() string { return "" }

// Set implements flag.Value.
func (f *doMountFlag) Set(v string) error {
	f.all.kinds = append(f.all.kinds, f.kind)
	f.all.values = append(f.all.values, v)
	return nil
}

// specMounts turns --bind SRC:DST[:ro|rw] and --tmpfs DST[:OPTIONS] into
// spec mounts, parents before what is mounted under them (as nspawn
// sorts its mounts), otherwise in the order given.
func (d *doMountFlags) specMounts() ([]specs.Mount, error) {
	var mounts []specs.Mount
	for i, v := range d.values {
		var m specs.Mount
		var err error
		if d.kinds[i] == "bind" {
			m, err = parseDoBind(v)
		} else {
			m, err = parseDoTmpfs(v)
		}
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, m)
	}
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(mounts[i].Destination, "/") < strings.Count(mounts[j].Destination, "/")
	})
	return mounts, nil
}

// doDest checks a mount destination of flag value v.
func doDest(flag, v, dst string) (string, error) {
	if !filepath.IsAbs(dst) {
		return "", fmt.Errorf("do: --%s %q: DST %q must be absolute", flag, v, dst)
	}
	if filepath.Clean(dst) == "/" {
		return "", fmt.Errorf("do: --%s %q: DST may not be / (see --root-dir)", flag, v)
	}
	return filepath.Clean(dst), nil
}

// parseDoBind parses --bind SRC:DST[:ro|rw]. ro is read-only all the way
// down (rro), as nspawn's --bind-ro: mounts under SRC too.
func parseDoBind(v string) (specs.Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return specs.Mount{}, fmt.Errorf("do: --bind %q: want SRC:DST[:ro]", v)
	}
	src, err := filepath.Abs(parts[0])
	if err != nil {
		return specs.Mount{}, fmt.Errorf("do: --bind %q: %w", v, err)
	}
	if _, err := os.Stat(src); err != nil {
		return specs.Mount{}, fmt.Errorf("do: --bind %q: SRC: %w", v, err)
	}
	dst, err := doDest("bind", v, parts[1])
	if err != nil {
		return specs.Mount{}, err
	}
	opts := []string{"rbind"}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			opts = append(opts, "rro")
		case "rw":
		default:
			return specs.Mount{}, fmt.Errorf("do: --bind %q: option %q: want ro or rw", v, parts[2])
		}
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}, nil
}

// tmpfsRefused are the mount options a --tmpfs may not carry: they would
// make it something else.
var tmpfsRefused = map[string]bool{
	"bind": true, "rbind": true, "shared": true, "rshared": true, "slave": true, "rslave": true,
	"private": true, "rprivate": true, "unbindable": true, "runbindable": true, "remount": true,
}

// parseDoTmpfs parses --tmpfs DST[:OPTIONS].
func parseDoTmpfs(v string) (specs.Mount, error) {
	d, opts, _ := strings.Cut(v, ":")
	dst, err := doDest("tmpfs", v, d)
	if err != nil {
		return specs.Mount{}, err
	}
	m := specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}}
	if opts == "" {
		return m, nil
	}
	for _, o := range strings.Split(opts, ",") {
		k, val, hasVal := strings.Cut(o, "=")
		if o == "" || tmpfsRefused[k] || hasVal && val == "" {
			return specs.Mount{}, fmt.Errorf("do: --tmpfs %q: option %q: not a tmpfs option", v, o)
		}
		m.Options = append(m.Options, o)
	}
	return m, nil
}

// doEnv returns the caller's environment with --env K=V set over it.
func doEnv(environ, envs []string) ([]string, error) {
	env := append([]string{}, environ...)
	for _, kv := range envs {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("do: --env %q: want K=V", kv)
		}
		kept := env[:0]
		for _, e := range env {
			if !strings.HasPrefix(e, k+"=") {
				kept = append(kept, e)
			}
		}
		env = append(kept, kv)
	}
	return env, nil
}

// parseDoUser parses --user UID[:GID]; the GID is 0 when not given, as
// with runsc exec --user and runc (nothing is looked up in the root).
func parseDoUser(s string) (specs.User, error) {
	uidS, gidS, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidS, 10, 32)
	if err != nil {
		return specs.User{}, fmt.Errorf("do: --user %q: want numeric UID[:GID]", s)
	}
	var gid uint64
	if hasGID {
		if gid, err = strconv.ParseUint(gidS, 10, 32); err != nil {
			return specs.User{}, fmt.Errorf("do: --user %q: want numeric UID[:GID]", s)
		}
	}
	return specs.User{UID: uint32(uid), GID: uint32(gid)}, nil
}
