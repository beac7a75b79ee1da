package host

import (
	"bytes"
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
	"golang.org/x/sys/unix"
)

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
			f.Close()
		},
	}
	var out [][]byte
	for _, session := range sessions {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "file"), "content")
		os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
		a, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		sc, cc := socketPair(t)
		rec := &recordingConn{Conn: cc}
		done := make(chan struct{})
		go func() { p9.NewServer(a).Handle(sc, sc); close(done) }()
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

// TestUpdateFuzzCorpus rewrites testdata/fuzz/FuzzServer from recorded
// client sessions when RUNSC_UPDATE_CORPUS=1.
func TestUpdateFuzzCorpus(t *testing.T) {
	if os.Getenv("RUNSC_UPDATE_CORPUS") != "1" {
		t.Skip("set RUNSC_UPDATE_CORPUS=1 to regenerate the checked-in fuzz corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzServer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seedSessions(t) {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("session-%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzServer feeds raw bytes, as a client would send them, to a 9P server
// over a real socket serving a writable tree. The server must neither
// crash nor hang, and nothing outside the served tree may change.
func FuzzServer(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 100, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		rootDir := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		writeFile(t, filepath.Join(outside, "secret"), "secret")
		writeFile(t, filepath.Join(rootDir, "file"), "content")
		os.Symlink(filepath.Join(outside, "secret"), filepath.Join(rootDir, "link"))
		os.Symlink(outside, filepath.Join(rootDir, "dirlink"))
		before := snapshot(t, outside)

		a, err := Open(rootDir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		sc, cc := socketPair(t)
		done := make(chan struct{})
		go func() { p9.NewServer(a).Handle(sc, sc); close(done) }()
		go io.Copy(io.Discard, cc)
		cc.Write(data)
		cc.(*net.UnixConn).CloseWrite()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("server did not finish after the client closed")
		}
		cc.Close()
		if after := snapshot(t, outside); !reflect.DeepEqual(before, after) {
			t.Fatalf("outside changed: %v -> %v", before, after)
		}
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(base, "escaped"), &st) == nil {
			t.Fatal("a file appeared next to the served root")
		}
	})
}
