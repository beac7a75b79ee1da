//go:build !cgo

package gofer

// cgoBuild says this test binary uses cgo (see cgo_test.go).
const cgoBuild = false
