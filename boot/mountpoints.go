package boot

import (
	"fmt"
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc/runsc/specutils"
	"golang.org/x/sys/unix"
)

// MakeMountPoints creates, in the root file system at root (a host
// directory), the destinations of spec's mounts that are missing, as
// runc does before it makes a read-only root read-only: a directory, or
// an empty file for the bind of a file. A read-only root written through
// to the host is served read-only by its gofer, so the container's init
// could not make them. Destinations inside an earlier mount's are left
// to the init, which makes them in that mount. Paths resolve inside
// root as the container would see them, never above it.
func MakeMountPoints(root string, spec *specs.Spec) error {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("config.json: root.path %q: %w", root, err)
	}
	defer unix.Close(rootFD)
	var earlier []string
	for i, m := range spec.Mounts {
		dest := path.Clean("/" + m.Destination)
		inside := false
		for _, e := range earlier {
			if e == "/" || strings.HasPrefix(dest, e+"/") {
				inside = true
			}
		}
		earlier = append(earlier, dest)
		if inside || dest == "/" {
			continue
		}
		file := false
		if specutils.IsBindMount(m) {
			if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
				file = true
			}
		}
		fd, err := openIn(rootFD, dest, file)
		if err != nil {
			return fmt.Errorf("config.json: mounts[%d].destination %q: %w", i, m.Destination, err)
		}
		unix.Close(fd)
	}
	return nil
}
