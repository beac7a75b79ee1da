package gofer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"
	"github.com/runsc/runsc/fsimpl/host"
	"github.com/runsc/runsc/internal/testhelp"
	"github.com/u-root/uio/ulog"
	"golang.org/x/sys/unix"
)

// treeState records every entry under dir: what an escape must not change.
func treeState(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		var st unix.Stat_t
		if err != nil || unix.Lstat(path, &st) != nil {
			out[path] = "unreadable"
			return nil
		}
		s := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d nlink=%d mtime=%d.%d", st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Mtim.Sec, st.Mtim.Nsec)
		if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size < 1<<20 {
			b, _ := os.ReadFile(path)
			s += " content=" + strconv.Quote(string(b))
		}
		out[path] = s
		return nil
	})
	return out
}

// frame encodes a raw 9P message.
func frame(typ uint8, tag uint16, body ...byte) []byte {
	b := make([]byte, 7, 7+len(body))
	binary.LittleEndian.PutUint32(b, uint32(7+len(body)))
	b[4] = typ
	binary.LittleEndian.PutUint16(b[5:], tag)
	return append(b, body...)
}

// versionFrame is Tversion(msize 64k, "9P2000.L").
func versionFrame() []byte {
	v := "9P2000.L"
	body := binary.LittleEndian.AppendUint32(nil, 64<<10)
	body = binary.LittleEndian.AppendUint16(body, uint16(len(v)))
	return frame(100, 0xffff, append(body, v...)...)
}

// flushFrame is Tflush(tag, oldtag).
func flushFrame(tag, old uint16) []byte {
	return frame(msgTflush, tag, binary.LittleEndian.AppendUint16(nil, old)...)
}

// serveRaw sends raw bytes to a server for a fresh tree, closes the
// sending side and returns what the server answered once it finished.
func serveRaw(t testing.TB, a p9.Attacher, data []byte) []byte {
	t.Helper()
	sc, cc := testhelp.ConnPair(t)
	done := make(chan struct{})
	go func() {
		Serve(sc, a, ulog.Null)
		close(done)
	}()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, cc); close(copied) }()
	cc.Write(data)
	cc.CloseWrite()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("9P server did not finish after the client closed")
	}
	<-copied
	cc.Close()
	return out.Bytes()
}

