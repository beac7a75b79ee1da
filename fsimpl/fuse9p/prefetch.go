package fuse9p

import (
	"syscall"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// A cold walk of a tree (find, ls -R, du) reads directories one after
// the other and waits for each listing's round trips. For a tree exclusive
// to this mount, the listing of a directory made from its parent's listing
// is therefore read ahead, in the background, a few at a time: by the
// time the walker opens it, it is usually there. Only listings are read
// ahead, not their subdirectories' (those follow once the walker actually
// reads the directory), so a plain ls of a directory costs one listing of
// each of its subdirectories at most.

// prefetchSlots bounds the listings read ahead at once, sandbox-wide.
var prefetchSlots = make(chan struct{}, 4)

// prefetchMaxAge is how long a listing read ahead may wait to be used;
// after that it is read again, as the kernel would after its own cache
// expired.
const prefetchMaxAge = 2 * time.Second

// listing is a directory listing read ahead.
type listing struct {
	done    chan struct{}
	started bool
	at      time.Time
	ents    []p9.DirentAttr
	errno   syscall.Errno
}

// readAhead starts reading the node's listing in the background.
func (n *node) readAhead() {
	l := &listing{done: make(chan struct{})}
	n.mu.Lock()
	if n.ahead != nil || n.forgotten {
		n.mu.Unlock()
		return
	}
	n.ahead = l
	n.mu.Unlock()
	go func() {
		prefetchSlots <- struct{}{}
		defer func() { <-prefetchSlots }()
		n.mu.Lock()
		if n.ahead != l {
			// Taken before it started: the taker lists itself.
			n.mu.Unlock()
			return
		}
		l.started = true
		n.mu.Unlock()
		l.ents, l.errno = n.list()
		l.at = time.Now()
		close(l.done)
	}()
}

// takeListing returns the listing read ahead if one was started and is
// fresh, else reads it now.
func (n *node) takeListing() ([]p9.DirentAttr, syscall.Errno) {
	n.mu.Lock()
	l := n.ahead
	n.ahead = nil
	n.mu.Unlock()
	if l != nil && l.started {
		<-l.done
		if l.errno == 0 && time.Since(l.at) < prefetchMaxAge {
			return l.ents, 0
		}
	}
	return n.list()
}
