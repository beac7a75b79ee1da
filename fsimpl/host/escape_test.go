package host

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// fileState is what an escape must not change about a host file.
type fileState struct {
	Content          string
	Mode, UID, GID   uint32
	Size             int64
	MtimeS, MtimeNS  int64
	Nlink            uint64
	ChildrenOrTarget string
}

// snapshot records the state of every entry of dir.
func snapshot(t testing.TB, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		s := fileState{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size, MtimeS: st.Mtim.Sec, MtimeNS: st.Mtim.Nsec, Nlink: uint64(st.Nlink)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			s.Content = string(b)
		case unix.S_IFDIR:
			ents, _ := os.ReadDir(path)
			s.ChildrenOrTarget = fmt.Sprint(len(ents))
		}
		out[path] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// escapeFixture makes root/ (served) and outside/ (must stay untouched),
// with symbolic links inside root pointing out of it.
func escapeFixture(t *testing.T) (root, outside string) {
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	writeFile(t, filepath.Join(outside, "secret"), "top secret contents")
	writeFile(t, filepath.Join(outside, "dir", "inner"), "inner secret")
	writeFile(t, filepath.Join(root, "file"), "inside")
	writeFile(t, filepath.Join(root, "d", "x"), "x")
	for name, target := range map[string]string{
		"abs":     filepath.Join(outside, "secret"),
		"rel":     "../outside/secret",
		"dotdot":  "../../../../../../../../" + filepath.Join(outside, "secret"),
		"absdir":  filepath.Join(outside, "dir"),
		"reldir":  "../outside/dir",
		"etcpass": "/etc/shadow",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func TestEscapeThroughSymlinks(t *testing.T) {
	rootDir, outside := escapeFixture(t)
	before := snapshot(t, outside)
	root := serveDir(t, rootDir, Options{})
	defer func() {
		if after := snapshot(t, outside); !reflect.DeepEqual(before, after) {
			t.Fatalf("outside changed:\nbefore %v\nafter  %v", before, after)
		}
	}()

	for _, link := range []string{"abs", "rel", "dotdot", "etcpass"} {
		t.Run(link, func(t *testing.T) {
			f := walk(t, root, link)
			wantErrno(t, "truncate", f.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: 0}), unix.ELOOP, unix.EINVAL)
			wantErrno(t, "chmod", f.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777}), unix.EOPNOTSUPP, unix.ELOOP)
			for _, mode := range []p9.OpenFlags{p9.ReadOnly, p9.WriteOnly, p9.ReadWrite, p9.WriteOnly | p9.OpenFlags(unix.O_TRUNC)} {
				_, _, err := walk(t, root, link).Open(mode)
				wantErrno(t, fmt.Sprintf("open %v", mode), err, unix.ELOOP, unix.EINVAL)
			}
			// Timestamps and owner change the link itself, never the
			// target.
			if err := f.SetAttr(p9.SetAttrMask{MTime: true, ATime: true, MTimeNotSystemTime: true, ATimeNotSystemTime: true}, p9.SetAttr{MTimeSeconds: 1}); err != nil {
				t.Fatalf("utimes on link: %v", err)
			}
			if os.Getuid() == 0 {
				if err := f.SetAttr(p9.SetAttrMask{UID: true}, p9.SetAttr{UID: 4242}); err != nil {
					t.Fatalf("chown link: %v", err)
				}
			}
			// Walking through the link is refused.
			if _, c, err := root.Walk([]string{link, "x"}); err == nil {
				c.Close()
				t.Fatal("walked through a symlink")
			}
			// A hard link to the symlink links the symlink.
			if err := root.Link(f, link+".hard"); err != nil {
				t.Fatalf("link: %v", err)
			}
			if fi, err := os.Lstat(filepath.Join(rootDir, link+".hard")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("hard link is not a symlink: %v %v", fi, err)
			}
			// Renaming and removing the link affect only the link.
			if err := root.RenameAt(link, root, link+".moved"); err != nil {
				t.Fatalf("rename: %v", err)
			}
			if err := root.UnlinkAt(link+".moved", 0); err != nil {
				t.Fatalf("unlink: %v", err)
			}
		})
	}

	for _, link := range []string{"absdir", "reldir"} {
		t.Run(link, func(t *testing.T) {
			for _, names := range [][]string{{link, "inner"}, {link}} {
				_, f, err := root.Walk(names)
				if len(names) > 1 {
					if err == nil {
						f.Close()
						t.Fatalf("walked %v through a directory symlink", names)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = f.Open(p9.ReadOnly)
				wantErrno(t, "open dir link", err, unix.ELOOP, unix.EINVAL)
				f.Close()
			}
			d := walk(t, root, link)
			if _, _, _, err := d.Create("planted", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID); err == nil {
				t.Fatal("created a file through a directory symlink")
			}
			if _, err := d.Mkdir("planted", 0o755, p9.NoUID, p9.NoGID); err == nil {
				t.Fatal("mkdir through a directory symlink")
			}
		})
	}

	t.Run("absolute and dotdot names", func(t *testing.T) {
		for _, names := range [][]string{{".."}, {"d", ".."}, {"d", "..", ".."}, {filepath.Join(outside, "secret")}, {"/"}, {"../outside"}} {
			if _, f, err := root.Walk(names); err == nil {
				f.Close()
				t.Fatalf("walk %q succeeded", names)
			}
		}
		if _, err := root.Mkdir("../escaped", 0o755, p9.NoUID, p9.NoGID); err == nil {
			t.Fatal("mkdir ../escaped succeeded")
		}
		if err := root.RenameAt("file", root, "../outside/secret"); err == nil {
			t.Fatal("rename onto ../outside/secret succeeded")
		}
	})

	t.Run("hard link from another tree", func(t *testing.T) {
		other, err := Open(outside, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		of, err := other.Attach()
		if err != nil {
			t.Fatal(err)
		}
		defer of.Close()
		_, secret, err := of.Walk([]string{"secret"})
		if err != nil {
			t.Fatal(err)
		}
		defer secret.Close()
		a, err := Open(rootDir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		r, _ := a.Attach()
		defer r.Close()
		wantErrno(t, "link across trees", r.Link(secret, "stolen"), unix.EXDEV)
		wantErrno(t, "rename across trees", r.RenameAt("file", of, "stolen"), unix.EXDEV)
	})
}

func TestEscapeSwapBetweenWalkAndOpen(t *testing.T) {
	rootDir, outside := escapeFixture(t)
	before := snapshot(t, outside)
	root := serveDir(t, rootDir, Options{})
	defer func() {
		if after := snapshot(t, outside); !reflect.DeepEqual(before, after) {
			t.Fatalf("outside changed:\nbefore %v\nafter  %v", before, after)
		}
	}()

	t.Run("file replaced by symlink", func(t *testing.T) {
		f := walk(t, root, "file")
		g := walk(t, root, "file")
		swapIn(t, filepath.Join(rootDir, "file"), filepath.Join(outside, "secret"))
		_, _, err := f.Open(p9.ReadWrite | p9.OpenFlags(unix.O_TRUNC))
		wantErrno(t, "open swapped file", err, unix.ELOOP)
		wantErrno(t, "truncate swapped file", g.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{}), unix.ELOOP)
		wantErrno(t, "chmod swapped file", g.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777}), unix.EOPNOTSUPP)
	})

	t.Run("directory replaced by symlink", func(t *testing.T) {
		d := walk(t, root, "d")
		swapIn(t, filepath.Join(rootDir, "d"), filepath.Join(outside, "dir"))
		// The fid still names the original directory, wherever it is now.
		if _, err := d.Mkdir("made", 0o755, p9.NoUID, p9.NoGID); err != nil {
			t.Fatalf("mkdir in held dir: %v", err)
		}
		if _, err := os.Stat(filepath.Join(rootDir, "d.old", "made")); err != nil {
			t.Fatalf("mkdir did not land in the original directory: %v", err)
		}
		if _, f, err := d.Walk([]string{"inner"}); err == nil {
			f.Close()
			t.Fatal("walked into the outside directory")
		}
		x := walk(t, d, "x")
		if _, _, err := x.Open(p9.ReadWrite | p9.OpenFlags(unix.O_TRUNC)); err != nil {
			t.Fatal(err)
		}
		if _, err := x.WriteAt([]byte("written"), 0); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(rootDir, "d.old", "x")); string(got) != "written" {
			t.Fatalf("write went elsewhere: d.old/x = %q", got)
		}
	})

	t.Run("racing swaps", func(t *testing.T) {
		// Flip a name between a regular file and a symlink to an
		// outside file while the client truncates, chmods and opens it.
		name := filepath.Join(rootDir, "flip")
		writeFile(t, name, "inside")
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmpFile, tmpLink := name+".f", name+".l"
			for !stop.Load() {
				os.WriteFile(tmpFile, []byte("inside"), 0o644)
				os.Rename(tmpFile, name)
				os.Symlink(filepath.Join(outside, "secret"), tmpLink)
				os.Rename(tmpLink, name)
			}
		}()
		for i := 0; i < 2000; i++ {
			_, f, err := root.Walk([]string{"flip"})
			if err != nil {
				continue
			}
			f.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: 1})
			f.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777})
			if _, _, err := f.Open(p9.ReadWrite); err == nil {
				f.WriteAt([]byte("PWNED"), 0)
			}
			f.Close()
		}
		stop.Store(true)
		wg.Wait()
	})
}

// swapIn renames path to path+".old" and puts a symlink to target at path.
func swapIn(t *testing.T, path, target string) {
	t.Helper()
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