func TestFlushGuard(t *testing.T) {
	a, err := host.Open(t.TempDir(), host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for name, msgs := range map[string][][]byte{
		"self flush":       {versionFrame(), flushFrame(1, 1)},
		"flush cycle":      {versionFrame(), flushFrame(1, 2), flushFrame(2, 1)},
		"flush of notag":   {versionFrame(), flushFrame(0xffff, 0xffff)},
		"short flush":      {versionFrame(), frame(msgTflush, 3)},
		"ordinary flush":   {versionFrame(), flushFrame(1, 7)},
		"flush then reuse": {versionFrame(), flushFrame(1, 7), flushFrame(2, 1)},
	} {
		t.Run(name, func(t *testing.T) {
			reply := serveRaw(t, a, bytes.Join(msgs, nil))
			// Every message after Tversion gets exactly one reply.
			n := 0
			for b := reply; len(b) >= 7; n++ {
				size := binary.LittleEndian.Uint32(b)
				if size < 7 || int(size) > len(b) {
					t.Fatalf("bad reply framing: %x", reply)
				}
				b = b[size:]
			}
			if n != len(msgs) {
				t.Fatalf("got %d replies to %d messages", n, len(msgs))
			}
		})
	}
}

// recordingConn records what a client writes.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// seedSessions drives a real client through typical sessions and returns
// the raw bytes it sent, one session per seed.
func seedSessions(t testing.TB) [][]byte {
	sessions := []func(root p9.File){
		func(root p9.File) {
			_, f, _ := root.Walk([]string{"file"})
			f.Open(p9.ReadOnly)
			f.ReadAt(make([]byte, 100), 0)
			f.Close()
		},
		func(root p9.File) {
			_, d, _ := root.Walk(nil)
			nf, _, _, _ := d.Create("new", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
			nf.WriteAt([]byte("hello"), 0)
			nf.Close()
			root.RenameAt("new", root, "renamed")
			root.UnlinkAt("renamed", 0)
		},
		func(root p9.File) {
			root.Mkdir("dir", 0o755, p9.NoUID, p9.NoGID)
			root.Symlink("../../etc/passwd", "sl", p9.NoUID, p9.NoGID)
			root.Mknod("fifo", p9.ModeNamedPipe|0o600, 0, 0, p9.NoUID, p9.NoGID)
			_, d, _ := root.Walk(nil)
			d.Open(p9.ReadOnly)
			d.Readdir(0, 1000)
			d.Close()
		},
		func(root p9.File) {
			_, f, _, _, _ := root.WalkGetAttr([]string{"link"})
			f.SetAttr(p9.SetAttrMask{Size: true, Permissions: true}, p9.SetAttr{Size: 0, Permissions: 0o777})
			f.Readlink()
			root.StatFS()
			root.Link(f, "hard")
			f.Close()
		},
		func(root p9.File) {
			ra := root.(interface {
				ReaddirAttr(uint64, uint32) ([]p9.DirentAttr, error)
			})
			ents, _ := ra.ReaddirAttr(0, 200)
			if len(ents) > 0 {
				ra.ReaddirAttr(ents[0].Offset, 1<<20)
			}
		},
	}
	var out [][]byte
	for _, session := range sessions {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "file"), []byte("content"), 0o644)
		os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
		a, err := host.Open(dir, host.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sc, cc := testhelp.ConnPair(t)
		rec := &recordingConn{Conn: cc}
		done := make(chan struct{})
		go func() { Serve(sc, a, ulog.Null); close(done) }()
		client, err := p9.NewClient(rec, p9.WithMessageSize(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		root, err := client.Attach("/")
		if err != nil {
			t.Fatal(err)
		}
		session(root)
		root.Close()
		client.Close()
		<-done
		a.Close()
		rec.mu.Lock()
		out = append(out, append([]byte(nil), rec.buf.Bytes()...))
		rec.mu.Unlock()
	}
	return out
}

// TestUpdateFuzzCorpus rewrites testdata/fuzz/FuzzServe from recorded
// client sessions when RUNSC_UPDATE_CORPUS=1.
func TestUpdateFuzzCorpus(t *testing.T) {
	if os.Getenv("RUNSC_UPDATE_CORPUS") != "1" {
		t.Skip("set RUNSC_UPDATE_CORPUS=1 to regenerate the checked-in fuzz corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzServe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := seedSessions(t)
	seeds = append(seeds, bytes.Join([][]byte{versionFrame(), flushFrame(1, 1)}, nil))
	for i, s := range seeds {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("session-%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzServe feeds raw bytes, as a client would send them, to the gofer's
// 9P server over a real socket serving a writable tree that holds
// symbolic links pointing out of it. The server must neither crash nor
// hang, and nothing outside the served tree may change.
func FuzzServe(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 100, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		rootDir := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		os.MkdirAll(rootDir, 0o755)
		os.MkdirAll(outside, 0o755)
		os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600)
		os.WriteFile(filepath.Join(rootDir, "file"), []byte("content"), 0o644)
		os.Symlink(filepath.Join(outside, "secret"), filepath.Join(rootDir, "link"))
		os.Symlink("../outside", filepath.Join(rootDir, "dirlink"))
		before := treeState(t, outside)

		a, err := host.Open(rootDir, host.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		serveRaw(t, a, data)
		if after := treeState(t, outside); !reflect.DeepEqual(before, after) {
			t.Fatalf("outside the served tree changed:\nbefore %v\nafter  %v", before, after)
		}
		ents, err := os.ReadDir(base)
		if err != nil || len(ents) != 2 {
			t.Fatalf("entries next to the served tree: %v %v", ents, err)
		}
	})
}
