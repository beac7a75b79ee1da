package fuse9p

import (
	"bytes"
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
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	dir := t.TempDir()
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	os.WriteFile(filepath.Join(dir, "data"), content, 0o644)
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	defer dev.Close()
	mnt, _ := mountTree(t, dir, Options{Timeout: time.Minute, ReadOnly: true, Dev: dev, Passthrough: true})
	p := filepath.Join(mnt, "data")

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
