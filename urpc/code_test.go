package urpc

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
)

// codedErr is an error with a code, as a service returns one.
type codedErr struct{ code string }

func (e *codedErr) Error() string     { return "coded failure" }
func (e *codedErr) ErrorCode() string { return e.code }

// codeService fails with or without a code.
type codeService struct{}

// Args name the code to fail with; empty fails without one.
type codeArgs struct{ Code string }

func (codeService) Fail(a *codeArgs, _ *struct{}) error {
	if a.Code == "" {
		return errors.New("plain failure")
	}
	// Wrapped: the code is found through the chain.
	return fmt.Errorf("context: %w", &codedErr{a.Code})
}

func TestErrorCodeReachesClient(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(codeService{}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Stop()
	c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Call("codeService.Fail", &codeArgs{Code: "not-here"}, &struct{}{})
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "not-here" || re.Message != "context: coded failure" {
		t.Fatalf("coded error arrived as %#v", err)
	}
	if !HasCode(err, "not-here") || HasCode(err, "other") {
		t.Fatal("HasCode does not match the code")
	}
	err = c.Call("codeService.Fail", &codeArgs{}, &struct{}{})
	if !errors.As(err, &re) || re.Code != "" || HasCode(err, "") == false {
		t.Fatalf("plain error arrived as %#v", err)
	}
	if HasCode(errors.New("local"), "") {
		t.Fatal("HasCode matched an error that is not remote")
	}
}
