package host

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

func TestOperations(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hello"), "hello, world")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := serveDir(t, dir, Options{})

	t.Run("walk and read", func(t *testing.T) {
		f := walk(t, root, "hello")
		if _, _, err := f.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, f); got != "hello, world" {
			t.Fatalf("read %q", got)
		}
	})

	t.Run("xattrs over 9P", func(t *testing.T) {
		for _, name := range []string{"hello", "sub"} {
			f := walk(t, root, name)
			if err := f.SetXattr("user.k", []byte("v1"), 0); err != nil {
				t.Fatalf("%s: set: %v", name, err)
			}
			if v, err := f.GetXattr("user.k"); err != nil || string(v) != "v1" {
				t.Fatalf("%s: get %q, %v", name, v, err)
			}
			if b := make([]byte, 8); true {
				n, err := unix.Getxattr(filepath.Join(dir, name), "user.k", b)
				if err != nil || string(b[:n]) != "v1" {
					t.Fatalf("%s: on the host %q, %v", name, b[:n], err)
				}
			}
			if names, err := f.ListXattrs(); err != nil || !slices.Contains(names, "user.k") {
				t.Fatalf("%s: list %v, %v", name, names, err)
			}
			if err := f.RemoveXattr("user.k"); err != nil {
				t.Fatalf("%s: remove: %v", name, err)
			}
			if _, err := f.GetXattr("user.k"); syscall.Errno(linux.ExtractErrno(err)) != unix.ENODATA {
				t.Fatalf("%s: get after remove: %v, want ENODATA", name, err)
			}
			if err := f.SetXattr("user.k", []byte("x"), p9.XattrReplace); syscall.Errno(linux.ExtractErrno(err)) != unix.ENODATA {
				t.Fatalf("%s: replace of a missing attribute: %v, want ENODATA", name, err)
			}
		}
	})

	t.Run("tmpfile over 9P", func(t *testing.T) {
		type tmpfiler interface {
			Tmpfile(flags p9.OpenFlags, perm p9.FileMode, uid p9.UID, gid p9.GID) (p9.File, p9.QID, uint32, error)
		}
		d := walk(t, root)
		f, qid, _, err := d.(tmpfiler).Tmpfile(p9.ReadWrite, 0o600, p9.NoUID, p9.NoGID)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte("unnamed"), 0); err != nil {
			t.Fatal(err)
		}
		if _, _, attr, err := f.GetAttr(p9.AttrMaskAll); err != nil || attr.NLink != 0 || qid.Type != p9.TypeRegular {
			t.Fatalf("tmpfile attributes: nlink %d, qid %v, %v", attr.NLink, qid, err)
		}
		if err := root.Link(f, "named"); err != nil {
			t.Fatalf("linking the tmpfile: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "named")); err != nil || string(b) != "unnamed" {
			t.Fatalf("linked tmpfile on the host: %q, %v", b, err)
		}
		if _, _, _, err := walk(t, root, "hello").(tmpfiler).Tmpfile(p9.ReadWrite, 0o600, p9.NoUID, p9.NoGID); err == nil {
			t.Fatal("tmpfile in a regular file succeeded")
		}
	})

	t.Run("data and holes over 9P", func(t *testing.T) {
		type seeker interface {
			Lseek(offset uint64, whence uint32) (uint64, error)
		}
		f, _, _, err := walk(t, root).Create("sparse", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		const off = 64 << 20
		if _, err := f.WriteAt([]byte("data"), off); err != nil {
			t.Fatal(err)
		}
		if got, err := f.(seeker).Lseek(0, p9.SeekData); err != nil || got > off || got < off-1<<20 {
			t.Fatalf("SEEK_DATA: %d, %v; want the block of %d", got, err, off)
		}
		if got, err := f.(seeker).Lseek(0, p9.SeekHole); err != nil || got != 0 {
			t.Fatalf("SEEK_HOLE: %d, %v; want 0", got, err)
		}
		if _, err := f.(seeker).Lseek(0, 0); err == nil {
			t.Fatal("SEEK_SET was served")
		}
	})

	t.Run("allocate over 9P", func(t *testing.T) {
		type allocator interface {
			Allocate(mode uint32, offset, length uint64) error
		}
		f, _, _, err := walk(t, root).Create("alloc", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.(allocator).Allocate(0, 0, 8192); err != nil {
			t.Fatal(err)
		}
		if err := f.(allocator).Allocate(unix.FALLOC_FL_KEEP_SIZE, 8192, 8192); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, "alloc"), &st); err != nil || st.Size != 8192 || st.Blocks*512 < 16384 {
			t.Fatalf("after allocations: size %d, %d blocks (%v); want 8192 and 16 KiB allocated", st.Size, st.Blocks, err)
		}
		ro := walk(t, root, "alloc")
		if _, _, err := ro.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		if err := ro.(allocator).Allocate(0, 0, 1<<20); err == nil {
			t.Fatal("allocate on a read-only open succeeded")
		}
	})

	t.Run("walkgetattr", func(t *testing.T) {
		qids, f, mask, attr, err := root.WalkGetAttr([]string{"sub"})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if len(qids) != 1 || qids[0].Type != p9.TypeDir || !mask.Mode || !attr.Mode.IsDir() {
			t.Fatalf("qids %v mask %v attr %v", qids, mask, attr)
		}
	})

	t.Run("create write read back", func(t *testing.T) {
		d := walk(t, root, "sub")
		nf, _, _, err := d.Create("new", p9.ReadWrite, 0o640, p9.NoUID, p9.NoGID)
		if err != nil {
			t.Fatal(err)
		}
		defer nf.Close()
		if n, err := nf.WriteAt([]byte("data!"), 0); err != nil || n != 5 {
			t.Fatalf("write %d %v", n, err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "sub", "new"))
		if err != nil || string(got) != "data!" {
			t.Fatalf("host sees %q %v", got, err)
		}
		st, _ := os.Stat(filepath.Join(dir, "sub", "new"))
		if st.Mode().Perm() != 0o640 {
			t.Fatalf("mode %v", st.Mode())
		}
		if _, _, _, err := walk(t, root, "sub").Create("new", p9.ReadWrite, 0o640, p9.NoUID, p9.NoGID); errno(err) != linux.Errno(unix.EEXIST) {
			t.Fatalf("create over existing: %v", err)
		}
	})

	t.Run("setattr", func(t *testing.T) {
		f := walk(t, root, "hello")
		err := f.SetAttr(p9.SetAttrMask{Permissions: true, Size: true, ATime: true, MTime: true, ATimeNotSystemTime: true, MTimeNotSystemTime: true},
			p9.SetAttr{Permissions: 0o600, Size: 5, ATimeSeconds: 1000, MTimeSeconds: 2000, MTimeNanoSeconds: 7})
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, "hello"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o777 != 0o600 || st.Size != 5 || st.Atim.Sec != 1000 || st.Mtim.Sec != 2000 || st.Mtim.Nsec != 7 {
			t.Fatalf("host attrs mode %o size %d atime %v mtime %v", st.Mode, st.Size, st.Atim, st.Mtim)
		}
		if os.Getuid() == 0 {
			if err := f.SetAttr(p9.SetAttrMask{UID: true, GID: true}, p9.SetAttr{UID: 1234, GID: 5678}); err != nil {
				t.Fatal(err)
			}
			unix.Lstat(filepath.Join(dir, "hello"), &st)
			if st.Uid != 1234 || st.Gid != 5678 {
				t.Fatalf("owner %d:%d", st.Uid, st.Gid)
			}
		}
		_, _, attr, err := f.GetAttr(p9.AttrMaskAll)
		if err != nil || attr.Size != 5 {
			t.Fatalf("getattr %v %v", attr, err)
		}
		d := walk(t, root, "sub")
		if err := d.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o711}); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, "sub")); fi.Mode().Perm() != 0o711 {
			t.Fatalf("dir mode %v", fi.Mode())
		}
		os.Chmod(filepath.Join(dir, "sub"), 0o755)
	})

	t.Run("mkdir symlink readlink link", func(t *testing.T) {
		if _, err := root.Mkdir("d2", 0o750, p9.NoUID, p9.NoGID); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "d2")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
			t.Fatalf("mkdir: %v %v", fi, err)
		}
		if _, err := root.Symlink("/etc/passwd", "sl", p9.NoUID, p9.NoGID); err != nil {
			t.Fatal(err)
		}
		sl := walk(t, root, "sl")
		if target, err := sl.Readlink(); err != nil || target != "/etc/passwd" {
			t.Fatalf("readlink %q %v", target, err)
		}
		if err := root.Link(walk(t, root, "hello"), "hardlink"); err != nil {
			t.Fatal(err)
		}
		var a, b unix.Stat_t
		unix.Lstat(filepath.Join(dir, "hello"), &a)
		unix.Lstat(filepath.Join(dir, "hardlink"), &b)
		if a.Ino != b.Ino {
			t.Fatal("hard link has a different inode")
		}
		wantErrno(t, "link a directory", root.Link(walk(t, root, "sub"), "dirlink"), unix.EPERM)
	})

	t.Run("mknod", func(t *testing.T) {
		for _, c := range []struct {
			name string
			mode p9.FileMode
			want uint32
		}{
			{"fifo", p9.ModeNamedPipe | 0o644, unix.S_IFIFO},
			{"sock", p9.ModeSocket | 0o644, unix.S_IFSOCK},
			{"reg", p9.ModeRegular | 0o644, unix.S_IFREG},
		} {
			if _, err := root.Mknod(c.name, c.mode, 0, 0, p9.NoUID, p9.NoGID); err != nil {
				t.Fatalf("mknod %s: %v", c.name, err)
			}
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, c.name), &st); err != nil || st.Mode&unix.S_IFMT != c.want {
				t.Fatalf("mknod %s: mode %o %v", c.name, st.Mode, err)
			}
		}
		_, err := root.Mknod("null", p9.ModeCharacterDevice|0o666, 1, 3, p9.NoUID, p9.NoGID)
		wantErrno(t, "mknod char device", err, unix.EPERM)
		if _, err := os.Lstat(filepath.Join(dir, "null")); !os.IsNotExist(err) {
			t.Fatalf("device node exists: %v", err)
		}
		// A FIFO is never opened by the server.
		fifo := walk(t, root, "fifo")
		_, _, err = fifo.Open(p9.WriteOnly)
		wantErrno(t, "open fifo", err, unix.EINVAL, unix.ENXIO)
	})

	t.Run("rename and unlink", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "mv"), "move me")
		f := walk(t, root, "mv")
		sub := walk(t, root, "sub")
		if err := root.RenameAt("mv", sub, "moved"); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "sub", "moved")); err != nil || string(got) != "move me" {
			t.Fatalf("after rename: %q %v", got, err)
		}
		// The fid walked before the rename follows the file.
		if _, _, err := f.Open(p9.ReadOnly); err != nil {
			t.Fatalf("open renamed fid: %v", err)
		}
		if got := readAll(t, f); got != "move me" {
			t.Fatalf("renamed fid reads %q", got)
		}
		if err := sub.UnlinkAt("moved", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "sub", "moved")); !os.IsNotExist(err) {
			t.Fatalf("unlinked file exists: %v", err)
		}
		if _, err := root.Mkdir("rmme", 0o755, p9.NoUID, p9.NoGID); err != nil {
			t.Fatal(err)
		}
		wantErrno(t, "unlink dir without AT_REMOVEDIR", root.UnlinkAt("rmme", 0), unix.EISDIR)
		if err := root.UnlinkAt("rmme", unix.AT_REMOVEDIR); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("statfs fsync", func(t *testing.T) {
		st, err := root.StatFS()
		if err != nil || st.BlockSize == 0 || st.NameLength == 0 {
			t.Fatalf("statfs %+v %v", st, err)
		}
		f := walk(t, root, "hello")
		if _, _, err := f.Open(p9.ReadWrite); err != nil {
			t.Fatal(err)
		}
		if err := f.FSync(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("open truncate", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "trunc"), "0123456789")
		f := walk(t, root, "trunc")
		if _, _, err := f.Open(p9.WriteOnly | p9.OpenFlags(unix.O_TRUNC)); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, "trunc")); fi.Size() != 0 {
			t.Fatalf("size after O_TRUNC: %d", fi.Size())
		}
	})
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "keep")
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	root := serveDir(t, dir, Options{ReadOnly: true})
	f := walk(t, root, "f")
	mutations := map[string]func() error{
		"create": func() error {
			_, _, _, err := walk(t, root).Create("x", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
			return err
		},
		"mkdir":   func() error { _, err := root.Mkdir("x", 0o755, p9.NoUID, p9.NoGID); return err },
		"symlink": func() error { _, err := root.Symlink("f", "x", p9.NoUID, p9.NoGID); return err },
		"link":    func() error { return root.Link(f, "x") },
		"mknod":   func() error { _, err := root.Mknod("x", p9.ModeNamedPipe|0o644, 0, 0, p9.NoUID, p9.NoGID); return err },
		"rename":  func() error { return root.RenameAt("f", root, "x") },
		"unlink":  func() error { return root.UnlinkAt("f", 0) },
		"rmdir":   func() error { return root.UnlinkAt("d", unix.AT_REMOVEDIR) },
		"chmod":   func() error { return f.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777}) },
		"truncate": func() error {
			return f.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: 0})
		},
		"utimes":     func() error { return f.SetAttr(p9.SetAttrMask{MTime: true}, p9.SetAttr{}) },
		"open write": func() error { _, _, err := walk(t, root, "f").Open(p9.WriteOnly); return err },
		"open rdwr":  func() error { _, _, err := walk(t, root, "f").Open(p9.ReadWrite); return err },
		"open trunc": func() error {
			_, _, err := walk(t, root, "f").Open(p9.ReadOnly | p9.OpenFlags(unix.O_TRUNC))
			return err
		},
	}
	names := make([]string, 0, len(mutations))
	for name := range mutations {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			wantErrno(t, name, mutations[name](), unix.EROFS)
		})
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "keep" {
		t.Fatalf("file changed: %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("directory changed: %v", ents)
	}
	// Reads still work.
	r := walk(t, root, "f")
	if _, _, err := r.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); got != "keep" {
		t.Fatalf("read %q", got)
	}
}

