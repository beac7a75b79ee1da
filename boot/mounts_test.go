package boot

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBindMounts(t *testing.T) {
	bindT := specs.Mount{Destination: "/a", Type: "bind", Source: "/src/a"}
	rbindOpt := specs.Mount{Destination: "/b", Type: "none", Source: "/src/b", Options: []string{"rbind", "ro"}}
	bindOpt := specs.Mount{Destination: "/c", Source: "/src/c", Options: []string{"bind"}}
	tmpfs := specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid"}}
	proc := specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}
	// "bindx" and "rbind=1" are not the bind option.
	lookalike := specs.Mount{Destination: "/d", Type: "tmpfs", Source: "tmpfs", Options: []string{"bindx", "rbind=1"}}
	for _, c := range []struct {
		name   string
		mounts []specs.Mount
		want   []specs.Mount
	}{
		{"none", nil, nil},
		{"no bind", []specs.Mount{proc, tmpfs, lookalike}, nil},
		{"type or option, in spec order", []specs.Mount{proc, bindT, tmpfs, rbindOpt, lookalike, bindOpt}, []specs.Mount{bindT, rbindOpt, bindOpt}},
		{"repeated source kept", []specs.Mount{bindT, bindT}, []specs.Mount{bindT, bindT}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := bindMounts(&specs.Spec{Mounts: c.mounts})
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("bindMounts = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestTreeDir(t *testing.T) {
	for _, c := range []struct {
		cid       string
		i         int
		dir, file string
	}{
		{"box", 0, "/__mounts__/box/root", "/__mounts__/box/root-file"},
		{"box", 1, "/__mounts__/box/bind0", "/__mounts__/box/bind0-file"},
		{"box", 12, "/__mounts__/box/bind11", "/__mounts__/box/bind11-file"},
		{"a.b_c-d+e", 2, "/__mounts__/a.b_c-d+e/bind1", "/__mounts__/a.b_c-d+e/bind1-file"},
	} {
		t.Run(c.dir, func(t *testing.T) {
			if got := treeDir(c.cid, c.i); got != c.dir {
				t.Errorf("treeDir(%q, %d) = %q, want %q", c.cid, c.i, got, c.dir)
			}
			if got := fileTreeDir(c.cid, c.i); got != c.file {
				t.Errorf("fileTreeDir(%q, %d) = %q, want %q", c.cid, c.i, got, c.file)
			}
		})
	}
	t.Run("distinct per tree and container", func(t *testing.T) {
		seen := map[string]string{}
		for _, cid := range []string{"x", "y"} {
			for i := range 20 {
				for _, d := range []string{treeDir(cid, i), fileTreeDir(cid, i)} {
					key := cid + "/" + d
					if prev, dup := seen[d]; dup {
						t.Fatalf("%s and %s share mount point %s", prev, key, d)
					}
					seen[d] = key
				}
			}
		}
	})
}
