package posixsuite

import (
	"os"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

func TestPosix(t *testing.T) {
	base := os.Getenv(DirEnv)
	if base == "" {
		t.Skipf("%s is not set: tests/posix_test.go runs this suite natively and inside containers", DirEnv)
	}
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir, err := os.MkdirTemp(base, name+"-")
			if err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
	}
}
