package tests

import (
	"fmt"

	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"
)

// TestRootFileContents reads files of the root in a container, through
// the overlay's read-only lower layer (served with FUSE passthrough where
// the host allows it), and compares them with the host's: a large file
// read with dd, read through mmap (exec of a copied binary), and after
// the host changed it in place.
func TestRootFileContents(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sh", "-c", "sha256sum /big; /bin/busybox-copy echo exec-ok; dd if=/big bs=1M 2>/dev/null | sha256sum")
	b := newBundle(t, spec)
	big := make([]byte, 8<<20+123)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(b.rootfs, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	bb, _ := os.ReadFile(filepath.Join(b.rootfs, "bin", "busybox"))
	if err := os.WriteFile(filepath.Join(b.rootfs, "bin", "busybox-copy"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	want := hex.EncodeToString(sum[:])
	out := e.must("run", "--bundle", b.dir, "contents")
	if strings.Count(out, want) != 2 || !strings.Contains(out, "exec-ok") {
		t.Fatalf("output %q, want the host's sha256 %s twice and exec-ok", out, want)
	}
}

// TestRootOnOverlayFS runs a container whose root is an overlayfs mount on
// the host, as containerd's and podman's snapshotters give: the host files
// then sit on a stacked file system, which FUSE passthrough reaches only
// from a mount of stacking depth 2 (write-through), and the root must be
// served all the same under the memory overlay, which stacks on it.
// Write-through, the container's writes land in the snapshot's upper
// directory.
func TestRootOnOverlayFS(t *testing.T) {
	for _, mode := range []string{"write-through", "memory overlay"} {
		t.Run(mode, func(t *testing.T) {
			e := modeEnv(t, mode)
			b := newBundle(t, testSpec("true"))
			base := t.TempDir()
			upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
			for _, d := range []string{upper, work, merged} {
				os.Mkdir(d, 0o755)
			}
			os.WriteFile(filepath.Join(b.rootfs, "lower-file"), []byte("from-lower\n"), 0o644)
			os.WriteFile(filepath.Join(upper, "upper-file"), []byte("from-upper\n"), 0o644)
			if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+b.rootfs+",upperdir="+upper+",workdir="+work); err != nil {
				t.Skipf("overlayfs: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
			script := "cat /lower-file /upper-file; ls /bin/busybox && echo ok; " +
				"echo appended >> /lower-file && echo created > /created && cat /lower-file /created"
			spec := testSpec("sh", "-c", script)
			spec.Root.Path = merged
			b.writeSpec(t, spec)
			out := e.must("run", "--bundle", b.dir, "on-overlay")
			if out != "from-lower\nfrom-upper\n/bin/busybox\nok\nfrom-lower\nappended\ncreated\n" {
				t.Fatalf("output %q", out)
			}
			got, _ := os.ReadFile(filepath.Join(upper, "lower-file"))
			created, _ := os.ReadFile(filepath.Join(upper, "created"))
			switch {
			case mode == "write-through" && (string(got) != "from-lower\nappended\n" || string(created) != "created\n"):
				t.Fatalf("writes did not land in the snapshot's upper directory: %q, %q", got, created)
			case mode == "memory overlay" && (got != nil || created != nil):
				t.Fatalf("writes of the memory overlay reached the host: %q, %q", got, created)
			}
		})
	}
}

// TestFUSEReadAhead checks that the host raised the read-ahead window of
// the sandbox's FUSE mounts (the kernel leaves them at 128 KiB, and reads
// not served by passthrough then take 4 round trips per MiB).
func TestFUSEReadAhead(t *testing.T) {
	e := newEnv(t)
	spec := testSpec("sleep", "1000")
	b := newBundle(t, spec)
	vol := t.TempDir()
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
	b.writeSpec(t, spec)
	e.must("run", "-d", "--bundle", b.dir, "readahead")
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", e.saved("readahead").Sandbox.PID))
	if err != nil {
		t.Fatal(err)
	}
	// The root's mount also appears bound at the container's root.
	seen := map[string]bool{}
	for _, line := range strings.Split(string(mi), "\n") {
		if !strings.Contains(line, " - fuse.runsc ") || seen[strings.Fields(line)[2]] {
			continue
		}
		dev := strings.Fields(line)[2]
		seen[dev] = true
		b, err := os.ReadFile("/sys/class/bdi/" + dev + "/read_ahead_kb")
		if err != nil || strings.TrimSpace(string(b)) != "1024" {
			t.Errorf("FUSE mount %s read_ahead_kb %q %v, want 1024", dev, b, err)
		}
	}
	if n := len(seen); n != 2 {
		t.Fatalf("found %d FUSE mounts in the sandbox, want the root and /vol", n)
	}
}

// TestSetIDClearedOnWrite checks that a write or truncate by a user
// without CAP_FSETID clears a file's set-user-ID bit, and its
// set-group-ID bit when it is group-executable, as Linux does, on a
// write-through root and on a volume; with CAP_FSETID they stay. The
// sandbox does the clearing (the gofer writes with CAP_FSETID).
func TestSetIDClearedOnWrite(t *testing.T) {
	files := map[string]os.FileMode{
		"suid": 0o777 | os.ModeSetuid, "sgid": 0o777 | os.ModeSetgid, "sgid-noexec": 0o767 | os.ModeSetgid,
		"trunc": 0o777 | os.ModeSetuid, "kept": 0o777 | os.ModeSetuid,
	}
	script := func(dir string) string {
		return fmt.Sprintf("cd %s && echo x >> suid && echo x >> sgid && echo x >> sgid-noexec && : > trunc && stat -c '%%n %%a' suid sgid sgid-noexec trunc", dir)
	}
	const want = "suid 777\nsgid 777\nsgid-noexec 2767\ntrunc 777\n"
	for _, where := range []string{"root", "volume"} {
		t.Run(where, func(t *testing.T) {
			e := newEnv(t)
			b := newBundle(t, testSpec("true"))
			host, dir := b.rootfs, "/"
			vol := t.TempDir()
			if where == "volume" {
				host, dir = vol, "/vol"
			}
			for name, mode := range files {
				p := filepath.Join(host, name)
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
			spec := testSpec("sh", "-c", script(dir))
			spec.Process.User = specs.User{UID: 1000, GID: 1000}
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
			b.writeSpec(t, spec)
			if out := e.must("run", "--bundle", b.dir, "setid"); out != want {
				t.Fatalf("modes after writes without CAP_FSETID:\n%s\nwant:\n%s", out, want)
			}
			for name, m := range map[string]os.FileMode{"suid": 0o777, "sgid": 0o777, "sgid-noexec": 0o767 | os.ModeSetgid, "trunc": 0o777} {
				if fi, err := os.Stat(filepath.Join(host, name)); err != nil || fi.Mode().Perm()|fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != m {
					t.Errorf("host %s: %v (%v), want %v", name, fi.Mode(), err, m)
				}
			}
			// Root with CAP_FSETID over the file (its owner mapped:
			// the host's user namespace) keeps the bits, as on
			// Linux.
			e = newEnv(t, "--userns=host")
			spec = testSpec("sh", "-c", fmt.Sprintf("echo x >> %s/kept && stat -c %%a %s/kept", dir, dir))
			caps := []string{"CAP_FSETID", "CAP_DAC_OVERRIDE"}
			spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
			b.writeSpec(t, spec)
			if out := e.must("run", "--bundle", b.dir, "setid-root"); out != "4777\n" {
				t.Fatalf("mode after a write with CAP_FSETID: %q, want 4777", out)
			}
		})
	}
}

// TestSetIDBitsSet checks that set-ID bits a container sets with chmod
// reach the file, inside and on the host, on a write-through root and
// under the memory overlay.
func TestSetIDBitsSet(t *testing.T) {
	script := "cd /tmp && touch f g && chmod 4755 f && chmod 6755 g && mkdir d && chmod 2775 d && stat -c '%n %a' f d g"
	const want = "f 4755\nd 2775\ng 6755\n"
	for _, flags := range [][]string{nil, {"--overlay2=root:memory"}} {
		t.Run(fmt.Sprintf("flags %v", flags), func(t *testing.T) {
			e := newEnv(t, flags...)
			spec := testSpec("sh", "-c", script)
			caps := []string{"CAP_CHOWN", "CAP_FOWNER", "CAP_FSETID", "CAP_DAC_OVERRIDE"}
			spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
			b := newBundle(t, spec)
			if out := e.must("run", "--bundle", b.dir, "setid-bits"); out != want {
				t.Fatalf("modes:\n%s\nwant:\n%s", out, want)
			}
			if flags != nil {
				return
			}
			for name, m := range map[string]os.FileMode{"f": 0o755 | os.ModeSetuid, "d": 0o775 | os.ModeSetgid | os.ModeDir, "g": 0o755 | os.ModeSetuid | os.ModeSetgid} {
				if fi, err := os.Stat(filepath.Join(b.rootfs, "tmp", name)); err != nil || fi.Mode() != m {
					t.Errorf("host %s: %v (%v), want %v", name, fi.Mode(), err, m)
				}
			}
		})
	}
}
