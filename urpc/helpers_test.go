package urpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runsc/runsc/internal/testhelp"
	"golang.org/x/sys/unix"
)

// AddArgs is the argument of Arith methods.
type AddArgs struct {
	A, B int
}

// AddResult is the result of Arith methods.
type AddResult struct {
	Sum int
}

// Arith is a simple test service.
type Arith struct{}

// Add adds.
func (Arith) Add(a *AddArgs, r *AddResult) error {
	r.Sum = a.A + a.B
	return nil
}

// Fail always fails.
func (Arith) Fail(a *AddArgs, r *AddResult) error {
	return fmt.Errorf("cannot add %d and %d", a.A, a.B)
}

// Panic always panics.
func (Arith) Panic(a *AddArgs, r *AddResult) error {
	panic("kaboom")
}

// CatArgs asks FileSvc.Cat to read Lens[i] bytes from Files[i].
type CatArgs struct {
	FilePayload
	Lens []int
}

// CatResult carries a pipe holding the concatenation.
type CatResult struct {
	FilePayload
	Total int
}

// FileSvc is a test service that passes files both ways. It records the
// files it received and returned, so tests can check they were closed.
type FileSvc struct {
	mu       sync.Mutex
	received []*os.File
	returned []*os.File
}

// Cat reads Lens[i] bytes from each received file and returns a pipe holding
// their concatenation.
func (s *FileSvc) Cat(a *CatArgs, r *CatResult) error {
	s.mu.Lock()
	s.received = append(s.received, a.Files...)
	s.mu.Unlock()
	if len(a.Files) != len(a.Lens) {
		return fmt.Errorf("got %d files and %d lengths", len(a.Files), len(a.Lens))
	}
	var all []byte
	for i, f := range a.Files {
		buf := make([]byte, a.Lens[i])
		if _, err := io.ReadFull(f, buf); err != nil {
			return fmt.Errorf("reading file %d: %w", i, err)
		}
		all = append(all, buf...)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating pipe: %w", err)
	}
	defer pw.Close()
	if _, err := pw.Write(all); err != nil {
		pr.Close()
		return fmt.Errorf("writing pipe: %w", err)
	}
	s.mu.Lock()
	s.returned = append(s.returned, pr)
	s.mu.Unlock()
	r.Files = []*os.File{pr}
	r.Total = len(all)
	return nil
}

// Count counts the files it receives, checking only that each is
// close-on-exec.
func (s *FileSvc) Count(a *CatArgs, r *CatResult) error {
	s.mu.Lock()
	s.received = append(s.received, a.Files...)
	s.mu.Unlock()
	for i, f := range a.Files {
		rc, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("accessing file %d: %w", i, err)
		}
		var flags int
		var fcntlErr error
		if err := rc.Control(func(fd uintptr) { flags, fcntlErr = unix.FcntlInt(fd, unix.F_GETFD, 0) }); err != nil {
			return fmt.Errorf("accessing file %d: %w", i, err)
		}
		if fcntlErr != nil {
			return fmt.Errorf("getting flags of file %d: %w", i, fcntlErr)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			return fmt.Errorf("file %d is not close-on-exec", i)
		}
	}
	r.Total = len(a.Files)
	return nil
}

// newTestServer returns a server with Arith and a FileSvc registered, stopped
// at cleanup.
func newTestServer(t testing.TB) (*Server, *FileSvc) {
	t.Helper()
	srv := NewServer()
	if err := srv.Register(Arith{}); err != nil {
		t.Fatalf("registering Arith: %v", err)
	}
	fs := &FileSvc{}
	if err := srv.Register(fs); err != nil {
		t.Fatalf("registering FileSvc: %v", err)
	}
	if err := srv.Register(Echo{}); err != nil {
		t.Fatalf("registering Echo: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv, fs
}

// listen starts srv serving on a fresh socket and returns its path.
func listen(t testing.TB, srv *Server) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "urpc")
	if err != nil {
		t.Fatalf("creating temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

// dial connects a client to path, closed at cleanup.
func dial(t testing.TB, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawPair returns a connected pair: a *net.UnixConn for the server side and
// a raw blocking descriptor (with a receive timeout) for the test side.
// Both are closed when the test ends.
func rawPair(t testing.TB) (*net.UnixConn, int) {
	t.Helper()
	server, peer := testhelp.SocketPair(t)
	raw := int(peer.Fd())
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(raw, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatalf("setting SO_RCVTIMEO: %v", err)
	}
	c, err := net.FileConn(server)
	server.Close()
	if err != nil {
		t.Fatalf("FileConn: %v", err)
	}
	return c.(*net.UnixConn), raw
}

// frame encodes a frame with the given header fields and body.
func frame(length, count uint32, body []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(body))
	binary.LittleEndian.PutUint32(b[0:4], length)
	binary.LittleEndian.PutUint32(b[4:8], count)
	return append(b, body...)
}

// validFrame encodes a well-formed request frame without files.
func validFrame(body string) []byte {
	return frame(uint32(len(body)), 0, []byte(body))
}

// pipes creates n pipes and closes them at cleanup.
func pipes(t testing.TB, n int) (rs, ws []*os.File) {
	t.Helper()
	for range n {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatalf("Pipe: %v", err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		rs = append(rs, r)
		ws = append(ws, w)
	}
	return rs, ws
}

// requireReaderGone checks that writing to w fails with EPIPE, that is that
// every descriptor of the pipe's read end, ours and the server's, is closed.
func requireReaderGone(t testing.TB, w *os.File) {
	t.Helper()
	_, err := w.Write([]byte("x"))
	if !errors.Is(err, unix.EPIPE) {
		t.Errorf("writing to pipe after its read ends were closed: got %v, want EPIPE", err)
	}
}

// requireClosed checks that f was already closed.
func requireClosed(t testing.TB, f *os.File) {
	t.Helper()
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("file %s was not closed by the server (Close: %v)", f.Name(), err)
	}
}

// EchoArgs is the argument and result of Echo.Echo.
type EchoArgs struct {
	FilePayload
	S string
}

// Echo is a test service that returns its argument, files included.
type Echo struct{}

// Echo returns a copy of a. The files are duplicated, since the server closes
// those it received.
func (Echo) Echo(a *EchoArgs, r *EchoArgs) error {
	r.S = a.S
	fds, err := dupFiles(a.Files)
	if err != nil {
		return err
	}
	r.Files = newFiles(fds)
	return nil
}

// requireReaderGoneSoon is requireReaderGone for read ends that the server
// sent back in a result: it closes its copies just after sending the reply,
// so the client may see the reply slightly before that.
func requireReaderGoneSoon(t testing.TB, w *os.File) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := w.Write([]byte("x"))
		if errors.Is(err, unix.EPIPE) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("writing to pipe after its read ends were closed: got %v, want EPIPE", err)
			return
		}
		time.Sleep(time.Millisecond)
	}
}
