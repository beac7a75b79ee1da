package host

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// readdirAttrer is the client side of Treaddirattr.
type readdirAttrer interface {
	ReaddirAttr(offset uint64, count uint32) ([]p9.DirentAttr, error)
}

func TestReaddirAttr(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), make([]byte, i), 0o600+os.FileMode(i%0o100)); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o711)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
	unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640)
	root := serveDir(t, dir, Options{ReadOnly: true})

	check := func(t *testing.T, ents []p9.DirentAttr) {
		t.Helper()
		if len(ents) != n+3 {
			t.Fatalf("got %d entries, want %d", len(ents), n+3)
		}
		seen := map[string]bool{}
		for _, e := range ents {
			if seen[e.Name] {
				t.Fatalf("entry %q returned twice", e.Name)
			}
			seen[e.Name] = true
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, e.Name), &st); err != nil {
				t.Fatal(err)
			}
			if !e.Valid.Mode || uint32(e.Attr.Mode) != st.Mode || e.Attr.Size != uint64(st.Size) ||
				e.QID.Path != st.Ino || e.Attr.MTimeSeconds != uint64(st.Mtim.Sec) {
				t.Fatalf("%s: got mode %o size %d ino %d, host (lstat) mode %o size %d ino %d",
					e.Name, e.Attr.Mode, e.Attr.Size, e.QID.Path, st.Mode, st.Size, st.Ino)
			}
		}
	}
	readAll := func(t *testing.T, d p9.File, count uint32) []p9.DirentAttr {
		t.Helper()
		ra, ok := d.(readdirAttrer)
		if !ok {
			t.Fatal("client file has no ReaddirAttr")
		}
		var all []p9.DirentAttr
		offset := uint64(0)
		for {
			ents, err := ra.ReaddirAttr(offset, count)
			if err != nil {
				t.Fatalf("readdirattr at %d: %v", offset, err)
			}
			if len(ents) == 0 {
				return all
			}
			used := uint32(0)
			for _, e := range ents {
				used += p9.DirentAttrOverhead + uint32(len(e.Name))
			}
			if used > count {
				t.Fatalf("%d entries take %d bytes, over count %d", len(ents), used, count)
			}
			all = append(all, ents...)
			offset = ents[len(ents)-1].Offset
		}
	}
	for _, count := range []uint32{400, 4096, 1 << 20} {
		t.Run(fmt.Sprintf("unopened count=%d", count), func(t *testing.T) {
			check(t, readAll(t, walk(t, root), count))
		})
	}
	t.Run("opened", func(t *testing.T) {
		d := walk(t, root)
		if _, _, err := d.Open(p9.ReadOnly); err != nil {
			t.Fatal(err)
		}
		check(t, readAll(t, d, 8192))
	})
	t.Run("not a directory", func(t *testing.T) {
		if _, err := walk(t, root, "f001").(readdirAttrer).ReaddirAttr(0, 4096); err == nil {
			t.Fatal("readdirattr of a regular file succeeded")
		}
	})
	t.Run("count too small for one entry", func(t *testing.T) {
		ents, err := walk(t, root).(readdirAttrer).ReaddirAttr(0, 10)
		if err != nil || len(ents) != 0 {
			t.Fatalf("got %d entries, %v", len(ents), err)
		}
	})
}
