package tests

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
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

func TestPassthroughCannotWriteReadOnlyTree(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("original"), 0o666); err != nil {
		t.Fatal(err)
	}
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	defer dev.Close()
	g := startGoferFUSE(t, []*os.File{dev}, gofer.Tree{Source: dir, ReadOnly: true})

	// The evil sandbox mounts its connection read-write, with a file
	// of the victim's size.
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
	file := &fs.MemRegularFile{Data: []byte("original"), Attr: fuse.Attr{Mode: 0o666}}
	evil := &evilFS{RawFileSystem: fs.NewNodeFS(root, &fs.Options{OnAdd: func(ctx context.Context) {
		root.AddChild("victim", root.NewPersistentInode(ctx, file, fs.StableAttr{}), false)
	}})}
	srv, err := fuse.NewServer(evil, "/dev/fd/"+strconv.Itoa(fd), &fuse.MountOptions{})
	if err != nil {
		unix.Unmount(mnt, unix.MNT_DETACH)
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH); srv.Wait() })
	if err := srv.WaitMount(); err != nil {
		t.Fatal(err)
	}

	// The gofer registers the victim, opened read-only, as the
	// sandbox asks.
	_, f, err := g.roots[0].Walk([]string{"victim"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	id, err := f.(interface{ OpenBacking() (uint32, error) }).OpenBacking()
	if err != nil {
		t.Fatalf("gofer refused to register the file: %v", err)
	}
	evil.mu.Lock()
	evil.id = int32(id)
	evil.mu.Unlock()

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

	// Raw system calls: the Go runtime's poller must not register
	// files of a mount this process serves.
	p := filepath.Join(mnt, "victim")
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
	t.Run("write refused", func(t *testing.T) {
		for _, flags := range []int{unix.O_RDWR, unix.O_WRONLY, unix.O_WRONLY | unix.O_TRUNC} {
			wfd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
			if err == nil {
				unix.Pwrite(wfd, []byte("HACKED"), 0)
				unix.Close(wfd)
			}
			if b, _ := os.ReadFile(victim); string(b) != "CHANGED!" {
				t.Fatalf("open flags %#x: host file of a read-only tree now holds %q", flags, b)
			}
			if err == nil {
				t.Errorf("open flags %#x: succeeded (the write did not land)", flags)
			} else if err != syscall.EROFS && err != syscall.EIO {
				t.Logf("open flags %#x: %v", flags, err)
			}
		}
	})
}
