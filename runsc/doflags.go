package main

import (
	"fmt"
	"path/filepath"
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

// doMounts turns runsc do's --bind SRC:DST[:ro|rw] and --tmpfs
// DST[:OPTIONS] into spec mounts: binds first, in order, then tmpfses.
func doMounts(binds, tmpfses []string) ([]specs.Mount, error) {
	var mounts []specs.Mount
	for _, b := range binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("do: --bind %q: want SRC:DST[:ro]", b)
		}
		src, err := filepath.Abs(parts[0])
		if err != nil {
			return nil, fmt.Errorf("do: --bind %q: %w", b, err)
		}
		if !filepath.IsAbs(parts[1]) {
			return nil, fmt.Errorf("do: --bind %q: DST %q must be absolute", b, parts[1])
		}
		opts := []string{"rbind"}
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				opts = append(opts, "ro")
			case "rw":
			default:
				return nil, fmt.Errorf("do: --bind %q: option %q: want ro or rw", b, parts[2])
			}
		}
		mounts = append(mounts, specs.Mount{Destination: filepath.Clean(parts[1]), Type: "bind", Source: src, Options: opts})
	}
	for _, t := range tmpfses {
		dst, opts, _ := strings.Cut(t, ":")
		if !filepath.IsAbs(dst) {
			return nil, fmt.Errorf("do: --tmpfs %q: DST %q must be absolute", t, dst)
		}
		m := specs.Mount{Destination: filepath.Clean(dst), Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}}
		if opts != "" {
			m.Options = append(m.Options, strings.Split(opts, ",")...)
		}
		mounts = append(mounts, m)
	}
	return mounts, nil
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

// parseDoUser parses --user UID[:GID] (GID defaults to UID's, as
// nspawn's numeric --user does not look anything up).
func parseDoUser(s string) (specs.User, error) {
	uidS, gidS, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidS, 10, 32)
	if err != nil {
		return specs.User{}, fmt.Errorf("do: --user %q: want numeric UID[:GID]", s)
	}
	gid := uid
	if hasGID {
		if gid, err = strconv.ParseUint(gidS, 10, 32); err != nil {
			return specs.User{}, fmt.Errorf("do: --user %q: want numeric UID[:GID]", s)
		}
	}
	return specs.User{UID: uint32(uid), GID: uint32(gid)}, nil
}
