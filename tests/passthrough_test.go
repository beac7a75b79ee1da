package tests

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/runsc/runsc/gofer"
	"golang.org/x/sys/unix"
)

// evilFS plays a compromised sandbox serving its FUSE mount: it answers
// every open of its one file, for reading or writing, with a passthrough
// backing id the gofer registered for a read-only open. The kernel opens
// the backing file with the opener's flags under the gofer's
// credentials, so only the gofer's read-only mount of a read-only tree
// stands between such a sandbox and the host file.
type evilFS struct {
	fuse.RawFileSystem
	mu sync.Mutex
	id int32
}

// Open implements fuse.RawFileSystem.
func (e *evilFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := e.RawFileSystem.Open(cancel, in, out)
	e.mu.Lock()
	defer e.mu.Unlock()
	if st == fuse.OK && e.id > 0 {
		out.BackingID = e.id
		out.OpenFlags = out.OpenFlags&^fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_PASSTHROUGH
	}
	return st
}

// use makes the evil sandbox answer every open with backing id id.
func (e *evilFS) use(id int32) {
	e.mu.Lock()
	e.id = id
	e.mu.Unlock()
}

// arm has the gofer register the file at names in root, opened for
// reading as the sandbox asks, and makes the evil sandbox answer every
// open with its id.
func (e *evilFS) arm(t *testing.T, root p9.File, names ...string) {
	t.Helper()
	id, err := registerOpened(t, root, names, p9.ReadOnly)
	if err != nil {
		t.Fatalf("gofer refused to register the file: %v", err)
	}
	e.use(id)
}

// mountEvil mounts a FUSE file system served by an evilFS on dev's
// connection (the one the gofer registers backing files on), holding
// one file, "victim", of size n, and returns the evilFS and the file's
// path.
func mountEvil(t *testing.T, dev *os.File, n int) (*evilFS, string) {
	t.Helper()
	mnt := t.TempDir()
	fd, err := unix.FcntlInt(dev.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("evil", mnt, "fuse.evil", unix.MS_NOSUID|unix.MS_NODEV, "fd="+strconv.Itoa(fd)+",rootmode=40000,user_id=0,group_id=0,allow_other"); err != nil {
		unix.Close(fd)
		t.Fatalf("mounting FUSE: %v", err)
	}
	root := &fs.Inode{}
	file := &fs.MemRegularFile{Data: make([]byte, n), Attr: fuse.Attr{Mode: 0o666}}
	evil := &evilFS{RawFileSystem: fs.NewNodeFS(root, &fs.Options{OnAdd: func(ctx context.Context) {
		root.AddChild("victim", root.NewPersistentInode(ctx, file, fs.StableAttr{}), false)
	}})}
	srv, err := fuse.NewServer(evil, "/dev/fd/"+strconv.Itoa(fd), &fuse.MountOptions{MaxStackDepth: 2})
	if err != nil {
		unix.Unmount(mnt, unix.MNT_DETACH)
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH); srv.Wait() })
	if err := srv.WaitMount(); err != nil {
		t.Fatal(err)
	}
	return evil, filepath.Join(mnt, "victim")
}

