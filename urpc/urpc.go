// Package urpc provides a small RPC mechanism over Unix domain stream sockets
// that can pass open file descriptors alongside each message.
//
// A Server exposes the exported methods of registered objects; a Client
// calls them by name ("Type.Method") with JSON-encodable argument and result
// structs. Argument and result structs that embed (or have a field of type)
// FilePayload carry open files along with the message.
//
// # Wire format
//
// Every message, request or reply, is one frame:
//
//	+---------------------------+---------------------------+-------------+
//	| JSON length (uint32, LE)  | file count (uint32, LE)   | JSON bytes  |
//	+---------------------------+---------------------------+-------------+
//	  4 bytes                     4 bytes                     length bytes
//
// The file descriptors of the frame travel as a single SCM_RIGHTS control
// message attached to the first byte of the frame (the sender attaches them to
// the first sendmsg call only; short writes are continued without control
// data). The receiver reads the header with recvmsg, using a control buffer
// large enough for MaxFiles descriptors and MSG_CMSG_CLOEXEC, then reads
// exactly the JSON length, never beyond the frame. A frame is rejected if the
// control data was truncated (MSG_CTRUNC), if the JSON length exceeds
// MaxMessageSize, if the file count exceeds MaxFiles, if the number of
// descriptors received differs from the header's count, or if the stream ends
// inside the frame. Descriptors received with a rejected frame are closed.
//
// A request's JSON is an object
//
//	{"method": "Type.Method", "arg": <argument JSON>}
//
// and a reply's JSON is an object
//
//	{"success": true|false, "err": "<error text>", "result": <result JSON>}
//
// Unknown envelope fields are ignored for forward compatibility, and so are
// unknown fields of argument and result structs.
//
// # File ownership
//
// Files sent by Client.Call with the argument are duplicated for sending and
// remain owned by the caller. On the server, the files received for a call
// are closed after the method returns, including ones the method did not
// use: a method that wants to keep a file must duplicate it (for example with
// unix.Dup or by sending it through another mechanism). Files a method puts
// in its result's FilePayload pass to urpc, which sends them with the reply
// and then closes them. Files received by Client.Call with a reply belong to
// the caller.
//
// # Errors
//
// A malformed frame or envelope closes the connection it arrived on (a
// Client becomes broken; Server.ServeConn returns an error) without affecting
// other connections. Errors that concern a single call (unknown method,
// undecodable argument, a method error or panic) are sent back as a failed
// reply and surface at the client as *RemoteError; the connection stays
// usable.
package urpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"

	"golang.org/x/sys/unix"
)

const (
	// MaxFiles is the maximum number of files a single message may carry.
	MaxFiles = 128

	// MaxMessageSize is the maximum length in bytes of a message's JSON.
	MaxMessageSize = 16 << 20

	// headerSize is the length of a frame header: JSON length and file count.
	headerSize = 8
)

// FilePayload is embedded in argument and result structs whose files travel
// with the message as SCM_RIGHTS, in slice order. It may also be a named,
// exported field of the struct; only the first such field is used. Files is
// not part of the JSON encoding.
type FilePayload struct {
	// Files are the open files carried with the message.
	Files []*os.File `json:"-"`
}

// RemoteError is the error returned by Client.Call when the server replied
// that the call failed: the method is unknown, its argument could not be
// decoded, or the method returned an error or panicked.
type RemoteError struct {
	// Method is the name of the method that was called.
	Method string
	// Message is the error text sent by the server.
	Message string
	// Code is the ErrorCode of the method's error, if it has one: a
	// stable name callers test instead of the message.
	Code string
}

// CodedError is an error that carries a stable code to the client, as
// RemoteError.Code.
type CodedError interface {
	error
	ErrorCode() string
}

// HasCode reports whether err is a RemoteError with that code.
func HasCode(err error, code string) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Code == code
}

// Error implements error.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("remote call %s: %s", e.Method, e.Message)
}

