package urpc

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestFilePassing(t *testing.T) {
	srv, fs := newTestServer(t)
	c := dial(t, listen(t, srv))

	t.Run("BothWays", func(t *testing.T) {
		contents := []string{"hello, ", "file ", "descriptors"}
		rs, ws := pipes(t, len(contents))
		arg := &CatArgs{Lens: make([]int, len(contents))}
		for i, s := range contents {
			if _, err := ws[i].Write([]byte(s)); err != nil {
				t.Fatalf("writing pipe %d: %v", i, err)
			}
			arg.Lens[i] = len(s)
		}
		arg.Files = rs

		var res CatResult
		if err := c.Call("FileSvc.Cat", arg, &res); err != nil {
			t.Fatalf("Call: %v", err)
		}
		want := strings.Join(contents, "")
		if res.Total != len(want) {
			t.Errorf("Total = %d, want %d", res.Total, len(want))
		}
		if len(res.Files) != 1 {
			t.Fatalf("got %d result files, want 1", len(res.Files))
		}
		if name := res.Files[0].Name(); name != "urpc-fd-0" {
			t.Errorf("result file name = %q, want urpc-fd-0", name)
		}
		got, err := io.ReadAll(res.Files[0])
		res.Files[0].Close()
		if err != nil {
			t.Fatalf("reading result pipe: %v", err)
		}
		if string(got) != want {
			t.Errorf("result pipe holds %q, want %q", got, want)
		}

		// Call did not close our files.
		for i, r := range rs {
			if _, err := r.Stat(); err != nil {
				t.Errorf("argument file %d unusable after Call: %v", i, err)
			}
		}
		// The server closed what it received and what it returned, before
		// replying: once our read ends are closed too, the pipes have no
		// reader left.
		fs.mu.Lock()
		received, returned := fs.received, fs.returned
		fs.received, fs.returned = nil, nil
		fs.mu.Unlock()
		if len(received) != 3 || len(returned) != 1 {
			t.Fatalf("server saw %d files and returned %d, want 3 and 1", len(received), len(returned))
		}
		for i, f := range received {
			if want := "urpc-fd-" + string(rune('0'+i)); f.Name() != want {
				t.Errorf("received file %d named %q, want %q", i, f.Name(), want)
			}
			requireClosed(t, f)
		}
		requireClosed(t, returned[0])
		for i := range rs {
			rs[i].Close()
			requireReaderGone(t, ws[i])
		}
	})

	t.Run("UnusedFilesClosed", func(t *testing.T) {
		rs, ws := pipes(t, 2)
		var res CatResult
		if err := c.Call("FileSvc.Count", &CatArgs{FilePayload: FilePayload{Files: rs}}, &res); err != nil {
			t.Fatalf("Call: %v", err)
		}
		if res.Total != 2 {
			t.Errorf("Total = %d, want 2", res.Total)
		}
		for i := range rs {
			rs[i].Close()
			requireReaderGone(t, ws[i])
		}
	})

	t.Run("FilesToMethodWithoutPayload", func(t *testing.T) {
		rs, ws := pipes(t, 1)
		arg := &struct {
			FilePayload
			A, B int
		}{FilePayload{rs}, 1, 2}
		err := c.Call("Arith.Add", arg, &AddResult{})
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "does not accept files") {
			t.Fatalf("Call: got %v, want a remote error about files", err)
		}
		rs[0].Close()
		requireReaderGone(t, ws[0])
	})

	t.Run("FilesToUnknownMethod", func(t *testing.T) {
		rs, ws := pipes(t, 1)
		err := c.Call("Nope.Nope", &CatArgs{FilePayload: FilePayload{rs}}, nil)
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("Call: got %v, want *RemoteError", err)
		}
		rs[0].Close()
		requireReaderGone(t, ws[0])
	})

	t.Run("TooManyFilesRefusedClientSide", func(t *testing.T) {
		rs, _ := pipes(t, 1)
		files := make([]*os.File, MaxFiles+1)
		for i := range files {
			files[i] = rs[0]
		}
		fs.mu.Lock()
		before := len(fs.received)
		fs.mu.Unlock()
		err := c.Call("FileSvc.Count", &CatArgs{FilePayload: FilePayload{files}}, &CatResult{})
		if err == nil || !strings.Contains(err.Error(), "maximum") {
			t.Fatalf("Call with %d files: got %v, want a too-many-files error", len(files), err)
		}
		fs.mu.Lock()
		after := len(fs.received)
		fs.mu.Unlock()
		if before != after {
			t.Errorf("request was sent anyway")
		}
		// Exactly MaxFiles is fine, and the client is still usable.
		var res CatResult
		if err := c.Call("FileSvc.Count", &CatArgs{FilePayload: FilePayload{files[:MaxFiles]}}, &res); err != nil {
			t.Fatalf("Call with %d files: %v", MaxFiles, err)
		}
		if res.Total != MaxFiles {
			t.Errorf("Total = %d, want %d", res.Total, MaxFiles)
		}
	})

	t.Run("NilFileRefused", func(t *testing.T) {
		err := c.Call("FileSvc.Count", &CatArgs{FilePayload: FilePayload{[]*os.File{nil}}}, &CatResult{})
		if err == nil {
			t.Fatal("Call with a nil file succeeded")
		}
	})
}

// TestLargeMessages sends messages far larger than the socket buffers, so
// that frames take many sendmsg and recvmsg calls, with files attached.
func TestLargeMessages(t *testing.T) {
	srv, _ := newTestServer(t)
	c := dial(t, listen(t, srv))
	for _, size := range []int{0, 1, 64<<10 - 1, 1 << 20, 3 << 20} {
		rs, ws := pipes(t, 2)
		s := strings.Repeat("x", size)
		var res EchoArgs
		if err := c.Call("Echo.Echo", &EchoArgs{FilePayload{rs}, s}, &res); err != nil {
			t.Fatalf("Call with %d bytes: %v", size, err)
		}
		if res.S != s {
			t.Errorf("echo of %d bytes returned %d bytes", size, len(res.S))
		}
		if len(res.Files) != 2 {
			t.Fatalf("got %d files back, want 2", len(res.Files))
		}
		// The returned files are the same pipes.
		if _, err := ws[1].Write([]byte("pipe")); err != nil {
			t.Fatalf("writing pipe: %v", err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(res.Files[1], buf); err != nil || string(buf) != "pipe" {
			t.Fatalf("reading returned pipe: %q, %v", buf, err)
		}
		closeFiles(res.Files)
		closeFiles(rs)
		for _, w := range ws {
			requireReaderGoneSoon(t, w)
		}
	}
	t.Run("TooLarge", func(t *testing.T) {
		err := c.Call("Echo.Echo", &EchoArgs{S: strings.Repeat("x", MaxMessageSize)}, nil)
		if err == nil || !strings.Contains(err.Error(), "maximum") {
			t.Fatalf("Call with oversized request: got %v", err)
		}
		if err := c.Call("Echo.Echo", &EchoArgs{S: "still fine"}, nil); err != nil {
			t.Fatalf("Call after oversized request: %v", err)
		}
	})
}
