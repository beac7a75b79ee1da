package host

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/runsc/runsc/internal/testhelp"
	"golang.org/x/sys/unix"
)

// serve starts a 9P server for the attacher on one end of a socket pair
// and returns a client attached to it.
func serve(t testing.TB, a p9.Attacher) (*p9.Client, p9.File) {
	t.Helper()
	sc, cc := testhelp.ConnPair(t)
	srv := p9.NewServer(a)
	done := make(chan struct{})
	go func() {
		srv.Handle(sc, sc)
		close(done)
	}()
	client, err := p9.NewClient(cc, p9.WithMessageSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	root, err := client.Attach("/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		root.Close()
		client.Close()
		<-done
	})
	return client, root
}

// serveDir serves dir with opts and returns the client's root.
func serveDir(t testing.TB, dir string, opts Options) p9.File {
	t.Helper()
	a, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	_, root := serve(t, a)
	return root
}

// walk walks from f and fails the test on error.
func walk(t testing.TB, f p9.File, names ...string) p9.File {
	t.Helper()
	_, c, err := f.Walk(names)
	if err != nil {
		t.Fatalf("walk %q: %v", names, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// errno extracts the errno from a p9 client error.
func errno(err error) linux.Errno {
	if err == nil {
		return 0
	}
	return linux.ExtractErrno(err)
}

// wantErrno fails unless err carries one of the given errnos.
func wantErrno(t testing.TB, what string, err error, want ...unix.Errno) {
	t.Helper()
	got := errno(err)
	for _, w := range want {
		if got == linux.Errno(w) {
			return
		}
	}
	t.Fatalf("%s: got error %v (errno %d), want one of %v", what, err, got, want)
}

// writeFile writes a host file, creating parents.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readAll reads an opened client file from offset 0.
func readAll(t testing.TB, f p9.File) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if n == 0 || errors.Is(err, os.ErrClosed) {
			return string(out)
		}
		if err != nil && n == 0 {
			t.Fatalf("read: %v", err)
		}
	}
}

// readdirAll pages through an opened directory with count-sized replies.
func readdirAll(t testing.TB, d p9.File, count uint32) []p9.Dirent {
	t.Helper()
	var all []p9.Dirent
	offset := uint64(0)
	for {
		ents, err := d.Readdir(offset, count)
		if err != nil {
			t.Fatalf("readdir at %d: %v", offset, err)
		}
		if len(ents) == 0 {
			return all
		}
		all = append(all, ents...)
		offset = ents[len(ents)-1].Offset
	}
}
