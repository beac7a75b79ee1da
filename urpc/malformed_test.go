package urpc

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMalformedFrames sends broken frames on raw connections and checks that
// each such connection alone is closed, with ServeConn reporting why, while
// a well-behaved client keeps working on the same server.
func TestMalformedFrames(t *testing.T) {
	srv, _ := newTestServer(t)
	good := dial(t, listen(t, srv))

	// A concurrent, well-behaved client.
	stop := make(chan struct{})
	var goodCalls atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var r AddResult
			if err := good.Call("Arith.Add", &AddArgs{A: i, B: 1}, &r); err != nil {
				t.Errorf("good client: %v", err)
				return
			}
			if r.Sum != i+1 {
				t.Errorf("good client: Sum = %d, want %d", r.Sum, i+1)
				return
			}
			goodCalls.Add(1)
		}
	}()

	cases := []struct {
		name string
		// send writes the bad input on the raw descriptor; it may return
		// pipe write ends whose read ends it sent, to check they are closed.
		send    func(t *testing.T, fd int) []int
		wantErr string
	}{
		{
			name: "HeaderClaimsOneFileCarriesTwo",
			send: func(t *testing.T, fd int) []int {
				return sendWithPipes(t, fd, validFrame(`{"method":"FileSvc.Count"}`), 1, 2)
			},
			wantErr: "declares 1 files but 2 were received",
		},
		{
			name: "HeaderClaimsTwoFilesCarriesOne",
			send: func(t *testing.T, fd int) []int {
				b := validFrame(`{"method":"FileSvc.Count"}`)
				return sendWithPipes(t, fd, b, 2, 1)
			},
			wantErr: "declares 2 files but 1 were received",
		},
		{
			name: "ControlTruncated",
			send: func(t *testing.T, fd int) []int {
				return sendWithPipes(t, fd, validFrame(`{"method":"FileSvc.Count"}`), 1, MaxFiles+2)
			},
			wantErr: "MSG_CTRUNC",
		},
		{
			name: "HugeLength",
			send: func(t *testing.T, fd int) []int {
				mustWrite(t, fd, frame(0xffffffff, 0, []byte("{}")))
				return nil
			},
			wantErr: "exceeds maximum",
		},
		{
			name: "TooManyFilesInHeader",
			send: func(t *testing.T, fd int) []int {
				mustWrite(t, fd, frame(2, MaxFiles+1, []byte("{}")))
				return nil
			},
			wantErr: "file count",
		},
		{
			name: "TruncatedBodyThenEOF",
			send: func(t *testing.T, fd int) []int {
				mustWrite(t, fd, frame(100, 0, []byte(`{"method":`)))
				unix.Shutdown(fd, unix.SHUT_WR)
				return nil
			},
			wantErr: "unexpected EOF",
		},
		{
			name: "TruncatedHeaderThenEOF",
			send: func(t *testing.T, fd int) []int {
				mustWrite(t, fd, []byte{1, 0, 0})
				unix.Shutdown(fd, unix.SHUT_WR)
				return nil
			},
			wantErr: "unexpected EOF",
		},
		{
			name: "GarbageJSON",
			send: func(t *testing.T, fd int) []int {
				mustWrite(t, fd, validFrame(`hello, world`))
				return nil
			},
			wantErr: "decoding request envelope",
		},
		{
			name: "GarbageJSONWithFile",
			send: func(t *testing.T, fd int) []int {
				return sendWithPipes(t, fd, validFrame(`[1,2,3]`), 1, 1)
			},
			wantErr: "decoding request envelope",
		},
		{
			name: "MissingMethod",
			send: func(t *testing.T, fd int) []int {
				mustWrite(t, fd, validFrame(`{"arg":{}}`))
				return nil
			},
			wantErr: "missing method",
		},
		{
			name: "GoodCallThenGarbage",
			send: func(t *testing.T, fd int) []int {
				mustWrite(t, fd, validFrame(`{"method":"Arith.Add","arg":{"A":1,"B":2}}`))
				mustWrite(t, fd, validFrame(`{`))
				return nil
			},
			wantErr: "decoding request envelope",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, raw := rawPair(t)
			errc := make(chan error, 1)
			go func() { errc <- srv.ServeConn(conn) }()
			writeEnds := tc.send(t, raw)
			var err error
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("ServeConn did not return")
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ServeConn: got %v, want error containing %q", err, tc.wantErr)
			}
			// The connection is closed: after any replies, we read EOF.
			drainToEOF(t, raw)
			// Every descriptor we sent was closed by the server.
			for _, w := range writeEnds {
				if _, err := unix.Write(w, []byte("x")); err != unix.EPIPE {
					t.Errorf("writing to a pipe whose read end was sent: got %v, want EPIPE", err)
				}
			}
		})
	}

	// Let the good client finish at least one call alongside the
	// malformed connections before stopping it.
	for deadline := time.Now().Add(10 * time.Second); goodCalls.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if goodCalls.Load() == 0 {
		t.Error("the good client made no calls")
	}
	var r AddResult
	if err := good.Call("Arith.Add", &AddArgs{A: 20, B: 22}, &r); err != nil || r.Sum != 42 {
		t.Fatalf("good client after malformed frames: sum %d, err %v", r.Sum, err)
	}
}

// TestCleanEOF checks that ServeConn returns nil when the peer closes the
// connection between frames.
func TestCleanEOF(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, calls := range []int{0, 3} {
		conn, raw := rawPair(t)
		errc := make(chan error, 1)
		go func() { errc <- srv.ServeConn(conn) }()
		for range calls {
			mustWrite(t, raw, validFrame(`{"method":"Arith.Add","arg":{"A":1}}`))
		}
		unix.Shutdown(raw, unix.SHUT_WR)
		if err := <-errc; err != nil {
			t.Errorf("ServeConn after %d calls and EOF: %v", calls, err)
		}
		drainToEOF(t, raw)
	}
}

// sendWithPipes sends b on fd with nFDs pipe read ends attached, after
// setting the header's file count to declared. It returns the pipes' write
// ends, whose read ends are all closed on our side.
func sendWithPipes(t *testing.T, fd int, b []byte, declared uint32, nFDs int) []int {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatalf("Pipe2: %v", err)
	}
	t.Cleanup(func() { unix.Close(p[1]) })
	fds := make([]int, nFDs)
	for i := range fds {
		fds[i] = p[0] // The same descriptor may be sent several times.
	}
	b = frame(uint32(len(b)-headerSize), declared, b[headerSize:])
	err := unix.Sendmsg(fd, b, unix.UnixRights(fds...), nil, 0)
	unix.Close(p[0])
	if err != nil {
		t.Fatalf("Sendmsg: %v", err)
	}
	return []int{p[1]}
}

func mustWrite(t *testing.T, fd int, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			t.Fatalf("writing: %v", err)
		}
		b = b[n:]
	}
}

// drainToEOF reads fd until end of stream.
func drainToEOF(t *testing.T, fd int) {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.ECONNRESET {
			// The server closed with our data unread in its buffer.
			return
		}
		if err != nil {
			t.Fatalf("reading until EOF: %v", err)
		}
		if n == 0 {
			return
		}
	}
}