// openDev opens a /dev/fuse connection for a test.
func openDev(t *testing.T) *os.File {
	t.Helper()
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

// registerOpened has the gofer open name (a path of components) in root
// with mode and register it, as the sandbox asks; the fid stays open
// until the test ends.
func registerOpened(t *testing.T, root p9.File, name []string, mode p9.OpenFlags) (int32, error) {
	t.Helper()
	_, f, err := root.Walk(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, _, err := f.Open(mode); err != nil {
		return 0, err
	}
	id, err := f.(interface{ OpenBacking() (uint32, error) }).OpenBacking()
	return int32(id), err
}

// tryWrites opens p for writing in every way (raw system calls: the Go
// runtime's poller must not register files of a mount this process
// serves) and writes; the host file at victim must still hold want.
func tryWrites(t *testing.T, p, victim, want string) {
	t.Helper()
	for _, flags := range []int{unix.O_RDWR, unix.O_WRONLY, unix.O_WRONLY | unix.O_TRUNC, unix.O_WRONLY | unix.O_APPEND} {
		wfd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Pwrite(wfd, []byte("HACKED"), 0)
			unix.Close(wfd)
		}
		if b, _ := os.ReadFile(victim); string(b) != want {
			t.Fatalf("open flags %#x: host file now holds %q", flags, b)
		}
		if err == nil {
			t.Errorf("open flags %#x: succeeded (the write did not land)", flags)
		} else if err != syscall.EROFS && err != syscall.EIO {
			t.Logf("open flags %#x: %v", flags, err)
		}
	}
}

func TestPassthroughCannotWriteReadOnlyTree(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("original"), 0o666); err != nil {
		t.Fatal(err)
	}
	dev := openDev(t)
	g := startGoferFUSE(t, []*os.File{dev}, gofer.Tree{Source: dir, ReadOnly: true})
	evil, p := mountEvil(t, dev, len("original"))
	evil.arm(t, g.roots[0], "victim")

	t.Run("gofer keeps sys_admin and the file capabilities only", func(t *testing.T) {
		want := goferFileCaps | 1<<unix.CAP_SYS_ADMIN
		st := procStatus(t, g.cmd.Process.Pid)
		for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
			if got, err := strconv.ParseUint(st[k], 16, 64); err != nil || got != want {
				t.Errorf("%s = %s, want %#x", k, st[k], want)
			}
		}
		if st["Seccomp"] != "2" {
			t.Errorf("Seccomp: %q, want 2 (filter)", st["Seccomp"])
		}
	})
	t.Run("read through passthrough", func(t *testing.T) {
		// The host file changes after the sandbox's view was made: a
		// read through passthrough sees the change.
		os.WriteFile(victim, []byte("CHANGED!"), 0o666)
		rfd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(rfd)
		b := make([]byte, 8)
		if n, err := unix.Pread(rfd, b, 0); err != nil || string(b[:n]) != "CHANGED!" {
			t.Fatalf("read %q %v: passthrough not in use, the test proves nothing", b[:n], err)
		}
	})
	t.Run("write refused", func(t *testing.T) { tryWrites(t, p, victim, "CHANGED!") })
}

