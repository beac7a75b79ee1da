package fuse9p

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// FuzzGoferReply feeds arbitrary replies to the sandbox's 9P client for the
// runsc extensions it parses (Rreaddirattr, Rbackingopen), after a valid
// handshake: a gofer gone wrong must cost the sandbox an error, not a
// panic or a hang.
func FuzzGoferReply(f *testing.F) {
	// An Rreaddirattr with one entry and a truncated one, and an
	// Rbackingopen.
	one := make([]byte, 4, 4+p9.DirentAttrOverhead+1)
	binary.LittleEndian.PutUint32(one, 2)
	one = append(one, make([]byte, p9.DirentAttrOverhead-2)...)
	one = append(one, 1, 0, 'x')
	f.Add(byte(0), one)
	f.Add(byte(0), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(byte(1), []byte{7, 0, 0, 0})
	f.Add(byte(1), []byte{})
	f.Fuzz(func(t *testing.T, which byte, payload []byte) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		typ := byte(141) // Rreaddirattr
		if which%2 == 1 {
			typ = 143 // Rbackingopen
		}
		go fakeGofer(b, typ, payload)
		client, err := p9.NewClient(a, p9.WithMessageSize(1<<16))
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer client.Close()
		root, err := client.Attach("/")
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if typ == 141 {
				root.(readdirAttrer).ReaddirAttr(0, 4096)
			} else {
				root.(interface{ OpenBacking() (uint32, error) }).OpenBacking()
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("client did not return")
		}
	})
}

// fakeGofer answers a client's version and attach, then replies to the
// next request with a message of type typ carrying payload.
func fakeGofer(c net.Conn, typ byte, payload []byte) {
	tagOf := func() ([]byte, bool) {
		hdr := make([]byte, 7)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return nil, false
		}
		rest := make([]byte, binary.LittleEndian.Uint32(hdr)-7)
		if _, err := io.ReadFull(c, rest); err != nil {
			return nil, false
		}
		return hdr[5:7], true
	}
	reply := func(typ byte, tag []byte, body []byte) bool {
		msg := binary.LittleEndian.AppendUint32(nil, uint32(7+len(body)))
		msg = append(append(append(msg, typ), tag...), body...)
		_, err := c.Write(msg)
		return err == nil
	}
	tag, ok := tagOf()
	version := "9P2000.L.Google.8"
	body := binary.LittleEndian.AppendUint32(nil, 1<<16)
	body = binary.LittleEndian.AppendUint16(body, uint16(len(version)))
	if !ok || !reply(101, tag, append(body, version...)) {
		return
	}
	if tag, ok = tagOf(); !ok || !reply(105, tag, make([]byte, 13)) {
		return
	}
	if tag, ok = tagOf(); !ok {
		return
	}
	reply(typ, tag, payload)
	// Whatever the client sends next (a flush, a clunk) is drained
	// until it hangs up.
	io.Copy(io.Discard, c)
}
