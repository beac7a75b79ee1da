package urpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errServerStopped is returned by Serve and ServeConn after Stop.
var errServerStopped = errors.New("server stopped")

var errorType = reflect.TypeFor[error]()

// method is one registered method.
type method struct {
	name       string        // "Type.Method"
	fn         reflect.Value // method value bound to the registered object
	argType    reflect.Type  // struct type A of the *A argument
	resultType reflect.Type  // struct type R of the *R result
	argFiles   bool          // A has a FilePayload field
}

// Server serves calls to registered methods on Unix stream connections. Its
// methods are safe for concurrent use.
type Server struct {
	mu        sync.Mutex
	methods   map[string]*method
	listeners map[*net.UnixListener]struct{}
	conns     map[*net.UnixConn]struct{}
	stopped   bool
	wg        sync.WaitGroup // Serve loops and connection handlers
}

// NewServer returns a server with no methods registered.
func NewServer() *Server {
	return &Server{
		methods:   make(map[string]*method),
		listeners: make(map[*net.UnixListener]struct{}),
		conns:     make(map[*net.UnixConn]struct{}),
	}
}

// Register registers every exported method of obj that has the shape
//
//	func (T) Name(arg *A, result *R) error
//
// (A and R any struct types; pointers required) as "T.Name", where T is the
// name of obj's concrete type after indirecting pointers. The method set is
// that of obj as passed: pass a pointer to register pointer-receiver methods.
//
// Register checks all exported methods first and registers none of them if
// any has another shape, if any name is already registered, or if obj has no
// exported methods at all; the error names the offending methods.
func (s *Server) Register(obj any) error {
	if obj == nil {
		return errors.New("registering nil object")
	}
	v := reflect.ValueOf(obj)
	t := v.Type()
	base := t
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	typeName := base.Name()
	if typeName == "" {
		return fmt.Errorf("registering %s: type has no name", t)
	}
	if t.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Errorf("registering %s: nil pointer", typeName)
	}

	var bad []string
	methods := make(map[string]*method)
	for i := range t.NumMethod() {
		m := t.Method(i)
		if !m.IsExported() {
			continue
		}
		name := typeName + "." + m.Name
		argType, resultType, err := checkMethodShape(m.Type)
		if err != nil {
			bad = append(bad, fmt.Sprintf("method %s: %v", name, err))
			continue
		}
		methods[name] = &method{
			name:       name,
			fn:         v.Method(i),
			argType:    argType,
			resultType: resultType,
			argFiles:   filePayloadIndex(argType) != nil,
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("registering %s: %s", typeName, strings.Join(bad, "; "))
	}
	if len(methods) == 0 {
		return fmt.Errorf("registering %s: type has no exported methods", typeName)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var dups []string
	for name := range methods {
		if _, ok := s.methods[name]; ok {
			dups = append(dups, name)
		}
	}
	if len(dups) > 0 {
		return fmt.Errorf("registering %s: method %s already registered", typeName, strings.Join(dups, ", "))
	}
	for name, m := range methods {
		s.methods[name] = m
	}
	return nil
}

// checkMethodShape checks that mt, the type of a method including its
// receiver, is func(T, *A, *R) error with A and R struct types, and returns A
// and R.
func checkMethodShape(mt reflect.Type) (argType, resultType reflect.Type, err error) {
	if mt.NumIn() != 3 {
		return nil, nil, fmt.Errorf("has %d parameters, want 2 (arg *A, result *R)", mt.NumIn()-1)
	}
	if mt.IsVariadic() {
		return nil, nil, errors.New("is variadic")
	}
	for i, what := range []string{"argument", "result"} {
		p := mt.In(i + 1)
		if p.Kind() != reflect.Pointer || p.Elem().Kind() != reflect.Struct {
			return nil, nil, fmt.Errorf("%s type %s is not a pointer to a struct", what, p)
		}
	}
	if mt.NumOut() != 1 || mt.Out(0) != errorType {
		return nil, nil, fmt.Errorf("must return exactly error, returns %s", describeResults(mt))
	}
	return mt.In(1).Elem(), mt.In(2).Elem(), nil
}

// describeResults formats the result types of function type t.
func describeResults(t reflect.Type) string {
	out := make([]string, t.NumOut())
	for i := range out {
		out[i] = t.Out(i).String()
	}
	return "(" + strings.Join(out, ", ") + ")"
}

// Serve accepts connections on l until l is closed (or Stop is called),
// handling each in its own goroutine as ServeConn does. It returns nil once
// l is closed and an error if accepting fails otherwise; l is closed when
// Serve returns. Per-connection errors are not reported.
func (s *Server) Serve(l *net.UnixListener) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		l.Close()
		return errServerStopped
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		l.Close()
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		s.wg.Done()
	}()

	var backoff time.Duration
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if isTemporaryAcceptError(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accepting connection: %w", err)
		}
		backoff = 0
		if !s.addConn(conn) {
			conn.Close()
			return nil
		}
		go func() {
			defer s.removeConn(conn)
			_ = s.handleConn(conn)
		}()
	}
}

