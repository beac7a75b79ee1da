package urpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/runsc/runsc/cleanup"
	"golang.org/x/sys/unix"
)

// errControlTruncated reports a recvmsg whose control data did not fit.
var errControlTruncated = errors.New("control message truncated (MSG_CTRUNC)")

// initialBodyBuffer bounds the first allocation for a frame's JSON, so that a
// header claiming a large length costs memory only as data actually arrives.
const initialBodyBuffer = 64 << 10

// writeFrame sends data and the descriptors fds as one frame on conn. The
// descriptors are attached to the first sendmsg; short writes are continued
// without them. The caller keeps ownership of fds. It honours conn's write
// deadline and fails if conn is closed.
func writeFrame(conn *net.UnixConn, data []byte, fds []int) error {
	if len(data) > MaxMessageSize {
		return fmt.Errorf("message length %d exceeds maximum %d", len(data), MaxMessageSize)
	}
	if len(fds) > MaxFiles {
		return fmt.Errorf("message carries %d files, more than the maximum %d", len(fds), MaxFiles)
	}
	buf := make([]byte, headerSize+len(data))
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(data)))
	binary.LittleEndian.PutUint32(buf[4:8], uint32(len(fds)))
	copy(buf[headerSize:], data)

	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("accessing connection: %w", err)
	}
	off := 0
	var sendErr error
	err = rc.Write(func(fd uintptr) bool {
		for off < len(buf) {
			n, err := unix.SendmsgN(int(fd), buf[off:], oob, nil, unix.MSG_NOSIGNAL)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // Wait until writable.
			case err != nil:
				sendErr = err
				return true
			}
			off += n
			oob = nil // The descriptors went with the first bytes.
		}
		return true
	})
	if err == nil {
		err = sendErr
	}
	if err != nil {
		return fmt.Errorf("sending frame (%d of %d bytes sent): %w", off, len(buf), err)
	}
	return nil
}

// frameReader reads frames from a connection, collecting the descriptors
// that arrive with them.
type frameReader struct {
	rc  syscall.RawConn
	oob []byte
	fds []int
}

// readFrame reads one frame from conn and returns its JSON bytes and the
// descriptors that came with it, which the caller then owns. It returns
// io.EOF, unwrapped, if the stream ended cleanly before the frame started.
// On any other error the descriptors received so far are closed and the
// frame must be considered corrupt; the stream is no longer usable.
func readFrame(conn *net.UnixConn) ([]byte, []int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("accessing connection: %w", err)
	}
	r := &frameReader{rc: rc, oob: make([]byte, unix.CmsgSpace(MaxFiles*4))}
	var cu cleanup.Cleanup
	defer cu.Clean()
	cu.Add(func() { closeFDs(r.fds) })

	var hdr [headerSize]byte
	n, err := r.readFull(hdr[:])
	if err != nil {
		if err == io.EOF && n == 0 && len(r.fds) == 0 {
			return nil, nil, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, fmt.Errorf("reading message header: %w", err)
	}
	length := binary.LittleEndian.Uint32(hdr[0:4])
	count := binary.LittleEndian.Uint32(hdr[4:8])
	if length > MaxMessageSize {
		return nil, nil, fmt.Errorf("reading message header: length %d exceeds maximum %d", length, MaxMessageSize)
	}
	if count > MaxFiles {
		return nil, nil, fmt.Errorf("reading message header: file count %d exceeds maximum %d", count, MaxFiles)
	}

	data := make([]byte, 0, min(int(length), initialBodyBuffer))
	for len(data) < int(length) {
		if len(data) == cap(data) {
			grown := make([]byte, len(data), min(2*cap(data), int(length)))
			copy(grown, data)
			data = grown
		}
		n, err := r.read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, fmt.Errorf("reading message body (%d of %d bytes): %w", len(data), length, err)
		}
	}
	if len(r.fds) != int(count) {
		return nil, nil, fmt.Errorf("message header declares %d files but %d were received", count, len(r.fds))
	}
	cu.Release()
	return data, r.fds, nil
}

// readFull reads exactly len(p) bytes. It returns io.EOF if the stream ended
// before p was filled, with the number of bytes read.
func (r *frameReader) readFull(p []byte) (int, error) {
	total := 0
	for total < len(p) {
		n, err := r.read(p[total:])
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// read does one recvmsg of at most len(p) bytes (len(p) > 0), waiting through
// the runtime poller while no data is available. Descriptors that arrive are
// appended to r.fds even if an error is returned. At end of stream it
// returns 0, io.EOF.
func (r *frameReader) read(p []byte) (int, error) {
	var n, oobn, flags int
	var recvErr error
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, recvErr = unix.Recvmsg(int(fd), p, r.oob, unix.MSG_CMSG_CLOEXEC)
			if recvErr == unix.EINTR {
				continue
			}
			return recvErr != unix.EAGAIN // Wait until readable on EAGAIN.
		}
	})
	if oobn > 0 {
		fds, perr := parseRights(r.oob[:oobn])
		r.fds = append(r.fds, fds...)
		if perr != nil && err == nil && recvErr == nil {
			err = perr
		}
	}
	if err == nil {
		err = recvErr
	}
	if err != nil {
		return 0, err
	}
	if flags&unix.MSG_CTRUNC != 0 {
		return n, errControlTruncated
	}
	if len(r.fds) > MaxFiles {
		return n, fmt.Errorf("received %d files, more than the maximum %d", len(r.fds), MaxFiles)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// parseRights extracts the descriptors of all SCM_RIGHTS control messages in
// oob. Control messages of other types are ignored.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parsing control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		h := msgs[i].Header
		if h.Level != unix.SOL_SOCKET || h.Type != unix.SCM_RIGHTS {
			continue
		}
		rights, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return fds, fmt.Errorf("parsing SCM_RIGHTS: %w", err)
		}
		fds = append(fds, rights...)
	}
	return fds, nil
}
