package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Terminal is a pseudo-terminal whose output is collected: a command run
// with Invocation.TTY set to Pts writes there, and the test types on Ptm.
type Terminal struct {
	// Ptm is the pty's controlling side; Pts its replica, the command's
	// terminal.
	Ptm, Pts *os.File
	out      lockedBuffer
	done     chan struct{}
}

// OpenTerminal opens a pseudo-terminal of rows x cols and starts
// collecting what is written to its replica side. Both sides are closed
// when the test ends, if Close has not closed them before.
func OpenTerminal(t testing.TB, rows, cols uint16) *Terminal {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening the pty's replica: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("TIOCSWINSZ: %v", err)
	}
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	term := &Terminal{Ptm: ptm, Pts: pts, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			term.out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return term
}

// Output returns what the terminal has shown so far.
func (term *Terminal) Output() string { return term.out.String() }

// Close closes the replica side, waits up to 5s for the output to drain
// (something may still hold the terminal: the output so far is enough),
// closes the controlling side and returns the output without carriage
// returns.
func (term *Terminal) Close() string {
	term.Pts.Close()
	select {
	case <-term.done:
	case <-time.After(5 * time.Second):
	}
	term.Ptm.Close()
	return strings.ReplaceAll(term.out.String(), "\r", "")
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