// isTemporaryAcceptError reports whether an accept error is worth retrying.
func isTemporaryAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ServeConn handles calls on conn until the peer closes it or an error
// occurs, then closes conn. It returns nil at a clean end of stream (or when
// the server was stopped) and an error describing a malformed frame or
// envelope, or a failed read or write. Calls on one connection are handled
// one at a time, in order.
func (s *Server) ServeConn(conn *net.UnixConn) error {
	if !s.addConn(conn) {
		conn.Close()
		return errServerStopped
	}
	defer s.removeConn(conn)
	err := s.handleConn(conn)
	if err != nil && errors.Is(err, net.ErrClosed) && s.isStopped() {
		return nil
	}
	return err
}

// Stop closes the listeners passed to Serve and all connections being
// served, then waits for their handlers to return (including methods that
// are running). After Stop, Serve and ServeConn fail immediately.
func (s *Server) Stop() {
	s.mu.Lock()
	s.stopped = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// addConn tracks conn for Stop, or reports false if the server is stopped.
func (s *Server) addConn(conn *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

// removeConn closes conn and stops tracking it.
func (s *Server) removeConn(conn *net.UnixConn) {
	conn.Close()
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.wg.Done()
}

// handleConn is the request loop of one connection.
func (s *Server) handleConn(conn *net.UnixConn) error {
	for {
		data, fds, err := readFrame(conn)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading request: %w", err)
		}
		req, err := decodeRequest(data)
		if err != nil {
			closeFDs(fds)
			return err
		}
		out, outFDs := s.dispatch(req, newFiles(fds))
		err = writeFrame(conn, out, outFDs)
		closeFDs(outFDs)
		if err != nil {
			return fmt.Errorf("writing reply to %s: %w", req.Method, err)
		}
	}
}

// dispatch runs one call and returns the encoded reply with the descriptors
// to send with it, which the caller must close after sending. It closes the
// received files, and the result's files, before returning, so the peer
// never sees the reply before they are closed.
func (s *Server) dispatch(req *request, files []*os.File) ([]byte, []int) {
	defer closeFiles(files)
	s.mu.Lock()
	m := s.methods[req.Method]
	s.mu.Unlock()
	if m == nil {
		return errorReply(fmt.Sprintf("unknown method %q", req.Method)), nil
	}
	if len(files) > 0 && !m.argFiles {
		return errorReply(fmt.Sprintf("method %s does not accept files, %d received", m.name, len(files))), nil
	}

	arg := reflect.New(m.argType)
	if len(req.Arg) > 0 {
		if err := json.Unmarshal(req.Arg, arg.Interface()); err != nil {
			return errorReply(fmt.Sprintf("decoding argument of %s: %v", m.name, err)), nil
		}
	}
	if m.argFiles {
		// Hand the method its own slice, so that what it does to it does
		// not change which files are closed.
		payloadField(arg).Set(reflect.ValueOf(append([]*os.File(nil), files...)))
	}

	result := reflect.New(m.resultType)
	callErr := m.call(arg, result)
	var resultFiles []*os.File
	if f := payloadField(result); f.IsValid() {
		resultFiles = f.Interface().([]*os.File)
		f.Set(reflect.Zero(f.Type()))
	}
	defer closeFiles(resultFiles)
	if callErr != nil {
		var coded CodedError
		if errors.As(callErr, &coded) {
			return codedErrorReply(callErr.Error(), coded.ErrorCode()), nil
		}
		return errorReply(callErr.Error()), nil
	}
	if len(resultFiles) > MaxFiles {
		return errorReply(fmt.Sprintf("result of %s carries %d files, more than the maximum %d", m.name, len(resultFiles), MaxFiles)), nil
	}
	for i, f := range resultFiles {
		if f == nil {
			return errorReply(fmt.Sprintf("result of %s: file %d is nil", m.name, i)), nil
		}
	}
	resultJSON, err := json.Marshal(result.Interface())
	if err != nil {
		return errorReply(fmt.Sprintf("encoding result of %s: %v", m.name, err)), nil
	}
	out, err := json.Marshal(reply{Success: true, Result: resultJSON})
	if err != nil {
		return errorReply(fmt.Sprintf("encoding reply of %s: %v", m.name, err)), nil
	}
	if len(out) > MaxMessageSize {
		return errorReply(fmt.Sprintf("reply of %s is %d bytes, more than the maximum %d", m.name, len(out), MaxMessageSize)), nil
	}
	outFDs, err := dupFiles(resultFiles)
	if err != nil {
		return errorReply(fmt.Sprintf("sending result files of %s: %v", m.name, err)), nil
	}
	return out, outFDs
}

// call runs the method, turning a panic into an error.
func (m *method) call(arg, result reflect.Value) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("method %s panicked: %v", m.name, r)
		}
	}()
	out := m.fn.Call([]reflect.Value{arg, result})
	if e, _ := out[0].Interface().(error); e != nil {
		return e
	}
	return nil
}

// errorReply encodes a failed reply carrying msg.
func errorReply(msg string) []byte { return codedErrorReply(msg, "") }

// codedErrorReply encodes a failed reply carrying msg and code.
func codedErrorReply(msg, code string) []byte {
	out, err := json.Marshal(reply{Success: false, Err: msg, Code: code})
	if err != nil {
		// Marshalling a struct of a bool and strings cannot fail.
		panic(fmt.Sprintf("encoding error reply: %v", err))
	}
	if len(out) > MaxMessageSize {
		return errorReply("error message too long")
	}
	return out
}
