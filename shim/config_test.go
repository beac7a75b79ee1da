package shim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runcopts "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/pkg/runtimeoptions/v1"
	"github.com/containerd/containerd/protobuf"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// anyOf encodes v as the Any a create request carries.
func anyOf(t *testing.T, v any) *anypb.Any {
	t.Helper()
	a, err := typeurl.MarshalAny(v)
	if err != nil {
		t.Fatal(err)
	}
	return protobuf.FromAny(a)
}

// writeConfig writes a runsc.toml.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "runsc.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMapOptions(t *testing.T) {
	cfg := writeConfig(t, `binary_name = "/opt/runsc"
root = "/run/r"
[runsc_config]
  overlay2 = "root:memory"
  debug = "true"
  debug-log = "/var/log/runsc/%ID%/"
`)
	for _, c := range []struct {
		name         string
		opts         *anypb.Any
		binary, root string
		systemd      bool
		flags        map[string]string
	}{
		{name: "none", binary: "/bin/runsc", root: DefaultRoot},
		{name: "runc options", opts: anyOf(t, &runcopts.Options{BinaryName: "/x/runsc", Root: "/r", SystemdCgroup: true}), binary: "/x/runsc", root: "/r", systemd: true},
		{name: "runc options without binary", opts: anyOf(t, &runcopts.Options{}), binary: "/bin/runsc", root: DefaultRoot},
		{name: "CRI options with runsc.toml", opts: anyOf(t, &runtimeoptions.Options{ConfigPath: cfg}), binary: "/opt/runsc", root: "/run/r",
			flags: map[string]string{"overlay2": "root:memory", "debug": "true", "debug-log": "/var/log/runsc/%ID%/"}},
		{name: "CRI options without a file", opts: anyOf(t, &runtimeoptions.Options{TypeUrl: "x"}), binary: "/bin/runsc", root: DefaultRoot},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, flags, err := mapOptions(c.opts, "/bin/runsc")
			if err != nil {
				t.Fatal(err)
			}
			if got.BinaryName != c.binary || got.Root != c.root || got.SystemdCgroup != c.systemd {
				t.Fatalf("got binary %q root %q systemd %v", got.BinaryName, got.Root, got.SystemdCgroup)
			}
			gj, _ := json.Marshal(flags)
			wj, _ := json.Marshal(c.flags)
			if string(gj) != string(wj) {
				t.Fatalf("flags %s, want %s", gj, wj)
			}
		})
	}
}

func TestMapOptionsErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		opts *anypb.Any
		want string
	}{
		{"unknown key", anyOf(t, &runtimeoptions.Options{ConfigPath: writeConfig(t, "binary_nme = \"x\"\n")}), `unknown keys "binary_nme"`},
		{"bad toml", anyOf(t, &runtimeoptions.Options{ConfigPath: writeConfig(t, "root = \n")}), "runtime config"},
		{"missing file", anyOf(t, &runtimeoptions.Options{ConfigPath: "/nonexistent/runsc.toml"}), "/nonexistent/runsc.toml"},
		{"flag name", anyOf(t, &runtimeoptions.Options{ConfigPath: writeConfig(t, "[runsc_config]\n\"--debug\" = \"true\"\n")}), `runsc_config key "--debug"`},
		{"other type", anyOf(t, &runcopts.CheckpointOptions{}), "want runc options or CRI runtime options"},
		{"garbage", &anypb.Any{TypeUrl: "nope", Value: []byte{1, 2}}, "runtime options"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := mapOptions(c.opts, "/bin/runsc")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("binary_name = \"/usr/bin/runsc\"\nroot = \"/run/x\"\n[runsc_config]\n  overlay2 = \"root:memory\"\n  debug = \"true\"\n"))
	f.Add([]byte("[runsc_config]\n\"debug-log\" = \"/var/log/runsc/%ID%/\"\n"))
	f.Add([]byte("binary_name = 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("runsc.toml", data)
		if err != nil {
			if c != nil {
				t.Fatalf("a config with error %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error on several lines: %q", err)
			}
			return
		}
		for k := range c.RunscConfig {
			if k == "" || strings.HasPrefix(k, "-") || strings.ContainsAny(k, "= \t\n") {
				t.Fatalf("accepted flag name %q", k)
			}
		}
	})
}
