package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runsc/runsc/boot"
	"golang.org/x/sys/unix"
)

// lockedByOther reports whether another open of dir would have to wait
// for its flock: the lock is held.
func lockedByOther(t *testing.T, dir string) bool {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		unix.Flock(fd, unix.LOCK_UN)
		return false
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("flock: %v", err)
	}
	return true
}

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	fd, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !lockedByOther(t, dir) {
		t.Fatal("lockDir did not take the lock")
	}
	unix.Close(fd)
	if lockedByOther(t, dir) {
		t.Fatal("lock still held after closing its descriptor")
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := lockDir(filepath.Join(dir, "missing")); !errors.Is(err, unix.ENOENT) {
			t.Fatalf("lockDir of a missing directory: %v, want ENOENT", err)
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		f := filepath.Join(dir, "file")
		os.WriteFile(f, nil, 0o600)
		if _, err := lockDir(f); !errors.Is(err, unix.ENOTDIR) {
			t.Fatalf("lockDir of a file: %v, want ENOTDIR", err)
		}
	})
}

func TestLoad(t *testing.T) {
	root := t.TempDir()
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	want := State{
		ID: "box", Bundle: "/bundle", Annotations: map[string]string{"k": "v"}, Created: created,
		Status: boot.StatusRunning, InitPID: 123, InitStart: 456, Sandbox: Proc{PID: 7, Start: 8},
		Gofer: Proc{PID: 9, Start: 10}, Overlay: boot.OverlayMemory, SandboxID: "box",
	}
	writeState(t, root, want)
	os.Mkdir(filepath.Join(root, "half-made"), 0o700) // a create killed before its state
	writeState(t, root, State{ID: "corrupt"})
	os.WriteFile(filepath.Join(root, "corrupt", stateFile), []byte("{not json"), 0o600)

	t.Run("state decoded and locked", func(t *testing.T) {
		c, err := Load(root, "box")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.State, want) {
			t.Errorf("state %+v\nwant  %+v", c.State, want)
		}
		if c.Init() != (Proc{PID: 123, Start: 456}) {
			t.Errorf("Init() = %+v", c.Init())
		}
		if !lockedByOther(t, filepath.Join(root, "box")) {
			t.Error("Load did not lock the container")
		}
		c.Close()
		c.Close() // twice is harmless
		if lockedByOther(t, filepath.Join(root, "box")) {
			t.Error("Close did not release the lock")
		}
	})
	t.Run("waits for the lock", func(t *testing.T) {
		c, err := Load(root, "box")
		if err != nil {
			t.Fatal(err)
		}
		loaded := make(chan *Container)
		go func() {
			c2, err := Load(root, "box")
			if err != nil {
				t.Error(err)
			}
			loaded <- c2
		}()
		// Whatever the other Load has done by now, it cannot hold the
		// lock: once it returns, it must.
		if !lockedByOther(t, filepath.Join(root, "box")) {
			t.Fatal("lock released while held")
		}
		c.Close()
		c2 := <-loaded
		if c2 == nil {
			return
		}
		if !lockedByOther(t, filepath.Join(root, "box")) {
			t.Error("second Load returned without the lock")
		}
		c2.Close()
	})
	for _, c := range []struct {
		name     string
		id       string
		notExist bool
		errText  string
	}{
		{name: "missing", id: "nobody", notExist: true, errText: `container "nobody" does not exist`},
		{name: "no state file", id: "half-made", notExist: true, errText: "half-made"},
		{name: "corrupt state", id: "corrupt", errText: "decoding state"},
		{name: "invalid ID", id: "../box", errText: "invalid container ID"},
		{name: "empty ID", id: "", errText: "invalid container ID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Load(root, c.id)
			if err == nil {
				got.Close()
				t.Fatalf("Load(%q) succeeded", c.id)
			}
			if errors.Is(err, ErrNotExist) != c.notExist {
				t.Errorf("errors.Is(%v, ErrNotExist) = %v, want %v", err, !c.notExist, c.notExist)
			}
			if !strings.Contains(err.Error(), c.errText) {
				t.Errorf("error %q does not mention %q", err, c.errText)
			}
		})
	}
	t.Run("failed loads leave no lock", func(t *testing.T) {
		for _, id := range []string{"half-made", "corrupt"} {
			if lockedByOther(t, filepath.Join(root, id)) {
				t.Errorf("%s still locked after a failed Load", id)
			}
		}
	})
	t.Run("missing root", func(t *testing.T) {
		if _, err := Load(filepath.Join(root, "no-root"), "box"); !errors.Is(err, ErrNotExist) {
			t.Fatalf("Load under a missing root: %v, want ErrNotExist", err)
		}
	})
}

