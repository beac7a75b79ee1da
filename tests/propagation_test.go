package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sharedHostDir makes a directory that is a mount of its own with shared
// propagation, as Kubernetes' volumes with mount propagation are (and
// critest's), and a directory with a file to bind into it later.
func sharedHostDir(t *testing.T) (vol, flagDir string) {
	t.Helper()
	base := t.TempDir()
	vol, flagDir = filepath.Join(base, "vol"), filepath.Join(base, "flag")
	for _, d := range []string{filepath.Join(vol, "fromhost"), flagDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(flagDir, "flagFile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(vol, vol, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(vol, unix.MNT_DETACH) })
	if err := unix.Mount("", vol, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	return vol, flagDir
}

// privileged gives spec's process CAP_SYS_ADMIN, so that it may mount.
func privileged(spec *specs.Spec) {
	c := spec.Process.Capabilities
	c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
	c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
	c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
}

// TestMountPropagation checks a volume's propagation options against a
// host directory that is a shared mount: what the host mounts in it
// later appears in the container with rshared and rslave, and what a
// container that may mount mounts in it appears on the host only with
// rshared (Kubernetes' Bidirectional), which then is the host's own
// mount; in any other case the volume is served by the gofer, and with
// rprivate nothing the host mounts later reaches it.
func TestMountPropagation(t *testing.T) {
	for _, c := range []struct {
		name      string
		prop      string
		privilege bool
		// fromHost: the host's later mount reaches the container;
		// toHost: the container's mount reaches the host; hostMount:
		// the volume is the host's mount, not the gofer's tree.
		fromHost, toHost, hostMount bool
	}{
		{"rshared privileged", "rshared", true, true, true, true},
		{"rshared unprivileged", "rshared", false, true, false, false},
		{"rslave privileged", "rslave", true, true, false, false},
		{"rprivate privileged", "rprivate", true, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			vol, flagDir := sharedHostDir(t)
			spec := testSpec("sleep", "100000")
			if c.privilege {
				privileged(spec)
			}
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", c.prop, "rw"}})
			b := newBundle(t, spec)
			e.must("run", "-d", "--bundle", b.dir, "prop")

			// Host to container: a bind the host makes afterwards.
			if err := unix.Mount(flagDir, filepath.Join(vol, "fromhost"), "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			want := ""
			if c.fromHost {
				want = "flagFile\n"
			}
			if out := e.must("exec", "prop", "ls", "/vol/fromhost"); out != want {
				t.Fatalf("host's later mount seen in the container as %q, want %q", out, want)
			}

			// What the volume is in the container.
			info := e.must("exec", "prop", "cat", "/proc/self/mountinfo")
			var volLine string
			for _, l := range strings.Split(info, "\n") {
				if f := strings.Fields(l); len(f) > 4 && f[4] == "/vol" {
					volLine = l
				}
			}
			if isFUSE := strings.Contains(volLine, " - fuse"); isFUSE == c.hostMount {
				t.Fatalf("/vol in the container: %q; want the host's mount: %v", volLine, c.hostMount)
			}
			if c.hostMount && !strings.Contains(volLine, "shared:") {
				t.Fatalf("/vol in the container is not shared: %q", volLine)
			}

			// Container to host: the container binds its /etc.
			r := e.exec("", "exec", "prop", "sh", "-c", "mkdir -p /vol/fromctr && mount --bind /etc /vol/fromctr")
			if c.privilege && r.code != 0 {
				t.Fatalf("mount in the container: exit %d: %s", r.code, r.stderr)
			}
			if !c.privilege && r.code == 0 {
				t.Fatalf("an unprivileged container mounted")
			}
			ents, err := os.ReadDir(filepath.Join(vol, "fromctr"))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ents) > 0; got != c.toHost {
				t.Fatalf("the container's mount seen on the host: %v (%d entries), want %v", got, len(ents), c.toHost)
			}
			e.must("delete", "--force", "prop")
			// Undone before the sandbox is gone: the host keeps what
			// was propagated to it, as with runc.
			unix.Unmount(filepath.Join(vol, "fromctr"), unix.MNT_DETACH)
			unix.Unmount(filepath.Join(vol, "fromhost"), unix.MNT_DETACH)
		})
	}
}
