// Package donation passes descriptors to a child process and names them
// in its command line, in one place: each donated group of files gets
// consecutive descriptor numbers in the child and a flag
// "--NAME=N[,N...]" that tells the child where they are.
package donation

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Agency collects the files to donate to one child. Its zero value is
// ready to use.
type Agency struct {
	groups []group
}

// group is the files donated under one flag.
type group struct {
	flag  string
	files []*os.File
}

// Donate adds files under flag (without the leading "--"). A nil file is
// passed as -1, a placeholder the child recognises as "none".
func (a *Agency) Donate(flag string, files ...*os.File) {
	a.groups = append(a.groups, group{flag: flag, files: files})
}

// DonateOptional adds f under flag only when f is not nil.
func (a *Agency) DonateOptional(flag string, f *os.File) {
	if f != nil {
		a.Donate(flag, f)
	}
}

// Transfer appends the donated files to files, the child's descriptor
// table so far (descriptor i is files[i]), and returns it with the flags
// naming them.
func (a *Agency) Transfer(files []*os.File) ([]*os.File, []string) {
	var flags []string
	for _, g := range a.groups {
		nums := make([]string, len(g.files))
		for i, f := range g.files {
			if f == nil {
				nums[i] = "-1"
				continue
			}
			nums[i] = strconv.Itoa(len(files))
			files = append(files, f)
		}
		flags = append(flags, "--"+g.flag+"="+strings.Join(nums, ","))
	}
	return files, flags
}

// TransferExtra is Transfer for os/exec: extra is the command's
// ExtraFiles, whose first entry is descriptor 3.
func (a *Agency) TransferExtra(extra []*os.File) ([]*os.File, []string) {
	files, flags := a.Transfer(append(make([]*os.File, 3, 3+len(extra)), extra...))
	return files[3:], flags
}

// ParseFDs parses the value of a donated flag (named flag, without the
// leading "--"): comma-separated descriptor numbers, -1 ("none") only
// where allowNone. The empty value is no descriptor.
func ParseFDs(flag, v string, allowNone bool) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	var fds []int
	for _, s := range strings.Split(v, ",") {
		fd, err := strconv.Atoi(s)
		if err != nil || fd < -1 || (fd == -1 && !allowNone) {
			return nil, fmt.Errorf("--%s %q: %q is not a file descriptor number", flag, v, s)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}
