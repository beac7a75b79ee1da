package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// consoleRelay is the terminal of a container run in the foreground by
// `runsc run` without --console-socket: it receives the pty master from
// the container and relays it to this process's stdio, as runc does.
type consoleRelay struct {
	// ours receives the master; theirs is given to the container.
	ours, theirs *os.File
	master       *os.File
	restore      func()
	// drained is closed once the pty's output has all been copied.
	drained chan struct{}
}

// newConsoleRelay makes the socket pair the master comes over.
func newConsoleRelay() (*consoleRelay, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket pair: %w", err)
	}
	return &consoleRelay{ours: os.NewFile(uintptr(fds[0]), "console"), theirs: os.NewFile(uintptr(fds[1]), "console-peer"), restore: func() {}}, nil
}

// receive takes the pty master sent by the container's init.
func (r *consoleRelay) receive() error {
	r.theirs.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(r.ours.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("receiving the pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("receiving the pty master: no descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fmt.Errorf("receiving the pty master: no descriptor")
	}
	r.master = os.NewFile(uintptr(fds[0]), "pty-master")
	return nil
}

// relay copies stdin to the pty and the pty to stdout, with stdin in raw
// mode if it is a terminal, following its window size.
func (r *consoleRelay) relay() {
	in := int(os.Stdin.Fd())
	if t, err := unix.IoctlGetTermios(in, unix.TCGETS); err == nil {
		saved := *t
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		unix.IoctlSetTermios(in, unix.TCSETS, &raw)
		r.restore = func() { unix.IoctlSetTermios(in, unix.TCSETS, &saved) }
		r.resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			for range winch {
				r.resize()
			}
		}()
	}
	go io.Copy(r.master, os.Stdin)
	r.drained = make(chan struct{})
	go func() {
		// Ends with EIO once every process holding the pty's slave
		// has exited.
		io.Copy(os.Stdout, r.master)
		close(r.drained)
	}()
}

// drain waits, briefly, for the output of exited processes to be copied.
func (r *consoleRelay) drain() {
	if r.drained == nil {
		return
	}
	select {
	case <-r.drained:
	case <-time.After(2 * time.Second):
	}
}

// resize copies this terminal's size to the pty.
func (r *consoleRelay) resize() {
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// close restores the terminal.
func (r *consoleRelay) close() {
	r.restore()
	r.ours.Close()
	r.theirs.Close()
	if r.master != nil {
		r.master.Close()
	}
}
