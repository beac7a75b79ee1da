package urpc

import (
	"errors"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCalls(t *testing.T) {
	srv, _ := newTestServer(t)
	c := dial(t, listen(t, srv))

	t.Run("RoundTrip", func(t *testing.T) {
		var r AddResult
		if err := c.Call("Arith.Add", &AddArgs{A: 2, B: 40}, &r); err != nil {
			t.Fatalf("Call: %v", err)
		}
		if r.Sum != 42 {
			t.Errorf("Sum = %d, want 42", r.Sum)
		}
	})

	t.Run("ArgByValueAndNilResult", func(t *testing.T) {
		if err := c.Call("Arith.Add", AddArgs{A: 1, B: 1}, nil); err != nil {
			t.Fatalf("Call: %v", err)
		}
	})

	t.Run("NilArg", func(t *testing.T) {
		r := AddResult{Sum: -1}
		if err := c.Call("Arith.Add", nil, &r); err != nil || r.Sum != 0 {
			t.Fatalf("Call with nil arg: sum %d, err %v", r.Sum, err)
		}
	})

	t.Run("UnknownMethodThenUsable", func(t *testing.T) {
		err := c.Call("Arith.Nope", &AddArgs{}, &AddResult{})
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("Call: got %v (%T), want *RemoteError", err, err)
		}
		if re.Method != "Arith.Nope" || re.Message != `unknown method "Arith.Nope"` {
			t.Errorf("got %+v", re)
		}
		var r AddResult
		if err := c.Call("Arith.Add", &AddArgs{A: 3, B: 4}, &r); err != nil || r.Sum != 7 {
			t.Fatalf("Call after unknown method: sum %d, err %v", r.Sum, err)
		}
	})

	t.Run("MethodError", func(t *testing.T) {
		err := c.Call("Arith.Fail", &AddArgs{A: 1, B: 2}, &AddResult{})
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("Call: got %v (%T), want *RemoteError", err, err)
		}
		if re.Method != "Arith.Fail" || re.Message != "cannot add 1 and 2" {
			t.Errorf("got %+v", re)
		}
		if !strings.Contains(err.Error(), "Arith.Fail") {
			t.Errorf("error %q does not name the method", err)
		}
	})

	t.Run("MethodPanics", func(t *testing.T) {
		err := c.Call("Arith.Panic", &AddArgs{}, &AddResult{})
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("Call: got %v (%T), want *RemoteError", err, err)
		}
		if want := "method Arith.Panic panicked: kaboom"; re.Message != want {
			t.Errorf("Message = %q, want %q", re.Message, want)
		}
		var r AddResult
		if err := c.Call("Arith.Add", &AddArgs{A: 1, B: 2}, &r); err != nil || r.Sum != 3 {
			t.Fatalf("Call after panic: sum %d, err %v", r.Sum, err)
		}
	})

	t.Run("BadArgumentType", func(t *testing.T) {
		err := c.Call("Arith.Add", map[string]string{"A": "not a number"}, &AddResult{})
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "Arith.Add") {
			t.Fatalf("Call: got %v, want a *RemoteError naming Arith.Add", err)
		}
	})

	t.Run("UnknownArgumentFieldsIgnored", func(t *testing.T) {
		var r AddResult
		arg := map[string]any{"A": 5, "B": 6, "Future": true}
		if err := c.Call("Arith.Add", arg, &r); err != nil || r.Sum != 11 {
			t.Fatalf("Call: sum %d, err %v", r.Sum, err)
		}
	})

	t.Run("BadResultPointer", func(t *testing.T) {
		if err := c.Call("Arith.Add", &AddArgs{}, AddResult{}); err == nil {
			t.Fatal("Call with non-pointer result succeeded")
		}
	})
}

func TestClientClosed(t *testing.T) {
	srv, _ := newTestServer(t)
	c := dial(t, listen(t, srv))
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Call("Arith.Add", &AddArgs{}, &AddResult{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Call after Close: got %v, want net.ErrClosed", err)
	}
}

func TestClientBrokenByInvalidReply(t *testing.T) {
	conn, raw := rawPair(t)
	c := NewClient(conn)
	defer c.Close()
	go func() {
		// Read the request, then answer with garbage.
		buf := make([]byte, 4096)
		unix.Read(raw, buf)
		unix.Write(raw, validFrame(`{"nonsense"`))
	}()
	if err := c.Call("Arith.Add", &AddArgs{}, &AddResult{}); err == nil {
		t.Fatal("Call with invalid reply succeeded")
	}
	err := c.Call("Arith.Add", &AddArgs{}, &AddResult{})
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("second Call: got %v, want a broken-client error", err)
	}
}

