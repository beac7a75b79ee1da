package gofer

import (
	"reflect"
	"testing"
)

// TestTreeArgsRoundTrip checks that every tree mode survives the --tree
// flag, and that malformed values are refused naming the flag.
func TestTreeArgsRoundTrip(t *testing.T) {
	trees := []Tree{
		{Source: "/a"},
		{Source: "/b", ReadOnly: true},
		{Source: "/c", Recursive: true},
		{Source: "/d", ReadOnly: true, Recursive: true},
		{Source: "/e", TopReadOnly: true, Recursive: true},
		{Source: "/f", Propagate: true},
		{Source: "/g", TopReadOnly: true, Recursive: true, Propagate: true},
	}
	for i, arg := range TreeArgs(trees) {
		v, ok := cutFlag(arg)
		if !ok {
			t.Fatalf("TreeArgs gave %q", arg)
		}
		got, err := ParseTree(v)
		if err != nil || !reflect.DeepEqual(got, trees[i]) {
			t.Fatalf("ParseTree(%q) = %+v, %v; want %+v", v, got, err, trees[i])
		}
	}
	for _, bad := range []string{"rotop:/x", "rx:/x", "ro", "ro:x", "rw+rec:rel", "ROTOP+rec:/x", "rw+prop+rec:/x", "rotop+prop:/x"} {
		if got, err := ParseTree(bad); err == nil {
			t.Errorf("ParseTree(%q) = %+v, want an error", bad, got)
		}
	}
}

// cutFlag returns the value of a --tree=VALUE argument.
func cutFlag(arg string) (string, bool) {
	const p = "--tree="
	if len(arg) < len(p) || arg[:len(p)] != p {
		return "", false
	}
	return arg[len(p):], true
}
