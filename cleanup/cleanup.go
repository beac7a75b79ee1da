// Package cleanup undoes the steps of an operation that fails half-way:
// each step that succeeds registers its undo, and the undos run in
// reverse order unless the whole operation succeeded.
//
//	var cu cleanup.Cleanup
//	defer cu.Clean()
//	... cu.Add(func() { undo step }) ...
//	cu.Release() // success: keep everything
package cleanup

// Cleanup is a list of undo functions. Its zero value is ready to use.
type Cleanup struct {
	fns []func()
}

// Add registers f to run on Clean.
func (c *Cleanup) Add(f func()) { c.fns = append(c.fns, f) }

// Clean runs the registered functions, last first, and forgets them.
func (c *Cleanup) Clean() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

// Release forgets the registered functions without running them: the
// operation succeeded.
func (c *Cleanup) Release() { c.fns = nil }
