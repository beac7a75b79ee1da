package urpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
)

// Client calls methods of a Server over one connection. It is safe for
// concurrent use; calls are serialized on the connection.
type Client struct {
	conn   *net.UnixConn
	closed atomic.Bool

	mu     sync.Mutex // serializes calls; guards broken
	broken error      // why the connection is unusable, if it is
}

// NewClient returns a client that calls methods over conn. The client owns
// conn and closes it in Close.
func NewClient(conn *net.UnixConn) *Client {
	return &Client{conn: conn}
}

// Dial connects to the server listening on the Unix socket at path.
func Dial(path string) (*Client, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", path, err)
	}
	return NewClient(conn), nil
}

// Close closes the connection. Calls in progress fail, and so do later ones.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("closing connection: %w", err)
	}
	return nil
}

// Call calls method ("Type.Method") with arg and waits for the reply, which
// it decodes into result. arg is encoded as JSON (nil is sent as null);
// result must be nil (the result is discarded) or a non-nil pointer.
//
// Files in arg's FilePayload are sent with the request and are not closed
// by Call; more than MaxFiles is an error before anything is sent. Files that
// arrive with the reply are set in result's FilePayload and belong to the
// caller (they are closed if result is nil or has no FilePayload).
//
// An error reported by the server, including an unknown method, is returned
// as a *RemoteError and leaves the client usable. A failure to send the
// request or to read a valid reply breaks the client: this and every later
// call return an error.
func (c *Client) Call(method string, arg, result any) error {
	if method == "" {
		return errors.New("calling: empty method name")
	}
	var rv reflect.Value
	if result != nil {
		rv = reflect.ValueOf(result)
		if rv.Kind() != reflect.Pointer || rv.IsNil() {
			return fmt.Errorf("calling %s: result must be a non-nil pointer, not %T", method, result)
		}
	}
	files, err := filesOf(arg)
	if err != nil {
		return fmt.Errorf("calling %s: %w", method, err)
	}
	if len(files) > MaxFiles {
		return fmt.Errorf("calling %s: argument carries %d files, more than the maximum %d", method, len(files), MaxFiles)
	}
	argJSON, err := json.Marshal(arg)
	if err != nil {
		return fmt.Errorf("calling %s: encoding argument: %w", method, err)
	}
	data, err := json.Marshal(request{Method: method, Arg: argJSON})
	if err != nil {
		return fmt.Errorf("calling %s: encoding request: %w", method, err)
	}
	if len(data) > MaxMessageSize {
		return fmt.Errorf("calling %s: request is %d bytes, more than the maximum %d", method, len(data), MaxMessageSize)
	}
	fds, err := dupFiles(files)
	if err != nil {
		return fmt.Errorf("calling %s: %w", method, err)
	}
	defer func() { closeFDs(fds) }()

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("calling %s: %w", method, net.ErrClosed)
	}
	if c.broken != nil {
		return fmt.Errorf("calling %s: client is broken: %w", method, c.broken)
	}
	if err := writeFrame(c.conn, data, fds); err != nil {
		c.broken = fmt.Errorf("sending request: %w", err)
		return fmt.Errorf("calling %s: %w", method, c.broken)
	}
	closeFDs(fds)
	fds = nil

	data, rfds, err := readFrame(c.conn)
	if err != nil {
		c.broken = fmt.Errorf("reading reply: %w", err)
		return fmt.Errorf("calling %s: %w", method, c.broken)
	}
	rep, err := decodeReply(data)
	if err != nil {
		closeFDs(rfds)
		c.broken = fmt.Errorf("reading reply: %w", err)
		return fmt.Errorf("calling %s: %w", method, c.broken)
	}
	rfiles := newFiles(rfds)
	if !rep.Success {
		closeFiles(rfiles)
		return &RemoteError{Method: method, Message: rep.Err, Code: rep.Code}
	}
	if err := setResult(rv, rep.Result, rfiles); err != nil {
		closeFiles(rfiles)
		return fmt.Errorf("calling %s: %w", method, err)
	}
	return nil
}

// setResult decodes resultJSON into rv (a non-nil pointer, or invalid to
// discard the result) and sets its FilePayload to files. Files are closed
// only on success with a discarded result; on error the caller closes them.
func setResult(rv reflect.Value, resultJSON json.RawMessage, files []*os.File) error {
	if !rv.IsValid() {
		closeFiles(files)
		return nil
	}
	if len(resultJSON) > 0 {
		if err := json.Unmarshal(resultJSON, rv.Interface()); err != nil {
			return fmt.Errorf("decoding result: %w", err)
		}
	}
	field := payloadField(rv)
	if !field.IsValid() || !field.CanSet() {
		if len(files) > 0 {
			return fmt.Errorf("reply carries %d files but result type %s has no FilePayload", len(files), rv.Type())
		}
		return nil
	}
	field.Set(reflect.ValueOf(files))
	return nil
}
