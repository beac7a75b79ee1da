package boot

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openRoot opens dir as openIn's root: an O_PATH directory descriptor.
func openRoot(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// listTree returns every path under dir, relative to it, with a type
// letter: what an escape would change.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			out = append(out, p+" unreadable")
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+fi.Mode().Type().String())
		return nil
	})
	sort.Strings(out)
	return out
}

func TestOpenIn(t *testing.T) {
	// outer holds the container's root and a host directory next to it
	// that nothing may reach.
	outer := t.TempDir()
	root := filepath.Join(outer, "root")
	host := filepath.Join(outer, "host")
	for _, d := range []string{root, host, filepath.Join(root, "etc"), filepath.Join(root, "dir")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("127.0.0.1 localhost\n"), 0o644)
	os.WriteFile(filepath.Join(root, "file"), nil, 0o644)
	os.WriteFile(filepath.Join(host, "secret"), []byte("host"), 0o600)
	for link, target := range map[string]string{
		"abs-host":      host,                      // absolute: the host's path, taken in the root
		"abs-host-file": filepath.Join(host, "x"),  // dangling in the root
		"dotdot":        "../../host",              // climbs above the root
		"deep-dotdot":   "dir/../../../../../host", // climbs through a directory
		"self-root":     "/",                       // the root itself
		"to-dir":        "dir",                     // inside: followed
		"proc-root":     "/proc/self/root",         // a magic link, were /proc there
		"loop":          "loop",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	rootFD := openRoot(t, root)
	hostBefore := listTree(t, host)

	// resolved returns the host path an O_PATH descriptor names.
	resolved := func(t *testing.T, fd int) string {
		t.Helper()
		p, err := os.Readlink(fdPath(fd))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	for _, c := range []struct {
		name string
		p    string
		file bool
		// want is the host path the result names, relative to root;
		// "" when openIn must fail.
		want string
		// typ is the type made or found there: 'd' or 'f'.
		typ byte
	}{
		{name: "existing file", p: "/etc/hosts", want: "etc/hosts", typ: 'f'},
		{name: "existing dir", p: "/etc", want: "etc", typ: 'd'},
		{name: "root", p: "/", want: ".", typ: 'd'},
		{name: "relative taken from the root", p: "etc/hosts", want: "etc/hosts", typ: 'f'},
		{name: "unclean", p: "//etc/./../etc//hosts", want: "etc/hosts", typ: 'f'},
		{name: "missing dirs made", p: "/a/b/c", want: "a/b/c", typ: 'd'},
		{name: "missing file made with its dirs", p: "/m/n/file.txt", file: true, want: "m/n/file.txt", typ: 'f'},
		{name: "existing dir wanted as file", p: "/etc", file: true, want: "etc", typ: 'd'},
		{name: "dotdot above root stays in", p: "/../../host/made", want: "host/made", typ: 'd'},
		{name: "absolute link taken in the root", p: "/abs-host/made-dir", want: "", typ: 'd'},
		{name: "dangling absolute link as file", p: "/abs-host-file", file: true, want: ""},
		{name: "relative link climbing out", p: "/dotdot/viadotdot", want: "host/viadotdot", typ: 'd'},
		{name: "link through a dir climbing out", p: "/deep-dotdot/viadeep", file: true, want: "host/viadeep", typ: 'f'},
		{name: "link to the root", p: "/self-root/etc/hosts", want: "etc/hosts", typ: 'f'},
		{name: "link inside followed", p: "/to-dir/sub", want: "dir/sub", typ: 'd'},
		{name: "magic link path", p: "/proc-root/x", want: ""},
		{name: "symlink loop", p: "/loop/x", want: ""},
		{name: "through a regular file", p: "/file/x", want: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fd, err := openIn(rootFD, c.p, c.file)
			if c.want == "" {
				if err == nil {
					got := resolved(t, fd)
					unix.Close(fd)
					// Failing is not required where the result stays
					// in the root; escaping is never allowed.
					if !strings.HasPrefix(got+"/", root+"/") {
						t.Fatalf("openIn(%q) escaped the root to %s", c.p, got)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("openIn(%q, %v): %v", c.p, c.file, err)
			}
			defer unix.Close(fd)
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_PATH == 0 {
				t.Errorf("result flags %#x, %v: want O_PATH", fl, err)
			}
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
				t.Errorf("result fd flags %#x, %v: want close-on-exec", fl, err)
			}
			want := filepath.Join(root, c.want)
			if got := resolved(t, fd); got != want {
				t.Fatalf("openIn(%q) names %s, want %s", c.p, got, want)
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				t.Fatal(err)
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if (c.typ == 'd') != isDir || (c.typ == 'f' && st.Mode&unix.S_IFMT != unix.S_IFREG) {
				t.Fatalf("openIn(%q) made mode %#o, want type %c", c.p, st.Mode, c.typ)
			}
		})
	}
	t.Run("host untouched", func(t *testing.T) {
		if after := listTree(t, host); strings.Join(after, "\n") != strings.Join(hostBefore, "\n") {
			t.Fatalf("host directory next to the root changed:\nbefore %q\nafter  %q", hostBefore, after)
		}
		ents, _ := os.ReadDir(outer)
		for _, e := range ents {
			if e.Name() != "root" && e.Name() != "host" {
				t.Errorf("openIn made %s next to the root", e.Name())
			}
		}
	})
	t.Run("made file is empty and 0644", func(t *testing.T) {
		fi, err := os.Lstat(filepath.Join(root, "m/n/file.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 0 || fi.Mode().Perm()&^0o644 != 0 {
			t.Fatalf("made file: size %d mode %v", fi.Size(), fi.Mode())
		}
	})
	t.Run("existing file kept", func(t *testing.T) {
		fd, err := openIn(rootFD, "/etc/hosts", true)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		if b, _ := os.ReadFile(filepath.Join(root, "etc/hosts")); string(b) != "127.0.0.1 localhost\n" {
			t.Fatalf("existing file now holds %q", b)
		}
	})
}

// TestOpenInDanglingLinks checks that openIn creates the target of a
// dangling symbolic link on the way, inside the root, as runc does, and
// that such links never lead it out of the root or round in circles.
func TestOpenInDanglingLinks(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root + "/var", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"var/run":  "/run",               // absolute, dangling
		"rel":      "var/lib/data",       // relative, dangling two levels
		"up":       "../../../../escape", // climbs above the root
		"loop1":    "loop2",
		"loop2":    "loop1",
		"var/file": "/made/file",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	before := listTree(t, outside)
	rfd := openRoot(t, root)
	for _, c := range []struct {
		path, made string
		file       bool
	}{
		{"/var/run/foo", "run/foo", false},
		{"/rel/x", "var/lib/data/x", false},
		{"/up/y", "escape/y", false},
		{"/var/file", "made/file", true},
	} {
		t.Run(c.path, func(t *testing.T) {
			fd, err := openIn(rfd, c.path, c.file)
			if err != nil {
				t.Fatalf("openIn: %v", err)
			}
			unix.Close(fd)
			fi, err := os.Lstat(filepath.Join(root, c.made))
			if err != nil || fi.IsDir() == c.file {
				t.Fatalf("%s not made as a %s: %v", c.made, map[bool]string{true: "file", false: "directory"}[c.file], err)
			}
		})
	}
	t.Run("loop", func(t *testing.T) {
		if fd, err := openIn(rfd, "/loop1/z", false); err == nil {
			unix.Close(fd)
			t.Fatal("a symbolic link loop resolved")
		}
	})
	if after := listTree(t, outside); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("the directory beside the root changed: %v", after)
	}
	if _, err := os.Lstat(filepath.Join(base, "escape")); err == nil {
		t.Fatal("a link climbing out of the root made a directory outside it")
	}
}
