package fuse9p

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPassthrough mounts a read-only cached tree with FUSE passthrough, the
// "gofer" (here the same process, through its own host.Options.FUSEDev)
// registering files on the mount's /dev/fuse.
func TestPassthrough(t *testing.T) {
	dir := t.TempDir()
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	os.WriteFile(filepath.Join(dir, "data"), content, 0o644)
	p := filepath.Join(mountPassthrough(t, dir, true), "data")

	t.Run("read", func(t *testing.T) {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, content) {
			t.Fatalf("read %d bytes, %v", len(b), err)
		}
	})
	t.Run("mmap", func(t *testing.T) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, len(content), unix.PROT_READ, unix.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		if !bytes.Equal(m, content) {
			t.Fatal("mapped content differs")
		}
	})
	t.Run("reads reach the host file", func(t *testing.T) {
		// Without passthrough, the page cache kept for the cached
		// tree (FOPEN_KEEP_CACHE) would still show the old bytes
		// after the host file changes in place; with it, the
		// kernel reads the host file itself.
		hf, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		hf.WriteAt([]byte("CHANGED"), 0)
		hf.Close()
		b, err := os.ReadFile(p)
		if err != nil || string(b[:7]) != "CHANGED" {
			t.Fatalf("read %q, %v: not served from the host file", b[:7], err)
		}
	})
	t.Run("several opens at once", func(t *testing.T) {
		var files []*os.File
		for i := 0; i < 4; i++ {
			f, err := os.Open(p)
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
			defer f.Close()
			files = append(files, f)
		}
		for _, f := range files {
			b := make([]byte, 7)
			if _, err := f.ReadAt(b, 0); err != nil || string(b) != "CHANGED" {
				t.Fatalf("read %q %v", b, err)
			}
		}
	})
}

// TestPassthroughWritable mounts a writable cached tree (a write-through
// root) with FUSE passthrough for reads and writes.
func TestPassthroughWritable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "data"), []byte("0123456789"), 0o644)
	mnt := mountPassthrough(t, dir, false)
	p := filepath.Join(mnt, "data")
	hostRead := func(t *testing.T, name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("write lands in the host file", func(t *testing.T) {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte("ABC"), 0); err != nil {
			t.Fatal(err)
		}
		// No close, no fsync: the write is in the host file's page
		// cache already.
		if got := hostRead(t, "data"); got != "ABC3456789" {
			t.Fatalf("host file holds %q", got)
		}
	})
	t.Run("read and write opens at once", func(t *testing.T) {
		r, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		w, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatalf("write open while a read open is in use: %v", err)
		}
		defer w.Close()
		if _, err := w.WriteAt([]byte("xyz"), 3); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 10)
		if n, err := r.ReadAt(b, 0); n != 10 || string(b) != "ABCxyz6789" {
			t.Fatalf("reader sees %q (%v)", b[:n], err)
		}
		// A third open of either kind still works.
		r2, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		r2.Close()
	})
	t.Run("create, append, truncate", func(t *testing.T) {
		q := filepath.Join(mnt, "new")
		if err := os.WriteFile(q, []byte("first"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(q, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("+second"))
		f.Close()
		if got := hostRead(t, "new"); got != "first+second" {
			t.Fatalf("host file holds %q", got)
		}
		if err := os.WriteFile(q, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := hostRead(t, "new"); got != "x" {
			t.Fatalf("after O_TRUNC the host file holds %q", got)
		}
		if fi, err := os.Stat(q); err != nil || fi.Size() != 1 {
			t.Fatalf("stat after O_TRUNC: %v, %v", fi, err)
		}
	})
	t.Run("shared writable mapping", func(t *testing.T) {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, 10, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		copy(m, "MAPPED")
		unix.Munmap(m)
		if got := hostRead(t, "data"); got[:6] != "MAPPED" {
			t.Fatalf("host file holds %q", got)
		}
	})
	t.Run("host changes are seen", func(t *testing.T) {
		os.WriteFile(filepath.Join(dir, "data"), []byte("fromhost!!"), 0o644)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "fromhost!!" {
			t.Fatalf("read %q, %v", b, err)
		}
	})
}

// TestPassthroughConcurrentOpens opens one file for reading and for
// writing from several goroutines at once, holding the files open for
// overlapping spans: the kernel requires every open of an inode in
// passthrough to use the same backing file, and any open the sandbox
// answered otherwise would fail (EIO, EBUSY). Every write must be read
// back by every open.
func TestPassthroughConcurrentOpens(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "data"), make([]byte, 64), 0o644)
	p := filepath.Join(mountPassthrough(t, dir, false), "data")
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				mode := []int{os.O_RDONLY, os.O_WRONLY, os.O_RDWR}[(g+i)%3]
				f, err := os.OpenFile(p, mode, 0)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d, open %d (mode %d): %w", g, i, mode, err)
					return
				}
				if mode != os.O_RDONLY {
					if _, err := f.WriteAt([]byte{byte(i)}, int64(g)); err != nil {
						errs <- fmt.Errorf("goroutine %d, write %d: %w", g, i, err)
						f.Close()
						return
					}
				}
				if mode != os.O_WRONLY {
					b := make([]byte, 1)
					if _, err := f.ReadAt(b, int64(g)); err != nil {
						errs <- fmt.Errorf("goroutine %d, read %d: %w", g, i, err)
						f.Close()
						return
					}
				}
				if i%7 == 0 {
					time.Sleep(time.Millisecond)
				}
				f.Close()
			}
			// The last write of this goroutine is visible.
			b, err := os.ReadFile(p)
			if err == nil && b[g] != 199 && b[g] != 198 {
				err = fmt.Errorf("goroutine %d: byte %d holds %d, want its last write", g, g, b[g])
			}
			errs <- err
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// mountPassthrough mounts dir as a cached tree with FUSE passthrough, the
// "gofer" (here the same process) registering files on the mount's
// /dev/fuse, and returns the mount point.
func mountPassthrough(t *testing.T, dir string, readOnly bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	mnt, _ := mountTree(t, dir, Options{Timeout: time.Minute, ReadOnly: readOnly, Dev: dev, Passthrough: true})
	return mnt
}