// TestPassthroughWritableTree plays a compromised sandbox against trees
// the container may write: every backing id the gofer registers must
// grant no write that an open through the gofer would refuse. A file
// opened for reading on a read-only mount inside the tree, or at the
// read-only top of a "ro" rbind, is registered, and a write open
// answered with its id fails; an immutable or append-only file opened
// for reading is not registered at all (the kernel's reopen of a backing
// file checks neither flag), and opened for writing the gofer refuses
// it. A write open of an ordinary file is registered, and the write
// lands.
func TestPassthroughWritableTree(t *testing.T) {
	requireRoot(t)
	const content = "original"
	t.Run("read-only mount inside", func(t *testing.T) {
		dir := t.TempDir()
		sub := filepath.Join(dir, "sub")
		os.Mkdir(sub, 0o755)
		if err := unix.Mount("tmpfs", sub, "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
		os.WriteFile(filepath.Join(sub, "victim"), []byte(content), 0o666)
		unix.Mount("", sub, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
		dev := openDev(t)
		g := startGoferFUSE(t, []*os.File{dev}, gofer.Tree{Source: dir, Recursive: true})
		evil, p := mountEvil(t, dev, len(content))
		evil.arm(t, g.roots[0], "sub", "victim")
		tryWrites(t, p, filepath.Join(sub, "victim"), content)
	})
	t.Run("read-only top of an rbind", func(t *testing.T) {
		dir := t.TempDir()
		victim := filepath.Join(dir, "victim")
		os.WriteFile(victim, []byte(content), 0o666)
		dev := openDev(t)
		g := startGoferFUSE(t, []*os.File{dev}, gofer.Tree{Source: dir, Recursive: true, TopReadOnly: true})
		evil, p := mountEvil(t, dev, len(content))
		evil.arm(t, g.roots[0], "victim")
		tryWrites(t, p, victim, content)
	})
	for _, fl := range []struct {
		name string
		flag uint32
	}{{"immutable", 0x10}, {"append-only", 0x20}} {
		t.Run(fl.name+" file", func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(dir, "victim")
			os.WriteFile(victim, []byte(content), 0o666)
			setInodeFlags(t, victim, fl.flag)
			dev := openDev(t)
			g := startGoferFUSE(t, []*os.File{dev}, gofer.Tree{Source: dir})
			// The connection must be up for any registration to work.
			mountEvil(t, dev, len(content))
			if id, err := registerOpened(t, g.roots[0], []string{"victim"}, p9.ReadOnly); !refused(err) {
				t.Fatalf("gofer registered the %s file opened for reading (id %d, %v)", fl.name, id, err)
			}
			if id, err := registerOpened(t, g.roots[0], []string{"victim"}, p9.WriteOnly); err == nil {
				t.Fatalf("gofer opened and registered the %s file for writing (id %d)", fl.name, id)
			}
		})
	}
	t.Run("set-ID file", func(t *testing.T) {
		// Any id may serve a write open, and a write through a
		// backing file never reaches the sandbox, which clears set-ID
		// bits: no set-ID file of a writable tree is registered, even
		// one that became one after its registration.
		dir := t.TempDir()
		victim := filepath.Join(dir, "victim")
		os.WriteFile(victim, []byte(content), 0o666)
		os.Chmod(victim, 0o777|os.ModeSetuid)
		later := filepath.Join(dir, "later")
		os.WriteFile(later, []byte(content), 0o666)
		dev := openDev(t)
		g := startGoferFUSE(t, []*os.File{dev}, gofer.Tree{Source: dir})
		// The connection must be up for any registration to work.
		mountEvil(t, dev, len(content))
		for _, mode := range []p9.OpenFlags{p9.ReadOnly, p9.WriteOnly} {
			if id, err := registerOpened(t, g.roots[0], []string{"victim"}, mode); !refused(err) {
				t.Fatalf("gofer registered the set-user-ID file opened with %v (id %d, %v)", mode, id, err)
			}
		}
		_, f, err := g.roots[0].Walk([]string{"later"})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, _, err := f.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		bo := f.(interface{ OpenBacking() (uint32, error) })
		if _, err := bo.OpenBacking(); err != nil {
			t.Fatalf("gofer refused an ordinary file: %v", err)
		}
		os.Chmod(later, 0o777|os.ModeSetuid)
		if id, err := bo.OpenBacking(); !refused(err) {
			t.Fatalf("gofer still gives the id %d of a file that became set-user-ID (%v)", id, err)
		}
	})
	t.Run("write open of an ordinary file", func(t *testing.T) {
		dir := t.TempDir()
		victim := filepath.Join(dir, "victim")
		os.WriteFile(victim, []byte(content), 0o666)
		dev := openDev(t)
		g := startGoferFUSE(t, []*os.File{dev}, gofer.Tree{Source: dir})
		evil, p := mountEvil(t, dev, len(content))
		if _, err := registerOpened(t, g.roots[0], []string{"victim"}, p9.ReadOnly); err != nil {
			t.Fatalf("gofer refused to register the file opened for reading: %v", err)
		}
		id, err := registerOpened(t, g.roots[0], []string{"victim"}, p9.WriteOnly)
		if err != nil {
			t.Fatalf("gofer refused to register the file opened for writing: %v", err)
		}
		evil.use(id)
		wfd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Pwrite(wfd, []byte("WRITTEN!"), 0)
		unix.Close(wfd)
		if b, _ := os.ReadFile(victim); string(b) != "WRITTEN!" {
			t.Fatalf("host file holds %q: the passthrough write did not land", b)
		}
	})
}

// setInodeFlags sets inode flags (FS_IOC_SETFLAGS) on the file at p and
// clears them when the test ends, so that it can be removed.
func setInodeFlags(t *testing.T, p string, flags uint32) {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	old, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Skipf("no inode flags on %s: %v", p, err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(old|flags)); err != nil {
		t.Skipf("setting inode flags on %s: %v", p, err)
	}
	t.Cleanup(func() {
		if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(old))
			unix.Close(fd)
		}
	})
}

// refused reports whether err is the gofer's refusal to register a file
// (EACCES), not some other failure that would prove nothing.
func refused(err error) bool {
	var e linux.Errno
	return errors.As(err, &e) && e == linux.EACCES
}
