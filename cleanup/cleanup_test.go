package cleanup

import (
	"reflect"
	"testing"
)

func TestCleanRunsInReverseOnce(t *testing.T) {
	var got []int
	var cu Cleanup
	for i := 1; i <= 3; i++ {
		cu.Add(func() { got = append(got, i) })
	}
	cu.Clean()
	cu.Clean()
	if want := []int{3, 2, 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
}

func TestReleaseKeeps(t *testing.T) {
	ran := false
	var cu Cleanup
	cu.Add(func() { ran = true })
	cu.Release()
	cu.Clean()
	if ran {
		t.Fatal("a released cleanup ran")
	}
}
