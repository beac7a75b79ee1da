package gofer

import (
	"encoding/binary"
	"io"
	"net"

	"github.com/hugelgupf/p9/p9"
	"github.com/u-root/uio/ulog"
)

// msgTflush is the 9P message type of Tflush.
const msgTflush = 108

// msgInvalid is a message type the 9P server does not know: it answers
// it with an error and goes on.
const msgInvalid = 0

// maxFrame bounds the frames the guard buffers; larger ones are passed
// through untouched for the 9P server to refuse.
const maxFrame = 8 << 20

// Serve serves the tree behind a over conn with the 9P2000.L server until
// the connection closes.
func Serve(conn net.Conn, a p9.Attacher, log ulog.Logger) {
	srv := p9.NewServer(a, p9.WithServerLogger(log))
	srv.Handle(&flushGuard{Conn: conn, flushTags: map[uint16]bool{}}, conn)
}

// flushGuard sits between the socket and the 9P server and defuses Tflush
// messages that would deadlock it. The server answers Tflush(oldtag) only
// once the request holding oldtag has finished, so a Tflush naming its own
// tag, or a cycle of Tflushes naming each other, would wait forever: the
// connection could then never finish and the gofer never exit. Only a
// Tflush can wait, so every such cycle contains a Tflush, read after the
// others, whose oldtag had already been used by a Tflush. The guard
// refuses exactly those (it turns them into an invalid message type, which
// the server answers with an error): a tag once used by a Tflush stays
// marked, which is what makes the argument hold whatever the timing.
// Legitimate clients never flush a flush; our own client never flushes.
type flushGuard struct {
	net.Conn
	// frame holds the rest of the current frame not yet read by the
	// server.
	frame []byte
	// passthrough is set once the stream is not a valid 9P stream; the
	// server then gets the bytes as they are and closes the connection.
	passthrough bool
	// flushTags marks every tag ever used by a Tflush.
	flushTags map[uint16]bool
}

// Read implements io.Reader.
func (g *flushGuard) Read(p []byte) (int, error) {
	if g.passthrough {
		return g.Conn.Read(p)
	}
	if len(g.frame) == 0 {
		if err := g.nextFrame(); err != nil {
			return 0, err
		}
	}
	n := copy(p, g.frame)
	g.frame = g.frame[n:]
	return n, nil
}

// nextFrame reads one whole frame and rewrites it if needed.
func (g *flushGuard) nextFrame() error {
	var hdr [4]byte
	if _, err := io.ReadFull(g.Conn, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			g.passthrough = true
			g.frame = append([]byte(nil), hdr[:]...)
			// Return what was read; the server sees a short header.
			return nil
		}
		return err
	}
	size := binary.LittleEndian.Uint32(hdr[:])
	if size < 7 || size > maxFrame {
		g.passthrough = true
		g.frame = hdr[:]
		return nil
	}
	frame := make([]byte, size)
	copy(frame, hdr[:])
	if n, err := io.ReadFull(g.Conn, frame[4:]); err != nil {
		g.passthrough = true
		g.frame = frame[:4+n]
		return nil
	}
	typ := frame[4]
	tag := binary.LittleEndian.Uint16(frame[5:])
	if typ == msgTflush {
		if size < 9 {
			frame[4] = msgInvalid
		} else if old := binary.LittleEndian.Uint16(frame[7:]); old == tag || g.flushTags[old] {
			frame[4] = msgInvalid
		}
		g.flushTags[tag] = true
	}
	g.frame = frame
	return nil
}
