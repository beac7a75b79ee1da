package fuse9p

import (
	"sync"
	"sync/atomic"
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
//
// What is read ahead is bounded sandbox-wide: listings queued, entries
// held, and how long an unused listing is kept.

const (
	// prefetchWorkers bounds the listings read at once.
	prefetchWorkers = 4
	// maxAheadQueued bounds the listings waiting to be read.
	maxAheadQueued = 256
	// maxAheadEntries bounds the entries held by listings read ahead
	// and not yet used (about 250 bytes each).
	maxAheadEntries = 1 << 16
	// prefetchMaxAge is how long a listing read ahead is kept for its
	// walker; after that it is dropped and read again if needed, as
	// the kernel would after its own cache expired.
	prefetchMaxAge = 2 * time.Second
)

var (
	prefetchSlots = make(chan struct{}, prefetchWorkers)
	aheadQueued   atomic.Int64
	aheadEntries  atomic.Int64
)

// listing is a directory listing read ahead.
type listing struct {
	done    chan struct{}
	started bool
	at      time.Time
	ents    []p9.DirentAttr
	errno   syscall.Errno
	// release returns the entries to the budget, once.
	release sync.Once
}

// free returns l's entries to the budget.
func (l *listing) free() {
	l.release.Do(func() { aheadEntries.Add(-int64(len(l.ents))) })
}

// readAhead starts reading the node's listing in the background, if the
// budget allows.
func (n *node) readAhead() {
	if aheadQueued.Load() >= maxAheadQueued || aheadEntries.Load() >= maxAheadEntries {
		return
	}
	l := &listing{done: make(chan struct{})}
	n.mu.Lock()
	if n.ahead != nil || n.forgotten {
		n.mu.Unlock()
		return
	}
	n.ahead = l
	n.mu.Unlock()
	aheadQueued.Add(1)
	go func() {
		prefetchSlots <- struct{}{}
		defer func() { <-prefetchSlots }()
		aheadQueued.Add(-1)
		n.mu.Lock()
		if n.ahead != l {
			// Taken before it started: the taker lists itself.
			n.mu.Unlock()
			return
		}
		l.started = true
		n.mu.Unlock()
		ents, errno := n.list()
		l.ents, l.errno, l.at = ents, errno, time.Now()
		aheadEntries.Add(int64(len(ents)))
		close(l.done)
		time.AfterFunc(prefetchMaxAge, func() { n.dropAhead(l) })
	}()
}

// dropAhead drops listing l if the node still holds it unused.
func (n *node) dropAhead(l *listing) {
	n.mu.Lock()
	if n.ahead == l {
		n.ahead = nil
	}
	n.mu.Unlock()
	l.free()
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
		l.free()
		if l.errno == 0 && time.Since(l.at) < prefetchMaxAge {
			return l.ents, 0
		}
	}
	return n.list()
}
