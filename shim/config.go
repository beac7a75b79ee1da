// Package shim is containerd-shim-runsc-v1, the containerd shim of the
// runtime type io.containerd.runsc.v1. It is containerd's own runc shim
// (the v1.7 shim library, the runc shim's manager and task service),
// which drives a runc-compatible binary through its command line, with
// runsc as that binary: runsc's process model is runc's, so the stock
// task service reaps the containers' processes and reports their exits.
// What is runsc's own: the default binary (the runsc next to the shim)
// and root, CRI's runtime options (a runsc.toml in gVisor's format)
// mapped to the runc options the task service expects, the runsc flags
// of that file, and stats that never fail.
package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	runcopts "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/pkg/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// RuntimeType is the containerd runtime type the shim serves.
const RuntimeType = "io.containerd.runsc.v1"

// DefaultRoot is runsc's --root when the options name none.
const DefaultRoot = "/run/containerd/runsc"

// FlagsEnv is the environment variable through which the shim gives
// runsc the global flags of runsc.toml's [runsc_config] table: a JSON
// object of flag names (without "--") to values. runsc applies each one
// not given on its command line. The runc task service runs runsc with
// the shim's environment, and offers no other way to add flags.
const FlagsEnv = "RUNSC_FLAGS"

// Config is a runsc.toml file, gVisor's format, named by CRI's runtime
// options (ConfigPath).
type Config struct {
	// BinaryName is the runsc binary; default the runsc next to the
	// shim.
	BinaryName string `toml:"binary_name"`
	// Root is runsc's --root; default DefaultRoot.
	Root string `toml:"root"`
	// RunscConfig are runsc global flags, by name without "--".
	RunscConfig map[string]string `toml:"runsc_config"`
}

// LoadConfig reads a runsc.toml file (see ParseConfig).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("runtime config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes runsc.toml data read from path. Keys it does not
// know are an error naming them: a misspelt key must not be silently
// ignored. Errors are one line.
func ParseConfig(path string, data []byte) (*Config, error) {
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("runtime config %s: %s", path, strings.Join(strings.Fields(err.Error()), " "))
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = fmt.Sprintf("%q", k.String())
		}
		return nil, fmt.Errorf("runtime config %s: unknown keys %s", path, strings.Join(keys, ", "))
	}
	for k, v := range c.RunscConfig {
		if k == "" || strings.HasPrefix(k, "-") || strings.ContainsAny(k, "= \t\n\x00") {
			return nil, fmt.Errorf("runtime config %s: runsc_config key %q: not a flag name", path, k)
		}
		if strings.ContainsAny(v, "\x00") {
			return nil, fmt.Errorf("runtime config %s: runsc_config %s value %q: must not contain NUL bytes", path, k, v)
		}
	}
	if strings.ContainsAny(c.BinaryName+c.Root, "\x00") {
		return nil, fmt.Errorf("runtime config %s: binary_name and root must not contain NUL bytes", path)
	}
	return &c, nil
}

// defaultBinary returns the runsc next to the running shim, or "runsc"
// (found on PATH) if the shim's own path is unknown.
func defaultBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return "runsc"
	}
	return filepath.Join(filepath.Dir(exe), "runsc")
}

// mapOptions turns the options of a create request into the runc
// options the task service expects, with runsc's defaults, and returns
// the runsc flags of a runsc.toml. The request may carry runc options
// (containerd's io.containerd.runc.v2 options: BinaryName, Root,
// SystemdCgroup), CRI's runtime options (ConfigPath, a runsc.toml), or
// none.
func mapOptions(opts *anypb.Any, binary string) (*runcopts.Options, map[string]string, error) {
	out := &runcopts.Options{}
	var flags map[string]string
	if opts.GetValue() != nil {
		v, err := typeurl.UnmarshalAny(opts)
		if err != nil {
			return nil, nil, fmt.Errorf("runtime options %q: %w", opts.GetTypeUrl(), err)
		}
		switch o := v.(type) {
		case *runcopts.Options:
			out = o
		case *runtimeoptions.Options:
			if o.ConfigPath != "" {
				c, err := LoadConfig(o.ConfigPath)
				if err != nil {
					return nil, nil, err
				}
				out.BinaryName, out.Root, flags = c.BinaryName, c.Root, c.RunscConfig
			}
		default:
			return nil, nil, fmt.Errorf("runtime options %q: want runc options or CRI runtime options", opts.GetTypeUrl())
		}
	}
	if out.BinaryName == "" {
		out.BinaryName = binary
	}
	if out.Root == "" {
		out.Root = DefaultRoot
	}
	return out, flags, nil
}

// flagsValue encodes flags for FlagsEnv, keys sorted.
func flagsValue(flags map[string]string) (string, error) {
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	data, err := json.Marshal(flags)
	if err != nil {
		return "", fmt.Errorf("encoding runsc flags %v: %w", keys, err)
	}
	return string(data), nil
}