func TestSaveRoundTrip(t *testing.T) {
	root := t.TempDir()
	writeState(t, root, State{ID: "box", SandboxID: "box"})
	c, err := Load(root, "box")
	if err != nil {
		t.Fatal(err)
	}
	c.Status = boot.StatusStopped
	c.InitPID, c.InitStart = 99, 100
	c.Created = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	want := c.State
	c.Close()
	again, err := Load(root, "box")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !reflect.DeepEqual(again.State, want) {
		t.Fatalf("reloaded %+v, saved %+v", again.State, want)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "box"))
	if len(ents) != 1 || ents[0].Name() != stateFile {
		t.Fatalf("state directory holds %v, want only %s", ents, stateFile)
	}
}

func TestIsSubcontainer(t *testing.T) {
	for _, c := range []struct {
		id, sandbox string
		want        bool
	}{
		{"box", "", false},
		{"box", "box", false},
		{"member", "pod", true},
	} {
		t.Run(c.id+"-in-"+c.sandbox, func(t *testing.T) {
			ct := &Container{State: State{ID: c.id, SandboxID: c.sandbox}}
			if got := ct.IsSubcontainer(); got != c.want {
				t.Fatalf("IsSubcontainer = %v, want %v", got, c.want)
			}
		})
	}
}

func TestList(t *testing.T) {
	t.Run("missing root", func(t *testing.T) {
		ids, err := List(filepath.Join(t.TempDir(), "none"))
		if err != nil || ids != nil {
			t.Fatalf("List = %v, %v; want nothing", ids, err)
		}
	})
	t.Run("root is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		if _, err := List(f); err == nil {
			t.Fatal("List of a file succeeded")
		}
	})
	root := t.TempDir()
	for _, id := range []string{"b", "a", "x.y_z-1+2"} {
		writeState(t, root, State{ID: id})
	}
	os.Mkdir(filepath.Join(root, "half-made"), 0o700)
	os.Mkdir(filepath.Join(root, "bad id"), 0o700)
	os.WriteFile(filepath.Join(root, "bad id", stateFile), []byte("{}"), 0o600)
	os.WriteFile(filepath.Join(root, "file"), nil, 0o600)
	os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "link"))
	ids, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "x.y_z-1+2"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("List = %q, want %q", ids, want)
	}
}

func TestRemoveStale(t *testing.T) {
	root := t.TempDir()
	writeState(t, root, State{ID: "live"})
	os.MkdirAll(filepath.Join(root, "half-made", "leftover"), 0o700)
	for _, c := range []struct {
		name    string
		id      string
		errText string
		gone    bool
	}{
		{name: "no such container", id: "nobody", gone: true},
		{name: "half-made create removed", id: "half-made", gone: true},
		{name: "real container kept", id: "live", errText: `container "live" exists`},
		{name: "invalid ID", id: "..", errText: "invalid container ID"},
		{name: "ID with a slash", id: "live/..", errText: "invalid container ID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := RemoveStale(root, c.id)
			if c.errText != "" {
				if err == nil || !strings.Contains(err.Error(), c.errText) {
					t.Fatalf("RemoveStale(%q): %v, want an error with %q", c.id, err, c.errText)
				}
			} else if err != nil {
				t.Fatalf("RemoveStale(%q): %v", c.id, err)
			}
			if c.gone {
				if _, err := os.Lstat(filepath.Join(root, c.id)); !os.IsNotExist(err) {
					t.Fatalf("%s still there: %v", c.id, err)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "live", stateFile)); err != nil {
		t.Fatalf("the live container's state was touched: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("root removed: %v", err)
	}
}

func TestErrNotExist(t *testing.T) {
	e := &notExistError{id: "box"}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"itself", e, true},
		{"wrapped", fmt.Errorf("state: %w", e), true},
		{"twice wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", e)), true},
		{"sentinel", ErrNotExist, true},
		{"other", errors.New("container \"box\" does not exist"), false},
		{"os.ErrNotExist", os.ErrNotExist, false},
		{"nil", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := errors.Is(c.err, ErrNotExist); got != c.want {
				t.Fatalf("errors.Is(%v, ErrNotExist) = %v, want %v", c.err, got, c.want)
			}
		})
	}
	if msg := e.Error(); msg != `container "box" does not exist` {
		t.Errorf("message %q", msg)
	}
}
