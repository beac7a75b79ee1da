package main

import (
	"bytes"
	"regexp"
	"testing"
)

// TestVersionFormat checks runc's format, which clients parse: the first
// line "runsc version X", and a "spec: " line.
func TestVersionFormat(t *testing.T) {
	var b bytes.Buffer
	printVersion(&b)
	if !regexp.MustCompile(`^runsc version \S+\n(commit: \S+\n)?spec: 1\.\d+\.\d+\S*\ngo: go\S+\n$`).Match(b.Bytes()) {
		t.Fatalf("version output %q is not in runc's format", b.String())
	}
	var stderr bytes.Buffer
	if st := runMain([]string{"version", "extra"}, &stderr); st != 1 || stderr.Len() == 0 {
		t.Fatalf("version with an argument: status %d, stderr %q", st, stderr.String())
	}
}