func TestReaddirLarge(t *testing.T) {
	dir := t.TempDir()
	const n = 5000
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("entry-with-a-longish-name-%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := serveDir(t, dir, Options{ReadOnly: true})
	for _, count := range []uint32{200, 4096, 64 << 10, 200 << 10} {
		t.Run(fmt.Sprintf("count=%d", count), func(t *testing.T) {
			d := walk(t, root)
			if _, _, err := d.Open(p9.ReadOnly); err != nil {
				t.Fatal(err)
			}
			ents := readdirAll(t, d, count)
			seen := map[string]bool{}
			for _, e := range ents {
				if seen[e.Name] {
					t.Fatalf("entry %q returned twice", e.Name)
				}
				seen[e.Name] = true
				if e.Name == "." || e.Name == ".." {
					t.Fatalf("got %q", e.Name)
				}
			}
			if len(seen) != n {
				t.Fatalf("got %d entries, want %d", len(seen), n)
			}
		})
	}
	t.Run("offsets are stable", func(t *testing.T) {
		d := walk(t, root)
		if _, _, err := d.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		first, err := d.Readdir(0, 4096)
		if err != nil || len(first) < 3 {
			t.Fatalf("readdir: %d %v", len(first), err)
		}
		// Re-reading from an earlier entry's offset gives the same
		// continuation.
		again, err := d.Readdir(first[0].Offset, 4096)
		if err != nil || len(again) == 0 || again[0].Name != first[1].Name {
			t.Fatalf("re-read from offset: %v %v", again, err)
		}
	})
}

func TestNamesRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "x")
	a, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	root, err := a.Attach()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, name := range []string{"", ".", "..", "a/b", "/etc", "../f", "f/", "x\x00y"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			if _, f, err := root.Walk([]string{name}); err == nil {
				f.Close()
				t.Fatalf("walk %q succeeded", name)
			}
			if _, err := root.Mkdir(name, 0o755, p9.NoUID, p9.NoGID); err == nil {
				t.Fatalf("mkdir %q succeeded", name)
			}
			if _, _, _, err := root.Create(name, p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID); err == nil {
				t.Fatalf("create %q succeeded", name)
			}
			if err := root.UnlinkAt(name, 0); err == nil {
				t.Fatalf("unlink %q succeeded", name)
			}
			if err := root.RenameAt("f", root, name); err == nil {
				t.Fatalf("rename to %q succeeded", name)
			}
		})
	}
}