// request is the JSON envelope of a call.
type request struct {
	Method string          `json:"method"`
	Arg    json.RawMessage `json:"arg,omitempty"`
}

// reply is the JSON envelope of a call's reply.
type reply struct {
	Success bool            `json:"success"`
	Err     string          `json:"err"`
	Code    string          `json:"code,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
}

// decodeRequest decodes and validates a request envelope: data must be a
// single JSON object with a non-empty string "method". The argument is kept
// raw; it is decoded once the method, and so its argument type, is known.
func decodeRequest(data []byte) (*request, error) {
	var raw struct {
		Method *string          `json:"method"`
		Arg    *json.RawMessage `json:"arg"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decoding request envelope: %w", err)
	}
	if raw.Method == nil {
		return nil, errors.New("decoding request envelope: missing method")
	}
	if *raw.Method == "" {
		return nil, errors.New("decoding request envelope: empty method")
	}
	req := &request{Method: *raw.Method}
	if raw.Arg != nil {
		req.Arg = *raw.Arg
	}
	return req, nil
}

// decodeReply decodes and validates a reply envelope: data must be a single
// JSON object with a boolean "success".
func decodeReply(data []byte) (*reply, error) {
	var raw struct {
		Success *bool            `json:"success"`
		Err     *string          `json:"err"`
		Code    *string          `json:"code"`
		Result  *json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decoding reply envelope: %w", err)
	}
	if raw.Success == nil {
		return nil, errors.New("decoding reply envelope: missing success")
	}
	rep := &reply{Success: *raw.Success}
	if raw.Err != nil {
		rep.Err = *raw.Err
	}
	if raw.Code != nil {
		rep.Code = *raw.Code
	}
	if raw.Result != nil {
		rep.Result = *raw.Result
	}
	return rep, nil
}

var filePayloadType = reflect.TypeFor[FilePayload]()

// filePayloadIndex returns the index of the first exported field of type
// FilePayload in struct type t (anonymous or named), or nil if t is not a
// struct or has no such field.
func filePayloadIndex(t reflect.Type) []int {
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == filePayloadType && f.IsExported() {
			return f.Index
		}
	}
	return nil
}

// payloadField returns the FilePayload.Files field of v, which must be
// addressable for the result to be settable, or an invalid Value if v (after
// indirecting pointers) is not a struct with a FilePayload field.
func payloadField(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	idx := filePayloadIndex(v.Type())
	if idx == nil {
		return reflect.Value{}
	}
	return v.FieldByIndex(idx).Field(0)
}

// filesOf returns the files of v's FilePayload, if any. It fails if one of
// them is nil.
func filesOf(v any) ([]*os.File, error) {
	if v == nil {
		return nil, nil
	}
	f := payloadField(reflect.ValueOf(v))
	if !f.IsValid() {
		return nil, nil
	}
	files := f.Interface().([]*os.File)
	for i, file := range files {
		if file == nil {
			return nil, fmt.Errorf("file %d of payload is nil", i)
		}
	}
	return files, nil
}

// dupFiles duplicates the descriptors of files (close-on-exec), so that
// they stay valid while sending regardless of what happens to the files. It
// does not change the files' blocking mode, unlike os.File.Fd. On error no
// descriptor is left open.
func dupFiles(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	for i, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("accessing file %d (%s): %w", i, f.Name(), err)
		}
		var nfd int
		var dupErr error
		err = rc.Control(func(fd uintptr) {
			nfd, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		})
		if err == nil {
			err = dupErr
		}
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("duplicating file %d (%s): %w", i, f.Name(), err)
		}
		fds = append(fds, nfd)
	}
	return fds, nil
}

// newFiles wraps received descriptors in files named "urpc-fd-N".
func newFiles(fds []int) []*os.File {
	if len(fds) == 0 {
		return nil
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("urpc-fd-%d", i))
	}
	return files
}

// closeFDs closes raw descriptors, ignoring errors.
func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// closeFiles closes files, ignoring errors (some may already be closed).
func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
