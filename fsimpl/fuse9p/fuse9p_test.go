package fuse9p

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc/runsc/fsimpl/host"
	"github.com/runsc/runsc/gofer"
	"github.com/runsc/runsc/internal/testhelp"
	"github.com/u-root/uio/ulog"
	"golang.org/x/sys/unix"
)

// goferEnd is the server side of the last mountTree's connection.
var goferEnd net.Conn

// mountTree serves dir with the host file system over a socket pair and
// mounts it with fuse9p; it returns the mount point.
func mountTree(t *testing.T, dir string, opts Options) (string, func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	hostOpts := host.Options{ReadOnly: opts.ReadOnly}
	if opts.Dev != nil {
		hostOpts.FUSEDev = int(opts.Dev.Fd())
	}
	a, err := host.Open(dir, hostOpts)
	if err != nil {
		t.Fatal(err)
	}
	goferConn, clientConn := testhelp.ConnPair(t)
	served := make(chan struct{})
	goferEnd = goferConn
	go func() { gofer.Serve(goferConn, a, ulog.Null); close(served) }()
	mnt := t.TempDir()
	srv, client, err := Mount(mnt, clientConn, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := func() {
		srv.Unmount()
		client.Close()
		<-served
		a.Close()
	}
	t.Cleanup(func() {
		if srv != nil {
			stop()
			srv = nil
		}
	})
	return mnt, func() { stop(); srv = nil }
}

func TestFileOperations(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello"), []byte("hello from the host"), 0o644)
	mnt, _ := mountTree(t, dir, Options{Timeout: time.Second})

	t.Run("read", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(mnt, "hello"))
		if err != nil || string(b) != "hello from the host" {
			t.Fatalf("read %q %v", b, err)
		}
	})
	t.Run("write create truncate", func(t *testing.T) {
		p := filepath.Join(mnt, "new")
		big := strings.Repeat("0123456789abcdef", 300000) // 4.8 MB: several 9P messages
		if err := os.WriteFile(p, []byte(big), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "new")); string(b) != big {
			t.Fatalf("host got %d bytes", len(b))
		}
		if b, _ := os.ReadFile(p); string(b) != big {
			t.Fatalf("read back %d bytes", len(b))
		}
		if err := os.Truncate(p, 10); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, "new")); fi.Size() != 10 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("host file %v", fi)
		}
		// Through an open file, whose attributes go through its own
		// fid: fstat still works once its name is gone.
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(4); err != nil {
			t.Fatalf("ftruncate: %v", err)
		}
		if err := f.Chmod(0o640); err != nil {
			t.Fatalf("fchmod: %v", err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, "new")); fi.Size() != 4 || fi.Mode().Perm() != 0o640 {
			t.Fatalf("host file after ftruncate, fchmod: %v", fi)
		}
		if err := os.Rename(p, p+".tmp"); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p + ".tmp"); err != nil {
			t.Fatal(err)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != 4 {
			t.Fatalf("fstat of an unlinked open file: %v %v", fi, err)
		}
	})
	t.Run("mkdir symlink link rename unlink", func(t *testing.T) {
		if err := os.MkdirAll(filepath.Join(mnt, "a", "b"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../hello", filepath.Join(mnt, "a", "sl")); err != nil {
			t.Fatal(err)
		}
		if target, err := os.Readlink(filepath.Join(mnt, "a", "sl")); err != nil || target != "../hello" {
			t.Fatalf("readlink %q %v", target, err)
		}
		if b, err := os.ReadFile(filepath.Join(mnt, "a", "sl")); err != nil || string(b) != "hello from the host" {
			t.Fatalf("read through symlink %q %v", b, err)
		}
		if err := os.Link(filepath.Join(mnt, "hello"), filepath.Join(mnt, "a", "hard")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(mnt, "a", "hard"), filepath.Join(mnt, "a", "b", "moved")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "a", "b", "moved")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(mnt, "a", "b", "moved")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(mnt, "a", "b")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "a", "b")); !os.IsNotExist(err) {
			t.Fatalf("rmdir did not reach the host: %v", err)
		}
	})
	t.Run("chmod chown utimes", func(t *testing.T) {
		p := filepath.Join(mnt, "hello")
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 1000, 1000); err != nil {
			t.Fatal(err)
		}
		when := time.Unix(1500000000, 0)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		unix.Stat(filepath.Join(dir, "hello"), &st)
		if st.Mode&0o777 != 0o640 || st.Uid != 1000 || st.Mtim.Sec != 1500000000 {
			t.Fatalf("host attrs mode %o uid %d mtime %d", st.Mode, st.Uid, st.Mtim.Sec)
		}
	})
	t.Run("fifo and socket nodes", func(t *testing.T) {
		if err := unix.Mkfifo(filepath.Join(mnt, "fifo"), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(filepath.Join(dir, "fifo"))
		if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("host fifo %v %v", fi, err)
		}
		if err := unix.Mknod(filepath.Join(mnt, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != syscall.EPERM {
			t.Fatalf("mknod char device: %v, want EPERM", err)
		}
	})
	t.Run("statfs", func(t *testing.T) {
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil || st.Bsize == 0 {
			t.Fatalf("statfs %+v %v", st, err)
		}
	})
}

func TestReaddirLarge(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 5000; i++ {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%05d", i)), nil, 0o644)
	}
	mnt, _ := mountTree(t, dir, Options{Timeout: time.Second})
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 5000 {
		t.Fatalf("readdir: %d entries, want 5000", len(ents))
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	if names[0] != "file-00000" || names[4999] != "file-04999" {
		t.Fatalf("names %s..%s", names[0], names[4999])
	}
}

func TestReadOnlyMount(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	mnt, _ := mountTree(t, dir, Options{ReadOnly: true})
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("y"), 0o644); err == nil {
		t.Fatal("write to a read-only mount succeeded")
	}
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err == nil {
		t.Fatal("mkdir on a read-only mount succeeded")
	}
}

func TestGoferGoneIsEIO(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	mnt, _ := mountTree(t, dir, Options{})
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(mnt, "f"), &st); err != nil {
		t.Fatal(err)
	}
	// The gofer side of the connection goes away: requests must fail
	// with EIO, not hang.
	goferEnd.Close()
	done := make(chan error, 1)
	go func() {
		_, err := os.ReadFile(filepath.Join(mnt, "f"))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, syscall.EIO) {
			t.Fatalf("read after the gofer left: %v, want EIO", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read hangs after the gofer left")
	}
}

func TestSingleFileTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "resolv.conf")
	os.WriteFile(file, []byte("nameserver 10.0.0.1\n"), 0o644)
	a, err := host.Open(file, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c0, c1 := testhelp.ConnPair(t)
	go gofer.Serve(c0, a, ulog.Null)
	tree, err := Dial(c1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tree.IsDir() {
		t.Fatal("file tree reports a directory")
	}
	mnt := t.TempDir()
	srv, err := tree.Mount(mnt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Unmount(); tree.Close() }()
	if b, err := os.ReadFile(filepath.Join(mnt, FileName)); err != nil || string(b) != "nameserver 10.0.0.1\n" {
		t.Fatalf("read %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, FileName), []byte("nameserver 10.0.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "nameserver 10.0.0.2\n" {
		t.Fatalf("host file holds %q", b)
	}
	ents, err := os.ReadDir(mnt)
	if err != nil || len(ents) != 1 || ents[0].Name() != FileName {
		t.Fatalf("holder lists %v %v", ents, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "other")); !os.IsNotExist(err) {
		t.Fatalf("holder has another entry: %v", err)
	}
}

// TestHardLinkNames checks that a file reached by several names stays
// reachable when the name its inode was first found by goes away:
// unlinked (go-fuse's posixtest LinkUnlinkRename lost the file), or
// replaced by a rename. With and without kernel caching.
func TestHardLinkNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	for _, timeout := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprintf("timeout %v", timeout), func(t *testing.T) {
			dir := t.TempDir()
			mnt, _ := mountTree(t, dir, Options{Timeout: timeout})
			p := func(name string) string { return filepath.Join(mnt, name) }
			if err := os.WriteFile(p("tmp"), []byte("hello"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(p("tmp"), p("file")); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(p("tmp")); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(p("file")); err != nil || string(b) != "hello" {
				t.Fatalf("after link and unlink of the first name: %q, %v", b, err)
			}
			// A new file under the old name is another file.
			if err := os.WriteFile(p("tmp"), []byte("other"), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(p("file")); err != nil || string(b) != "hello" {
				t.Fatalf("after a new file took the old name: %q, %v", b, err)
			}
			// A rename over one of two names of an inode.
			if err := os.Link(p("file"), p("second")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(p("tmp"), p("file")); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(p("second")); err != nil || string(b) != "hello" {
				t.Fatalf("after a rename over its other name: %q, %v", b, err)
			}
			if err := os.WriteFile(p("second"), []byte("changed"), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(p("file")); err != nil || string(b) != "other" {
				t.Fatalf("the renamed file changed with the other: %q, %v", b, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "second")); string(b) != "changed" {
				t.Fatalf("host file: %q", b)
			}
		})
	}
}

// TestOverlayLowerXattrs mounts a tree as an overlayfs's lower layer:
// overlayfs's own xattrs of its files are not seen (no round trip, and
// no directions from the image for the sandbox's overlay), others are.
func TestOverlayLowerXattrs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, nil, 0o644)
	for _, name := range []string{"user.overlay.redirect", "user.kept"} {
		if err := unix.Setxattr(p, name, []byte("/elsewhere"), 0); err != nil {
			t.Skipf("no user xattrs here: %v", err)
		}
	}
	mnt, _ := mountTree(t, dir, Options{Timeout: time.Minute, ReadOnly: true, OverlayLower: true})
	buf := make([]byte, 64)
	if _, err := unix.Getxattr(filepath.Join(mnt, "f"), "user.overlay.redirect", buf); err != unix.ENODATA {
		t.Fatalf("user.overlay.redirect: %v, want ENODATA", err)
	}
	if n, err := unix.Getxattr(filepath.Join(mnt, "f"), "user.kept", buf); err != nil || string(buf[:n]) != "/elsewhere" {
		t.Fatalf("user.kept: %q, %v", buf[:n], err)
	}
}