func TestSingleFileRoot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	writeFile(t, path, "nameserver 1.1.1.1\n")
	writeFile(t, filepath.Join(dir, "sibling"), "hidden")
	root := serveDir(t, path, Options{})
	if _, _, err := root.Walk([]string{"sibling"}); err == nil {
		t.Fatal("walked from a file root")
	}
	c := walk(t, root)
	if _, _, err := c.Open(p9.ReadWrite); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c); got != "nameserver 1.1.1.1\n" {
		t.Fatalf("read %q", got)
	}
	if _, err := c.WriteAt([]byte("NAME"), 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "NAMEserver 1.1.1.1\n" {
		t.Fatalf("host file %q", got)
	}
}

func TestDescriptorsReleased(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 50; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("d%d/f", i)), "x")
	}
	before := countFDs(t)
	root := serveDir(t, dir, Options{})
	for i := 0; i < 50; i++ {
		_, d, err := root.Walk([]string{fmt.Sprintf("d%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		_, f, err := d.Walk([]string{"f"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		f.Close()
		d.Close()
	}
	// Only the root, the connection and the client's pools remain.
	if after := countFDs(t); after > before+8 {
		t.Fatalf("fds: %d before, %d after closing every fid", before, after)
	}
}

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestCreateKeepsSetID creates a file with set-ID bits for another owner:
// the chown that gives it its owner must not clear them.
func TestCreateKeepsSetID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	root := serveDir(t, dir, Options{})
	f, _, _, err := walk(t, root).Create("setid", p9.ReadWrite, 0o6755, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "setid"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&07777 != 0o6755 || st.Uid != 1000 || st.Gid != 1000 {
		t.Fatalf("created mode %o owner %d:%d, want 6755 1000:1000", st.Mode&07777, st.Uid, st.Gid)
	}
}
