//go:build cgo

package gofer

// cgoBuild says this test binary uses cgo, whose threads come from
// pthread_create (clone3), which the gofer's filter refuses: runsc itself
// is built without cgo.
const cgoBuild = true
