package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withPool points the pool at subuid/subgid files holding text (none if
// empty) and a fresh slot directory.
func withPool(t *testing.T, text string) {
	t.Helper()
	dir := t.TempDir()
	saved := []string{userNSSlotDir, subUIDFile, subGIDFile}
	t.Cleanup(func() { userNSSlotDir, subUIDFile, subGIDFile = saved[0], saved[1], saved[2] })
	userNSSlotDir = filepath.Join(dir, "slots")
	subUIDFile, subGIDFile = filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	if text != "" {
		os.WriteFile(subUIDFile, []byte(text), 0o644)
		os.WriteFile(subGIDFile, []byte(text), 0o644)
	}
}

func TestAllocateUserNS(t *testing.T) {
	t.Run("default pool, slots held by their lock", func(t *testing.T) {
		withPool(t, "")
		a, err := allocateUserNS()
		if err != nil {
			t.Fatal(err)
		}
		b, err := allocateUserNS()
		if err != nil {
			t.Fatal(err)
		}
		if a.uids[0].HostID != defaultPoolStart || b.uids[0].HostID != defaultPoolStart+podIDs {
			t.Fatalf("ranges %v and %v, want the pool's first two", a.uids, b.uids)
		}
		a.close()
		c, err := allocateUserNS()
		if err != nil {
			t.Fatal(err)
		}
		if c.uids[0].HostID != defaultPoolStart {
			t.Fatalf("a released range is not taken again: got %v", c.uids)
		}
		b.close()
		c.close()
	})
	t.Run("the runsc entries of subuid and subgid", func(t *testing.T) {
		withPool(t, "alice:100000:65536\nrunsc:500000:131072\n")
		a, _ := allocateUserNS()
		b, _ := allocateUserNS()
		if a == nil || b == nil || a.uids[0].HostID != 500000 || b.gids[0].HostID != 500000+podIDs {
			t.Fatalf("got %v %v", a, b)
		}
		if _, err := allocateUserNS(); err == nil || !strings.Contains(err.Error(), "all 2 in use") {
			t.Fatalf("third range of a pool of two: %v", err)
		}
		a.close()
		b.close()
	})
	t.Run("a pool too small is an error", func(t *testing.T) {
		withPool(t, "runsc:500000:1000\n")
		if _, err := allocateUserNS(); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("a bad entry falls back to the default pool", func(t *testing.T) {
		withPool(t, "runsc:x:65536\n")
		a, err := allocateUserNS()
		if err != nil || a.uids[0].HostID != defaultPoolStart {
			t.Fatalf("got %v, %v", a, err)
		}
		a.close()
	})
}

func TestNewPodUserNS(t *testing.T) {
	withPool(t, "")
	userNS := specs.LinuxNamespace{Type: specs.UserNamespace}
	spec := func(ns []specs.LinuxNamespace, u, g []specs.LinuxIDMapping) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Namespaces: ns, UIDMappings: u, GIDMappings: g}}
	}
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 3000000, Size: 65536}}
	for _, c := range []struct {
		name   string
		spec   *specs.Spec
		hostNS bool
		want   int // first host uid; -1 for none (host), -2 for an error
	}{
		{name: "default", spec: spec(nil, nil, nil), want: defaultPoolStart},
		{name: "host", spec: spec(nil, nil, nil), hostNS: true, want: -1},
		{name: "spec mappings", spec: spec([]specs.LinuxNamespace{userNS}, m, m), want: 3000000},
		{name: "spec mappings win over host", spec: spec([]specs.LinuxNamespace{userNS}, m, m), hostNS: true, want: 3000000},
		{name: "path of the runtime's", spec: spec([]specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/proc/self/ns/user"}}, nil, nil), want: -1},
		{name: "path of another type refused", spec: spec([]specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/proc/self/ns/net"}}, nil, nil), want: -2},
		{name: "no mappings refused", spec: spec([]specs.LinuxNamespace{userNS}, nil, nil), want: -2},
		{name: "half the mappings refused", spec: spec([]specs.LinuxNamespace{userNS}, m, nil), want: -2},
		{name: "empty range refused", spec: spec([]specs.LinuxNamespace{userNS}, []specs.LinuxIDMapping{{HostID: 1}}, m), want: -2},
		{name: "overflowing range refused", spec: spec([]specs.LinuxNamespace{userNS}, []specs.LinuxIDMapping{{HostID: 1 << 31, Size: 1 << 31}}, m), want: -2},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := newPodUserNS(c.spec, c.hostNS)
			defer u.close()
			switch {
			case c.want == -2:
				if err == nil || !strings.Contains(err.Error(), "config.json: linux.") {
					t.Fatalf("err %v, want one naming the field", err)
				}
			case err != nil:
				t.Fatal(err)
			case c.want == -1:
				if u != nil {
					t.Fatalf("got %v, want the host's", u)
				}
			case u == nil || u.uids[0].HostID != c.want:
				t.Fatalf("got %+v, want host uid %d", u, c.want)
			}
		})
	}
}