// NonPtrArgSvc has a method taking its argument by value.
type NonPtrArgSvc struct{}

// NonPtr takes its argument by value.
func (NonPtrArgSvc) NonPtr(a AddArgs, r *AddResult) error { return nil }

// WrongReturnSvc has a method returning int.
type WrongReturnSvc struct{}

// WrongRet returns int.
func (WrongReturnSvc) WrongRet(a *AddArgs, r *AddResult) int { return 0 }

// ThreeArgSvc has a method with three parameters.
type ThreeArgSvc struct{}

// ThreeArgs has three parameters.
func (ThreeArgSvc) ThreeArgs(a, b *AddArgs, r *AddResult) error { return nil }

// NonStructSvc has a method taking a pointer to int.
type NonStructSvc struct{}

// IntArg takes a pointer to int.
func (NonStructSvc) IntArg(a *int, r *AddResult) error { return nil }

// MixedSvc has one good and one wrongly shaped method.
type MixedSvc struct{}

// Good is well shaped.
func (MixedSvc) Good(a *AddArgs, r *AddResult) error { return nil }

// OneArg lacks a result parameter.
func (MixedSvc) OneArg(a *AddArgs) error { return nil }

// EmptySvc has no methods.
type EmptySvc struct{}

func TestRegister(t *testing.T) {
	cases := []struct {
		name string
		obj  any
		want string
	}{
		{"NonPointerArg", NonPtrArgSvc{}, "NonPtrArgSvc.NonPtr"},
		{"WrongReturn", WrongReturnSvc{}, "WrongReturnSvc.WrongRet"},
		{"ThreeArgs", ThreeArgSvc{}, "ThreeArgSvc.ThreeArgs"},
		{"NonStructArg", NonStructSvc{}, "NonStructSvc.IntArg"},
		{"MixedRefusedWhole", MixedSvc{}, "MixedSvc.OneArg"},
		{"NoMethods", EmptySvc{}, "EmptySvc"},
		{"Nil", nil, "nil"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := NewServer()
			defer srv.Stop()
			err := srv.Register(tc.obj)
			if err == nil {
				t.Fatal("Register succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}

	t.Run("MixedRegistersNothing", func(t *testing.T) {
		srv := NewServer()
		if err := srv.Register(MixedSvc{}); err == nil {
			t.Fatal("Register succeeded")
		}
		c := dial(t, listen(t, srv))
		t.Cleanup(srv.Stop)
		err := c.Call("MixedSvc.Good", &AddArgs{}, &AddResult{})
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "unknown method") {
			t.Fatalf("Call: got %v, want unknown method", err)
		}
	})

	t.Run("Duplicate", func(t *testing.T) {
		srv := NewServer()
		defer srv.Stop()
		if err := srv.Register(Arith{}); err != nil {
			t.Fatalf("first Register: %v", err)
		}
		err := srv.Register(&Arith{})
		if err == nil {
			t.Fatal("duplicate Register succeeded")
		}
		if !strings.Contains(err.Error(), "Arith.Add") {
			t.Errorf("error %q does not name Arith.Add", err)
		}
	})

	t.Run("PointerReceiverName", func(t *testing.T) {
		srv := NewServer()
		defer srv.Stop()
		if err := srv.Register(&FileSvc{}); err != nil {
			t.Fatalf("Register: %v", err)
		}
		if _, ok := srv.methods["FileSvc.Cat"]; !ok {
			t.Errorf("FileSvc.Cat not registered; have %v", srv.methods)
		}
	})
}

func TestStop(t *testing.T) {
	srv, _ := newTestServer(t)
	path := listen(t, srv)
	c := dial(t, path)
	var r AddResult
	if err := c.Call("Arith.Add", &AddArgs{A: 1}, &r); err != nil {
		t.Fatalf("Call: %v", err)
	}
	srv.Stop()
	if err := c.Call("Arith.Add", &AddArgs{A: 1}, &r); err == nil {
		t.Error("Call after Stop succeeded")
	}
	if _, err := Dial(path); err == nil {
		t.Error("Dial after Stop succeeded")
	}
	conn, _ := rawPair(t)
	if err := srv.ServeConn(conn); err == nil {
		t.Error("ServeConn after Stop succeeded")
	}
}
