package donation

import (
	"os"
	"reflect"
	"testing"
)

func TestTransfer(t *testing.T) {
	a, b, c := os.NewFile(10, "a"), os.NewFile(11, "b"), os.NewFile(12, "c")
	var ag Agency
	ag.Donate("io-fds", a, b)
	ag.DonateOptional("console-fd", nil)
	ag.Donate("fuse-fds", nil, c)
	files, flags := ag.Transfer([]*os.File{os.Stdin, os.Stdout, os.Stderr})
	if want := []*os.File{os.Stdin, os.Stdout, os.Stderr, a, b, c}; !reflect.DeepEqual(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	if want := []string{"--io-fds=3,4", "--fuse-fds=-1,5"}; !reflect.DeepEqual(flags, want) {
		t.Fatalf("flags %v, want %v", flags, want)
	}
}

func TestTransferExtra(t *testing.T) {
	x, y := os.NewFile(20, "x"), os.NewFile(21, "y")
	var ag Agency
	ag.Donate("controller-fd", y)
	extra, flags := ag.TransferExtra([]*os.File{x})
	if !reflect.DeepEqual(extra, []*os.File{x, y}) || !reflect.DeepEqual(flags, []string{"--controller-fd=4"}) {
		t.Fatalf("extra %v flags %v", extra, flags)
	}
}

func TestParseFDs(t *testing.T) {
	for _, c := range []struct {
		v         string
		allowNone bool
		want      []int
		err       string
	}{
		{"", false, nil, ""},
		{"3", false, []int{3}, ""},
		{"3,4,17", false, []int{3, 4, 17}, ""},
		{"-1,5", true, []int{-1, 5}, ""},
		{"-1,5", false, nil, `--x-fds "-1,5": "-1" is not a file descriptor number`},
		{"3,,4", false, nil, `--x-fds "3,,4": "" is not a file descriptor number`},
		{"-2", true, nil, `--x-fds "-2": "-2" is not a file descriptor number`},
		{"a", true, nil, `--x-fds "a": "a" is not a file descriptor number`},
	} {
		t.Run(c.v, func(t *testing.T) {
			got, err := ParseFDs("x-fds", c.v, c.allowNone)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("error %v, want %s", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("ParseFDs = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}
