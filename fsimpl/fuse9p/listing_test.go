package fuse9p

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestListingAttributes checks the inodes made from a directory listing
// (no fid until used): their attributes, their use afterwards, and a file
// replaced on the host after it was listed.
func TestListingAttributes(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 50; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i))
		os.Mkdir(sub, 0o755)
		os.WriteFile(filepath.Join(sub, "f"), []byte(sub), 0o640)
	}
	os.WriteFile(filepath.Join(dir, "replaced"), []byte("old"), 0o644)
	os.Symlink("d00/f", filepath.Join(dir, "link"))
	mnt, _ := mountTree(t, dir, Options{Timeout: time.Minute})

	ents, err := os.ReadDir(mnt)
	if err != nil || len(ents) != 52 {
		t.Fatalf("readdir: %d entries, %v", len(ents), err)
	}
	t.Run("attributes match the host", func(t *testing.T) {
		for _, e := range ents {
			var got, want unix.Stat_t
			if err := unix.Lstat(filepath.Join(mnt, e.Name()), &got); err != nil {
				t.Fatal(err)
			}
			unix.Lstat(filepath.Join(dir, e.Name()), &want)
			if got.Mode != want.Mode || got.Size != want.Size || got.Ino != want.Ino || got.Mtim != want.Mtim {
				t.Fatalf("%s: mode %o size %d ino %d, host mode %o size %d ino %d",
					e.Name(), got.Mode, got.Size, got.Ino, want.Mode, want.Size, want.Ino)
			}
		}
	})
	t.Run("walk and read through listed inodes", func(t *testing.T) {
		for i := 0; i < 50; i++ {
			sub := fmt.Sprintf("d%02d", i)
			subEnts, err := os.ReadDir(filepath.Join(mnt, sub))
			if err != nil || len(subEnts) != 1 {
				t.Fatalf("%s: %d entries, %v", sub, len(subEnts), err)
			}
			b, err := os.ReadFile(filepath.Join(mnt, sub, "f"))
			if err != nil || string(b) != filepath.Join(dir, sub) {
				t.Fatalf("read %s/f: %q %v", sub, b, err)
			}
		}
		if target, err := os.Readlink(filepath.Join(mnt, "link")); err != nil || target != "d00/f" {
			t.Fatalf("readlink: %q %v", target, err)
		}
	})
	t.Run("file replaced on the host after listing", func(t *testing.T) {
		os.Remove(filepath.Join(dir, "replaced"))
		os.WriteFile(filepath.Join(dir, "replaced"), []byte("new"), 0o644)
		// The listed inode no longer names the host file: the open
		// is refused as stale and the kernel looks the name up
		// again, finding the new file.
		b, err := os.ReadFile(filepath.Join(mnt, "replaced"))
		if err != nil || string(b) != "new" {
			t.Fatalf("read: %q %v", b, err)
		}
	})
}

// TestReadAheadReleased checks that listings read ahead and never used
// are dropped, and that their entries return to the sandbox-wide budget.
func TestReadAheadReleased(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 300; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", i))
		os.Mkdir(sub, 0o755)
		for j := 0; j < 10; j++ {
			os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", j)), nil, 0o644)
		}
	}
	mnt, _ := mountTree(t, dir, Options{Timeout: time.Minute})
	// Listing the top directory reads its subdirectories ahead; none
	// is then used.
	if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 300 {
		t.Fatalf("readdir: %d entries, %v", len(ents), err)
	}
	if aheadQueued.Load()+aheadEntries.Load() == 0 {
		t.Fatal("no subdirectory listing was read ahead")
	}
	deadline := time.Now().Add(prefetchMaxAge + 10*time.Second)
	for aheadQueued.Load() != 0 || aheadEntries.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d listings queued, %d entries held", prefetchMaxAge+10*time.Second, aheadQueued.Load(), aheadEntries.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Used after they were dropped, the directories are listed again.
	ents, err := os.ReadDir(filepath.Join(mnt, "d123"))
	if err != nil || len(ents) != 10 {
		t.Fatalf("readdir d123: %d entries, %v", len(ents), err)
	}
}
