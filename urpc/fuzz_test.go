package urpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/runsc/runsc/internal/testhelp"
)

// fuzzSeeds are the seed inputs of FuzzServerDecode. They are also checked
// in under testdata/fuzz/FuzzServerDecode (see TestWriteFuzzCorpus).
var fuzzSeeds = []struct {
	name string
	data []byte
}{
	{"valid-call", validFrame(`{"method":"Arith.Add","arg":{"A":1,"B":2}}`)},
	{"unknown-method", validFrame(`{"method":"Nope.Nope","arg":{}}`)},
	{"huge-length", frame(0xffffffff, 0, []byte(`{"method":"Arith.Add"}`))},
	{"truncated-frame", frame(64, 0, []byte(`{"method":"Arith.A`))},
	{"bad-json", validFrame(`{"method": Arith.Add, "arg": }`)},
	{"zero-length", frame(0, 0, nil)},
	{"empty-input", nil},
	{"two-calls", append(validFrame(`{"method":"Arith.Panic"}`), validFrame(`{"method":"Echo.Echo","arg":{"S":"hi"}}`)...)},
	{"declared-file-missing", frame(22, 1, []byte(`{"method":"Arith.Add"}`))},
	{"arg-type-error", validFrame(`{"method":"Arith.Add","arg":{"A":"x"}}`)},
	{"file-method", validFrame(`{"method":"FileSvc.Cat","arg":{"Lens":[]}}`)},
	{"truncated-header", []byte{5, 0, 0}},
}

// FuzzServerDecode feeds arbitrary bytes to ServeConn on a socket pair and
// requires it to return, without panicking or hanging. It also fuzzes
// decodeRequest with the input and with the input past a frame header.
func FuzzServerDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.data)
	}
	srv, _ := newTestServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeRequest(t, data)
		if len(data) >= headerSize {
			checkDecodeRequest(t, data[headerSize:])
		}

		conn, peer := testhelp.ConnPair(t)
		deadline := time.Now().Add(10 * time.Second)
		conn.SetDeadline(deadline)
		peer.SetDeadline(deadline)

		// Write the input, end the stream and swallow the replies, so that
		// the server never blocks on a full socket buffer.
		peerDone := make(chan struct{})
		go func() {
			defer close(peerDone)
			peer.Write(data)
			peer.CloseWrite()
			io.Copy(io.Discard, peer)
		}()
		err := srv.ServeConn(conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ServeConn hung: %v", err)
		}
		select {
		case <-peerDone:
		case <-time.After(15 * time.Second):
			t.Fatal("peer did not see the connection close")
		}
	})
}

// FuzzDecodeRequest fuzzes the request envelope decoder alone.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"method":"Arith.Add","arg":{"A":1}}`,
		`{"method":"X"}`,
		`{"method":""}`,
		`{"method":1}`,
		`{"arg":{}}`,
		`null`,
		`[]`,
		`{"method":"X","arg":null,"extra":[1,2]}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkDecodeRequest)
}

// checkDecodeRequest checks decodeRequest's invariants on data: an accepted
// request has a method and survives re-encoding unchanged.
func checkDecodeRequest(t *testing.T, data []byte) {
	req, err := decodeRequest(data)
	if err != nil {
		if req != nil {
			t.Fatalf("decodeRequest(%q) returned a request and error %v", data, err)
		}
		return
	}
	if req.Method == "" {
		t.Fatalf("decodeRequest(%q) accepted an empty method", data)
	}
	again, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("re-encoding %+v: %v", req, err)
	}
	req2, err := decodeRequest(again)
	if err != nil {
		t.Fatalf("decodeRequest(%q) of re-encoded request: %v", again, err)
	}
	if req2.Method != req.Method || !jsonEqual(req2.Arg, req.Arg) {
		t.Fatalf("round trip changed %+v into %+v", req, req2)
	}
}

// jsonEqual reports whether two raw JSON values (possibly absent) are
// semantically equal.
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	decode := func(raw json.RawMessage) (any, error) {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		err := d.Decode(&v)
		return v, err
	}
	va, errA := decode(a)
	vb, errB := decode(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

// TestWriteFuzzCorpus writes the seed corpus of FuzzServerDecode when
// URPC_WRITE_FUZZ_CORPUS=1, and otherwise checks the checked-in corpus
// matches fuzzSeeds.
func TestWriteFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzServerDecode")
	write := os.Getenv("URPC_WRITE_FUZZ_CORPUS") == "1"
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range fuzzSeeds {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
		path := filepath.Join(dir, "seed-"+s.name)
		if write {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("reading seed (regenerate with URPC_WRITE_FUZZ_CORPUS=1): %v", err)
			continue
		}
		if string(got) != want {
			t.Errorf("seed %s is stale (regenerate with URPC_WRITE_FUZZ_CORPUS=1)", path)
		}
	}
}
